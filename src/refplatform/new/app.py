"""The new platform's application: FHIR R4 under /fhir, the transformer under /legacy, GET /status."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import refplatform
from refplatform.common.config import PlatformConfig
from refplatform.common.validation import OpenApiValidator
from refplatform.new.core import FhirCore
from refplatform.new.fhir_api import FhirApi, outcome
from refplatform.new.transformer import Transformer, fault_response

PRODUCT = "rxverify reference ECP (FHIR R4 core + transformer)"
RELEASE = "21.0"


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
    return Starlette(
        routes=[
            Route("/status", status, methods=["GET"]),
            # prefixed routes rather than Mount: Mount's pattern stops at a newline in a path
            # parameter, which must reach validation (400), not fall through to 404
            *_prefixed("/fhir", fhir.routes()),
            *_prefixed("/legacy", legacy.routes()),
        ],
        exception_handlers={HTTPException: http_error},
    )
