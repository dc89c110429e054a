"""The life of a load run inside Locust: options, target, seeding, recording, SLO verdict, reports.

The locustfile wires these functions to Locust's events; they work the same in a single
process, with `--processes N`, and as master plus workers:

- init: options are validated (bad input is one line and exit 2), the callers get their task
  weights from the load model, the profile's shape is installed; the master (or the single
  process) opens the target: the embedded platforms are started on loopback for `--target
  local`, the target is probed, the test data seeded through the guard (the ledger records it).
  Workers learn the started platforms' addresses from the options Locust sends them.
- test_start: workers open the target; where users run, the open model's schedule starts.
- every request is recorded (1 % log buckets, from its send and its intended send); workers report their part.
- quitting (also after SIGTERM): the SLOs are checked, the summary, chart and Allure results
  written, the exit code set, and the embedded platforms stopped.

The master (or the single process) keeps the run's evidence (rxverify.report.evidence): its
manifest is written `in-progress` when the target is known, before the platforms start; the
summary and the Allure results go to the run's own folder (reports/runs/<run id>/), and the
manifest ends `complete`, `interrupted` (SIGTERM, or stopped before the profile's end) or
`failed` (bad input after it began).
"""

from __future__ import annotations

import atexit
import json
import math
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from rxverify.errors import UserError
from rxverify.load.client import GuardedHttpUser, GuardedUser
from rxverify.load.interfaces import INTERFACES, Fhir, Legacy, SeedError
from rxverify.load.openmodel import ArrivalSchedule
from rxverify.load.parts import LAST_PART, WAIT_S, await_last_parts
from rxverify.load.progress import Progress
from rxverify.load.recorder import OVERALL, Recorder
from rxverify.load.report import html_page, latency_chart, slo_result_name, summary, write_allure
from rxverify.load.slo import DRIFT_KEYS, SloSet, Verdict, applicable, check, check_window, load_slos
from rxverify.loadmodel import LoadModel, caller_loads, load_model
from rxverify.paths import contracts_dir
from rxverify.report.evidence import COMPLETE, FAILED, INTERRUPTED, RunWriter, begin_run
from rxverify.target.credentials import load_actors
from rxverify.target.local import check_faults, new_ticket_key
from rxverify.target.probe import require_reachable
from rxverify.target.run import Run, check_class, new_run_id, open_run, registry_for, require_tickets, tickets_for
from rxverify.target.targets import resolve_target
from rxverify.values import checked, non_negative_int, non_negative_number, one_of, positive_int, positive_number, seed

PLATFORMS = ("old", "new", "fhir")
MODES = ("open", "closed")
SEED_PRESCRIPTIONS = 2  # per seeded patient, each with the most withdrawals a prescription allows
TICKET_REFRESH_S = 1800  # tickets live an hour (tickets.TICKET_LIFETIME_S): re-mint after half
WEIGHT_UNIT = 1000  # task weights: requests per second x this, as integers
MIN_VUS = 2  # per caller in the open model, so a rare caller still has a pool
FHIR_UNSENT = frozenset({"HamtaExpeditionsId", "MakuleraOrdination", "KontrolleraArbetsplatskod"})
REPORT_LAG_S = 3.5  # workers report every 3 s: a master judges a stress step, and prints progress, that much later


def add_options(parser: Any, profiles: Iterable[str] = ()) -> None:
    """Register the project's options on Locust's own parser (shown by `locust --help`), checked once parsed.

    The options carry no argparse types: `settings_of` checks each (one line, exit 2). The check
    runs as soon as Locust has parsed the command line (`check_when_parsed`), before Locust
    opens its CSV files, so a mistake never empties the previous run's reports.
    """
    group = parser.add_argument_group("rxverify", "rxverify: target, platform, load model, SLOs")
    group.add_argument("--target", default="local", help="target from contracts/targets.toml (default: local, "
                       "the embedded platforms started on loopback for the run)")  # fmt: skip
    group.add_argument("--targets-file", default=None, help="targets file (default contracts/targets.toml)")
    group.add_argument("--contracts", default=None, help="contracts folder (default ./contracts)")
    group.add_argument("--platform", default="new", help="old: legacy interface of the old platform; new: legacy "
                       "interface of the new platform (the transformer); fhir: FHIR API of the new platform "
                       "(default new)")  # fmt: skip
    group.add_argument("--old-url", default=None, help="base URL of an already running old platform")
    group.add_argument("--new-url", default=None, help="base URL of an already running new platform")
    group.add_argument(
        "--fhir-url", default=None, help="base URL of the new platform's FHIR API, if not <new-url>/fhir"
    )
    group.add_argument("--ticket-key-file", default=None, help="ticket key of running local platforms (rxverify serve)")
    group.add_argument("--trust-dir", default=None, help="local trust domain of running local platforms on mutual "
                       "TLS (rxverify serve prints it)")  # fmt: skip
    group.add_argument("--plain-http", action="store_true", default=False, help="start the local platforms on "
                       "plain HTTP with JWT tickets (default: Säker åtkomst 17.1, mutual TLS, assertions, tokens)")
    group.add_argument("--fault", action="append", default=None, help="start the local platforms with a seeded fault")
    group.add_argument("--model", default="loadtests/model.toml", help="load model (default loadtests/model.toml)")
    group.add_argument("--slo", default="loadtests/slo.toml", help="SLO file (default loadtests/slo.toml)")
    group.add_argument("--scale", default=1.0, help="scale factor of the national peak (default 1)")
    group.add_argument("--shape", default="smoke", help="load profile (shapes.py): smoke, peak, morning, stress, soak")
    group.add_argument("--arrival", default="open", help="open: iterations at the model's arrival rate (k6's "
                       "arrival-rate executors); closed: Locust users with think times (default open)")  # fmt: skip
    group.add_argument("--duration", default=0.0, help="seconds the profile runs (0: its default)")
    group.add_argument("--step-seconds", default=30.0, help="stress: seconds per step")
    group.add_argument("--max-steps", default=10, help="stress: steps before giving up")
    group.add_argument("--seed-patients", default=24, help="test patients seeded with prescriptions")
    group.add_argument("--seed", default=None, help="seed of the users' random draws (patients, actors, "
                       "think times; default: drawn and printed)")  # fmt: skip
    group.add_argument("--think-scale", default=1.0, help="closed model: think times x this")
    group.add_argument("--max-vus", default=0, help="open model: virtual users of the pool, all "
                       "callers together (k6's maxVUs; 0, the default: the model's vu_budget_s x peak)")  # fmt: skip
    group.add_argument("--start-timeout", default=5.0, help="open model: seconds a scheduled iteration "
                       "may wait for an idle virtual user; one that waited longer is dropped (default 5)")  # fmt: skip
    group.add_argument("--warm-up", default=0.0, help="seconds at the start whose requests are sent but not "
                       "judged: connections opened, the platform's first call of each service (default 0)")  # fmt: skip
    group.add_argument("--progress-seconds", default=5.0,
                       help="seconds between progress lines on stderr (0: none; default 5)")  # fmt: skip
    group.add_argument("--reports", default="reports", help="reports folder (default ./reports)")
    group.add_argument("--rx-seeded", default="", help=argparse_suppress())
    group.add_argument("--rx-run-id", default="", help=argparse_suppress())  # the master's, for its workers
    check_when_parsed(parser, profiles)


