"""Command line of the reference platforms: start one platform on a loopback port.

Prints `READY <platform> <base-url>` on standard output once it accepts connections. Bad
input (busy port, unknown fault, unreadable contract or key) is one line on standard error
and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn

from refplatform.common.config import PlatformConfig
from refplatform.common.faults import CATALOGUE, FaultSet, UnknownFault

# The contracts folder of the checkout this runs from (an installed package has no copy of its own).
DEFAULT_CONTRACTS = Path("contracts")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class StartError(Exception):
    """A start-up problem the user caused."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m refplatform", description=__doc__)
    # required unless --list-faults (checked in main)
    p.add_argument("--platform", choices=("old", "new"))
    p.add_argument("--data-dir", type=Path, help="run directory (SQLite store)")
    p.add_argument("--ticket-key-file", type=Path, help="file holding the ticket signing key")
    p.add_argument("--contracts", type=Path, default=DEFAULT_CONTRACTS)
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--fault", action="append", default=[], metavar="NAME", help="switch a fault on (repeatable)")
    p.add_argument("--list-faults", action="store_true", help="print the fault catalogue and exit")
    p.add_argument("--audit-log", type=Path, help="write a digest of every request received to this file")
    return p


def _load_apps() -> None:
    # Importing the platform packages registers their faults in the catalogue.
    import refplatform.new.app
    import refplatform.old.app  # noqa: F401


def build_app(platform: str, config: PlatformConfig) -> Any:
    """The ASGI application of `platform`."""
    if platform == "old":
        from refplatform.old.app import create_app
    else:
        from refplatform.new.app import create_app
    return create_app(config)


def _bind(host: str, port: int) -> socket.socket:
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
    """Start one platform; return the exit code."""
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
        config = PlatformConfig(
            data_dir=args.data_dir, ticket_key=key, contracts=args.contracts, faults=FaultSet(args.fault)
        )
        app = build_app(args.platform, config)
        if args.audit_log is not None:
            from refplatform.common.audit import AuditLog

            app = AuditLog(app, args.audit_log)
        sock = _bind(args.host, args.port)
    except (StartError, UnknownFault) as exc:
        print(f"refplatform: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as exc:
        print(f"refplatform: cannot start the {args.platform} platform: {exc}", file=sys.stderr)
        return 2
    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    )

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        started = loop.create_task(server.serve(sockets=[sock]))
        while not server.started and not started.done():
            await asyncio.sleep(0.01)
        shown = f"[{host}]" if ":" in host else host
        print(f"READY {args.platform} http://{shown}:{port}", flush=True)
        await started

    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    asyncio.run(serve())
    return 0
