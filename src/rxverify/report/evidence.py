"""Evidence of a release run: the runs it holds and each run's manifest, written and read in this one module.

A *release run* is the body of evidence one Go/No-go decision is made on: the contract,
load and verification runs made for it. Its reports folder holds only its own runs:

    reports/
      release.json                          {"releaseRun": "<id>", "created": ..., "createdBy": "<run id>"}
      runs/<run id>/manifest.json           what the run was asked to verify, and how it ended
      runs/<run id>/allure-results/         its Allure results, and no other run's
      runs/<run id>/run-record.json         the guard's counts (rxverify.report.runs)
      runs/<run id>/load/<profile>-summary.json     (a load run)
      runs/<run id>/verification/summary.json       (a verification run)
      ledger/                               the write ledger (append-only; entries carry their run id)
      allure-report/                        the report of the union of the release run's results

The release run's id comes from `RXVERIFY_RELEASE_RUN` when set; otherwise the first run into
a reports folder without a release.json creates one (`release-<UTC time>`) and every later run
joins it. A run whose RXVERIFY_RELEASE_RUN differs from the folder's release.json is refused:
a new release run needs a reports folder of its own.

A run writes its manifest before anything else, with status `in-progress`, and rewrites it when
it ends: `complete` (it ran to its end; its tests may have failed), `interrupted` (SIGTERM,
Ctrl-C) or `failed` (the run itself could not do what it was asked: bad input, a platform that
would not start). A run that is killed leaves `in-progress`, never an earlier verdict. The keys:

    {
      "manifest": 1, "run": "contract-20261201T101500.123456Z-4242", "releaseRun": "release-...",
      "suite": "contract",                        # contract | load | verification
      "status": "in-progress", "started": "2026-12-01T10:15:00.123Z", "finished": null,
      "target": "local", "environmentClass": "local",
      "embedded": true,                           # the run started the embedded reference platforms itself
      "platforms": ["old", "new"],                # the platforms it was asked to verify
      "platformVersions": {"old": "STP ... 21.0-ref.1", ...},   # what GET /status said, when known
      "selection": {"args": [...], "keyword": "", "markers": "", "deselected": 0, ...},
      "collected": ["tests/contract/test_x.py::test_y[old]", ...],   # the test ids it will report
      "seeds": {"contract": 1234},
      "commit": "<git commit>",
      "results": "allure-results",                # relative to the run folder, or an absolute path
      "summary": "load/smoke-summary.json",       # the run's summary, when it writes one
      "interruption": null, "error": null,
      "refusedCases": {"<test id>": {"<operation>": 3}}
    }
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rxverify.errors import UserError

FORMAT = 1
RELEASE_FILE = "release.json"
RUNS_DIR = "runs"
MANIFEST = "manifest.json"
RESULTS = "allure-results"
RELEASE_RUN_ENV = "RXVERIFY_RELEASE_RUN"
# watch: the break-in rounds after a GO, not judged; reconcile: `rxverify reconcile compare|local`;
# rehearse: a rehearsal of the service window (its phases and its reconciliation; its verify is a run of its own)
SUITES = ("contract", "load", "verification", "watch", "reconcile", "rehearse")
IN_PROGRESS, COMPLETE, INTERRUPTED, FAILED = "in-progress", "complete", "interrupted", "failed"
STATUSES = (IN_PROGRESS, COMPLETE, INTERRUPTED, FAILED)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def now_iso() -> str:
    """The current UTC time as the manifests write it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: Any, what: str) -> datetime:
    """An ISO 8601 instant of a manifest (naive means UTC); anything else is a UserError naming `what`."""
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{what}: {text!r} is not an ISO 8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def git_commit(where: Path) -> str:
    """The checkout's commit (with `-dirty` when it has changes), or 'unknown' without git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=False
        )
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write atomically: a reader sees the old document or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from `path`; unreadable, not JSON or not an object is a UserError naming `what` and the file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read the {what} {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UserError(f"the {what} {path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise UserError(f"the {what} {path} is not a JSON object")
    return document


def checked_id(value: str, where: str) -> str:
    """A run or release-run id: letters, digits, '.', '_' and '-' (it names a folder)."""
    if not _ID.match(value):
        raise UserError(f"{where}: {value!r} is not a usable id (letters, digits, '.', '_', '-'; at most 100)")
    return value


def results_digest(folder: Path) -> str:
    """One sha256 over a results folder's result files (names and contents): what a report was made of."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*-result.json")) if folder.is_dir() else []:
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# ---- the release run ----------------------------------------------------------------------


def recorded_release_run(reports: Path) -> str | None:
    """The release run reports/release.json names, or None when no run has been made into the folder."""
    path = reports / RELEASE_FILE
    if not path.is_file():
        return None
    value = read_json_object(path, "release run file").get("releaseRun")
    if not isinstance(value, str):
        raise UserError(f"the release run file {path} has no 'releaseRun'")
    return checked_id(value, str(path))


