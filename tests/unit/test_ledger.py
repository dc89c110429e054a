"""The write ledger: an attempt before each write, its outcome after, flushed per entry, readable by anyone later."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from rxverify.contracts.riv import load_riv
from rxverify.legacy.client import LegacyClient
from rxverify.operations import OperationIndex
from rxverify.safety.egress import guarded_session
from rxverify.safety.guard import Guard
from rxverify.safety.ledger import UNKNOWN, Ledger, read_ledger
from rxverify.safety.registry import Registry
from rxverify.target.targets import Endpoints

from .conftest import CONTRACTS, ROOT

TICKET = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwaGFybWFjeS0xIn0.c2lnbmF0dXJlc2lnbmF0dXJl"  # not a valid ticket: no key
ORDINATION = "0f8e2b1c-5d4a-4e3b-9c2d-1a0b9c8d7e6f"
RIV = load_riv(CONTRACTS)


class _Ticket:
    def ticket(self, role: str, index: int = 0) -> str:
        return TICKET


@dataclass
class Recorder:
    """A loopback HTTP server that records every request it receives and answers with a prescription."""

    url: str
    received: list[tuple[str, str, str]] = field(default_factory=list)


@pytest.fixture()
def recorder() -> Iterator[Recorder]:
    rec = Recorder("")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            rec.received.append((self.command, self.path, body))
            # a SOAP answer naming the prescription it created (the element names of SkapaOrdinationVardResponse)
            answer = ('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
                      f'<r:Svar xmlns:r="urn:x"><r:ordinationsId>{ORDINATION}</r:ordinationsId></r:Svar>'
                      "</s:Body></s:Envelope>").encode()
            self.send_response(200)
            self.send_header("content-type", "text/xml; charset=utf-8")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    rec.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield rec
    httpd.shutdown()
    httpd.server_close()


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_entry_is_on_disk_before_the_next_call(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, target="local", environment_class="local")
    seq = ledger.attempt("POST", "SkapaOrdinationVard", "/legacy/ordinationer", ["191212121212"])
    # read through another handle while the writer is still open: the attempt is already there
    assert [e["kind"] for e in _lines(ledger.path)] == ["attempt"]
    ledger.outcome(seq, "POST", "SkapaOrdinationVard", "/legacy/ordinationer", [], 201, {"ordinationId": "x"}, "ok")
    assert [e["kind"] for e in _lines(ledger.path)] == ["attempt", "outcome"]
    assert ledger.path.name.startswith("ledger-") and ledger.path.suffix == ".jsonl"
    ledger.close()


def test_a_killed_writer_leaves_its_attempt_readable(tmp_path: Path) -> None:
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from rxverify.safety.ledger import Ledger\n"
        "ledger = Ledger(Path(sys.argv[1]), target='local', environment_class='local')\n"
        "ledger.attempt('POST', 'SkapaOrdinationVard', '/legacy/ordinationer', ['191212121212'])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], timeout=60, cwd=ROOT)
    assert done.returncode == -9
    [record] = read_ledger(tmp_path)
    assert record.operation == "SkapaOrdinationVard"
    assert record.outcome == UNKNOWN and record.status is None
    assert record.patients == ["191212121212"]


def test_concurrent_writers_keep_every_line_whole(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)

    def write(n: int) -> None:
        for i in range(200):
            seq = ledger.attempt("POST", "GodkannUttag", f"/legacy/ordinationer/{n}-{i}/uttag", [])
            ledger.outcome(seq, "POST", "GodkannUttag", f"/legacy/ordinationer/{n}-{i}/uttag", [], 200, {}, "ok")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ledger.close()
    entries = _lines(ledger.path)
    assert len(entries) == 8 * 200 * 2
    records = read_ledger(tmp_path)
    assert len(records) == 1600 and {r.seq for r in records} == set(range(1, 1601))
    assert all(r.outcome == "ok" for r in records)


def test_reader_filters_and_attributes_writes_to_patients(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, target="local", environment_class="local")
    a, b = "191212121212", "193001011000"
    seq = ledger.attempt("POST", "SkapaOrdinationVard", "/legacy/ordinationer", [a])
    ledger.outcome(
        seq, "POST", "SkapaOrdinationVard", "/legacy/ordinationer", [a], 201, {"ordinationId": "ord-1111-a"}, "ok"
    )
    seq = ledger.attempt("POST", "SkapaOrdinationVard", "/legacy/ordinationer", [b])
    ledger.outcome(
        seq, "POST", "SkapaOrdinationVard", "/legacy/ordinationer", [b], 201, {"ordinationId": "ord-2222-b"}, "ok"
    )
    # a cancellation names only the prescription: the reader attributes it to the patient who owns it
    ledger.attempt("POST", "MakuleraOrdination", "/legacy/ordinationer/ord-2222-b/makulering", [])
    ledger.close()
    with ledger.path.open("a") as torn:  # a line cut short by a kill mid-write is skipped
        torn.write('{"time":"2026-')
    records = read_ledger(tmp_path)
    assert [r.operation for r in records] == ["SkapaOrdinationVard", "SkapaOrdinationVard", "MakuleraOrdination"]
    assert records[2].patients == [b] and records[2].outcome == UNKNOWN
    assert [r.operation for r in read_ledger(tmp_path, patient=b)] == ["SkapaOrdinationVard", "MakuleraOrdination"]
    assert read_ledger(tmp_path, since="2999-01-01") == []
    assert len(read_ledger(tmp_path, since="2000-01-01T00:00:00Z")) == 3


def test_guarded_writes_are_ledgered_reads_are_not(registry: Registry, recorder: Recorder, tmp_path: Path) -> None:
    legacy = recorder.url + "/legacy"
    ledger = Ledger(tmp_path, target="adhoc", environment_class="local")
    index = OperationIndex.for_endpoints(CONTRACTS, [Endpoints(legacy=legacy)])
    session = guarded_session(Guard(registry, ledger=ledger, operations=index, target_name="adhoc"))
    client = LegacyClient(session, legacy, RIV, _Ticket())
    patient = registry.patients[1].id
    cookie = {"Cookie": "session=abcdef123456"}
    client.call("HamtaPatientInfo", {"personnummer": patient}, role="pharmacy", headers=cookie)  # a POST that reads
    client.call("SkapaOrdinationVard", {"personnummer": patient}, role="prescriber", headers=cookie)
    ledger.close()
    entries = _lines(ledger.path)
    assert [(e["kind"], e["operation"]) for e in entries] == [
        ("attempt", "SkapaOrdinationVard"),
        ("outcome", "SkapaOrdinationVard"),
    ]
    assert entries[1]["status"] == 200 and entries[1]["outcome"] == "ok"
    assert entries[1]["ids"] == {"ordinationsId": ORDINATION}  # read from the SOAP answer
    assert entries[0]["patients"] == [patient]
    text = ledger.path.read_text()
    assert TICKET not in text and "abcdef123456" not in text and "Authorization" not in text


def test_masked_path_and_transport_error(registry: Registry, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    legacy = f"http://127.0.0.1:{port}/legacy"
    ledger = Ledger(tmp_path)
    index = OperationIndex.for_endpoints(CONTRACTS, [Endpoints(legacy=legacy)])
    session = guarded_session(Guard(registry, ledger=ledger, operations=index))
    patient = registry.patients[2].id
    with pytest.raises(requests.ConnectionError):
        LegacyClient(session, legacy, RIV, _Ticket()).call(
            "UppdateraSamtycke", {"personnummer": patient, "samtycke": True}, role="pharmacy", timeout=5)
    ledger.close()
    attempt, outcome = _lines(ledger.path)
    assert attempt["operation"] == "UppdateraSamtycke"
    assert attempt["path"] == "/legacy/UppdateraSamtyckeResponder/V4"
    assert attempt["patients"] == [patient]
    assert outcome["outcome"] == "transport-error" and outcome["status"] is None


def test_ledger_command_groups_per_patient(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger", target="local", environment_class="local")
    a, b = "191212121212", "193001011000"
    for patient, oid in ((a, "ord-1111-a"), (b, "ord-2222-b"), (a, "ord-3333-a")):
        seq = ledger.attempt("POST", "SkapaOrdinationVard", "/legacy/ordinationer", [patient])
        ledger.outcome(
            seq, "POST", "SkapaOrdinationVard", "/legacy/ordinationer", [patient], 201, {"ordinationId": oid}, "ok"
        )
    ledger.attempt("POST", "HamtaExpeditionsId", "/legacy/expeditionsid", [])
    ledger.close()
    done = subprocess.run(
        [sys.executable, "-m", "rxverify", "ledger", "--reports", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    print(out)
    assert "4 writes" in out
    assert "patient 19********12: 2 writes" in out and "patient 19********00: 1 write" in out
    assert "no test patient named: 1 write" in out and "1 write without a recorded outcome" in out
    assert a not in out and b not in out
    assert out.index("ord-1111-a") < out.index("ord-3333-a") < out.index("19********00")
    only_b = subprocess.run(
        [sys.executable, "-m", "rxverify", "ledger", "--reports", str(tmp_path), "--patient", b],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    ).stdout
    assert "ord-2222-b" in only_b and "ord-1111-a" not in only_b
