"""The SOAP binding of the legacy operations: one endpoint per service interaction of contracts/riv.

POST `<legacy base>/<Service>Responder/V<major>` with a SOAP 1.1 envelope; GET `...?wsdl` serves the
WSDL and `...?xsd=<path>` the schemas it reaches. The order of checks is the REST rendering's:
the envelope, the ticket, the operation (SOAPAction and body element), the XSD, the role, then the
operation itself. Every refusal is a SOAP fault, HTTP 500 (WS-I Basic Profile R1126): the envelope
could not be read -> faultcode Client (VersionMismatch, MustUnderstand) without detail; anything
after -> Client with an ApplicationException (kod, meddelande); the platform failed -> Server with
a SystemException. An unknown service or version is HTTP 404 with a Client fault.

SOAPAction, as Apache CXF treats it: absent or "" -> the body element decides; otherwise, quoted or
bare, it must be the service's soapAction.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from refplatform.common import soap
from refplatform.common.legacy import ActorReader, LegacyFault, LegacyOperation, answer
from refplatform.common.riv import XSD, RivContracts, RivService
from refplatform.common.tickets import TicketError

LOG = logging.getLogger("refplatform.soap")
WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
_IMPORTS = (f"{{{XSD}}}import", f"{{{XSD}}}include")
# the namespaces declared on every answer element besides the responder's (default) namespace
_DECLARED = ("common", "or", "lf", "axs")
# the endpoints answer every method themselves: what is not GET or POST gets a SOAP fault, not Starlette's JSON 405
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class WireHooks:
    """Where a platform may alter the wire after rendering: the seeded wire faults. By default nothing."""

    def answer(self, service: RivService, element: etree._Element) -> etree._Element:
        """The response element as it goes out."""
        return element

    def refusal(self, service: RivService, fault: soap.SoapFault) -> soap.SoapFault:
        """A business-rule refusal (an operation's LegacyFault) as it goes out."""
        return fault


def to_xml_names(data: Mapping[str, Any], names: Mapping[str, str], lists: Mapping[str, str],
                 path: str = "") -> dict[str, Any]:
    """An answer under the XML names: the renames of services.toml [names], arrays as their repeated element."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        at = f"{path}/{key}" if path else key
        if isinstance(value, list):
            if at not in lists:
                raise KeyError(f"services.toml names no element for the array {at}")
            out[lists[at].rsplit("/", 1)[-1]] = [
                to_xml_names(v, names, lists, at) if isinstance(v, Mapping) else v for v in value
            ]
        elif isinstance(value, Mapping):
            out[names.get(key, key)] = to_xml_names(value, names, lists, at)
        else:
            out[names.get(key, key)] = value
    return out


def from_xml_names(data: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """A decoded request under the REST/JSON names the operations take."""
    back = {xml: json for json, xml in names.items()}
    return {back.get(k, k): from_xml_names(v, names) if isinstance(v, Mapping) else v for k, v in data.items()}


def _soap_action(value: str | None) -> str:
    return (value or "").strip().strip('"').strip()


class SoapBinding:
    """The SOAP endpoints of one platform's legacy operations, by service name."""

    def __init__(self, contracts: RivContracts, operations: Mapping[str, LegacyOperation],
                 read_actor: ActorReader, wire: WireHooks | None = None) -> None:
        missing = sorted(set(contracts.services) - set(operations))
        if missing:
            raise ValueError(f"no operation implements the service(s) {', '.join(missing)}")
        self.contracts = contracts
        self.operations = operations
        self.read_actor = read_actor
        self.wire = wire or WireHooks()
        ns = contracts.namespaces
        self.common = ns["common"]
        self.understood = {f"{{{ns['logical_address']}}}LogicalAddress", f"{{{ns['argos']}}}ArgosHeader"}
        self.nsmap: dict[str | None, str] = {prefix: ns[prefix] for prefix in _DECLARED}
        self.paths = {contracts.legacy_base + s.endpoint for s in contracts.services.values()}

    def routes(self) -> list[Route]:
        """One route per service interaction, and one answering every other `...Responder/<version>`."""
        base = self.contracts.legacy_base
        routes = [Route(base + s.endpoint, self._endpoint(s), methods=_METHODS, name=s.name)
                  for s in self.contracts.services.values()]
        routes.append(Route(base + "/{service}Responder/{version}", self._unknown, methods=_METHODS))
        return routes

    def serves(self, path: str) -> bool:
        """Whether a request path is a SOAP endpoint of this binding (answers there are SOAP)."""
        return path in self.paths or (path.startswith(self.contracts.legacy_base + "/") and "Responder/" in path)

    # ---- answers ----

    def fault(self, fault: soap.SoapFault, status: int = 500, headers: Mapping[str, str] | None = None) -> Response:
        """A fault envelope."""
        media = soap.CONTENT_TYPE if fault.charset is None else f"text/xml; charset={fault.charset}"
        return Response(soap.fault_envelope(fault, self.common), status_code=status, media_type=media,
                        headers=dict(headers or {}))

    async def _unknown(self, request: Request) -> Response:
        service, version = request.path_params["service"], request.path_params["version"]
        return self.fault(soap.refusal("FELAKTIG_BEGARAN", f"ingen tjänst {service}Responder/{version} här"), 404)

    def _endpoint(self, service: RivService) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            if request.method == "GET":
                return self._document(request, service)
            if request.method != "POST":
                fault = soap.SoapFault("Client", f"{request.method} stöds inte: en SOAP-begäran är POST")
                return Response(soap.fault_envelope(fault, self.common), status_code=405,
                                media_type=soap.CONTENT_TYPE, headers={"Allow": "GET, POST"})
            try:
                element = await self._call(request, service)
            except soap.SoapFault as fault:
                return self.fault(fault)
            except Exception:  # a platform failure is a SystemException, never a stack trace on the wire
                LOG.exception("%s failed", service.name)
                return self.fault(soap.failure("tjänsten kunde inte svara: internt fel"))
            return Response(soap.answer_envelope(element), media_type=soap.CONTENT_TYPE)

        run.__name__ = service.name
        return run

    async def _call(self, request: Request, service: RivService) -> etree._Element:
        envelope = soap.parse_envelope(await request.body(), request.headers.get("content-type"), self.understood)
        try:
            actor = self.read_actor(service.name, request.headers, envelope)
        except TicketError as exc:
            raise soap.refusal("EJ_AUTENTISERAD", exc.message) from None
        action = _soap_action(request.headers.get("soapaction"))
        if action and action != service.soap_action:
            raise soap.refusal("FELAKTIG_BEGARAN", f"SOAPAction {action} är inte {service.soap_action}")
        if envelope.body.tag != service.request_element:
            raise soap.refusal("FELAKTIG_BEGARAN", f"väntade {service.request_element}, fick {envelope.body.tag}")
        self._check_headers(envelope)
        call = from_xml_names(soap.read(service.schema, envelope.body), self.contracts.names)
        operation = self.operations[service.name]
        try:
            actor.require(*operation.roles)
        except TicketError as exc:
            raise soap.refusal("EJ_BEHORIG", exc.message) from None
        try:
            result = await answer(operation.handler, actor, call)
        except LegacyFault as exc:
            fault = soap.failure(exc.meddelande) if exc.status >= 500 else soap.refusal(exc.kod, exc.meddelande)
            fault.charset = exc.charset
            raise self.wire.refusal(service, fault) from None
        data = to_xml_names(result, self.contracts.names, service.lists)
        decl = service.schema.elements[f"{service.name}Response"]
        element = soap.render(decl, data, {None: service.namespace, **self.nsmap})
        return self.wire.answer(service, element)

    def _check_headers(self, envelope: soap.Envelope) -> None:
        ns = self.contracts.namespaces
        for qname, schema in ((f"{{{ns['logical_address']}}}LogicalAddress", self.contracts.logical_address),
                              (f"{{{ns['argos']}}}ArgosHeader", self.contracts.argos)):
            entry = envelope.header_entry(qname)
            problem = soap.validation_error(schema, entry) if entry is not None else None
            if problem:
                raise soap.refusal("FELAKTIG_BEGARAN", f"SOAP-header {problem}")

    # ---- ?wsdl and ?xsd= ----

    def _document(self, request: Request, service: RivService) -> Response:
        query = {k.lower(): v for k, v in request.query_params.items()}
        url = str(request.url.replace(query=""))
        if "wsdl" in query:
            path, rel_dir = service.wsdl, ""
        elif query.get("xsd") in service.documents:
            rel = query["xsd"]
            path, rel_dir = service.documents[rel], posixpath.dirname(rel)
        else:
            return self.fault(soap.SoapFault("Client", "GET ger ?wsdl eller ?xsd=<schema> för denna tjänst"), 404)
        tree = etree.parse(str(path))
        # As real stacks do: the imports point back at this endpoint, the address at where it was asked.
        for node in tree.iter(*_IMPORTS):
            location = node.get("schemaLocation")
            if location:
                node.set("schemaLocation", f"{url}?xsd={posixpath.normpath(posixpath.join(rel_dir, location))}")
        for address in tree.iter(f"{{{WSDL_SOAP}}}address"):
            address.set("location", url)
        body = etree.tostring(tree, xml_declaration=True, encoding="utf-8")
        return Response(body, media_type=soap.CONTENT_TYPE)
