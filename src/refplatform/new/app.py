"""The new platform's application: FHIR R4 under /fhir, the transformer under /legacy, GET /status."""

from __future__ import annotations

import asyncio
import json

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

import refplatform
from refplatform.common.config import PlatformConfig
from refplatform.common.faults import register
from refplatform.common.validation import OpenApiValidator
from refplatform.new.core import FhirCore
from refplatform.new.fhir_api import FhirApi, outcome
from refplatform.new.transformer import Transformer, fault_response

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
# the performance faults' parameters
STALL_EVERY_S = 10.0  # one checkpoint stall per this many seconds
STALL_S = 2.0  # how long each stall blocks every request
AUDIT_POOL_SIZE = 4  # connections of the audit pool: more requests in flight than this get 503
AUDIT_HOLD_S = 0.05  # how long one request holds its audit connection


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

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.in_use = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_use >= AUDIT_POOL_SIZE:
            await _unavailable(scope, send)
            return
        self.in_use += 1
        try:
            await asyncio.sleep(AUDIT_HOLD_S)  # the audit call
        finally:
            self.in_use -= 1
        await self.app(scope, receive, send)


async def _unavailable(scope: Scope, send: Send) -> None:
    path = str(scope.get("path", ""))
    if path.startswith("/fhir"):
        media = "application/fhir+json"
        body = {"resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "transient", "diagnostics": "audit pool exhausted"}]}
    else:
        media = "application/json"
        body = {"kod": "TJANSTEFEL", "meddelande": "tjänsten är tillfälligt otillgänglig"}
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", media.encode()), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


async def status(_: Request) -> Response:
    """Operational endpoint (no ticket): which platform this is."""
    return JSONResponse({"platform": "new", "product": PRODUCT, "release": RELEASE, "version": refplatform.__version__})


async def http_error(request: Request, exc: Exception) -> Response:
    """Unknown routes and undeclared methods, in the error format of the interface asked."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if request.url.path.startswith("/fhir"):
        code = "not-found" if exc.status_code == 404 else "not-supported"
        return outcome(exc.status_code, code, f"{request.method} {request.url.path}: {exc.detail}", headers)
    if request.url.path.startswith("/legacy"):
        # the same words as the old platform: the differential compares whole answers
        message = f"okänd resurs: {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return fault_response(exc.status_code, "FELAKTIG_BEGARAN", message, headers)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def _prefixed(prefix: str, routes: list[Route]) -> list[Route]:
    return [Route(prefix + r.path, r.endpoint, methods=sorted(r.methods or ()), name=r.name) for r in routes]


def create_app(config: PlatformConfig) -> Starlette:
    """The ASGI application of the new platform (validators and store built once)."""
    core = FhirCore(config)
    fhir_spec = config.contracts / "openapi" / "fhir.yaml"
    fhir = FhirApi(core, OpenApiValidator(fhir_spec) if fhir_spec.exists() else None)
    legacy = Transformer(core, OpenApiValidator(config.contracts / "openapi" / "legacy.yaml"))
    middleware = []
    if config.faults.on(FAULT_PERIODIC_STALL):
        middleware.append(Middleware(PeriodicStall))
    if config.faults.on(FAULT_BUSY_UNDER_CONCURRENCY):
        middleware.append(Middleware(AuditPool))
    return Starlette(
        middleware=middleware,
        routes=[
            Route("/status", status, methods=["GET"]),
            # prefixed routes rather than Mount: Mount's pattern stops at a newline in a path
            # parameter, which must reach validation (400), not fall through to 404
            *_prefixed("/fhir", fhir.routes()),
            *_prefixed("/legacy", legacy.routes()),
        ],
        exception_handlers={HTTPException: http_error},
    )
