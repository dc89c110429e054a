"""The `rxverify` command."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from rxverify.errors import UserError
from rxverify.paths import contracts_dir, reports_dir


def _serve(args: argparse.Namespace) -> int:
    from rxverify.local import local_platforms

    contracts_dir(args.contracts)
    platforms = ("old", "new") if args.platform == "both" else (args.platform,)
    data_dir = args.data_dir.resolve() if args.data_dir else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with local_platforms(
        data_dir, platforms, tuple(args.fault), {"old": args.port_old, "new": args.port_new}
    ) as running:
        key_file = running.data_dir / "ticket.key"
        key_file.write_bytes(running.key)
        key_file.chmod(0o600)
        if running.old:
            print(f"old  {running.old.base_url}  (legacy interface: {running.old.base_url}/legacy)")
        if running.new:
            base = running.new.base_url
            print(f"new  {base}  (legacy interface: {base}/legacy, FHIR: {base}/fhir)")
        print(f"ticket key: {key_file}")
        options = []
        if running.old:
            options.append(f"--old-url {running.old.base_url}")
        if running.new:
            options.append(f"--new-url {running.new.base_url}")
        print(
            f"run the contract suite against them: tox -e contract -- {' '.join(options)} --ticket-key-file {key_file}"
        )
        print("Ctrl-C stops both.", flush=True)
        try:
            while not stop.wait(0.5):
                for p in (running.old, running.new):
                    if p and p.process.poll() is not None:
                        raise UserError(
                            f"the {p.platform} platform stopped: {p.stderr_tail[-1] if p.stderr_tail else 'no output'}"
                        )
        except KeyboardInterrupt:
            pass
    return 0


def _targets(args: argparse.Namespace) -> int:
    from rxverify.targets import load_targets

    path = args.targets or contracts_dir(args.contracts) / "targets.toml"
    for name, target in load_targets(Path(path)).items():
        urls = ", ".join(f"{p}: {e.legacy or ''} {e.fhir or ''}".strip() for p, e in target.platforms.items())
        print(f"{name}\t{target.environment_class}\t{target.description}\t{urls or 'started on loopback for the run'}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from rxverify.operations import load_operations
    from rxverify.plans import load_plan, plan_path
    from rxverify.session import open_run, registry_for
    from rxverify.targets import resolve_target
    from rxverify.tickets import load_actors
    from rxverify.verify import describe, execute

    contracts = contracts_dir(args.contracts)
    target = resolve_target(
        args.target, Path(args.targets or contracts / "targets.toml"), args.old_url, args.new_url, args.fhir_url
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
    with open_run(target, contracts, ticket_key_file=key_file, platforms=(args.platform,)) as run:
        outcome = execute(plan, run, args.platform, contracts, reports)
    return 0 if outcome.passed else 1


def _writes(n: int) -> str:
    return f"{n} write" + "s" * (n != 1)


def _ledger(args: argparse.Namespace) -> int:
    from rxverify.identity import mask
    from rxverify.ledger import UNKNOWN, LedgerRecord, read_ledger

    directory = Path(args.reports or reports_dir()) / "ledger"
    records = read_ledger(directory, since=args.since, patient=args.patient)
    scope = f" since {args.since}" if args.since else ""
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
            print(f"  {r.time}  {r.operation or '?'}  {r.method} {r.path}  {status} {r.outcome}  {ids}".rstrip())
    unknown = sum(r.outcome == UNKNOWN for r in records)
    if unknown:
        print(f"{_writes(unknown)} without a recorded outcome ({UNKNOWN}): check on the platform before rollback")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rxverify", description="Verification of the prescription-platform migration."
    )
    parser.add_argument("--contracts", help="contracts folder (default ./contracts)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the embedded reference platforms on loopback and print their addresses")
    serve.add_argument("--platform", choices=("old", "new", "both"), default="both")
    serve.add_argument("--data-dir", type=Path, help="run directory for the stores (kept across restarts)")
    serve.add_argument("--fault", action="append", default=[], metavar="NAME", help="switch a seeded fault on")
    serve.add_argument("--port-old", type=int, default=0)
    serve.add_argument("--port-new", type=int, default=0)
    serve.set_defaults(func=_serve)

    targets = sub.add_parser("targets", help="list the targets of targets.toml")
    targets.add_argument("--targets", help="targets file (default contracts/targets.toml)")
    targets.set_defaults(func=_targets)

    verify = sub.add_parser("verify", help="run a verification plan's steps against a target (or --dry-run)")
    verify.add_argument("--target", default="local", help="target name from contracts/targets.toml (default: local)")
    verify.add_argument("--targets", help="targets file (default contracts/targets.toml)")
    verify.add_argument("--plan", required=True, help="plan file, or a name in contracts/verification/")
    verify.add_argument("--platform", choices=("old", "new"), default="new", help="platform to verify (default new)")
    verify.add_argument("--dry-run", action="store_true", help="print the plan and what it would send; send nothing")
    verify.add_argument("--production", action="store_true", help="confirm a real run on a production-class target")
    verify.add_argument("--reports", help="reports folder (default ./reports)")
    verify.add_argument("--old-url", help="base URL of an already running old platform")
    verify.add_argument("--new-url", help="base URL of an already running new platform")
    verify.add_argument("--fhir-url", help="base URL of the new platform's FHIR API, if not <new-url>/fhir")
    verify.add_argument("--ticket-key-file", help="ticket key of running local platforms (rxverify serve)")
    verify.set_defaults(func=_verify)

    ledger = sub.add_parser("ledger", help="print the writes in the ledger per test patient (rollback reconciliation)")
    ledger.add_argument("--since", help="only writes from this ISO 8601 time on")
    ledger.add_argument("--patient", help="only writes about this test patient")
    ledger.add_argument("--reports", help="reports folder (default ./reports)")
    ledger.set_defaults(func=_ledger)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; bad input is one line and exit code 2."""
    args = _parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except UserError as exc:
        print(f"rxverify: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