def check_when_parsed(parser: Any, profiles: Iterable[str]) -> None:
    """Check our options the moment Locust has parsed them: bad input is one line and exit 2.

    Locust creates its CSV writers (opening `<csv>_stats.csv` & co. for writing, which empties
    the previous run's) before its init event; a check there would come too late. So the
    parser's `parse_args` is followed by `check_options`: options, profile, model, SLOs, the
    target, its class and registry, and (not on a worker) a probe of an already running target.
    """
    parse = parser.parse_args
    known = tuple(profiles)

    def parse_and_check(*args: Any, **kwargs: Any) -> Any:
        options = parse(*args, **kwargs)
        try:
            check_options(options, known)
        except UserError as exc:
            fail(str(exc))
        return options

    parser.parse_args = parse_and_check


def check_options(options: Any, profiles: Iterable[str]) -> Settings:
    """Everything about a run that can be checked before Locust writes or starts anything."""
    settings = settings_of(options, profiles)
    load_model(settings.model_path)
    load_slos(settings.slo_path)
    target = resolve_target(settings.target, settings.targets_file, settings.old_url, settings.new_url,
                            settings.fhir_url)  # fmt: skip
    check_class(target, "load")
    if settings.faults:
        if not target.is_local:
            raise UserError("--fault applies to the embedded platforms only (--target local without URLs)")
        check_faults(settings.faults)
    side = "old" if settings.platform == "old" else "new"
    if not target.is_local and side not in target.platforms:
        raise UserError(f"target {target.name!r} has no {side} platform (--platform {settings.platform})")
    key_file = Path(settings.ticket_key_file) if settings.ticket_key_file else None
    if not target.is_local:
        registry_for(target, settings.contracts)
        actors = load_actors(settings.contracts / "testdata" / "test-actors.json")
        require_tickets(target, tickets_for(target, actors, key_file))
        if not getattr(options, "worker", False) and not getattr(options, "list_commands", False):
            trust = Path(settings.trust_dir) if settings.trust_dir else None
            with open_run(target, settings.contracts, suite="load", ticket_key_file=key_file, start_local=False,
                          trust_dir=trust) as run:
                require_reachable(run, (side,))
    return settings


def argparse_suppress() -> str:
    """Help text that hides an internal option (the master hands it to the workers)."""
    import argparse

    return argparse.SUPPRESS


@dataclass(frozen=True)
class Settings:
    """The validated options of a run."""

    target: str
    targets_file: Path
    contracts: Path
    platform: str
    model_path: Path
    slo_path: Path
    scale: float
    profile: str
    arrival: str
    duration: float
    step_s: float
    max_steps: int
    seed_patients: int
    think_scale: float
    max_vus: int
    start_timeout_s: float
    warmup_s: float
    progress_s: float
    reports: Path
    faults: tuple[str, ...]
    seed: int
    old_url: str | None
    new_url: str | None
    fhir_url: str | None
    ticket_key_file: str | None
    trust_dir: str | None = None
    plain_http: bool = False


