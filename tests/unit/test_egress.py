"""One egress: every request to a platform leaves through the guarded transports, whatever makes it.

schemathesis's own probes, redirects (each hop), Locust's FastHttp client in every argument form,
the report's status probe, a production-class target refused before any connection, and the
egress audit that compares what the platforms received with what the guard sent.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import requests
from schemathesis.core.failures import FailureGroup

from rxverify.contract import ACTIVE, load_contract
from rxverify.safety.egress import guarded_session
from rxverify.safety.guard import Guard, RequestRefused
from rxverify.safety.registry import Registry
from rxverify.target.credentials import TicketMinter, load_actors
from rxverify.target.run import Run, open_run
from rxverify.target.targets import Target

from . import safety_encodings as enc
from .conftest import CONTRACTS, ROOT


class _Server(BaseHTTPRequestHandler):
    """Answers 200 to everything (it enforces no ticket) and redirects /hop/N to `redirects[N]` (set by a test)."""

    received: ClassVar[list[str]] = []
    redirects: ClassVar[dict[str, str]] = {}

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        type(self).received.append(f"{self.command} {self.path}")
        if self.path.startswith("/hop/"):
            self.send_response(302)
            self.send_header("Location", type(self).redirects[self.path.removeprefix("/hop/")])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Server.received = []
    httpd = HTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "probe", "version": "1"},
    "paths": {
        "/things": {
            "get": {
                "operationId": "ReadThings",
                "security": [{"ticket": []}],
                "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {}}}},
                              "401": {"description": "no ticket"}},
            }
        }
    },
    "components": {"securitySchemes": {"ticket": {"type": "http", "scheme": "bearer"}}},
}  # fmt: skip


def test_schemathesis_probes_go_through_the_guard(tmp_path: Path, registry: Registry, server: str) -> None:
    """ignored_auth resends a case without and with a bad ticket: the guard must see every one of them."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    schema = load_contract(spec)
    guard = Guard(registry)
    actors = load_actors(CONTRACTS / "testdata" / "test-actors.json")
    run = Run(Target("probe", "local", platforms={}), registry, actors, TicketMinter(os.urandom(32), actors), guard)
    ACTIVE.run, ACTIVE.registry = run, registry
    try:
        case = schema["/things"]["GET"].Case(headers={"Authorization": "Bearer a-ticket-of-this-test"})
        with pytest.raises(FailureGroup) as failed:  # the server enforces no ticket: the auth check fails
            case.call_and_validate(base_url=server, session=run.session())
        assert any(type(e).__name__ == "IgnoredAuth" for e in failed.value.exceptions)
    finally:
        ACTIVE.run = ACTIVE.registry = None
    assert len(_Server.received) >= 2  # the case and at least one probe
    assert guard.counts["sent"] == len(_Server.received)  # every one of them left through the guard


def test_every_redirect_hop_is_inspected(registry: Registry, server: str) -> None:
    foreign = enc.foreign_identity(__import__("random").Random(3), registry)
    guard = Guard(registry)
    session = guarded_session(guard)
    _Server.redirects["1"] = f"/patienter/{foreign}"  # the first request names no one; the server's answer does
    with pytest.raises(RequestRefused):
        session.get(f"{server}/hop/1")
    assert _Server.received == ["GET /hop/1"]  # the second hop never left
    assert guard.counts["sent"] == 1 and guard.counts["identity"] == 1


def test_a_session_without_the_guard_cannot_be_had_from_a_run(registry: Registry) -> None:
    """Every transport of a run's session is guarded (http and https); nothing reads proxies from the environment."""
    actors = load_actors(CONTRACTS / "testdata" / "test-actors.json")
    run = Run(Target("x", "local"), registry, actors, TicketMinter(os.urandom(32), actors), Guard(registry))
    session = run.session()
    from rxverify.safety.egress import GuardedAdapter

    assert set(session.adapters) == {"http://", "https://"}
    assert all(isinstance(a, GuardedAdapter) for a in session.adapters.values())
    assert session.trust_env is False


