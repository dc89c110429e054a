"""The gateway: the callers' one address, a reverse proxy in front of the old and the new platform.

    python -m refplatform gateway --port 0 --upstream old=URL --upstream new=URL --route old --admin-key-file F

The real integrations call one address; at the cutover the operator switches it from the old
platform to the new one (and back on a rollback). Every request (method, path, query, headers,
body) goes unchanged to the current upstream, and its answer comes back unchanged: the Host
header is kept, so addresses the platforms build from it (Location, Bundle links) name the
gateway. A request takes the route that is current when it arrives.

Operator endpoints (with the operator key, see refplatform.common.operator; never forwarded):
  GET  /admin/route                    {"route": "old", "since": "...", "upstreams": {...}}
  POST /admin/route  {"route": "new"}  switch; answers the state after it

An upstream that cannot be reached answers 502 (504 after the timeout) in the format of the
interface asked: a legacy fault TJANSTEFEL under /legacy, an OperationOutcome under /fhir.
Upstreams are loopback addresses, http or https.

Over mutual TLS (`--tls-dir DIR --entry internet=0 --entry sjunet=0`, as a platform takes them) the
gateway requires the caller's client certificate on each of its entry points, calls its upstreams
with its own (`--client-cert`, `--client-key`, trusting `--upstream-ca`), and forwards the caller's
certificate in the `Client-Cert` header of RFC 9440 (a caller's own Client-Cert headers are dropped):
the platforms, started with `--trusted-proxy-cert` naming the gateway's certificate, bind each
assertion and token to the caller's certificate, not the gateway's.
"""

from __future__ import annotations

import argparse
import json
import re
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from refplatform.common.cmdline import CommandError, OneLineParser, fail
from refplatform.common.faults import FaultSet, UnknownFault, register
from refplatform.common.operator import OperatorKeyError, is_operator, not_operator, read_operator_key
from refplatform.common.tls import EXTENSION, FORWARDED, FORWARDED_CERT, forwarded_certificate

# RFC 9110 7.6.1: connection-specific headers (and those the Connection header names) are not
# forwarded; content-length is recomputed, and date/server are the gateway's own (its server adds them).
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding",
                        b"upgrade", b"content-length"})
