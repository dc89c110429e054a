"""The gateway: the callers' one address, forwarding every request to the current upstream; the operator switches it.

The upstreams here are two echo servers on loopback (each answers with what it received, and its
name), so every part of a request and an answer can be compared; test_migration_full runs the
gateway's own process in front of the real platforms.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.testclient import TestClient

from refplatform.cli import bind
from refplatform.common.faults import FaultSet
from refplatform.gateway import Gateway

from .migration_support import run_main, ticket
from .test_platform_common import assert_bad_input

OPERATOR_KEY = b"gateway-operator-" + b"k" * 32
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY.decode()}"}


def echo_app(name: str) -> Any:
    """An upstream that answers 201 with what it received; /slow answers after 2 s."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/slow":
            await asyncio.sleep(2)
        payload = json.dumps({
            "upstream": name, "method": scope["method"], "raw_path": scope["raw_path"].decode("latin-1"),
            "query": scope["query_string"].decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "body": body.hex(),
        }).encode()
        await send({"type": "http.response.start", "status": 201, "headers": [
            (b"content-type", b"application/json"), (b"x-echo", name.encode()), (b"set-cookie", b"a=1"),
            (b"set-cookie", b"b=2")]})
        await send({"type": "http.response.body", "body": payload})

    return app


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, str]]:
    """Two echo servers, "old" and "new", on free loopback ports (threads of this process)."""
    servers, threads, urls = [], [], {}
    for name in ("old", "new"):
        sock = bind("127.0.0.1", 0)
        server = uvicorn.Server(uvicorn.Config(echo_app(name), log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        servers.append(server)
        threads.append(thread)
        urls[name] = f"http://127.0.0.1:{sock.getsockname()[1]}"
    for server in servers:
        while not server.started:
            threading.Event().wait(0.01)
    yield urls
    for server in servers:
        server.should_exit = True
    for thread in threads:
        thread.join(timeout=5)


@pytest.fixture()
def gateway(upstreams: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(Gateway(dict(upstreams), "old", OPERATOR_KEY, timeout=0.5)) as client:
        yield client


def test_forwards_method_path_query_headers_and_body_and_the_answer_unchanged(gateway: TestClient) -> None:
    body = "åäö".encode() + bytes(range(256))
    r = gateway.request("PATCH", "/legacy/x%20y/%C3%A5", params=[("b", "1"), ("b", "2"), ("c", "å")], content=body,
                        headers={"X-Custom": "ett värde".encode(), "Authorization": "Bearer abc",
                                 "Content-Type": "application/octet-stream", "Connection": "keep-alive, X-Drop",
                                 "X-Drop": "hop", "TE": "trailers"})
    assert r.status_code == 201 and r.headers["x-echo"] == "old"
    assert r.headers.get_list("set-cookie") == ["a=1", "b=2"]
    seen = r.json()
    assert seen["method"] == "PATCH" and seen["raw_path"] == "/legacy/x%20y/%C3%A5"
    assert seen["query"] == "b=1&b=2&c=%C3%A5"
    assert bytes.fromhex(seen["body"]) == body
    headers = dict(seen["headers"])
    assert headers["x-custom"] == "ett värde".encode().decode("latin-1")
    assert headers["authorization"] == "Bearer abc" and headers["content-type"] == "application/octet-stream"
    assert headers["host"] == "testserver"  # the caller's Host: addresses the platform builds name the gateway
    assert "x-drop" not in headers and "te" not in headers  # hop-by-hop, and named by Connection
    for method in ("GET", "PUT", "DELETE"):
        assert gateway.request(method, "/fhir/Consent").json()["method"] == method
    encoded = gateway.get("/fhir/MedicationRequest%2fx?patient-identifier=a%7Cb&d=%41&e=a+b").json()
    assert encoded["raw_path"] == "/fhir/MedicationRequest%2fx"  # as sent, not decoded
    assert encoded["query"] == "patient-identifier=a%7Cb&d=%41&e=a+b"


def test_the_operator_switches_the_route_and_back(gateway: TestClient) -> None:
    state = gateway.get("/admin/route", headers=OPERATOR).json()
    assert state["route"] == "old" and set(state["upstreams"]) == {"old", "new"}
    assert gateway.get("/status").json()["upstream"] == "old"
    switched = gateway.post("/admin/route", json={"route": "new"}, headers=OPERATOR).json()
    assert switched["route"] == "new" and switched["since"] >= state["since"]
    assert gateway.post("/legacy/ordinationer", json={}).json()["upstream"] == "new"
    gateway.post("/admin/route", json={"route": "old"}, headers=OPERATOR)
    assert gateway.get("/legacy/patienter/191212121212").json()["upstream"] == "old"


def test_with_its_fault_the_gateway_applies_the_cutover_but_not_the_rollback(upstreams: dict[str, str]) -> None:
    faults = FaultSet(["gateway-rollback-not-applied"])
    with TestClient(Gateway(dict(upstreams), "old", OPERATOR_KEY, timeout=0.5, faults=faults)) as gateway:
        gateway.post("/admin/route", json={"route": "new"}, headers=OPERATOR)
        assert gateway.get("/status").json()["upstream"] == "new"  # the first switch is applied
        back = gateway.post("/admin/route", json={"route": "old"}, headers=OPERATOR).json()
        assert back["route"] == "old" and gateway.get("/admin/route", headers=OPERATOR).json()["route"] == "old"
        assert gateway.get("/status").json()["upstream"] == "new"  # its word is old, its traffic goes to new


def test_the_route_needs_the_operator_key_and_is_never_forwarded(gateway: TestClient, actors: dict[str, Any]) -> None:
    for headers in ({}, ticket("pharmacy", actors), ticket("prescriber", actors), {"Authorization": "Bearer wrong"}):
        assert gateway.get("/admin/route", headers=headers).status_code == 401
        assert gateway.post("/admin/route", json={"route": "new"}, headers=headers).status_code == 401
        # nothing under /admin reaches a platform
        assert gateway.get("/admin/window", headers=headers).status_code == 401
    assert gateway.get("/admin/route", headers=OPERATOR).json()["route"] == "old"
    assert gateway.get("/admin/window", headers=OPERATOR).status_code == 404
    for body in ({"route": "elsewhere"}, {}, {"route": "new", "x": 1}, ["new"]):
        assert gateway.post("/admin/route", json=body, headers=OPERATOR).status_code == 400
    assert gateway.delete("/admin/route", headers=OPERATOR).status_code == 405
    assert gateway.get("/admin/route", headers=OPERATOR).json()["route"] == "old"


def test_an_unreachable_or_slow_upstream_is_an_answer_in_the_interfaces_format(upstreams: dict[str, str]) -> None:
    closed = bind("127.0.0.1", 0)
    gone = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()  # nothing listens there now
    with TestClient(Gateway({"old": upstreams["old"], "gone": gone}, "gone", OPERATOR_KEY, timeout=0.5)) as client:
        legacy = client.get("/legacy/patienter/191212121212")
        assert (legacy.status_code, legacy.json()["kod"]) == (502, "TJANSTEFEL")
        fhir = client.get("/fhir/MedicationRequest")
        assert fhir.status_code == 502 and fhir.json()["resourceType"] == "OperationOutcome"
        assert fhir.headers["content-type"].startswith("application/fhir+json")
        client.post("/admin/route", json={"route": "old"}, headers=OPERATOR)
        assert client.get("/slow").status_code == 504
        assert client.get("/fast").status_code == 201  # the gateway itself goes on


@pytest.mark.parametrize(("args", "words"), [
    (["--route", "old", "--admin-key-file", "{key}"], ("--upstream",)),
    (["--upstream", "old", "--route", "old", "--admin-key-file", "{key}"], ("NAME=URL",)),
    (["--upstream", "old=ftp://127.0.0.1:21", "--route", "old", "--admin-key-file", "{key}"], ("http",)),
    (["--upstream", "old=http://192.0.2.1:8000", "--route", "old", "--admin-key-file", "{key}"], ("loopback",)),
    (["--upstream", "old=http://127.0.0.1:1", "--upstream", "old=http://127.0.0.1:2", "--route", "old",
      "--admin-key-file", "{key}"], ("twice",)),
    (["--upstream", "old=http://127.0.0.1:1", "--route", "new", "--admin-key-file", "{key}"], ("--route new",)),
    (["--upstream", "old=http://127.0.0.1:1", "--route", "old", "--admin-key-file", "{tmp}/missing"], ("missing",)),
    (["--upstream", "old=http://127.0.0.1:1", "--route", "old", "--admin-key-file", "{short}"], ("shorter",)),
    (["--upstream", "old=http://127.0.0.1:1", "--route", "old"], ("--admin-key-file",)),
    (["--upstream", "old=http://127.0.0.1:1", "--route", "old", "--admin-key-file", "{key}", "--timeout", "0"],
     ("--timeout",)),
    (["--upstream", "old=http://127.0.0.1:1", "--route", "old", "--admin-key-file", "{key}", "--host", "0.0.0.0"],
     ("loopback",)),
    (["--upstream", "old=http://127.0.0.1:1", "--route", "old", "--admin-key-file", "{key}", "--port", "x"],
     ("--port",)),
    (["--upstream", "old=http://127.0.0.1:1", "--route", "old", "--admin-key-file", "{key}", "--fault", "no-such"],
     ("unknown fault 'no-such'",)),
    (["--upstream", "old=http://127.0.0.1:1", "--route", "old", "--admin-key-file", "{key}", "--fault",
      "old-slow-aktuella"], ("old-slow-aktuella is not a gateway fault",)),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                              words: tuple[str, ...]) -> None:
    (tmp_path / "key").write_bytes(OPERATOR_KEY)
    (tmp_path / "short").write_bytes(b"short")
    argv = [a.replace("{key}", str(tmp_path / "key")).replace("{short}", str(tmp_path / "short"))
            .replace("{tmp}", str(tmp_path)) for a in args]
    assert_bad_input(run_main(capsys, "gateway", *argv), *words)
