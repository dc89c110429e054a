"""Requests per second the load test achieves with one Locust process and with `--processes 2`.

One embedded platform (old, legacy interface) is started on loopback; in the same run, in
interleaved rounds, loadtests/locustfile.py drives it flat out (closed model, think times scaled
to nothing, the same number of users, every request through the guard and recorded):
- one: a single Locust process;
- two: `--processes 2`, a master and two forked workers sharing the users, whose figures the
  master merges (what a performance engineer does when one generator process runs out of CPU).
Prints each run's achieved requests per second (from the run's own summary), the ratio two/one,
and how much CPU the generator (all its processes) and the platform got per second of load: on
this 2-core machine they share the cores (with whatever else runs), so a second generator
process can add only what CPU is left. Over mutual TLS with SAMBI assertions (the suite's
default path: the platform serves the local trust domain, the runs call it with `--trust-dir`, the
workers too), or `--wire plain` (plain HTTP, JWT tickets). Loopback only; every run is bounded.

    python benchmarks/scaling.py [--seconds 15] [--rounds 2] [--users 20] [--wire tls|plain]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rxverify.loadmodel import caller_loads, load_model
from rxverify.target.local import local_platforms

ROOT = Path(__file__).resolve().parents[1]
THINK_SCALE = 1e-6  # the model's think times scaled to nothing: the generator runs flat out
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def _scale_for(users: int) -> float:
    """The --scale at which the closed model's Little's-law users (think times scaled away) number `users`."""
    model = load_model(ROOT / "loadtests" / "model.toml")
    per_scale = sum(c.per_second * (c.response_time_s + c.think_time_s * THINK_SCALE) for c in caller_loads(model))
    return users / per_scale


def run(base: str, key_file: Path, seconds: float, scale: float, processes: int, tmp: Path,
        trust: Path | None) -> dict[str, float]:
    """One run against the platform: its summary's requests, rate, failure ratio and duration."""
    reports = tmp / f"reports-{processes}"
    cmd = [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless",
           "--config", "loadtests/profiles/smoke.conf", "--platform", "old", "--old-url", base,
           "--ticket-key-file", str(key_file), "--arrival", "closed", "--think-scale", f"{THINK_SCALE:g}",
           "--scale", f"{scale:g}", "--duration", f"{seconds:g}", "--reports", str(reports),
           "--csv", str(reports / "load" / "bench"), "--html", str(reports / "load" / "bench.html"),
           "--progress-seconds", "0", "--loglevel", "WARNING"]  # fmt: skip
    if trust is not None:  # the platform's trust domain: its CA, the callers' certificates, the ticket issuer
        cmd += ["--trust-dir", str(trust)]
    if processes > 1:  # on a port of its own: another run's workers on this machine cannot join it
        port = _free_port()
        cmd += ["--processes", str(processes), "--master-bind-port", port, "--master-port", port]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120)
    if proc.returncode not in (0, 1):
        sys.exit(f"scaling: locust failed ({proc.returncode}): {proc.stderr[-800:]}")
    found = sorted(reports.glob("runs/*/load/smoke-summary.json"))  # the run's own folder (its manifest beside)
    if not found:
        sys.exit(f"scaling: the run wrote no summary under {reports}: {proc.stderr[-800:]}")
    summary = json.loads(found[-1].read_text(encoding="utf-8"))
    keys = ("rate_per_s", "requests", "failure_ratio", "duration_s")
    return {k: float(summary[k] or 0.0) for k in keys} | {"cpu_s": float(summary["generator"]["cpu_s"])}


def main() -> int:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per run (default 15)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--users", type=int, default=20, help="users of each run, all processes together (default 20)")
    parser.add_argument("--wire", choices=("tls", "plain"), default="tls",
                        help="mutual TLS with SAMBI assertions (default) or plain HTTP with JWT tickets")
    args = parser.parse_args()
    scale = _scale_for(args.users)
    rates: dict[int, list[float]] = {1: [], 2: []}
    busy: dict[int, list[float]] = {1: [], 2: []}  # the platform's CPU seconds per second of load
    cores: dict[int, list[float]] = {1: [], 2: []}  # the generator's (all its processes)
    with local_platforms(platforms=("old",), tls=args.wire == "tls") as running, \
            tempfile.TemporaryDirectory() as tmpdir:
        assert running.old is not None
        base, pid = running.old.base_url, running.old.process.pid
        tmp = Path(tmpdir)
        key_file = tmp / "ticket.key"
        key_file.write_bytes(running.key)
        for r in range(args.rounds):
            for processes in (1, 2):
                cpu = _cpu_s(pid)
                got = run(base, key_file, args.seconds, scale, processes, tmp,
                          running.trust.root if running.trust is not None else None)
                # the platform's CPU over the run (its seeding included) per second of load
                platform_busy = (_cpu_s(pid) - cpu) / got["duration_s"]
                rates[processes].append(got["rate_per_s"])
                busy[processes].append(platform_busy)
                cores[processes].append(got["cpu_s"] / got["duration_s"])
                print(f"round {r + 1}, {processes} process{'es' if processes > 1 else ''}: {got['rate_per_s']:7.1f} "
                      f"requests/s ({got['requests']:.0f} requests, failure ratio {got['failure_ratio']:.4f}); "
                      f"generator {cores[processes][-1]:.2f}, platform {platform_busy:.2f} CPU s per s")  # fmt: skip
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    for label, n, rate in (("one Locust process:", 1, one), ("--processes 2:", 2, two)):
        print(f"{label:<21} {rate:7.1f} requests/s achieved (median; generator {statistics.median(cores[n]):.2f}, "
              f"platform {statistics.median(busy[n]):.2f} CPU s per s)")  # fmt: skip
    wire = "mutual TLS, SAMBI assertions" if args.wire == "tls" else "plain HTTP, JWT tickets"
    print(f"ratio two / one: {two / one:.2f} ({args.users} users over {wire}, {os.cpu_count()} cores shared by the "
          "generator processes and the platform)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
