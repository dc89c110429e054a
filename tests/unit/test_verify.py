"""`rxverify verify`: production refusals before any byte leaves, the rate limit, dry run, a green
run on the local target with clean reports, a stop at the first blocking failure, and a killed
run whose ledger still lists every write the platform received."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from rxverify.contracts.riv import load_riv
from rxverify.gate.criteria import load_criteria
from rxverify.gate.evaluate import evaluate
from rxverify.legacy.client import LegacyClient
from rxverify.operations import OperationIndex, load_operations
from rxverify.plans import Plan, load_plan
from rxverify.report.evidence import Manifest, latest_run
from rxverify.safety import redaction as redact
from rxverify.safety.egress import guarded_session
from rxverify.safety.guard import Guard, RateLimiter, RequestRefused
from rxverify.safety.ledger import UNKNOWN, read_ledger
from rxverify.safety.registry import Registry
from rxverify.target.credentials import TicketMinter, load_actors
from rxverify.target.local import LocalPlatforms, local_platforms
from rxverify.target.targets import Endpoints

from .conftest import CONTRACTS, ROOT
from .test_ledger import Recorder, recorder  # noqa: F401  (fixture)

SHIPPED = CONTRACTS / "verification" / "release-21.0.toml"
ACTORS = CONTRACTS / "testdata" / "test-actors.json"


def _plan(registry: Registry, path: Path = SHIPPED) -> Plan:
    return load_plan(path, load_operations(CONTRACTS), registry, load_actors(ACTORS))


def _rxverify(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rxverify", *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout
    )


def _run(reports: Path) -> Manifest:
    """The verification run in `reports` (its evidence is in its own run folder)."""
    run = latest_run(reports, "verification")
    assert run is not None, f"no verification run in {reports}"
    return run


def _production_guard(registry: Registry, legacy: str, plan: Plan | None) -> requests.Session:
    index = OperationIndex.for_endpoints(CONTRACTS, [Endpoints(legacy=legacy)])
    guard = Guard(registry, environment_class="production", plan=plan, operations=index, target_name="production")
    return guarded_session(guard)


def _now_window(plan: Plan) -> Plan:
    now = datetime.now(UTC)
    return dataclasses.replace(plan, window_start=now - timedelta(hours=1), window_end=now + timedelta(hours=1))


# --- production refusals: nothing leaves -------------------------------------------------------


def _soap(session: requests.Session, legacy: str) -> LegacyClient:
    """The one legacy client over `session` (no credentials: the refusals come before any ticket matters)."""
    return LegacyClient(session, legacy, load_riv(CONTRACTS), None, load_actors(ACTORS))


def test_production_without_plan_refuses_everything(registry: Registry, recorder: Recorder) -> None:  # noqa: F811
    legacy = recorder.url + "/legacy"
    client = _soap(_production_guard(registry, legacy, None), legacy)
    with pytest.raises(RequestRefused, match="no verification plan is active") as refused:
        client.call("KontrolleraArbetsplatskod", {"arbetsplatskod": "4000000"}, role="prescriber")
    assert refused.value.reason == "plan" and "\n" not in refused.value.message
    assert recorder.received == []


def test_production_refuses_an_operation_outside_the_plan(registry: Registry, recorder: Recorder) -> None:  # noqa: F811
    plan = _now_window(_plan(registry))
    reads_only = dataclasses.replace(plan, steps=plan.steps[:2])  # KontrolleraArbetsplatskod, HamtaPatientInfo
    legacy = recorder.url + "/legacy"
    session = _production_guard(registry, legacy, reads_only)
    client = _soap(session, legacy)
    patient = registry.patients[0].id
    with pytest.raises(RequestRefused) as refused:
        client.call("SkapaOrdinationVard", {"personnummer": patient}, role="prescriber")
    message = refused.value.message
    assert refused.value.reason == "plan" and "\n" not in message
    assert message.startswith("refused SkapaOrdinationVard") and repr(plan.name) in message
    with pytest.raises(RequestRefused, match="an operation outside the contracts"):
        session.post(f"{legacy}/AdminExportResponder/V1", data=b"<x/>")
    assert recorder.received == []
    # what the plan covers goes through
    assert client.call("HamtaPatientInfo", {"personnummer": patient}, role="pharmacy").status == 200
    assert len(recorder.received) == 1


def test_production_refuses_outside_the_window(registry: Registry, recorder: Recorder) -> None:  # noqa: F811
    plan = _plan(registry)  # its window is in November 2021
    legacy = recorder.url + "/legacy"
    client = _soap(_production_guard(registry, legacy, plan), legacy)
    with pytest.raises(RequestRefused, match="outside the window") as refused:
        client.call("KontrolleraArbetsplatskod", {"arbetsplatskod": "4000000"}, role="prescriber")
    assert refused.value.reason == "window" and recorder.received == []


def _production_targets(tmp_path: Path, url: str, synthetic: bool = True) -> Path:
    registry_line = ""
    if not synthetic:
        document = json.loads((CONTRACTS / "testdata" / "test-patients.json").read_text())
        document["synthetic"] = False
        document["source"] = "test copy of the shipped registry, marked imported for a refusal test"
        document["allowed_environment_classes"] = ["local", "test", "production"]  # as an import writes it
        (tmp_path / "registry.json").write_text(json.dumps(document))
        registry_line = f'registry = "{tmp_path / "registry.json"}"\n'
    path = tmp_path / "targets.toml"
    path.write_text(
        f'[prod]\nclass = "production"\n{registry_line}[prod.new]\nlegacy = "{url}/legacy"\nfhir = "{url}/fhir"\n'
        '[prod.tickets]\nprescriber = "RXVERIFY_TEST_UNSET_TICKET"\npharmacy = "RXVERIFY_TEST_UNSET_TICKET"\n'
    )
    return path


def test_cli_production_target_needs_confirmation(recorder: Recorder, tmp_path: Path) -> None:  # noqa: F811
    targets = _production_targets(tmp_path, recorder.url)
    reports = tmp_path / "reports"
    done = _rxverify(
        "verify", "--target", "prod", "--targets", str(targets), "--plan", "release-21.0", "--reports", str(reports)
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "--production" in done.stderr and "nothing was sent" in done.stderr
    assert recorder.received == [] and not reports.exists()


def test_cli_production_outside_window_is_refused(recorder: Recorder, tmp_path: Path) -> None:  # noqa: F811
    targets = _production_targets(tmp_path, recorder.url, synthetic=False)
    args = ("verify", "--target", "prod", "--targets", str(targets), "--plan", "release-21.0", "--production")
    done = _rxverify(*args, "--reports", str(tmp_path / "reports"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "outside the window" in done.stderr
    assert recorder.received == []


# --- the rate limit ----------------------------------------------------------------------------


def test_rate_limiter_spaces_requests() -> None:
    clock = [100.0]
    limiter = RateLimiter(4.0, burst=1, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    waits = [limiter.acquire() for _ in range(5)]
    assert waits[0] == 0 and all(w == pytest.approx(0.25) for w in waits[1:])
    assert clock[0] == pytest.approx(101.0)
    bursty = RateLimiter(4.0, burst=3, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    clock[0] += 10
    assert [bursty.acquire() for _ in range(3)] == [0, 0, 0] and bursty.acquire() == pytest.approx(0.25)


def test_guard_honours_the_plan_rate_across_threads(registry: Registry, recorder: Recorder) -> None:  # noqa: F811
    plan = dataclasses.replace(_plan(registry), rate_per_second=20.0, burst=1)
    guard = Guard(registry, plan=plan)
    legacy = f"{recorder.url}/legacy"

    def send() -> None:
        with guarded_session(guard) as session:
            client = _soap(session, legacy)
            for _ in range(5):
                client.call("KontrolleraArbetsplatskod", {"arbetsplatskod": "4000000"}, role="prescriber")

    start = time.monotonic()
    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    assert len(recorder.received) == 20
    assert elapsed >= 19 / 20 * 0.95  # 20 requests at 20/s: the first at once, the last after ~0.95 s


# --- dry run, a real run, its reports ----------------------------------------------------------


def test_dry_run_prints_the_plan_and_sends_nothing(recorder: Recorder, tmp_path: Path) -> None:  # noqa: F811
    done = _rxverify(
        "verify", "--plan", "release-21.0", "--dry-run", "--new-url", recorder.url, "--reports", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    print(out)
    assert recorder.received == [] and not any(tmp_path.iterdir())
    for needle in ("window:", "rate limit: 2 requests/s", "contact:", "dry run: nothing was sent"):
        assert needle in out
    for n in range(1, 15):
        assert f"  S{n} " in out
    assert "191212121212" not in out and "19********12" in out
    assert f"POST {recorder.url}/legacy/GodkannUttagResponder/V1 (SOAP, GodkannUttag V1)  expect 500 MAKULERAD" in out


def _scan_reports(reports: Path, registry: Registry) -> list[str]:
    problems = []
    for path in reports.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            if redact._JWT.search(text) or redact._BEARER.search(text):
                problems.append(f"{path}: a ticket")
            if registry.unregistered_in(text):
                problems.append(f"{path}: an identity outside the registry")
    return problems


def test_shipped_plan_runs_green_on_local_target(registry: Registry, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    done = _rxverify("verify", "--target", "local", "--plan", "release-21.0", "--reports", str(reports))
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: passed: 14 of 14 steps passed" in done.stdout
    run = _run(reports)
    assert run.status == "complete" and run.embedded and len(run.collected) == 14
    summary = json.loads((run.folder / "verification" / "summary.json").read_text())
    assert summary["verdict"] == "passed" and summary["firstBlockingFailure"] is None and summary["run"] == run.run
    assert [s["status"] for s in summary["steps"]] == ["passed"] * 14
    results = [json.loads(p.read_text()) for p in run.results.glob("*-result.json")]
    assert len(results) == 14 and sorted(r["fullName"] for r in results) == sorted(run.collected)
    for result in results:
        labels = {label["name"]: label["value"] for label in result["labels"]}
        assert labels["epic"] == "production verification" and labels["severity"] in ("blocker", "normal")
        [attachment] = result["attachments"]
        assert (run.results / attachment["source"]).is_file()
        assert attachment["source"].endswith("-attachment.json")
    # Säker åtkomst 17.1: each participant's steps went over its own entry point (mutual TLS)
    over = re.search(r"over mutual TLS with SAMBI assertions: region-care over sjunet \((https://[^)]+)\), "
                     r"pharmacy over internet \((https://[^)]+)\)", done.stdout)
    assert over is not None, done.stdout
    assert over.group(1) != over.group(2)
    plan = _plan(registry)
    for result in results:
        exchange = json.loads((run.results / result["attachments"][0]["source"]).read_text())
        step = next(s for s in plan.steps if result["fullName"] == f"verification.{plan.name}.{s.id}")
        entry = plan.participants[step.participant].entry
        assert exchange["request"]["url"].startswith(over.group(1 if entry == "sjunet" else 2)), (step.id, entry)
        shown = json.dumps(exchange)
        assert "wsse:Security" in shown and "SignatureValue" not in shown and "Assertion" not in shown, step.id
    writes = read_ledger(reports / "ledger")
    assert all(r.outcome in ("ok", "error") for r in writes)
    assert _scan_reports(reports, registry) == []
    ledger = _rxverify("ledger", "--reports", str(reports))
    assert ledger.returncode == 0 and "patient 19********12: 7 writes" in ledger.stdout
    # HamtaExpeditionsId names no patient; neither does the refused withdrawal (a SOAP request of
    # GodkannUttag names the prescription, its fault no patient)
    assert "no test patient named: 2 writes" in ledger.stdout


# --- runs against platforms started here -------------------------------------------------------


@pytest.fixture(scope="module")
def platforms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalPlatforms, Path]]:
    base = tmp_path_factory.mktemp("platforms")
    with local_platforms(base / "data", platforms=("new",)) as running:
        key_file = base / "ticket.key"
        key_file.write_bytes(running.key)
        yield running, key_file


PLAN_HEAD = """
name = "kill-test"
release = "21.0"
target_class = "production"
[window]
start = 2021-11-20T22:00:00+01:00
end = 2021-11-21T06:00:00+01:00
[rate]
requests_per_second = {rate}
[participants.care]
role = "prescriber"
actor = 0
contact = "A. Person, verification lead"
[participants.pharmacy]
role = "pharmacy"
actor = 0
contact = "B. Person, integration manager"
"""


def _create(sid: str, patient: str, blocking: bool = True) -> str:
    return f"""