def settings_of(options: Any, profiles: Iterable[str]) -> Settings:
    """Check the options (as typed, or as a conf file gives them); a bad one is a UserError of one line."""
    known = sorted(profiles)
    if options.shape not in known:
        raise UserError(f"unknown load profile {options.shape!r} (--shape) (known: {', '.join(known)})")
    platform = checked("--platform", one_of(PLATFORMS), options.platform)
    arrival = checked("--arrival", one_of(MODES), options.arrival)
    contracts = contracts_dir(options.contracts)
    return Settings(
        target=options.target,
        targets_file=Path(options.targets_file or contracts / "targets.toml"),
        contracts=contracts,
        platform=platform,
        model_path=Path(options.model),
        slo_path=Path(options.slo),
        scale=checked("--scale", positive_number, options.scale),
        profile=options.shape,
        arrival=arrival,
        duration=checked("--duration", non_negative_number, options.duration),
        step_s=checked("--step-seconds", positive_number, options.step_seconds),
        max_steps=checked("--max-steps", positive_int, options.max_steps),
        seed_patients=checked("--seed-patients", positive_int, options.seed_patients),
        think_scale=checked("--think-scale", positive_number, options.think_scale),
        max_vus=checked("--max-vus", non_negative_int, options.max_vus),
        start_timeout_s=checked("--start-timeout", non_negative_number, options.start_timeout),
        warmup_s=checked("--warm-up", non_negative_number, options.warm_up),
        progress_s=checked("--progress-seconds", non_negative_number, options.progress_seconds),
        reports=Path(options.reports),
        faults=tuple(options.fault or ()),
        seed=checked("--seed", seed, options.seed) if options.seed is not None else random.SystemRandom().randrange(
            1, 2**31
        ),
        old_url=options.old_url,
        new_url=options.new_url,
        fhir_url=options.fhir_url,
        ticket_key_file=options.ticket_key_file,
        trust_dir=getattr(options, "trust_dir", None),
        plain_http=bool(getattr(options, "plain_http", False)),
    )


