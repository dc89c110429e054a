"""Suite power: run the suite against each seeded fault and prove it catches every one.

The matrix (tests/power/matrix.toml) names, per fault, the smallest run that must catch it and
what the failure must name. Each faulted run must fail and name it; each run without faults
must pass. Runs go two at a time (the machine's cores), each with its own reports folder, so
nothing they write reaches reports/ of the real run. The fault catalogue comes from the
reference platforms' own command line: the suite never imports them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rxverify.errors import UserError

RUN_TIMEOUT_S = 600


@dataclass(frozen=True)
class Run:
    """One run of the suite: a pytest selection or a Locust profile, on a platform."""

    name: str
    kind: str
    tests: tuple[str, ...]
    profile: str
    platform: str
    examples: int | None = None  # this run's examples, when it needs more than the default


@dataclass
class Outcome:
    """What one run did, with or without a fault."""

    fault: str | None
    run: str
    exit_code: int
    seconds: float
    caught: bool
    by: str
    expected: str = ""
    output: str = ""  # the end of what the run printed, kept for a miss or a failing clean run


def load_matrix(path: Path) -> tuple[dict[str, Run], dict[str, tuple[str, str]], dict[str, Any]]:
    """Runs, faults (fault -> (run, expect regex)) and defaults; a malformed matrix is one UserError."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        runs = {
            name: Run(
                name,
                spec["run"],
                tuple(spec.get("tests", ())),
                spec.get("profile", ""),
                spec["platform"],
                spec.get("examples"),
            )
            for name, spec in raw["runs"].items()
        }
        faults = {name: (spec["run"], spec["expect"]) for name, spec in raw["faults"].items()}
    except OSError as exc:
        raise UserError(f"cannot read power matrix {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"power matrix {path} is malformed: {exc}") from None
    for fault, (run, _) in faults.items():
        if run not in runs:
            raise UserError(f"power matrix {path}: fault {fault} names unknown run {run!r}")
    return runs, faults, raw.get("defaults", {})


def catalogue() -> dict[str, str]:
    """The platforms' fault catalogue (name -> kind), from `python -m refplatform --list-faults`."""
    out = subprocess.run(
        [sys.executable, "-m", "refplatform", "--list-faults"], capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0:
        raise UserError(f"cannot list the reference platforms' faults: {out.stderr.strip()[:200]}")
    return {line.split("\t")[0]: line.split("\t")[2] for line in out.stdout.splitlines() if line.count("\t") >= 3}


def command(run: Run, fault: str | None, defaults: dict[str, Any], reports: Path) -> list[str]:
    """The command line of one run."""
    faults = ["--fault", fault] if fault else []
    if run.kind == "contract":
        return [
            sys.executable,
            "-m",
            "pytest",
            *run.tests,
            "-q",
            "-p",
            "no:cacheprovider",
            "-x",
            "--platform",
            run.platform,
            "--examples",
            str(defaults.get("examples", 20)),
            "--seed",
            str(defaults.get("seed", 1)),
            *faults,
        ]
    if run.kind == "load":
        return [
            sys.executable,
            "-m",
            "locust",
            "-f",
            "loadtests/locustfile.py",
            "--headless",
            "--config",
            run.profile,
            "--platform",
            run.platform,
            "--reports",
            str(reports),
            "--csv",
            str(reports / "load" / "run"),
            "--html",
            str(reports / "load" / "run.html"),
            *faults,
        ]
    raise UserError(f"unknown run kind {run.kind!r} (contract or load)")


def _first_failure(output: str) -> str:
    for pattern in (r"^FAILED (\S+)", r"(SLO BREACHED: [^\n]+)", r"(Rule violated: \S+)"):
        found = re.search(pattern, output, re.MULTILINE)
        if found:
            return found.group(1)[:160]
    return ""


def execute(run: Run, fault: str | None, expect: str, defaults: dict[str, Any]) -> Outcome:
    """Run once in its own reports folder; judge caught (with a fault) or clean (without)."""
    with tempfile.TemporaryDirectory(prefix="rxpower-") as tmp:
        reports = Path(tmp)
        (reports / "load").mkdir()
        env = dict(os.environ, RXVERIFY_REPORTS=str(reports))
        start = time.monotonic()
        try:
            done = subprocess.run(
                command(run, fault, defaults, reports), capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT_S
            )
            code, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            code, output = -1, f"timed out after {RUN_TIMEOUT_S} s: {exc}"
        seconds = time.monotonic() - start
    tail = output[-4000:]
    if fault is None:
        failed = code != 0
        return Outcome(
            None, run.name, code, seconds, False, _first_failure(output) if failed else "", "", tail if failed else ""
        )
    named = re.search(expect, output) is not None
    caught = code not in (0, 2, -1) and named  # 2 is bad input, -1 a time-out: neither is a catch
    return Outcome(fault, run.name, code, seconds, caught, _first_failure(output), expect, "" if caught else tail)


def run_matrix(
    matrix: Path, only: list[str] | None = None, workers: int = 2, seed: int | None = None
) -> tuple[list[Outcome], list[Outcome]]:
    """Every faulted run and every clean run, `workers` at a time; `seed` overrides the matrix's."""
    runs, faults, defaults = load_matrix(matrix)
    if seed is not None:
        defaults = defaults | {"seed": seed}
    known = catalogue()
    missing = sorted(set(known) - set(faults))
    if missing:
        raise UserError(f"power matrix {matrix} has no row for fault(s) {', '.join(missing)}: every fault needs one")
    stray = sorted(set(faults) - set(known))
    if stray:
        raise UserError(f"power matrix {matrix} names fault(s) the platforms do not have: {', '.join(stray)}")
    unknown = sorted(set(only or []) - set(faults))
    if unknown:
        raise UserError(f"unknown fault(s) {', '.join(unknown)} (python -m refplatform --list-faults)")
    chosen = {f: faults[f] for f in (only or sorted(faults))}
    clean_runs = sorted({run for run, _ in chosen.values()})
    jobs: list[tuple[Run, str | None, str]] = [(runs[r], None, "") for r in clean_runs]
    jobs += [(runs[run], fault, expect) for fault, (run, expect) in chosen.items()]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda job: execute(job[0], job[1], job[2], defaults), jobs))
    return [r for r in results if r.fault is not None], [r for r in results if r.fault is None]