[[steps]]
id = "{sid}"
participant = "care"
operation = "SkapaOrdinationVard"
patient = "{patient}"
expect = {{ status = 200 }}
blocking = {str(blocking).lower()}
[steps.body]
personnummer = "${{patient}}"
lakemedel = {{ nplPackId = "19990101100001", namn = "Alvedon" }}
doseringstext = "1 x 3"
antalForpackningar = 1
antalUttag = 2
forskrivningstyp = "ELEKTRONISK"
"""


def _withdraw(sid: str, of: str, index: int) -> str:
    return f"""
[[steps]]
id = "{sid}"
participant = "pharmacy"
operation = "GodkannUttag"
expect = {{ status = 200 }}
[steps.body]
ordinationsId = "${{{of}.ordinationsId}}"
expeditionsId = "${{E.expeditionsId[{index}]}}"
antalForpackningar = 1
"""


def test_failed_blocking_step_stops_the_run(
    platforms: tuple[LocalPlatforms, Path], registry: Registry, tmp_path: Path
) -> None:
    running, key_file = platforms
    assert running.new is not None
    patient = registry.patients[7].id
    plan = tmp_path / "failing.toml"
    wrong = _create("S1", patient).replace("expect = { status = 200 }", "expect = { status = 500 }")
    plan.write_text(PLAN_HEAD.format(rate=50) + wrong + _create("S2", patient))
    reports = tmp_path / "reports"
    done = _rxverify(
        "verify", "--plan", str(plan), "--new-url", running.new.base_url, "--ticket-key-file", str(key_file),
        "--reports", str(reports),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    summary = json.loads((_run(reports).folder / "verification" / "summary.json").read_text())
    assert summary["verdict"] == "failed" and summary["firstBlockingFailure"]["step"] == "S1"
    assert "received 200, the plan expects 500" in summary["firstBlockingFailure"]["message"]
    assert [s["status"] for s in summary["steps"]] == ["failed", "skipped"]
    assert [r.operation for r in read_ledger(reports / "ledger")] == ["SkapaOrdinationVard"]


def test_killed_run_leaves_a_ledger_of_every_write_the_platform_received(
    platforms: tuple[LocalPlatforms, Path], registry: Registry, tmp_path: Path
) -> None:
    running, key_file = platforms
    assert running.new is not None
    patient = registry.patients[9].id
    steps = """
