"""`rxverify watch --plan P`: the break-in weeks after a GO, as rounds of the plan's read-only steps.

Each round runs the steps the plan names under [watch] (reads only, checked when the plan is
read) through the run's guarded session with test patients only, writes their Allure results
(the same test names every round, so Allure's history gives the trend) and judges the round's
service levels: every step as the plan expects (errors) and each step's latency within
--max-latency-ms. The watch stops at the first breach with exit 1, so a scheduler can alert;
after the last round (--rounds, or --until an instant) it exits 0. Bounded: at most MAX_ROUNDS.
On a production-class target it runs only inside the plan (the run builder and the guard see to it).
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rxverify.errors import UserError
from rxverify.operations import load_operations
from rxverify.plans import Plan
from rxverify.report.evidence import COMPLETE, RunWriter, begin_run
from rxverify.report.runs import write_run_record
from rxverify.target.run import Run
from rxverify.verify import execute, step_name

MAX_ROUNDS = 2000  # two weeks at one round every 10 minutes
Say = Callable[[str], None]


def watch_plan(plan: Plan, contracts: Path) -> Plan:
    """The plan cut to its [watch] steps, each of them a read."""
    raw = tomllib.loads(plan.path.read_text(encoding="utf-8"))
    steps = (raw.get("watch") or {}).get("steps") if isinstance(raw.get("watch"), dict) else None
    known = {s.id: s for s in plan.steps}
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s in known for s in steps):
        raise UserError(f"verification plan {plan.path}: [watch] steps must list step ids of the plan")
    operations = load_operations(contracts)
    writes = [s for s in steps if operations[known[s].operation].is_write]
    if writes:
        raise UserError(f"verification plan {plan.path}: [watch] step {writes[0]} writes: the watch runs reads only")
    return replace(plan, steps=tuple(known[s] for s in steps))


def watch(plan: Plan, run: Run, platform: str, contracts: Path, reports: Path, every_s: float, rounds: int | None,
          until: datetime | None, max_latency_ms: float, say: Say = print,
          sleep: Callable[[float], None] = time.sleep) -> int:
    """Run rounds until the last one or the first breach; 0 all within the service levels, 1 a breach."""
    if every_s <= 0 or max_latency_ms <= 0 or (rounds is not None and not 1 <= rounds <= MAX_ROUNDS):
        raise UserError(f"--every and --max-latency-ms must be positive, --rounds 1..{MAX_ROUNDS}")
    if rounds is None and until is None:
        raise UserError("give --rounds N or --until TIME: the watch is bounded")
    target = run.target
    # the rounds are one run (one folder, one manifest, the run builder's id): their results side by side
    # give Allure's trend; its own suite, so the gate never reads a watch round as the release's verification
    evidence = begin_run(reports, "watch", target=target.name, environment_class=target.environment_class,
                         embedded=target.is_local, platforms=[platform], run_id=run.run_id,
                         selection={"plan": plan.name, "planFile": str(plan.path)},
                         collected=[step_name(plan, step) for step in plan.steps])
    with evidence.ended_by_errors():
        code = _rounds(plan, run, platform, contracts, reports, every_s, rounds, until, max_latency_ms, say, sleep,
                       evidence)
    endpoints = target.platforms[platform]
    write_run_record(reports, run_id=evidence.run, suite="watch", target=target.name,
                     environment_class=target.environment_class, guard_counts=run.guard.counts, release=plan.release,
                     platforms={platform: {"legacy": endpoints.legacy, "fhir": endpoints.fhir}})
    evidence.finish(COMPLETE, summary="verification/summary.json")  # the last round's
    return code


def _rounds(plan: Plan, run: Run, platform: str, contracts: Path, reports: Path, every_s: float, rounds: int | None,
            until: datetime | None, max_latency_ms: float, say: Say, sleep: Callable[[float], None],
            evidence: RunWriter) -> int:
    n = 0
    while True:
        n += 1
        started = time.monotonic()
        outcome = execute(plan, run, platform, contracts, reports, lambda line: None, evidence=evidence)
        breaches = [f"{r.step.id} {r.step.operation}: {r.message}" for r in outcome.results if r.status != "passed"]
        breaches += [f"{r.step.id} {r.step.operation}: {r.stop_ms - r.start_ms} ms > {max_latency_ms:g} ms"
                     for r in outcome.results if r.status == "passed" and r.stop_ms - r.start_ms > max_latency_ms]
        slowest = max((r.stop_ms - r.start_ms for r in outcome.results), default=0)
        say(f"round {n}: {len(outcome.results)} steps, slowest {slowest} ms: "
            + ("within the service levels" if not breaches else "BREACH: " + "; ".join(breaches)))
        if breaches:
            say(f"watch: breach in round {n}: exit 1")
            return 1
        last = (rounds is not None and n >= rounds) or n >= MAX_ROUNDS or (
            until is not None and datetime.now(UTC) + timedelta(seconds=every_s) >= until)
        if last:
            say(f"watch: {n} rounds within the service levels")
            return 0
        sleep(max(0.0, every_s - (time.monotonic() - started)))


def parse_every(text: str) -> float:
    """`15m`, `30s`, `1h` or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        return float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text)
    except ValueError:
        raise UserError(f"--every {text!r}: a duration like 30s, 15m or 1h") from None
