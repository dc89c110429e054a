"""The new platform's application: FHIR R4 under /fhir, the transformer under /legacy (SOAP, REST), GET /status."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

import refplatform
from refplatform.common import soap
from refplatform.common.config import PlatformConfig
from refplatform.common.faults import register
from refplatform.common.rest import fault_response, rest_routes
from refplatform.common.riv import load_riv
from refplatform.common.soap_binding import SoapBinding
from refplatform.common.validation import OpenApiValidator
from refplatform.new.core import FhirCore
from refplatform.new.fhir_api import FhirApi, outcome
from refplatform.new.oauth import TokenService, signing_key
from refplatform.new.transformer import Transformer
from refplatform.new.wire import TransformerWire

PRODUCT = "rxverify reference ECP (FHIR R4 core + transformer)"
RELEASE = "21.0"

FAULT_PERIODIC_STALL = register(
    "new-periodic-stall", "new", "performance",
    "a store checkpoint blocks the whole server for 2 s every 10 s (every request waits, the first stall "
    "8 s after the first request)",
).name
FAULT_BUSY_UNDER_CONCURRENCY = register(
    "new-503-under-concurrency", "new", "performance",
    "a per-request audit call holds one of 4 pooled connections for 50 ms; a request finding none free gets "
    "503: errors rise with concurrency",
).name
FAULT_POOL_LEAK_ON_WRITES = register(
    "new-pool-leak-on-writes", "new", "performance",
    "[under a burst of writes] each write leaks its connection of the 4 in the store pool until the pool's leak "
    "reclaim returns it 15 s later: a fifth write within 15 s, and every request after it, finds none and "
    "answers 503 (SOAP: a SystemException) until one is reclaimed",
).name
# the performance faults' parameters
STALL_EVERY_S = 10.0  # one checkpoint stall per this many seconds
STALL_S = 2.0  # how long each stall blocks every request
AUDIT_POOL_SIZE = 4  # connections of the audit pool: more requests in flight than this get 503
AUDIT_HOLD_S = 0.05  # how long one request holds its audit connection
STORE_POOL_SIZE = 4  # connections of the store pool (new-pool-leak-on-writes)
LEAK_RECLAIM_S = 15.0  # a leaked connection is back in the pool this long after the write that leaked it


class PeriodicStall:
    """Seeded fault new-periodic-stall: a checkpoint that every request must wait for (one shared gate)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.open: asyncio.Event | None = None
        self.cycle: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.open is None:
                self.open = asyncio.Event()
                self.open.set()
                self.cycle = asyncio.get_running_loop().create_task(self._checkpoints(self.open))
            await self.open.wait()
        await self.app(scope, receive, send)

    @staticmethod
    async def _checkpoints(gate: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(STALL_EVERY_S - STALL_S)
            gate.clear()
            await asyncio.sleep(STALL_S)
            gate.set()


class AuditPool:
    """Seeded fault new-503-under-concurrency: a small connection pool that refuses instead of queueing."""

    def __init__(self, app: ASGIApp, soap_binding: SoapBinding) -> None:
        self.app = app
        self.soap = soap_binding
        self.in_use = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_use >= AUDIT_POOL_SIZE:
            await _unavailable(scope, send, self.soap)
            return
        self.in_use += 1
        try:
            await asyncio.sleep(AUDIT_HOLD_S)  # the audit call
        finally:
            self.in_use -= 1
        await self.app(scope, receive, send)


class LeakyStorePool:
    """Seeded fault new-pool-leak-on-writes: writes leak their store connection until a reclaim much later."""

    def __init__(self, app: ASGIApp, soap_binding: SoapBinding, writing: frozenset[str]) -> None:
        self.app = app
        self.soap = soap_binding
        self.writing = writing  # the SOAP endpoints of the services that write
        self.leaked: list[float] = []  # when each leaked connection comes back (loop time)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        now = asyncio.get_running_loop().time()
        self.leaked = [t for t in self.leaked if t > now]
        if len(self.leaked) >= STORE_POOL_SIZE:  # every connection leaked: nothing can reach the store
            await _unavailable(scope, send, self.soap, "store connection pool exhausted")
            return
        path, method = str(scope.get("path", "")), str(scope.get("method", ""))
        rest = path.startswith("/legacy/") and not self.soap.serves(path)  # the legacy interface's JSON rendering
        if method in WRITE_METHODS and (path in self.writing or path.startswith("/fhir/") or rest):
            self.leaked.append(now + LEAK_RECLAIM_S)  # the success path never returns it
        await self.app(scope, receive, send)


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def _unavailable(scope: Scope, send: Send, soap_binding: SoapBinding, why: str = "audit pool exhausted") -> None:
    path = str(scope.get("path", ""))
    status = 503
    said = "tjänsten är tillfälligt otillgänglig" + ("" if why == "audit pool exhausted" else f" ({why})")
    if path.startswith("/fhir"):
        media = "application/fhir+json"
        body = {"resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "transient", "diagnostics": why}]}
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    elif soap_binding.serves(path):
        # a SOAP caller gets a SystemException, with HTTP 500 as every SOAP 1.1 fault
        media, status = soap.CONTENT_TYPE, 500
        payload = soap.fault_envelope(soap.failure(said), soap_binding.common)
    else:
        media = "application/json"
        body = {"kod": "TJANSTEFEL", "meddelande": said}
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", media.encode()), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


async def status(_: Request) -> Response:
    """Operational endpoint (no ticket): which platform this is."""
    return JSONResponse({"platform": "new", "product": PRODUCT, "release": RELEASE, "version": refplatform.__version__})


def http_errors(soap_binding: SoapBinding) -> Callable[[Request, Exception], Awaitable[Response]]:
    """Unknown routes and undeclared methods, in the error format of the interface asked."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if request.url.path.startswith("/fhir"):
            code = "not-found" if exc.status_code == 404 else "not-supported"
            return outcome(exc.status_code, code, f"{request.method} {request.url.path}: {exc.detail}", headers)
        if request.url.path.startswith("/legacy"):
            # the same words as the old platform: the differential compares whole answers
            message = f"okänd resurs: {request.url.path}" if exc.status_code == 404 else str(exc.detail)
            if soap_binding.serves(request.url.path):
                return soap_binding.fault(soap.SoapFault("Client", message), exc.status_code, headers)
            return fault_response(exc.status_code, "FELAKTIG_BEGARAN", message, headers)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    return http_error


def _prefixed(prefix: str, routes: list[Route]) -> list[Route]:
    return [Route(prefix + r.path, r.endpoint, methods=sorted(r.methods or ()), name=r.name) for r in routes]


def create_app(config: PlatformConfig) -> Starlette:
    """The ASGI application of the new platform (validators and store built once)."""
    core = FhirCore(config)
    legacy = Transformer(core)
    tokens = None
    if legacy.sambi is not None:  # --auth saml: the token endpoint, and tokens for the FHIR API
        tokens = TokenService(config, legacy.sambi.profile, legacy.sambi, signing_key(config.token_key_file))
    fhir_spec = config.contracts / "openapi" / "fhir.yaml"
    fhir = FhirApi(core, OpenApiValidator(fhir_spec) if fhir_spec.exists() else None, tokens)
    operations = legacy.operations()
    soap_binding = SoapBinding(load_riv(config.contracts), operations, legacy.read_actor,
                               TransformerWire(config.faults), security_header=tokens is not None)
    middleware = []
    if config.faults.on(FAULT_PERIODIC_STALL):
        middleware.append(Middleware(PeriodicStall))
    if config.faults.on(FAULT_BUSY_UNDER_CONCURRENCY):
        middleware.append(Middleware(AuditPool, soap_binding=soap_binding))
    if config.faults.on(FAULT_POOL_LEAK_ON_WRITES):
        riv = load_riv(config.contracts)
        writing = frozenset(riv.legacy_base + s.endpoint for s in riv.services.values() if s.writes)
        middleware.append(Middleware(LeakyStorePool, soap_binding=soap_binding, writing=writing))
    return Starlette(
        middleware=middleware,
        routes=[
            Route("/status", status, methods=["GET"]),
            # prefixed routes rather than Mount: Mount's pattern stops at a newline in a path
            # parameter, which must reach validation (400), not fall through to 404
            *_prefixed("/fhir", fhir.routes()),
            *rest_routes("/legacy", operations, OpenApiValidator(config.contracts / "openapi" / "legacy-rest.yaml"),
                         legacy.read_actor),
            *soap_binding.routes(),
            *([Route(tokens.profile.token_path, tokens.token, methods=["POST"])] if tokens is not None else []),
        ],
        exception_handlers={HTTPException: http_errors(soap_binding)},
    )
