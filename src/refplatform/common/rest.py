"""The REST/JSON binding of the legacy operations (contracts/openapi/legacy.yaml), kept until the suite speaks SOAP.

Removing it is deleting the platforms' REST route tables and this module: the operations themselves
(refplatform.common.legacy) do not know their binding.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from refplatform.common.legacy import ActorReader, LegacyFault, LegacyOperation, answer
from refplatform.common.tickets import TicketError
from refplatform.common.validation import OpenApiValidator, RequestInvalid


def fault_response(status: int, kod: str, meddelande: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The legacy fault body of the REST rendering."""
    return JSONResponse({"kod": kod, "meddelande": meddelande}, status_code=status, headers=headers)


def rest_endpoint(operation_id: str, operation: LegacyOperation, validator: OpenApiValidator,
                  read_actor: ActorReader, success: int = 200) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint doing the legacy order of checks: ticket (401), request (400), role (403), then the operation."""

    async def run(request: Request) -> Response:
        try:
            actor = read_actor(operation_id, request.headers, None)
        except TicketError as exc:
            return fault_response(401, "EJ_AUTENTISERAD", exc.message)
        body = await request.body()
        query: dict[str, list[str]] = {}
        for name, value in request.query_params.multi_items():
            query.setdefault(name, []).append(value)
        try:
            parsed = validator.validate(operation_id, request.path_params, query, request.headers, body,
                                        request.headers.get("content-type"))
        except RequestInvalid as exc:
            return fault_response(400, "FELAKTIG_BEGARAN", exc.message)
        try:
            actor.require(*operation.roles)
        except TicketError as exc:
            return fault_response(403, "EJ_BEHORIG", exc.message)
        try:
            result = await answer(operation.handler, actor, {**request.path_params, **(parsed or {})})
        except LegacyFault as exc:
            response = fault_response(exc.status, exc.kod, exc.meddelande)
            if exc.charset:
                response.headers["content-type"] = f"application/json; charset={exc.charset}"
            return response
        return JSONResponse(result, status_code=success)

    run.__name__ = operation_id
    return run


# legacy.yaml: path below the legacy base, method, operationId, status of success, the service whose
# operation answers it (contracts/riv/services.toml)
RENDERING = (
    ("/ordinationer", "POST", "SkapaOrdinationVard", 201, "SkapaOrdinationVard"),
    ("/ordinationer/{ordinationId}/makulering", "POST", "MakuleraOrdination", 200, "MakuleraOrdinationVard"),
    ("/ordinationer/{ordinationId}/uttag", "POST", "GodkannUttag", 200, "GodkannUttag"),
    ("/patienter/{personId}", "GET", "HamtaPatientInfo", 200, "HamtaPatientInfo"),
    ("/patienter/{personId}/ordinationer/aktuella", "GET", "HamtaAktuellaOrdinationer", 200,
     "HamtaAktuellaOrdinationer"),
    ("/patienter/{personId}/ordinationer/historik", "GET", "HamtaOrdinationshistorik", 200,
     "HamtaOrdinationshistorik"),
    ("/patienter/{personId}/samtycke", "PUT", "UppdateraSamtycke", 200, "UppdateraSamtycke"),
    ("/patienter/{personId}/lakemedelsforteckning", "GET", "HamtaLakemedelsforteckning", 200,
     "HamtaLakemedelsforteckning"),
    ("/expeditionsid", "POST", "HamtaExpeditionsId", 200, "HamtaExpeditionsId"),
    ("/lakemedelsforteckning/expeditioner", "POST", "RapporteraExpeditionLF", 201, "RapporteraExpeditionLF"),
    ("/arbetsplatskoder/{arbetsplatskod}", "GET", "KontrolleraArbetsplatskod", 200, "KontrolleraArbetsplatskod"),
)
# The one REST operation two services replace (MakuleraOrdinationVard, -Apotek): both roles cancel there.
CANCEL_ROLES = ("prescriber", "pharmacy")


def rest_routes(base: str, operations: Mapping[str, LegacyOperation], validator: OpenApiValidator,
                read_actor: ActorReader) -> list[Route]:
    """The routes of the REST rendering, each served by the operation of its service."""
    routes = []
    for path, method, operation_id, success, service in RENDERING:
        operation = operations[service]
        if operation_id == "MakuleraOrdination":
            operation = LegacyOperation(CANCEL_ROLES, operation.handler)
        routes.append(Route(base + path, rest_endpoint(operation_id, operation, validator, read_actor, success),
                            methods=[method], name=operation_id))
    return routes
