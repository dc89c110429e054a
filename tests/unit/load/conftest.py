"""Running the locustfile as performance engineers do: `locust -f loadtests/locustfile.py ...`, bounded."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rxverify.report.evidence import Manifest, latest_run

ROOT = Path(__file__).resolve().parents[3]
LOCUST = [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py"]
RUN_TIMEOUT_S = 90  # any single run of these tests; the profiles they use last 10-15 s


@dataclass
class LoadRun:
    """A finished locust process and what it left under its reports folder."""

    code: int
    stdout: str
    stderr: str
    reports: Path
    shape: str = "smoke"

    @property
    def manifest(self) -> Manifest:
        """The run's manifest (its evidence is in its own run folder, rxverify.report.evidence)."""
        manifest = latest_run(self.reports, "load")
        assert manifest is not None, f"no load run in {self.reports}: {self.stderr[-2000:]}"
        return manifest

    @property
    def summary(self) -> dict[str, Any]:
        path = self.manifest.folder / "load" / f"{self.shape}-summary.json"
        return json.loads(path.read_text(encoding="utf-8"))

    @property
    def results(self) -> Path:
        """The run's Allure results."""
        return self.manifest.results

    @property
    def user_lines(self) -> list[str]:
        """The lines rxverify wrote to stderr (not Locust's log lines)."""
        return [line for line in self.stderr.splitlines() if line.startswith("rxverify")]


def locust_args(reports: Path, *extra: str, shape: str = "smoke") -> list[str]:
    """The smoke profile with its outputs under `reports`, judged from the first second (no warm-up).

    These tests judge the runtime's own mechanics over the whole run; the profile's warm-up has a
    test of its own (test_load_runs.py), which gives --warm-up again (the later one counts).
    """
    return [
        *LOCUST, "--headless", "--config", "loadtests/profiles/smoke.conf", "--reports", str(reports),
        "--csv", str(reports / "load" / shape), "--html", str(reports / "load" / f"{shape}.html"), "--warm-up", "0",
        *extra,
    ]  # fmt: skip


def free_port() -> str:
    """A free loopback port (for a master, so runs of others on this machine cannot meet ours on 5557)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def run_locust(reports: Path, *extra: str, timeout: float = RUN_TIMEOUT_S) -> LoadRun:
    """Run the locustfile to its end (bounded) and collect what it printed."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        locust_args(reports, *extra), cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )
    return LoadRun(proc.returncode, proc.stdout, proc.stderr, reports)


@pytest.fixture
def reports(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "reports"
    path.mkdir()
    yield path