def work(operation: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a task as the work that the load model names `operation` (its weight comes from the model)."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.rx_operation = operation  # type: ignore[attr-defined]
        return fn

    return mark


@dataclass
class LoadRun:
    """Everything a process of a run holds."""

    settings: Settings
    model: LoadModel
    slos: SloSet
    role: str  # local | master | worker
    callers: list[type[Any]]
    rates: dict[str, float]  # requests per second per caller at scale 1 (what this interface sends)
    pool: dict[str, int]  # open model: VUs per caller
    users: dict[str, float]  # closed model: Little's-law users per caller at the scale
    recorder: Recorder = field(default_factory=Recorder)
    stack: ExitStack = field(default_factory=ExitStack)
    run: Run | None = None
    interface: Legacy | Fhir | None = None
    base_url: str = ""
    patients: list[str] = field(default_factory=list)
    schedule: ArrivalSchedule | None = None
    shape: Any = None
    cpu_mark: float | None = None
    guard_mark: float = 0.0  # the guard's busy seconds at cpu_mark
    started_ms: int = 0
    stress: dict[str, Any] | None = None
    stress_verdicts: list[Verdict] | None = None
    finished: bool = False
    workers: int = 0  # the master's workers at the start
    interrupted: bool = False  # by SIGTERM
    whole: Recorder | None = None  # a worker: everything it recorded (what it reported, summed)
    last_parts: set[str] = field(default_factory=set)  # a master: workers whose last part arrived
    missing_parts: list[str] = field(default_factory=list)  # a master: workers whose last part did not
    progress: Progress | None = None
    evidence: RunWriter | None = None  # the run's manifest (master or single process)
    ending: tuple[str, dict[str, Any]] | None = None  # how the manifest ends, once the run record is written


ACTIVE: LoadRun | None = None


def active() -> LoadRun:
    """The run of this process."""
    if ACTIVE is None:
        raise RuntimeError("no load run is active")
    return ACTIVE


def fail(message: str) -> None:
    """Bad input: one line, exit 2."""
    print(f"rxverify: {message}", file=sys.stderr, flush=True)
    os._exit(2) if ACTIVE is not None and ACTIVE.role == "worker" else sys.exit(2)


# ---- init ----


def on_init(environment: Any, runner: Any, callers: list[type[Any]], shapes: dict[str, type[Any]]) -> None:
    """Validate, weigh the callers, install the shape; the master opens and seeds the target."""
    global ACTIVE
    from locust.runners import MasterRunner, WorkerRunner

    role = "master" if isinstance(runner, MasterRunner) else "worker" if isinstance(runner, WorkerRunner) else "local"
    try:
        settings = settings_of(environment.parsed_options, shapes)
        model = load_model(settings.model_path)
        slos = applicable(load_slos(settings.slo_path), INTERFACES[settings.platform].request_names)
        skip = FHIR_UNSENT if settings.platform == "fhir" else frozenset()
        rates = _weigh(callers, model, skip)
        shape = shapes[settings.profile]()
        shape.runner = runner
        peak = shape.max_multiplier(settings)
        loads = {c.caller: c for c in caller_loads(model, settings.scale, skip)}
        pool = _pool(settings, {c: loads[c].vus * peak for c in loads}, {c: loads[c].per_second for c in loads})
        # Little's law with the think times scaled: users = rate x (response time + think time x think-scale)
        users = {c: loads[c].per_second * (model.response_time_s + loads[c].think_time_s * settings.think_scale)
                 for c in loads}  # fmt: skip
        ACTIVE = LoadRun(settings, model, slos, role, callers, rates, pool, users)
        # the users' draws (patient, actor, think time) follow the seed; the interleaving of
        # concurrent users does not, so a load run is reproducible in what it draws, not to the request
        random.seed(settings.seed)
        if role != "worker":
            print(f"rxverify load: seed {settings.seed}", file=sys.stderr, flush=True)
        ACTIVE.shape = shape
        environment.shape_class = shape
        for cls in callers:
            if settings.arrival == "open":
                cls.fixed_count = pool[cls.caller]
            else:
                cls.weight = max(1, round(users[cls.caller] * 100))
        if role == "master":
            runner.register_message(LAST_PART, on_last_part)
        if role != "worker":
            _open(environment, ACTIVE, seed=True)
            _on_sigterm(runner, ACTIVE)
    except UserError as exc:
        if ACTIVE is not None and ACTIVE.evidence is not None:
            ACTIVE.evidence.finish(FAILED, error=str(exc))
        _close_quietly()
        fail(str(exc))


def planned_slos(load: LoadRun) -> list[str]:
    """The SLO results the run will write (its manifest's test ids): what `check`, or a stress step, judges."""
    profile = load.settings.profile
    return [
        slo_result_name(slo)
        for slo in load.slos.slos
        if (slo.key not in DRIFT_KEYS or profile == "soak") and (profile != "stress" or slo.scope == OVERALL)
    ]


def _begin_evidence(load: LoadRun, target: Any, run_id: str) -> None:
    """The run's manifest, in progress, before the platforms start."""
    s = load.settings
    load.evidence = begin_run(
        s.reports,
        "load",
        target=target.name,
        environment_class=target.environment_class,
        embedded=target.is_local,
        platforms=["old" if s.platform == "old" else "new"],
        selection={
            "profile": s.profile,
            "interface": s.platform,
            "arrival": s.arrival,
            "scale": s.scale,
            "duration_s": s.duration,
            "faults": list(s.faults),
        },
        collected=planned_slos(load),
        seeds={"load": s.seed},
        run_id=run_id,  # the ledger's entries of the master and its workers carry the same id
    )


def _pool(settings: Settings, modelled: dict[str, float], rates: dict[str, float]) -> dict[str, int]:
    """The open model's VUs per caller: the model's (rate x vu_budget_s at the peak), or --max-vus split by rate."""
    if not settings.max_vus:
        return {c: max(MIN_VUS, math.ceil(v)) for c, v in modelled.items()}
    spare = settings.max_vus - MIN_VUS * len(rates)
    if spare < 0:
        raise UserError(f"--max-vus {settings.max_vus}: at least {MIN_VUS * len(rates)} ({MIN_VUS} per caller)")
    total = sum(rates.values()) or 1.0
    shares = {c: spare * r / total for c, r in rates.items()}
    pool = {c: MIN_VUS + int(v) for c, v in shares.items()}
    # the VUs the whole parts leave go to the largest remainders, so the pool is exactly --max-vus
    by_remainder = sorted(shares, key=lambda c: shares[c] - int(shares[c]), reverse=True)
    for c in by_remainder[: settings.max_vus - sum(pool.values())]:
        pool[c] += 1
    return pool


def _on_sigterm(runner: Any, load: LoadRun) -> None:
    """Stop the run on SIGTERM so the reports are written.

    Locust installs its own SIGTERM handler only after a headless shape run has ended, so a
    SIGTERM during the run would end the process before any report is written.
    """
    import signal

    import gevent

    def stop() -> None:
        load.interrupted = True
        print("rxverify: SIGTERM: stopping the users and writing the reports of what ran", file=sys.stderr)
        gevent.spawn(runner.quit)

    gevent.signal_handler(signal.SIGTERM, stop)


def _weigh(callers: list[type[Any]], model: LoadModel, skip: frozenset[str]) -> dict[str, float]:
    """Set each caller's task list from the model's rates; returns requests/s per caller (scale 1)."""
    rates: dict[str, float] = {}
    for cls in callers:
        works = {fn.rx_operation: fn for fn in vars(cls).values() if hasattr(fn, "rx_operation")}
        modelled = {r.operation: r for r in model.rates if r.caller == cls.caller}
        if not modelled:
            raise UserError(f"load model: no caller {cls.caller!r} (the locustfile's {cls.__name__})")
        missing = sorted(set(modelled) - set(works))
        if missing:
            raise UserError(f"load model: caller {cls.caller!r} names {', '.join(missing)}, which no task performs")
        tasks: list[Callable[..., Any]] = []
        for op, fn in works.items():
            if op in skip or op not in modelled:
                continue
            tasks += [fn] * max(1, round(modelled[op].per_second * WEIGHT_UNIT))
        cls.tasks = tasks
        rates[cls.caller] = sum(r.per_second for op, r in modelled.items() if op not in skip)
    return rates


def _open(environment: Any, load: LoadRun, seed: bool) -> None:
    """Open the target (starting the local platforms), set the callers' guard and host; seed when asked."""
    s = load.settings
    options = environment.parsed_options
    target = resolve_target(s.target, s.targets_file, options.old_url, options.new_url, options.fhir_url)
    check_class(target, "load")  # a production-class target: one line, exit 2, before anything is opened
    if s.faults and not target.is_local:
        raise UserError("--fault applies to the embedded platforms only (--target local without URLs)")
    side = "old" if s.platform == "old" else "new"
    if not target.is_local and side not in target.platforms:
        raise UserError(f"target {target.name!r} has no {side} platform (--platform {s.platform})")
    key_file = Path(options.ticket_key_file) if options.ticket_key_file else None
    key = new_ticket_key() if target.is_local else None
    # the master's (or the single process's) run id, which its workers' ledger entries carry too
    run_id = new_run_id("load") if seed else str(options.rx_run_id or "")
    if seed:
        _begin_evidence(load, target, run_id)
    run = load.stack.enter_context(
        open_run(
            target,
            s.contracts,
            suite="load",
            reports=s.reports,
            faults=s.faults,
            ticket_key_file=key_file,
            platforms=(side,),
            key=key,
            audit=target.is_local and load.role == "local",  # one process: one guard sees every request
            run_id=run_id or None,
            tls=target.is_local and not s.plain_http,
            trust_dir=Path(options.trust_dir) if getattr(options, "trust_dir", None) and not target.is_local else None,
        )
    )
    load.run = run
    atexit.register(_close_quietly)
    endpoints = run.target.platforms[side]
    base = endpoints.fhir if s.platform == "fhir" else endpoints.legacy
    if not base:
        raise UserError(
            f"target {run.target.name!r}: the {side} platform has no {'FHIR' if s.platform == 'fhir' else 'legacy'} API"
        )
    load.base_url = base
    load.interface = INTERFACES[s.platform](s.contracts)
    GuardedUser.guard = run.guard
    GuardedHttpUser.bind(run)  # a locustfile's own HttpUser of the guarded kind calls as the run does
    for cls in load.callers:
        cls.host = base
    environment.host = base
    if seed:
        if target.is_local:
            require_reachable(run, (side,))  # a target already running was probed when the options were checked
        load.patients = _seed(load, run, base)
        # the workers take these from the options Locust sends them with every spawn message
        if target.is_local:
            options.new_url = options.new_url or (base.rsplit("/", 1)[0] if side == "new" else None)
            options.old_url = options.old_url or (base.rsplit("/", 1)[0] if side == "old" else None)
            # the run's own key file (0600, in its temporary folder, removed with it)
            options.ticket_key_file = options.ticket_key_file or str(run.local.key_file if run.local else "")
            if run.local is not None and run.local.trust is not None:  # the workers call over the same trust domain
                options.trust_dir = str(run.local.trust.root)
        options.rx_seeded = ",".join(load.patients)
        options.rx_run_id = run.run_id
    else:
        load.patients = [p for p in (options.rx_seeded or "").split(",") if p]
        if not load.patients:
            raise UserError("the master sent no seeded test patients")


def _seed(load: LoadRun, run: Run, base: str) -> list[str]:
    """Consent and prescriptions for the first --seed-patients test patients of the registry."""
    patients = [p.id for p in run.registry.patients[: load.settings.seed_patients]]
    http = run.session()
    assert load.interface is not None
    started = time.monotonic()
    ledger = run.guard.ledger
    if ledger is not None:
        ledger.run_kind = "load seeding"  # what a rollback of the test data would undo, apart from the load
    try:
        for pid in patients:
            load.interface.seed(http, run, base, pid, SEED_PRESCRIPTIONS, run.actors.prescribers[0])
        if ledger is not None:
            ledger.run_kind = "load"
    except SeedError as exc:
        raise UserError(f"seeding the test data on {base} failed: {exc}") from None
    except requests.RequestException as exc:
        raise UserError(f"platform unreachable: {load.settings.platform} at {base} ({type(exc).__name__})") from None
    print(
        f"rxverify: seeded {len(patients)} test patients ({SEED_PRESCRIPTIONS} prescriptions and consent each) "
        f"in {time.monotonic() - started:.1f} s; ledger {run.guard.ledger.path if run.guard.ledger else '-'}",
        file=sys.stderr,
    )
    return patients


def _close_quietly() -> None:
    if ACTIVE is not None:
        ACTIVE.stack.close()


# ---- the test ----


def on_test_start(environment: Any) -> None:
    """Workers open the target; where users run, the open model starts scheduling."""
    load = active()
    load.recorder = Recorder()
    load.cpu_mark = time.process_time()
    load.guard_mark = _guard_busy()
    load.started_ms = int(time.time() * 1000)
    if load.role == "master":
        load.workers = len(environment.runner.clients)
        load.last_parts = set()
    if load.role == "worker" and load.run is None:
        try:
            _open(environment, load, seed=False)
        except UserError as exc:
            fail(str(exc))
    if load.role != "master" and load.settings.arrival == "open":
        runner = environment.runner

        def rate(caller: str, t: float) -> float:
            cls = next(c for c in load.callers if c.caller == caller)
            local = runner.user_classes_count.get(cls.__name__, 0) if load.role == "worker" else load.pool[caller]
            share = min(1.0, local / max(1, load.pool[caller]))
            return load.rates[caller] * load.settings.scale * load.shape.multiplier(t, load.settings) * share

        # started when the pool is spawned (k6 pre-allocates its VUs): see on_spawning_complete
        callers = [c.caller for c in load.callers]
        load.schedule = ArrivalSchedule(callers, rate, load.recorder, load.settings.start_timeout_s)
    if load.role == "worker":
        load.whole = Recorder()
    elif load.settings.progress_s > 0:
        lag = REPORT_LAG_S if load.role == "master" else 0.0
        closed = None if load.settings.arrival == "open" else offered_rate
        interval = load.settings.progress_s
        load.progress = Progress(load.recorder, load.slos, interval, lag, lambda: _offered(load), closed)
        load.progress.start()


def on_spawning_complete(user_count: int) -> None:
    """Start the open model's schedule once the VU pool is there."""
    load = ACTIVE
    if load is not None and load.role != "master" and load.recorder is not None and load.settings.warmup_s > 0 \
            and load.recorder.judged_from is None:
        load.recorder.judged_from = time.time() + load.settings.warmup_s
    if load is not None and load.schedule is not None and not load.schedule.started:
        load.schedule.start()


def on_test_stop(environment: Any) -> None:
    """Stop the schedule and the progress lines; a worker sends its last part, a master waits for every one."""
    load = ACTIVE
    if load is None:
        return
    if load.schedule is not None:
        load.schedule.stop()
    if load.progress is not None:
        load.progress.stop()
    if load.role == "worker" and load.cpu_mark is not None:
        environment.runner.send_message(LAST_PART, _part(load))
    elif load.role == "master":
        _await_last_parts(environment.runner, load)


def _await_last_parts(runner: Any, load: LoadRun) -> None:
    """Wait (bounded, parts.py) for every stopped worker's last part; workers still running (the master is
    being interrupted) send theirs only after `quit`, so then nothing is waited for."""
    from locust.runners import STATE_RUNNING, STATE_SPAWNING

    workers = list(runner.clients.all)
    if any(w.state in (STATE_RUNNING, STATE_SPAWNING) for w in workers):
        return
    load.missing_parts = await_last_parts([w.id for w in workers], load.last_parts)
    if load.missing_parts:
        print(f"rxverify: no last part from {len(load.missing_parts)} worker(s) within {WAIT_S:g} s: "
              "their last seconds are missing from the figures", file=sys.stderr)  # fmt: skip


def on_last_part(environment: Any, msg: Any, **_: Any) -> None:
    """The master merges a worker's last part."""
    if ACTIVE is not None:
        ACTIVE.recorder.merge_dict(msg.data)
        ACTIVE.last_parts.add(msg.node_id)


def on_request(
    name: str, start_time: float, response_time: float, exception: Any, context: dict[str, Any], **_: Any
) -> None:
    """Record one request (in the open model the context says how late it was sent on its intended time)."""
    if ACTIVE is not None:
        ACTIVE.recorder.request(name, start_time, response_time, exception is not None, context.get("rx_delay_ms"))


def _guard_busy() -> float:
    """Seconds the users' guard has spent so far (0 before the run set it)."""
    return GuardedUser.guard.busy_s if GuardedUser.guard is not None else 0.0


def on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
    """A worker hands what it recorded since its last report (and its CPU time) to the master."""
    load = ACTIVE
    if load is not None and load.cpu_mark is not None:
        data["rxverify"] = _part(load)


def _part(load: LoadRun) -> dict[str, Any]:
    """What a worker recorded since its last part, with its CPU and guard time; kept in its whole too."""
    part = load.recorder.take()
    now = time.process_time()
    part.cpu_s = now - (load.cpu_mark if load.cpu_mark is not None else now)
    load.cpu_mark = now
    part.guard_s, load.guard_mark = _guard_busy() - load.guard_mark, _guard_busy()
    data = part.to_dict()
    if load.whole is not None:
        load.whole.merge_dict(data)
    return data


def on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    """The master merges a worker's part."""
    if ACTIVE is not None and "rxverify" in data:
        ACTIVE.recorder.merge_dict(data["rxverify"])


# ---- stress steps ----


def judge_window(start: float, end: float) -> list[Verdict]:
    """The overall SLOs judged on the seconds [start, end) only (a stress step)."""
    load = active()
    return check_window(load.slos, load.recorder.window(start, end))


def offered_rate(t: float) -> float:
    """Requests per second the profile offers t seconds into the run (all callers)."""
    load = active()
    return sum(load.rates.values()) * load.settings.scale * load.shape.multiplier(t, load.settings)


# ---- the end ----


def on_quitting(environment: Any) -> None:
    """Check the SLOs, write the summary, chart and Allure results, set the exit code, stop the platforms."""
    load = ACTIVE
    if load is None or load.finished:
        return
    load.finished = True
    if load.role == "worker":
        if load.whole is not None:
            client_id = getattr(environment.runner, "client_id", str(os.getpid()))
            load.whole.write(load.settings.reports / "load" / "workers" / f"{load.settings.profile}-{client_id}.json")
        load.stack.close()
        return
    from locust.runners import STATE_RUNNING, STATE_SPAWNING

    runner = environment.runner
    running = runner is not None and runner.state in (STATE_RUNNING, STATE_SPAWNING)
    interrupted = load.interrupted or running
    try:
        if running:
            print("rxverify: interrupted: stopping the users and writing the reports of what ran", file=sys.stderr)
            runner.quit()
        if interrupted:
            _html(environment)
        if load.cpu_mark is not None:
            load.recorder.cpu_s += time.process_time() - load.cpu_mark
            load.recorder.guard_s += _guard_busy() - load.guard_mark
        code = _finish(environment, load, interrupted)
        environment.process_exit_code = code
    except BaseException as exc:
        if load.evidence is not None:
            load.evidence.finish(FAILED, error=f"the reports could not be written: {type(exc).__name__}: {exc}")
        raise
    finally:
        load.stack.close()
    _audit(environment, load)


def _audit(environment: Any, load: LoadRun) -> None:
    """Once the local platforms stopped: the egress audit and the run record (a failed audit fails the run)."""
    run = load.run
    if run is None:
        if load.evidence is not None and load.ending is not None:
            load.evidence.finish(load.ending[0], **load.ending[1])
        return
    from rxverify.report.runs import write_run_record
    from rxverify.safety.audit import egress_line

    print(egress_line(run.guard, run.audit_problems), file=sys.stderr, flush=True)
    evidence = load.evidence
    try:
        write_run_record(
            load.settings.reports,
            run_id=evidence.run if evidence else None,
            suite="load",
            target=run.target.name,
            environment_class=run.target.environment_class,
            guard_counts=run.guard.counts,
            seed=load.settings.seed,
            egress_audit=run.audit_problems,
        )
    except BaseException as exc:
        if evidence is not None:
            evidence.finish(FAILED, error=f"the run record could not be written: {type(exc).__name__}: {exc}")
        raise
    if run.audit_problems:
        environment.process_exit_code = 1
    if evidence is not None and load.ending is not None:
        status, fields = load.ending
        evidence.finish(status, **fields)


def _offered(load: LoadRun) -> float | None:
    rec = load.recorder
    if load.settings.arrival == "open":
        return float(sum(rec.scheduled.values())) or None
    duration = rec.duration_s
    steps = max(1, int(duration))
    return sum(offered_rate(t + 0.5) for t in range(steps)) * (duration / steps) if duration else None


def _finish(environment: Any, load: LoadRun, interrupted: bool) -> int:
    s = load.settings
    rec = load.recorder
    offered = _offered(load)
    if load.stress_verdicts is not None:
        verdicts = load.stress_verdicts
    else:
        verdicts = check(load.slos, rec, offered, soak=s.profile == "soak")
    run = load.run
    context: dict[str, Any] = {
        "run": load.evidence.run if load.evidence else None,
        "profile": s.profile,
        "arrival": s.arrival,
        "platform": s.platform,
        "target": run.target.name if run else s.target,
        "scale": s.scale,
        "interrupted": interrupted,
        "seed": s.seed,
        "model": str(s.model_path),
        "slo_file": str(s.slo_path),
        "slo_thresholds": "assumptions (no response-time requirement is published)",
        "started": load.started_ms,
        "guard": dict(run.guard.counts) if run else {},
        "ledger": str(run.guard.ledger.path) if run and run.guard.ledger else None,
        "workers": load.workers,
    }
    if load.missing_parts:
        context["workers_without_last_part"] = load.missing_parts
    if s.arrival == "open":
        context["open_model"] = {"vus": sum(load.pool.values()), "vus_by_caller": load.pool,
                                 "start_timeout_s": s.start_timeout_s}  # fmt: skip
    if load.stress is not None:
        context["stress"] = load.stress
    from rxverify.load.slo import drift

    context["drift"] = {k: (round(v, 4) if v is not None else None) for k, v in drift(rec).items()}
    data = summary(rec, verdicts, context, offered)
    data["warmup"]["seconds"] = s.warmup_s  # sent, not judged: the SLOs and figures are of what came after
    folder = load.evidence.folder if load.evidence else s.reports
    out = folder / "load"
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / f"{s.profile}-summary.json"
    summary_path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    title = f"{s.profile} on {data['target']} ({s.platform}, {s.arrival} model, scale {s.scale:g}): latency per second"
    chart = latency_chart(rec, title, load.stress)
    (out / f"{s.profile}-latency.svg").write_text(chart, encoding="utf-8")
    (out / f"{s.profile}-report.html").write_text(html_page(data, chart), encoding="utf-8")
    params = {"profile": s.profile, "platform": s.platform, "target": str(data["target"]), "arrival": s.arrival,
              "scale": f"{s.scale:g}"}  # fmt: skip
    figs = {"overall": data["overall"], "iterations": data["iterations"], "generator": data["generator"]}
    results = load.evidence.results if load.evidence else s.reports / "allure-results"
    write_allure(results, verdicts, chart, figs, params, load.started_ms, int(time.time() * 1000))
    _print(data, verdicts, summary_path)
    exceptions = len(environment.runner.exceptions) if environment.runner else 0
    if exceptions:
        print(f"rxverify: {exceptions} task errors (see Locust's error report): the run fails", file=sys.stderr)
    if interrupted:
        print("rxverify: the run was interrupted before its profile completed: it fails", file=sys.stderr)
    if load.evidence is not None:  # the manifest ends once the egress audit has written the run record
        stopped = "SIGTERM" if load.interrupted else "stopped before the profile's end" if interrupted else None
        load.ending = (
            INTERRUPTED if interrupted else COMPLETE,
            {"summary": str(summary_path.relative_to(load.evidence.folder)), "interruption": stopped,
             "taskErrors": exceptions},
        )  # fmt: skip
    return 0 if data["passed"] and not exceptions and not interrupted else 1


def _print(data: dict[str, Any], verdicts: list[Verdict], path: Path) -> None:
    overall = data["overall"]["latency_from_send"]
    intended = data["overall"]["latency_from_intended_start"]
    its = data["iterations"]
    lines = [
        f"rxverify load: {data['profile']} on {data['target']} ({data['platform']}, {data['arrival']} model, scale "
        f"{data['scale']:g}): {data['requests']} requests in {data['duration_s']:.1f} s ({data['rate_per_s']} /s), "
        f"{data['failures']} failed, {its['dropped']} of {its['scheduled']} iterations dropped",
        f"  latency from intended start (ms; percentiles within 0.5 %): p50 {intended.get('p50_ms')}, "
        f"p95 {intended.get('p95_ms')}, p99 {intended.get('p99_ms')}, max {intended.get('max_ms')}",
        f"  latency from send (ms; percentiles within 0.5 %): p50 {overall.get('p50_ms')}, "
        f"p95 {overall.get('p95_ms')}, p99 {overall.get('p99_ms')}, max {overall.get('max_ms')}",
    ]
    if data.get("warmup", {}).get("seconds"):
        lines.append(f"  warm-up: the first {data['warmup']['seconds']:g} s sent "
                     f"{data['warmup']['requests_not_judged']} requests, not judged (--warm-up)")
    if its["scheduled"]:
        wait = its["start_wait"]
        lines.append(f"  iterations: {its['started']} started (wait for an idle VU p95 {wait.get('p95_ms')} ms, "
                     f"max {wait.get('max_ms')} ms), {its['dropped']} dropped after the start timeout, "
                     f"{its['not_started_at_end']} still waiting at the end")  # fmt: skip
    gen = data["generator"]
    lines.append(f"  generator: {gen['cpu_s']} CPU s, {gen['requests_per_cpu_s']} requests per CPU second; "
                 f"guard and ledger {gen['guard_s']} s ({(gen['guard_share'] or 0) * 100:.1f} % of it)")  # fmt: skip
    if data.get("stress"):
        lines.append(f"  stress: {data['stress']['verdict']}")
    lines += [f"  {v.line}" for v in verdicts]
    lines.append(f"rxverify load: {'PASSED' if data['passed'] else 'FAILED'} (SLO thresholds are assumptions); "
                 f"summary {path}")  # fmt: skip
    print("\n".join(lines), file=sys.stderr, flush=True)


def _html(environment: Any) -> None:
    """Locust writes its HTML report only after a normal end: write it after an interruption too."""
    options = environment.parsed_options
    if not getattr(options, "html_file", None):
        return
    from locust.html import get_html_report

    path = Path(options.html_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(get_html_report(environment, show_download_link=False), encoding="utf-8")


# ---- the virtual users ----


class Caller(GuardedUser):
    """A caller of the prescription services: ticket, patients, think time or arrival schedule."""

    abstract = True
    caller = ""  # the caller's key in the load model
    role = ""  # ticket role: prescriber or pharmacy

    def __init__(self, environment: Any) -> None:
        load = active()
        self._actor = random.randrange(1 << 16)
        run = load.run
        self.secure = run is not None and run.secure
        if run is not None and run.secure:  # this VU's connections present its actor's certificate (17.1)
            self.ssl_context_factory = run.ssl_context_factory(run.callers.caller(self.role, self._actor))
        super().__init__(environment)
        self.load = load
        self.work = load.interface
        self.context_id = str(uuid.uuid4())  # x-context-id: one session per VU
        self._intended: float | None = None  # open model: the current iteration's scheduled start (epoch)
        self._ticket = ""
        self._ticket_at = 0.0

    def auth(self) -> str:
        """The Authorization header of this VU's test actor (re-minted before it expires; under 17.1 its
        access token, which the run's token client holds and refreshes)."""
        if self.secure:
            run = self.load.run
            assert run is not None
            return run.callers.bearer(self.role, self._actor)
        now = time.monotonic()
        if not self._ticket or now - self._ticket_at > TICKET_REFRESH_S:
            run = self.load.run
            assert run is not None
            self._ticket = run.auth_headers(self.role, self._actor)["Authorization"]
            self._ticket_at = now
        return self._ticket

    def security_header(self) -> Any:
        """The wsse:Security header entry of this VU's test actor (17.1: its assertion, renewed by the run)."""
        run = self.load.run
        assert run is not None
        return run.callers.security_header(self.role, self._actor)

    def actor(self) -> dict[str, Any]:
        """This VU's test actor (a prescriber or a pharmacy of contracts/testdata/test-actors.json)."""
        run = self.load.run
        assert run is not None
        actors = run.actors.pharmacies if self.role == "pharmacy" else run.actors.prescribers
        return actors[self._actor % len(actors)]

    def patient(self) -> str:
        """A seeded test patient."""
        return random.choice(self.load.patients)

    def context(self) -> dict[str, Any]:
        """Request context (Locust asks at each send): in the open model, how late the send is on its intended time.

        The intended send time is the iteration's scheduled start (a task plans no think time between
        its requests), so the wait for an idle VU and the time earlier requests of the iteration took count.
        """
        schedule = self.load.schedule
        if schedule is None or self._intended is None:
            return {}
        return {"rx_delay_ms": max(0.0, schedule.now() - self._intended) * 1000.0}

    def on_start(self) -> None:
        """In the open model, wait for the first iteration."""
        if self.load.schedule is not None:
            self._await_iteration()

    def wait_time(self) -> float:
        """Closed model: the caller's think time (exponential, mean from the model); open: the next iteration."""
        if self.load.schedule is not None:
            self._await_iteration()
            return 0.0
        mean = self.load.model.think_times[self.caller] * self.load.settings.think_scale
        return random.expovariate(1.0 / mean) if mean > 0 else 0.0

    def _await_iteration(self) -> None:
        schedule = self.load.schedule
        assert schedule is not None
        self._intended = None  # between iterations this VU sends nothing
        self._intended = schedule.next_iteration(self.caller)
