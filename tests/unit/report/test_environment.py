"""What the report is told about the run: environment, executor, history; and what it needs to run."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from rxverify.cli import main
from rxverify.errors import UserError
from rxverify.report import generate
from rxverify.report.runs import read_run_records
from rxverify.safety.egress import guarded_session
from rxverify.safety.guard import Guard
from rxverify.safety.registry import load_registry

from . import builders as b

ROOT = Path(__file__).resolve().parents[3]


class _Status(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"platform": "new", "product": "ECP", "release": "21.0", "version": "2.3.4"}).encode()
        self.send_response(200 if self.path == "/status" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def status_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_status_url_is_the_platform_root() -> None:
    assert generate.status_url("https://ecp.example.invalid/legacy/") == "https://ecp.example.invalid/status"
    assert generate.status_url("http://127.0.0.1:1/fhir") == "http://127.0.0.1:1/status"


def test_versions_come_from_the_platforms_when_they_answer(tmp_path: Path, status_server: str) -> None:
    b.run_record(tmp_path)  # the recorded platform (port 9) does not answer: its record is used
    records = read_run_records(tmp_path)
    guard = Guard(load_registry(ROOT / "contracts" / "testdata" / "test-patients.json"))
    session = guarded_session(guard)
    assert generate.platform_versions(records, session) == {"new": "ECP 0.1.0 (as recorded by the run)"}
    records[0].platforms["new"]["legacy"] = status_server + "/legacy"
    assert generate.platform_versions(records, session) == {"new": "ECP 2.3.4 (release 21.0)"}
    assert guard.counts["passed"] == 2 and guard.counts["sent"] == 1  # both through the guard; port 9 never connected
    assert generate.platform_versions(records) == {"new": "ECP 0.1.0 (as recorded by the run)"}  # no session: no probe


def test_environment_names_target_release_commit_seed(tmp_path: Path) -> None:
    b.run_record(tmp_path, "contract", seed=1234)
    b.verification_summary(tmp_path, [{"id": "S1", "status": "passed"}])
    values = generate.environment(tmp_path, read_run_records(tmp_path), None)
    assert values["target"] == "local (local)"
    assert values["release"] == "21.0"
    assert values["seed"] == "contract=1234"
    assert values["platform.new"] == "ECP 0.1.0 (as recorded by the run)"
    assert len(values["git.commit"].removesuffix("-dirty")) in (40, len("unknown"))
    executor = generate.executor(values)
    assert executor["name"] == "rxverify" and "21.0" in executor["reportName"]


def test_history_is_carried_from_the_kept_folder_or_the_single_file(tmp_path: Path) -> None:
    output, results = tmp_path / "allure-report", tmp_path / "allure-results"
    output.mkdir()
    trend = base64.b64encode(b'[{"data": {"passed": 3}}]').decode()
    (output / "index.html").write_text(f"<script>d('history/history-trend.json','{trend}')</script>")
    assert generate.carry_history(output, results) == 1
    assert json.loads((results / "history" / "history-trend.json").read_text()) == [{"data": {"passed": 3}}]
    (output / "history").mkdir()
    (output / "history" / "history.json").write_text("{}")
    assert generate.carry_history(output, results) == 1  # the kept folder wins


def test_missing_tools_are_named_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate.shutil, "which", lambda name: None if name == "java" else f"/usr/bin/{name}")
    with pytest.raises(UserError) as raised:
        generate.require_tools()
    assert str(raised.value) == (
        "the Allure report needs Java 8 or newer (Debian: apt-get install -y default-jre-headless): java not found"
    )


def test_report_command_without_tools_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    b.result(tmp_path / "allure-results", "test_x")
    monkeypatch.setattr(generate.shutil, "which", lambda name: None)
    assert main(["report", "--reports", str(tmp_path), "--no-probe"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "java, node, npm not found" in err


def test_report_command_without_results_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--reports", str(tmp_path), "--no-probe"]) == 2
    assert capsys.readouterr().err.startswith("rxverify: no Allure results in ")
