"""The window rehearsed on the embedded platforms: GO when clean, NO-GO with a verified rollback on a fault.

Short rehearsals (--patients 30: every test patient is seeded and migrated, the first 30 are
reconciled; any 26 consecutive patients of the registry hold every seeded scenario). Each starts
the old platform, the gateway and the new platform, about a minute on this machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rxverify.cli import main
from rxverify.safety.registry import Registry

PATIENTS = "30"


def rehearse(tmp_path: Path, *faults: str) -> tuple[int, dict[str, Any]]:
    argv = ["rehearse", "--plan", "release-21.0", "--patients", PATIENTS, "--reports", str(tmp_path)]
    for fault in faults:
        argv += ["--fault", fault]
    code = main(argv)
    return code, json.loads((tmp_path / "rehearsal" / "decision.json").read_text(encoding="utf-8"))


def phases(record: dict[str, Any]) -> dict[str, str]:
    return {row["phase"]: row["outcome"] for row in record["timeline"]}


def rehearse_run(tmp_path: Path) -> Path:
    """The rehearsal's own run folder (its verification through the gateway is a run of its own)."""
    (folder,) = [f for f in (tmp_path / "runs").iterdir() if f.name.startswith("rehearse-") and
                 not f.name.endswith("-verify")]
    return folder


