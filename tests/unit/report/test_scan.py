"""The safety scan fails on a planted token and on a planted identity outside the registry, in results and report."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxverify.cli import main
from rxverify.report.scan import scan_report, scan_results, scan_text
from rxverify.safety.identity import mask
from rxverify.safety.registry import Registry

from ..strategies import foreign_identities, written
from . import builders as b

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0LWFjdG9yIn0.c2lnbmF0dXJlLW9mLWEtdGlja2V0"


def _attach(results: Path, document: object) -> Path:
    path = results / "0b7c1e52-attachment.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_clean_results_pass(tmp_path: Path, registry: Registry) -> None:
    contract, _ = b.passing_run(tmp_path)
    patient = registry.patients[0].id
    _attach(
        contract.results,
        {"request": {"url": f"/legacy/patienter/{patient}", "headers": {"Authorization": "[REDACTED]"}}},
    )
    assert scan_results(contract.results, registry) == []


@pytest.mark.parametrize(
    "secret",
    [f"Authorization: Bearer {TOKEN}", f'"ticket": "{TOKEN}"', "Bearer abcdefgh12345678", "api_key=abcdef123456"],
)
def test_a_planted_secret_is_found(tmp_path: Path, registry: Registry, secret: str) -> None:
    b.result(tmp_path, "test_x", "passed")
    planted = _attach(tmp_path, {"request": {"headers": secret}})
    [finding] = scan_results(tmp_path, registry)
    assert finding.where == str(planted)
    assert "ticket, bearer credential or key" in finding.what
    assert TOKEN not in str(finding) and "abcdef123456" not in str(finding)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_planted_foreign_identity_is_found(
    tmp_path_factory: pytest.TempPathFactory, registry: Registry, data: st.DataObject
) -> None:
    foreign = data.draw(foreign_identities(registry))
    shown = written(foreign, data.draw(st.sampled_from(["12", "12-", "10sep"])))
    results = tmp_path_factory.mktemp("results")
    b.result(results, f"test_lookup about {shown}", "failed", message=f"no prescriptions for {shown}")
    findings = scan_results(results, registry)
    assert findings and all(f"{mask(foreign)} is not a registered test patient" in f.what for f in findings)
    assert all(foreign not in str(f) and shown not in str(f) for f in findings)


def test_digests_are_not_mistaken_for_identities(registry: Registry) -> None:
    # a historyId-like digest whose digit run would pass for a 10-digit identity
    nine = "850709980"
    from rxverify.safety.identity import check_digit

    digest = f"ab{nine}{check_digit(nine)}cd0123456789abcdef"
    assert scan_text(json.dumps({"historyId": digest}), registry, "x") == []


def test_a_report_leaking_in_its_embedded_data_is_found(tmp_path: Path, registry: Registry) -> None:
    report = tmp_path / "allure-report"
    report.mkdir()
    leak = base64.b64encode(json.dumps({"statusMessage": f"Bearer {TOKEN}"}).encode()).decode()
    clean = base64.b64encode(b'{"name": "test_x"}').decode()
    # Allure's own code (outside the data) is not scanned: it holds key-like assignments of its own
    (report / "index.html").write_text(
        f"<script>var token=e.value;</script><script>d('data/test-cases/a.json','{clean}');"
        f"d('data/test-cases/b.json','{leak}')</script>"
    )
    [finding] = scan_report(report, registry)
    assert finding.where == f"{report / 'index.html'} (embedded data/test-cases/b.json)"


def test_report_command_fails_on_a_leak_naming_the_file(
    tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    run = b.Run(tmp_path)
    run.result("test_x", "passed")
    planted = _attach(run.results, {"headers": {"authorization": f"Bearer {TOKEN}"}})
    code = main(["report", "--reports", str(tmp_path), "--no-probe"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"rxverify: safety scan: {planted}: a ticket, bearer credential or key" in err
    assert TOKEN not in err
    assert not (tmp_path / "allure-report").exists()
