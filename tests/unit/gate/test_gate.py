"""The gate: each release criterion met and unmet, the verdict and its reasons, bad input, the rollback checklist."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from rxverify.cli import main
from rxverify.errors import UserError
from rxverify.gate.criteria import Criteria, DifferenceException, KnownIssue, load_criteria
from rxverify.gate.evaluate import BLOCKING, DIFFERENCES, MINIMUM, SAFETY, SLOS, VERIFICATION, Verdict, evaluate
from rxverify.safety.ledger import Ledger
from rxverify.safety.registry import Registry

from ..conftest import CONTRACTS
from ..report import builders as b

CRITERIA = CONTRACTS / "release-criteria.toml"
TODAY = date(2026, 11, 25)


@pytest.fixture
def criteria() -> Criteria:
    return load_criteria(CRITERIA)


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    """A complete passing run; each test breaks one criterion."""
    b.passing_run(tmp_path)
    return tmp_path


def verdict_of(reports: Path, criteria: Criteria, today: date = TODAY) -> Verdict:
    return evaluate(reports, reports / "allure-results", criteria, today)


def criteria_of(verdict: Verdict) -> set[str]:
    return {r.criterion for r in verdict.reasons}


def test_a_complete_passing_run_is_go(reports: Path, criteria: Criteria) -> None:
    verdict = verdict_of(reports, criteria)
    assert verdict.go, verdict.reasons
    assert verdict.tests["load"] == {"passed": 1}


# --- no failed or broken test of severity blocker or critical ---------------------------------


@pytest.mark.parametrize(
    ("severity", "status", "go"),
    [
        ("blocker", "failed", False),
        ("critical", "broken", False),
        ("critical", "failed", False),
        ("normal", "failed", True),
        ("minor", "broken", True),
        ("blocker", "skipped", True),
    ],
)
def test_blocking_severities_fail_the_gate(
    reports: Path, criteria: Criteria, severity: str, status: str, go: bool
) -> None:
    b.result(
        reports / "allure-results",
        "test_withdrawal[POST /uttag]",
        status,
        severity=severity,
        epic="dispensing",
        message=b.SCHEMATHESIS_FAILURE,
    )
    verdict = verdict_of(reports, criteria)
    assert verdict.go is go
    if not go:
        [reason] = verdict.reasons
        assert reason.criterion == BLOCKING
        assert f"{status} {severity} test test_withdrawal[POST /uttag]" in reason.text
        assert ("[contract violation]" if status == "failed" else "[test defect]") in reason.text
        assert "Response violates schema; ST100 Undocumented status code" in reason.text
        assert reason.ref and reason.ref.startswith("historyId ")  # no report generated: the historyId


def test_a_rerun_that_passed_replaces_the_failure(reports: Path, criteria: Criteria) -> None:
    results = reports / "allure-results"
    b.result(results, "test_flaky", "failed", severity="critical", message=b.ASSERTION)
    later = b.result(results, "test_flaky", "passed", severity="critical")
    document = json.loads(later.read_text())
    document["start"], document["stop"] = document["start"] + 1000, document["stop"] + 1000
    later.write_text(json.dumps(document))
    assert verdict_of(reports, criteria).go


# --- zero old/new differences outside declared exceptions -------------------------------------


def test_an_old_new_difference_is_no_go(reports: Path, criteria: Criteria) -> None:
    b.result(reports / "allure-results", "test_history_same", "failed", story="differential", message=b.DIFFERENCE)
    verdict = verdict_of(reports, criteria)
    assert criteria_of(verdict) == {DIFFERENCES}
    assert "sistaUttag differs" in verdict.reasons[0].text
    assert "[old/new difference]" in verdict.reasons[0].text


def test_a_difference_found_by_its_category_alone_counts(reports: Path, criteria: Criteria) -> None:
    b.result(reports / "allure-results", "test_history_same", "failed", message=b.DIFFERENCE)
    assert criteria_of(verdict_of(reports, criteria)) == {DIFFERENCES}


def test_a_declared_exception_lets_a_difference_through(reports: Path, criteria: Criteria) -> None:
    b.result(reports / "allure-results", "test_history_same", "failed", story="differential", message=b.DIFFERENCE)
    accepted = DifferenceException(test="*history_same*", message=r"sistaUttag", reason="rounded to the day (RX-101)")
    verdict = verdict_of(reports, dataclasses.replace(criteria, difference_exceptions=(accepted,)))
    assert verdict.go
    assert any("rounded to the day (RX-101)" in n for n in verdict.notes)
    other = DifferenceException(test="*history_same*", message=r"giltigTom", reason="another field")
    assert not verdict_of(reports, dataclasses.replace(criteria, difference_exceptions=(other,))).go


# --- every SLO met ------------------------------------------------------------------------------


def test_a_breached_slo_is_no_go_with_its_figures(reports: Path, criteria: Criteria) -> None:
    b.load_summary(
        reports,
        [
            {
                "slo": "p95 HamtaAktuellaOrdinationer",
                "metric": "p95_ms",
                "measured": 812.0,
                "limit": 500.0,
                "passed": False,
            },
            {"slo": "failure ratio", "metric": "failure_ratio", "measured": 0.0, "limit": 0.01, "passed": True},
        ],
    )
    verdict = verdict_of(reports, criteria)
    [reason] = verdict.reasons
    assert reason.criterion == SLOS
    assert reason.text == "SLO p95 HamtaAktuellaOrdinationer breached: p95_ms, measured 812.0, limit 500.0"


def test_without_a_load_summary_the_slos_are_unchecked(reports: Path, criteria: Criteria) -> None:
    (reports / "load" / "smoke-summary.json").unlink()
    assert criteria_of(verdict_of(reports, criteria)) == {SLOS}
    assert verdict_of(reports, dataclasses.replace(criteria, require_load_summary=False)).go


def test_a_load_summary_without_slos_is_no_go(reports: Path, criteria: Criteria) -> None:
    b.load_summary(reports, [])
    assert criteria_of(verdict_of(reports, criteria)) == {SLOS}


# --- every verification step passed -----------------------------------------------------------


def test_a_failed_verification_step_is_no_go(reports: Path, criteria: Criteria) -> None:
    b.verification_summary(
        reports,
        [
            {"id": "S1", "status": "passed"},
            {"id": "S2", "status": "failed", "message": "HamtaPatientInfo: received 500, the plan expects 200"},
            {"id": "S3", "status": "skipped"},
        ],
    )
    verdict = verdict_of(reports, criteria)
    assert criteria_of(verdict) == {VERIFICATION}
    texts = [r.text for r in verdict.reasons]
    assert "step S2 HamtaPatientInfo failed (blocking): HamtaPatientInfo: received 500, the plan expects 200" in texts
    assert "1 steps not run after a blocking failure: S3" in texts


def test_passed_verification_steps_are_go(reports: Path, criteria: Criteria) -> None:
    b.verification_summary(reports, [{"id": "S1", "status": "passed"}, {"id": "S2", "status": "passed"}])
    assert verdict_of(reports, criteria).go


def test_a_required_verification_that_did_not_run_is_no_go(reports: Path, criteria: Criteria) -> None:
    assert criteria_of(verdict_of(reports, dataclasses.replace(criteria, require_verification_summary=True))) == {
        VERIFICATION
    }


# --- no safety refusal ----------------------------------------------------------------------------


def test_a_guard_refusal_in_a_run_record_is_no_go(reports: Path, criteria: Criteria) -> None:
    b.run_record(reports, "load", refused={"identity": 2})
    verdict = verdict_of(reports, criteria)
    [reason] = verdict.reasons
    assert reason.criterion == SAFETY
    assert "the load run" in reason.text and "refused 2 requests (identity: 2)" in reason.text


def test_a_guard_refusal_in_a_load_summary_is_no_go(reports: Path, criteria: Criteria) -> None:
    b.load_summary(reports, guard={"passed": 200, "identity": 1})
    [reason] = verdict_of(reports, criteria).reasons
    assert reason.criterion == SAFETY and "smoke-summary" in reason.text and "(identity: 1)" in reason.text


def test_a_refused_result_is_no_go(reports: Path, criteria: Criteria) -> None:
    b.result(reports / "allure-results", "S2 HamtaPatientInfo", "broken", message=b.GUARD_REFUSAL)
    verdict = verdict_of(reports, criteria)
    assert criteria_of(verdict) == {SAFETY}
    assert "[safety refusal]" in verdict.reasons[0].text


def test_without_run_records_refusals_are_unknown(reports: Path, criteria: Criteria) -> None:
    for path in (reports / "runs").iterdir():
        path.unlink()
    assert criteria_of(verdict_of(reports, criteria)) == {SAFETY}


# --- minimum numbers of tests per area ----------------------------------------------------------


def test_an_empty_run_is_not_go(tmp_path: Path, criteria: Criteria) -> None:
    (tmp_path / "allure-results").mkdir()
    b.load_summary(tmp_path)
    b.run_record(tmp_path)
    verdict = verdict_of(tmp_path, criteria)
    assert criteria_of(verdict) == {MINIMUM}
    assert len(verdict.reasons) == len(b.AREAS)


def test_skipped_tests_do_not_count(reports: Path, criteria: Criteria) -> None:
    results = reports / "allure-results"
    for path in results.glob("*-result.json"):
        document = json.loads(path.read_text())
        if ("epic", "load") in {(x["name"], x["value"]) for x in document["labels"]}:
            document["status"] = "skipped"
            path.write_text(json.dumps(document))
    [reason] = verdict_of(reports, criteria).reasons
    assert reason.text == "area 'load': 0 tests ran (not skipped), at least 1 required"


# --- known issues: ignored until they expire ------------------------------------------------------


def test_a_known_issue_is_ignored_until_it_expires(reports: Path, criteria: Criteria) -> None:
    b.result(
        reports / "allure-results", "test_cancel[POST /makulera]", "failed", severity="blocker", message=b.ASSERTION
    )
    issue = KnownIssue(
        id="RX-123", owner="Team Receptdepå", expires=date(2026, 12, 1), reason="fixed in 21.0.1", test="*test_cancel*"
    )
    known = dataclasses.replace(criteria, known_issues=(issue,))
    before = verdict_of(reports, known, today=date(2026, 11, 30))
    assert before.go
    assert any("RX-123" in n and "Team Receptdepå" in n for n in before.notes)
    after = verdict_of(reports, known, today=date(2026, 12, 1))
    assert criteria_of(after) == {BLOCKING}
    assert any("expired on 2026-12-01" in n for n in after.notes)


def test_a_known_issue_can_name_an_slo(reports: Path, criteria: Criteria) -> None:
    b.load_summary(reports, [{"name": "p99 GodkannUttag", "measured": 2100, "limit": 1500, "passed": False}])
    issue = KnownIssue(id="RX-7", owner="perf", expires=date(2027, 1, 1), reason="index pending", slo="p99 *")
    assert verdict_of(reports, dataclasses.replace(criteria, known_issues=(issue,))).go


# --- the command: prints, writes gate.json and gate.html, exit codes -------------------------------


def test_gate_command_go(reports: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", "--reports", str(reports), "--criteria", str(CRITERIA), "--today", "2026-11-25"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("GO: release 21.0: every release criterion met (5 tests;")
    assert json.loads((reports / "gate.json").read_text())["verdict"] == "GO"
    page = (reports / "gate.html").read_text()
    assert "<h1 class='go'>GO</h1>" in page
    assert not re.search(r"<(script|link|img)\b", page) and "http" not in page  # self-contained


def test_gate_command_no_go_names_every_reason(reports: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b.result(
        reports / "allure-results",
        "test_create[POST /ordinationer]",
        "failed",
        severity="critical",
        message=b.SCHEMATHESIS_FAILURE,
    )
    b.load_summary(reports, [{"name": "p95 SkapaOrdinationVard", "measured": 900, "limit": 800, "passed": False}])
    assert main(["gate", "--reports", str(reports), "--criteria", str(CRITERIA)]) == 1
    printed = capsys.readouterr().out
    assert printed.startswith("NO-GO: release 21.0: 2 reasons")
    assert "test_create[POST /ordinationer]" in printed and "SLO p95 SkapaOrdinationVard breached" in printed
    document = json.loads((reports / "gate.json").read_text())
    assert document["verdict"] == "NO-GO"
    assert {r["criterion"] for r in document["reasons"]} == {BLOCKING, SLOS}
    assert "<h1 class='nogo'>NO-GO</h1>" in (reports / "gate.html").read_text()


def test_reasons_link_into_the_generated_report(reports: Path, criteria: Criteria) -> None:
    b.result(
        reports / "allure-results",
        "test_create",
        "failed",
        severity="blocker",
        message=b.ASSERTION,
        full_name="tests.prescriptions.test_create",
    )
    case = {
        "uid": "4035e2860cd6b26d",
        "name": "test_create",
        "fullName": "tests.prescriptions.test_create",
        "parameters": [{"name": "platform", "value": "new"}],
    }
    payload = base64.b64encode(json.dumps(case).encode()).decode()
    index = reports / "allure-report" / "index.html"
    index.parent.mkdir()
    index.write_text(f"<script>d('data/test-cases/4035e2860cd6b26d.json','{payload}')</script>")
    [reason] = verdict_of(reports, criteria).reasons
    assert reason.link == "allure-report/index.html#testresult/4035e2860cd6b26d"


# --- bad input: one line, exit 2, never a GO --------------------------------------------------------


def _run_gate(reports: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["gate", "--reports", str(reports), *extra])
    return code, capsys.readouterr().err


def test_missing_results_is_bad_input_and_removes_an_old_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gate.json").write_text('{"verdict": "GO"}')
    code, err = _run_gate(tmp_path, capsys, "--criteria", str(CRITERIA))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("rxverify: no Allure results at ")
    assert not (tmp_path / "gate.json").exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t + "\n[[[broken", "is not valid TOML"),
        (lambda t: t.replace("max_refusals = 0", 'max_refusals = "none"'), "[safety] max_refusals has the wrong type"),
        (lambda t: t.replace("[slos]\n", "[slo]\n"), "[slos] is missing or not a table"),
        (lambda t: t.replace('"medication list" = 1', '"medication list" = -1'), "must be a whole number"),
        (
            lambda t: (
                t + '\n[[known_issues]]\nid = "RX-1"\ntest = "*"\nowner = ""\nexpires = 2027-01-01\nreason = "x"\n'
            ),
            "every known issue needs an owner",
        ),
        (
            lambda t: t + '\n[[known_issues]]\nid = "RX-1"\ntest = "*"\nowner = "qa"\nreason = "x"\n',
            "expires is missing",
        ),
        (
            lambda t: t.replace("exceptions = [", 'exceptions = [{ test = "*", message = "(", reason = "r" },'),
            "is not a regular expression",
        ),
        (
            lambda t: t.replace('blocking_statuses = ["failed", "broken"]', 'blocking_statuses = ["red"]'),
            "unknown Allure statuses: red",
        ),
    ],
)
def test_malformed_criteria_are_bad_input(
    reports: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Callable[[str], str], expected: str
) -> None:
    bad = tmp_path / "criteria.toml"
    bad.write_text(change(CRITERIA.read_text(encoding="utf-8")), encoding="utf-8")
    code, err = _run_gate(reports, capsys, "--criteria", str(bad))
    assert code == 2
    assert expected in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("path", "content", "expected"),
    [
        ("load/smoke-summary.json", "{not json", "is not valid JSON"),
        ("load/smoke-summary.json", '{"slo": [{"slo": "p95"}]}', "needs a name ('slo', text) and 'passed'"),
        ("verification/summary.json", '{"steps": []}', "is malformed"),
        ("runs/contract-x.json", '{"guard": {}}', "is malformed"),
        ("allure-results/x-result.json", "{torn", "cannot be read"),
    ],
)
def test_malformed_inputs_are_bad_input(
    reports: Path, capsys: pytest.CaptureFixture[str], path: str, content: str, expected: str
) -> None:
    (reports / path).parent.mkdir(parents=True, exist_ok=True)
    (reports / path).write_text(content)
    code, err = _run_gate(reports, capsys, "--criteria", str(CRITERIA))
    assert code == 2 and expected in err


def test_the_criteria_file_is_checked(criteria: Criteria) -> None:
    assert criteria.blocking_severities == ("blocker", "critical")
    assert set(criteria.minimum_tests) == set(b.AREAS)
    with pytest.raises(UserError, match="cannot read release criteria"):
        load_criteria(Path("/nonexistent/criteria.toml"))


# --- a NO-GO in production verification prints the rollback checklist -----------------------------


def test_production_no_go_prints_the_rollback_checklist(
    tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    patient = registry.patients[0].id
    results = tmp_path / "allure-results"
    b.result(results, "S1 SkapaOrdinationVard", "passed", epic="production verification")
    b.result(
        results,
        "S2 HamtaAktuellaOrdinationer",
        "failed",
        epic="production verification",
        severity="blocker",
        message="HamtaAktuellaOrdinationer: received 500, the plan expects 200",
    )
    b.verification_summary(
        tmp_path,
        [
            {"id": "S1", "status": "passed", "patient": patient[:2] + "********" + patient[-2:]},
            {"id": "S2", "status": "failed", "message": "received 500, the plan expects 200"},
        ],
        environment_class="production",
    )
    b.run_record(tmp_path, "verify")
    ledger = Ledger(tmp_path / "ledger", target="production", environment_class="production")
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
