"""The gate on crafted evidence: each criterion met and unmet, each way of fooling it a NO-GO or exit 2.

Every test starts from a release run that meets every criterion (a complete contract run of both
platforms and a complete load run, builders.passing_run) and breaks one thing.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from rxverify.cli import main
from rxverify.errors import UserError
from rxverify.gate.criteria import Criteria, DifferenceException, KnownIssue, load_criteria
from rxverify.gate.evaluate import (
    COMPLETENESS,
    DIFFERENCES,
    EVIDENCE,
    FAILURES,
    MINIMUM,
    REFUSED_CASES,
    SAFETY,
    SLOS,
    UNKNOWN_WRITES,
    VERIFICATION,
    Verdict,
    evaluate,
)
from rxverify.gate.inputs import sha256_of
from rxverify.report.evidence import INTERRUPTED, RELEASE_RUN_ENV, results_digest
from rxverify.safety.ledger import Ledger
from rxverify.safety.registry import Registry

from ..conftest import CONTRACTS
from ..report import builders as b

CRITERIA = CONTRACTS / "release-criteria.toml"
TODAY = datetime.now(UTC).date()


@pytest.fixture(autouse=True)
def _no_release_run_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RELEASE_RUN_ENV, raising=False)


@pytest.fixture
def criteria() -> Criteria:
    return load_criteria(CRITERIA)


@dataclasses.dataclass
class Evidence:
    reports: Path
    contract: b.Run
    load: b.Run


@pytest.fixture
def ev(tmp_path: Path) -> Iterator[Evidence]:
    """A release run that meets every criterion; each test breaks one thing."""
    contract, load = b.passing_run(tmp_path)
    yield Evidence(tmp_path, contract, load)


def verdict_of(reports: Path, criteria: Criteria, today: date = TODAY) -> Verdict:
    return evaluate(reports, criteria, today)


def criteria_of(verdict: Verdict) -> set[str]:
    return {r.criterion for r in verdict.reasons}


def texts(verdict: Verdict) -> str:
    return "\n".join(r.text for r in verdict.reasons)


def test_a_complete_passing_run_is_go(ev: Evidence, criteria: Criteria) -> None:
    verdict = verdict_of(ev.reports, criteria)
    assert verdict.go, verdict.reasons
    assert verdict.tests["load"] == {"passed": len(b.SLOS)}
    contract = next(v for v in verdict.verified if v["suite"] == "contract")
    assert contract["target"] == "local" and contract["embeddedReferencePlatforms"] is True
    assert contract["platforms"] == ["old", "new"] and contract["seeds"] == {"contract": 42}
    assert verdict.not_verified == []


# --- ways of fooling the gate the issue lists ---------------------------------------------------


def test_five_passing_results_and_one_passed_slo_are_no_go(tmp_path: Path, criteria: Criteria) -> None:
    contract = b.Run(tmp_path, "contract")
    for area in b.AREAS:
        if area != "load":
            contract.result(f"test_{area.replace(' ', '_')}_conforms", epic=area)
    contract.record()
    contract.finish()
    load = b.Run(tmp_path, "load", platforms=("new",))
    load.load_summary([b.slo("p95 HamtaAktuellaOrdinationer p95_ms <= 500")])
    load.finish()
    verdict = verdict_of(tmp_path, criteria)
    assert criteria_of(verdict) == {MINIMUM}
    least = criteria.minimum_tests["load"]
    assert "area 'load': 1 tests came to a verdict" in texts(verdict) and f"at least {least} required" in texts(verdict)
    assert any("fewer than the" in n for n in verdict.not_verified)


def test_the_comparison_and_the_security_tests_skipped_are_no_go(ev: Evidence, criteria: Criteria) -> None:
    for path in ev.contract.results.glob("*-result.json"):
        document = json.loads(path.read_text())
        epic = next(x["value"] for x in document["labels"] if x["name"] == "epic")
        if epic in ("old vs new", "security"):
            document["status"] = "skipped"
            document["statusDetails"] = {"message": "Skipped: the old/new comparison needs --platform both"}
            path.write_text(json.dumps(document))
    verdict = verdict_of(ev.reports, criteria)
    assert criteria_of(verdict) == {COMPLETENESS, MINIMUM}
    assert "required when both platforms are targeted: no test tests/contract/test_differential.py::… ran" in texts(
        verdict
    )
    assert "required when both platforms are targeted: no test tests/contract/test_security.py::… ran" in texts(verdict)
    assert "skipped test of area 'old vs new'" in texts(verdict)
    assert "area 'security': 44 tests skipped" in verdict.not_verified


def test_a_new_platform_only_run_whose_comparison_skipped_is_no_go(tmp_path: Path, criteria: Criteria) -> None:
    contract = b.contract_run(tmp_path, platforms=("new",))
    contract.result(
        "test_old_and_new_answer_alike_skipped",
        "skipped",
        epic="old vs new",
        message="Skipped: the old/new comparison needs --platform both",
    )
    contract.finish()
    b.load_run(tmp_path).finish()
    verdict = verdict_of(tmp_path, criteria)
    assert criteria_of(verdict) == {COMPLETENESS}
    assert "the old platform (no complete contract run targeted it)" in verdict.not_verified


def test_a_skip_the_criteria_name_with_a_reason_is_allowed(ev: Evidence, criteria: Criteria) -> None:
    skipped = ev.contract.result("test_monitoring", "skipped", epic="FHIR", message="no FHIR API here")
    test_id = json.loads(skipped.read_text())["labels"][-1]["value"]
    assert not verdict_of(ev.reports, criteria).go
    allowed = dataclasses.replace(criteria, allowed_skips=(b_skip(test_id),))
    verdict = verdict_of(ev.reports, allowed)
    assert verdict.go and any("allowed skip" in n for n in verdict.notes)


def b_skip(test_id: str) -> object:
    from rxverify.gate.criteria import AllowedSkip

    return AllowedSkip(test=test_id, reason="the FHIR API is the new platform's")


@pytest.mark.parametrize("severity", ["normal", "minor", "trivial", "critical", "blocker"])
def test_a_failed_test_of_any_severity_is_no_go(ev: Evidence, criteria: Criteria, severity: str) -> None:
    ev.contract.result(
        "test_lookup[GET /patienter/{personId}]",
        "failed",
        epic="patients",
        severity=severity,
        message=b.SCHEMATHESIS_FAILURE,
    )
    verdict = verdict_of(ev.reports, criteria)
    assert criteria_of(verdict) == {FAILURES}
    assert f"failed {severity} test test_lookup" in texts(verdict)


def test_each_failure_a_message_lists_is_a_reason_of_its_own(ev: Evidence, criteria: Criteria) -> None:
    ev.contract.result("test_metadata", "failed", epic="FHIR", message=b.SCHEMATHESIS_FAILURE)
    reasons = [r.text for r in verdict_of(ev.reports, criteria).reasons]
    assert len(reasons) == 2
    assert reasons[0].endswith("ST108 Response violates schema") and reasons[1].endswith(
        "ST100 Undocumented status code"
    )


def test_an_area_whose_only_test_is_broken_is_no_go(tmp_path: Path, criteria: Criteria) -> None:
    contract = b.contract_run(tmp_path)
    contract.result("test_patient_info", "broken", epic="patients", message=b.TEST_DEFECT)
    contract.finish()
    b.load_run(tmp_path).finish()
    verdict = verdict_of(
        tmp_path, dataclasses.replace(criteria, minimum_tests={**criteria.minimum_tests, "patients": 1})
    )
    assert criteria_of(verdict) == {FAILURES, MINIMUM}
    assert "broken normal test test_patient_info (platform=new) [test defect]: 'ordinationId'" in texts(verdict)


def test_500_refused_cases_are_no_go(ev: Evidence, criteria: Criteria) -> None:
    record = ev.contract.folder / "run-record.json"
    record.unlink()
    ev.contract.record(refused_cases={"tests/contract/test_legacy_conformance.py::x[new]": {"POST /ordinationer": 500}})
    verdict = verdict_of(ev.reports, criteria)
    assert criteria_of(verdict) == {REFUSED_CASES}
    assert "500 generated cases of POST /ordinationer were refused by the guard" in texts(verdict)
    ok = dataclasses.replace(criteria, max_refused_per_operation=500)
    assert verdict_of(ev.reports, ok).go


def test_refused_cases_in_the_manifest_count_too(ev: Evidence, criteria: Criteria) -> None:
    ev.contract.writer.update(refusedCases={"t": {"GET /patienter/{personId}": 1}})
    assert criteria_of(verdict_of(ev.reports, criteria)) == {REFUSED_CASES}


def test_an_slo_measured_null_is_no_go(ev: Evidence, criteria: Criteria) -> None:
    summary = ev.load.folder / "load" / "smoke-summary.json"
    document = json.loads(summary.read_text())
    document["slo"][0]["measured"] = None  # passed: true, as the load suite writes "nothing to measure"
    summary.write_text(json.dumps(document))
    verdict = verdict_of(ev.reports, criteria)
    assert criteria_of(verdict) == {SLOS}
    assert f"SLO {b.SLOS[0]} was not measured (measured: null)" in texts(verdict)


@pytest.mark.parametrize(
    ("named", "expires", "expected"),
    [
        ('test = "*"', "2099-01-01", "is a pattern"),
        ('test = "tests/contract/test_x.py::test_?"', "2027-01-01", "is a pattern"),
        ('history = "[abc]"', "2027-01-01", "is a pattern"),
        ('slo = "p99 *"', "2027-01-01", "is a pattern"),
    ],
)
def test_a_known_issue_with_a_pattern_is_bad_criteria(
    ev: Evidence, tmp_path: Path, capsys: pytest.CaptureFixture[str], named: str, expires: str, expected: str
) -> None:
    bad = tmp_path / "criteria.toml"
    issue = f'\n[[known_issues]]\nid = "RX-1"\n{named}\nowner = "qa"\nexpires = {expires}\nreason = "x"\n'
    bad.write_text(CRITERIA.read_text(encoding="utf-8") + issue, encoding="utf-8")
    code, err = _run_gate(ev.reports, capsys, "--criteria", str(bad))
    assert code == 2 and expected in err and err.count("\n") == 1


def test_a_known_issue_expiring_in_2099_over_a_failed_blocker_is_bad_criteria(ev: Evidence, criteria: Criteria) -> None:
    failed = ev.contract.result("test_cancel", "failed", severity="blocker", message=b.ASSERTION)
    test_id = json.loads(failed.read_text())["labels"][-1]["value"]
    issue = KnownIssue(id="RX-1", owner="qa", expires=date(2099, 1, 1), reason="later", test=test_id)
    with pytest.raises(UserError, match="expires 2099-01-01, more than 90 days after the run"):
        verdict_of(ev.reports, dataclasses.replace(criteria, known_issues=(issue,)))


def test_a_known_issue_names_one_test_exactly_and_is_ignored_until_it_expires(ev: Evidence, criteria: Criteria) -> None:
    failed = ev.contract.result("test_cancel[POST /makulera]", "failed", severity="blocker", message=b.ASSERTION)
    test_id = json.loads(failed.read_text())["labels"][-1]["value"]
    expires = TODAY + timedelta(days=10)
    issue = KnownIssue(id="RX-123", owner="Team Receptdepå", expires=expires, reason="fixed in 21.0.1", test=test_id)
    known = dataclasses.replace(criteria, known_issues=(issue,))
    before = verdict_of(ev.reports, known)
    assert before.go
    assert any("RX-123" in k and "Team Receptdepå" in k for k in before.known_issues_applied)
    assert criteria_of(verdict_of(ev.reports, known, today=expires)) == {FAILURES}
    other = dataclasses.replace(issue, test=test_id + "x")
    assert criteria_of(verdict_of(ev.reports, dataclasses.replace(criteria, known_issues=(other,)))) == {FAILURES}


def test_a_known_issue_can_name_a_history_id_or_an_slo(ev: Evidence, criteria: Criteria) -> None:
    failed = ev.contract.result("test_cancel", "failed", message=b.ASSERTION)
    history = json.loads(failed.read_text())["historyId"]
    summary = ev.load.folder / "load" / "smoke-summary.json"
    document = json.loads(summary.read_text())
    document["slo"][0].update(passed=False, measured=900.0)
    summary.write_text(json.dumps(document))
    until = TODAY + timedelta(days=30)
    issues = (
        KnownIssue(id="RX-1", owner="qa", expires=until, reason="r", history=history),
        KnownIssue(id="RX-2", owner="perf", expires=until, reason="index pending", slo=b.SLOS[0]),
    )
    assert verdict_of(ev.reports, dataclasses.replace(criteria, known_issues=issues)).go


def test_a_known_issue_that_matches_nothing_is_reported_stale(
    ev: Evidence, criteria: Criteria, capsys: pytest.CaptureFixture[str]
) -> None:
    issue = KnownIssue(id="RX-9", owner="qa", expires=TODAY + timedelta(days=5), reason="r", test="tests/x.py::gone")
    verdict = verdict_of(ev.reports, dataclasses.replace(criteria, known_issues=(issue,)))
    assert verdict.go and verdict.stale_known_issues and "RX-9" in verdict.stale_known_issues[0]


# --- evidence of other runs, other release runs, no run; old evidence: exit 2 ----------------------


def _run_gate(reports: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["gate", "--reports", str(reports), *extra])
    return code, capsys.readouterr().err


def _moved_to_release_run(manifest: Path, release_run: str) -> None:
    document = json.loads(manifest.read_text())
    document["releaseRun"] = release_run
    manifest.write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda e: _moved_to_release_run(e.load.writer.path, "release-other"), "is evidence of release run"),
        (lambda e: b.result(e.reports / "allure-results", "test_old"), "is evidence of no run of this release run"),
        (lambda e: (e.reports / "load").mkdir() or b.run_record(e.reports, "load"), "is evidence of no run"),
        (
            lambda e: (
                (e.reports / "load").mkdir() or (e.reports / "load" / "smoke-summary.json").write_text('{"slo": []}')
            ),
            "/load/smoke-summary.json is evidence of no run",
        ),
        (lambda e: b.run_record(e.reports, "contract"), "is evidence of no run of this release run"),
        (lambda e: (e.reports / "runs" / "contract-x").mkdir(), "is a run folder without a manifest"),
        (
            lambda e: e.contract.record().write_text(
                e.contract.record().read_text().replace(e.contract.run, e.load.run)
            ),
            "is of run",
        ),
    ],
)
def test_evidence_of_no_run_of_the_release_run_is_bad_input(
    ev: Evidence,
    capsys: pytest.CaptureFixture[str],
    damage: Callable[[Evidence], object],
    expected: str,
) -> None:
    (ev.reports / "gate.json").write_text('{"verdict": "GO"}')
    damage(ev)
    code, err = _run_gate(ev.reports, capsys, "--criteria", str(CRITERIA))
    assert code == 2, err
    assert expected in err and err.count("\n") == 1
    assert not (ev.reports / "gate.json").exists()  # an earlier verdict does not outlive bad input


def test_a_release_run_other_than_the_folders_is_bad_input(ev: Evidence, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run_gate(ev.reports, capsys, "--criteria", str(CRITERIA), "--release-run", "release-someday")
    assert code == 2 and "not the 'release-someday' to be judged" in err


def test_evidence_older_than_the_criteria_allow_is_bad_input(ev: Evidence, capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads(ev.load.writer.path.read_text())
    document["started"] = (datetime.now(UTC) - timedelta(hours=25)).isoformat()
    ev.load.writer.path.write_text(json.dumps(document))
    code, err = _run_gate(ev.reports, capsys, "--criteria", str(CRITERIA))
    assert code == 2 and "more than 24 hours ago: older than the criteria allow" in err


def test_an_empty_reports_folder_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run_gate(tmp_path, capsys, "--criteria", str(CRITERIA))
    assert code == 2 and err.startswith("rxverify: no release run in ") and err.count("\n") == 1


# --- one run, one body of evidence ------------------------------------------------------------------


def test_a_sigtermed_load_run_is_no_go_though_its_slos_passed(tmp_path: Path, criteria: Criteria) -> None:
    b.contract_run(tmp_path).finish()
    load = b.Run(tmp_path, "load", platforms=("new",))
    load.load_summary(interrupted=True)  # every SLO passed, as the runtime judged what ran
    load.finish(INTERRUPTED, interruption="SIGTERM")
    verdict = verdict_of(tmp_path, criteria)
    assert criteria_of(verdict) == {EVIDENCE, MINIMUM}  # an interrupted run's results count for no area
    assert f"the load run {load.run} was interrupted (SIGTERM) before its end" in texts(verdict)


def test_a_summary_saying_interrupted_in_a_complete_run_is_no_go(ev: Evidence, criteria: Criteria) -> None:
    ev.load.load_summary(interrupted=True, results=False)
    assert "says its run was interrupted" in texts(verdict_of(ev.reports, criteria))


def test_a_summary_of_another_run_is_stale(ev: Evidence, criteria: Criteria) -> None:
    ev.load.load_summary(run="load-20261101T000000.000000Z-1", results=False)
    verdict = verdict_of(ev.reports, criteria)
    assert criteria_of(verdict) == {EVIDENCE} and "stale summary:" in texts(verdict)


def test_a_killed_verify_is_no_go_naming_its_write_of_unknown_outcome(
    ev: Evidence, criteria: Criteria, registry: Registry
) -> None:
    earlier = b.Run(ev.reports, "verification", platforms=("new",))
    earlier.result("S1 SkapaOrdinationVard", epic="production verification", full_name="verification.release-21.0.S1")
    earlier.verification_summary([{"id": "S1", "status": "passed"}])
    earlier.finish()
    assert verdict_of(ev.reports, criteria).go
    killed = b.Run(ev.reports, "verification", platforms=("new",), collected=["verification.release-21.0.S1"])
    patient = registry.patients[0].id
    ledger = Ledger(ev.reports / "ledger", target="local", environment_class="local", run_id=killed.run)
    ledger.attempt("POST", "SkapaOrdinationVard", f"/legacy/patienter/{patient}/ordinationer", [patient])
    ledger.close()  # killed: the attempt has no outcome, the manifest stays in progress
    verdict = verdict_of(ev.reports, criteria)
    assert criteria_of(verdict) == {EVIDENCE, UNKNOWN_WRITES}
    assert f"the verification run {killed.run} is incomplete: in progress since" in texts(verdict)
    assert "(SkapaOrdinationVard)" in texts(verdict) and "unknown: may have reached the platform" in texts(verdict)
    assert patient not in texts(verdict)


def test_results_left_by_an_aborted_run_do_not_decide(tmp_path: Path, criteria: Criteria) -> None:
    aborted = b.contract_run(tmp_path)  # every result passed, but the run never ended
    b.load_run(tmp_path).finish()
    verdict = verdict_of(tmp_path, criteria)
    assert f"the contract run {aborted.run} is incomplete" in texts(verdict)
    assert "area 'prescriptions': 0 tests came to a verdict" in texts(verdict)


def test_two_runs_keep_their_results_apart_and_a_failure_of_either_counts(ev: Evidence, criteria: Criteria) -> None:
    second = b.contract_run(ev.reports)
    second.result("test_cancel", "failed", message=b.ASSERTION)
    second.finish()
    verdict = verdict_of(ev.reports, criteria)
    assert criteria_of(verdict) == {FAILURES}
    assert {v["run"] for v in verdict.verified} == {ev.contract.run, ev.load.run, second.run}


def test_a_result_the_run_did_not_collect_is_no_go(ev: Evidence, criteria: Criteria) -> None:
    ev.contract.result("test_planted", collect=False)
    assert "holds 1 results of tests it did not collect" in texts(verdict_of(ev.reports, criteria))


def test_a_collected_test_without_a_result_is_no_go(ev: Evidence, criteria: Criteria) -> None:
    ev.contract.collect("tests/contract/test_x.py::test_never_reported[new]")
    verdict = verdict_of(ev.reports, criteria)
    assert criteria_of(verdict) == {COMPLETENESS}
    assert "collected 1 tests that have no result: tests/contract/test_x.py::test_never_reported[new]" in texts(verdict)


def test_a_selection_of_the_suite_is_no_go_unless_the_criteria_accept_it(ev: Evidence, criteria: Criteria) -> None:
    ev.contract.writer.update(selection={"wholeSuite": False, "keyword": "metadata", "args": ["tests/contract"]})
    assert "ran a selection of the suite (keyword 'metadata'" in texts(verdict_of(ev.reports, criteria))
    assert verdict_of(ev.reports, dataclasses.replace(criteria, whole_suite=False)).go


def test_a_run_against_seeded_faults_is_no_go(ev: Evidence, criteria: Criteria) -> None:
    ev.contract.writer.update(selection={**ev.contract.writer.document["selection"], "faults": ["old-slow-aktuella"]})
    assert "ran against seeded faults (old-slow-aktuella)" in texts(verdict_of(ev.reports, criteria))


def test_a_run_that_failed_is_no_go(ev: Evidence, criteria: Criteria) -> None:
    broken = b.Run(ev.reports, "load", platforms=("new",))
    broken.finish("failed", error="target 'local' is unreachable at http://127.0.0.1:9")
    assert f"the load run {broken.run} failed: target 'local' is unreachable" in texts(verdict_of(ev.reports, criteria))


# --- the report and the links into it ---------------------------------------------------------------


def _report(reports: Path, release_run: str | None, digests: dict[str, str], case: dict[str, object]) -> None:
    payload = base64.b64encode(json.dumps(case).encode()).decode()
    output = reports / "allure-report"
    output.mkdir(exist_ok=True)
    (output / "index.html").write_text(f"<script>d('data/test-cases/{case['uid']}.json','{payload}')</script>")
    (output / "provenance.json").write_text(json.dumps({"releaseRun": release_run, "runs": digests}))


def test_reasons_link_into_a_report_of_these_results(ev: Evidence, criteria: Criteria) -> None:
    ev.contract.result(
        "test_create", "failed", severity="blocker", message=b.ASSERTION, full_name="tests.prescriptions.test_create"
    )
    case = {
        "uid": "4035e2860cd6b26d",
        "name": "test_create",
        "fullName": "tests.prescriptions.test_create",
        "parameters": [{"name": "platform", "value": "new"}],
    }
    release_run = json.loads((ev.reports / "release.json").read_text())["releaseRun"]
    digests = {r.run: results_digest(r.results) for r in (ev.contract, ev.load)}
    _report(ev.reports, release_run, digests, case)
    [reason] = verdict_of(ev.reports, criteria).reasons
    assert reason.link == "allure-report/index.html#testresult/4035e2860cd6b26d"


def test_a_report_older_than_its_results_is_no_go_and_never_linked(ev: Evidence, criteria: Criteria) -> None:
    case = {"uid": "4035e2860cd6b26d", "name": "test_create", "fullName": "tests.prescriptions.test_create"}
    release_run = json.loads((ev.reports / "release.json").read_text())["releaseRun"]
    digests = {r.run: results_digest(r.results) for r in (ev.contract, ev.load)}
    _report(ev.reports, release_run, digests, case)
    assert verdict_of(ev.reports, criteria).go
    ev.contract.result("test_create", "failed", message=b.ASSERTION, full_name="tests.prescriptions.test_create")
    verdict = verdict_of(ev.reports, criteria)
    assert criteria_of(verdict) == {EVIDENCE, FAILURES}
    assert "is stale: it was made before the results of" in texts(verdict) and "older than its results" in texts(
        verdict
    )
    assert all(r.link is None for r in verdict.reasons) and verdict.report is None


def test_a_report_without_provenance_is_stale(ev: Evidence, criteria: Criteria) -> None:
    _report(ev.reports, None, {}, {"uid": "1", "name": "x", "fullName": "x"})
    (ev.reports / "allure-report" / "provenance.json").unlink()
    assert "what the report was made of is not known" in texts(verdict_of(ev.reports, criteria))


# --- the other criteria ---------------------------------------------------------------------------


def test_an_old_new_difference_is_no_go(ev: Evidence, criteria: Criteria) -> None:
    ev.contract.result("test_history_same", "failed", epic="old vs new", story="differential", message=b.DIFFERENCE)
    verdict = verdict_of(ev.reports, criteria)
    assert criteria_of(verdict) == {DIFFERENCES}
    assert "sistaUttag differs" in texts(verdict) and "[old/new difference]" in texts(verdict)


def test_a_declared_exception_lets_a_difference_through(ev: Evidence, criteria: Criteria) -> None:
    ev.contract.result("test_history_same", "failed", epic="old vs new", story="differential", message=b.DIFFERENCE)
    accepted = DifferenceException(test="*history_same*", message=r"sistaUttag", reason="rounded to the day (RX-101)")
    verdict = verdict_of(ev.reports, dataclasses.replace(criteria, difference_exceptions=(accepted,)))
    assert verdict.go and any("rounded to the day (RX-101)" in n for n in verdict.notes)
    other = DifferenceException(test="*history_same*", message=r"giltigTom", reason="another field")
    assert not verdict_of(ev.reports, dataclasses.replace(criteria, difference_exceptions=(other,))).go


def test_a_breached_slo_is_no_go_with_its_figures(ev: Evidence, criteria: Criteria) -> None:
    summary = ev.load.folder / "load" / "smoke-summary.json"
    document = json.loads(summary.read_text())
    document["slo"][0].update(passed=False, measured=812.0)
    summary.write_text(json.dumps(document))
    [reason] = verdict_of(ev.reports, criteria).reasons
    assert reason.criterion == SLOS
    assert reason.text == f"SLO {b.SLOS[0]} breached: p95_ms, measured 812.0, limit 500.0"


def test_without_a_load_run_the_slos_are_unchecked(tmp_path: Path, criteria: Criteria) -> None:
    b.contract_run(tmp_path).finish()
    verdict = verdict_of(tmp_path, criteria)
    assert SLOS in criteria_of(verdict) and "the SLOs (no load run)" in verdict.not_verified


def test_a_failed_verification_step_is_no_go(ev: Evidence, criteria: Criteria) -> None:
    run = b.Run(ev.reports, "verification", platforms=("new",))
    for step, status in (("S1", "passed"), ("S2", "failed"), ("S3", "skipped")):
        run.result(
            f"{step} HamtaPatientInfo",
            status,
            epic="production verification",
            full_name=f"verification.release-21.0.{step}",
        )
    run.verification_summary(
        [
            {"id": "S1", "status": "passed"},
            {"id": "S2", "status": "failed", "message": "HamtaPatientInfo: received 500, the plan expects 200"},
            {"id": "S3", "status": "skipped"},
        ]
    )
    run.finish()
    verdict = verdict_of(ev.reports, criteria)
    assert VERIFICATION in criteria_of(verdict)
    assert "step S2 HamtaPatientInfo failed (blocking): HamtaPatientInfo: received 500" in texts(verdict)
    assert "1 steps not run after a blocking failure: S3" in texts(verdict)


def test_a_guard_refusal_of_planned_traffic_is_no_go(ev: Evidence, criteria: Criteria) -> None:
    summary = ev.load.folder / "load" / "smoke-summary.json"
    document = json.loads(summary.read_text())
    document["guard"] = {"passed": 200, "identity": 1}
    summary.write_text(json.dumps(document))
    [reason] = verdict_of(ev.reports, criteria).reasons
    assert reason.criterion == SAFETY and "refused 1 requests (identity: 1)" in reason.text


def test_a_refused_result_is_a_safety_reason(ev: Evidence, criteria: Criteria) -> None:
    ev.contract.result("S2 HamtaPatientInfo", "broken", message=b.GUARD_REFUSAL)
    verdict = verdict_of(ev.reports, criteria)
    assert criteria_of(verdict) == {SAFETY} and "[safety refusal]" in texts(verdict)


def test_a_contract_run_without_guard_counts_is_no_go(ev: Evidence, criteria: Criteria) -> None:
    (ev.contract.folder / "run-record.json").unlink()
    assert "recorded no guard counts" in texts(verdict_of(ev.reports, criteria))


# --- the command: gate.json and gate.html --------------------------------------------------------------


def test_gate_command_go_writes_every_input_with_its_sha256(ev: Evidence, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", "--reports", str(ev.reports), "--criteria", str(CRITERIA)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("GO: release 21.0: every release criterion met")
    assert "the embedded reference platforms (stand-ins on loopback)" in printed and "contract=42" in printed
    document = json.loads((ev.reports / "gate.json").read_text())
    assert document["verdict"] == "GO" and document["criteria"]["sha256"] == sha256_of(CRITERIA)
    inputs = {Path(i["path"]): i for i in document["inputs"]}
    manifest = inputs[ev.contract.writer.path]
    assert manifest["run"] == ev.contract.run and manifest["sha256"] == sha256_of(ev.contract.writer.path)
    results = [i for i in document["inputs"] if i["kind"] == "Allure result"]
    assert len(results) == sum(b.MINIMUMS.values()) and all(i["run"] for i in results)
    page = (ev.reports / "gate.html").read_text()
    assert "<h1 class='go'>GO</h1>" in page
    assert not re.search(r"<(script|link|img)\b", page) and "http" not in page  # self-contained


def test_gate_page_shows_what_was_not_verified_first_then_reasons_then_inputs(
    ev: Evidence, capsys: pytest.CaptureFixture[str]
) -> None:
    ev.contract.result("test_create", "failed", severity="critical", message=b.SCHEMATHESIS_FAILURE)
    ev.contract.result("test_skipped", "skipped", epic="FHIR", message="no FHIR API")
    assert main(["gate", "--reports", str(ev.reports), "--criteria", str(CRITERIA)]) == 1
    printed = capsys.readouterr().out
    assert printed.startswith("NO-GO: release 21.0: 3 reasons")
    page = (ev.reports / "gate.html").read_text()
    order = [page.index(h) for h in ("What was not verified", "What was verified", "Reasons", "Inputs")]
    assert order == sorted(order)
    assert "area &#x27;FHIR&#x27;: 1 tests skipped" in page
    assert "the embedded reference platforms" in page
    document = json.loads((ev.reports / "gate.json").read_text())
    assert {r["criterion"] for r in document["reasons"]} == {FAILURES, COMPLETENESS}
    assert document["notVerified"] and document["releaseRun"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t + "\n[[[broken", "is not valid TOML"),
        (lambda t: t.replace("max_refusals = 0", 'max_refusals = "none"'), "[safety] max_refusals has the wrong type"),
        (lambda t: t.replace("[slos]\n", "[slo]\n"), "[slos] is missing or not a table"),
        (lambda t: t.replace('"medication list" = 8', '"medication list" = -1'), "must be a whole number"),
        (
            lambda t: (
                t + '\n[[known_issues]]\nid = "RX-1"\ntest = "t"\nowner = ""\nexpires = 2027-01-01\nreason = "x"\n'
            ),
            "every known issue needs an owner",
        ),
        (
            lambda t: t + '\n[[known_issues]]\nid = "RX-1"\ntest = "t"\nowner = "qa"\nreason = "x"\n',
            "expires is missing",
        ),
        (
            lambda t: t + '\n[[known_issues]]\nid = "RX-1"\nowner = "qa"\nexpires = 2027-01-01\nreason = "x"\n',
            "needs exactly one of `test`",
        ),
        (
            lambda t: t.replace("exceptions = [", 'exceptions = [{ test = "*", message = "(", reason = "r" },'),
            "is not a regular expression",
        ),
        (
            lambda t: t.replace('blocking_statuses = ["failed", "broken"]', 'blocking_statuses = ["red"]'),
            "unknown Allure statuses: red",
        ),
        (
            lambda t: t.replace("[tests]\n", '[tests]\nblocking_severities = ["blocker"]\n'),
            "blocking_severities is no longer a criterion",
        ),
        (lambda t: t.replace("allowed = [", 'allowed = [{ test = "a*", reason = "r" },'), "names one test exactly"),
        (lambda t: t.replace("max_age_hours = 24", "max_age_hours = 0"), "max_age_hours more than 0"),
    ],
)
def test_malformed_criteria_are_bad_input(
    ev: Evidence, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Callable[[str], str], expected: str
) -> None:
    bad = tmp_path / "criteria.toml"
    bad.write_text(change(CRITERIA.read_text(encoding="utf-8")), encoding="utf-8")
    code, err = _run_gate(ev.reports, capsys, "--criteria", str(bad))
    assert code == 2
    assert expected in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("where", "content", "expected"),
    [
        ("load", "{not json", "is not valid JSON"),
        ("load", '{"slo": [{"slo": "p95"}]}', "needs a name ('slo', text) and 'passed'"),
        ("manifest", '{"run": "x"}', "is malformed"),
        ("manifest", "{torn", "is not valid JSON"),
        ("record", '{"guard": {}}', "is malformed"),
        ("result", "{torn", "cannot be read"),
    ],
)
def test_malformed_inputs_are_bad_input(
    ev: Evidence, capsys: pytest.CaptureFixture[str], where: str, content: str, expected: str
) -> None:
    path = {
        "load": ev.load.folder / "load" / "smoke-summary.json",
        "manifest": ev.load.writer.path,
        "record": ev.contract.folder / "run-record.json",
        "result": ev.contract.results / "x-result.json",
    }[where]
    path.write_text(content)
    code, err = _run_gate(ev.reports, capsys, "--criteria", str(CRITERIA))
    assert code == 2 and expected in err


def test_the_criteria_file_is_checked(criteria: Criteria) -> None:
    assert criteria.blocking_statuses == ("failed", "broken")
    assert set(criteria.minimum_tests) == set(b.AREAS)
    assert criteria.required_when_both_platforms == (
        "tests/contract/test_differential.py::",
        "tests/contract/test_security.py::",
    )
    with pytest.raises(UserError, match="cannot read release criteria"):
        load_criteria(Path("/nonexistent/criteria.toml"))


# --- a NO-GO in production verification prints the rollback checklist -----------------------------


def test_production_no_go_prints_the_rollback_checklist(
    tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    patient = registry.patients[0].id
    run = b.Run(tmp_path, "verification", platforms=("new",), environment_class="production")
    run.result("S1 SkapaOrdinationVard", epic="production verification", full_name="verification.release-21.0.S1")
    run.result(
        "S2 HamtaAktuellaOrdinationer",
        "failed",
        epic="production verification",
        severity="blocker",
        message="HamtaAktuellaOrdinationer: received 500, the plan expects 200",
        full_name="verification.release-21.0.S2",
    )
    run.verification_summary(
        [
            {"id": "S1", "status": "passed", "patient": patient[:2] + "********" + patient[-2:]},
            {"id": "S2", "status": "failed", "message": "received 500, the plan expects 200"},
        ]
    )
    run.record()
    ledger = Ledger(tmp_path / "ledger", target="production", environment_class="production", run_id=run.run)
    seq = ledger.attempt("POST", "SkapaOrdinationVard", f"/legacy/patienter/{patient}/ordinationer", [patient])
    ledger.outcome(
        seq,
        "POST",
        "SkapaOrdinationVard",
        f"/legacy/patienter/{patient}/ordinationer",
        [patient],
        201,
        {"ordinationId": "ORD-12345678"},
        "ok",
    )
    ledger.attempt("POST", "GodkannUttag", "/legacy/ordinationer/ORD-12345678/uttag", [])
    ledger.close()
    run.finish()
    code = main(["gate", "--reports", str(tmp_path), "--criteria", str(CRITERIA)])
    printed = capsys.readouterr().out
    assert code == 1
    assert "ROLLBACK CHECKLIST" in printed
    masked = patient[:2] + "*" * 8 + patient[-2:]
    assert f"patient {masked}: 2 writes" in printed
    assert "SkapaOrdinationVard  POST /legacy/patienter/" in printed and "ordinationId=ORD-12345678" in printed
    assert "GodkannUttag" in printed and "unknown: may have reached the platform" in printed
    assert patient not in printed  # identities masked
    assert json.loads((tmp_path / "gate.json").read_text())["rollback"][masked][0]["operation"] == "SkapaOrdinationVard"
    assert "Rollback checklist" in (tmp_path / "gate.html").read_text()


# --- the service window rehearsal's decision record ----------------------------------------------


THROUGH_FAILED = "through the gateway, the patients of the lost writes are served as old serves them: served otherwise"


def _rehearsal(reports: Path, *, record_of: str = "own", record: bool = True) -> b.Run:
    """A complete rehearsal run (a NO-GO whose rollback was not verified) and, unless not, its decision record."""
    run = b.Run(reports, "rehearse", platforms=("old", "new", "gateway"))
    run.result("window: post-rollback checks on old", "failed", epic="service window", severity="blocker",
               message=f"rollback NOT verified: {THROUGH_FAILED}")
    if record:
        folder = reports / "rehearsal"
        folder.mkdir(parents=True, exist_ok=True)
        document = {
            "run": run.run if record_of == "own" else record_of, "plan": "release-21.0-production-verification",
            "release": "21.0", "verdict": "NO-GO", "ending": "rollback unverified",
            "timeline": [{"phase": "reconcile", "start": "", "end": "", "outcome": "passed", "detail": "0 differences"},
                         {"phase": "post-rollback checks on old", "start": "", "end": "", "outcome": "failed",
                          "detail": "rollback NOT verified"}],
            "decisions": [{"id": "D1", "after": "reconcile", "rule": "no difference", "decision": "GO",
                           "why": "0 differences", "time": ""},
                          {"id": "D2", "after": "verify", "rule": "every blocking step passed", "decision": "NO-GO",
                           "why": "first blocking failure S12", "time": ""}],
            "participants": {}, "lostWrites": [{"patients": ["19********12"], "operation": "SkapaOrdinationVard"}],
            "postRollbackChecks": [{"check": "the gateway routes to old", "passed": True, "detail": "route old"},
                                   {"check": THROUGH_FAILED.split(": ")[0], "passed": False,
                                    "detail": "served otherwise"}],
        }
        (folder / "decision.json").write_text(json.dumps(document), encoding="utf-8")
        (folder / "index.html").write_text("<!doctype html><title>Window NO-GO</title>", encoding="utf-8")
    return run.finish(summary="../../rehearsal/decision.json")


def test_the_gate_shows_the_rehearsals_decision_record(ev: Evidence, capsys: pytest.CaptureFixture[str]) -> None:
    run = _rehearsal(ev.reports)
    assert main(["gate", "--reports", str(ev.reports)]) == 1  # its failed phase is a failed blocker
    printed = capsys.readouterr().out
    assert f"service window rehearsal {run.run} (release-21.0-production-verification): NO-GO, rollback unverified" \
        in printed
    assert "  decision D2 after verify: NO-GO (first blocking failure S12)" in printed
    assert "  writes lost by the rollback: 1" in printed and f"post-rollback check FAILED: {THROUGH_FAILED}" in printed
    assert f"-> {ev.reports / 'rehearsal' / 'index.html'}" in printed
    page = (ev.reports / "gate.html").read_text(encoding="utf-8")
    assert "Service window rehearsal: NO-GO, rollback unverified" in page
    assert "<a href='rehearsal/index.html'>the decision record</a>" in page and "<b>NO-GO</b>" in page
    document = json.loads((ev.reports / "gate.json").read_text(encoding="utf-8"))
    (window,) = document["rehearsals"]
    assert window["run"] == run.run and window["ending"] == "rollback unverified" and window["lostWrites"] == 1
    assert any(i["kind"] == "decision record" for i in document["inputs"])


def test_a_decision_record_another_rehearsal_wrote_is_stale(ev: Evidence, criteria: Criteria) -> None:
    _rehearsal(ev.reports, record_of="rehearse-20261101T000000.000000Z-1")
    verdict = verdict_of(ev.reports, criteria)
    assert "stale decision record:" in texts(verdict) and verdict.rehearsals == []


def test_a_complete_rehearsal_without_its_decision_record_is_no_go(ev: Evidence, criteria: Criteria) -> None:
    run = _rehearsal(ev.reports, record=False)
    assert f"the rehearsal run {run.run} left no decision record" in texts(verdict_of(ev.reports, criteria))
