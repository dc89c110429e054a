"""schemathesis speaks the old interface: a serializer and a deserializer for `text/xml`, by the one legacy client.

The legacy OpenAPI description (contracts/openapi/legacy.yaml, generated from contracts/riv)
declares its bodies `text/xml` with the JSON Schema of the decoded element. schemathesis draws a
dict from it; the serializer hands that dict to the legacy client, which writes the SOAP envelope
by the XSD (RIV-TA headers, SOAPAction and the caller's credentials included) exactly as every
other caller of the old interface in rxverify does. The deserializer reads the answer back the
same way: the response element as a dict of XML local names (lists where an element may repeat),
a fault as {faultcode, faultstring, detail: {ApplicationException|SystemException: {kod,
meddelande}}}. So response_schema_conformance validates the decoded answer against the schema,
and links read `$response.body#/...` from it.

The serializer is registered on schemathesis's requests transport, whose serializers the guarded
transport of rxverify.contract shares; `bind` says which client (whose credentials) to use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import requests
import schemathesis
from schemathesis import DeserializationContext, Response, SerializationContext
from schemathesis.transport.requests import REQUESTS_TRANSPORT

from rxverify.contracts.riv import Service
from rxverify.legacy.client import LegacyAnswer, LegacyClient

# text/xml is what the platforms answer and legacy.yaml declares; application/xml is the one other media type they
# take. schemathesis has its own XML serializer (from OpenAPI `xml` keywords) for both: ours replaces it.
MEDIA_TYPES = ("text/xml", "application/xml")
ClientFactory = Callable[[requests.Session | None, str], LegacyClient]  # (session, legacy base URL) -> client
_BOUND: list[tuple[ClientFactory, Callable[[], requests.Session]]] = []


def bind(factory: ClientFactory, session: Callable[[], requests.Session]) -> None:
    """Write and read `text/xml` bodies with `factory(None, "")`; probes go through `factory(session(), base)`."""
    _BOUND[:] = [(factory, session)]


def client() -> LegacyClient:
    """The bound client, without a session: it writes requests and reads answers."""
    if not _BOUND:
        raise RuntimeError("no legacy client bound: rxverify.legacy.media.bind() first")
    return _BOUND[0][0](None, "")


def probe(base: str, service: str, data: Mapping[str, Any], headers: Mapping[str, str]) -> LegacyAnswer:
    """A follow-up call a check needs, to the platform at `base`, as the caller whose headers are given."""
    factory, session = _BOUND[0]
    caller = factory(session(), base)
    role = caller.service(service).roles[0]
    return caller.call(service, data, role=role, headers=dict(headers))


def service_of(operation: Any, legacy: LegacyClient) -> Service:
    """The service interaction an OpenAPI operation of legacy.yaml describes."""
    # GET of an endpoint (its WSDL) is `<operationId>.wsdl`: its faults are the same service's
    return legacy.contracts.service(str(operation.definition.raw.get("operationId", "")).removesuffix(".wsdl"))


def role_of(operation: Any) -> str:
    """The ticket role a generated call of the operation is sent as (the first its `x-roles` allow)."""
    roles = operation.definition.raw.get("x-roles") or ["prescriber"]
    return str(roles[0])


def serialize(ctx: SerializationContext, value: Any) -> dict[str, Any]:
    """The generated body as the SOAP request of its service: envelope bytes and the SOAP/credential headers."""
    legacy = client()
    operation = ctx.case.operation
    prepared = legacy.prepare(service_of(operation, legacy), value if isinstance(value, dict) else {},
                              role=role_of(operation))
    return {"data": prepared.body, "headers": prepared.headers}


def answer_of(operation: Any, response: Response) -> LegacyAnswer:
    """A schemathesis response read as an answer of the operation's service."""
    legacy = client()
    content_type = (response.headers.get("content-type") or [""])[0]  # schemathesis: lower-case keys, list values
    return legacy.read(service_of(operation, legacy), response.status_code, content_type, response.content)


def deserialize(ctx: DeserializationContext, response: Response) -> Any:
    """The answer as data: the response element's dict, or the fault's; not SOAP raises (schemathesis reports it)."""
    answer = answer_of(ctx.operation, response)
    if answer.parsed.problem is not None:
        raise ValueError(f"the answer is not SOAP: {answer.parsed.problem}")
    return answer.body


def register() -> None:
    """Register the serializer and deserializer (idempotent)."""
    # on the transport itself, not @schemathesis.serializer: that one sets only the body, and a SOAP request
    # needs its SOAPAction (and the caller's credentials) as headers too
    REQUESTS_TRANSPORT.unregister_serializer(*MEDIA_TYPES)  # matching goes by family: no built-in may come first
    REQUESTS_TRANSPORT.serializer(*MEDIA_TYPES)(serialize)
    schemathesis.deserializer(*MEDIA_TYPES)(deserialize)
