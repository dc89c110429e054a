"""Stopping a command stops the platforms it started; a killed one leaves nothing the next start does not clean up.

Each command that starts the embedded platforms (`rxverify serve`, `rxverify verify`, the
contract suite under pytest, the load tests under Locust) is started for real and, once its
platforms run (as its runtime file says), sent SIGTERM or SIGINT: it must stop every platform
it started and remove its temporary folder, ticket key included. One killed with SIGKILL
cannot; the next command that starts platforms must stop its orphans and remove its folder.
Each test has a runtime folder of its own (RXVERIFY_RUNTIME_DIR), so runs elsewhere on the
machine are neither seen nor touched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rxverify.target.processes import start_time

from .conftest import ROOT

pytestmark = pytest.mark.alone  # judged on time: tox -e unit runs these one at a time

START_S = 120  # the platforms of one command up and answering, on a busy 2-core machine
STOP_S = 60


@dataclass
class Started:
    """A command running in the background, with what it printed and its runtime folder."""

    proc: subprocess.Popen[bytes]
    out: Path
    err: Path
    runtime: Path

    def text(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def record(self, platforms: int, ready: Callable[[str], bool] = lambda _: True) -> dict[str, Any]:
        """The command's runtime file once it lists `platforms` running platforms and `ready` holds of its output."""
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"ended early ({self.proc.returncode}):\n{self.text()[-3000:]}"
            for path in self.runtime.glob("run-*.json"):
                try:
                    record = json.loads(path.read_text())
                except ValueError:
                    continue
                if len(record["platforms"]) >= platforms and ready(self.text()):
                    return dict(record)
            time.sleep(0.2)
        raise AssertionError(f"no {platforms} platforms within {START_S} s:\n{self.text()[-3000:]}")

    def signal(self, signum: int) -> int:
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=STOP_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Started]]:
    started: list[Started] = []

    def run(*argv: str) -> Started:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RXVERIFY_")}
        env |= {"RXVERIFY_RUNTIME_DIR": str(tmp_path / "runtime"), "RXVERIFY_REPORTS": str(tmp_path / "reports"),
                "PYTHONUNBUFFERED": "1"}  # fmt: skip
        n = len(started)
        out, err = tmp_path / f"out-{n}.txt", tmp_path / f"err-{n}.txt"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=o, stderr=e)
        started.append(Started(proc, out, err, tmp_path / "runtime"))
        return started[-1]

    yield run
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
    for record in (tmp_path / "runtime").glob("run-*.json"):  # never leave platforms behind, whatever failed
        for entry in json.loads(record.read_text())["platforms"]:
            if _running(entry):
                os.kill(entry["pid"], signal.SIGKILL)


def _running(entry: dict[str, Any]) -> bool:
    """Whether the recorded platform process is still that process (and not a zombie)."""
    if start_time(entry["pid"]) != entry["start"]:
        return False
    state = Path(f"/proc/{entry['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def _all_gone(record: dict[str, Any], runtime: Path) -> None:
    """Every platform of the record stopped, its folder (stores, ticket key) removed, its runtime file too."""
    deadline = time.monotonic() + STOP_S
    while time.monotonic() < deadline and any(_running(e) for e in record["platforms"]):
        time.sleep(0.2)
    left = [e for e in record["platforms"] if _running(e)]
    assert not left, f"platforms left running: {left}"
    assert not Path(record["tmp"]).exists(), f"{record['tmp']} (with the ticket key) outlived its run"
    assert not list(runtime.glob("run-*.json")), "the run's runtime file outlived it"


RXVERIFY = [sys.executable, "-m", "rxverify"]
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/contract/test_security.py", "-k",
          "bad_ticket"]  # fmt: skip
LOCUST = [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless", "--config",
          "loadtests/profiles/smoke.conf", "--duration", "90", "--platform", "old"]  # fmt: skip


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_its_platforms_and_removes_its_key(start: Callable[..., Started], signum: int,
                                                       tmp_path: Path) -> None:  # fmt: skip
    serve = start(*RXVERIFY, "serve", "--data-dir", str(tmp_path / "kept"))
    record = serve.record(3, lambda text: "Ctrl-C" in text)
    assert (Path(record["tmp"]) / "ticket.key").stat().st_mode & 0o777 == 0o600
    assert serve.signal(signum) == 0, serve.text()
    _all_gone(record, serve.runtime)
    kept = tmp_path / "kept"
    assert (kept / "old").is_dir() and (kept / "new").is_dir(), "--data-dir keeps the stores"
    assert not list(kept.rglob("*.key")), "--data-dir keeps the stores, never the ticket key"