FASTHTTP = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from locust.env import Environment
    from rxverify.load.client import GuardedFastHttpSession
    from rxverify.safety.guard import Guard, RequestRefused
    from rxverify.safety.registry import load_registry

    base, foreign, patient = sys.argv[1], sys.argv[2], sys.argv[3]
    guard = Guard(load_registry(Path("contracts/testdata/test-patients.json")))
    env = Environment()
    session = GuardedFastHttpSession(guard, base_url=base, request_event=env.events.request, user=None)
    forms = {
        "data": dict(data=json.dumps({"p": "ID"}), headers={"Content-Type": "application/json"}),
        "json": dict(json={"p": "ID"}),
        "params": dict(params={"p": "ID"}),
        "form": dict(data={"p": "ID"}),
        "files": dict(files={"f": ("a.txt", b"ID", "text/plain")}),
        "headers": dict(headers={"x-patientref": "ID"}),
        "cookies": dict(headers={"Cookie": "p=ID"}),
        "redirect": dict(path="/hop/WHO"),
    }
    out = {}
    for name, kwargs in forms.items():
        path = kwargs.pop("path", "/x")
        for who, ident in (("foreign", foreign), ("patient", patient)):
            filled = json.loads(json.dumps(kwargs).replace("ID", ident)) if name != "files" else {
                "files": {"f": ("a.txt", ident.encode(), "text/plain")}}
            try:
                response = session.request("POST" if name in ("data", "json", "form", "files") else "GET",
                                           path.replace("WHO", who), **filled)
                out[f"{name} {who}"] = response.status_code
            except RequestRefused:
                out[f"{name} {who}"] = "refused"
    out["sent"] = guard.counts["sent"]
    print(json.dumps(out))
    """
)


def test_fasthttp_every_argument_form_passes_the_guard(registry: Registry, server: str) -> None:
    rng = __import__("random").Random(11)
    foreign = enc.foreign_identity(rng, registry)
    patient = registry.patients[3].id
    _Server.redirects.update(foreign=f"/patienter/{foreign}", patient=f"/patienter/{patient}")
    done = subprocess.run(
        [sys.executable, "-c", FASTHTTP, server, foreign, patient],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    forms = ("data", "json", "params", "form", "files", "headers", "cookies", "redirect")
    assert {f: out[f"{f} foreign"] for f in forms} == dict.fromkeys(forms, "refused")
    assert {f: out[f"{f} patient"] for f in forms} == dict.fromkeys(forms, 200)
    # every request the server saw was one the guard sent: the patients' 8 (+1 redirect hop) and the
    # foreign redirect's first hop, whose second hop was refused
    assert out["sent"] == len(_Server.received) == 10
    assert not any(foreign in line for line in _Server.received)


class _Counting:
    """A TCP listener that only counts the connections made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


def _production(tmp_path: Path, port: int) -> Path:
    registry = json.loads((CONTRACTS / "testdata" / "test-patients.json").read_text(encoding="utf-8"))
    registry.update(synthetic=False, source="a copy made for this test", allowed_environment_classes=["production"])
    (tmp_path / "registry.json").write_text(json.dumps(registry), encoding="utf-8")
    targets = tmp_path / "targets.toml"
    targets.write_text(
        f'[prod]\nclass = "production"\nregistry = "{tmp_path / "registry.json"}"\n'
        f'[prod.new]\nlegacy = "http://127.0.0.1:{port}/legacy"\nfhir = "http://127.0.0.1:{port}/fhir"\n'
        f'[prod.old]\nlegacy = "http://127.0.0.1:{port}/legacy"\n'
    )
    return targets


@pytest.mark.parametrize("suite", ["contract", "load"])
def test_a_production_class_target_is_refused_before_any_connection(tmp_path: Path, suite: str) -> None:
    listener = _Counting()
    targets = _production(tmp_path, listener.port)
    env = {**os.environ, "RXVERIFY_REPORTS": str(tmp_path / "reports")}
    if suite == "contract":
        cmd = [sys.executable, "-m", "pytest", "tests/contract", "-p", "no:cacheprovider", "--target", "prod",
               "--targets-file", str(targets)]  # fmt: skip
    else:
        cmd = [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless", "--config",
               "loadtests/profiles/smoke.conf", "--target", "prod", "--targets-file", str(targets),
               "--reports", str(tmp_path / "reports")]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "rxverify:" in line]
    assert done.returncode == 2, done.stdout[-1500:] + done.stderr[-1500:]
    assert len(ours) == 1 and "class production" in ours[0] and "rxverify verify --plan" in ours[0], ours
    assert listener.accepted == 0


def test_the_egress_audit_sees_a_request_around_the_guard() -> None:
    local = Target("local", "local")
    with open_run(local, CONTRACTS, suite="contract", platforms=("old",), audit=True) as run:
        old = run.target.platforms["old"].legacy
        assert old
        run.session().get(old.removesuffix("/legacy") + "/status", timeout=10)
        requests.get(old.removesuffix("/legacy") + "/status", timeout=10)  # around the guard: a defect to find
    assert run.audit_problems and "GET /status that the guard never sent" in run.audit_problems[0]
    with open_run(local, CONTRACTS, suite="contract", platforms=("old",), audit=True) as clean:
        old = clean.target.platforms["old"].legacy
        assert old
        for _ in range(3):
            clean.session().get(old.removesuffix("/legacy") + "/status", timeout=10)
    assert clean.audit_problems == [] and clean.guard.counts["sent"] == 3
