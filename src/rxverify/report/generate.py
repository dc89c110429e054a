"""`rxverify report`: the Allure 2 HTML report of the release run, one self-contained index.html.

The report is made of the union of the release run's results folders (reports/runs/<run
id>/allure-results, rxverify.report.evidence), never of another run's. Allure 2's command line
(npm package `allure-commandline`, pinned in package-lock.json and installed with `npm ci` into
node_modules/) runs on the machine's Java. Beside the results it is given a folder of its own
with environment.properties, executor.json, categories.json and the previous report's history;
the runs' folders are not written to. The previous report is removed before anything else: a
report is either of these results or absent. The results are scanned before generation and
the report after it: a secret or an identity outside the registry fails the command and no
report is left behind. After it the report's history is kept (reports/allure-report/history/)
for the next one, and provenance.json says what it was made of (the gate checks it).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from rxverify import __version__
from rxverify.errors import UserError
from rxverify.report.categories import categories_json
from rxverify.report.evidence import Manifest, git_commit, now_iso, recorded_release_run, release_runs, results_digest
from rxverify.report.runs import RunRecord, read_run_records
from rxverify.report.scan import Finding, scan_report, scan_results
from rxverify.safety.guard import RequestRefused
from rxverify.safety.redaction import redact_text
from rxverify.safety.registry import Registry

Out = Callable[[str], None]
ALLURE_PACKAGE = "allure-commandline"
GENERATE_TIMEOUT_S = 600  # a large contract run's results take Allure well under a minute on 2 cores
NPM_TIMEOUT_S = 300
STATUS_TIMEOUT_S = 3.0  # GET /status of a platform; one that takes longer is reported from the run's record
_EMBEDDED_HISTORY = re.compile(r"""\bd\('history/([^'/]+\.json)','([A-Za-z0-9+/=]*)'\)""")
REQUIREMENTS = {
    "java": "Java 8 or newer (Debian: apt-get install -y default-jre-headless)",
    "node": "Node.js (Debian: apt-get install -y nodejs npm)",
    "npm": "npm (Debian: apt-get install -y npm)",
}


@dataclass
class ReportOutcome:
    """What `generate_report` did: the report, or the findings of the safety scan that stopped it."""

    index: Path | None = None
    findings: list[Finding] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    results: int = 0


def missing_tools() -> list[str]:
    """The programs the report needs that are not on PATH (java, node, npm)."""
    return [name for name in REQUIREMENTS if shutil.which(name) is None]


def require_tools() -> None:
    """One line naming exactly what is missing (UserError, exit 2)."""
    missing = missing_tools()
    if missing:
        raise UserError(
            "the Allure report needs "
            + "; ".join(REQUIREMENTS[m] for m in missing)
            + f": {', '.join(missing)} not found"
        )


def allure_command(tools: Path, out: Out = print) -> Path:
    """The Allure 2 command line in `tools`/node_modules, installed with `npm ci` from the lock file when absent."""
    allure = tools / "node_modules" / ".bin" / "allure"
    if allure.is_file():
        return allure
    if not (tools / "package-lock.json").is_file():
        raise UserError(f"no package-lock.json in {tools.resolve()}: run from the repository root or pass --tools")
    out(f"installing the Allure 2 command line ({ALLURE_PACKAGE}) with npm ci in {tools}")
    try:
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=tools,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"npm ci in {tools} took longer than {NPM_TIMEOUT_S} s") from None
    if done.returncode != 0 or not allure.is_file():
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise UserError(f"npm ci could not install {ALLURE_PACKAGE} in {tools}: {last}")
    return allure


def criteria_release(path: Path) -> str | None:
    """The release the release criteria are for (their `release` key), if the file says."""
    try:
        release = tomllib.loads(path.read_text(encoding="utf-8")).get("release")
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return str(release) if release else None


def status_url(base: str) -> str:
    """Where a platform answers GET /status: the root its legacy or FHIR base URL hangs from."""
    root = base.rstrip("/")
    for suffix in ("/legacy", "/fhir"):
        root = root.removesuffix(suffix)
    return root + "/status"


def _version_text(status: dict[str, Any]) -> str:
    parts = [str(status[k]) for k in ("product", "version") if status.get(k)]
    if status.get("release"):
        parts.append(f"(release {status['release']})")
    return " ".join(parts) or json.dumps(status, sort_keys=True)


