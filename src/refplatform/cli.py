"""Command line of the reference platforms: start one platform on a loopback port.

Prints `READY <platform> <base-url>` on standard output once it accepts connections. Bad
input (busy port, unknown fault, unreadable contract or key) is one line on standard error
and exit code 2.

The service window's tools are commands of their own (each with its --help):
  python -m refplatform seed --platform old --data-dir DIR       years of data in the old store
  python -m refplatform migrate --from OLD_DIR --to NEW_DIR      the vendor's migration job
  python -m refplatform gateway --upstream old=URL --upstream new=URL --route old   the callers' one address
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import signal
import socket
import sys
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

import uvicorn

from refplatform.common.config import PlatformConfig
from refplatform.common.faults import CATALOGUE, FaultSet, UnknownFault
from refplatform.common.operator import OperatorKeyError, read_operator_key

# The contracts folder of the checkout this runs from (an installed package has no copy of its own).
DEFAULT_CONTRACTS = Path("contracts")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
COMMANDS = {"seed": "refplatform.seed", "migrate": "refplatform.migration", "gateway": "refplatform.gateway"}


class StartError(Exception):
    """A start-up problem the user caused."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m refplatform", description=__doc__)
    # required unless --list-faults (checked in main)
    p.add_argument("--platform", choices=("old", "new"))
    p.add_argument("--data-dir", type=Path, help="run directory (SQLite store)")
    p.add_argument("--ticket-key-file", type=Path, help="file holding the ticket signing key")
    p.add_argument("--admin-key-file", type=Path,
                   help="file holding the operator key of /admin/window (old platform; without it no /admin)")
    p.add_argument("--contracts", type=Path, default=DEFAULT_CONTRACTS)
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--fault", action="append", default=[], metavar="NAME", help="switch a fault on (repeatable)")
    p.add_argument("--list-faults", action="store_true", help="print the fault catalogue and exit")
    p.add_argument("--audit-log", type=Path, help="write a digest of every request received to this file")
    return p


def _load_apps() -> None:
    # Importing the platform packages registers their faults in the catalogue.
    import refplatform.migration
    import refplatform.new.app
    import refplatform.old.app  # noqa: F401


def build_app(platform: str, config: PlatformConfig) -> Any:
    """The ASGI application of `platform`."""
    if platform == "old":
        from refplatform.old.app import create_app
    else:
        from refplatform.new.app import create_app
    return create_app(config)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on a loopback address (StartError for another address or a busy port)."""
    if host not in LOOPBACK:
        raise StartError(f"refusing to bind {host}: the reference platforms serve loopback only")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto is TCP, and
    # without it every response waits ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartError(f"port {port} on {host} is busy") from None
        raise StartError(f"cannot bind {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> int:
    """Start one platform (or run one of COMMANDS); return the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        command: Callable[[list[str]], int] = import_module(COMMANDS[argv[0]]).main
        return command(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.list_faults:
        missing = [f"--{n.replace('_', '-')}" for n in ("platform", "data_dir", "ticket_key_file")
                   if getattr(args, n) is None]
        if missing:
            parser.error(f"the following arguments are required: {', '.join(missing)}")
    try:
        _load_apps()
        if args.list_faults:
            for fault in sorted(CATALOGUE.values(), key=lambda f: f.name):
                print(f"{fault.name}\t{fault.platform}\t{fault.kind}\t{fault.description}")
            return 0
        try:
            key = args.ticket_key_file.read_bytes().strip()
        except OSError as exc:
            raise StartError(f"cannot read ticket key {args.ticket_key_file}: {exc.strerror}") from None
        if len(key) < 32:
            raise StartError(f"ticket key in {args.ticket_key_file} is shorter than 32 bytes")
        misplaced = [n for n in args.fault if n in CATALOGUE and CATALOGUE[n].platform == "migration"]
        if misplaced:
            raise StartError(f"fault {misplaced[0]} is a migration fault: give it to `python -m refplatform migrate "
                             "--fault`, not to a platform")
        admin_key = None
        if args.admin_key_file is not None:
            if args.platform != "old":
                raise StartError("--admin-key-file: only the old platform has operator controls (the window)")
            admin_key = read_operator_key(args.admin_key_file, key)
        config = PlatformConfig(
            data_dir=args.data_dir, ticket_key=key, contracts=args.contracts, faults=FaultSet(args.fault),
            admin_key=admin_key,
        )
        app = build_app(args.platform, config)
        if args.audit_log is not None:
            from refplatform.common.audit import AuditLog

            app = AuditLog(app, args.audit_log)
        sock = bind(args.host, args.port)
    except (StartError, UnknownFault, OperatorKeyError) as exc:
        print(f"refplatform: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as exc:
        print(f"refplatform: cannot start the {args.platform} platform: {exc}", file=sys.stderr)
        return 2
    serve(app, sock, args.platform)
    return 0


def serve(app: Any, sock: socket.socket, name: str) -> None:
    """Serve `app` on the bound socket; print `READY <name> <base-url>` once it accepts connections."""
    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        started = loop.create_task(server.serve(sockets=[sock]))
        while not server.started and not started.done():
            await asyncio.sleep(0.01)
        shown = f"[{host}]" if ":" in host else host
        print(f"READY {name} http://{shown}:{port}", flush=True)
        await started

    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    asyncio.run(run())