def _join_release_run(reports: Path, run: str) -> str:
    """The release run this run belongs to: the folder's, or $RXVERIFY_RELEASE_RUN, or a new one."""
    wanted = os.environ.get(RELEASE_RUN_ENV) or None
    if wanted is not None:
        checked_id(wanted, RELEASE_RUN_ENV)
    path = reports / RELEASE_FILE
    recorded = recorded_release_run(reports)
    if recorded is None:
        created = wanted or f"release-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
        document = {"releaseRun": created, "created": now_iso(), "createdBy": run}
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # another run made it a moment ago: join that one
            return _join_release_run(reports, run)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(document, ensure_ascii=False, indent=1))
        return created
    if wanted is not None and wanted != recorded:
        raise UserError(
            f"{path} holds the evidence of release run {recorded!r}, {RELEASE_RUN_ENV} names {wanted!r}: "
            "a new release run needs a reports folder of its own (--reports / RXVERIFY_REPORTS)"
        )
    return recorded


# ---- a run being made ------------------------------------------------------------------------


@dataclass
class RunWriter:
    """The manifest of the run this process makes: in progress first, updated as it learns, finished at the end."""

    reports: Path
    folder: Path
    document: dict[str, Any]

    @property
    def run(self) -> str:
        """This run's id."""
        return str(self.document["run"])

    @property
    def path(self) -> Path:
        """The manifest file."""
        return self.folder / MANIFEST

    @property
    def results(self) -> Path:
        """Where this run's Allure results go."""
        recorded = Path(str(self.document["results"]))
        return recorded if recorded.is_absolute() else self.folder / recorded

    def update(self, **fields: Any) -> None:
        """Record more of what the run knows (collected tests, platform versions, the summary's place)."""
        self.document.update(fields)
        _write_json(self.path, self.document)

    @contextmanager
    def ended_by_errors(self) -> Iterator[RunWriter]:
        """Inside: an interruption ends the run `interrupted`, any other error `failed` (then goes on up)."""
        try:
            yield self
        except KeyboardInterrupt:
            if self.document["status"] == IN_PROGRESS:
                self.finish(INTERRUPTED, interruption="KeyboardInterrupt")
            raise
        except BaseException as exc:
            if self.document["status"] == IN_PROGRESS:
                self.finish(FAILED, error=f"{type(exc).__name__}: {exc}")
            raise

    def finish(self, status: str, **fields: Any) -> None:
        """End the run: its status and the time; nothing of it is rewritten after this."""
        if status not in STATUSES[1:]:
            raise ValueError(f"a run ends complete, interrupted or failed, not {status!r}")
        self.update(status=status, finished=now_iso(), **fields)


def begin_run(
    reports: Path,
    suite: str,
    *,
    target: str,
    environment_class: str,
    embedded: bool,
    platforms: Iterable[str],
    selection: Mapping[str, Any] | None = None,
    collected: Iterable[str] = (),
    seeds: Mapping[str, int] | None = None,
    results: Path | None = None,
    run_id: str | None = None,
) -> RunWriter:
    """Make the run's folder and write its manifest, `in-progress`, before the run does anything else.

    `results` is where the run's Allure results go when not in its own folder (a folder the
    user named); it must not hold another run's results. `run_id` is the id the run builder
    gave the run (rxverify.target.run.open_run), so its ledger entries carry the manifest's id.
    """
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}")
    if run_id:
        run = checked_id(run_id, "the run id")
    else:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        run = f"{suite}-{stamp}-{os.getpid()}"
    folder = reports / RUNS_DIR / run
    if results is not None:  # refused before anything is written
        results = results.resolve()
        if results.is_dir() and any(results.glob("*-result.json")):
            raise UserError(
                f"{results} already holds Allure results of another run: a run's results go to a folder of "
                f"their own (leave --alluredir out: they go to {reports / RUNS_DIR}/<run id>/{RESULTS})"
            )
    if folder.exists():
        raise UserError(f"{folder} already holds the evidence of run {run!r}: a run id names one run")
    reports.mkdir(parents=True, exist_ok=True)
    release_run = _join_release_run(reports, run)
    folder.mkdir(parents=True)
    if results is not None:
        try:
            shown = str(results.relative_to(folder.resolve()))
        except ValueError:
            shown = str(results)
    else:
        shown = RESULTS
    document: dict[str, Any] = {
        "manifest": FORMAT,
        "run": run,
        "releaseRun": release_run,
        "suite": suite,
        "status": IN_PROGRESS,
        "started": now_iso(),
        "finished": None,
        "target": target,
        "environmentClass": environment_class,
        "embedded": embedded,
        "platforms": list(platforms),
        "platformVersions": {},
        "selection": dict(selection or {}),
        "collected": list(collected),
        "seeds": dict(seeds or {}),
        "commit": git_commit(Path.cwd()),
        "results": shown,
        "summary": None,
        "interruption": None,
        "error": None,
        "refusedCases": {},
    }
    writer = RunWriter(reports, folder, document)
    _write_json(writer.path, document)
    return writer