OWN_RESPONSE_HEADERS = frozenset({b"date", b"server"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
NON_ASCII = re.compile(rb"[\x80-\xff]")
DEFAULT_TIMEOUT_S = 30.0

PLATFORM = "gateway"  # the faults' platform in the catalogue
FAULT_ROLLBACK_NOT_APPLIED = register(
    "gateway-rollback-not-applied", PLATFORM, "behaviour",
    "[second switch] the gateway applies only the first route change after its start: a later switch (the "
    "rollback, new -> old) is answered and shown by /admin/route, but requests go on to the first one's upstream",
).name


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _client(timeout: float, tls: ssl.SSLContext | None) -> httpx2.AsyncClient:
    """The forwarding client: one connection pool per upstream, no redirects followed, no retries."""
    return httpx2.AsyncClient(timeout=httpx2.Timeout(timeout), follow_redirects=False, trust_env=False,
                              verify=tls if tls is not None else True)


def upstream_context(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    """The gateway's TLS client context: its own certificate, trusting only the upstreams' CA."""
    context = ssl.create_default_context(cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    return context


def _unreachable(path: str, status: int, detail: str) -> Response:
    if path.startswith("/fhir"):
        body: dict[str, Any] = {"resourceType": "OperationOutcome",
                                "issue": [{"severity": "error", "code": "transient", "diagnostics": detail}]}
        return JSONResponse(body, status_code=status, media_type="application/fhir+json")
    if path.startswith("/legacy"):
        return JSONResponse({"kod": "TJANSTEFEL", "meddelande": detail}, status_code=status)
    return JSONResponse({"error": detail}, status_code=status)


class Gateway:
    """The ASGI application: forwards to the current upstream; /admin/route for the operator."""

    def __init__(self, upstreams: dict[str, str], route: str, key: bytes, timeout: float = DEFAULT_TIMEOUT_S,
                 faults: FaultSet | None = None, upstream_tls: ssl.SSLContext | None = None) -> None:
        self.upstreams = upstreams
        self.route = route
        self.faults = faults or FaultSet()
        self.forwarding = route  # the upstream requests go to (the route, unless a fault keeps an old one)
        self.switches = 0
        self.since = _now()
        self.key = key
        self.timeout = timeout
        self.upstream_tls = upstream_tls
        self._http: httpx2.AsyncClient | None = None  # made in the server's event loop, on first use

    def state(self) -> dict[str, Any]:
        """The route as the operator endpoint shows it."""
        return {"route": self.route, "since": self.since, "upstreams": self.upstreams}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        handler = self.admin if path == "/admin" or path.startswith("/admin/") else self.forward
        response = await handler(Request(scope, receive))
        await response(scope, receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        """Start-up and shut-down for a server that runs the lifespan protocol: the client closed at the end."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._http is not None:
                    await self._http.aclose()
                    self._http = None
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def admin(self, request: Request) -> Response:
        """The operator endpoints (never forwarded to a platform)."""
        if not is_operator(request, self.key):
            return not_operator()
        if request.url.path != "/admin/route":
            return JSONResponse({"error": f"no operator endpoint {request.url.path}"}, status_code=404)
        if request.method == "GET":
            return JSONResponse(self.state())
        if request.method != "POST":
            return JSONResponse({"error": "GET or POST"}, status_code=405, headers={"Allow": "GET, POST"})
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            body = None
        route = body.get("route") if isinstance(body, dict) and len(body) == 1 else None
        if route not in self.upstreams:
            return JSONResponse({"error": f'the body must be {{"route": NAME}}, NAME one of {sorted(self.upstreams)}'},
                                status_code=400)
        if route != self.route:
            self.route, self.since = route, _now()
            self.switches += 1
            if self.switches == 1 or not self.faults.on(FAULT_ROLLBACK_NOT_APPLIED):
                self.forwarding = route
        return JSONResponse(self.state())

    async def forward(self, request: Request) -> Response:
        """The request sent on to the current upstream; its answer as it came."""
        if self._http is None:
            self._http = _client(self.timeout, self.upstream_tls)
        scope = request.scope
        target = (scope.get("raw_path") or request.url.path.encode()) + (
            b"?" + scope["query_string"] if scope.get("query_string") else b"")
        # the bytes as they came; a raw non-ASCII byte (not allowed in a URL) travels percent-encoded
        target = NON_ASCII.sub(lambda m: b"%%%02X" % m.group()[0], target)
        route = self.forwarding
        base = httpx2.URL(self.upstreams[route])
        url = base.copy_with(raw_path=base.raw_path.rstrip(b"/") + target)
        named = {t.strip().lower() for k, v in scope["headers"] if k.lower() == b"connection" for t in v.split(b",")}
        # a caller's own Client-Cert is never forwarded; over mutual TLS the gateway says who called
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP | named | FORWARDED]
        caller = ((scope.get("extensions") or {}).get(EXTENSION) or {}).get("client_cert_der")
        if isinstance(caller, bytes) and caller:
            headers.append((FORWARDED_CERT, forwarded_certificate(caller)))
        try:
            upstream = await self._http.send(
                self._http.build_request(request.method, url, headers=headers, content=await request.body()),
                stream=True,
            )
            try:
                content = b"".join([chunk async for chunk in upstream.aiter_raw()])
            finally:
                await upstream.aclose()
        except httpx2.TimeoutException:
            return _unreachable(request.url.path, 504, f"the {route} platform did not answer in time")
        except httpx2.HTTPError as exc:
            return _unreachable(request.url.path, 502, f"the {route} platform cannot be reached: "
                                                       f"{type(exc).__name__}")
        response = Response(content, status_code=upstream.status_code)
        response.raw_headers = [
            *((k, v) for k, v in upstream.headers.raw if k.lower() not in HOP_BY_HOP | OWN_RESPONSE_HEADERS),
            (b"content-length", str(len(content)).encode()),
        ]
        return response


def parse_upstreams(specs: list[str]) -> dict[str, str]:
    """`name=URL` pairs: loopback http(s) base URLs, each name once."""
    upstreams: dict[str, str] = {}
    for spec in specs:
        name, sep, url = spec.partition("=")
        if not sep or not NAME.match(name):
            raise CommandError(f"gateway: --upstream {spec!r}: expected NAME=URL (NAME lower-case letters, digits, -)")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CommandError(f"gateway: --upstream {name}: {url!r} is not an http or https URL")
        if parts.hostname not in LOOPBACK:
            raise CommandError(f"gateway: --upstream {name}: {parts.hostname} is not a loopback address "
                               "(the reference gateway forwards to loopback only)")
        if parts.query or parts.fragment:
            raise CommandError(f"gateway: --upstream {name}: {url!r} must not carry a query or fragment")
        if name in upstreams:
            raise CommandError(f"gateway: --upstream {name} is given twice")
        upstreams[name] = url.rstrip("/")
    return upstreams


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m refplatform gateway", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", action="append", default=[], required=True, metavar="NAME=URL",
                   help="a platform the gateway can route to (repeatable), e.g. old=http://127.0.0.1:8001")
    p.add_argument("--route", required=True, metavar="NAME", help="the upstream routed to at start")
    p.add_argument("--admin-key-file", type=Path, required=True, help="file holding the operator key")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait for an upstream")
    p.add_argument("--fault", action="append", default=[], metavar="NAME",
                   help="switch a gateway fault on (repeatable; python -m refplatform --list-faults)")
    p.add_argument("--tls-dir", type=Path,
                   help="serve mutual TLS: per entry point NAME, DIR/NAME.pem, NAME.key and NAME-client-ca.pem")
    p.add_argument("--entry", action="append", default=[], metavar="NAME=PORT",
                   help="an entry point of its own (repeatable, needs --tls-dir), e.g. internet=0 sjunet=0")
    p.add_argument("--client-cert", type=Path, help="the gateway's client certificate (PEM) for https upstreams")
    p.add_argument("--client-key", type=Path, help="its private key (PEM)")
    p.add_argument("--upstream-ca", type=Path, help="the CA (PEM) that https upstreams' certificates come from")
    return p


def _listeners(args: argparse.Namespace) -> tuple[list[Any], ssl.SSLContext | None]:
    """The gateway's entry points (plain HTTP, or mutual TLS on each) and its TLS client context."""
    from refplatform.cli import Listener, StartError, bind, parse_entries
    from refplatform.common.tls import TlsSetupError, server_context

    client = (args.client_cert, args.client_key, args.upstream_ca)
    if any(client) and not all(client):
        raise CommandError("gateway: --client-cert, --client-key and --upstream-ca go together")
    tls = None
    if all(client):
        try:
            tls = upstream_context(*client)
        except (OSError, ssl.SSLError) as exc:
            raise CommandError(f"gateway: cannot use --client-cert/--client-key/--upstream-ca: {exc}") from None
    if args.tls_dir is None:
        if args.entry:
            raise CommandError("gateway: --entry needs --tls-dir: each entry point has its own certificates")
        return [Listener.plain(bind(args.host, args.port))], tls
    try:
        entries = parse_entries(args)
        contexts = {e.name: server_context(args.tls_dir, e.name) for e in entries}
    except (StartError, TlsSetupError) as exc:
        raise CommandError(f"gateway: {exc}") from None
    listeners: list[Any] = []
    try:
        for e in entries:
            listeners.append(Listener(e, bind(args.host, e.port), contexts[e.name]))
    except StartError:
        for listener in listeners:
            listener.sock.close()
        raise
    return listeners, tls


def main(argv: list[str]) -> int:
    """`python -m refplatform gateway ...`: serve until terminated; the exit code."""
    from refplatform.cli import StartError, serve

    try:
        args = _parser().parse_args(argv)
        upstreams = parse_upstreams(args.upstream)
        if args.route not in upstreams:
            raise CommandError(f"gateway: --route {args.route} names no --upstream (known: {', '.join(upstreams)})")
        if args.timeout <= 0:
            raise CommandError(f"gateway: --timeout {args.timeout}: must be more than 0 seconds")
        faults = FaultSet(args.fault)
        misplaced = [n for n in faults.names if n != FAULT_ROLLBACK_NOT_APPLIED]
        if misplaced:
            raise CommandError(f"gateway: fault {misplaced[0]} is not a gateway fault (give it to its platform)")
        key = read_operator_key(args.admin_key_file)
        listeners, upstream_tls = _listeners(args)
    except UnknownFault as exc:
        return fail(f"gateway: {exc}")
    except CommandError as exc:
        return fail(str(exc))
    except (OperatorKeyError, StartError) as exc:
        return fail(f"gateway: {exc}")
    serve(Gateway(upstreams, args.route, key, args.timeout, faults, upstream_tls), listeners, "gateway")
    return 0
