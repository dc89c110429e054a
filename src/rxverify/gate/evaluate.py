"""The gate's verdict: every release criterion applied to one release run's evidence, every unmet one a reason.

Each failing result is one reason per distinct failure its message lists, under the most
specific criterion (a safety refusal, an old/new difference, else a failed test); a result
counts only for the run whose folder holds it; a run that did not end `complete`, a summary
not of its run, a write of unknown outcome and a report older than its results are reasons of
their own. Besides the reasons the verdict says what was verified (targets, platforms,
versions, seeds, known issues applied) and what was not.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from rxverify.errors import UserError
from rxverify.gate.criteria import Criteria, KnownIssue
from rxverify.gate.inputs import Evidence, InputFile, RunInputs, read_evidence
from rxverify.gate.links import ReportLinks
from rxverify.report.categories import OLD_NEW_DIFFERENCE, SAFETY_REFUSAL, classify
from rxverify.report.evidence import COMPLETE, IN_PROGRESS, INTERRUPTED, results_digest
from rxverify.report.results import TestResult
from rxverify.safety.identity import mask, mask_identities
from rxverify.safety.ledger import UNKNOWN, LedgerRecord
from rxverify.safety.redaction import redact_text

EVIDENCE = "evidence"
UNKNOWN_WRITES = "writes of unknown outcome"
FAILURES = "failed tests"
DIFFERENCES = "old/new differences"
COMPLETENESS = "completeness"
MINIMUM = "minimum tests per area"
SLOS = "SLOs"
VERIFICATION = "verification steps"
SAFETY = "safety refusals"
REFUSED_CASES = "refused generated cases"
VERDICTS = ("passed", "failed")  # a test that came to a verdict; skipped and broken ones verified nothing
MESSAGE_LIMIT = 300  # characters of a failure message in a reason; the report has the rest
SHOWN_IDS = 10  # test ids named in one reason; the count says how many more
_EXCEPTION_PREFIX = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Group|Refused|Failure|Failures)\w*: ")


@dataclass(frozen=True)
class Reason:
    """One unmet criterion: which, what exactly, and where to look."""

    criterion: str
    text: str
    link: str | None = None  # relative to the reports folder
    ref: str | None = None  # the test's historyId, the SLO's name or the file, when there is no link

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
    """GO or NO-GO with every reason; what was verified and what not; notes; the rollback checklist."""

    criteria: Criteria
    release_run: str = ""
    reasons: list[Reason] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tests: dict[str, dict[str, int]] = field(default_factory=dict)  # epic -> status -> count
    inputs: list[InputFile] = field(default_factory=list)
    verified: list[dict[str, Any]] = field(default_factory=list)  # one entry per run
    not_verified: list[str] = field(default_factory=list)
    known_issues_applied: list[str] = field(default_factory=list)
    stale_known_issues: list[str] = field(default_factory=list)
    production: bool = False
    rollback: dict[str, list[RollbackWrite]] | None = None  # masked patient -> writes
    report: str | None = None
    # the service window rehearsals of the release run: each one's decision record, as the board reads it
    rehearsals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def go(self) -> bool:
        """GO only when no criterion is unmet."""
        return not self.reasons


def shown(text: str) -> str:
    """Text safe to print: secrets redacted, identities masked."""
    return mask_identities(redact_text(text))


def _clip(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def summary_of(message: str) -> str:
    """A failure message in one line: its first line without the exception's class, and the failures it lists."""
    first, listed = failures_of(message)
    return shown(_clip(first + (": " + "; ".join(listed) if listed else "")))