def allure_phases(tmp_path: Path) -> set[str]:
    found = set()
    for path in (rehearse_run(tmp_path) / "allure-results").glob("*-result.json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc["name"].startswith("window: "):
            found.add(doc["name"].removeprefix("window: "))
    return found


def test_the_clean_window_ends_go(tmp_path: Path, capsys: pytest.CaptureFixture[str], registry: Registry) -> None:
    code, record = rehearse(tmp_path)
    out = capsys.readouterr().out
    assert code == 0 and record["verdict"] == "GO", out[-3000:]
    assert [d["decision"] for d in record["decisions"]] == ["GO", "GO"]
    assert phases(record) == dict.fromkeys(
        ["seed the old platform", "baseline snapshot", "open the window", "migrate", "cutover: gateway old -> new",
         "reconcile", "verify through the gateway"], "passed")
    assert allure_phases(tmp_path) == set(phases(record))
    assert record["participants"]["pharmacy"]["failed"] == 0 and record["participants"]["pharmacy"]["run"] == 9
    assert record["lostWrites"] == [] and out.rstrip().splitlines()[-1].startswith("rehearse: GO")
    # its phases and reconciliation are one run of the release run, which the gate reads (no loose results)
    assert not (tmp_path / "allure-results").exists()
    manifest = json.loads((rehearse_run(tmp_path) / "manifest.json").read_text(encoding="utf-8"))
    names = {json.loads(p.read_text(encoding="utf-8"))["fullName"]
             for p in (rehearse_run(tmp_path) / "allure-results").glob("*-result.json")}
    assert manifest["suite"] == "rehearse" and manifest["status"] == "complete"
    # the first PATIENTS in full, every other test patient by census
    assert set(manifest["collected"]) == names and len(names) == len(phases(record)) + len(registry.patients)
    assert (rehearse_run(tmp_path) / "run-record.json").is_file()
    capsys.readouterr()
    assert main(["gate", "--reports", str(tmp_path)]) == 1  # NO-GO for want of the suites, not bad input
    gate = capsys.readouterr().out
    assert "rehearse run rehearse-" in gate and "(complete)" in gate
    assert f"migration: {len(registry.patients)} passed" in gate
    # the decision record, on the gate's page too
    assert f"service window rehearsal {rehearse_run(tmp_path).name} (release-21.0-production-verification): GO" in gate
    assert "Service window rehearsal: GO" in (tmp_path / "gate.html").read_text(encoding="utf-8")


def test_a_migration_fault_is_no_go_at_the_reconciliation_and_rolled_back(tmp_path: Path) -> None:
    code, record = rehearse(tmp_path, "migration-parked-as-active")
    assert code == 1 and record["verdict"] == "NO-GO" and record["ending"] == "rollback verified"
    assert record["decisions"][0]["decision"] == "NO-GO" and len(record["decisions"]) == 1
    assert "verify through the gateway" not in phases(record)
    assert all(c["passed"] for c in record["postRollbackChecks"]) and len(record["postRollbackChecks"]) == 5
    result = json.loads((tmp_path / "reconcile" / "result.json").read_text(encoding="utf-8"))
    named = [d for p in result["patients"] for d in p["differences"]]
    assert named and all(d["element"].endswith("status") and (d["old"], d["new"]) == ("Parkerad", "Aktiv")
                         for d in named)


def test_a_transformer_fault_is_no_go_and_the_rollback_is_verified(tmp_path: Path) -> None:
    code, record = rehearse(tmp_path, "transformer-cancelled-as-completed")
    assert code == 1 and record["ending"] == "rollback verified"
    assert record["decisions"] == [record["decisions"][0]] and record["decisions"][0]["after"] == "reconcile"
    assert phases(record)["reconcile"] == "failed" and phases(record)["post-rollback checks on old"] == "passed"


def test_a_platform_fault_in_the_verification_loses_the_writes_the_ledger_lists(tmp_path: Path) -> None:
    code, record = rehearse(tmp_path, "core-cancelled-withdrawable")
    assert code == 1 and [d["decision"] for d in record["decisions"]] == ["GO", "NO-GO"]
    assert record["participants"]["pharmacy"]["failed"] == 1
    lost = record["lostWrites"]
    assert [w["operation"] for w in lost if w["patients"]] == [
        "SkapaOrdinationVard", "GodkannUttag", "RapporteraExpeditionLF", "UppdateraSamtycke", "SkapaOrdinationVard",
        "MakuleraOrdinationVard", "GodkannUttag"]  # the plan's steps are SOAP services (the ledger names them)
    assert {p for w in lost for p in w["patients"]} == {"19********12"}
    checks = {c["check"]: c for c in record["postRollbackChecks"]}
    held = checks["every prescription the ledger lists as lost is on new and not on old"]
    assert held["passed"] and held["detail"].startswith("2 prescriptions created on new in the window")
    assert checks["old serves exactly the baseline"]["passed"]
    assert checks[THROUGH]["passed"] and checks[THROUGH]["detail"].startswith("1 patients read through the gateway")


THROUGH = "through the gateway, the patients of the lost writes are served as old serves them"


def test_a_platform_failing_under_the_verifications_writes_is_no_go_and_its_rollback_verified(tmp_path: Path) -> None:
    # new leaks a store connection per write: the verification's burst exhausts the pool, new answers 503
    code, record = rehearse(tmp_path, "new-pool-leak-on-writes")
    assert code == 1 and record["ending"] == "rollback verified", record["postRollbackChecks"]
    assert [d["decision"] for d in record["decisions"]] == ["GO", "NO-GO"]
    assert "(store connection pool exhausted)" in record["decisions"][1]["why"]  # the platform's own words
    assert [w["operation"] for w in record["lostWrites"]] == [
        "SkapaOrdinationVard", "HamtaExpeditionsId", "GodkannUttag", "RapporteraExpeditionLF"]
    checks = {c["check"]: c for c in record["postRollbackChecks"]}
    assert all(c["passed"] for c in checks.values())
    # read on new once it answers again (its leaked connections reclaimed), not taken on the ledger's word
    held = checks["every prescription the ledger lists as lost is on new and not on old"]["detail"]
    assert held == "1 prescriptions created on new in the window: on new True, on old False"


def test_a_rollback_the_gateway_does_not_apply_is_no_go_unverified_exit_3(tmp_path: Path) -> None:
    # the same NO-GO as above, and a gateway that answers the switch back but goes on forwarding to new
    code, record = rehearse(tmp_path, "core-cancelled-withdrawable", "gateway-rollback-not-applied")
    assert code == 3 and record["verdict"] == "NO-GO" and record["ending"] == "rollback unverified"
    checks = {c["check"]: c for c in record["postRollbackChecks"]}
    assert checks["the gateway routes to old"]["passed"]  # the gateway's word, which the fault keeps right
    assert checks["old serves exactly the baseline"]["passed"]
    assert not checks[THROUGH]["passed"] and "served otherwise: 19********12" in checks[THROUGH]["detail"]
    assert phases(record)["post-rollback checks on old"] == "failed"
    (post,) = [json.loads(p.read_text(encoding="utf-8")) for p in
               (rehearse_run(tmp_path) / "allure-results").glob("*-result.json")
               if "post-rollback checks" in p.read_text(encoding="utf-8")]
    assert post["status"] == "failed" and THROUGH in post["statusDetails"]["message"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--fault", "no-such-fault"], "unknown fault 'no-such-fault'"),
        (["--patients", "0"], "--patients: '0' is not a whole number of at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                           says: str) -> None:
    try:
        code = main(["rehearse", "--plan", "release-21.0", "--reports", str(tmp_path), *argv])
    except SystemExit as stopped:  # argparse's own check of an option (values.positive_int) exits
        code = stopped.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err


def test_a_plan_without_decision_points_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from .conftest import CONTRACTS

    plan = tmp_path / "plan.toml"
    text = (CONTRACTS / "verification" / "release-21.0.toml").read_text(encoding="utf-8")
    plan.write_text(text.split("# ---- the window")[0], encoding="utf-8")
    assert main(["rehearse", "--plan", str(plan), "--reports", str(tmp_path)]) == 2
    assert "no [[decision_points]]" in capsys.readouterr().err
