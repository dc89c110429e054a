"""Fixtures that start real reference-platform processes on loopback for the platform tests."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

ROOT = Path(__file__).resolve().parents[3]
CONTRACTS = ROOT / "contracts"


@dataclass
class RunningPlatform:
    """One started platform process."""

    platform: str
    base_url: str
    data_dir: Path
    key_file: Path
    process: subprocess.Popen[str]
    faults: list[str] = field(default_factory=list)

    @property
    def legacy(self) -> str:
        return self.base_url + "/legacy"

    @property
    def fhir(self) -> str:
        return self.base_url + "/fhir"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_ready(args: list[str], what: str) -> tuple[subprocess.Popen[str], str]:
    """Start `python -m refplatform ARGS` and wait for its READY line; the process and its base URL."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "refplatform", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("READY") or not line:
            break
    if not line.startswith("READY"):
        proc.kill()
        raise RuntimeError(f"{what} did not start: {proc.stderr.read() if proc.stderr else ''}")
    return proc, line.split()[2]


def start_platform(platform: str, data_dir: Path, key_file: Path, faults: list[str] | None = None,
                   extra: list[str] | None = None) -> RunningPlatform:
    """Start `python -m refplatform --platform ...` (plus `extra` options) and wait for its READY line."""
    cmd = ["--platform", platform, "--data-dir", str(data_dir), "--ticket-key-file", str(key_file)]
    for fault in faults or []:
        cmd += ["--fault", fault]
    proc, url = start_ready(cmd + list(extra or []), f"{platform} platform")
    return RunningPlatform(platform, url, data_dir, key_file, proc, list(faults or []))


@pytest.fixture(scope="session")
def ticket_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "ticket.key"
    path.write_text(secrets.token_hex(32))
    return path


@pytest.fixture(scope="session")
def actors() -> dict[str, Any]:
    return json.loads((CONTRACTS / "testdata" / "test-actors.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def patients() -> list[dict[str, Any]]:
    return json.loads((CONTRACTS / "testdata" / "test-patients.json").read_text(encoding="utf-8"))["patients"]


@pytest.fixture(scope="session")
def mint(ticket_key_file: Path, actors: dict[str, Any]) -> Callable[..., dict[str, str]]:
    """Headers with a ticket for a test actor: mint("prescriber", 0) or mint("pharmacy", 2)."""
    key = ticket_key_file.read_text().strip().encode()

    def _mint(role: str, index: int = 0, **override: Any) -> dict[str, str]:
        now = int(time.time())
        if role == "prescriber":
            p = actors["prescribers"][index]
            claims = {
                "sub": p["id"],
                "role": "prescriber",
                "hsaId": p["hsaId"],
                "forskrivarkod": p["forskrivarkod"],
                "arbetsplatskod": p["careUnit"],
            }
        else:
            ph = actors["pharmacies"][index]
            claims = {"sub": ph["id"], "role": "pharmacy", "gln": ph["gln"]}
        claims.update({"iss": "rxverify-local", "iat": now, "exp": now + 3600})
        claims.update(override)
        token = jwt.encode(claims, key, algorithm="HS256")
        return {"Authorization": f"Bearer {token}"}

    return _mint


@pytest.fixture(scope="module")
def old_platform(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path) -> Iterator[RunningPlatform]:
    p = start_platform("old", tmp_path_factory.mktemp("old"), ticket_key_file)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def new_platform(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path) -> Iterator[RunningPlatform]:
    p = start_platform("new", tmp_path_factory.mktemp("new"), ticket_key_file)
    yield p
    p.stop()


@pytest.fixture(params=["old", "new"])
def legacy_platform(request: pytest.FixtureRequest) -> RunningPlatform:
    """The legacy interface on either platform (the same tests must pass on both)."""
    return request.getfixturevalue(f"{request.param}_platform")


@pytest.fixture()
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.fixture(scope="session")
def seeded_old(tmp_path_factory: pytest.TempPathFactory, patients: list[dict[str, Any]]) -> Path:
    """An old store seeded (seed 11) for the 42 test patients of migration_support.subset: read it, never write."""
    from refplatform.seed import seed_old_store

    from .migration_support import AS_OF, subset

    data_dir = tmp_path_factory.mktemp("seeded-old")
    seed_old_store(data_dir, CONTRACTS, seed=11, as_of=AS_OF, patients=subset(patients))
    return data_dir
