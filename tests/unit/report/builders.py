"""Evidence the report and gate tests build: run folders with manifests, Allure results, summaries and run
records, in the shapes the suites write them (the manifest through rxverify.report.evidence itself)."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rxverify.allure_results import AllureResult, write_result
from rxverify.report.evidence import COMPLETE, RunWriter, begin_run
from rxverify.report.runs import write_run_record

CRITERIA_FILE = Path(__file__).resolve().parents[3] / "contracts" / "release-criteria.toml"
# The areas contracts/release-criteria.toml asks for tests of, and how many.
MINIMUMS: dict[str, int] = tomllib.loads(CRITERIA_FILE.read_text(encoding="utf-8"))["minimum_tests"]
AREAS = tuple(MINIMUMS)
# Test files whose tests the criteria require when both platforms are targeted, by area.
AREA_FILES = {"old vs new": "test_differential.py", "security": "test_security.py"}

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
    test_id: str | None = None,
    start_ms: int = 1_795_600_000_000,
) -> Path:
    """One Allure result, written as the suites write them (pytest's results carry their `test_id` label)."""
    labels = {"epic": epic, "feature": name.split("[")[0], "severity": severity}
    if story:
        labels["story"] = story
    if test_id:
        labels["test_id"] = test_id
    return write_result(
        directory,
        AllureResult(
            name=name,
            full_name=full_name or f"tests.{epic.replace(' ', '_')}.{name}",
            status=status,
            start_ms=start_ms,
            stop_ms=start_ms + 50,
            message=message,
            labels=labels,
            parameters={"platform": platform},
        ),
    )


def run_record(
    reports: Path,
    suite: str = "contract",
    refused: dict[str, int] | None = None,
    seed: int = 42,
    run_id: str | None = None,
    refused_cases: dict[str, dict[str, int]] | None = None,
) -> Path:
    """A run record with these guard refusals (default none); in its run's folder when `run_id` is given."""
    path = write_run_record(
        reports,
        suite=suite,
        target="local",
        environment_class="local",
        guard_counts={"passed": 100, **(refused or {})},
        seed=seed,
        platforms={"new": {"legacy": "http://127.0.0.1:9/legacy", "status": {"product": "ECP", "version": "0.1.0"}}},
        run_id=run_id,
        refused_cases=refused_cases,
    )
    return path


def slo(name: str, passed: bool = True, measured: float | None = 120.0, limit: float = 500.0) -> dict[str, Any]:
    """One SLO verdict of a load summary."""
    return {"slo": name, "metric": "p95_ms", "measured": measured, "limit": limit, "passed": passed}


SLOS = [f"p95 operation{i} p95_ms <= 500" for i in range(MINIMUMS.get("load", 1))]


class Run:
    """One run folder being built: its manifest (begun as the suites begin it), its results, how it ends."""

    def __init__(
        self,
        reports: Path,
        suite: str = "contract",
        *,
        platforms: Iterable[str] = ("old", "new"),
        whole_suite: bool = True,
        environment_class: str = "local",
        seed: int = 42,
        collected: Iterable[str] = (),
    ) -> None:
        self.reports = reports
        self.suite = suite
        self.writer: RunWriter = begin_run(
            reports,
            suite,
            target="production" if environment_class == "production" else "local",
            environment_class=environment_class,
            embedded=environment_class == "local",
            platforms=platforms,
            selection={"wholeSuite": whole_suite, "args": ["tests/contract"]} if suite == "contract" else {},
            seeds={suite: seed},
            collected=collected,
        )

    @property
    def run(self) -> str:
        """The run's id."""
        return self.writer.run

    @property
    def folder(self) -> Path:
        """The run's folder."""
        return self.writer.folder

    @property
    def results(self) -> Path:
        """The run's results folder."""
        return self.writer.results

    def collect(self, *test_ids: str) -> None:
        """Add to the test ids the run's manifest says it collected."""
        self.writer.update(collected=[*self.writer.document["collected"], *test_ids])

    def result(
        self, name: str, status: str = "passed", *, collect: bool = True, test_id: str | None = None, **labels: Any
    ) -> Path:
        """One result of this run (collected by it unless `collect` is false)."""
        epic = labels.get("epic", "prescriptions")
        platform = labels.get("platform", "new")
        if self.suite == "contract":
            module = AREA_FILES.get(epic, f"test_{epic.replace(' ', '_')}.py")
            test_id = test_id or f"tests/contract/{module}::{name}[{platform}]"
            path = result(self.results, name, status, test_id=test_id, **labels)
        else:
            path = result(self.results, name, status, **labels)
            test_id = test_id or json.loads(path.read_text(encoding="utf-8"))["fullName"]
        if collect:
            self.collect(test_id)
        return path

    def record(self, refused: dict[str, int] | None = None, **extra: Any) -> Path:
        """The run record of this run (the guard's counts)."""
        return run_record(self.reports, self.suite, refused, run_id=self.run, **extra)

    def load_summary(
        self,
        slos: list[dict[str, Any]] | None = None,
        guard: dict[str, int] | None = None,
        *,
        run: str | None = "own",
        interrupted: bool = False,
        results: bool = True,
    ) -> Path:
        """<run>/load/smoke-summary.json as the load suite writes it, and (default) one SLO result per SLO."""
        path = self.folder / "load" / "smoke-summary.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        slos = [slo(name) for name in SLOS] if slos is None else slos
        document = {
            "run": self.run if run == "own" else run,
            "profile": "smoke",
            "target": "local",
            "interrupted": interrupted,
            "passed": all(s["passed"] for s in slos),
            "slo": slos,
            "guard": guard or {"passed": 200},
        }
        path.write_text(json.dumps(document), encoding="utf-8")
        if results:
            for s in slos:
                name = s.get("slo", s.get("name"))
                self.result(
                    f"SLO {name}",
                    "passed" if s["passed"] else "failed",
                    epic="load",
                    severity="critical",
                    full_name=f"rxverify.load.slo.overall.{name.replace(' ', '_')}",
                    message="" if s["passed"] else f"SLO breached: {name}",
                )
        self.writer.update(summary=str(path.relative_to(self.folder)))
        return path

    def verification_summary(self, steps: list[dict[str, Any]], *, run: str | None = "own") -> Path:
        """<run>/verification/summary.json in the shape `rxverify verify` writes."""
        path = self.folder / "verification" / "summary.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        production = self.writer.document["environmentClass"] == "production"
        document = {
            "run": self.run if run == "own" else run,
            "plan": "release-21.0",
            "release": "21.0",
            "target": "production" if production else "acceptance",
            "environmentClass": self.writer.document["environmentClass"],
            "platform": "new",
            "started": self.writer.document["started"],
            "verdict": "passed" if all(s["status"] == "passed" for s in steps) else "failed",
            "steps": [
                {"blocking": True, "message": "", "operation": "HamtaPatientInfo", "participant": "care", **s}
                for s in steps
            ],
        }
        path.write_text(json.dumps(document), encoding="utf-8")
        self.writer.update(summary=str(path.relative_to(self.folder)))
        return path

    def finish(self, status: str = COMPLETE, **fields: Any) -> Run:
        """End the run's manifest."""
        self.writer.finish(status, **fields)
        return self


def contract_run(reports: Path, **options: Any) -> Run:
    """A complete contract run of both platforms: the criteria's minimum of passing results in each of its areas."""
    run = Run(reports, "contract", **options)
    for area, least in MINIMUMS.items():
        if area != "load":
            for i in range(least):
                run.result(f"test_{area.replace(' ', '_')}_conforms_{i}", epic=area, severity="critical")
    run.record()
    return run


def load_run(reports: Path) -> Run:
    """A complete load run: a summary whose every SLO is measured and met, an SLO result each."""
    run = Run(reports, "load", platforms=("new",))
    run.load_summary()
    return run


def passing_run(reports: Path) -> tuple[Run, Run]:
    """A release run that meets every criterion of contracts/release-criteria.toml: a contract and a load run."""
    return contract_run(reports).finish(), load_run(reports).finish()
