"""`rxverify ledger` for a rollback: each write with its run and kind, one run at a time, and no line lost unsaid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rxverify.safety.ledger import Ledger, read_ledger

from .conftest import ROOT

A, B = "191212121212", "193001011000"  # registered test patients (contracts/testdata/test-patients.json)


def _ledger(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "rxverify", "ledger", *args]
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=60)


def _write(directory: Path, run: str, kind: str, patient: str, oid: str) -> Ledger:
    ledger = Ledger(directory, target="local", environment_class="local", run_id=run, kind=kind)
    seq = ledger.attempt("POST", "SkapaOrdinationVard", "/legacy/ordinationer", [patient])
    ledger.outcome(seq, "POST", "SkapaOrdinationVard", "/legacy/ordinationer", [patient], 201,
                   {"ordinationId": oid}, "ok")  # fmt: skip
    return ledger


def _reports(tmp_path: Path) -> Path:
    directory = tmp_path / "reports" / "ledger"
    seeding = _write(directory, "load-20261201T100000Z-aaaaaa", "load seeding", A, "ord-seed-0001")
    seeding.run_kind = "load"  # the load itself, after the seeding (rxverify.load.runtime)
    seq = seeding.attempt("POST", "GodkannUttag", "/legacy/ordinationer/ord-seed-0001/uttag", [A])
    seeding.outcome(seq, "POST", "GodkannUttag", "/legacy/ordinationer/ord-seed-0001/uttag", [A], 200, {}, "ok")
    seeding.close()
    _write(directory, "verification-20261201T110000Z-bbbbbb", "verification", B, "ord-verify-0002").close()
    return directory.parent


def test_entries_carry_the_run_and_its_kind(tmp_path: Path) -> None:
    records = read_ledger(_reports(tmp_path) / "ledger")
    assert [(r.run, r.run_kind, r.operation) for r in records] == [
        ("load-20261201T100000Z-aaaaaa", "load seeding", "SkapaOrdinationVard"),
        ("load-20261201T100000Z-aaaaaa", "load", "GodkannUttag"),
        ("verification-20261201T110000Z-bbbbbb", "verification", "SkapaOrdinationVard"),
    ]


def test_the_listing_shows_each_writes_run_and_kind_and_filters_by_run(tmp_path: Path) -> None:
    reports = _reports(tmp_path)
    everything = _ledger("--reports", str(reports))
    assert everything.returncode == 0, everything.stderr
    assert "load-20261201T100000Z-aaaaaa (load seeding)  SkapaOrdinationVard" in everything.stdout
    assert "load-20261201T100000Z-aaaaaa (load)  GodkannUttag" in everything.stdout
    assert "verification-20261201T110000Z-bbbbbb (verification)" in everything.stdout

    one = _ledger("--reports", str(reports), "--run", "verification-20261201T110000Z-bbbbbb")
    assert one.returncode == 0 and "1 write of run verification-20261201T110000Z-bbbbbb" in one.stdout
    assert "ord-verify-0002" in one.stdout and "ord-seed-0001" not in one.stdout

    unknown = _ledger("--reports", str(reports), "--run", "contract-nope")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.count("\n") == 1 and "latest runs: load-20261201T100000Z-aaaaaa" in unknown.stderr


def test_torn_lines_and_unreadable_files_are_named_and_the_rest_still_printed(tmp_path: Path) -> None:
    reports = _reports(tmp_path)
    ledger = reports / "ledger"
    [seeding] = [p for p in ledger.glob("*.jsonl") if "load-" in p.read_text()]
    torn = len(seeding.read_text().splitlines()) + 1
    with seeding.open("a", encoding="utf-8") as handle:
        handle.write('{"time": "2026-12-01T10:00:09.000Z", "run": "load-2026')  # a kill in the middle of a line
    (ledger / "ledger-garbage.jsonl").write_bytes(b'{"kind": "attempt"}\n\xff\xfe not a ledger at all\n')
    (ledger / "ledger-unreadable.jsonl").mkdir()  # a name the reader must open, that cannot be read as a file

    done = _ledger("--reports", str(reports))
    assert done.returncode == 1, "an incomplete listing must not look like a complete one"
    assert "3 writes" in done.stdout and "ord-verify-0002" in done.stdout and "ord-seed-0001" in done.stdout
    problems = done.stderr.splitlines()
    assert f"rxverify: ledger: {seeding} line {torn}: torn or unreadable (skipped)" in problems
    assert f"rxverify: ledger: {ledger / 'ledger-garbage.jsonl'} line 1: torn or unreadable (skipped)" in problems
    assert f"rxverify: ledger: {ledger / 'ledger-garbage.jsonl'} line 2: torn or unreadable (skipped)" in problems
    unreadable = f"rxverify: ledger: {ledger / 'ledger-unreadable.jsonl'}: unreadable"
    assert any(line.startswith(unreadable) for line in problems)
    assert problems[-1] == "rxverify: ledger: 4 entries could not be read: the writes they held are not shown above"


def test_a_missing_reports_folder_and_a_malformed_patient_are_one_line(tmp_path: Path) -> None:
    for args, expected in (
        (["--reports", str(tmp_path / "nosuch")], f"no reports folder {tmp_path / 'nosuch'}"),
        (["--reports", str(_reports(tmp_path)), "--patient", "1912121212"], "is not a personal identity number"),
        (["--patient", "19121212-121"], "is not a personal identity number"),
    ):
        done = _ledger(*args)
        assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
        assert expected in done.stderr
    dashed = _ledger("--reports", str(_reports(tmp_path / "again")), "--patient", "19300101-1000")
    assert dashed.returncode == 0 and "ord-verify-0002" in dashed.stdout and "ord-seed-0001" not in dashed.stdout
