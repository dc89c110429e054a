"""`rxverify rehearse --plan P`: the service window, rehearsed on the embedded platforms.

The night as the release board lives it: the old platform runs with years of seeded data behind
the gateway (the callers' one address); the baseline snapshot is taken; the window opens (the old
platform refuses writes from then on); the migration job runs; the new platform starts on the
migrated store; the gateway is switched from old to new; the reconciliation compares; the
verification plan runs through the gateway. At each of the plan's decision points the board's
rule gives GO or NO-GO. On NO-GO the gateway goes back to old, the ledger lists the writes made
on new since the window opened (what the rollback loses, per masked test patient), the window
closes, and the post-rollback checks run on old: the gateway routes to old, old still serves
exactly the baseline, every write the ledger lists is held by new and not by old, and the plan's
post-rollback steps pass through the gateway.

Every phase is timed and written as an Allure result (epic "service window"); the timeline, the
decisions, the participants' status and the lost writes go to reports/rehearsal/decision.json and
reports/rehearsal/index.html. Exit 0 GO, 1 NO-GO with a verified rollback, 3 NO-GO whose rollback
could not be verified, 2 bad input. Local only: the run builder refuses a production-class target.
"""

from __future__ import annotations

import html
import json
import socket
import tempfile
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from rxverify.allure_results import AllureResult, write_result
from rxverify.contracts.riv import load_riv
from rxverify.errors import UserError
from rxverify.legacy.client import LegacyClient
from rxverify.operations import load_operations
from rxverify.plans import Plan, load_plan, plan_path
from rxverify.reconcile import compare_with, fault_platforms, migrate, seed_old, take_snapshot
from rxverify.report.evidence import COMPLETE, begin_run
from rxverify.report.runs import write_run_record
from rxverify.safety.identity import mask
from rxverify.safety.ledger import LedgerRecord, read_ledger
from rxverify.safety.redaction import redact_text
from rxverify.target.credentials import load_actors, load_profile
from rxverify.target.local import (
    StartedPlatform,
    new_operator_key,
    new_ticket_key,
    new_token_key,
    platform_endpoints,
    start_gateway,
    start_platform,
)
from rxverify.target.run import Run, new_run_id, open_run, registry_for
from rxverify.target.targets import DEFAULT_ENTRY, Endpoints, Target
from rxverify.target.trust import GATEWAY, trust_domain
from rxverify.verify import execute

EPIC = "service window"
GO, NO_GO = "GO", "NO-GO"
EXIT = {"go": 0, "rollback verified": 1, "rollback unverified": 3}
ADMIN_TIMEOUT_S = 10.0
NEW_PATIENCE_S = 60.0  # after a NO-GO, how long the rollback's checks wait for the new platform to answer again
Say = Callable[[str], None]


@dataclass
class Phase:
    """One phase of the window: what it was, when, and how it ended."""

    name: str
    start_ms: int
    stop_ms: int = 0
    outcome: str = "passed"  # passed | failed | broken | skipped
    detail: str = ""

    def row(self) -> dict[str, Any]:
        """The phase as the decision record keeps it."""
        return {"phase": self.name, "start": _iso(self.start_ms), "end": _iso(self.stop_ms), "outcome": self.outcome,
                "detail": self.detail}


@dataclass(frozen=True)
class DecisionPoint:
    """A decision point of the plan: after which phase, and the board's rule for GO."""

    id: str
    after: str  # reconcile | verify
    rule: str


@dataclass(frozen=True)
class Window:
    """The window's part of a verification plan: its decision points and the post-rollback steps."""

    decisions: tuple[DecisionPoint, ...]
    post_rollback: tuple[str, ...]  # step ids of the plan, run on old through the gateway after a rollback


@dataclass
class Rehearsal:
    """What happened in the window."""

    plan: Plan
    phases: list[Phase] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    participants: dict[str, dict[str, Any]] = field(default_factory=dict)
    lost: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    verdict: str = GO
    ending: str = "go"
    run: str = ""  # the rehearsal's run (its folder under reports/runs/): the gate checks the record is its


