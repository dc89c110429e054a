"""What the gate reads: the evidence of one release run, run by run, every file with its sha256.

The layout and the manifest are rxverify.report.evidence's. Besides the manifests the gate
reads, in each run's folder, its Allure results, its run record (the guard's counts), and the
run's summary: the load suite's (`load/<profile>-summary.json`, written by
src/rxverify/load/runtime.py) or `rxverify verify`'s (`verification/summary.json`). Of a load
summary it needs only these keys (the rest is the load suite's own):

    {
      "run": "<run id>", "profile": "smoke", "target": "local", "interrupted": false,
      "slo": [
        {"slo": "p95 HamtaAktuellaOrdinationer", "metric": "p95", "measured": 182.0, "limit": 500.0,
         "passed": true, ...}
      ],
      "guard": {"passed": 5310, "identity": 0}      # the guard's counts during the run
    }

Each SLO needs its name (`slo`, or `name`) and `passed`; `metric`, `measured`, `limit` and
`unit` are shown when present. The list may also be called `slos`.

Evidence that belongs to no run of the release run being judged (another release run's
manifest, results or summaries outside any run folder, a run record of no run) and evidence
older than the criteria allow are bad input: one line naming the file, exit 2.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rxverify.errors import UserError
from rxverify.report.evidence import (
    RELEASE_FILE,
    RELEASE_RUN_ENV,
    RESULTS,
    RUNS_DIR,
    Manifest,
    read_json_object,
    read_runs,
    recorded_release_run,
)
from rxverify.report.results import TestResult, read_results
from rxverify.report.runs import RECORD, RunRecord, read_run_record, stray_run_records
from rxverify.safety.ledger import LedgerRecord, read_ledger

LOAD_SUMMARIES = "load/*summary.json"
VERIFICATION_SUMMARY = Path("verification") / "summary.json"
LEDGER_DIR = "ledger"


@dataclass(frozen=True)
class InputFile:
    """One file the gate read: where, its sha256, the run it is evidence of, and what it is."""

    path: Path
    sha256: str
    run: str | None
    kind: str

    def as_dict(self) -> dict[str, Any]:
        """For gate.json."""
        return {"path": str(self.path), "sha256": self.sha256, "run": self.run, "kind": self.kind}


def sha256_of(path: Path) -> str:
    """The file's sha256 (hex)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Slo:
    """One SLO verdict of the load run."""

    name: str
    passed: bool
    metric: str = ""
    measured: Any = None
    limit: Any = None
    unit: str = ""

    def figures(self) -> str:
        """'measured X, limit Y' as far as the summary says."""
        unit = f" {self.unit}" if self.unit else ""
        parts = [f"{self.metric}" if self.metric else ""]
        if self.measured is not None:
            parts.append(f"measured {self.measured}{unit}")
        if self.limit is not None:
            parts.append(f"limit {self.limit}{unit}")
        return ", ".join(p for p in parts if p)


@dataclass
class LoadSummary:
    """One load run's summary: its SLO verdicts and the guard's counts."""

    path: Path
    run: str | None
    interrupted: bool
    slos: list[Slo] = field(default_factory=list)
    guard: dict[str, int] = field(default_factory=dict)


@dataclass
class VerificationStep:
    """One verification step as the summary reports it."""

    id: str
    operation: str
    status: str
    message: str
    blocking: bool
    patient: str | None


@dataclass
class VerificationSummary:
    """The verification run: its target class, verdict and steps."""

    path: Path
    run: str | None
    plan: str
    release: str
    target: str
    environment_class: str
    verdict: str
    started: str
    steps: list[VerificationStep] = field(default_factory=list)

    @property
    def production(self) -> bool:
        """Whether this was a production verification."""
        return self.environment_class == "production"


@dataclass
class RehearsalRecord:
    """A rehearsal's decision record (reports/rehearsal/decision.json, rxverify.rehearse) as the gate shows it."""

    path: Path
    run: str
    plan: str
    verdict: str  # GO | NO-GO
    ending: str  # go | rollback verified | rollback unverified
    decisions: list[dict[str, str]]  # id, after, decision, why
    phases: list[dict[str, str]]  # phase, outcome, detail
    lost_writes: int
    failed_checks: list[str]


