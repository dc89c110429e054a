"""`rxverify verify`: run a verification plan's steps in order against a target.

Every step goes through the guarded session with its participant's ticket: identities from
the registry only, on production only the plan's operations inside its window, at its rate,
every write in the ledger. A step of the old interface is a SOAP call of the one legacy client
(rxverify.legacy.client); it passes when the answer is what the plan expects (the HTTP status and,
for a refusal, the ApplicationException's kod) and keeps the wire rules (rxverify.checks.riv_rules:
valid against the XSD, the right response element, a fault of the right kind). The run stops at
the first failed blocking step, writes one Allure result per step (redacted request and response
attached) and verification/summary.json, which the gate reads, into its own run folder
(reports/runs/<run id>/, rxverify.report.evidence), whose manifest says `in-progress` from before
the first step: a killed run never leaves an earlier run's summary as the last word.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import requests

from rxverify import __version__
from rxverify.allure_results import AllureResult, write_result
from rxverify.checks import riv_rules
from rxverify.checks.failures import RuleViolation
from rxverify.contracts.riv import load_riv
from rxverify.errors import UserError
from rxverify.legacy import envelope
from rxverify.legacy.client import LegacyAnswer, LegacyClient, Prepared
from rxverify.operations import Operation, load_operations
from rxverify.plans import Plan, Step, resolve
from rxverify.report.evidence import COMPLETE, RunWriter, begin_run
from rxverify.report.runs import write_run_record
from rxverify.safety.guard import RequestRefused
from rxverify.safety.identity import mask, mask_identities
from rxverify.safety.redaction import redact_headers, redact_text
from rxverify.safety.registry import Registry
from rxverify.target.run import Run
from rxverify.target.targets import Endpoints, Target

EPIC = "production verification"
REQUEST_TIMEOUT_S = 30.0  # one step's answer; a production platform that takes longer has failed the step
BODY_LIMIT = 20_000  # characters of a response body kept in an attachment
Out = Callable[[str], None]


@dataclass
class StepResult:
    """What one step did."""

    step: Step
    status: str  # passed | failed | broken | skipped
    message: str = ""
    http_status: int | None = None
    start_ms: int = 0
    stop_ms: int = 0
    exchange: dict[str, Any] | None = None  # redacted request and response


@dataclass
class Outcome:
    """A whole run: the step results, the verdict and where its records are."""

    results: list[StepResult] = field(default_factory=list)
    first_blocking_failure: StepResult | None = None
    summary_path: Path | None = None
    ledger_path: Path | None = None

    @property
    def passed(self) -> bool:
        """Whether every step passed."""
        return all(r.status == "passed" for r in self.results)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def base_url(op: Operation, endpoints: Endpoints | None, platform: str) -> str | None:
    """The base URL a step's operation is sent to on `platform` (None when not known yet)."""
    if endpoints is None:
        return None
    base = endpoints.fhir if op.api == "fhir" else endpoints.legacy
    if base is None:
        raise UserError(f"the {platform} platform of this target has no {op.api} API ({op.operation_id})")
    return base


def _path(op: Operation, params: dict[str, Any], encode: bool = True) -> tuple[str, dict[str, Any]]:
    path = op.template
    query = {}
    for name, value in params.items():
        if name in op.path_params:
            path = path.replace("{" + name + "}", quote(str(value), safe="") if encode else str(value))
        else:
            query[name] = value
    return path, query


