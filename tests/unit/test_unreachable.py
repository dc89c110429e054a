"""Platforms that are not there, or stop being there: one line naming the platform and its URL.

Before the first test every platform of the target is probed once through the guard: a named
target whose platforms are on a closed port is one line and exit 2, in the contract suite, in
`verify` and in the load tests (the table in test_bad_input.py has the same for platforms
given by URL). A platform that is killed while the contract suite runs ends the run within
seconds: the test that met it fails with the one line "platform unreachable: NAME at URL",
every test after it is reported as not run, with that reason, and nothing else is printed about it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT

CLOSED = "http://127.0.0.1:1"
KILLED_RUN_S = 300  # the whole run after the kill, on a busy machine; what matters is what it says


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RXVERIFY_")}
    return base | {
        "RXVERIFY_RUNTIME_DIR": str(tmp_path / "runtime"),
        "RXVERIFY_REPORTS": str(tmp_path / "reports"),
        "RXVERIFY_CLOSED_PRESCRIBER": "a-ticket-from-the-environment",
        "RXVERIFY_CLOSED_PHARMACY": "a-ticket-from-the-environment",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def closed_target(tmp_path: Path) -> Path:
    """A named target (class local: the synthetic registry is allowed) whose platforms listen nowhere."""
    path = tmp_path / "targets.toml"
    path.write_text(
        f'[closed]\nclass = "local"\n[closed.old]\nlegacy = "{CLOSED}/legacy"\n'
        f'[closed.new]\nlegacy = "{CLOSED}/legacy"\nfhir = "{CLOSED}/fhir"\n[closed.tickets]\n'
        'prescriber = "RXVERIFY_CLOSED_PRESCRIBER"\npharmacy = "RXVERIFY_CLOSED_PHARMACY"\n',
        encoding="utf-8",
    )
    return path


def _only_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, f"exit {done.returncode}:\n" + "\n".join(lines[-20:])
    return lines[0]


def test_contract_run_against_a_closed_port_is_one_line(closed_target: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/contract/test_last_withdrawal.py",
         "--target", "closed", "--targets-file", str(closed_target)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    line = _only_line(done)
    assert line.startswith("Exit: rxverify: platform unreachable: old at http://127.0.0.1:1/legacy"), line
    assert "new at http://127.0.0.1:1/fhir" in line


def test_verify_against_a_closed_port_is_one_line(closed_target: Path, env: dict[str, str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rxverify", "verify", "--target", "closed", "--targets-file", str(closed_target),
         "--plan", "release-21.0", "--reports", str(tmp_path / "reports")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert _only_line(done).startswith("rxverify: platform unreachable: new at http://127.0.0.1:1/legacy")
    assert not (tmp_path / "reports" / "verification").exists() and not list((tmp_path / "reports").rglob("*.jsonl"))


def test_load_run_against_a_closed_port_is_one_line(closed_target: Path, env: dict[str, str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless", "--config",
         "loadtests/profiles/smoke.conf", "--target", "closed", "--targets-file", str(closed_target),
         "--reports", str(tmp_path / "reports"), "--csv", str(tmp_path / "reports" / "smoke")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    line = _only_line(done)
    assert line.startswith("rxverify: platform unreachable: new at http://127.0.0.1:1/legacy (ConnectionError)")
    assert "old at" not in line, "the load run probes the platform it uses"
    assert not list((tmp_path / "reports").glob("smoke_*.csv")), "nothing opened before the probe"


@pytest.fixture
def served(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[list[str], dict[str, int]]]:
    """`rxverify serve --platform new` running: the suite's options and the platform's pid."""
    out = tmp_path / "serve.txt"
    with out.open("wb") as handle:
        serve = subprocess.Popen([sys.executable, "-m", "rxverify", "serve", "--platform", "new"], cwd=ROOT, env=env,
                                 stdout=handle, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "Ctrl-C" not in out.read_text():
            assert serve.poll() is None, out.read_text()
            time.sleep(0.2)
        command = next(line for line in out.read_text().splitlines() if "tox -e contract --" in line)
        options = command.split("tox -e contract -- ", 1)[1].split()
        pids = {}
        for path in (tmp_path / "runtime").glob("run-*.json"):
            pids = {e["platform"]: e["pid"] for e in json.loads(path.read_text())["platforms"]}
        yield options, pids
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)


def test_a_platform_killed_mid_run_ends_the_run_with_one_line(
    served: tuple[list[str], dict[str, int]], env: dict[str, str], tmp_path: Path
) -> None:
    options, pids = served
    url = options[options.index("--new-url") + 1]
    out = tmp_path / "run.txt"
    with out.open("wb") as handle:
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-rfs", "tests/contract/test_security.py",
             "-k", "bad_ticket", *options],
            cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and out.read_text().count(" PASSED") < 2:
            assert run.poll() is None, out.read_text()[-3000:]
            time.sleep(0.1)
        os.kill(pids["new"], signal.SIGKILL)  # the platform dies in the middle of the run
        killed = time.monotonic()
        code = run.wait(timeout=KILLED_RUN_S)
        took = time.monotonic() - killed
    finally:
        if run.poll() is None:
            run.kill()
    text = out.read_text()
    assert code == 1, text[-3000:]
    line = f"platform unreachable: new at {url}/legacy"
    assert f"rxverify: {line}" in text, text[-3000:]
    failed = re.findall(r"^FAILED .*$", text, re.MULTILINE)
    assert len(failed) == 1, failed  # the test that met the dead platform; its failure is the one line:
    one = rf"^{re.escape(line)} \(ConnectionError\); .*\(the rest of the run is not run\)$"
    assert re.search(one, text, re.MULTILINE), text[-3000:]
    skips = re.findall(r"^SKIPPED \[(\d+)\] .*: not run: platform unreachable: new at", text, re.MULTILINE)
    not_run = sum(map(int, skips))
    passed = text.count(" PASSED")
    selected = int(re.findall(r"(\d+) selected", text)[0])
    assert not_run and passed + not_run + 1 == selected, (passed, not_run)  # every test accounted for
    assert "Traceback" not in text and text.count("Max retries exceeded") <= 2, text[-3000:]
    assert f"skipped in security: {not_run} × not run: {line}" in text
    print(f"the run ended {took:.1f} s after the platform was killed")
