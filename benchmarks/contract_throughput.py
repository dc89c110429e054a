"""Test cases per second of our legacy conformance run, as a ratio to `schemathesis run` (the CLI).

Same contract (contracts/openapi/legacy.yaml: the SOAP endpoints, text/xml bodies), same platform
(the embedded old platform, started once for both), same examples per operation, in the same run;
both write their SOAP envelopes with the same serializer (benchmarks/_st_hooks.py). Ours runs more checks than the
CLI's defaults (the domain rules, the guard, the Allure writer). The CLI gets the same safety
through hooks (benchmarks/_st_hooks.py). Loopback only.

    python benchmarks/contract_throughput.py [--examples 50] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rxverify.target.credentials import TicketMinter, load_actors
from rxverify.target.local import local_platforms

ROOT = Path(__file__).resolve().parents[1]


def _ours(legacy_base: str, key_file: Path, examples: int, seed: int) -> tuple[int, float]:
    cmd = [sys.executable, "-m", "pytest", "tests/contract/test_legacy_conformance.py", "-q", "-p", "no:cacheprovider",
           "--platform", "old", "--old-url", legacy_base, "--ticket-key-file", str(key_file),
           "--examples", str(examples), "--seed", str(seed)]
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - start
    found = re.search(r"rxverify guard: (\d+) requests sent", out.stdout)
    if out.returncode != 0 or not found:
        raise SystemExit(f"our run failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return int(found.group(1)), elapsed


def _cli(legacy_url: str, ticket: str, examples: int, seed: int) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        count = Path(tmp) / "count"
        env = dict(os.environ, SCHEMATHESIS_HOOKS="_st_hooks", RXVERIFY_BENCH_COUNT=str(count),
                   RXVERIFY_BENCH_TICKET=ticket,
                   PYTHONPATH=str(ROOT / "benchmarks") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, "-m", "schemathesis.cli", "run", "contracts/openapi/legacy.yaml", "--url", legacy_url,
               "--max-examples", str(examples), "--seed", str(seed), "--workers", "1", "--no-color"]
        start = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=1800)
        elapsed = time.perf_counter() - start
        if not count.exists():
            raise SystemExit(f"schemathesis CLI run failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
        return int(count.read_text()), elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    os.chdir(ROOT)
    actors = load_actors(ROOT / "contracts" / "testdata" / "test-actors.json")
    with local_platforms(platforms=("old",)) as running, tempfile.TemporaryDirectory() as tmp:
        assert running.old
        key_file = Path(tmp) / "ticket.key"
        key_file.write_bytes(running.key)
        ticket = TicketMinter(running.key, actors).ticket("prescriber")
        base = running.old.base_url
        print(f"legacy conformance, old platform, {args.examples} examples per operation, seed {args.seed}")
        ours_rates, cli_rates = [], []
        for r in range(args.rounds):  # interleaved, so drift hits both alike
            n_cli, t_cli = _cli(base + "/legacy", ticket, args.examples, args.seed + r)
            n_ours, t_ours = _ours(base, key_file, args.examples, args.seed + r)
            cli_rates.append(n_cli / t_cli)
            ours_rates.append(n_ours / t_ours)
            print(f"round {r + 1}: schemathesis run {n_cli} cases in {t_cli:.1f} s ({n_cli / t_cli:.0f}/s); "
                  f"rxverify {n_ours} cases in {t_ours:.1f} s ({n_ours / t_ours:.0f}/s)")
        ours, cli = sum(ours_rates) / len(ours_rates), sum(cli_rates) / len(cli_rates)
        print(f"test cases per second: rxverify {ours:.0f}, schemathesis run {cli:.0f}; ratio {ours / cli:.2f} "
              "(aim: at least 0.8)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