def platform_versions(records: list[RunRecord], session: requests.Session | None = None) -> dict[str, str]:
    """Each platform's version: from GET /status now when it answers, else what the latest run recorded.

    `session` is a guarded session of the report's target (rxverify.target.run.open_run); without
    one (the local platforms of earlier runs are gone) nothing is probed.
    """
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        latest.update(record.platforms)
    versions = {}
    for platform, info in sorted(latest.items()):
        base = info.get("legacy") or info.get("fhir")
        status = None
        if session is not None and isinstance(base, str):
            try:
                answer = session.get(status_url(base), timeout=STATUS_TIMEOUT_S)
                status = answer.json() if answer.ok else None
            except (requests.RequestException, RequestRefused, ValueError):
                status = None
        if isinstance(status, dict):
            versions[platform] = _version_text(status)
        elif isinstance(info.get("status"), dict):
            versions[platform] = _version_text(info["status"]) + " (as recorded by the run)"
        else:
            versions[platform] = "unknown"
    return versions


def environment(
    reports: Path,
    records: list[RunRecord],
    release: str | None,
    session: requests.Session | None = None,
    runs: list[Manifest] | None = None,
) -> dict[str, str]:
    """environment.properties: release run, target, reference platforms or not, versions, release, commit, seeds."""
    runs = runs or []
    targets = sorted({f"{m.target} ({m.environment_class})" for m in runs if m.target})
    targets = targets or sorted({f"{r.target} ({r.environment_class})" for r in records if r.target})
    releases = [r.release for r in records if r.release]
    seeds = [f"{m.suite}={seed}" for m in runs for seed in m.seeds.values()]
    seeds = seeds or [f"{r.suite}={r.seed}" for r in records if r.seed is not None]
    values = {
        "release.run": recorded_release_run(reports) or "not recorded",
        "target": ", ".join(targets) or "not recorded",
        "platforms": "the embedded reference platforms (stand-ins on loopback), not a real environment"
        if runs and all(m.embedded for m in runs)
        else "as the targets name them",
        "release": next((x for x in releases if x), None) or release or "not recorded",
        "git.commit": git_commit(Path.cwd()),
        "seed": ", ".join(seeds) or "not recorded",
        "rxverify": __version__,
    }
    for platform, version in platform_versions(records, session).items():
        values[f"platform.{platform}"] = version
    return {key: redact_text(value) for key, value in values.items()}


def _properties(values: dict[str, str]) -> str:
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("\n", "\\n").replace("=", "\\=").replace(":", "\\:")

    return "".join(f"{escape(k)}={escape(v)}\n" for k, v in values.items())


def executor(values: dict[str, str]) -> dict[str, Any]:
    """executor.json: who built the report, for which release and commit."""
    build = os.environ.get("RXVERIFY_BUILD_NAME") or f"release {values['release']} at {values['git.commit'][:12]}"
    document: dict[str, Any] = {
        "name": "rxverify",
        "type": "rxverify",
        "buildName": build,
        "reportName": f"rxverify: release {values['release']}, target {values['target']}",
    }
    if os.environ.get("RXVERIFY_BUILD_URL"):
        document["buildUrl"] = os.environ["RXVERIFY_BUILD_URL"]
    return document


def carry_history(output: Path, results: Path) -> int:
    """Copy the previous report's history into the results (so trends show); returns the files copied."""
    target = results / "history"
    files: dict[str, bytes] = {}
    kept = output / "history"
    if kept.is_dir():
        files = {p.name: p.read_bytes() for p in kept.glob("*.json")}
    elif (output / "index.html").is_file():
        files = embedded_history(output / "index.html")
    if files:
        target.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (target / name).write_bytes(data)
    return len(files)


def embedded_history(index: Path) -> dict[str, bytes]:
    """The history/*.json files a single-file report carries inside its index.html."""
    files = {}
    for name, payload in _EMBEDDED_HISTORY.findall(index.read_text(encoding="utf-8", errors="replace")):
        try:
            files[name] = base64.b64decode(payload, validate=True)
        except binascii.Error:
            continue
    return files


def _remove_report(output: Path, history: dict[str, bytes]) -> None:
    """The previous report goes before anything else; only its history is kept, for the trends."""
    if output.exists():
        shutil.rmtree(output)
    if history:
        (output / "history").mkdir(parents=True)
        for name, data in history.items():
            (output / "history" / name).write_bytes(data)


