"""Requests per second per generator core: the realistic scenario mix against a bare FastHttpUser.

One embedded platform (old, legacy interface) is started on loopback; in the same run, in
interleaved rounds, Locust drives it with
- bare: a FastHttpUser with no wait posting one fixed SOAP request (KontrolleraArbetsplatskod,
  written once by the legacy client before the run) with a ticket, nothing else: Locust's own cost
  per request;
- mix: loadtests/locustfile.py, the three callers with the model's weights, closed model with
  the think times scaled to nothing (saturation), every request through the guard (identity
  scan, ledger of writes), every response time recorded (1 % buckets) for the SLO check.
Generator CPU is the Locust process's CPU time from test start to its end (the SLO check at the
end included for the mix). Prints requests per CPU second of each and the ratio (aim: >= 0.6).
Loopback only; each run is bounded.

    python benchmarks/generator_efficiency.py [--seconds 15] [--rounds 2] [--users 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from rxverify.contracts.riv import load_riv
from rxverify.legacy.client import LegacyClient
from rxverify.target.credentials import TicketMinter, load_actors
from rxverify.target.local import local_platforms

ROOT = Path(__file__).resolve().parents[1]
AIM = 0.6  # issue 6: the realistic mix at least 0.6 of a bare FastHttpUser's requests per core
THINK_SCALE = 1e-6  # the model's think times scaled to nothing: the generator runs flat out

BARE = textwrap.dedent(
    """
    import json, os, time
    from locust import FastHttpUser, events, task

    with open(os.environ["RXBENCH_REQUEST"]) as f:
        REQUEST = json.load(f)
    BODY = REQUEST["body"].encode()
    marks = {}

    class Bare(FastHttpUser):
        host = os.environ["RXBENCH_HOST"]

        @task
        def check_workplace_code(self):
            self.client.post(REQUEST["path"], data=BODY, headers=REQUEST["headers"], name="KontrolleraArbetsplatskod")

    @events.test_start.add_listener
    def _start(environment, **_):
        marks["cpu"] = time.process_time()

    @events.quitting.add_listener
    def _end(environment, **_):
        total = environment.runner.stats.total
        out = {"requests": total.num_requests, "failures": total.num_failures,
               "cpu_s": time.process_time() - marks["cpu"]}
        with open(os.environ["RXBENCH_OUT"], "w") as f:
            json.dump(out, f)
    """
)


def _run(cmd: list[str], env: dict[str, str], timeout: float) -> None:
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode not in (0, 1):
        sys.exit(f"generator_efficiency: locust failed ({proc.returncode}): {proc.stderr[-800:]}")


class _Ticket:
    def __init__(self, ticket: str) -> None:
        self._ticket = ticket

    def ticket(self, role: str, index: int = 0) -> str | None:
        return self._ticket


def bare(base: str, ticket: str, seconds: float, users: int, tmp: Path) -> tuple[float, int]:
    """Requests per CPU second of the bare FastHttpUser, and its requests."""
    lf, out, request = tmp / "bare_locustfile.py", tmp / "bare.json", tmp / "bare-request.json"
    lf.write_text(BARE, encoding="utf-8")
    client = LegacyClient(None, "", load_riv(ROOT / "contracts"), _Ticket(ticket.removeprefix("Bearer ")))
    prepared = client.prepare("KontrolleraArbetsplatskod", {"arbetsplatskod": "4000000"}, role="pharmacy")
    request.write_text(json.dumps({"path": prepared.url, "headers": prepared.headers,
                                   "body": prepared.body.decode()}), encoding="utf-8")
    env = {**os.environ, "RXBENCH_HOST": base + "/legacy", "RXBENCH_REQUEST": str(request), "RXBENCH_OUT": str(out)}
    cmd = [sys.executable, "-m", "locust", "-f", str(lf), "--headless", "-u", str(users), "-r", str(users),
           "-t", f"{seconds:g}s", "--only-summary", "--loglevel", "WARNING"]  # fmt: skip
    _run(cmd, env, seconds + 60)
    data = json.loads(out.read_text(encoding="utf-8"))
    return data["requests"] / data["cpu_s"], data["requests"]


def mix(base: str, key_file: Path, seconds: float, users: int, tmp: Path) -> tuple[float, int, float, float]:
    """Requests per CPU second of the realistic mix (guard and SLO check included), requests, failure ratio,
    and the share of the generator's CPU time spent in the guard (identity scan, ledger)."""
    reports = tmp / "reports"
    cmd = [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless",
           "--config", "loadtests/profiles/smoke.conf", "--platform", "old", "--old-url", base,
           "--ticket-key-file", str(key_file), "--arrival", "closed", "--think-scale", f"{THINK_SCALE:g}",
           "--duration", f"{seconds:g}", "--reports", str(reports), "--csv", str(reports / "load" / "bench"),
           "--seed-patients", "216", "--loglevel", "WARNING"]  # fmt: skip
    # the closed model's users come from Little's law: scale so that they are about `users`
    cmd += ["--scale", f"{users / 0.1 / 54.3:g}"]
    _run(cmd, dict(os.environ), seconds + 90)
    # each run writes its own run folder (reports/runs/<run id>/): this run's is the newest
    found = sorted(reports.glob("runs/*/load/smoke-summary.json"), key=lambda f: f.stat().st_mtime)
    if not found:
        sys.exit(f"generator_efficiency: the mix run wrote no summary under {reports}/runs")
    summary = json.loads(found[-1].read_text(encoding="utf-8"))
    gen = summary["generator"]
    return gen["requests_per_cpu_s"], summary["requests"], summary["failure_ratio"] or 0.0, gen["guard_share"] or 0.0


def main() -> int:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per run (default 15)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--users", type=int, default=20, help="concurrent users of each run (default 20)")
    args = parser.parse_args()
    actors = load_actors(ROOT / "contracts" / "testdata" / "test-actors.json")
    with local_platforms(platforms=("old",)) as running, tempfile.TemporaryDirectory() as tmpdir:
        assert running.old is not None
        base = running.old.base_url
        tmp = Path(tmpdir)
        key_file = tmp / "ticket.key"
        key_file.write_bytes(running.key)
        ticket = "Bearer " + TicketMinter(running.key, actors).ticket("pharmacy")
        bare_rates, mix_rates, guard_shares = [], [], []
        for r in range(args.rounds):
            started = time.monotonic()
            b, b_n = bare(base, ticket, args.seconds, args.users, tmp)
            m, m_n, m_fail, m_guard = mix(base, key_file, args.seconds, args.users, tmp)
            bare_rates.append(b)
            mix_rates.append(m)
            guard_shares.append(m_guard)
            print(f"round {r + 1}: bare {b:8.0f} req/CPU s ({b_n} requests); mix {m:8.0f} req/CPU s "
                  f"({m_n} requests, failure ratio {m_fail:.4f}, guard {m_guard:.1%} of its CPU); "
                  f"{time.monotonic() - started:.0f} s")  # fmt: skip
    b, m = statistics.median(bare_rates), statistics.median(mix_rates)
    ratio = m / b
    print(f"bare FastHttpUser, one endpoint:        {b:8.0f} requests per generator CPU second")
    print(f"realistic mix (guard, ledger, SLO data): {m:8.0f} requests per generator CPU second")
    print(f"ratio mix / bare: {ratio:.2f} (aim >= {AIM}): {'met' if ratio >= AIM else 'NOT met'}")
    share = statistics.median(guard_shares)
    print(f"of the mix's generator CPU, the guard (identity scan of every request, ledger of every write) "
          f"took {share:.1%}; the rest is the mix's own HTTP work (bodies, larger answers, SLO data)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
