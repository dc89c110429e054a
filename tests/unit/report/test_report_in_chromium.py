"""The generated report as a person sees it: opened in headless Chromium, counted, categorised, photographed.

Needs Debian's `chromium`, Java, Node.js/npm and the Allure command line installed with `npm ci`
at the repository root; without them the test is skipped and says which is missing. It installs
nothing. Chromium resolves no host name (`--host-resolver-rules`), so the report can load
nothing from outside the file.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from rxverify.gate.criteria import load_criteria
from rxverify.gate.evaluate import evaluate
from rxverify.report.generate import embedded_history, generate_report, missing_tools
from rxverify.safety.registry import Registry

from ..conftest import CONTRACTS, ROOT
from . import builders as b

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--window-size=1400,900",
    "--virtual-time-budget=8000",
)
CHROMIUM_TIMEOUT_S = 120
SCREENSHOT = ROOT / "reports" / "report-screenshot.png"
EXPECTED_STATUSES = {"failed": 2, "broken": 2, "passed": 3, "skipped": 1}
EXPECTED_CATEGORIES = {"contract violation": 1, "SLO breach": 1, "platform unreachable": 1, "test defect": 1}


def _skip_reason() -> str | None:
    if shutil.which("chromium") is None:
        return "chromium is not installed (Debian: apt-get install -y chromium)"
    if missing := missing_tools():
        return f"the Allure report needs {', '.join(missing)} (Debian: apt-get install -y default-jre-headless npm)"
    if not (ROOT / "node_modules" / ".bin" / "allure").is_file():
        return "the Allure command line is not installed: run `npm ci` at the repository root"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def chromium(tmp_path: Path, url: str, *action: str) -> str:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    done = subprocess.run(
        ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action, url],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def visible_text(dom: str) -> str:
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Path:
    """A release run with known statuses and categories, reported twice (the second carries history)."""
    reports = tmp_path_factory.mktemp("reports")
    run = b.Run(reports, "contract")
    for area in ("prescriptions", "dispensing", "FHIR"):
        run.result(f"test_{area}_conforms", epic=area)
    run.result("test_create[POST /ordinationer]", "failed", severity="critical", message=b.SCHEMATHESIS_FAILURE)
    run.result("p95 HamtaAktuellaOrdinationer", "failed", epic="load", message=b.SLO_BREACH)
    run.result("test_lookup[GET /patienter]", "broken", epic="dispensing", message=b.CONNECTION_REFUSED)
    run.result("test_report[POST /rapport]", "broken", epic="medication list", message=b.TEST_DEFECT)
    run.result("test_monitoring", "skipped", epic="FHIR", message="no FHIR API on the old platform")
    run.record()
    run.finish()
    output = reports / "allure-report"
    for _ in range(2):
        outcome = generate_report(None, output, reports, registry, ROOT, out=lambda _: None)
        assert outcome.findings == [] and outcome.index is not None
    return output


def test_history_is_carried_into_the_next_report(report: Path) -> None:
    trend = json.loads(embedded_history(report / "index.html")["history-trend.json"])
    assert len(trend) == 2  # this run and the one before
    assert (report / "history" / "history-trend.json").is_file()  # kept for the next run (CI caches it)


def test_the_report_loads_nothing_from_outside(report: Path) -> None:
    page = (report / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']https?://""", page)
    assert "googletagmanager" not in page


def test_the_report_shows_the_tests_per_status(report: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path, (report / "index.html").as_uri() + "#suites", "--dump-dom")
    shown = {status: int(count) for status, count in re.findall(r'data-status="(\w+)"[^>]*>(\d+)<', dom)}
    assert {k: v for k, v in shown.items() if v} == EXPECTED_STATUSES


def test_the_report_shows_the_categories(report: Path, tmp_path: Path) -> None:
    text = visible_text(chromium(tmp_path, (report / "index.html").as_uri() + "#categories", "--dump-dom"))
    for name, count in EXPECTED_CATEGORIES.items():
        assert f"{name} {count}" in text, text[:2000]
    assert "Product defects" not in text and "Test defects" not in text  # nothing fell outside ours


def test_the_overview_is_photographed(report: Path, tmp_path: Path) -> None:
    text = visible_text(chromium(tmp_path, (report / "index.html").as_uri(), "--dump-dom"))
    assert "8 test cases" in text
    assert "release.run release-" in text and "target local (local)" in text  # the environment widget
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    chromium(tmp_path, (report / "index.html").as_uri(), f"--screenshot={SCREENSHOT}")
    assert SCREENSHOT.stat().st_size > 10_000


def test_a_gate_link_opens_the_failing_test(report: Path, tmp_path: Path) -> None:
    criteria = replace(load_criteria(CONTRACTS / "release-criteria.toml"), require_load_summary=False)
    verdict = evaluate(report.parent, criteria)
    # a reason per distinct failure the result lists (two schema failures), each linking to the result
    reasons = [r for r in verdict.reasons if "test_create" in r.text]
    assert len(reasons) == 2 and len({r.link for r in reasons}) == 1
    blocking = reasons[0]
    assert blocking.link is not None and blocking.link.startswith("allure-report/index.html#testresult/")
    page, fragment = blocking.link.split("#")
    text = visible_text(chromium(tmp_path, (report.parent / page).as_uri() + "#" + fragment, "--dump-dom"))
    assert "test_create[POST /ordinationer]" in text
    assert "Response violates schema" in text