def test_verify_stopped_by_sigterm_stops_its_platform(start: Callable[..., Started], tmp_path: Path) -> None:
    plan = tmp_path / "slow.toml"
    steps = "".join(
        f'[[steps]]\nid = "S{n}"\nparticipant = "care"\noperation = "KontrolleraArbetsplatskod"\n'
        'body = { arbetsplatskod = "4000000" }\nexpect = { status = 200 }\n'
        for n in range(60)
    )
    plan.write_text(
        'name = "slow"\nrelease = "21.0"\ntarget_class = "local"\n[window]\nstart = 2021-11-20T22:00:00+01:00\n'
        'end = 2021-11-21T06:00:00+01:00\n[rate]\nrequests_per_second = 2\n[participants.care]\n'
        'role = "prescriber"\nactor = 0\ncontact = "A. Person"\n' + steps
    )
    verify = start(*RXVERIFY, "verify", "--plan", str(plan), "--reports", str(tmp_path / "reports"))
    record = verify.record(1, lambda text: "  S2 " in text)
    assert verify.signal(signal.SIGTERM) == 143, verify.text()
    _all_gone(record, verify.runtime)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_contract_run_stopped_stops_its_platforms(start: Callable[..., Started], signum: int) -> None:
    run = start(*PYTEST, "-v")
    record = run.record(3, lambda text: " PASSED" in text)
    code = run.signal(signum)
    assert code == 2, f"pytest ended with {code}, not as interrupted:\n{run.text()[-2000:]}"
    _all_gone(record, run.runtime)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_load_run_stopped_stops_its_platform(start: Callable[..., Started], signum: int, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    run = start(*LOCUST, "--reports", str(reports), "--csv", str(reports / "load" / "smoke"))
    record = run.record(1, lambda text: "rxverify: seeded" in text)
    time.sleep(2)  # into the load itself
    code = run.signal(signum)
    assert code in (0, 1), f"locust ended with {code}:\n{run.text()[-2000:]}"
    _all_gone(record, run.runtime)


def test_a_killed_run_leaves_nothing_the_next_start_does_not_clean_up(start: Callable[..., Started]) -> None:
    run = start(*PYTEST, "-v")
    record = run.record(3, lambda text: " PASSED" in text)
    assert run.signal(signal.SIGKILL) == -signal.SIGKILL
    assert all(_running(e) for e in record["platforms"]), "the platforms of a killed run are orphans"
    assert (Path(record["tmp"]) / "ticket.key").is_file()

    serve = start(*RXVERIFY, "serve", "--platform", "new")  # the next start, of any command
    fresh = serve.record(1, lambda text: "Ctrl-C" in text)
    assert "rxverify: cleaned up after a killed run" in serve.text() and str(record["tmp"]) in serve.text()
    deadline = time.monotonic() + STOP_S
    while time.monotonic() < deadline and any(_running(e) for e in record["platforms"]):
        time.sleep(0.2)
    assert not any(_running(e) for e in record["platforms"]), "the orphans are still running"
    assert not Path(record["tmp"]).exists(), "the killed run's folder (its ticket key) is still there"
    assert serve.signal(signal.SIGTERM) == 0
    _all_gone(fresh, serve.runtime)


def test_a_live_run_is_never_taken_for_an_orphan(start: Callable[..., Started]) -> None:
    first = start(*RXVERIFY, "serve", "--platform", "old")
    record = first.record(1, lambda text: "Ctrl-C" in text)
    second = start(*RXVERIFY, "serve", "--platform", "new")
    second.record(1, lambda _: "Ctrl-C" in second.text())
    assert all(_running(e) for e in record["platforms"]) and "cleaned up" not in second.text()
    assert first.signal(signal.SIGTERM) == 0 and second.signal(signal.SIGTERM) == 0


def test_a_stop_swallowed_inside_a_finaliser_is_raised_again_between_tests() -> None:
    """A SIGINT whose KeyboardInterrupt lands in a `__del__` is only printed by Python; raise_lost_stop raises it."""
    script = (
        "import gc, signal, sys\n"
        "from rxverify.target.processes import raise_lost_stop, stop_on_signals\n"
        "stop_on_signals()\n"
        "class Late:\n"
        "    def __del__(self):\n"
        "        signal.raise_signal(signal.SIGINT)\n"
        "        sum(range(1000))\n"
        "Late()\n"
        "gc.collect()\n"
        "print('went on', flush=True)\n"
        "try:\n"
        "    raise_lost_stop()\n"
        "except KeyboardInterrupt:\n"
        "    print('stopped', flush=True)\n"
        "    sys.exit(2)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "Exception ignored" in out.stderr and "KeyboardInterrupt" in out.stderr, out.stderr
    assert out.stdout.split() == ["went", "on", "stopped"] and out.returncode == 2, (out.stdout, out.stderr)


def test_the_contract_runs_sigterm_swallowed_inside_a_finaliser_is_raised_again() -> None:
    """The contract run's own SIGTERM handler (pytest_evidence) records its signal too: CI once saw a SIGTERM'd
    contract run, its Terminated swallowed in hypothesis's gc callback, finish its tests and exit 0."""
    script = (
        "import gc, signal, sys\n"
        "from rxverify.report.pytest_evidence import _interrupt\n"
        "from rxverify.target.processes import Terminated, raise_lost_stop\n"
        "signal.signal(signal.SIGTERM, _interrupt)\n"
        "class Late:\n"
        "    def __del__(self):\n"
        "        signal.raise_signal(signal.SIGTERM)\n"
        "        sum(range(1000))\n"
        "Late()\n"
        "gc.collect()\n"
        "print('went on', flush=True)\n"
        "try:\n"
        "    raise_lost_stop()\n"
        "except Terminated:\n"
        "    print('stopped', flush=True)\n"
        "    sys.exit(2)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "Exception ignored" in out.stderr and "Terminated" in out.stderr, out.stderr
    assert out.stdout.split() == ["went", "on", "stopped"] and out.returncode == 2, (out.stdout, out.stderr)