def read_rehearsal_record(path: Path) -> RehearsalRecord:
    """One decision record; a malformed one is a UserError naming it."""
    document = read_json_object(path, "decision record")
    try:
        return RehearsalRecord(
            path=path,
            run=str(document.get("run") or ""),
            plan=str(document["plan"]),
            verdict=str(document["verdict"]),
            ending=str(document["ending"]),
            decisions=[{k: str(d[k]) for k in ("id", "after", "decision", "why")} for d in document["decisions"]],
            phases=[{k: str(p[k]) for k in ("phase", "outcome", "detail")} for p in document["timeline"]],
            lost_writes=len(document["lostWrites"]),
            failed_checks=[f"{c['check']}: {c['detail']}" for c in document["postRollbackChecks"] if not c["passed"]],
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"the decision record {path} is malformed (missing {exc})") from None


@dataclass
class RunInputs:
    """Everything one run of the release run left: its manifest, results, record and summary."""

    manifest: Manifest
    results: list[TestResult] = field(default_factory=list)
    results_found: bool = False
    record: RunRecord | None = None
    load: LoadSummary | None = None
    verification: VerificationSummary | None = None
    rehearsal: RehearsalRecord | None = None

    @property
    def run(self) -> str:
        """The run's id."""
        return self.manifest.run


@dataclass
class Evidence:
    """The release run being judged: its runs and the ledger's entries of them."""

    release_run: str
    release_file: Path
    runs: list[RunInputs] = field(default_factory=list)
    ledger: list[LedgerRecord] = field(default_factory=list)
    files: list[InputFile] = field(default_factory=list)

    def of(self, suite: str) -> list[RunInputs]:
        """The runs of one suite."""
        return [r for r in self.runs if r.manifest.suite == suite]


def read_load_summary(path: Path) -> LoadSummary:
    """One load summary; a malformed one is a UserError naming it."""
    document = read_json_object(path, "load summary")
    slos = document.get("slos", document.get("slo"))
    if not isinstance(slos, list):
        raise UserError(f"the load summary {path} has no 'slo' list")
    summary = LoadSummary(
        path=path,
        run=str(document["run"]) if document.get("run") else None,
        interrupted=bool(document.get("interrupted")),
    )
    for i, item in enumerate(slos):
        name = item.get("slo", item.get("name")) if isinstance(item, dict) else None
        if not isinstance(name, str) or not isinstance(item.get("passed"), bool):
            raise UserError(f"the load summary {path}: slo[{i}] needs a name ('slo', text) and 'passed' (true/false)")
        summary.slos.append(
            Slo(
                name=name,
                passed=item["passed"],
                metric=str(item.get("metric") or ""),
                measured=item.get("measured"),
                limit=item.get("limit"),
                unit=str(item.get("unit") or ""),
            )
        )
    guard = document.get("guard")
    if isinstance(guard, dict) and guard:
        try:
            summary.guard = {str(k): int(v) for k, v in guard.items()}
        except (TypeError, ValueError):
            raise UserError(f"the load summary {path}: 'guard' must map reasons to counts") from None
    return summary


def read_verification_summary(path: Path) -> VerificationSummary:
    """The verification summary at `path`; malformed is a UserError naming it."""
    document = read_json_object(path, "verification summary")
    try:
        steps = [
            VerificationStep(
                id=str(s["id"]),
                operation=str(s.get("operation", "")),
                status=str(s["status"]),
                message=str(s.get("message") or ""),
                blocking=bool(s.get("blocking", True)),
                patient=s.get("patient"),
            )
            for s in document["steps"]
        ]
        return VerificationSummary(
            path=path,
            run=str(document["run"]) if document.get("run") else None,
            plan=str(document.get("plan", "")),
            release=str(document.get("release", "")),
            target=str(document.get("target", "")),
            environment_class=str(document["environmentClass"]),
            verdict=str(document["verdict"]),
            started=str(document.get("started", "")),
            steps=steps,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"the verification summary {path} is malformed (missing {exc})") from None


def release_run_to_judge(reports: Path, explicit: str | None = None) -> str:
    """The release run: --release-run, else $RXVERIFY_RELEASE_RUN, else the folder's release.json."""
    recorded = recorded_release_run(reports)
    wanted = explicit or os.environ.get(RELEASE_RUN_ENV) or None
    if recorded is None:
        raise UserError(
            f"no release run in {reports} ({RELEASE_FILE} is missing: no suite has run into this folder; "
            "run the suites first: tox -e contract,load)"
        )
    if wanted is not None and wanted != recorded:
        raise UserError(f"{reports / RELEASE_FILE} is release run {recorded!r}, not the {wanted!r} to be judged")
    return recorded


