"""Run records: what each suite run was about, for the report's environment and the gate's safety criterion.

Every run of a suite (contract, load, verify) writes one file when it ends, in its own run folder
(`reports/runs/<run id>/run-record.json`, rxverify.report.evidence); without a run id it is
`reports/runs/<suite>-<UTC stamp>-<pid>.json`, which the gate refuses as evidence of no run:

    {
      "suite": "contract",                 # contract | load | verify | ...
      "run": "20261125T101500.123456Z-4242",
      "started": "2026-11-25T10:15:00.123Z", "finished": "2026-11-25T10:19:30.456Z",
      "target": "local", "environmentClass": "local",
      "seed": 1234567,                     # null when the suite has none
      "release": "21.0",                   # null when not known to the suite
      "platforms": {                       # what each platform reported on GET /status during the run
        "old": {"legacy": "http://127.0.0.1:40001/legacy", "status": {"product": "...", "version": "..."}},
        "new": {"legacy": "...", "fhir": "...", "status": {...}}
      },
      "guard": {"admitted": 6095, "sent": 6095, "refused": {"identity": 0, "plan": 0, "window": 0}},
      "egressAudit": {"ran": true, "problems": []},   # local targets: every request received was sent
      "refusedCases": {"tests/contract/test_x.py::test_y[new]": {"SkapaOrdinationVard": 1}}
    }

`guard` is the guard's counts (`Guard.counts`): `admitted` what the guard let through, `sent`
what its transports wrote to a socket (what left, not what was passed), every other reason a
refusal. `egressAudit` is the egress audit of a run against the local platforms
(rxverify.safety.audit); `refusedCases` the generated cases the guard refused, per test and
operation. `write_run_record` writes this shape; the report and the gate read it with
`read_run_records`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rxverify.errors import UserError
from rxverify.report.evidence import refused_cases_of

RUNS_DIR = "runs"
RECORD = "run-record.json"


@dataclass
class RunRecord:
    """One suite run as its record tells it."""

    path: Path
    suite: str
    run: str
    target: str
    environment_class: str
    finished: str = ""
    seed: int | None = None
    release: str | None = None
    platforms: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    egress_problems: list[str] = field(default_factory=list)  # the egress audit's findings (empty: none)
    refused_cases: dict[str, dict[str, int]] = field(default_factory=dict)  # test -> operation -> refused

    @property
    def refusals(self) -> int:
        """How many requests the guard refused in this run."""
        return sum(self.refused.values())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_run_record(
    reports: Path,
    *,
    suite: str,
    target: str,
    environment_class: str,
    guard_counts: Mapping[str, int],
    started: str | None = None,
    seed: int | None = None,
    release: str | None = None,
    platforms: Mapping[str, Mapping[str, Any]] | None = None,
    run_id: str | None = None,
    egress_audit: list[str] | None = None,
    refused_cases: Mapping[str, Mapping[str, int]] | None = None,
) -> Path:
    """Write one run's record: in its run folder when `run_id` is given (see the module docstring)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    run = run_id or f"{stamp}-{os.getpid()}"
    document = {
        "suite": suite,
        "run": run,
        "started": started,
        "finished": _now(),
        "target": target,
        "environmentClass": environment_class,
        "seed": seed,
        "release": release,
        "platforms": {name: dict(info) for name, info in (platforms or {}).items()},
        "guard": {
            "admitted": int(guard_counts.get("passed", 0)),
            "sent": int(guard_counts.get("sent", 0)),
            "refused": {k: int(v) for k, v in guard_counts.items() if k not in ("passed", "sent")},
        },
        "egressAudit": {"ran": egress_audit is not None, "problems": list(egress_audit or [])},
        "refusedCases": {test: dict(ops) for test, ops in (refused_cases or {}).items()},
    }
    directory = reports / RUNS_DIR / run_id if run_id else reports / RUNS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (RECORD if run_id else f"{suite}-{run}.json")
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _record(path: Path, document: Any) -> RunRecord:
    try:
        guard = document.get("guard") or {}
        refused = {str(k): int(v) for k, v in (guard.get("refused") or {}).items()}
        seed = document.get("seed")
        return RunRecord(
            path=path,
            suite=str(document["suite"]),
            run=str(document.get("run", path.stem)),
            target=str(document.get("target", "")),
            environment_class=str(document.get("environmentClass", "")),
            finished=str(document.get("finished") or ""),
            seed=int(seed) if seed is not None else None,
            release=str(document["release"]) if document.get("release") else None,
            platforms={str(k): dict(v) for k, v in (document.get("platforms") or {}).items()},
            sent=int(guard.get("sent", 0)),
            refused=refused,
            egress_problems=[str(p) for p in (document.get("egressAudit") or {}).get("problems", [])],
            refused_cases=refused_cases_of(
                document.get("refusedCases", document.get("refused_cases")), f"run record {path}"
            ),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"run record {path} is malformed ({type(exc).__name__}: {exc})") from None


def read_run_record(path: Path) -> RunRecord:
    """One run record; a malformed one is a UserError naming it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"run record {path} cannot be read: {exc}") from None
    if not isinstance(document, dict):
        raise UserError(f"run record {path} is not a JSON object")
    return _record(path, document)


def stray_run_records(reports: Path) -> list[Path]:
    """Run records written outside any run folder (by no run the gate knows)."""
    directory = reports / RUNS_DIR
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def read_run_records(reports: Path) -> list[RunRecord]:
    """Every run record under reports/runs/ (run folders and stray ones), oldest first; malformed: UserError."""
    directory = reports / RUNS_DIR
    paths = stray_run_records(reports) + (sorted(directory.glob(f"*/{RECORD}")) if directory.is_dir() else [])
    records = [read_run_record(path) for path in paths]
    return sorted(records, key=lambda r: (r.finished, r.path.name))