def describe(plan: Plan, target: Target, platform: str, contracts: Path, out: Out = print) -> None:
    """Print the plan: window, rate, participants and contacts, and every step's request (sends nothing)."""
    operations = load_operations(contracts)
    endpoints = target.platforms.get(platform)
    enforced = "enforced on this target" if target.environment_class == "production" else "not enforced on this target"
    out(f"verification plan {plan.name} (release {plan.release}, for {plan.target_class} targets): {plan.path}")
    where = "started on loopback for the run" if target.is_local else (endpoints and endpoints.legacy) or "-"
    out(f"target: {target.name} (class {target.environment_class}), platform {platform}: {where}")
    out(f"window: {plan.window_start.isoformat()} to {plan.window_end.isoformat()} ({enforced})")
    out(f"rate limit: {plan.rate_per_second:g} requests/s, burst {plan.burst}")
    out("participants:")
    for p in plan.participants.values():
        out(f"  {p.key}: {p.name}; sends as {p.role} #{p.actor} over entry point {p.entry}; contact: {p.contact}")
    out(f"allowed operations: {', '.join(sorted(plan.allowed_operations))}")
    out(f"steps ({len(plan.steps)}, in order; the run stops at the first failed blocking step):")
    for step in plan.steps:
        op = operations[step.operation]
        entry = plan.participants[step.participant].entry
        point = endpoints.entry(entry) if endpoints is not None else None
        if endpoints is not None and point is None and (target.clients or target.assertions):
            point = None  # a target of 17.1 without this entry point: the run would stop here
            base = f"<{platform} platform on entry point {entry}: not in targets.toml>/{op.api}"
        else:
            base = base_url(op, point or endpoints, platform) or f"<{platform} platform>/{op.api}"
        shown = {
            k: v.replace("${patient}", step.patient or "") if isinstance(v, str) else v for k, v in step.params.items()
        }
        path, query = _path(op, shown, encode=False)
        url = mask_identities(base + path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""))
        if op.service is not None:
            url += f" (SOAP, {op.service.name} V{op.service.major})"
        about = f" about {mask(step.patient)}" if step.patient else ""
        expect = f"{step.expect.status}" + (f" {step.expect.kod}" if step.expect.kod else "")
        flag = "blocking" if step.blocking else "non-blocking"
        who = f"{step.participant} sends {step.operation}{about}"
        out(f"  {step.id:<4} {who}: {op.method} {url}  expect {expect}  ({flag})")
    out("dry run: nothing was sent.")


class _Scrubber:
    """Redacts secrets and masks any identity outside the registry in what is reported."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def text(self, text: str) -> str:
        text = redact_text(text)
        for found in self.registry.unregistered_in(text):
            text = text.replace(found.text, mask(found.twelve))
        return text

    def document(self, value: Any) -> Any:
        return json.loads(self.text(json.dumps(value, ensure_ascii=False)))


def _soap_exchange(prepared: Prepared, answer: LegacyAnswer | None) -> dict[str, Any]:
    exchange: dict[str, Any] = {"request": {"method": "POST", "url": prepared.url,
                                            "headers": redact_headers(prepared.headers),
                                            "body": prepared.body.decode("utf-8", "replace")}}
    if answer is not None:
        exchange["response"] = {"status": answer.status, "headers": {"content-type": answer.content_type},
                                "body": answer.raw[:BODY_LIMIT].decode("utf-8", "replace")}
    return exchange


def _exchange(
    method: str, url: str, headers: dict[str, str], body: Any, response: requests.Response | None
) -> dict[str, Any]:
    exchange: dict[str, Any] = {
        "request": {"method": method, "url": url, "headers": redact_headers(headers), "body": body}
    }
    if response is not None:
        try:
            content: Any = response.json()
        except ValueError:
            content = response.text[:BODY_LIMIT]
        exchange["response"] = {
            "status": response.status_code,
            "headers": redact_headers(response.headers),
            "body": content,
        }
    return exchange


def _json(response: requests.Response) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


def _check(step: Step, response: requests.Response) -> tuple[str, str]:
    """passed, or failed with what was received against what the plan expects."""
    expect = step.expect
    document = _json(response)
    kod = document.get("kod") if isinstance(document, dict) else None
    wanted = f"{expect.status}" + (f" {expect.kod}" if expect.kod else "")
    got = f"{response.status_code}" + (f" {kod}" if kod else "")
    if response.status_code != expect.status or (expect.kod and kod != expect.kod):
        return "failed", f"{step.operation}: received {got}, the plan expects {wanted}"
    return "passed", f"received {got}, as the plan expects"


def _check_answer(step: Step, answer: LegacyAnswer) -> tuple[str, str]:
    """passed, or failed: the status and kod the plan expects, and the wire rules of the old interface."""
    expect = step.expect
    fault = answer.fault
    kod = fault.kod if fault is not None else None
    wanted = f"{expect.status}" + (f" ApplicationException {expect.kod}" if expect.kod else "")
    got = f"{answer.status}" + (f" {fault.kind} {kod}" if fault is not None else "")
    if fault is not None and fault.meddelande and (answer.status != expect.status or kod != expect.kod):
        got += f" ({mask_identities(fault.meddelande[:200])})"  # the platform's own words, for the board
    if answer.status != expect.status or (expect.kod and (kod != expect.kod or fault is None
                                                          or fault.kind != envelope.APPLICATION)):
        return "failed", f"{step.operation}: received {got}, the plan expects {wanted}"
    try:
        riv_rules.check_answer(answer)
    except RuleViolation as broken:
        return "failed", f"{step.operation}: {broken.rule}: {broken.message}"
    return "passed", f"received {got}, as the plan expects"


T = TypeVar("T")


def _sent(step: Step, result: StepResult, send: Callable[[], T]) -> T | None:
    """What `send` returned, or None with the step's message saying why nothing came back."""
    try:
        return send()
    except RequestRefused as refused:
        result.message = f"refused by the guard: {refused.message}"
    except requests.RequestException as exc:
        result.message = f"{step.operation}: transport error {type(exc).__name__}: {exc}"
    return None