# ---- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """One run as its manifest tells it."""

    path: Path
    run: str
    release_run: str
    suite: str
    status: str
    started: datetime
    finished: datetime | None
    target: str
    environment_class: str
    embedded: bool
    platforms: tuple[str, ...]
    versions: dict[str, str]
    selection: dict[str, Any]
    collected: tuple[str, ...]
    seeds: dict[str, int]
    commit: str
    results: Path
    summary: Path | None
    interruption: str | None = None
    error: str | None = None
    refused_cases: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        """The run's folder."""
        return self.path.parent


def _in_folder(folder: Path, value: Any) -> Path:
    path = Path(str(value))
    return path if path.is_absolute() else folder / path


def refused_cases_of(value: Any, where: str) -> dict[str, dict[str, int]]:
    """`{test id: {operation: count}}`, checked; a malformed table is a UserError naming `where`."""
    if value is None:
        return {}
    try:
        return {str(test): {str(op): int(n) for op, n in ops.items()} for test, ops in value.items()}
    except (AttributeError, TypeError, ValueError):
        raise UserError(f"{where}: refused cases must map test ids to {{operation: count}}") from None


def read_manifest(path: Path) -> Manifest:
    """One manifest; a malformed one is a UserError naming it."""
    doc = read_json_object(path, "run manifest")
    where = f"run manifest {path}"
    try:
        status = str(doc["status"])
        if status not in STATUSES:
            raise UserError(f"{where}: status {status!r} is not one of {', '.join(STATUSES)}")
        suite = str(doc["suite"])
        if suite not in SUITES:
            raise UserError(f"{where}: suite {suite!r} is not one of {', '.join(SUITES)}")
        folder = path.parent
        return Manifest(
            path=path,
            run=checked_id(str(doc["run"]), where),
            release_run=checked_id(str(doc["releaseRun"]), where),
            suite=suite,
            status=status,
            started=parse_time(doc["started"], f"{where}: started"),
            finished=parse_time(doc["finished"], f"{where}: finished") if doc.get("finished") else None,
            target=str(doc.get("target") or ""),
            environment_class=str(doc.get("environmentClass") or ""),
            embedded=bool(doc.get("embedded")),
            platforms=tuple(str(p) for p in doc.get("platforms") or ()),
            versions={str(k): str(v) for k, v in (doc.get("platformVersions") or {}).items()},
            selection=dict(doc.get("selection") or {}),
            collected=tuple(str(t) for t in doc.get("collected") or ()),
            seeds={str(k): int(v) for k, v in (doc.get("seeds") or {}).items() if v is not None},
            commit=str(doc.get("commit") or "unknown"),
            results=_in_folder(folder, doc.get("results") or RESULTS),
            summary=_in_folder(folder, doc["summary"]) if doc.get("summary") else None,
            interruption=str(doc["interruption"]) if doc.get("interruption") else None,
            error=str(doc["error"]) if doc.get("error") else None,
            refused_cases=refused_cases_of(doc.get("refusedCases"), where),
        )
    except KeyError as missing:
        raise UserError(f"{where} is malformed (no {missing})") from None
    except (AttributeError, TypeError, ValueError) as exc:
        raise UserError(f"{where} is malformed ({type(exc).__name__}: {exc})") from None


def run_folders(reports: Path) -> list[Path]:
    """Every run folder under reports/runs/, oldest first (run ids sort by their time)."""
    directory = reports / RUNS_DIR
    return sorted(p for p in directory.iterdir() if p.is_dir()) if directory.is_dir() else []


def read_runs(reports: Path) -> list[Manifest]:
    """The manifest of every run folder; a folder without one is a UserError naming it."""
    manifests = []
    for folder in run_folders(reports):
        path = folder / MANIFEST
        if not path.is_file():
            raise UserError(f"{folder} is a run folder without a manifest ({MANIFEST}): evidence of no known run")
        manifests.append(read_manifest(path))
    return manifests


def release_runs(reports: Path) -> list[Manifest]:
    """The runs of the folder's release run (what its report is made of); none without a release.json."""
    release_run = recorded_release_run(reports)
    return [m for m in read_runs(reports) if m.release_run == release_run] if release_run else []


def latest_run(reports: Path, suite: str) -> Manifest | None:
    """The newest run of `suite` in the reports folder (for tools and tests that look at one run)."""
    runs = [m for m in read_runs(reports) if m.suite == suite]
    return max(runs, key=lambda m: m.started) if runs else None