def generate_report(
    results: Path | None,
    output: Path,
    reports: Path,
    registry: Registry,
    tools: Path,
    release: str | None = None,
    out: Out = print,
    session: requests.Session | None = None,
) -> ReportOutcome:
    """Remove the old report; scan the release run's results; generate the report; keep its history; scan it.

    `results`: one results folder instead of the release run's (a report the gate calls stale).
    """
    runs = release_runs(reports) if results is None else []
    folders = [m.results for m in runs] if results is None else [results]
    folders = [f for f in folders if f.is_dir() and any(f.glob("*-result.json"))]
    if not folders:
        where = results if results is not None else reports / "runs"
        raise UserError(f"no Allure results in {where} (run the suites first: tox -e contract,load)")
    with tempfile.TemporaryDirectory(prefix="rxverify-report-") as tmp:
        meta = Path(tmp)
        return _generate(folders, meta, output, reports, registry, tools, release, out, session, runs)


def _gather(folders: list[Path], meta: Path) -> None:
    """Copy the runs' results beside the report's own files: one folder for Allure, the runs' left as they are.

    Given several folders, Allure's command line applies no categories.json (with it in the first
    folder or the last, every failure fell under its defaults); in one folder it applies them.
    """
    for folder in folders:
        for path in folder.iterdir():
            if not path.is_file():
                continue
            copy = meta / path.name
            if copy.exists():  # Allure names its files by UUID: two runs never share one
                raise UserError(f"{path} has the name of a file of another run: the results cannot be merged")
            shutil.copyfile(path, copy)


def _generate(
    folders: list[Path],
    meta: Path,
    output: Path,
    reports: Path,
    registry: Registry,
    tools: Path,
    release: str | None,
    out: Out,
    session: requests.Session | None,
    runs: list[Manifest],
) -> ReportOutcome:
    records = read_run_records(reports)
    outcome = ReportOutcome(results=sum(len(list(f.glob("*-result.json"))) for f in folders))
    outcome.environment = environment(reports, records, release, session, runs)
    (meta / "environment.properties").write_text(_properties(outcome.environment), encoding="utf-8")
    (meta / "executor.json").write_text(json.dumps(executor(outcome.environment), indent=1), encoding="utf-8")
    (meta / "categories.json").write_text(json.dumps(categories_json(), indent=1), encoding="utf-8")
    carried = carry_history(output, meta)
    kept = {p.name: p.read_bytes() for p in (meta / "history").glob("*.json")} if carried else {}
    _remove_report(output, kept)
    outcome.findings = [f for folder in (meta, *folders) for f in scan_results(folder, registry)]
    if outcome.findings:
        return outcome
    require_tools()
    allure = allure_command(tools, out)
    _gather(folders, meta)
    env = dict(os.environ, ALLURE_NO_ANALYTICS="true")  # no tracking script: the report loads nothing from outside
    try:
        done = subprocess.run(
            [str(allure), "generate", str(meta), "-o", str(output), "--clean", "--single-file"],
            capture_output=True,
            text=True,
            timeout=GENERATE_TIMEOUT_S,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"allure generate took longer than {GENERATE_TIMEOUT_S} s") from None
    index = output / "index.html"
    if done.returncode != 0 or not index.is_file():
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise UserError(f"allure generate failed (exit {done.returncode}): {last}")
    history = embedded_history(index)
    (output / "history").mkdir(exist_ok=True)
    for name, data in history.items():
        (output / "history" / name).write_bytes(data)
    outcome.findings = scan_report(output, registry)
    if outcome.findings:
        _remove_report(output, kept)  # a report that leaks must not be published
        return outcome
    provenance = {
        "releaseRun": recorded_release_run(reports) if runs else None,
        "runs": {m.run: results_digest(m.results) for m in runs},
        "results": [str(f) for f in folders],
        "generated": now_iso(),
    }
    (output / "provenance.json").write_text(json.dumps(provenance, indent=1), encoding="utf-8")
    outcome.index = index
    out(
        f"report: {index} ({outcome.results} results; history: {carried} files carried in, "
        f"{len(history)} kept in {output / 'history'})"
    )
    return outcome