def _run_soap_step(step: Step, run: Run, session: requests.Session, op: Operation, base: str,
                   body: Any, result: StepResult, results: dict[str, Any], plan: Plan) -> StepResult:
    assert op.service is not None
    participant = plan.participants[step.participant]
    credentials = run.legacy_credentials(participant_entry(run, plan, step))
    client = LegacyClient(session, base, load_riv(run_contracts(op)), credentials, run.actors)
    prepared = client.prepare(op.service, body or {}, role=participant.role, actor=participant.actor)
    answer = _sent(step, result, lambda: client.send(prepared, REQUEST_TIMEOUT_S))
    if answer is not None:
        result.http_status = answer.status
        result.status, result.message = _check_answer(step, answer)
        results[step.id] = answer.body
    result.exchange = _soap_exchange(prepared, answer)
    result.stop_ms = _now_ms()
    return result


def run_contracts(op: Operation) -> Path:
    """The contracts folder an operation of the old interface was read from."""
    assert op.service is not None
    return op.service.wsdl.parents[3]  # <contracts>/riv/interactions/<Service>Interaction/<file>.wsdl


def _run_step(
    step: Step,
    run: Run,
    session: requests.Session,
    op: Operation,
    base: str,
    results: dict[str, Any],
    plan: Plan,
) -> StepResult:
    result = StepResult(step, "broken", start_ms=_now_ms())
    participant = plan.participants[step.participant]
    try:
        params = resolve(step.params, results, step.patient)
        body = resolve(step.body, results, step.patient)
    except KeyError as missing:
        result.message = f"${{{missing.args[0]}}} has no value: the step it refers to gave no such result"
        result.stop_ms = _now_ms()
        return result
    if op.service is not None:
        return _run_soap_step(step, run, session, op, base, body, result, results, plan)
    path, query = _path(op, params)
    url = base + path
    headers = run.auth_headers(participant.role, participant.actor, participant_entry(run, plan, step))
    headers |= {
        "Accept": "application/fhir+json",
        "x-request-id": str(uuid.uuid4()),
        "x-context-id": str(uuid.uuid4()),
        "x-user-agent": f"rxverify-verify/{__version__}",
    }
    response = _sent(step, result, lambda: session.request(
        op.method, url, params=query or None, json=body, headers=headers, timeout=REQUEST_TIMEOUT_S
    ))
    if response is not None:
        result.http_status = response.status_code
        result.status, result.message = _check(step, response)
        results[step.id] = _json(response)
        url = response.url
    result.exchange = _exchange(op.method, url, headers, body, response)
    result.stop_ms = _now_ms()
    return result