[[steps]]
id = "E"
participant = "pharmacy"
operation = "HamtaExpeditionsId"
body = { antal = 20 }
expect = { status = 200 }
"""
    for n in range(10):
        steps += _create(f"C{n}", patient) + _withdraw(f"W{n}", f"C{n}", n)
    plan = tmp_path / "long.toml"
    plan.write_text(PLAN_HEAD.format(rate=5) + steps)
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rxverify", "verify", "--plan", str(plan), "--new-url", running.new.base_url,
         "--ticket-key-file", str(key_file), "--reports", str(reports)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lines = sum(len(p.read_text().splitlines()) for p in (reports / "ledger").glob("*.jsonl"))
            if lines >= 9 or proc.poll() is not None:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed mid-plan"
    time.sleep(0.5)  # a request in flight at the kill still reaches the platform

    # the run's whole ledger (it touches one patient): a GodkannUttag names no patient in its SOAP body,
    # so its attempt, when the kill comes before its outcome, is a record of no patient
    records = read_ledger(reports / "ledger")
    tickets = TicketMinter(running.key, load_actors(ACTORS))
    with guarded_session(Guard(registry)) as session:
        client = LegacyClient(session, f"{running.new.base_url}/legacy", load_riv(CONTRACTS), tickets)
        history = client.call("HamtaOrdinationshistorik", {"personnummer": patient}, role="pharmacy").json[
            "ordinationer"
        ]
    assert history, "nothing reached the platform before the kill"
    assert len(history) < 10, "the kill came after the last create"

    ledger_ids = {value for r in records for value in r.id_values()}
    unknown = [r for r in records if r.outcome == UNKNOWN]
    on_platform = [h["ordination"]["ordinationId"] for h in history]
    not_listed = [oid for oid in on_platform if oid not in ledger_ids]
    unknown_creates = [r for r in unknown if r.operation == "SkapaOrdinationVard"]
    assert len(not_listed) <= len(unknown_creates), "a prescription on the platform is missing from the ledger"
    withdrawals = [(h["ordination"]["ordinationId"], u["uttagId"]) for h in history for u in h["uttag"]]
    for _oid, uttag in withdrawals:
        # on the SOAP wire the prescription travels in the body, which the ledger does not copy: an
        # unknown-outcome GodkannUttag is the withdrawal's only possible record
        assert uttag in ledger_ids or any(r.operation == "GodkannUttag" for r in unknown), (
            "a withdrawal on the platform is missing from the ledger"
        )
    attempts = [r for r in records if r.operation == "SkapaOrdinationVard"]
    assert len(attempts) >= len(on_platform)
    # the killed run's evidence says incomplete, and the gate names every write of unknown outcome
    assert _run(reports).status == "in-progress"
    verdict = evaluate(reports, load_criteria(CONTRACTS / "release-criteria.toml"))
    reasons = [r.text for r in verdict.reasons]
    assert any(f"the verification run {_run(reports).run} is incomplete" in r for r in reasons)
    everything = read_ledger(reports / "ledger")
    assert sum(UNKNOWN in r for r in reasons) == sum(r.outcome == UNKNOWN for r in everything) and not verdict.go
    print(
        f"killed after {len(records)} ledgered writes; platform has {len(on_platform)} prescriptions, "
        f"{len(withdrawals)} withdrawals; {len(unknown)} writes with unknown outcome"
    )
