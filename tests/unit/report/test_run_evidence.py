"""A contract run's evidence from inside pytest, on a small suite of its own: its folder, manifest, test ids,
status; two runs never mix; a SIGTERM ends it interrupted; the reproduce line reproduces.

The suite is written into a temporary folder with a conftest that declares itself the contract
suite, as tests/contract/conftest.py does, and run by pytest in a subprocess with the rxverify
plugin (as `tox -e contract` runs it), its reports in a folder of its own.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rxverify.report.evidence import RELEASE_RUN_ENV, Manifest, read_runs

from ..conftest import CONTRACTS

RUN_TIMEOUT_S = 120
SUITE = {
    "conftest.py": 'RXVERIFY_SUITE = "contract"\n',
    "test_metadata.py": """
from hypothesis import Phase, given, settings, strategies as st


def test_metadata_passes():
    assert True


@settings(phases=[Phase.generate], database=None)  # not shrunk: the number reported is the seed's
@given(st.integers(min_value=0, max_value=10**9))
def test_metadata_rejects_some_numbers(n):
    assert n % 3 != 1, f"metadata number {n}"
""",
    "test_other.py": "def test_other():\n    assert True\n",
}
SLOW = """
import time


def test_slow():
    time.sleep(60)
"""


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    folder = tmp_path / "suite"
    folder.mkdir()
    for name, text in SUITE.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _env(reports: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != RELEASE_RUN_ENV}
    return {**env, "RXVERIFY_REPORTS": str(reports), "PYTHONUNBUFFERED": "1"}


def _pytest(where: Path, reports: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", "--contracts", str(CONTRACTS)]
    return subprocess.run(
        command, cwd=where, capture_output=True, text=True, env=_env(reports), timeout=RUN_TIMEOUT_S, check=False
    )


def _results(manifest: Manifest) -> list[dict[str, object]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in manifest.results.glob("*-result.json")]


def test_two_runs_in_a_row_keep_their_evidence_apart(suite: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    for _ in range(2):
        done = _pytest(suite.parent, reports, "suite", "--deselect", "test_other.py::test_other")
        assert done.returncode == 1, done.stdout[-2000:]
    first, second = read_runs(reports)
    assert first.run != second.run and first.release_run == second.release_run
    for manifest in (first, second):
        assert manifest.status == "complete" and manifest.suite == "contract"
        assert manifest.results == manifest.folder / "allure-results"
        results = _results(manifest)
        assert len(results) == len(manifest.collected) == 2  # its own, not the other run's
        ids = {next(x["value"] for x in r["labels"] if x["name"] == "test_id") for r in results}  # type: ignore[union-attr, index]
        assert ids == set(manifest.collected)
        assert manifest.selection["wholeSuite"] is False  # --deselect left a test out
        assert manifest.embedded and manifest.platforms == ("old", "new") and manifest.seeds["contract"]


def test_the_whole_suite_named_is_a_whole_suite_run_and_k_is_a_selection(suite: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    _pytest(suite.parent, reports, "suite")
    _pytest(suite.parent, reports, "suite", "-k", "metadata")
    whole, selected = read_runs(reports)
    assert whole.selection["wholeSuite"] is True and len(whole.collected) == 3
    assert selected.selection["wholeSuite"] is False and selected.selection["keyword"] == "metadata"
    assert len(selected.collected) == 2


def test_a_results_folder_of_an_earlier_run_is_refused(suite: Path, tmp_path: Path) -> None:
    reports, results = tmp_path / "reports", tmp_path / "results"
    assert _pytest(suite.parent, reports, "suite", "--alluredir", str(results)).returncode == 1
    [first] = read_runs(reports)
    assert first.results == results and len(list(results.glob("*-result.json"))) == 3
    again = _pytest(suite.parent, reports, "suite", "--alluredir", str(results))
    assert again.returncode == 2
    assert f"{results} already holds Allure results of another run" in again.stdout + again.stderr
    assert len(read_runs(reports)) == 1 and len(list(results.glob("*-result.json"))) == 3  # nothing added


def test_a_run_of_another_release_run_is_refused(suite: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    _pytest(suite.parent, reports, "suite")
    env = {**_env(reports), RELEASE_RUN_ENV: "release-other"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "suite", "-p", "no:cacheprovider", "--contracts", str(CONTRACTS)],
        cwd=suite.parent,
        capture_output=True,
        text=True,
        env=env,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 2 and "a new release run needs a reports folder of its own" in done.stdout + done.stderr


@pytest.mark.alone
def test_a_sigterm_ends_the_run_interrupted(suite: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    (suite / "test_slow.py").write_text(SLOW, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "suite/test_slow.py", "-p", "no:cacheprovider"]
    proc = subprocess.Popen(
        [*command, "--contracts", str(CONTRACTS)],
        cwd=suite.parent,
        env=_env(reports),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline:
            runs = read_runs(reports) if (reports / "runs").is_dir() else []
            if runs and runs[0].collected:
                break
            time.sleep(0.2)
        time.sleep(1.0)  # inside the slow test
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    [manifest] = read_runs(reports)
    assert manifest.status == "interrupted" and manifest.interruption == "SIGTERM", out[-2000:]


@pytest.mark.parametrize("seed_args", [("--seed", "78"), ("--seed=78",)])
def test_the_reproduce_line_reproduces(suite: Path, tmp_path: Path, seed_args: tuple[str, ...]) -> None:
    first = _pytest(suite.parent, tmp_path / "r1", "suite", "-k", "metadata", *seed_args)
    assert first.returncode == 1, first.stdout[-2000:]
    [line] = re.findall(r"rxverify: reproduce with: (.*)", first.stdout)
    assert line == "pytest suite -k metadata -p no:cacheprovider --contracts " + shlex.quote(str(CONTRACTS)) + (
        " --seed 78"
    )
    argv = shlex.split(line)
    assert argv[0] == "pytest"
    again = subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=suite.parent,
        capture_output=True,
        text=True,
        env=_env(tmp_path / "r2"),
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert again.returncode == 1
    falsified = re.compile(r"AssertionError: metadata number (\d+)")
    assert falsified.findall(again.stdout) == falsified.findall(first.stdout) != []  # the same failure, again
    assert re.findall(r"rxverify: reproduce with: (.*)", again.stdout) == [line]
    # and another seed would not have reproduced it: the example depends on the seed
    other = _pytest(suite.parent, tmp_path / "r3", "suite", "-k", "metadata", "--seed", "79")
    assert falsified.findall(other.stdout) != falsified.findall(first.stdout)