def participant_entry(run: Run, plan: Plan, step: Step) -> str | None:
    """The entry point a step is sent over: its participant's, under Säker åtkomst 17.1 (None: the target's one
    address, on platforms of plain HTTP, which have no entry points)."""
    return plan.participants[step.participant].entry if run.secure else None


def entry_point(run: Run, endpoints: Endpoints, plan: Plan, step: Step) -> Endpoints:
    """Where a step's participant reaches the platform: its entry point of the platform's."""
    entry = participant_entry(run, plan, step)
    point = endpoints.entry(entry)
    if point is None:
        names = ", ".join(p.name for p in endpoints.entry_points())
        raise UserError(f"participant {step.participant!r} of plan {plan.name} calls over entry point {entry}, which "
                        f"this target does not name (its entry points: {names}; targets.toml [T.<platform>.{entry}])")
    return point


def execute(
    plan: Plan,
    run: Run,
    platform: str,
    contracts: Path,
    reports: Path,
    out: Out = print,
    embedded: bool = False,
    evidence: RunWriter | None = None,
) -> Outcome:
    """Run the plan's steps in order on `run` (whose target is started); write the reports.

    `embedded`: the target is the embedded reference platforms, started for the run.
    `evidence`: a run already begun whose part this is (a round of `rxverify watch`, whose rounds
    are one run): the steps' results and summary go to its folder, and its manifest is left open.
    """
    target = run.target
    endpoints = target.platforms.get(platform)
    if endpoints is None:
        raise UserError(f"target {target.name!r} has no {platform} platform")
    operations = load_operations(contracts)
    bases = {s.id: base_url(operations[s.operation], entry_point(run, endpoints, plan, s), platform) or ""
             for s in plan.steps}
    if evidence is not None:
        return _execute(plan, run, platform, reports, out, evidence, operations, bases, finish=False)
    evidence = begin_run(
        reports,
        "verification",
        target=target.name,
        environment_class=target.environment_class,
        embedded=embedded,
        platforms=[platform],
        selection={"plan": plan.name, "planFile": str(plan.path)},
        collected=[step_name(plan, step) for step in plan.steps],
        run_id=run.run_id,  # the ledger's entries carry the same id
    )
    with evidence.ended_by_errors():
        return _execute(plan, run, platform, reports, out, evidence, operations, bases)


def step_name(plan: Plan, step: Step) -> str:
    """A step's Allure full name, and its test id in the run's manifest."""
    return f"verification.{plan.name}.{step.id}"


