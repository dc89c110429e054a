"""The old interface's OpenAPI description, generated from contracts/riv: the SOAP endpoints as they are.

One operation per service interaction: `POST /<Service>Responder/V<major>` below the legacy base
(and `GET` of the same path, which serves the WSDL and its schemas as Apache CXF does),
operationId the service name (a second major of a service: `<Service>V<major>`). The request body
is `text/xml`, its schema the JSON Schema of the request element's content by XML local names
(rxverify.contracts.jsonschema: facets translated, occurrences as arrays and `required`, identity
slots `format: personid`); 200 answers the response element (`text/xml`), 500 a SOAP fault (WS-I
Basic Profile: every fault is HTTP 500). `x-roles`, `x-writes`,
`x-faults` and `x-service` (namespace, soapAction, major, the element names, the WSDL) carry
services.toml and the WSDL; tags are the service areas; links come from services.toml's links as
JSON pointers into the deserialized answer. The legacy client's serializer and deserializer for
`text/xml` (rxverify.legacy.media) are what makes schemathesis speak it.

    rxverify contracts openapi           write contracts/openapi/legacy.yaml
    rxverify contracts openapi --check   exit 1 when the committed file is not what the contracts give
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rxverify.contracts.jsonschema import SchemaWriter
from rxverify.contracts.riv import RivContracts, Service, load_riv
from rxverify.errors import UserError

MEDIA = "text/xml"
HEADER = (
    "# GENERATED from contracts/riv (WSDL, XSD, services.toml) by `rxverify contracts openapi`: do not edit.\n"
    "# `rxverify contracts openapi --check` (and tests/unit/test_legacy_openapi.py) fail when it is stale.\n"
)
FAULT_CODES = ("Client", "Server", "VersionMismatch", "MustUnderstand")  # SOAP 1.1 faultcode local names
_INDEX = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<n>[0-9]+)\])?$")


def pointer(path: str) -> str:
    """A services.toml path (`historikpost[1]/ordination`) as a JSON pointer into the decoded answer."""
    parts = []
    for step in path.split("/"):
        match = _INDEX.match(step)
        if match is None:
            raise UserError(f"services.toml: link path {path!r} is not `name` or `name[n]` steps joined by /")
        parts.append(match["name"])
        if match["n"] is not None:
            parts.append(str(int(match["n"]) - 1))  # XPath counts from 1, JSON pointers from 0
    return "/" + "/".join(parts)


def _prefixes(riv: RivContracts) -> dict[str, str]:
    prefixes = {ns: prefix for prefix, ns in riv.namespaces.items()}
    for service in riv.services.values():
        prefixes[service.namespace] = service.operation_id
    return prefixes


def _links(riv: RivContracts, service: Service) -> dict[str, Any]:
    """services.toml's links of a service, one OpenAPI link per target operation (every value it takes)."""
    grouped: dict[str, list[Any]] = {}
    for link in service.semantics.links:
        grouped.setdefault(link.name.split(".", 1)[0], []).append(link)
    out: dict[str, Any] = {}
    for name, links in grouped.items():
        target = riv.service(links[0].operation)
        entry: dict[str, Any] = {
            "operationId": target.operation_id,
            "requestBody": {link.target: f"$response.body#{pointer(link.source)}" for link in links},
        }
        notes = [link.note for link in links if link.note]
        if notes:
            entry["description"] = " ".join(notes)
        out[name] = entry
    return out


def _operation(riv: RivContracts, service: Service, writer: SchemaWriter) -> dict[str, Any]:
    request = service.element()
    response = service.element(response=True)
    writer.components[service.operation_id] = writer.element(request)
    writer.components[f"{service.operation_id}Response"] = writer.element(response)
    ref = writer.ref_base
    summary = service.documentation.split(". ")[0].rstrip(".") if service.documentation else service.name
    operation: dict[str, Any] = {
        "operationId": service.operation_id,
        "summary": summary,
        "description": service.documentation or service.name,
        "tags": [service.semantics.area],
        "x-roles": list(service.roles),
        "x-writes": service.writes,
        "x-faults": list(service.semantics.faults),
        "x-service": {
            "name": service.name,
            "major": service.major,
            "namespace": service.namespace,
            "soapAction": service.soap_action,
            "requestElement": service.name,
            "responseElement": f"{service.name}Response",
            "wsdl": service.wsdl.relative_to(riv.folder.parent).as_posix(),
        },
        "requestBody": {"required": True, "content": {MEDIA: {"schema": {"$ref": f"{ref}{service.operation_id}"}}}},
        "responses": {
            "200": {
                "description": f"{service.name}Response",
                "content": {MEDIA: {"schema": {"$ref": f"{ref}{service.operation_id}Response"}}},
            },
            "500": {"$ref": "#/components/responses/Fault"},
        },
    }
    links = _links(riv, service)
    if links:
        operation["responses"]["200"]["links"] = links
    return operation