def failures_of(message: str) -> tuple[str, list[str]]:
    """The message's first line (without the exception's class) and each failure it lists ("- ..." unindented)."""
    lines = [line.rstrip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "(no message)", []
    return _EXCEPTION_PREFIX.sub("", lines[0].strip()), [line[2:] for line in lines[1:] if line.startswith("- ")]


def test_id(result: TestResult) -> str:
    """The id a run's manifest lists a result under: pytest's node id (label test_id), else the full name."""
    return result.label("test_id") or result.full_name


def _few(ids: list[str]) -> str:
    more = len(ids) - SHOWN_IDS
    return ", ".join(ids[:SHOWN_IDS]) + (f" and {more} more" if more > 0 else "")


# ---- the runs themselves -------------------------------------------------------------------------


def _runs(verdict: Verdict, evidence: Evidence) -> None:
    """A run that did not end complete is a reason; so is a summary that is not its run's."""
    for run in evidence.runs:
        m = run.manifest
        where = str(m.path)
        if m.status == IN_PROGRESS:
            verdict.reasons.append(
                Reason(
                    EVIDENCE,
                    f"the {m.suite} run {m.run} is incomplete: in progress since "
                    f"{m.started.isoformat(timespec='seconds')} (killed, or still running): its evidence is "
                    "partial",
                    ref=where,
                )
            )
        elif m.status == INTERRUPTED:
            verdict.reasons.append(
                Reason(
                    EVIDENCE,
                    f"the {m.suite} run {m.run} was interrupted ({m.interruption or 'stopped'}) before "
                    "its end: its evidence is partial",
                    ref=where,
                )
            )
        elif m.status != COMPLETE:
            verdict.reasons.append(
                Reason(
                    EVIDENCE, f"the {m.suite} run {m.run} failed: {shown(m.error or 'no reason recorded')}", ref=where
                )
            )
        if m.selection.get("faults"):
            verdict.reasons.append(
                Reason(
                    EVIDENCE,
                    f"the {m.suite} run {m.run} ran against seeded faults ({', '.join(m.selection['faults'])}): "
                    "a suite-power run, not evidence of the release",
                    ref=where,
                )
            )
        if m.status == COMPLETE and not run.results_found:
            verdict.reasons.append(
                Reason(
                    EVIDENCE, f"the {m.suite} run {m.run} wrote no Allure results ({m.results} is missing)", ref=where
                )
            )
        if m.suite == "load":
            _load_evidence(verdict, run)
        if m.suite == "verification":
            summary = run.verification
            if summary is None and m.status == COMPLETE:
                verdict.reasons.append(Reason(EVIDENCE, f"the verification run {m.run} wrote no summary", ref=where))
            elif summary is not None and summary.run != m.run:
                verdict.reasons.append(
                    Reason(
                        EVIDENCE,
                        f"stale summary: {summary.path} is of run {summary.run or '(none named)'}, not of "
                        f"the verification run {m.run} in whose folder it lies",
                        ref=str(summary.path),
                    )
                )


def _rehearsals(verdict: Verdict, evidence: Evidence, reports: Path) -> None:
    """Each rehearsal's decision record, shown; a complete rehearsal without its own record is a reason."""
    for run in evidence.of("rehearse"):
        m, record = run.manifest, run.rehearsal
        if record is None:
            if m.status == COMPLETE:
                verdict.reasons.append(
                    Reason(EVIDENCE, f"the rehearsal run {m.run} left no decision record", ref=str(m.path))
                )
            continue
        if record.run != m.run:
            verdict.reasons.append(
                Reason(
                    EVIDENCE,
                    f"stale decision record: {record.path} is of run {record.run or '(none named)'}, not of the "
                    f"rehearsal run {m.run} (a later rehearsal wrote over it)",
                    ref=str(record.path),
                )
            )
            continue
        page = record.path.with_name("index.html")
        verdict.rehearsals.append(
            {
                "run": m.run,
                "plan": record.plan,
                "verdict": record.verdict,
                "ending": record.ending,
                "decisions": [{**d, "why": shown(d["why"])} for d in record.decisions],
                "phases": [{**p, "detail": shown(p["detail"])} for p in record.phases],
                "lostWrites": record.lost_writes,
                "failedChecks": [shown(c) for c in record.failed_checks],
                "record": os.path.relpath(record.path, reports),
                "page": os.path.relpath(page, reports) if page.is_file() else None,
            }
        )


def _load_evidence(verdict: Verdict, run: RunInputs) -> None:
    m, summary = run.manifest, run.load
    if summary is None:
        if m.status == COMPLETE:
            verdict.reasons.append(Reason(EVIDENCE, f"the load run {m.run} wrote no summary", ref=str(m.path)))
        return
    if summary.run != m.run:
        verdict.reasons.append(
            Reason(
                EVIDENCE,
                f"stale summary: {summary.path} is of run {summary.run or '(none named)'}, not of the "
                f"load run {m.run} in whose folder it lies",
                ref=str(summary.path),
            )
        )
    elif summary.interrupted and m.status != INTERRUPTED:
        verdict.reasons.append(
            Reason(
                EVIDENCE,
                f"the load summary {summary.path} says its run was interrupted: its SLO verdicts cover "
                "only part of the profile",
                ref=str(summary.path),
            )
        )


def _unknown_writes(verdict: Verdict, ledger: list[LedgerRecord]) -> None:
    for record in ledger:
        if record.outcome == UNKNOWN:
            verdict.reasons.append(
                Reason(
                    UNKNOWN_WRITES,
                    f"{record.method} {mask_identities(record.path)} ({record.operation or '?'}) of run {record.run} "
                    f"at {record.time}: {UNKNOWN}; check on the platform what it did before deciding",
                    ref=f"ledger run {record.run} write {record.seq}",
                )
            )


# ---- results -------------------------------------------------------------------------------------


def _test_reasons(criterion: str, result: TestResult, links: ReportLinks, what: str) -> list[Reason]:
    """One reason per distinct failure the result's message lists (one, when it lists none)."""
    category = classify(result)
    about = f" [{category}]" if category else ""
    head = f"{what}{result.status} {result.severity} test {shown(result.title)}{about}"
    first, listed = failures_of(result.message)
    link = links.link(result)
    ref = None if link else f"historyId {result.history_id}"
    texts = [f"{head}: {shown(_clip(item))}" for item in listed] or [f"{head}: {shown(_clip(first))}"]
    return [Reason(criterion, text, link, ref) for text in texts]


def _count(results: list[TestResult]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {}
    for r in results:
        counts.setdefault(r.epic or "(no epic)", Counter())[r.status] += 1
    return {epic: dict(sorted(c.items())) for epic, c in sorted(counts.items())}


def _known(verdict: Verdict, issue: KnownIssue, what: str, used: set[str]) -> None:
    used.add(issue.id)
    text = f"known issue {issue.id} (owner {issue.owner}, until {issue.expires.isoformat()}): {what}: {issue.reason}"
    verdict.known_issues_applied.append(text)
    verdict.notes.append(f"ignored until {issue.expires.isoformat()}: {what} (known issue {issue.id})")


def _tests(verdict: Verdict, evidence: Evidence, links: ReportLinks, today: date, used: set[str]) -> None:
    c = verdict.criteria
    active = [k for k in c.known_issues if k.active(today)]
    for issue in c.known_issues:
        if not issue.active(today):
            verdict.notes.append(
                f"known issue {issue.id} ({issue.owner}) expired on {issue.expires.isoformat()}: "
                "its failures count again"
            )
    for run in evidence.runs:
        for result in run.results:
            if result.status not in c.blocking_statuses:
                continue
            known = next((k for k in active if k.covers_test(test_id(result), result.history_id)), None)
            if known is not None:
                _known(verdict, known, f"{result.status} test {shown(result.title)} of run {run.run}", used)
                continue
            category = classify(result)
            if category == SAFETY_REFUSAL:
                verdict.reasons += _test_reasons(SAFETY, result, links, "refusal: ")
            elif result.label("story") == c.difference_story or category == OLD_NEW_DIFFERENCE:
                accepted = next(
                    (e for e in c.difference_exceptions if e.covers(result.full_name, result.name, result.message)),
                    None,
                )
                if accepted is None:
                    verdict.reasons += _test_reasons(DIFFERENCES, result, links, "difference: ")
                else:
                    verdict.notes.append(f"accepted old/new difference in {shown(result.title)}: {accepted.reason}")
            else:
                verdict.reasons += _test_reasons(FAILURES, result, links, "")


# ---- completeness -------------------------------------------------------------------------------


def targeted_platforms(evidence: Evidence) -> set[str]:
    """The platforms the complete contract runs were asked to verify."""
    return {p for r in evidence.of("contract") if r.manifest.status == COMPLETE for p in r.manifest.platforms}


def _completeness(verdict: Verdict, evidence: Evidence, links: ReportLinks) -> None:
    c = verdict.criteria
    allowed = {s.test: s for s in c.allowed_skips}
    skipped_ids: set[str] = set()
    for run in evidence.runs:
        m = run.manifest
        ids = {test_id(r) for r in run.results}
        if m.status == COMPLETE:
            missing = [t for t in m.collected if t not in ids]
            if missing:
                verdict.reasons.append(
                    Reason(
                        COMPLETENESS,
                        f"the {m.suite} run {m.run} collected {len(missing)} tests that have no "
                        f"result: {_few(missing)}",
                        ref=str(m.path),
                    )
                )
        foreign = sorted(ids - set(m.collected))
        if foreign:
            verdict.reasons.append(
                Reason(
                    COMPLETENESS,
                    f"the {m.suite} run {m.run} holds {len(foreign)} results of tests it did not "
                    f"collect (not evidence of that run): {_few(foreign)}",
                    ref=str(m.results),
                )
            )
        if m.suite == "contract" and m.status == COMPLETE and c.whole_suite and not m.selection.get("wholeSuite"):
            verdict.reasons.append(
                Reason(
                    COMPLETENESS,
                    f"the contract run {m.run} ran a selection of the suite ({_selection(m.selection)}"
                    f"; {len(m.collected)} tests): the rest of the suite was not verified",
                    ref=str(m.path),
                )
            )
        for result in run.results:
            if result.status != "skipped":
                continue
            tid = test_id(result)
            skipped_ids.add(tid)
            if tid in allowed:
                verdict.notes.append(f"allowed skip: {tid}: {allowed[tid].reason}")
                continue
            link = links.link(result)
            verdict.reasons.append(
                Reason(
                    COMPLETENESS,
                    f"skipped test of area {result.epic or '(no epic)'!r}: {shown(result.title)}: "
                    f"{summary_of(result.message)}",
                    link,
                    None if link else tid,
                )
            )
    for tid in sorted(set(allowed) - skipped_ids):
        verdict.notes.append(f"stale allowed skip (no such skipped result): {tid}")
    _required_when_both(verdict, evidence)
    _minimum(verdict, evidence)


def _selection(selection: dict[str, Any]) -> str:
    parts = [f"{k} {selection[k]!r}" for k in ("keyword", "markers") if selection.get(k)]
    parts += [f"args {' '.join(selection.get('args') or [])}"]
    parts += [flag for flag in ("lastFailed", "exitFirst") if selection.get(flag)]
    return ", ".join(parts)


def _required_when_both(verdict: Verdict, evidence: Evidence) -> None:
    targeted = targeted_platforms(evidence)
    if not {"old", "new"} <= targeted:
        return
    results = [r for run in evidence.of("contract") if run.manifest.status == COMPLETE for r in run.results]
    for prefix in verdict.criteria.required_when_both_platforms:
        matching = [r for r in results if test_id(r).startswith(prefix)]
        if not any(r.status != "skipped" for r in matching):
            skipped = sum(r.status == "skipped" for r in matching)
            text = (
                f"required when both platforms are targeted: no test {prefix}… ran "
                f"({len(matching)} results, {skipped} skipped)"
            )
            verdict.reasons.append(Reason(COMPLETENESS, text))
            verdict.not_verified.append(f"tests {prefix}…: required when old and new are targeted, none ran")


def _minimum(verdict: Verdict, evidence: Evidence) -> None:
    c = verdict.criteria
    wanted = c.minimum_tests_in_production if verdict.production else c.minimum_tests
    ran = Counter(
        r.epic for run in evidence.runs if run.manifest.status == COMPLETE for r in run.results if r.status in VERDICTS
    )
    for area, least in sorted(wanted.items()):
        if ran[area] < least:
            verdict.reasons.append(
                Reason(
                    MINIMUM,
                    f"area {area!r}: {ran[area]} tests came to a verdict (passed or failed; not skipped or broken) "
                    f"in complete runs, at least {least} required",
                )
            )


# ---- SLOs, verification, safety ----------------------------------------------------------------------


def _slos(verdict: Verdict, evidence: Evidence, links: ReportLinks, today: date, used: set[str]) -> None:
    c = verdict.criteria
    loads = [r for r in evidence.of("load") if r.load is not None]
    if not loads and c.require_load_summary:
        verdict.reasons.append(
            Reason(SLOS, "no load run with a summary in this release run: the SLOs were not checked")
        )
        verdict.not_verified.append("the SLOs (no load run)")
        return
    for run in loads:
        summary = run.load
        assert summary is not None
        if not summary.slos and c.require_load_summary:
            verdict.reasons.append(
                Reason(SLOS, f"the load summary {summary.path} checked no SLO", ref=str(summary.path))
            )
        for slo in summary.slos:
            result = next((r for r in run.results if slo.name in (r.name, r.name.removeprefix("SLO "))), None)
            link = links.link(result) if result else None
            ref = None if link else f"{summary.path}: {slo.name}"
            if slo.measured is None:
                verdict.reasons.append(
                    Reason(
                        SLOS,
                        f"SLO {slo.name} was not measured (measured: null) in the load run {run.run}: "
                        "nothing shows it is met",
                        link,
                        ref,
                    )
                )
                verdict.not_verified.append(f"SLO {slo.name} (not measured)")
                continue
            if slo.passed:
                continue
            issue = next((k for k in c.known_issues if k.active(today) and k.covers_slo(slo.name)), None)
            if issue is not None:
                _known(verdict, issue, f"SLO {slo.name} breached ({slo.figures()})", used)
                continue
            verdict.reasons.append(Reason(SLOS, f"SLO {slo.name} breached: {slo.figures()}", link, ref))


def _verification(verdict: Verdict, evidence: Evidence, links: ReportLinks) -> None:
    summaries = [r for r in evidence.of("verification") if r.verification is not None]
    if not summaries and verdict.criteria.require_verification_summary:
        verdict.reasons.append(Reason(VERIFICATION, "no verification run with a summary: nothing was verified"))
        return
    for run in summaries:
        summary = run.verification
        assert summary is not None
        by_name = {r.full_name: r for r in run.results}
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


def _safety(verdict: Verdict, evidence: Evidence) -> None:
    c = verdict.criteria
    counted: list[tuple[str, str, Path, dict[str, int]]] = []  # suite, run, file, refusals
    for run in evidence.runs:
        m = run.manifest
        if run.record is not None:
            counted.append((m.suite, m.run, run.record.path, run.record.refused))
            for problem in run.record.egress_problems:  # a request around the guard is never acceptable
                reason = Reason(SAFETY, f"the {m.suite} run {m.run}: {problem}", ref=str(run.record.path))
                verdict.reasons.append(reason)
        elif run.load is not None and run.load.guard:
            refused = {k: v for k, v in run.load.guard.items() if k not in ("passed", "sent")}
            counted.append((m.suite, m.run, run.load.path, refused))
        elif c.require_run_records and m.suite != "verification" and m.status == COMPLETE:
            verdict.reasons.append(
                Reason(
                    SAFETY,
                    f"the {m.suite} run {m.run} recorded no guard counts: what the guard refused is not known",
                    ref=str(m.path),
                )
            )
    planned = [x for x in counted if x[0] not in c.fuzzing_suites]
    total = sum(sum(refused.values()) for *_, refused in planned)
    if total > c.max_refusals:
        for suite, run_id, path, refused in planned:
            if sum(refused.values()):
                why = ", ".join(f"{reason}: {n}" for reason, n in sorted(refused.items()) if n)
                verdict.reasons.append(
                    Reason(
                        SAFETY,
                        f"the {suite} run {run_id}: the guard refused {sum(refused.values())} requests "
                        f"({why}); at most {c.max_refusals} allowed in all",
                        ref=str(path),
                    )
                )


def _refused_cases(verdict: Verdict, evidence: Evidence) -> None:
    limit = verdict.criteria.max_refused_per_operation
    for run in evidence.runs:
        table: dict[str, dict[str, int]] = {}
        for source in (run.manifest.refused_cases, run.record.refused_cases if run.record else {}):
            for test, operations in source.items():
                for operation, n in operations.items():
                    table.setdefault(operation, {})[test] = max(n, table.get(operation, {}).get(test, 0))
        for operation, tests in sorted(table.items()):
            n = sum(tests.values())
            if n > limit:
                by = "; ".join(f"{t}: {k}" for t, k in sorted(tests.items()) if k)
                verdict.reasons.append(
                    Reason(
                        REFUSED_CASES,
                        f"{n} generated cases of {operation} were refused by the guard (not sent) in "
                        f"the {run.manifest.suite} run {run.run}, at most {limit} allowed: {by}",
                        ref=str(run.manifest.path),
                    )
                )


# ---- what was verified, and what not -----------------------------------------------------------------


def _verified(verdict: Verdict, evidence: Evidence) -> None:
    for run in evidence.runs:
        m = run.manifest
        statuses = Counter(r.status for r in run.results)
        verdict.verified.append(
            {
                "run": m.run,
                "suite": m.suite,
                "status": m.status,
                "started": m.started.isoformat(timespec="seconds"),
                "finished": m.finished.isoformat(timespec="seconds") if m.finished else None,
                "target": m.target,
                "environmentClass": m.environment_class,
                "embeddedReferencePlatforms": m.embedded,
                "platforms": list(m.platforms),
                "platformVersions": m.versions,
                "seeds": m.seeds,
                "commit": m.commit,
                "selection": _selection(m.selection) if m.suite == "contract" else "",
                "collected": len(m.collected),
                "results": dict(sorted(statuses.items())),
            }
        )
    c = verdict.criteria
    ran = Counter(r.epic for run in evidence.runs for r in run.results if r.status in VERDICTS)
    skipped = Counter(r.epic for run in evidence.runs for r in run.results if r.status == "skipped")
    broken = Counter(r.epic for run in evidence.runs for r in run.results if r.status == "broken")
    wanted = c.minimum_tests_in_production if verdict.production else c.minimum_tests
    for area, least in sorted(wanted.items()):
        if not ran[area]:
            verdict.not_verified.append(f"area {area!r}: no test ran")
        elif ran[area] < least:
            verdict.not_verified.append(f"area {area!r}: {ran[area]} tests ran, fewer than the {least} required")
    for area, n in sorted(skipped.items()):
        verdict.not_verified.append(f"area {area or '(no epic)'!r}: {n} tests skipped")
    for area, n in sorted(broken.items()):
        verdict.not_verified.append(f"area {area or '(no epic)'!r}: {n} tests broken (they verified nothing)")
    targeted = targeted_platforms(evidence)
    if evidence.of("contract"):
        for platform in ("old", "new"):
            if platform not in targeted:
                verdict.not_verified.append(f"the {platform} platform (no complete contract run targeted it)")
    else:
        verdict.not_verified.append("the contract suite (no contract run)")
    for run in evidence.runs:
        m = run.manifest
        missing = len(set(m.collected) - {test_id(r) for r in run.results})
        if m.status != COMPLETE:
            verdict.not_verified.append(f"the {m.suite} run {m.run}: {m.status}, its evidence partial")
        elif missing:
            verdict.not_verified.append(f"the {m.suite} run {m.run}: {missing} collected tests without a result")
    if any(m.manifest.embedded for m in evidence.runs):
        verdict.notes.append(
            "the platforms were the embedded reference platforms (stand-ins on loopback), not a real environment"
        )


def _check_known_issues(criteria: Criteria, evidence: Evidence) -> None:
    """A known issue may be ignored for at most known_issue_max_days after the run: a longer one is bad criteria."""
    if not evidence.runs:
        return
    run_date = min(r.manifest.started for r in evidence.runs).date()
    latest = run_date + timedelta(days=criteria.known_issue_max_days)
    for issue in criteria.known_issues:
        if issue.expires > latest:
            raise UserError(
                f"release criteria {criteria.path}: known issue {issue.id} expires {issue.expires.isoformat()}, more "
                f"than {criteria.known_issue_max_days} days after the run ({run_date.isoformat()}): at most "
                f"{latest.isoformat()}"
            )


def _rollback(evidence: Evidence) -> dict[str, list[RollbackWrite]]:
    production = {r.run for r in evidence.of("verification") if r.manifest.environment_class == "production"}
    groups: dict[str, list[RollbackWrite]] = {}
    for record in evidence.ledger:
        if record.run not in production:
            continue
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


def evaluate(
    reports: Path,
    criteria: Criteria,
    today: date | None = None,
    now: datetime | None = None,
    release_run: str | None = None,
) -> Verdict:
    """Apply `criteria` to the release run's evidence in `reports`; bad input raises UserError (exit 2, never a GO)."""
    now = now or datetime.now(UTC)
    today = today or now.date()
    evidence = read_evidence(reports, now, criteria.max_age_hours, release_run)
    _check_known_issues(criteria, evidence)
    digests = {r.run: results_digest(r.manifest.results) for r in evidence.runs}
    links = ReportLinks(reports, evidence.release_run, digests)
    verdict = Verdict(criteria, release_run=evidence.release_run, inputs=evidence.files)
    verdict.production = any(r.manifest.environment_class == "production" for r in evidence.of("verification"))
    verdict.report = links.categories()
    verdict.tests = _count([r for run in evidence.runs for r in run.results])
    used: set[str] = set()
    _runs(verdict, evidence)
    _rehearsals(verdict, evidence, reports)
    _unknown_writes(verdict, evidence.ledger)
    if links.stale is not None:
        verdict.reasons.append(
            Reason(
                EVIDENCE,
                f"the report {links.index} is stale: {links.stale}; run `rxverify report` again (no "
                "link leads into it)",
                ref=str(links.index),
            )
        )
    _tests(verdict, evidence, links, today, used)
    _completeness(verdict, evidence, links)
    _slos(verdict, evidence, links, today, used)
    _verification(verdict, evidence, links)
    _safety(verdict, evidence)
    _refused_cases(verdict, evidence)
    _verified(verdict, evidence)
    for issue in criteria.known_issues:
        if issue.id not in used and issue.active(today):
            verdict.stale_known_issues.append(
                f"known issue {issue.id} ({issue.names}, owner {issue.owner}) matches "
                "nothing in this release run: remove it from the criteria"
            )
    if verdict.production and not verdict.go:
        verdict.rollback = _rollback(evidence)
    return verdict