def _stray(reports: Path, manifests: list[Manifest]) -> None:
    """Evidence of no run of this release run: one line naming the first such file (exit 2)."""
    referenced = {m.results.resolve() for m in manifests}
    candidates: list[Path] = []
    loose = reports / RESULTS
    if loose.is_dir() and loose.resolve() not in referenced:
        candidates += sorted(loose.glob("*-result.json"))
    candidates += sorted(reports.glob(LOAD_SUMMARIES))
    candidates += [reports / VERIFICATION_SUMMARY] if (reports / VERIFICATION_SUMMARY).is_file() else []
    candidates += stray_run_records(reports)
    if candidates:
        raise UserError(
            f"{candidates[0]} is evidence of no run of this release run (not in a run folder "
            f"{reports / RUNS_DIR}/<run id>/): remove it, or start the release run in an empty reports folder"
        )


def _check_membership(manifest: Manifest, release_run: str, now: datetime, max_age_hours: float) -> None:
    if manifest.release_run != release_run:
        raise UserError(
            f"{manifest.path} is evidence of release run {manifest.release_run!r}, not of {release_run!r} being judged"
        )
    if manifest.folder.name != manifest.run:
        raise UserError(
            f"{manifest.path} names run {manifest.run!r} but lies in the folder of {manifest.folder.name!r}"
        )
    if manifest.started < now - timedelta(hours=max_age_hours):
        raise UserError(
            f"{manifest.path}: run {manifest.run} started {manifest.started.isoformat(timespec='seconds')}, more than "
            f"{max_age_hours:g} hours ago: older than the criteria allow ([evidence] max_age_hours)"
        )
    if manifest.started > now + timedelta(minutes=5):
        raise UserError(f"{manifest.path}: run {manifest.run} started in the future ({manifest.started.isoformat()})")


def _summary_path(manifest: Manifest, pattern: str) -> Path | None:
    if manifest.summary is not None:
        return manifest.summary if manifest.summary.is_file() else None
    found = sorted(manifest.folder.glob(pattern))
    return found[-1] if found else None


def _read_run(manifest: Manifest, files: list[InputFile]) -> RunInputs:
    run = RunInputs(manifest)
    files.append(InputFile(manifest.path, sha256_of(manifest.path), manifest.run, "run manifest"))
    if manifest.results.is_dir():
        run.results = read_results(manifest.results)
        run.results_found = True
        files += [InputFile(r.path, sha256_of(r.path), manifest.run, "Allure result") for r in run.results]
    record = manifest.folder / RECORD
    if record.is_file():
        run.record = read_run_record(record)
        if run.record.run != manifest.run:
            raise UserError(
                f"the run record {record} is of run {run.record.run!r}, not of {manifest.run!r} in whose folder it lies"
            )
        files.append(InputFile(record, sha256_of(record), manifest.run, "run record"))
    if manifest.suite == "load" and (path := _summary_path(manifest, LOAD_SUMMARIES)) is not None:
        run.load = read_load_summary(path)
        files.append(InputFile(path, sha256_of(path), run.load.run, "load summary"))
    if manifest.suite == "verification" and (path := _summary_path(manifest, str(VERIFICATION_SUMMARY))) is not None:
        run.verification = read_verification_summary(path)
        files.append(InputFile(path, sha256_of(path), run.verification.run, "verification summary"))
    if manifest.suite == "rehearse" and manifest.summary is not None and manifest.summary.is_file():
        run.rehearsal = read_rehearsal_record(manifest.summary)
        files.append(InputFile(manifest.summary, sha256_of(manifest.summary), run.rehearsal.run, "decision record"))
    return run


def read_evidence(reports: Path, now: datetime, max_age_hours: float, release_run: str | None = None) -> Evidence:
    """The release run's evidence, every run's inputs read and every file hashed; bad input is a UserError."""
    judged = release_run_to_judge(reports, release_run)
    evidence = Evidence(judged, reports / RELEASE_FILE)
    evidence.files.append(InputFile(evidence.release_file, sha256_of(evidence.release_file), None, "release run"))
    manifests = read_runs(reports)
    for manifest in manifests:
        _check_membership(manifest, judged, now, max_age_hours)
    _stray(reports, manifests)
    evidence.runs = [_read_run(m, evidence.files) for m in manifests]
    ids = {m.run for m in manifests}
    ledger = reports / LEDGER_DIR
    evidence.ledger = [r for r in read_ledger(ledger) if r.run in ids]
    for path in sorted(ledger.glob("ledger-*.jsonl")) if ledger.is_dir() else []:
        text = path.read_text(encoding="utf-8", errors="replace")
        runs = sorted(run for run in ids if f'"run":"{run}"' in text)
        if runs:
            evidence.files.append(InputFile(path, sha256_of(path), ", ".join(runs), "ledger"))
    return evidence
