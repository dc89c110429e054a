"""Seconds of one suite-power run, as a ratio to the run the previous matrix made for the same fault.

The baseline is what `rxverify power` ran before (commit 75174d5): the whole test file(s) of the
fault's run with `-x`, hypothesis shrinking its failure, every module compiled again
(PYTHONDONTWRITEBYTECODE). Ours is the matrix's job: the designated tests only, no shrinking
(rxverify.power_plugin), bytecode cached. Same fault, same seed, same machine, one after the
other. Ours is also broken down: interpreter start, imports and collection, platform start (the
tests' setup), the tests, platform stop (teardown), and the rest (session start and end, Allure
files, exit). Wall and CPU seconds: the machine may be shared, CPU seconds are steadier.

    python benchmarks/power_run_cost.py [--fault NAME ...] [--seed N]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rxverify.power import Job, command, load_matrix

ROOT = Path(__file__).resolve().parents[1]
# the previous matrix's runs (tests/power/matrix.toml at 75174d5): whole files per fault's run
BASELINE = {
    "transformer-mojibake": (["tests/contract/test_differential.py"], "both"),
    "core-packages-not-checked": (["tests/contract/test_withdrawal_rules.py"], "new"),
    "fhir-search-ignores-status": (
        ["tests/contract/test_fhir_conformance.py", "tests/contract/test_fhir_capabilities.py"],
        "new",
    ),
}
DURATION = re.compile(r"^([\d.]+)s (setup|call|teardown) ", re.MULTILINE)


def _timed(argv: list[str], env: dict[str, str]) -> tuple[int, float, float, str]:
    """Exit code, wall seconds, CPU seconds (the process and its children) and the output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done.returncode, wall, cpu, done.stdout + done.stderr


def _baseline(fault: str, seed: int, work: Path) -> list[str]:
    tests, platform = BASELINE[fault]
    return [sys.executable, "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider", "-x", "--platform", platform,
            "--examples", "20", "--seed", str(seed), "--alluredir", str(work / "allure-results"),
            "--fault", fault]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fault", action="append", default=[], choices=sorted(BASELINE))
    parser.add_argument("--seed", type=int, default=20211121)
    args = parser.parse_args()
    matrix = load_matrix(ROOT / "tests" / "power" / "matrix.toml")
    with tempfile.TemporaryDirectory(prefix="rxbench-power-") as tmp:
        cache, work = Path(tmp) / "pycache", Path(tmp) / "work"
        plain = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", RXVERIFY_REPORTS=str(work))
        cached = {k: v for k, v in plain.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = str(cache)
        _, interp, _, _ = _timed([sys.executable, "-c", "pass"], cached)
        print(f"interpreter start: {interp:.2f} s")
        for name in args.fault or sorted(BASELINE):
            fault = matrix.faults[name]
            job = Job(matrix.runs[fault.run], args.seed, fault)
            ours = [*command(job, work), "--durations=0"]
            collect = [a for a in ours if a not in ("-x", "--durations=0")] + ["--collect-only"]
            _timed(collect, cached)  # warms the cache, as the first runs of a matrix do
            code_b, wall_b, cpu_b, _ = _timed(_baseline(name, args.seed, work), plain)
            code_o, wall_o, cpu_o, out = _timed(ours, cached)
            _, wall_c, _, _ = _timed(collect, cached)
            phases = {"setup": 0.0, "call": 0.0, "teardown": 0.0}
            for seconds, phase in DURATION.findall(out):
                phases[phase] += float(seconds)
            rest = wall_o - wall_c - sum(phases.values())
            print(f"{name}: baseline exit {code_b} {wall_b:.1f} s wall, {cpu_b:.1f} s CPU; ours exit {code_o} "
                  f"{wall_o:.1f} s wall, {cpu_o:.1f} s CPU; ratio ours/baseline wall {wall_o / wall_b:.2f}, "
                  f"CPU {cpu_o / cpu_b:.2f}")  # fmt: skip
            print(f"  ours: interpreter + imports + collection {wall_c:.2f} s (interpreter alone {interp:.2f}), "
                  f"platform start {phases['setup']:.2f} s, tests {phases['call']:.2f} s, platform stop "
                  f"{phases['teardown']:.2f} s, rest {rest:.2f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
