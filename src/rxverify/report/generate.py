"""`rxverify report`: the Allure 2 HTML report of reports/allure-results, one self-contained index.html.

Allure 2's command line (npm package `allure-commandline`, pinned in package-lock.json and
installed with `npm ci` into node_modules/) runs on the machine's Java. Before generation the
results get environment.properties, executor.json, categories.json and the previous report's
history; after it the report's history is kept beside it (reports/allure-report/history/) for
the next run. The results are scanned before generation and the report after it: a secret or
an identity outside the registry fails the command and no report is left behind.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from rxverify import __version__
from rxverify.errors import UserError
from rxverify.report.categories import categories_json
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


def _verification_summary(reports: Path) -> dict[str, Any]:
    path = reports / "verification" / "summary.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def environment(
    reports: Path, records: list[RunRecord], release: str | None, session: requests.Session | None = None
) -> dict[str, str]:
    """environment.properties: target, platform versions, release, git commit, seed."""
    verification = _verification_summary(reports)
    targets = sorted({f"{r.target} ({r.environment_class})" for r in records if r.target})
    if not targets and verification.get("target"):
        targets = [f"{verification['target']} ({verification.get('environmentClass', '?')})"]
    releases = [r.release for r in records if r.release] + [str(verification.get("release") or "")]
    seeds = [f"{r.suite}={r.seed}" for r in records if r.seed is not None]
    values = {
        "target": ", ".join(targets) or "not recorded",
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


def generate_report(
    results: Path,
    output: Path,
    reports: Path,
    registry: Registry,
    tools: Path,
    release: str | None = None,
    out: Out = print,
    session: requests.Session | None = None,
) -> ReportOutcome:
    """Prepare the results, scan them, generate the single-file report, keep its history, scan the report."""
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise UserError(f"no Allure results in {results} (run the suites first: tox -e contract,load)")
    records = read_run_records(reports)
    outcome = ReportOutcome(results=len(list(results.glob("*-result.json"))))
    outcome.environment = environment(reports, records, release, session)
    (results / "environment.properties").write_text(_properties(outcome.environment), encoding="utf-8")
    (results / "executor.json").write_text(json.dumps(executor(outcome.environment), indent=1), encoding="utf-8")
    (results / "categories.json").write_text(json.dumps(categories_json(), indent=1), encoding="utf-8")
    carried = carry_history(output, results)
    outcome.findings = scan_results(results, registry)
    if outcome.findings:
        return outcome
    require_tools()
    allure = allure_command(tools, out)
    env = dict(os.environ, ALLURE_NO_ANALYTICS="true")  # no tracking script: the report loads nothing from outside
    try:
        done = subprocess.run(
            [str(allure), "generate", str(results), "-o", str(output), "--clean", "--single-file"],
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
        shutil.rmtree(output)  # a report that leaks must not be published
        return outcome
    outcome.index = index
    out(
        f"report: {index} ({outcome.results} results; history: {carried} files carried in, "
        f"{len(history)} kept in {output / 'history'})"
    )
    return outcome