def _ms() -> int:
    return int(time.time() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


AFTER = ("reconcile", "verify")


def load_window(plan: Plan) -> Window:
    """The [[decision_points]] and [rollback] of the plan file; anything malformed is one UserError."""
    raw = tomllib.loads(plan.path.read_text(encoding="utf-8"))
    where = f"verification plan {plan.path}"
    points = raw.get("decision_points")
    if not isinstance(points, list) or not points:
        raise UserError(f"{where} has no [[decision_points]]: the rehearsal needs the board's decision points")
    decisions = []
    for n, point in enumerate(points, start=1):
        if not isinstance(point, dict) or point.get("after") not in AFTER or not point.get("id"):
            raise UserError(f"{where}: decision point {n} needs an id and after = one of {', '.join(AFTER)}")
        decisions.append(DecisionPoint(str(point["id"]), point["after"], str(point.get("rule", ""))))
    rollback = raw.get("rollback") or {}
    steps = rollback.get("post_rollback_steps", []) if isinstance(rollback, dict) else None
    known = {s.id for s in plan.steps}
    if not isinstance(steps, list) or not all(isinstance(s, str) and s in known for s in steps):
        raise UserError(f"{where}: [rollback] post_rollback_steps must list step ids of the plan")
    return Window(tuple(decisions), tuple(steps))


def _stop_all(started: list[StartedPlatform]) -> None:
    for p in reversed(started):
        p.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Timeline:
    """Phases as they happen: printed, kept, and each written as an Allure result."""

    def __init__(self, rehearsal: Rehearsal, results: Path, say: Say) -> None:
        self.rehearsal, self.results, self.say = rehearsal, results, say
        self.written: list[str] = []  # the phases' full names, as the run's manifest collects them

    @contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        """Time a phase; an exception inside it marks it broken and goes on up."""
        phase = Phase(name, _ms())
        self.say(f"{_iso(phase.start_ms)}  {name} ...")
        try:
            yield phase
        except Exception as exc:
            phase.outcome = "broken"
            phase.detail = phase.detail or f"{type(exc).__name__}: {exc}"
            raise
        finally:
            phase.stop_ms = _ms()
            self.rehearsal.phases.append(phase)
            self.say(f"{_iso(phase.stop_ms)}  {name}: {phase.outcome}" + (f": {phase.detail}" if phase.detail else ""))
            self.written.append(f"rehearse.{self.rehearsal.plan.name}.{name}")
            write_result(self.results, AllureResult(
                name=f"window: {name}", full_name=self.written[-1],
                status=phase.outcome, start_ms=phase.start_ms, stop_ms=phase.stop_ms,
                message=redact_text(phase.detail), trace="" if phase.outcome != "broken" else traceback.format_exc(),
                labels={"epic": EPIC, "feature": name, "story": self.rehearsal.plan.name, "severity": "blocker",
                        "suite": "rehearse", "framework": "rxverify"},
                parameters={"plan": self.rehearsal.plan.name},
            ))


def _admin(session: requests.Session, url: str, key: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """An operator call (window or route) through the guarded session; the state it answers."""
    headers = {"Authorization": f"Bearer {key}"}
    r = (session.post(url, json=body, headers=headers, timeout=ADMIN_TIMEOUT_S) if body is not None
         else session.get(url, headers=headers, timeout=ADMIN_TIMEOUT_S))
    if r.status_code != 200:
        raise RuntimeError(f"{url.rsplit('/', 2)[-2:]}: answered {r.status_code}")
    state: dict[str, Any] = r.json()
    return state


def _participants(rec: Rehearsal, outcome: Any) -> None:
    for r in outcome.results:
        row = rec.participants[r.step.participant]
        if r.status != "skipped":
            row["run"] += 1
            row["passed" if r.status == "passed" else "failed"] += 1


def _decide(rec: Rehearsal, window: Window, after: str, passed: bool, why: str, say: Say) -> bool:
    """Apply the decision points after `after`; whether the window goes on."""
    for point in (p for p in window.decisions if p.after == after):
        verdict = GO if passed else NO_GO
        rec.decisions.append({"id": point.id, "after": after, "rule": point.rule, "decision": verdict, "why": why,
                              "time": _iso(_ms())})
        say(f"decision {point.id} after {after} ({point.rule}): {verdict}: {why}")
        if not passed:
            rec.verdict = NO_GO
            return False
    return True


def _lost_writes(reports: Path, base_id: str, since: str) -> list[LedgerRecord]:
    """Contract writes of this rehearsal accepted since the window opened: on new (old refuses writes in the window)."""
    return [r for r in read_ledger(reports / "ledger", since=since)
            if r.run.startswith(base_id) and r.operation is not None and r.status is not None and r.status < 300]


def _history_ids(client: LegacyClient, person_id: str) -> set[str]:
    answer = client.call("HamtaOrdinationshistorik", {"personnummer": person_id}, role="pharmacy")
    items = (answer.json or {}).get("ordinationer", []) if answer.ok else []
    return {i["ordination"]["ordinationId"] for i in items}


def _history_ids_waiting(client: LegacyClient, person_id: str, patience_s: float = NEW_PATIENCE_S) -> set[str] | None:
    """The patient's prescription ids; a platform that answers a server error is asked again, once a second,
    for `patience_s` (the NO-GO may have been its failing: it is read when it answers again); None if it never does."""
    deadline = time.monotonic() + patience_s
    while True:
        answer = client.call("HamtaOrdinationshistorik", {"personnummer": person_id}, role="pharmacy")
        if answer.ok:
            return {i["ordination"]["ordinationId"] for i in (answer.json or {}).get("ordinationer", [])}
        if answer.status < 500 or answer.kod not in (None, "TJANSTEFEL") or time.monotonic() >= deadline:
            return None
        time.sleep(1.0)


def run_rehearsal(plan_name: str, contracts: Path, reports: Path, faults: tuple[str, ...], seed: int,
                  say: Say = print, patients: int | None = None) -> int:
    """The whole window on the embedded platforms; the exit code (0 GO, 1 verified rollback, 3 unverified).

    `patients`: reconcile only the first N test patients of the registry (a short rehearsal; every
    test patient is seeded and migrated all the same).
    """
    if patients is not None and patients < 1:
        raise UserError(f"--patients {patients}: at least 1")
    contracts = contracts.resolve()
    local = Target("local", "local", "embedded reference platforms")
    registry = registry_for(local, contracts)
    plan = load_plan(plan_path(plan_name, contracts), load_operations(contracts), registry,
                     load_actors(contracts / "testdata" / "test-actors.json"))
    window = load_window(plan)
    catalogue = fault_platforms()
    unknown = [f for f in faults if f not in catalogue]
    if unknown:
        raise UserError(f"unknown fault {unknown[0]!r} (python -m refplatform --list-faults)")
    by_platform = {p: tuple(f for f in faults if catalogue[f] == p) for p in ("old", "new", "migration", "gateway")}
    rec = Rehearsal(plan)
    for p in plan.participants.values():  # each participant's status, also when a NO-GO comes before its steps
        rec.participants[p.key] = {"name": p.name, "entryPoint": "gateway (the callers' one address)", "run": 0,
                                   "passed": 0, "failed": 0}
    say(f"rehearse {plan.name} (release {plan.release}) on the embedded platforms; "
        f"faults: {', '.join(faults) or 'none'}")
    base_id = new_run_id("rehearse")
    rec.run = base_id
    # the phases and the reconciliation are one run of the release run (its folder, manifest and run
    # record); the verification through the gateway is a run of its own (suite verification)
    evidence = begin_run(reports, "rehearse", target="rehearsal", environment_class="local", embedded=True,
                         platforms=["old", "new", "gateway"], run_id=base_id, seeds={"old platform data": seed},
                         selection={"plan": plan.name, "seed": seed, "patients": patients,
                                    **({"faults": list(faults)} if faults else {})})
    line = Timeline(rec, evidence.results, say)
    with evidence.ended_by_errors(), tempfile.TemporaryDirectory(prefix="rxverify-rehearse-") as tmp, \
            ExitStack() as stack:
        work = Path(tmp)
        ticket_key, operator_key = new_ticket_key(), new_operator_key()
        key_file, admin_file = work / "ticket.key", work / "operator.key"
        token_key_file = work / "token.key"
        for path, value in ((key_file, ticket_key), (admin_file, operator_key.encode()),
                            (token_key_file, new_token_key())):
            path.write_bytes(value)
            path.chmod(0o600)
        # Säker åtkomst 17.1 as everywhere: mutual TLS on both entry points of the gateway and of each
        # platform, SAMBI assertions; the gateway forwards each caller's certificate (RFC 9440)
        trust = trust_domain(work / "trust", ("old", "new", GATEWAY), load_actors(contracts / "testdata" /
                                                                                   "test-actors.json"),
                             services=(GATEWAY,))
        token_path = load_profile(contracts).token_path
        proxy = trust.client(GATEWAY, DEFAULT_ENTRY).cert
        started: list[StartedPlatform] = []
        stack.callback(_stop_all, started)
        with line.phase("seed the old platform") as phase:
            seed_old(work, contracts, seed, lambda s: setattr(phase, "detail", s.split(": ", 2)[-1][:300]),
                     secondary=False)
            old = start_platform("old", work / "old", key_file, by_platform["old"], admin_key_file=admin_file,
                                 tls_dir=trust.server_dir("old"), issuer_cert=trust.issuer_cert,
                                 trusted_proxy_cert=proxy)
            started.append(old)
            new_port = _free_port()
            new_url = f"https://127.0.0.1:{new_port}"
            gateway = start_gateway({"old": old.base_url, "new": new_url}, "old", admin_file,
                                    faults=by_platform["gateway"], trust=trust)
            started.append(gateway)
        target = Target("rehearsal", "local", "the embedded platforms behind the gateway", platforms={
            "old": platform_endpoints(old, False, trust, token_path),
            "new": Endpoints(legacy=new_url + "/legacy", fhir=new_url + "/fhir", token=new_url + token_path,
                             ca=str(trust.ca(DEFAULT_ENTRY))),
            "gateway": platform_endpoints(gateway, True, trust, token_path),
        })
        # reads and operator calls without the plan (its rate limit is for the verification's steps)
        with open_run(target, contracts, suite="rehearse", reports=reports, key=ticket_key, run_id=base_id,
                      trust_dir=trust.root) as run:
            session = run.session()
            baseline_path = reports / "rehearsal" / "baseline.json"
            with line.phase("baseline snapshot") as phase:
                baseline = take_snapshot(run, contracts, baseline_path, "old", say, patients)
                phase.detail = f"{len(baseline['patients'])} test patients read from old"
            with line.phase("open the window") as phase:
                state = _admin(session, old.base_url + "/admin/window", operator_key, {"open": True})
                opened = state["changed"]
                phase.detail = f"old refuses writes from {opened}"
            with line.phase("migrate") as phase:
                migrate(work, contracts, by_platform["migration"], lambda s: setattr(phase, "detail", s[-300:]))
                started.append(start_platform("new", work / "new", key_file, by_platform["new"], port=new_port,
                                              tls_dir=trust.server_dir("new"), token_key_file=token_key_file,
                                              issuer_cert=trust.issuer_cert, trusted_proxy_cert=proxy))
            with line.phase("cutover: gateway old -> new") as phase:
                routed = _admin(session, gateway.base_url + "/admin/route", operator_key, {"route": "new"})
                phase.detail = f"the gateway routes to {routed['route']} since {routed['since']}"
            with line.phase("reconcile") as phase:
                reconciled = compare_with(run, contracts, baseline, str(baseline_path), reports, "new", say=say,
                                          evidence=evidence)
                count = len(reconciled.differences)
                phase.outcome = "failed" if count else "passed"
                phase.detail = reconciled.summary_line()
            going = _decide(rec, window, "reconcile", count == 0, f"{count} differences", say)
            if going:
                with line.phase("verify through the gateway") as phase, open_run(
                        target, contracts, suite="verification", reports=reports, plan=plan, key=ticket_key,
                        run_id=f"{base_id}-verify", trust_dir=trust.root) as verifying:
                    outcome = execute(plan, verifying, "gateway", contracts, reports, say)
                    _participants(rec, outcome)
                    phase.outcome = "passed" if outcome.passed else "failed"
                    first = outcome.first_blocking_failure
                    phase.detail = "every step passed" if outcome.passed else (
                        f"first blocking failure {first.step.id}: {first.message}" if first else "a step failed")
                going = _decide(rec, window, "verify", outcome.passed, phase.detail, say)
            if going:
                rec.ending = "go"
            else:
                rec.ending = rollback(rec, run, window, session, (old, gateway), (operator_key, ticket_key), opened,
                                      contracts, reports, baseline, str(baseline_path), line, say, trust.root)
            write_run_record(reports, run_id=evidence.run, suite="rehearse", target=target.name,
                             environment_class=target.environment_class, guard_counts=run.guard.counts,
                             release=plan.release, seed=seed,
                             platforms={n: {"legacy": e.legacy, "fhir": e.fhir}
                                        for n, e in target.platforms.items()})
    evidence.update(collected=sorted({*evidence.document.get("collected", []), *line.written}))
    evidence.finish(COMPLETE, summary="../../rehearsal/decision.json")
    write_record(reports, rec)
    say(timeline_text(rec))
    say(f"rehearse: {rec.verdict}" + ("" if rec.verdict == GO else f", {rec.ending}") +
        f"; decision record {reports / 'rehearsal' / 'decision.json'}")
    return EXIT[rec.ending]


def rollback(rec: Rehearsal, run: Run, window: Window, session: requests.Session,
             processes: tuple[StartedPlatform, StartedPlatform], keys: tuple[str, bytes], opened: str, contracts: Path,
             reports: Path, baseline: dict[str, Any], baseline_name: str, line: Timeline, say: Say,
             trust_dir: Path | None = None) -> str:
    """Switch back, list what is lost, close the window, check old; 'rollback verified' or 'rollback unverified'."""
    old, gateway = processes
    key, ticket_key = keys
    verified = True

    def check(name: str, ok: bool, detail: str) -> None:
        nonlocal verified
        verified = verified and ok
        rec.checks.append({"check": name, "passed": ok, "detail": detail})
        say(f"  post-rollback check {'passed' if ok else 'FAILED'}: {name}: {detail}")

    with line.phase("rollback: gateway new -> old") as phase:
        phase.detail = f"route {_admin(session, gateway.base_url + '/admin/route', key, {'route': 'old'})['route']}"
    with line.phase("writes lost by the rollback") as phase:
        lost = _lost_writes(reports, run.run_id, opened)
        for r in lost:
            rec.lost.append({"patients": [mask(p) for p in r.patients], "operation": r.operation, "time": r.time,
                             "status": r.status, "ids": r.ids})
        per: dict[str, list[str | None]] = {}
        for r in lost:
            for p in r.patients or ["(no patient named)"]:
                per.setdefault(mask(p) if p[0].isdigit() else p, []).append(r.operation)
        listed = "; ".join(f"{p}: {', '.join(str(o) for o in ops)}" for p, ops in per.items())
        phase.detail = f"{len(lost)} writes on new since {opened}: {listed}" if lost else f"none since {opened}"
    with line.phase("close the window") as phase:
        closed = _admin(session, old.base_url + "/admin/window", key, {"open": False})
        phase.detail = f"old accepts writes again from {closed['changed']}"
    with line.phase("post-rollback checks on old") as phase:
        route = _admin(session, gateway.base_url + "/admin/route", key)["route"]
        check("the gateway routes to old", route == "old", f"route {route}")
        again = compare_with(run, contracts, baseline, baseline_name, reports / "rehearsal" / "after-rollback", "old",
                             ("legacy",), lambda s: None)
        check("old serves exactly the baseline", not again.differences, again.summary_line())
        riv, credentials = load_riv(contracts), run.legacy_credentials()
        on_new = LegacyClient(session, run.target.platforms["new"].legacy or "", riv, credentials, run.actors)
        on_old = LegacyClient(session, run.target.platforms["old"].legacy or "", riv, credentials, run.actors)
        created = [(p, i) for r in lost if r.operation == "SkapaOrdinationVard" for p in r.patients
                   for i in r.id_values() if r.patients]
        on_new_ids = {p: _history_ids_waiting(on_new, p) for p in sorted({p for p, _ in created})}
        unread = [mask(p) for p, ids in on_new_ids.items() if ids is None]
        held_new = not unread and all(i in (on_new_ids[p] or ()) for p, i in created)
        held_old = any(i in _history_ids(on_old, p) for p, i in created)
        check("every prescription the ledger lists as lost is on new and not on old", held_new and not held_old,
              f"{len(created)} prescriptions created on new in the window: on new {held_new}, on old {held_old}" +
              (f"; new did not answer for {', '.join(unread)} within {NEW_PATIENCE_S:g} s" if unread else ""))
        # what the callers see: through their one address, each patient the lost writes name is served as old
        # serves them (the route the gateway reports is its word; this is its traffic)
        through = LegacyClient(session, run.target.platforms["gateway"].legacy or "", riv, credentials, run.actors)
        named = sorted({p for r in lost for p in r.patients})
        unlike = [mask(p) for p in named if _history_ids(through, p) != _history_ids(on_old, p)]
        check("through the gateway, the patients of the lost writes are served as old serves them", not unlike,
              f"{len(named)} patients read through the gateway and on old" +
              (f"; served otherwise: {', '.join(unlike)} (the gateway still forwards to new?)" if unlike else ""))
        if window.post_rollback:
            steps = tuple(s for s in rec.plan.steps if s.id in window.post_rollback)
            subplan = replace(rec.plan, steps=steps)
            with open_run(run.target, contracts, suite="verification", reports=reports / "rehearsal" / "after-rollback",
                          plan=subplan, key=ticket_key, run_id=f"{run.run_id}-after",
                          trust_dir=trust_dir) as after:
                outcome = execute(subplan, after, "gateway", contracts, reports / "rehearsal" / "after-rollback",
                                  lambda s: None)
            passed = sum(r.status == "passed" for r in outcome.results)
            check(f"the plan's post-rollback steps ({', '.join(window.post_rollback)}) pass on old through the gateway",
                  outcome.passed, f"{passed} of {len(outcome.results)} passed")
        phase.outcome = "passed" if verified else "failed"
        phase.detail = "rollback verified" if verified else "rollback NOT verified: " + "; ".join(
            f"{c['check']}: {c['detail']}" for c in rec.checks if not c["passed"])
    return "rollback verified" if verified else "rollback unverified"


def timeline_text(rec: Rehearsal) -> str:
    """The window's timeline as the command prints it."""
    lines = [f"{'phase':<34} {'start':<25} {'end':<25} outcome"]
    lines += [f"{p.name:<34} {_iso(p.start_ms):<25} {_iso(p.stop_ms):<25} {p.outcome}" for p in rec.phases]
    for d in rec.decisions:
        lines.append(f"decision {d['id']} after {d['after']}: {d['decision']} ({d['why']})")
    for key, p in rec.participants.items():
        lines.append(f"participant {key}: {p['run']} steps run, {p['passed']} passed, {p['failed']} failed, "
                     f"over {p['entryPoint']}")
    return "\n".join(lines)


def write_record(reports: Path, rec: Rehearsal) -> None:
    """reports/rehearsal/decision.json and index.html: timeline, decisions, participants, lost writes, checks."""
    folder = reports / "rehearsal"
    folder.mkdir(parents=True, exist_ok=True)
    document = {"run": rec.run, "plan": rec.plan.name, "release": rec.plan.release, "verdict": rec.verdict,
                "ending": rec.ending,
                "timeline": [p.row() for p in rec.phases], "decisions": rec.decisions,
                "participants": rec.participants, "lostWrites": rec.lost, "postRollbackChecks": rec.checks}
    text = redact_text(json.dumps(document, ensure_ascii=False, indent=1))
    (folder / "decision.json").write_text(text, encoding="utf-8")
    rows = "".join(f"<tr><td>{html.escape(p.name)}</td><td>{_iso(p.start_ms)}</td><td>{_iso(p.stop_ms)}</td>"
                   f"<td>{p.outcome}</td><td>{html.escape(redact_text(p.detail))}</td></tr>" for p in rec.phases)
    decisions = "".join(f"<li>{html.escape(d['id'])} after {d['after']}: <b>{d['decision']}</b> "
                        f"({html.escape(d['why'])})</li>" for d in rec.decisions)
    checks = "".join(f"<li>{'passed' if c['passed'] else 'FAILED'}: {html.escape(c['check'])} "
                     f"({html.escape(c['detail'])})</li>" for c in rec.checks)
    (folder / "index.html").write_text(
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Window {rec.verdict}</title></head><body>"
        f"<h1>{html.escape(rec.plan.name)}: {rec.verdict}{'' if rec.verdict == GO else ', ' + rec.ending}</h1>"
        f"<table border=1><tr><th>phase</th><th>start</th><th>end</th><th>outcome</th><th></th></tr>{rows}</table>"
        f"<h2>Decisions</h2><ul>{decisions}</ul><h2>Post-rollback checks</h2><ul>{checks or '<li>none</li>'}</ul>"
        f"<h2>Writes lost by the rollback</h2><pre>{html.escape(json.dumps(rec.lost, indent=1))}</pre></body></html>",
        encoding="utf-8")
