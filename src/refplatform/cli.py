"""Command line of the reference platforms: start one platform on a loopback port.

Prints `READY <platform> <base-url>` on standard output once it accepts connections. Bad
input (busy port, unknown fault, unreadable contract, key or certificate) is one line on
standard error and exit code 2.

Mutual TLS: with `--tls-dir DIR` every entry point serves HTTPS and requires a client certificate
(refplatform.common.tls names the files of DIR); `--entry internet=PORT --entry sjunet=PORT` opens
one listening socket per entry point, each with its own server certificate and client CAs, and
prints one `READY <platform> https://127.0.0.1:<port> (entry <name>)` line per entry point.
`--auth saml` (needs --tls-dir and --issuer-cert) reads callers from SAMBI assertions bound to their
client certificates, and serves the new platform's token endpoint; `--auth jwt` (the default)
keeps the JWT tickets in `Authorization`.

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
import ssl
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import uvicorn

from refplatform.common.config import PlatformConfig
from refplatform.common.faults import CATALOGUE, FaultSet, UnknownFault
from refplatform.common.operator import OperatorKeyError, read_operator_key
from refplatform.common.tls import (
    DEFAULT_ENTRY,
    EntryPoint,
    TlsSetupError,
    client_certificate_protocol,
    parse_entry,
    server_context,
)

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
    p.add_argument("--tls-dir", type=Path,
                   help="serve mutual TLS: per entry point NAME, DIR/NAME.pem, NAME.key and NAME-client-ca.pem")
    p.add_argument("--entry", action="append", default=[], metavar="NAME=PORT",
                   help="an entry point of its own (repeatable, needs --tls-dir), e.g. internet=0 sjunet=0")
    p.add_argument("--auth", choices=("jwt", "saml"), default="jwt",
                   help="callers' credentials: JWT tickets (default) or SAMBI assertions over mutual TLS")
    p.add_argument("--issuer-cert", type=Path, help="PEM certificate of the ticket issuer trusted with --auth saml")
    p.add_argument("--trusted-proxy-cert", type=Path, metavar="FILE",
                   help="PEM client certificate of the gateway in front (needs --tls-dir): on its connections the "
                        "caller's certificate is the one its Client-Cert header forwards (RFC 9440)")
    p.add_argument("--token-key-file", type=Path,
                   help="PEM EC P-256 key the new platform signs access tokens with (default: a new one per start)")
    p.add_argument("--token-lifetime", type=int, default=300, metavar="SECONDS", help="access tokens (default 300)")
    p.add_argument("--refresh-lifetime", type=int, default=3600, metavar="SECONDS",
                   help="refresh tokens (default 3600)")
    return p


@dataclass(frozen=True)
class Listener:
    """One entry point, bound: its socket, and its TLS context (None: plain HTTP)."""

    entry: EntryPoint
    sock: socket.socket
    context: ssl.SSLContext | None
    proxy_der: bytes | None = None  # the trusted gateway's client certificate (RFC 9440 Client-Cert)

    @classmethod
    def plain(cls, sock: socket.socket) -> Listener:
        """A plain-HTTP listener on a bound socket."""
        return cls(EntryPoint(DEFAULT_ENTRY, sock.getsockname()[1]), sock, None)


def parse_entries(args: argparse.Namespace) -> list[EntryPoint]:
    """The entry points of --entry (or the one of --port), checked."""
    if args.entry and args.tls_dir is None:
        raise StartError("--entry needs --tls-dir: each entry point has its own certificates")
    if args.entry and args.port:
        raise StartError("give the ports with --entry NAME=PORT, not --port, when there are entry points")
    try:
        entries = [parse_entry(e) for e in args.entry] or [EntryPoint(DEFAULT_ENTRY, args.port)]
    except ValueError as exc:
        raise StartError(str(exc)) from None
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise StartError(f"--entry: entry point {next(n for n in names if names.count(n) > 1)} given twice")
    return entries


def _read_pem_cert(path: Path, what: str) -> bytes:
    """A PEM certificate file, as PEM (StartError naming `what` when it cannot be read or is none)."""
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise StartError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise StartError(f"{what} {path} is not a PEM certificate") from None
    return pem


def _read_issuer_cert(path: Path | None, auth: str) -> bytes | None:
    if auth != "saml":
        return None
    if path is None:
        raise StartError("--auth saml needs --issuer-cert: the ticket issuer's certificate to trust")
    return _read_pem_cert(path, "issuer certificate")


def read_proxy_cert(path: Path | None, tls_dir: Path | None) -> bytes | None:
    """The DER certificate of --trusted-proxy-cert (None without it)."""
    if path is None:
        return None
    if tls_dir is None:
        raise StartError("--trusted-proxy-cert needs --tls-dir: the gateway is known by its client certificate")
    return ssl.PEM_cert_to_DER_cert(_read_pem_cert(path, "trusted proxy certificate").decode("ascii"))


def _check_lifetimes(args: argparse.Namespace) -> None:
    for name in ("token_lifetime", "refresh_lifetime"):
        if getattr(args, name) < 1:
            raise StartError(f"--{name.replace('_', '-')} must be at least 1 second")
    if args.token_key_file is not None and not args.token_key_file.is_file():
        raise StartError(f"cannot read token key {args.token_key_file}")


def _load_apps() -> None:
    # Importing the platform packages registers their faults in the catalogue.
    import refplatform.gateway
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
        misplaced = [n for n in args.fault if n in CATALOGUE and CATALOGUE[n].platform in ("migration", "gateway")]
        if misplaced:
            owner = CATALOGUE[misplaced[0]].platform
            raise StartError(f"fault {misplaced[0]} is a {owner} fault: give it to `python -m refplatform "
                             f"{'migrate' if owner == 'migration' else 'gateway'} --fault`, not to a platform")
        admin_key = None
        if args.admin_key_file is not None:
            if args.platform != "old":
                raise StartError("--admin-key-file: only the old platform has operator controls (the window)")
            admin_key = read_operator_key(args.admin_key_file, key)
        entries = parse_entries(args)
        if args.auth == "saml" and args.tls_dir is None:
            raise StartError("--auth saml needs --tls-dir: an assertion is bound to the caller's client certificate")
        _check_lifetimes(args)
        contexts = {e.name: server_context(args.tls_dir, e.name) if args.tls_dir else None for e in entries}
        proxy_der = read_proxy_cert(args.trusted_proxy_cert, args.tls_dir)
        config = PlatformConfig(
            data_dir=args.data_dir, ticket_key=key, contracts=args.contracts, faults=FaultSet(args.fault),
            admin_key=admin_key, auth=args.auth, issuer_cert=_read_issuer_cert(args.issuer_cert, args.auth),
            tls=args.tls_dir is not None, token_lifetime_s=args.token_lifetime,
            refresh_lifetime_s=args.refresh_lifetime, token_key_file=args.token_key_file,
        )
        app = build_app(args.platform, config)
        if args.audit_log is not None:
            from refplatform.common.audit import AuditLog

            app = AuditLog(app, args.audit_log)
        listeners = []
        try:
            for e in entries:
                listeners.append(Listener(e, bind(args.host, e.port), contexts[e.name], proxy_der))
        except StartError:
            for listener in listeners:
                listener.sock.close()
            raise
    except (StartError, UnknownFault, OperatorKeyError, TlsSetupError) as exc:
        print(f"refplatform: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as exc:
        print(f"refplatform: cannot start the {args.platform} platform: {exc}", file=sys.stderr)
        return 2
    serve(app, listeners, args.platform)
    return 0


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to `serve`: one SIGTERM stops every entry point's server."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _config(app: Any, listener: Listener) -> uvicorn.Config:
    options: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": "off",
                               "timeout_graceful_shutdown": 2}
    if listener.context is not None:
        context = listener.context
        options["ssl_context_factory"] = lambda *_: context
        options["http"] = client_certificate_protocol(listener.entry.name, listener.proxy_der)
    return uvicorn.Config(app, **options)


def serve(app: Any, listeners: list[Listener], name: str) -> None:
    """Serve `app` on each bound entry point; print one READY line per entry point once all accept connections."""
    servers = [_Server(_config(app, listener)) for listener in listeners]

    def stop(*_: Any) -> None:
        for server in servers:
            server.should_exit = True

    async def run() -> None:
        loop = asyncio.get_running_loop()
        started = [loop.create_task(s.serve(sockets=[ln.sock])) for s, ln in zip(servers, listeners, strict=True)]
        while not all(s.started for s in servers) and not any(t.done() for t in started):
            await asyncio.sleep(0.01)
        for listener in listeners:
            host, port = listener.sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            if listener.context is None:
                print(f"READY {name} http://{shown}:{port}", flush=True)
            else:
                print(f"READY {name} https://{shown}:{port} (entry {listener.entry.name})", flush=True)
        await asyncio.gather(*started)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    asyncio.run(run())