def table(faulted: list[Outcome], clean: list[Outcome], kinds: dict[str, str]) -> str:
    """The power table: fault, caught or missed, by which test, seconds to detection; the score."""
    lines = [f"{'fault':<46} {'kind':<17} {'verdict':<7} {'s':>6}  by", "-" * 120]
    for o in sorted(faulted, key=lambda o: o.fault or ""):
        verdict = "caught" if o.caught else "MISSED"
        by = o.by or (f"(exit {o.exit_code}; nothing naming /{o.expected}/)" if not o.caught else "")
        lines.append(f"{o.fault:<46} {kinds.get(o.fault or '', ''):<17} {verdict:<7} {o.seconds:6.1f}  {o.run}: {by}")
    lines.append("-" * 120)
    for o in clean:
        lines.append(
            f"{'(no fault) ' + o.run:<46} {'':<17} {'pass' if o.exit_code == 0 else 'FAIL':<7} {o.seconds:6.1f}  {o.by}"
        )
    caught = sum(o.caught for o in faulted)
    lines.append(
        f"score: {caught}/{len(faulted)} faults caught; clean runs passing: "
        f"{sum(o.exit_code == 0 for o in clean)}/{len(clean)}"
    )
    return "\n".join(lines)


def write_report(reports: Path, faulted: list[Outcome], clean: list[Outcome]) -> Path:
    """reports/power.json: every outcome."""
    reports.mkdir(parents=True, exist_ok=True)
    path = reports / "power.json"
    path.write_text(
        json.dumps({"faulted": [asdict(o) for o in faulted], "clean": [asdict(o) for o in clean]}, indent=1),
        encoding="utf-8",
    )
    return path
