"""The gate's verdict: every release criterion applied to the run's results, every unmet one a reason."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from rxverify.gate.criteria import Criteria
from rxverify.gate.inputs import (
    LoadSummary,
    VerificationSummary,
    read_load_summary,
    read_verification_summary,
)
from rxverify.gate.links import ReportLinks
from rxverify.report.categories import OLD_NEW_DIFFERENCE, SAFETY_REFUSAL, classify
from rxverify.report.results import TestResult, read_results
from rxverify.report.runs import RunRecord, read_run_records
from rxverify.safety.identity import mask, mask_identities
from rxverify.safety.ledger import LedgerRecord, read_ledger
from rxverify.safety.redaction import redact_text

BLOCKING = "blocking failures"
DIFFERENCES = "old/new differences"
SLOS = "SLOs"
VERIFICATION = "verification steps"
SAFETY = "safety refusals"
MINIMUM = "minimum tests per area"
MESSAGE_LIMIT = 300  # characters of a failure message in a reason; the report has the rest
_EXCEPTION_PREFIX = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Group|Refused|Failure)\w*: ")


@dataclass(frozen=True)
class Reason:
    """One unmet criterion: which, what exactly, and where to look."""

    criterion: str
    text: str
    link: str | None = None  # relative to the reports folder
    ref: str | None = None  # the test's historyId or the SLO's name, when there is no link

    def as_dict(self) -> dict[str, Any]:
        """For gate.json."""
        return {"criterion": self.criterion, "text": self.text, "link": self.link, "ref": self.ref}


@dataclass
class RollbackWrite:
    """One write the production verification made, for the rollback checklist."""

    time: str
    operation: str
    method: str
    path: str
    status: int | None
    outcome: str
    ids: dict[str, Any]


@dataclass
class Verdict:
    """GO or NO-GO, with every reason, the notes (what was ignored and why) and the rollback checklist."""

    criteria: Criteria
    reasons: list[Reason] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tests: dict[str, dict[str, int]] = field(default_factory=dict)  # epic -> status -> count
    inputs: dict[str, str] = field(default_factory=dict)
    production: bool = False
    rollback: dict[str, list[RollbackWrite]] | None = None  # masked patient -> writes
    report: str | None = None

    @property
    def go(self) -> bool:
        """GO only when no criterion is unmet."""
        return not self.reasons


def shown(text: str) -> str:
    """Text safe to print: secrets redacted, identities masked."""
    return mask_identities(redact_text(text))


def summary_of(message: str) -> str:
    """A failure message in one line: its first line without the exception's class, and schemathesis's titles."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    first = _EXCEPTION_PREFIX.sub("", lines[0])
    titles = [line[2:] for line in lines[1:] if line.startswith("- ")]
    text = first + (": " + "; ".join(titles) if titles else "")
    return shown(text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…")


def _test_reason(criterion: str, result: TestResult, links: ReportLinks, what: str) -> Reason:
    category = classify(result)
    about = f" [{category}]" if category else ""
    text = f"{result.status} {result.severity} test {shown(result.title)}{about}: {summary_of(result.message)}"
    text = f"{what} {text}" if what else text
    link = links.link(result)
    return Reason(criterion, text, link, None if link else f"historyId {result.history_id}")


def _count(results: list[TestResult]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {}
    for r in results:
        counts.setdefault(r.epic or "(no epic)", Counter())[r.status] += 1
    return {epic: dict(sorted(c.items())) for epic, c in sorted(counts.items())}


def _tests(verdict: Verdict, results: list[TestResult], links: ReportLinks, today: date) -> None:
    c = verdict.criteria
    active = [k for k in c.known_issues if k.active(today)]
    for issue in c.known_issues:
        if not issue.active(today):
            verdict.notes.append(
                f"known issue {issue.id} ({issue.owner}) expired on {issue.expires.isoformat()}: "
                "its failures count again"
            )
    for result in results:
        if not result.failing:
            continue
        known = next((k for k in active if k.covers_test(result.full_name, result.name)), None)
        if known is not None:
            verdict.notes.append(
                f"ignored until {known.expires.isoformat()}: {result.status} test {shown(result.title)} "
                f"(known issue {known.id}, owner {known.owner}: {known.reason})"
            )
            continue
        category = classify(result)
        if result.severity in c.blocking_severities and result.status in c.blocking_statuses:
            verdict.reasons.append(_test_reason(BLOCKING, result, links, ""))
        if result.label("story") == c.difference_story or category == OLD_NEW_DIFFERENCE:
            accepted = next(
                (e for e in c.difference_exceptions if e.covers(result.full_name, result.name, result.message)), None
            )
            if accepted is None:
                verdict.reasons.append(_test_reason(DIFFERENCES, result, links, "difference:"))
            else:
                verdict.notes.append(f"accepted old/new difference in {shown(result.title)}: {accepted.reason}")
        if category == SAFETY_REFUSAL:
            verdict.reasons.append(_test_reason(SAFETY, result, links, "refusal:"))


def _minimum(verdict: Verdict, results: list[TestResult]) -> None:
    wanted = verdict.criteria.minimum_tests_in_production if verdict.production else verdict.criteria.minimum_tests
    ran = Counter(r.epic for r in results if r.status != "skipped")
    for area, least in sorted(wanted.items()):
        if ran[area] < least:
            verdict.reasons.append(
                Reason(MINIMUM, f"area {area!r}: {ran[area]} tests ran (not skipped), at least {least} required")
            )


def _slos(
    verdict: Verdict, load: LoadSummary | None, results: list[TestResult], links: ReportLinks, today: date
) -> None:
    c = verdict.criteria
    if load is None:
        if c.require_load_summary:
            verdict.reasons.append(
                Reason(SLOS, "no load summary (reports/load/summary.json): the SLOs were not checked")
            )
        return
    if not load.slos and c.require_load_summary:
        verdict.reasons.append(Reason(SLOS, f"the load summary {load.where} checked no SLO"))
    load_results = [r for r in results if r.epic == "load"]
    for slo in load.slos:
        if slo.passed:
            continue
        issue = next((k for k in c.known_issues if k.active(today) and k.covers_slo(slo.name)), None)
        if issue is not None:
            verdict.notes.append(
                f"ignored until {issue.expires.isoformat()}: SLO {slo.name} breached "
                f"(known issue {issue.id}, owner {issue.owner}: {issue.reason})"
            )
            continue
        result = next((r for r in load_results if slo.name in (r.name, r.label("story"))), None)
        if result is None:
            result = next((r for r in load_results if slo.name in r.name), None)
        link = links.link(result) if result else None
        verdict.reasons.append(
            Reason(SLOS, f"SLO {slo.name} breached: {slo.figures()}", link, None if link else slo.name)
        )


def _verification(
    verdict: Verdict, summary: VerificationSummary | None, results: list[TestResult], links: ReportLinks
) -> None:
    if summary is None:
        if verdict.criteria.require_verification_summary:
            verdict.reasons.append(
                Reason(
                    VERIFICATION, "no verification summary (reports/verification/summary.json): nothing was verified"
                )
            )
        return
    by_name = {r.full_name: r for r in results}
    not_run = [s.id for s in summary.steps if s.status == "skipped"]
    for step in summary.steps:
        if step.status in ("passed", "skipped"):
            continue
        result = by_name.get(f"verification.{summary.plan}.{step.id}")
        link = links.link(result) if result else None
        verdict.reasons.append(
            Reason(
                VERIFICATION,
                f"step {step.id} {step.operation} {step.status}{' (blocking)' if step.blocking else ''}: "
                f"{shown(step.message)}",
                link,
                None if link else f"{summary.path} step {step.id}",
            )
        )
    if not_run:
        verdict.reasons.append(
            Reason(VERIFICATION, f"{len(not_run)} steps not run after a blocking failure: {', '.join(not_run)}")
        )
    if not summary.steps:
        verdict.reasons.append(Reason(VERIFICATION, f"the verification summary {summary.path} has no steps"))


def _load_records(load: LoadSummary | None) -> list[RunRecord]:
    """The guard counts a load summary carries, as run records (the load suite writes them there)."""
    if load is None:
        return []
    return [
        RunRecord(
            path=path,
            suite="load",
            run=path.stem,
            target="",
            environment_class="",
            sent=counts.get("sent", 0),
            refused={k: v for k, v in counts.items() if k not in ("passed", "sent")},
        )
        for path, counts in load.guard.items()
    ]


def _safety(verdict: Verdict, records: list[RunRecord], load_records: list[RunRecord]) -> None:
    c = verdict.criteria
    if not records and c.require_run_records:
        verdict.reasons.append(
            Reason(SAFETY, "no run records (reports/runs/): what the guard refused in the runs is not known")
        )
    for record in records + load_records:
        for problem in record.egress_problems:  # a request around the guard is never acceptable
            verdict.reasons.append(
                Reason(SAFETY, f"the {record.suite} run {record.run}: {problem}", ref=str(record.path))
            )
    records = [r for r in records + load_records if r.suite not in c.fuzzing_suites]
    total = sum(r.refusals for r in records)
    if total > c.max_refusals:
        for record in records:
            if record.refusals:
                why = ", ".join(f"{reason}: {n}" for reason, n in sorted(record.refused.items()) if n)
                verdict.reasons.append(
                    Reason(
                        SAFETY,
                        f"the {record.suite} run {record.run}{f' on target {record.target}' if record.target else ''}: "
                        f"the guard refused "
                        f"{record.refusals} requests ({why}); at most {c.max_refusals} allowed in all",
                        ref=str(record.path),
                    )
                )


def _rollback(reports: Path, summary: VerificationSummary) -> dict[str, list[RollbackWrite]]:
    records: list[LedgerRecord] = read_ledger(reports / "ledger", since=summary.started or None)
    groups: dict[str, list[RollbackWrite]] = {}
    for record in records:
        for patient in record.patients or [""]:
            groups.setdefault(mask(patient) if patient else "(no test patient named)", []).append(
                RollbackWrite(
                    record.time,
                    record.operation or "?",
                    record.method,
                    mask_identities(record.path),
                    record.status,
                    record.outcome,
                    dict(record.ids),
                )
            )
    return groups


def evaluate(reports: Path, results_dir: Path, criteria: Criteria, today: date | None = None) -> Verdict:
    """Apply `criteria` to what the run reported; bad input raises UserError (exit 2, never a GO)."""
    today = today or date.today()
    results = read_results(results_dir)
    load = read_load_summary(reports)
    verification = read_verification_summary(reports)
    records = read_run_records(reports)
    links = ReportLinks(reports)
    verdict = Verdict(criteria, production=verification is not None and verification.production)
    verdict.inputs = {
        "criteria": str(criteria.path),
        "allure results": f"{results_dir} ({len(results)} tests)",
        "load summary": load.where if load else "none",
        "verification summary": str(verification.path) if verification else "none",
        "run records": f"{len(records)} in {reports / 'runs'}"
        + (f"; guard counts of {len(load.guard)} load runs" if load and load.guard else ""),
        "report": str(links.index) if links.available else "none (links name the test's historyId)",
    }
    verdict.report = links.categories()
    verdict.tests = _count(results)
    _tests(verdict, results, links, today)
    _minimum(verdict, results)
    _slos(verdict, load, results, links, today)
    _verification(verdict, verification, results, links)
    _safety(verdict, records, _load_records(load))
    if verification is not None and verification.production and not verdict.go:
        verdict.rollback = _rollback(reports, verification)
    return verdict
