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
        outcome = execute(plan, run, args.platform, contracts, reports, embedded=target.is_local)
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


def _loadmodel(args: argparse.Namespace) -> int:
    from rxverify.loadmodel import describe, load_model

    if args.scale <= 0:
        raise UserError(f"--scale must be a positive number, got {args.scale:g}")
    path = Path(args.model)
    for line in describe(load_model(path), args.scale, path):
        print(line)
    return 0


def _report(args: argparse.Namespace) -> int:
    from rxverify.report.generate import criteria_release, generate_report
    from rxverify.session import registry_for
    from rxverify.targets import resolve_target

    contracts = contracts_dir(args.contracts)
    reports = Path(args.reports or reports_dir())
    target = resolve_target(args.target, Path(args.targets or contracts / "targets.toml"))
    outcome = generate_report(
        Path(args.results) if args.results else None,
        Path(args.output) if args.output else reports / "allure-report",
        reports,
        registry_for(target, contracts),
        Path(args.tools) if args.tools else Path.cwd(),
        release=criteria_release(contracts / "release-criteria.toml"),
        probe=not args.no_probe,
    )
    if outcome.findings:
        for finding in outcome.findings:
            print(f"rxverify: safety scan: {finding}", file=sys.stderr)
        print("rxverify: no report was published: redact what the scan names and run again", file=sys.stderr)
        return 1
    return 0


def _gate(args: argparse.Namespace) -> int:
    from datetime import date

    from rxverify.gate.criteria import load_criteria
    from rxverify.gate.evaluate import evaluate
    from rxverify.gate.render import print_verdict, write_outputs

    reports = Path(args.reports or reports_dir())
    for stale in (reports / "gate.json", reports / "gate.html"):
        stale.unlink(missing_ok=True)  # an earlier verdict must not outlive bad input
    criteria_path = Path(args.criteria) if args.criteria else contracts_dir(args.contracts) / "release-criteria.toml"
    criteria = load_criteria(criteria_path)
    try:
        today = date.fromisoformat(args.today) if args.today else None
    except ValueError:
        raise UserError(f"--today {args.today!r} is not an ISO 8601 date") from None
    verdict = evaluate(reports, criteria, today, release_run=args.release_run)
    print_verdict(verdict, reports)
    json_path, html_path = write_outputs(verdict, reports)
    print(f"written: {json_path}, {html_path}")
    return 0 if verdict.go else 1


def _fhir_validate(args: argparse.Namespace) -> int:
    from rxverify.fhir.cli import validate_files

    return validate_files(args.files, args.profile, args.package)


def _power(args: argparse.Namespace) -> int:
    from rxverify.paths import reports_dir
    from rxverify.power import catalogue, run_matrix, table, write_report

    contracts_dir(args.contracts)
    faulted, clean = run_matrix(Path(args.matrix), args.fault or None, args.workers, args.seed)
    print(table(faulted, clean, catalogue()))
    print(f"written: {write_report(reports_dir(args.reports), faulted, clean)}")
    ok = all(o.caught for o in faulted) and all(o.exit_code == 0 for o in clean)
    return 0 if ok else 1


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

    report = sub.add_parser("report", help="the Allure HTML report of the release run's results (one file)")
    report.add_argument("--reports", help="reports folder (default ./reports)")
    report.add_argument("--results", help="one Allure results folder instead of the release run's (default: its runs)")
    report.add_argument("--output", help="report folder (default <reports>/allure-report)")
    report.add_argument("--tools", help="folder with package-lock.json for the Allure command line (default .)")
    report.add_argument("--target", default="local", help="target whose test-patient registry the scan uses")
    report.add_argument("--targets", help="targets file (default contracts/targets.toml)")
    report.add_argument("--no-probe", action="store_true", help="take platform versions from the run records only")
    report.set_defaults(func=_report)

    gate = sub.add_parser("gate", help="apply contracts/release-criteria.toml: GO (exit 0) or NO-GO (exit 1)")
    gate.add_argument("--reports", help="reports folder (default ./reports)")
    gate.add_argument(
        "--release-run", help="the release run to judge (default $RXVERIFY_RELEASE_RUN, else <reports>/release.json)"
    )
    gate.add_argument("--criteria", help="release criteria (default contracts/release-criteria.toml)")
    gate.add_argument("--today", help="the date known issues expire against (default today)")
    gate.set_defaults(func=_gate)

    loadmodel = sub.add_parser(
        "loadmodel", help="print the national peak-hour rates per caller and operation and the users they need"
    )
    loadmodel.add_argument("--model", default="loadtests/model.toml", help="load model (default loadtests/model.toml)")
    loadmodel.add_argument("--scale", type=float, default=1.0, help="scale factor of the national peak (default 1)")
    loadmodel.set_defaults(func=_loadmodel)

    fhir = sub.add_parser("fhir", help="FHIR profile validation, offline, from the conformance resources")
    fhir_sub = fhir.add_subparsers(dest="fhir_command", required=True)
    fhir_validate = fhir_sub.add_parser("validate", help="validate resource files (exit 1 when any has an error)")
    fhir_validate.add_argument("files", nargs="+", metavar="FILE", help="FHIR resources as JSON")
    fhir_validate.add_argument("--profile", help="validate against this profile (canonical URL)")
    fhir_validate.add_argument("--package", help="package folder or .tgz (default contracts/fhir)")
    fhir_validate.set_defaults(func=_fhir_validate)
    power = sub.add_parser("power", help="run the suite against every seeded fault: caught or missed, and the score")
    power.add_argument("--matrix", default="tests/power/matrix.toml", help="the power matrix")
    power.add_argument("--fault", action="append", default=[], metavar="NAME", help="only this fault (repeatable)")
    power.add_argument("--seed", type=int, default=None, help="seed of every run (default: the matrix's)")
    power.add_argument("--workers", type=int, default=2, help="runs at a time (default 2: the machine's cores)")
    power.add_argument("--reports", default=None, help="reports folder for power.json (default ./reports)")
    power.set_defaults(func=_power)
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
