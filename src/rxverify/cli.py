"""The `rxverify` command."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from rxverify.errors import UserError
from rxverify.paths import contracts_dir


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
