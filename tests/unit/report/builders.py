"""Result sets the report and gate tests build: Allure results, summaries and run records, in the suites' shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rxverify.allure_results import AllureResult, write_result
from rxverify.report.runs import write_run_record

# The areas contracts/release-criteria.toml asks for at least one test of.
AREAS = ("prescriptions", "dispensing", "medication list", "FHIR", "load")

# Failure messages as the suites really write them (allure-pytest: "<exception class>: <str>").
SCHEMATHESIS_FAILURE = (
    "schemathesis.core.failures.FailureGroup: Schemathesis found 2 distinct failures\n\n"
    '- ST108 Response violates schema\n\n    "x" is not of type "integer"\n\n'
    "- ST100 Undocumented status code\n\n    Received: 418\n    Documented: 200\n\n"
    "Reproduce with:\n\n    curl -X GET http://127.0.0.1:40001/legacy/item"
)
CONNECTION_REFUSED = (
    "requests.exceptions.ConnectionError: HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded "
    'with url: /legacy/patienter (Caused by NewConnectionError("Failed to establish a new connection: '
    '[Errno 111] Connection refused"))'
)
GUARD_REFUSAL = "refused by the guard: refused GET /legacy/patienter/19****34: personnummer 19****34 is not registered"
SLO_BREACH = "AssertionError: SLO breached: p95 HamtaAktuellaOrdinationer: p95_ms measured 812.0, limit 500.0"
DIFFERENCE = "AssertionError: old/new difference in HamtaOrdinationshistorik: $.ordinationer[0].sistaUttag differs"
PROFILE = "AssertionError: FHIR profile violation: MedicationRequest.status: code 'bogus' not in the required ValueSet"
TEST_DEFECT = "KeyError: 'ordinationId'"
ASSERTION = "AssertionError: create-then-read returned a different dosage"


def result(
    directory: Path,
    name: str,
    status: str = "passed",
    *,
    epic: str = "prescriptions",
    severity: str = "normal",
    story: str | None = None,
    message: str = "",
    full_name: str | None = None,
    platform: str = "new",
) -> Path:
    """One Allure result, written as the suites write them."""
    labels = {"epic": epic, "feature": name.split("[")[0], "severity": severity}
    if story:
        labels["story"] = story
    return write_result(
        directory,
        AllureResult(
            name=name,
            full_name=full_name or f"tests.{epic.replace(' ', '_')}.{name}",
            status=status,
            start_ms=1_795_600_000_000,
            stop_ms=1_795_600_000_050,
            message=message,
            labels=labels,
            parameters={"platform": platform},
        ),
    )


def load_summary(reports: Path, slos: list[dict[str, Any]] | None = None, guard: dict[str, int] | None = None) -> Path:
    """reports/load/smoke-summary.json as the load suite writes it, with these SLO verdicts (default: one met)."""
    path = reports / "load" / "smoke-summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if slos is None:
        slos = [
            {"slo": "p95 HamtaAktuellaOrdinationer", "metric": "p95", "measured": 120.0, "limit": 500.0, "passed": True}
        ]
    document = {"profile": "smoke", "target": "local", "slo": slos, "guard": guard or {"passed": 200}}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def verification_summary(
    reports: Path, steps: list[dict[str, Any]], environment_class: str = "test", started: str = "2000-01-01T00:00:00Z"
) -> Path:
    """reports/verification/summary.json in the shape `rxverify verify` writes."""
    path = reports / "verification" / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    verdict = "passed" if all(s["status"] == "passed" for s in steps) else "failed"
    document = {
        "plan": "release-21.0",
        "release": "21.0",
        "target": "production" if environment_class == "production" else "acceptance",
        "environmentClass": environment_class,
        "platform": "new",
        "started": started,
        "verdict": verdict,
        "steps": [
            {"blocking": True, "message": "", "operation": "HamtaPatientInfo", "participant": "care", **s}
            for s in steps
        ],
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def run_record(reports: Path, suite: str = "contract", refused: dict[str, int] | None = None, seed: int = 42) -> Path:
    """A run record with these guard refusals (default none)."""
    return write_run_record(
        reports,
        suite=suite,
        target="local",
        environment_class="local",
        guard_counts={"passed": 100, **(refused or {})},
        seed=seed,
        platforms={"new": {"legacy": "http://127.0.0.1:9/legacy", "status": {"product": "ECP", "version": "0.1.0"}}},
    )


def passing_run(reports: Path) -> Path:
    """A complete run that meets every criterion of contracts/release-criteria.toml; returns the results folder."""
    results = reports / "allure-results"
    for area in AREAS:
        result(results, f"test_{area.replace(' ', '_')}_conforms", epic=area, severity="critical")
    load_summary(reports)
    run_record(reports, "contract")
    run_record(reports, "load")
    return results
