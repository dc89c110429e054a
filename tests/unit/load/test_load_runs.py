"""The load tests run end to end with Locust on loopback: SLO verdicts, the open model, bad input, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from rxverify.gate.criteria import load_criteria
from rxverify.gate.evaluate import evaluate

from . import stall_server
from .conftest import ROOT, RUN_TIMEOUT_S, LoadRun, locust_args, run_locust

SHORT = ("--duration", "10")


def test_slo_check_fails_on_a_latency_fault_and_names_the_breached_slo(reports: Path) -> None:
    run = run_locust(reports, *SHORT, "--platform", "old", "--fault", "old-slow-aktuella")
    assert run.code == 1, run.stderr[-3000:]
    assert any("SLO BREACHED: HamtaAktuellaOrdinationer p95_ms <= 200" in line for line in run.stderr.splitlines())
    breach = next(s for s in run.summary["slo"] if s["slo"] == "HamtaAktuellaOrdinationer p95_ms <= 200")
    assert breach["measured"] >= 300 and not breach["passed"]  # 300 ms injected, exact to 1 %


def test_slo_check_passes_on_the_correct_platform_and_writes_every_report(reports: Path) -> None:
    run = run_locust(reports, *SHORT, "--platform", "old")
    assert run.code == 0, run.stderr[-3000:]
    summary = run.summary
    assert summary["passed"] and summary["requests"] > 100 and summary["failures"] == 0
    assert summary["requests_by_name"]["HamtaAktuellaOrdinationer"]["latency_from_send"]["p95_ms"] < 200
    assert (reports / "load" / "smoke_stats.csv").is_file() and (reports / "load" / "smoke.html").is_file()
    results = list(run.results.glob("*-result.json"))
    assert len(results) == len(summary["slo"]) and list(run.results.glob("*.svg"))
    assert run.manifest.status == "complete" and summary["run"] == run.manifest.run
    assert sorted(run.manifest.collected) == sorted(json.loads(p.read_text())["fullName"] for p in results)
    ledger = list((reports / "ledger").glob("ledger-*.jsonl"))
    assert ledger and "SkapaOrdinationVard" in ledger[0].read_text(encoding="utf-8")


def test_open_model_counts_dropped_iterations_and_intended_latency_where_the_closed_model_stays_flat(
    tmp_path: Path,
) -> None:
    base, server = stall_server.serve()
    key = tmp_path / "ticket.key"
    key.write_text("k" * 64, encoding="utf-8")
    # a pool of half a second of arrivals per caller: a one-second stall exhausts it
    model = tmp_path / "model.toml"
    text = (ROOT / "loadtests" / "model.toml").read_text(encoding="utf-8")
    model.write_text(text.replace("vu_budget_s = { value = 1.0", "vu_budget_s = { value = 0.5"), encoding="utf-8")
    target = ("--platform", "old", "--old-url", base, "--ticket-key-file", str(key), "--duration", "12",
              "--model", str(model))  # fmt: skip
    try:
        opened = run_locust(tmp_path / "open", *target, "--arrival", "open")
        closed = run_locust(tmp_path / "closed", *target, "--arrival", "closed", "--think-scale", "0.004")
    finally:
        server.should_exit = True
    o, c = opened.summary, closed.summary
    # the open model keeps the arrival rate through the stalls: iterations that found no idle VU
    # are counted, and latency from the intended start shows the stall
    assert o["iterations"]["dropped"] > 0, opened.stderr[-2000:]
    assert o["overall"]["latency_from_intended_start"]["p95_ms"] > 300
    assert opened.code == 1 and "BREACHED: overall dropped_ratio" in opened.stderr
    # Locust's closed model waits through the stall: few slow samples, its percentiles stay flat
    assert c["iterations"]["scheduled"] == 0
    assert c["overall"]["latency_from_send"]["p95_ms"] < 100, closed.stderr[-2000:]
    assert c["overall"]["latency_from_send"]["p95_ms"] * 3 < o["overall"]["latency_from_intended_start"]["p95_ms"]


def _one_line(run: LoadRun, needle: str) -> None:
    assert run.code == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert len(run.user_lines) == 1 and needle in run.user_lines[0], run.stderr


def test_unknown_profile_is_one_line_exit_2(reports: Path) -> None:
    _one_line(run_locust(reports, "--shape", "weekend"), "unknown load profile 'weekend'")
    missing = run_locust(reports, "--config", "loadtests/profiles/weekend.conf")
    assert missing.code == 2 and "Traceback" not in missing.stderr and "weekend.conf" in missing.stderr


def test_malformed_model_and_slo_files_are_one_line_exit_2(reports: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.toml"
    model.write_text("[volumes\n", encoding="utf-8")
    _one_line(run_locust(reports, "--model", str(model)), "is not valid TOML")
    slo = tmp_path / "slo.toml"
    slo.write_text("assumption = true\n[overall]\np95_ms = 'fast'\n", encoding="utf-8")
    _one_line(run_locust(reports, "--slo", str(slo)), "expected a non-negative number")


def test_unreachable_target_is_one_line_exit_2(reports: Path, tmp_path: Path) -> None:
    key = tmp_path / "ticket.key"
    key.write_text("k" * 64, encoding="utf-8")
    run = run_locust(reports, "--platform", "old", "--old-url", "http://127.0.0.1:9", "--ticket-key-file", str(key))
    _one_line(run, "is unreachable at http://127.0.0.1:9/legacy")


def test_sigterm_still_writes_csv_summary_and_allure_results(reports: Path) -> None:
    proc = subprocess.Popen(
        locust_args(reports, "--duration", "60", "--platform", "old"), cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        stats = reports / "load" / "smoke_stats.csv"
        while time.monotonic() < deadline and not (stats.is_file() and stats.stat().st_size > 200):
            time.sleep(0.5)
        time.sleep(3)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    run = LoadRun(proc.returncode, "", stderr, reports)
    assert run.summary["interrupted"] and run.summary["requests"] > 0, stderr[-2000:]
    assert run.code == 1 and "interrupted" in stderr
    assert "Aggregated" in stats.read_text(encoding="utf-8")
    assert list(run.results.glob("*-result.json"))
    assert (reports / "load" / "smoke.html").is_file()
    # its SLO results may all say passed: the gate says NO-GO, naming the interruption
    assert run.manifest.status == "interrupted" and run.manifest.interruption == "SIGTERM"
    verdict = evaluate(reports, load_criteria(ROOT / "contracts" / "release-criteria.toml"))
    reasons = [r.text for r in verdict.reasons]
    assert f"the load run {run.manifest.run} was interrupted (SIGTERM) before its end: its evidence is partial" in (
        reasons
    )
    assert not verdict.go


def test_one_master_and_two_workers_combine_exact_percentiles_and_drops(reports: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with socket.socket() as probe:  # a free loopback port for the master
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    master = subprocess.Popen(
        locust_args(reports, "--duration", "10", "--platform", "old", "--master", "--expect-workers", "2",
                    "--master-bind-host", "127.0.0.1", "--master-bind-port", port),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    workers = [
        subprocess.Popen(
            [
                *locust_args(reports / f"w{i}", "--platform", "old"),
                "--worker",
                "--master-host",
                "127.0.0.1",
                "--master-port",
                port,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        for i in range(2)
    ]
    try:
        _, stderr = master.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        procs: list[subprocess.Popen[str] | subprocess.Popen[bytes]] = [master, *workers]
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in workers:
            p.wait(timeout=30)
    run = LoadRun(master.returncode, "", stderr, reports)
    summary = run.summary
    assert run.code == 0, stderr[-3000:]
    assert summary["workers"] == 2 and summary["requests"] > 100
    assert summary["iterations"]["scheduled"] >= summary["requests"] * 0.9
    # the exact figures merged on the master count every request Locust's own stats counted
    rows = (reports / "load" / "smoke_stats.csv").read_text(encoding="utf-8").splitlines()
    aggregated = next(r for r in rows if ",Aggregated," in r).split(",")
    assert int(aggregated[2]) == summary["requests"]
    assert summary["generator"]["cpu_s"] > 0
    # the workers' guard time reaches the master: part of the generator's CPU, never more
    assert 0 < summary["generator"]["guard_s"] < summary["generator"]["cpu_s"]