def _documents(service: Service) -> dict[str, Any]:
    """GET on an endpoint: its WSDL (`?wsdl`) and the schemas the WSDL reaches (`?xsd=<path>`), as CXF serves them."""
    return {
        "operationId": f"{service.operation_id}.wsdl",
        "summary": f"The WSDL of {service.name} V{service.major} (?wsdl), or a schema it imports (?xsd=<path>)",
        "tags": [service.semantics.area],
        "security": [],
        "parameters": [
            {"name": "wsdl", "in": "query", "required": False, "allowEmptyValue": True,
             "schema": {"type": "string", "maxLength": 0}},
            {"name": "xsd", "in": "query", "required": False,
             "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_./-]+\.xsd$"}},
        ],
        "responses": {
            "200": {"description": "The WSDL, or the schema asked for (imports pointing back at this endpoint).",
                    "content": {MEDIA: {}}},
            "404": {"description": "Neither ?wsdl nor a schema the WSDL reaches was asked for (a Client fault).",
                    "content": {MEDIA: {"schema": {"$ref": "#/components/schemas/Fault"}}}},
        },
    }  # fmt: skip


def _fault_schema(riv: RivContracts, writer: SchemaWriter) -> dict[str, Any]:
    common = riv.common
    kinds = (riv.application_exception, riv.system_exception)
    detail = {kind: writer.element(common.elements[kind]) for kind in kinds}
    return {
        "description": "A SOAP 1.1 fault: faultcode (local name), faultstring and the detail's one element, "
        f"{riv.application_exception} (a rule said no) or {riv.system_exception} (the platform failed).",
        "type": "object",
        "additionalProperties": False,
        "required": ["faultcode", "faultstring"],
        "properties": {
            "faultcode": {"type": "string", "enum": list(FAULT_CODES)},
            "faultstring": {"type": "string"},
            "detail": {"type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
                       "properties": detail},
        },
    }


def generate(contracts: Path) -> dict[str, Any]:
    """The legacy OpenAPI document of the contracts folder."""
    riv = load_riv(contracts)
    writer = SchemaWriter(_prefixes(riv).__getitem__)
    paths: dict[str, Any] = {}
    try:
        for service in sorted(riv.services.values(), key=lambda s: (s.name, s.major)):
            try:
                paths[service.endpoint] = {"get": _documents(service), "post": _operation(riv, service, writer)}
            except ValueError as exc:
                raise UserError(f"contract {service.responder_xsd}: {exc}") from None
        fault = _fault_schema(riv, writer)
    except KeyError as exc:
        raise UserError(f"contracts/riv: no prefix for the namespace {exc} (services.toml [namespaces])") from None
    schemas = dict(sorted(writer.components.items()))
    schemas["Fault"] = fault
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Receptdepå and Läkemedelsförteckningen: the old service interface (RIV-TA SOAP 1.1)",
            "version": riv.version,
            "description": (
                "The old service interface as its callers call it: one SOAP 1.1 endpoint per service interaction "
                "and major version (RIV-TA Basic Profile 2.1, document/literal), generated from the service "
                "contracts in contracts/riv. Bodies are XML; the schemas describe them as the suite decodes them "
                "(XML local names, a list where an element may repeat). Every request carries the SOAPAction of "
                "`x-service.soapAction`; the access ticket is the HTTP Authorization header."
            ),
        },
        "servers": [{"url": riv.legacy_base}],
        "security": [{"accessTicket": []}],
        "tags": [{"name": name, "description": text} for name, text in riv.areas.items()],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "accessTicket": {
                    "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "The access ticket of Säker åtkomst; missing or bad: ApplicationException "
                    "EJ_AUTENTISERAD, a role the operation does not allow (x-roles): EJ_BEHORIG.",
                },
            },
            "responses": {
                "Fault": {"description": "A SOAP fault (HTTP 500, WS-I Basic Profile).",
                          "content": {MEDIA: {"schema": {"$ref": "#/components/schemas/Fault"}}}},
            },
            "schemas": schemas,
        },
    }


def render(document: Mapping[str, Any]) -> str:
    """The document as the committed YAML text."""
    return HEADER + yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True, width=120)


def write_or_check(contracts: Path, output: Path | None = None, check: bool = False) -> tuple[bool, Path]:
    """Write the generated legacy.yaml (or only compare): whether the file on disk is (now) the generated one."""
    target = output or contracts / "openapi" / "legacy.yaml"
    text = render(generate(contracts))
    try:
        current = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    except OSError as exc:
        raise UserError(f"cannot read {target}: {exc.strerror}") from None
    if check:
        return current == text, target
    if current != text:
        target.write_text(text, encoding="utf-8")
    return True, target
