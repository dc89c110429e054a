"""The `rxverify` command."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from rxverify.errors import UserError
from rxverify.paths import contracts_dir, reports_dir
from rxverify.target.processes import Terminated, stop_on_signals
from rxverify.values import (
    argtype,
    instant,
    iso_date,
    personal_number,
    port,
    positive_int,
    positive_number,
)

if TYPE_CHECKING:
    from rxverify.target.local import LocalPlatforms

REGISTRY_OUTPUT = Path("testdata") / "skatteverket-testpersonnummer.json"  # in the contracts folder


def _serve(args: argparse.Namespace) -> int:
    from rxverify.target.local import SECONDARY, check_faults
    from rxverify.target.run import open_run
    from rxverify.target.targets import Target

    contracts = contracts_dir(args.contracts)
    check_faults(args.fault)
    # both: everything the full contract suite needs, the differential's second old instance included
    platforms = ("old", SECONDARY, "new") if args.platform == "both" else (args.platform,)
    data_dir = args.data_dir.resolve() if args.data_dir else None
    if data_dir is not None:
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--data-dir {args.data_dir}: not usable as the stores' folder ({exc.strerror})") from None
    local = Target("local", "local", "embedded reference platforms")
    ports = {"old": args.port_old, "new": args.port_new, SECONDARY: args.port_old_secondary}
    try:
        faults = tuple(args.fault)
        with open_run(
            local, contracts, suite="serve", faults=faults, platforms=platforms, data_dir=data_dir, ports=ports,
            tls=not args.plain_http,
        ) as run:
            running = run.local
            assert running is not None and running.key_file is not None
            for p in (running.old, running.secondary, running.new):
                if p is not None:
                    fhir = f", FHIR: {p.base_url}/fhir" if p is running.new else ""
                    name = SECONDARY if p is running.secondary else p.platform
                    print(f"{name:<14} {p.base_url}  (legacy interface: {p.base_url}/legacy{fhir})")
                    for entry, url in p.entries.items():
                        if url != p.base_url:
                            print(f"{'':<14} {url}  (entry point {entry})")
            print(f"ticket key: {running.key_file} (0600; removed when serve stops)")
            if running.trust is not None:
                print(f"trust domain (mutual TLS, SAMBI issuer): {running.trust.root} (0700; removed when serve stops)")
            if data_dir is not None:
                print(f"stores: {data_dir} (kept)")
            print(f"run the contract suite against them:\n  {suite_command(running, args.platform)}")
            print("Ctrl-C or SIGTERM stops them.", flush=True)
            _serve_until_stopped(running)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the platforms are stopped, the key removed
        pass
    return 0


def suite_command(running: LocalPlatforms, platform: str) -> str:
    """The complete command that runs the contract suite against the platforms `serve` started."""
    options = []
    if running.old:
        options.append(f"--old-url {running.old.base_url}")
    if running.secondary:
        options.append(f"--old-secondary-url {running.secondary.base_url}")
    if running.new:
        options.append(f"--new-url {running.new.base_url}")
    options.append(f"--ticket-key-file {running.key_file}")
    if running.trust is not None:
        options.append(f"--trust-dir {running.trust.root}")
    if platform != "both":
        options.append(f"--platform {platform}")
    return f"tox -e contract -- {' '.join(options)}"


def _serve_until_stopped(running: LocalPlatforms) -> None:
    """Wait until interrupted; a platform that stops on its own ends `serve` with one line."""
    while True:
        for p in (running.old, running.secondary, running.new):
            if p and p.process.poll() is not None:
                raise UserError(
                    f"the {p.platform} platform stopped: {p.stderr_tail[-1] if p.stderr_tail else 'no output'}"
                )
        time.sleep(0.5)


def _targets(args: argparse.Namespace) -> int:
    from rxverify.target.targets import load_targets

    path = args.targets_file or contracts_dir(args.contracts) / "targets.toml"
    for name, target in load_targets(Path(path)).items():
        urls = ", ".join(f"{p}: {e.legacy or ''} {e.fhir or ''}".strip() for p, e in target.platforms.items())
        print(f"{name}\t{target.environment_class}\t{target.description}\t{urls or 'started on loopback for the run'}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from rxverify.operations import load_operations
    from rxverify.plans import load_plan, plan_path
    from rxverify.target.credentials import load_actors
    from rxverify.target.probe import require_reachable
    from rxverify.target.run import open_run, registry_for, require_tickets
    from rxverify.target.targets import resolve_target
    from rxverify.verify import describe, execute

    contracts = contracts_dir(args.contracts)
    target = resolve_target(
        args.target, Path(args.targets_file or contracts / "targets.toml"), args.old_url, args.new_url, args.fhir_url
    )
    production = target.environment_class == "production"
    # refused before anything else happens: nothing is sent to production without confirmation
    if production and not args.dry_run and not args.production:
        raise UserError(
            f"target {target.name!r} is class production: confirm a real verification run with --production "
            "(see what it sends with --dry-run); nothing was sent"
        )
    registry = registry_for(target, contracts)
    plan = load_plan(
        plan_path(args.plan, contracts),
        load_operations(contracts),
        registry,
        load_actors(contracts / "testdata" / "test-actors.json"),
    )
    if production and plan.target_class != "production":
        raise UserError(f"verification plan {plan.path} is for {plan.target_class} targets, not production ones")
    if not target.is_local and args.platform not in target.platforms:
        raise UserError(f"target {target.name!r} has no {args.platform} platform (--platform)")
    if args.dry_run:
        describe(plan, target, args.platform, contracts)
        return 0
    now = datetime.now(UTC)
    if production and not plan.in_window(now):
        raise UserError(
            f"{now.isoformat(timespec='seconds')} is outside the window of verification plan {plan.path} "
            f"({plan.window_start.isoformat()} to {plan.window_end.isoformat()}); nothing was sent"
        )
    reports = reports_dir(args.reports)
    key_file = Path(args.ticket_key_file) if args.ticket_key_file else None
    with open_run(
        target,
        contracts,
        suite="verification",
        reports=reports,
        plan=plan,
        ticket_key_file=key_file,
        platforms=(args.platform,),
        tls=target.is_local and not args.plain_http,
        trust_dir=args.trust_dir,
    ) as run:
        require_tickets(run.target, run.tickets, tuple(sorted({p.role for p in plan.participants.values()})))
        require_reachable(run, (args.platform,))  # before the first step; a production target's first step is its probe
        outcome = execute(plan, run, args.platform, contracts, reports, embedded=target.is_local)
    return 0 if outcome.passed else 1


def _writes(n: int) -> str:
    return f"{n} write" + "s" * (n != 1)


def _ledger(args: argparse.Namespace) -> int:
    from rxverify.safety.identity import mask
    from rxverify.safety.ledger import UNKNOWN, LedgerRecord, read_ledger, run_ids

    reports = Path(args.reports or os.environ.get("RXVERIFY_REPORTS") or "reports")
    if not reports.is_dir():
        raise UserError(f"no reports folder {reports} (--reports): the ledger is its ledger/ folder")
    directory = reports / "ledger"
    if args.run is not None and args.run not in (known := run_ids(directory)):
        shown = ", ".join(known[-5:]) or "none"
        raise UserError(f"no writes of run {args.run!r} in the ledger {directory} (latest runs: {shown})")
    problems: list[str] = []
    records = read_ledger(directory, since=args.since, patient=args.patient, run=args.run, problems=problems)
    scope = f" of run {args.run}" if args.run else ""
    scope += f" since {args.since.isoformat()}" if args.since else ""
    scope += f" about {mask(args.patient)}" if args.patient else ""
    print(f"ledger {directory}: {_writes(len(records))}{scope}")
    groups: dict[str, list[LedgerRecord]] = {}
    for record in records:
        for patient in record.patients or [""]:
            groups.setdefault(patient, []).append(record)
    for patient, group in sorted(groups.items(), key=lambda item: (item[0] == "", item[0])):
        print(
            f"patient {mask(patient)}: {_writes(len(group))}"
            if patient
            else f"no test patient named: {_writes(len(group))}"
        )
        for r in group:
            ids = " ".join(
                f"{name}={','.join(value) if isinstance(value, list) else value}" for name, value in r.ids.items()
            )
            status = r.status if r.status is not None else "-"
            made = f"{r.run} ({r.run_kind or 'unknown kind'})"
            line = f"  {r.time}  {made}  {r.operation or '?'}  {r.method} {r.path}  {status} {r.outcome}  {ids}"
            print(line.rstrip())
    unknown = sum(r.outcome == UNKNOWN for r in records)
    if unknown:
        print(f"{_writes(unknown)} without a recorded outcome ({UNKNOWN}): check on the platform before rollback")
    for problem in problems:
        print(f"rxverify: ledger: {problem}", file=sys.stderr)
    if problems:
        print(f"rxverify: ledger: {len(problems)} entries could not be read: the writes they held are not shown above",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _loadmodel(args: argparse.Namespace) -> int:
    from rxverify.loadmodel import describe, load_model

    path = Path(args.model)
    for line in describe(load_model(path), args.scale, path):
        print(line)
    return 0


def _report(args: argparse.Namespace) -> int:
    from rxverify.report.generate import criteria_release, generate_report
    from rxverify.target.run import open_run
    from rxverify.target.targets import resolve_target

    contracts = contracts_dir(args.contracts)
    reports = Path(args.reports or reports_dir())
    target = resolve_target(args.target, Path(args.targets_file or contracts / "targets.toml"))
    with open_run(target, contracts, suite="report", start_local=False) as run:
        # the platforms of a local target are gone with their runs: versions come from the run records
        probe = not args.no_probe and not target.is_local
        outcome = generate_report(
            Path(args.results) if args.results else None,
            Path(args.output) if args.output else reports / "allure-report",
            reports,
            run.registry,
            Path(args.tools) if args.tools else Path.cwd(),
            release=criteria_release(contracts / "release-criteria.toml"),
            session=run.session() if probe else None,
        )
    if outcome.findings:
        for finding in outcome.findings:
            print(f"rxverify: safety scan: {finding}", file=sys.stderr)
        print("rxverify: no report was published: redact what the scan names and run again", file=sys.stderr)
        return 1
    return 0


def _gate(args: argparse.Namespace) -> int:
    from rxverify.gate.criteria import load_criteria
    from rxverify.gate.evaluate import evaluate
    from rxverify.gate.render import print_verdict, write_outputs

    reports = Path(args.reports or reports_dir())
    # the options first: a mistyped one leaves the earlier verdict as it was
    criteria_path = Path(args.criteria) if args.criteria else contracts_dir(args.contracts) / "release-criteria.toml"
    criteria = load_criteria(criteria_path)
    for stale in (reports / "gate.json", reports / "gate.html"):
        stale.unlink(missing_ok=True)  # the verdict is now about these reports: an earlier one must not outlive them
    verdict = evaluate(reports, criteria, args.today, release_run=args.release_run)
    print_verdict(verdict, reports)
    json_path, html_path = write_outputs(verdict, reports)
    print(f"written: {json_path}, {html_path}")
    return 0 if verdict.go else 1


def _fhir_snapshot(args: argparse.Namespace) -> int:
    from rxverify.fhir.cli import snapshot_folder

    return snapshot_folder(args.folder, args.check)


def _fhir_validate(args: argparse.Namespace) -> int:
    from rxverify.fhir.cli import validate_files

    return validate_files(args.files, args.profile, args.package)


def _registry_import(args: argparse.Namespace) -> int:
    from rxverify.safety.registry_import import import_registry

    output = Path(args.output) if args.output else contracts_dir(args.contracts) / REGISTRY_OUTPUT
    result = import_registry(Path(args.file), output)
    print(f"imported {len(result.patients)} test personal identity numbers from {args.file} into {output}")
    if result.duplicates:
        print(f"  {result.duplicates} rows repeated a number already imported")
    print(f"  name it as the registry of a test or production target in targets.toml: registry = \"{output}\"")
    if result.refused:
        print(f"rxverify: registry import: {result.refused_line()}", file=sys.stderr)
    return 0


def _power(args: argparse.Namespace) -> int:
    from rxverify.power import parse_seeds, run_power

    contracts_dir(args.contracts)
    seeds = parse_seeds(args.seeds, args.seed)
    return run_power(
        Path(args.matrix), args.fault or None, seeds, args.workers, reports_dir(args.reports),
        lambda line: print(line, flush=True), Path(args.corpus) if args.corpus else None,
    )  # fmt: skip


def _contracts_openapi(args: argparse.Namespace) -> int:
    from rxverify.contracts.openapi import write_or_check

    contracts = contracts_dir(args.contracts)
    ok, path = write_or_check(contracts, Path(args.output) if args.output else None, check=args.check)
    if args.check:
        print(f"{path}: {'as the contracts give it' if ok else 'stale: run rxverify contracts openapi'}")
        return 0 if ok else 1
    print(f"written: {path}")
    return 0


def _lanes(text: str) -> tuple[str, ...]:
    lanes = tuple(x.strip() for x in text.split(",") if x.strip())
    if not lanes or set(lanes) - {"legacy", "fhir"}:
        raise UserError(f"--lanes {text!r}: legacy, fhir or legacy,fhir")
    return lanes


def _reconcile(args: argparse.Namespace) -> int:
    from rxverify import reconcile

    contracts = contracts_dir(args.contracts)
    lanes = _lanes(args.lanes) if args.reconcile_command != "snapshot" else ()  # refused before anything starts
    reports = reports_dir(args.reports)
    if args.reconcile_command == "local":
        faults = tuple(args.fault)
        rec = reconcile.run_local(contracts, reports, args.seed, faults, lanes,
                                  Path(args.data_dir) if args.data_dir else None, patients=args.patients)
        return 1 if rec.differences else 0
    from rxverify.operations import load_operations
    from rxverify.plans import load_plan, plan_path
    from rxverify.target.credentials import load_actors
    from rxverify.target.run import open_run, registry_for
    from rxverify.target.targets import resolve_target

    target = resolve_target(
        args.target, Path(args.targets or contracts / "targets.toml"), args.old_url, args.new_url, args.fhir_url
    )
    if target.is_local:
        raise UserError("the local target's platforms start empty: run `rxverify reconcile local` for the whole round, "
                        "or give running platforms (--old-url/--new-url with --ticket-key-file)")
    plan = None
    if args.plan:
        plan = load_plan(plan_path(args.plan, contracts), load_operations(contracts), registry_for(target, contracts),
                         load_actors(contracts / "testdata" / "test-actors.json"))
    key_file = Path(args.ticket_key_file) if args.ticket_key_file else None
    opened = {"suite": "reconcile", "reports": reports, "plan": plan, "ticket_key_file": key_file,
              "trust_dir": args.trust_dir}
    if args.reconcile_command == "snapshot":
        with open_run(target, contracts, **opened) as run:
            reconcile.take_snapshot(run, contracts, Path(args.out), args.platform)
        return 0
    baseline = reconcile.read_snapshot(Path(args.baseline))
    with open_run(target, contracts, **opened) as run:
        rec = reconcile.compare_with(run, contracts, baseline, args.baseline, reports, args.platform, lanes)
    return 1 if rec.differences else 0


def _rehearse(args: argparse.Namespace) -> int:
    from rxverify.rehearse import run_rehearsal

    contracts = contracts_dir(args.contracts)
    return run_rehearsal(args.plan, contracts, reports_dir(args.reports), tuple(args.fault), args.seed,
                         lambda line: print(line, flush=True), args.patients)


def _watch(args: argparse.Namespace) -> int:
    from datetime import datetime

    from rxverify.operations import load_operations
    from rxverify.plans import load_plan, plan_path
    from rxverify.target.credentials import load_actors
    from rxverify.target.run import open_run, registry_for
    from rxverify.target.targets import resolve_target
    from rxverify.watch import parse_every, watch, watch_plan

    contracts = contracts_dir(args.contracts)
    target = resolve_target(
        args.target, Path(args.targets or contracts / "targets.toml"), args.old_url, args.new_url, args.fhir_url
    )
    actors = load_actors(contracts / "testdata" / "test-actors.json")
    registry = registry_for(target, contracts)
    full = load_plan(plan_path(args.plan, contracts), load_operations(contracts), registry, actors)
    plan = watch_plan(full, contracts)
    try:
        until = datetime.fromisoformat(args.until) if args.until else None
    except ValueError:
        raise UserError(f"--until {args.until!r} is not an ISO 8601 time with its offset") from None
    if until is not None and until.tzinfo is None:
        raise UserError(f"--until {args.until!r}: give the offset (e.g. 2021-12-05T06:00:00+01:00)")
    every = parse_every(args.every)
    reports = reports_dir(args.reports)
    key_file = Path(args.ticket_key_file) if args.ticket_key_file else None
    with open_run(target, contracts, suite="verification", reports=reports, plan=plan, ticket_key_file=key_file,
                  platforms=(args.platform,), faults=tuple(args.fault), tls=target.is_local and not args.plain_http,
                  trust_dir=args.trust_dir) as run:
        return watch(plan, run, args.platform, contracts, reports, every, args.rounds, until, args.max_latency_ms,
                     lambda line: print(line, flush=True))


def _running_platforms(command: argparse.ArgumentParser) -> None:
    """The options naming platforms that are already running (instead of a target's)."""
    command.add_argument("--old-url", help="base URL of an already running old platform")
    command.add_argument("--new-url", help="base URL of an already running new platform")
    command.add_argument("--fhir-url", help="base URL of the new platform's FHIR API, if not <new-url>/fhir")
    command.add_argument("--ticket-key-file", help="ticket key of running local platforms (rxverify serve)")
    command.add_argument("--trust-dir", type=Path, help="local trust domain of running local platforms on mutual TLS "
                         "(rxverify serve prints it)")


def _plain_http(command: argparse.ArgumentParser) -> None:
    command.add_argument("--plain-http", action="store_true", help="start the local platforms on plain HTTP with JWT "
                         "tickets (default: Säker åtkomst 17.1: mutual TLS, SAMBI assertions, bound access tokens)")


def _reconcile_parser(sub: argparse._SubParsersAction) -> None:
    reconcile = sub.add_parser(
        "reconcile", help="before the migration snapshot what old serves every test patient; after it compare new"
    )
    commands = reconcile.add_subparsers(dest="reconcile_command", required=True)
    snapshot = commands.add_parser("snapshot", help="read every test patient from the old platform (legacy reads)")
    snapshot.add_argument("--out", required=True, help="the snapshot file to write (JSON)")
    snapshot.add_argument("--platform", choices=("old", "new"), default="old", help="the platform read (default old)")
    compare = commands.add_parser("compare", help="read every patient of a snapshot from the new platform and compare")
    compare.add_argument("--baseline", required=True, help="the snapshot taken before the migration")
    compare.add_argument("--platform", choices=("old", "new"), default="new", help="the platform read (default new)")
    for command in (snapshot, compare):
        command.add_argument("--target", default="local", help="target name from contracts/targets.toml")
        command.add_argument("--targets", help="targets file (default contracts/targets.toml)")
        command.add_argument("--plan", help="verification plan (required on a production-class target)")
        _running_platforms(command)
    local = commands.add_parser(
        "local", help="the whole round on the embedded platforms: seed old, snapshot, migrate [--fault], compare"
    )
    local.add_argument("--seed", type=int, default=1, help="seed of the old platform's data (default 1)")
    local.add_argument("--fault", action="append", default=[], metavar="NAME",
                       help="a migration fault for the migration job (repeatable; python -m refplatform --list-faults)")
    local.add_argument("--data-dir", help="keep the stores here (an empty or new folder; default a temporary one)")
    local.add_argument("--patients", type=argtype(positive_int), metavar="N",
                       help="reconcile N test patients spread over the registry (every one is seeded and migrated)")
    for command in (compare, local):
        command.add_argument("--lanes", default="legacy,fhir", help="what of the new platform is read: legacy,fhir")
    for command in (snapshot, compare, local):
        command.add_argument("--reports", help="reports folder (default ./reports)")
    reconcile.set_defaults(func=_reconcile)


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line: `rxverify: serve: argument --port-old: ...`, exit 2."""

    def error(self, message: str) -> NoReturn:
        """Print one line naming the command and the problem; exit 2."""
        command = self.prog.removeprefix("rxverify").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"rxverify: {where}{message} (see {self.prog} --help)\n")


def _targets_file(parser: argparse.ArgumentParser) -> None:
    """`--targets-file`: one name in pytest, Locust and every subcommand (the old `--targets` kept, hidden)."""
    parser.add_argument("--targets-file", help="targets file (default contracts/targets.toml)")
    parser.add_argument("--targets", dest="targets_file", help=argparse.SUPPRESS)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rxverify", description="Verification of the prescription-platform migration.")
    parser.add_argument("--contracts", help="contracts folder (default ./contracts)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve", help="start the embedded reference platforms on loopback; print their addresses and the suite command"
    )
    serve.add_argument(
        "--platform", choices=("old", "new", "both"), default="both",
        help="both (default): old, its second instance and new, what the whole contract suite needs",
    )  # fmt: skip
    _plain_http(serve)
    serve.add_argument("--data-dir", type=Path, help="folder for the stores, kept across restarts (the key is not)")
    serve.add_argument("--fault", action="append", default=[], metavar="NAME", help="switch a seeded fault on")
    serve.add_argument("--port-old", type=argtype(port), default=0, help="port of old (default: a free one)")
    serve.add_argument("--port-new", type=argtype(port), default=0, help="port of new (default: a free one)")
    serve.add_argument(
        "--port-old-secondary", type=argtype(port), default=0, help="port of the second old instance (default: free)"
    )
    serve.set_defaults(func=_serve)

    targets = sub.add_parser("targets", help="list the targets of targets.toml")
    _targets_file(targets)
    targets.set_defaults(func=_targets)

    verify = sub.add_parser("verify", help="run a verification plan's steps against a target (or --dry-run)")
    verify.add_argument("--target", default="local", help="target name from contracts/targets.toml (default: local)")
    _targets_file(verify)
    verify.add_argument("--plan", required=True, help="plan file, or a name in contracts/verification/")
    verify.add_argument("--platform", choices=("old", "new"), default="new", help="platform to verify (default new)")
    verify.add_argument("--dry-run", action="store_true", help="print the plan and what it would send; send nothing")
    verify.add_argument("--production", action="store_true", help="confirm a real run on a production-class target")
    verify.add_argument("--reports", help="reports folder (default ./reports)")
    _running_platforms(verify)
    _plain_http(verify)
    verify.set_defaults(func=_verify)

    ledger = sub.add_parser("ledger", help="print the writes in the ledger per test patient (rollback reconciliation)")
    ledger.add_argument("--since", type=argtype(instant), help="only writes from this ISO 8601 time on")
    ledger.add_argument(
        "--patient", type=argtype(personal_number), help="only writes about this test patient (YYYYMMDD-NNNN)"
    )
    ledger.add_argument("--run", help="only the writes of this run id (as the ledger shows it)")
    ledger.add_argument("--reports", help="reports folder (default ./reports)")
    ledger.set_defaults(func=_ledger)

    report = sub.add_parser("report", help="the Allure HTML report of the release run's results (one file)")
    report.add_argument("--reports", help="reports folder (default ./reports)")
    report.add_argument("--results", help="one Allure results folder instead of the release run's (default: its runs)")
    report.add_argument("--output", help="report folder (default <reports>/allure-report)")
    report.add_argument("--tools", help="folder with package-lock.json for the Allure command line (default .)")
    report.add_argument("--target", default="local", help="target whose test-patient registry the scan uses")
    _targets_file(report)
    report.add_argument("--no-probe", action="store_true", help="take platform versions from the run records only")
    report.set_defaults(func=_report)

    gate = sub.add_parser("gate", help="apply contracts/release-criteria.toml: GO (exit 0) or NO-GO (exit 1)")
    gate.add_argument("--reports", help="reports folder (default ./reports)")
    gate.add_argument(
        "--release-run", help="the release run to judge (default $RXVERIFY_RELEASE_RUN, else <reports>/release.json)"
    )
    gate.add_argument("--criteria", help="release criteria (default contracts/release-criteria.toml)")
    gate.add_argument("--today", type=argtype(iso_date), help="the date known issues expire against (default today)")
    gate.set_defaults(func=_gate)

    loadmodel = sub.add_parser(
        "loadmodel", help="print the national peak-hour rates per caller and operation and the users they need"
    )
    loadmodel.add_argument("--model", default="loadtests/model.toml", help="load model (default loadtests/model.toml)")
    loadmodel.add_argument(
        "--scale", type=argtype(positive_number), default=1.0, help="scale factor of the national peak (default 1)"
    )
    loadmodel.set_defaults(func=_loadmodel)

    registry = sub.add_parser("registry", help="the test-patient registry: import Skatteverket's test numbers")
    registry_sub = registry.add_subparsers(dest="registry_command", required=True, metavar="COMMAND")
    registry_import = registry_sub.add_parser(
        "import", help="import Skatteverket's published test personal identity numbers (CSV or JSON) as a registry"
    )
    registry_import.add_argument("file", metavar="FILE", help="the published list (rows with a testpersonnummer field)")
    registry_import.add_argument(
        "--output", help=f"registry file to write (default contracts/{REGISTRY_OUTPUT}; replaced only when complete)"
    )
    registry_import.set_defaults(func=_registry_import)

    fhir = sub.add_parser("fhir", help="FHIR R4 validation, offline, against the R4 base and the conformance resources")
    fhir_sub = fhir.add_subparsers(dest="fhir_command", required=True, metavar="COMMAND")
    fhir_validate = fhir_sub.add_parser("validate", help="validate resource files (exit 1 when any has an error)")
    fhir_validate.add_argument("files", nargs="+", metavar="FILE", help="FHIR resources as JSON (a folder: its *.json)")
    fhir_validate.add_argument("--profile", help="validate against this profile (canonical URL)")
    fhir_validate.add_argument("--package", help="package folder or .tgz (default contracts/fhir)")
    fhir_validate.set_defaults(func=_fhir_validate)
    fhir_snapshot = fhir_sub.add_parser(
        "snapshot", help="regenerate the profiles' snapshots from their differentials and the R4 base"
    )
    fhir_snapshot.add_argument("--folder", help="folder of StructureDefinitions (default contracts/fhir)")
    fhir_snapshot.add_argument("--check", action="store_true", help="change nothing; exit 1 when a snapshot is stale")
    fhir_snapshot.set_defaults(func=_fhir_snapshot)
    contracts = sub.add_parser("contracts", help="files generated from the contracts")
    contracts_sub = contracts.add_subparsers(dest="contracts_command", required=True, metavar="COMMAND")
    openapi = contracts_sub.add_parser("openapi", help="the old interface's OpenAPI (legacy.yaml) from contracts/riv")
    openapi.add_argument("--check", action="store_true", help="exit 1 when the committed file is stale; write nothing")
    openapi.add_argument("--output", help="file to write (default contracts/openapi/legacy.yaml)")
    openapi.set_defaults(func=_contracts_openapi)
    power = sub.add_parser(
        "power", help="run the suite against every seeded fault over fresh seeds: caught k/K, false alarms, the score"
    )
    power.add_argument("--matrix", default="tests/power/matrix.toml", help="the power matrix")
    power.add_argument("--fault", action="append", default=[], metavar="NAME", help="only this fault (repeatable)")
    power.add_argument(
        "--seeds", type=argtype(positive_int), default=None, metavar="K", help="fresh seeds per run (default 2)"
    )
    power.add_argument(
        "--seed", action="append", default=[], metavar="S", help="run these seeds instead (repeatable or S1,S2,...)"
    )
    power.add_argument(
        "--workers", type=argtype(positive_int), default=2, help="runs at a time (default 2: the machine's cores)"
    )
    power.add_argument("--reports", default=None, help="reports folder for power.json (default ./reports)")
    power.add_argument("--corpus", default=None, help="also write the faulted runs' failure texts here (JSON, merged)")
    power.set_defaults(func=_power)
    _reconcile_parser(sub)
    rehearse = sub.add_parser(
        "rehearse", help="the service window on the embedded platforms: migrate, cut over, reconcile, verify, GO/NO-GO"
    )
    rehearse.add_argument("--plan", required=True, help="verification plan with decision points (release-21.0)")
    rehearse.add_argument("--fault", action="append", default=[], metavar="NAME",
                          help="a migration, platform or gateway fault: a NO-GO rehearsed (refplatform --list-faults)")
    rehearse.add_argument("--seed", type=int, default=1, help="seed of the old platform's data (default 1)")
    rehearse.add_argument("--patients", type=argtype(positive_int), default=None, metavar="N",
                          help="reconcile only the first N test patients (a short rehearsal; default every one)")
    rehearse.add_argument("--reports", help="reports folder (default ./reports)")
    rehearse.set_defaults(func=_rehearse)
    watching = sub.add_parser("watch", help="after a GO: the plan's read-only steps in rounds, exit 1 at a breach")
    watching.add_argument("--plan", required=True, help="verification plan with a [watch] section (release-21.0)")
    watching.add_argument("--target", default="local", help="target name from contracts/targets.toml (default local)")
    watching.add_argument("--targets", help="targets file (default contracts/targets.toml)")
    watching.add_argument("--platform", choices=("old", "new"), default="new", help="platform watched (default new)")
    watching.add_argument("--every", default="15m", help="time between rounds: 30s, 15m, 1h (default 15m)")
    watching.add_argument("--rounds", type=argtype(positive_int), help="stop after N rounds")
    watching.add_argument("--until", help="stop at this ISO 8601 time (with its offset)")
    watching.add_argument(
        "--max-latency-ms", type=argtype(positive_number), default=2000.0, help="a step slower than this is a breach"
    )
    watching.add_argument("--fault", action="append", default=[], metavar="NAME", help="local: a platform fault")
    watching.add_argument("--reports", help="reports folder (default ./reports)")
    _running_platforms(watching)
    _plain_http(watching)
    watching.set_defaults(func=_watch)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; bad input is one line and exit code 2; SIGTERM and Ctrl-C stop what it started."""
    args = _parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    restore = stop_on_signals()
    try:
        return func(args)
    except UserError as exc:
        print(f"rxverify: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        return 143  # 128 + SIGTERM, as the shell reports a process ended by it
    except KeyboardInterrupt:
        return 130
    finally:
        restore()
