"""What the report is told about the run: environment, executor, history; and what it needs to run."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from rxverify.cli import main
from rxverify.errors import UserError
from rxverify.report import generate
from rxverify.report.evidence import read_runs
from rxverify.report.runs import read_run_records
from rxverify.safety.egress import guarded_session
from rxverify.safety.guard import Guard
from rxverify.safety.registry import Registry, load_registry

from ..conftest import CONTRACTS
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


def test_environment_names_release_run_target_platforms_commit_seed(tmp_path: Path) -> None:
    run = b.Run(tmp_path, "contract", seed=1234)
    run.record()
    values = generate.environment(tmp_path, read_run_records(tmp_path), "21.0", runs=read_runs(tmp_path))
    assert values["release.run"] == json.loads((tmp_path / "release.json").read_text())["releaseRun"]
    assert values["target"] == "local (local)"
    assert values["platforms"].startswith("the embedded reference platforms")
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
    b.Run(tmp_path).result("test_x")
    monkeypatch.setattr(generate.shutil, "which", lambda name: None)
    assert main(["report", "--reports", str(tmp_path), "--no-probe"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "java, node, npm not found" in err


def test_report_command_without_results_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--reports", str(tmp_path), "--no-probe"]) == 2
    assert capsys.readouterr().err.startswith("rxverify: no Allure results in ")


def test_the_previous_report_is_gone_when_the_scan_fails_and_the_gate_links_to_nothing(
    tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rxverify.gate.criteria import load_criteria
    from rxverify.gate.evaluate import evaluate

    contract, _ = b.passing_run(tmp_path)
    output = tmp_path / "allure-report"
    (output / "history").mkdir(parents=True)
    (output / "history" / "history-trend.json").write_text("[]")
    (output / "index.html").write_text("<html>the previous report</html>")
    (output / "provenance.json").write_text("{}")
    contract.result("test_leak", "failed", message="AssertionError: Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x")
    monkeypatch.setattr(generate, "require_tools", lambda: pytest.fail("the scan stops it before any tool runs"))
    outcome = generate.generate_report(None, output, tmp_path, registry, tmp_path)
    assert outcome.findings and outcome.index is None
    assert not (output / "index.html").exists() and not (output / "provenance.json").exists()
    assert (output / "history" / "history-trend.json").is_file()  # the trend survives for the next report
    verdict = evaluate(tmp_path, load_criteria(CONTRACTS / "release-criteria.toml"))
    assert verdict.report is None and all(r.link is None for r in verdict.reasons)


def test_the_report_is_made_of_the_release_runs_folders_only(
    tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract, load = b.passing_run(tmp_path)
    seen: list[list[str]] = []
    given: set[str] = set()

    real = subprocess.run

    def allure(command: list[str], **options: object) -> object:
        if command[0] != "/bin/allure":
            return real(command, **options)  # type: ignore[call-overload]
        seen.append(command)
        given.update(p.name for p in Path(command[2]).glob("*-result.json"))  # the one folder Allure reads
        output = Path(command[command.index("-o") + 1])
        output.mkdir(parents=True, exist_ok=True)
        (output / "index.html").write_text("<html></html>")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(generate, "require_tools", lambda: None)
    monkeypatch.setattr(generate, "allure_command", lambda tools, out: Path("/bin/allure"))
    monkeypatch.setattr(generate.subprocess, "run", allure)
    outcome = generate.generate_report(None, tmp_path / "allure-report", tmp_path, registry, tmp_path)
    assert outcome.index is not None
    [command] = seen
    # one folder for Allure (so categories.json applies), holding the results of the release run's runs
    assert command[1] == "generate" and len(command[2:command.index("-o")]) == 1
    assert given == {p.name for run in (contract, load) for p in run.results.glob("*-result.json")} and given
    assert not any((run.results / "environment.properties").exists() for run in (contract, load))  # not written to
    provenance = json.loads((tmp_path / "allure-report" / "provenance.json").read_text())
    assert set(provenance["runs"]) == {contract.run, load.run}
