"""One failure never hides another: two checks failing on one operation are both reported, to Allure and the gate.

A tiny FHIR-like server on loopback answers `GET /metadata` with a searchset Bundle where the
contract declares a CapabilityStatement, and answers TRACE on it with 404 where 405 is due.
Schemathesis, left to itself, stops at the first failing explicit (coverage) example, TRACE,
and the GET's answer is never reported; the same test with `rx_failures` reports both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rxverify.distinct_failures import FailureCollector, message_shape
from rxverify.gate.evaluate import failures_of
from rxverify.report.evidence import RELEASE_RUN_ENV

from .conftest import CONTRACTS

RUN_TIMEOUT_S = 180
TEST_FILE = """
import socket
import threading
import time

import pytest
import schemathesis
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def metadata(request):
    if request.method != "GET":
        return JSONResponse({"error": "not found"}, status_code=404)  # the contract declares 405
    return JSONResponse({"resourceType": "Bundle", "type": "searchset"})  # a CapabilityStatement is declared


app = Starlette(routes=[Route("/metadata", metadata, methods=["GET", "TRACE", "POST", "PUT", "DELETE", "PATCH"])])
schema = schemathesis.openapi.from_dict({
    "openapi": "3.0.3",
    "info": {"title": "metadata", "version": "1"},
    "paths": {"/metadata": {"get": {
        "operationId": "CapabilityStatement.read",
        "responses": {"200": {"description": "the server's CapabilityStatement", "content": {"application/json": {
            "schema": {"type": "object", "required": ["resourceType"],
                       "properties": {"resourceType": {"type": "string", "enum": ["CapabilityStatement"]}}}}}}},
    }}},
})


@pytest.fixture(scope="session")
def base_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@schema.parametrize()
def test_alone(case, base_url):
    case.call_and_validate(base_url=base_url)


@schema.parametrize()
def test_collected(case, base_url, rx_failures):
    with rx_failures.collect():
        case.call_and_validate(base_url=base_url)
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    """Both tests run once under pytest with the rxverify plugin; their Allure results by test name."""
    folder = tmp_path_factory.mktemp("distinct")
    (folder / "test_metadata_server.py").write_text(TEST_FILE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != RELEASE_RUN_ENV}
    env["RXVERIFY_REPORTS"] = str(folder / "reports")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "test_metadata_server.py",
            "-p",
            "no:cacheprovider",
            "--seed",
            "3",
            "--alluredir",
            str(folder / "allure"),
            "--contracts",
            str(CONTRACTS),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=env,
        check=False,
    )
    assert done.returncode == 1, done.stdout[-3000:]
    found = {}
    for path in (folder / "allure").glob("*-result.json"):
        document = json.loads(path.read_text(encoding="utf-8"))
        document["attachmentTexts"] = [
            (folder / "allure" / a["source"]).read_text(encoding="utf-8") for a in document.get("attachments", [])
        ]
        found[document["name"].split("[")[0]] = document
    return found


def _message(result: dict[str, object]) -> str:
    details = result["statusDetails"]
    assert isinstance(details, dict)
    return str(details["message"])


def test_left_to_itself_schemathesis_reports_one_of_the_two(results: dict[str, dict[str, object]]) -> None:
    message = _message(results["test_alone"])
    assert "Unsupported methods" in message or "405" in message
    assert "Response violates schema" not in message  # the GET's answer was never reported


def test_with_the_collector_both_reach_the_allure_result(results: dict[str, dict[str, object]]) -> None:
    result = results["test_collected"]
    assert result["status"] == "failed"
    message = _message(result)
    _, listed = failures_of(message)
    schema = [line for line in listed if line.startswith("ST108 Response violates schema")]
    method = [line for line in listed if line.startswith("ST204 Wrong response to undeclared method")]
    assert len(schema) == 1 and '"Bundle" is not one of "CapabilityStatement"' in schema[0], message
    assert len(method) == 1 and "TRACE returned 404, expected 405" in method[0], message
    attachments = result["attachments"]
    assert isinstance(attachments, list)
    named = [a["name"] for a in attachments if str(a["name"]).startswith("failure ")]
    assert len(named) == len(listed) >= 2  # each failure attached on its own, with the example that showed it
    texts = result["attachmentTexts"]
    assert isinstance(texts, list) and any("Bundle" in t and "curl" in t for t in texts)


def test_the_gate_makes_each_a_reason(results: dict[str, dict[str, object]], tmp_path: Path) -> None:
    from rxverify.gate.evaluate import _test_reasons
    from rxverify.gate.links import ReportLinks
    from rxverify.report.results import read_results

    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "x-result.json").write_text(json.dumps(results["test_collected"]), encoding="utf-8")
    [result] = read_results(folder)
    reasons = _test_reasons("failed tests", result, ReportLinks(tmp_path), "")
    assert len(reasons) == len(failures_of(result.message)[1]) >= 2
    assert any("Response violates schema" in r.text for r in reasons)
    assert any("Wrong response to undeclared method" in r.text for r in reasons)


def test_the_same_failure_on_many_examples_is_one_and_another_check_another() -> None:
    from schemathesis.core.failures import FailureGroup

    from rxverify.checks.failures import RuleViolation

    collector = FailureCollector()
    for n in (1, 2, 3):
        with collector.collect():
            raise FailureGroup([RuleViolation(rule="default_validity", operation="POST /x", message=f"{n} days off")])
    with collector.collect():
        raise RuleViolation(rule="status_transitions", operation="POST /x", message="Aktiv to Makulerad")
    with collector.collect():
        pass
    assert [f.examples for f in collector.found] == [3, 1] and collector.examples == 5
    with pytest.raises(AssertionError) as raised:
        collector.raise_collected("test_x")
    _, listed = failures_of(str(raised.value))
    assert listed == [
        "ST911 Rule violated: default_validity [POST /x]: 1 days off (3 examples)",
        "ST911 Rule violated: status_transitions [POST /x]: Aktiv to Makulerad (1 example)",
    ]
    assert message_shape("ordination 6f1c2c1e-0b0a-4d6e-9c7e-3a5b1f2d4c6e: 12 left") == "ordination <id>: 0 left"