def _execute(
    plan: Plan,
    run: Run,
    platform: str,
    reports: Path,
    out: Out,
    evidence: RunWriter,
    operations: Mapping[str, Operation],
    bases: dict[str, str],
    finish: bool = True,
) -> Outcome:
    target = run.target
    endpoints = target.platforms[platform]
    ledger = run.guard.ledger  # the run builder made the guard for this plan, with its ledger
    if ledger is None or run.guard.plan is not plan:
        raise ValueError("a verification runs on a run opened for its plan, with a ledger (open_run(plan=, reports=))")
    scrub = _Scrubber(run.registry)
    outcome = Outcome(ledger_path=ledger.path)
    results: dict[str, Any] = {}
    sessions: dict[str | None, requests.Session] = {}  # one per entry point: its CA, its certificates
    started = _now_ms()
    out(
        f"verifying {plan.name} on {target.name} (class {target.environment_class}), platform {platform}: "
        f"{endpoints.legacy or endpoints.fhir}"
    )
    if run.secure:  # Säker åtkomst 17.1: each participant over its entry point, with its system's certificate
        out("  over mutual TLS with SAMBI assertions: " + ", ".join(
            f"{p.key} over {p.entry} ({(endpoints.entry(p.entry) or endpoints).legacy})"
            for p in plan.participants.values()))
    try:
        for step in plan.steps:
            if outcome.first_blocking_failure is not None:
                failed = outcome.first_blocking_failure.step.id
                now = _now_ms()
                outcome.results.append(
                    StepResult(step, "skipped", f"not run: blocking step {failed} failed", None, now, now)
                )
            else:
                entry = participant_entry(run, plan, step)
                if entry not in sessions:
                    sessions[entry] = run.session(entry=entry)
                result = _run_step(step, run, sessions[entry], operations[step.operation], bases[step.id], results,
                                   plan)
                outcome.results.append(result)
                if result.status != "passed" and step.blocking:
                    outcome.first_blocking_failure = result
            last = outcome.results[-1]
            code = f"{last.http_status}" if last.http_status is not None else "-"
            out(f"  {step.id:<4} {last.status:<8} {step.operation:<28} {code:>4}  {scrub.text(last.message)}")
    finally:
        for session in sessions.values():
            session.close()
    finished = _now_ms()
    allure_dir = evidence.results
    for result in outcome.results:
        _write_allure(allure_dir, result, plan, target, platform, scrub)
    outcome.summary_path = _write_summary(evidence, plan, target, platform, outcome, started, finished, scrub)
    if finish:
        write_run_record(
            reports,
            run_id=evidence.run,
            suite="verification",
            target=target.name,
            environment_class=target.environment_class,
            guard_counts=run.guard.counts,
            release=plan.release,
            platforms={platform: {"legacy": endpoints.legacy, "fhir": endpoints.fhir}},
        )
        evidence.finish(COMPLETE, summary=str(outcome.summary_path.relative_to(evidence.folder)))
    passed = sum(r.status == "passed" for r in outcome.results)
    verdict = "passed" if outcome.passed else "failed"
    out(
        f"verdict: {verdict}: {passed} of {len(outcome.results)} steps passed"
        + (
            f"; first blocking failure {outcome.first_blocking_failure.step.id}"
            if outcome.first_blocking_failure
            else ""
        )
    )
    out(f"ledger: {ledger.path}; allure results: {allure_dir}; summary: {outcome.summary_path}")
    return outcome


def _write_allure(
    directory: Path, result: StepResult, plan: Plan, target: Target, platform: str, scrub: _Scrubber
) -> None:
    step = result.step
    about = f" about {mask(step.patient)}" if step.patient else ""
    write_result(
        directory,
        AllureResult(
            name=f"{step.id} {step.operation}{about}",
            full_name=step_name(plan, step),
            status=result.status,
            start_ms=result.start_ms,
            stop_ms=result.stop_ms,
            message=scrub.text(result.message),
            description=step.description,
            labels={
                "epic": EPIC,
                "feature": step.operation,
                "story": step.id,
                "severity": "blocker" if step.blocking else "normal",
                "suite": plan.name,
                "framework": "rxverify",
            },
            parameters={"target": target.name, "platform": platform},
        ),
        scrub.document(result.exchange) if result.exchange is not None else None,
    )


def _write_summary(
    evidence: RunWriter,
    plan: Plan,
    target: Target,
    platform: str,
    outcome: Outcome,
    started: int,
    finished: int,
    scrub: _Scrubber,
) -> Path:
    first = outcome.first_blocking_failure
    summary = {
        "run": evidence.run,
        "plan": plan.name,
        "planFile": str(plan.path),
        "release": plan.release,
        "target": target.name,
        "environmentClass": target.environment_class,
        "platform": platform,
        "started": _iso(started),
        "finished": _iso(finished),
        "verdict": "passed" if outcome.passed else "failed",
        "firstBlockingFailure": (
            {"step": first.step.id, "operation": first.step.operation, "message": scrub.text(first.message)}
            if first
            else None
        ),
        "ledger": str(outcome.ledger_path),
        "steps": [
            {
                "id": r.step.id,
                "operation": r.step.operation,
                "participant": r.step.participant,
                "patient": mask(r.step.patient) if r.step.patient else None,
                "blocking": r.step.blocking,
                "status": r.status,
                "httpStatus": r.http_status,
                "expected": {"status": r.step.expect.status, "kod": r.step.expect.kod},
                "message": scrub.text(r.message),
                "durationMs": r.stop_ms - r.start_ms,
            }
            for r in outcome.results
        ],
    }
    path = evidence.folder / "verification" / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    return path
