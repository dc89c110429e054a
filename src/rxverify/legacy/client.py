"""The one client of the old interface: RIV-TA SOAP 1.1 requests from dicts, answers read by the XSD.

Every part of rxverify that talks to the old interface goes through here: the contract suite
(directly, and through schemathesis's serializer and deserializer for `text/xml`), the
differential's lanes, the verification plans, the load users (which send the prepared request
through Locust's guarded client) and the test helpers. A request is prepared once (`prepare`):
the endpoint `<legacy base>/<Service>Responder/V<major>`, SOAPAction quoted as Apache CXF sends
it, the RIV-TA headers LogicalAddress and ArgosHeader, and the caller's credentials, put on the
request in one place (`authorize`). It leaves through the guarded session the client was given.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import requests
from lxml import etree

from rxverify import __version__
from rxverify.contracts.riv import RivContracts, Service
from rxverify.legacy import envelope, shape
from rxverify.legacy.envelope import Fault, Parsed

SYSTEM_NAME = "rxverify"
DOMAIN_PREFIXES = ("common", "or", "lf", "axs")  # services.toml [namespaces] declared on every body element
REQUEST_TIMEOUT_S = 30.0  # one answer of the old interface; a platform that takes longer has failed the call


class Credentials(Protocol):
    """Where a caller's ticket comes from (TicketMinter, EnvironmentTickets, or a test's own)."""

    def ticket(self, role: str, index: int = 0) -> str | None:
        """The ticket of test actor `index` of `role` (None: send none)."""
        ...


class NoTicket:
    """Credentials that put no ticket on a request (the security tests' caller without one)."""

    def ticket(self, role: str, index: int = 0) -> str | None:
        """No ticket."""
        return None


@dataclass(frozen=True)
class Prepared:
    """A request of the old interface, ready for any HTTP client: where, which headers, which bytes."""

    service: Service
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LegacyAnswer:
    """What a service answered: the status, the fault or the response element, and how it reads against the XSD."""

    service: Service
    status: int
    content_type: str
    raw: bytes
    parsed: Parsed
    request: Prepared | None = None
    _contracts: RivContracts | None = field(default=None, repr=False)

    @property
    def element(self) -> etree._Element | None:
        """The body element (the response element, or soap:Fault)."""
        return self.parsed.element

    @property
    def fault(self) -> Fault | None:
        """The SOAP fault, when the answer is one."""
        return self.parsed.fault

    @property
    def ok(self) -> bool:
        """A response element, no fault."""
        return self.parsed.problem is None and self.parsed.fault is None

    @property
    def kod(self) -> str | None:
        """The fault's code (ApplicationException or SystemException kod), if any."""
        return self.parsed.fault.kod if self.parsed.fault is not None else None

    @cached_property
    def body(self) -> Any:
        """The response element as data (XML local names, lists where it may repeat); the fault as data."""
        if self.parsed.fault is not None:
            return self.parsed.fault.as_dict()
        if self.parsed.element is None:
            return None
        return envelope.decode(self.parsed.element, self.service.element(response=True))

    @cached_property
    def json(self) -> Any:
        """The answer in today's JSON shape (a fault as {kod, meddelande})."""
        fault = self.parsed.fault
        if fault is not None:
            return {k: v for k, v in (("kod", fault.kod), ("meddelande", fault.meddelande)) if v is not None}
        assert self._contracts is not None
        return shape.to_json(self.body, self._contracts.names, self.service.semantics.lists)

    @property
    def rest_status(self) -> int:
        """The status the REST rendering gave this answer (services.toml [faults.rest_status]; 500 a failure)."""
        fault = self.parsed.fault
        if fault is None:
            return self.status
        if fault.kind == envelope.APPLICATION and self._contracts is not None and fault.kod:
            return self._contracts.rest_status.get(fault.kod, 400)
        return 500

    @cached_property
    def problems(self) -> list[str]:
        """Where the answer breaks its XSD (the response element by the responder schema, a fault's detail by
        the shared schema); empty when it is valid."""
        parsed = self.parsed
        if parsed.problem is not None:
            return [parsed.problem]
        assert parsed.element is not None
        if parsed.fault is not None:
            if parsed.fault.detail is None or self._contracts is None:
                return []
            return xsd_problems(self._contracts.common, parsed.fault.detail)
        return xsd_problems(self.service.schema, parsed.element)


def xsd_problems(schema: Any, element: etree._Element, limit: int = 5) -> list[str]:
    """The first `limit` reasons an element is invalid against `schema` (path and reason), empty if valid."""
    out = []
    for error in schema.iter_errors(element):
        out.append(f"{error.path or etree.QName(element).localname}: {error.reason}")
        if len(out) >= limit:
            break
    return out


def _actor(actors: Any, role: str, index: int) -> Mapping[str, Any] | None:
    pool = getattr(actors, "prescribers" if role == "prescriber" else "pharmacies", None) if actors else None
    return pool[index % len(pool)] if pool else None


class LegacyClient:
    """The old interface of one platform, called through a guarded session."""

    def __init__(self, session: requests.Session | None, base_url: str, contracts: RivContracts,
                 credentials: Credentials | None, actors: Any = None) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.contracts = contracts
        self.credentials = credentials
        # the test actors (rxverify.target.credentials.TestActors), for the ArgosHeader a caller sends
        self.actors = actors if actors is not None else getattr(credentials, "actors", None)

    def with_credentials(self, credentials: Credentials | None) -> LegacyClient:
        """The same client with other credentials (a forged or expired ticket, none at all)."""
        return LegacyClient(self.session, self.base_url, self.contracts, credentials, self.actors)

    def service(self, name: str) -> Service:
        """A service by operation id or name."""
        return self.contracts.service(name)

    # ---- the request ----

    def authorize(self, headers: dict[str, str], soap_header: list[etree._Element], role: str, actor: int) -> None:
        """Put the caller's credentials on a request: the one place where that happens.

        Under Säker åtkomst 17.1 the caller's SAMBI assertion goes into `soap_header` as
        `wsse:Security` (credentials with a `security_header`: rxverify.target.callers); the JWT
        tickets of the platforms' `--auth jwt` are the HTTP Authorization header.
        """
        if self.credentials is None:
            return
        security = getattr(self.credentials, "security_header", None)
        element = security(role, actor) if security is not None else None
        if element is not None:
            soap_header.append(element)
        ticket = self.credentials.ticket(role, actor)
        if ticket:
            headers["Authorization"] = f"Bearer {ticket}"

    def riv_headers(self, service: Service, role: str, actor: int) -> list[etree._Element]:
        """The RIV-TA header entries a caller sends: LogicalAddress and the ArgosHeader of the acting test actor."""
        ns = self.contracts.namespaces
        out = []
        logical = f"{{{ns['logical_address']}}}LogicalAddress"
        if logical in service.header_parts and self.contracts.logical_address:
            node = etree.Element(logical, nsmap={"itr": ns["logical_address"]})
            node.text = self.contracts.logical_address
            out.append(node)
        argos = f"{{{ns['argos']}}}ArgosHeader"
        if argos in service.header_parts:
            person = _actor(self.actors, role, actor) or {}
            fields = {
                "forskrivarkod": person.get("forskrivarkod"),
                "arbetsplatskod": person.get("careUnit"),
                "rollnamn": role,
                "requestId": str(uuid.uuid4()),
                "hsaID": person.get("hsaId"),
                "systemnamn": SYSTEM_NAME,
                "systemversion": __version__,
            }
            decl = self.contracts.header_schemas[argos].elements["ArgosHeader"]
            out.append(envelope.render(decl, {k: v for k, v in fields.items() if v}, {"argos": ns["argos"]}))
        return out

    def body_element(self, service: Service, data: Mapping[str, Any] | etree._Element) -> etree._Element:
        """The request's body element: `data` written by the XSD model (or an element taken as it is)."""
        ns = self.contracts.namespaces
        shared: dict[str | None, str] = {p: ns[p] for p in DOMAIN_PREFIXES if p in ns}
        return envelope.render(service.element(), data, {"rsp": service.namespace, **shared})

    def prepare(self, service: str | Service, data: Mapping[str, Any] | etree._Element, *, role: str, actor: int = 0,
                headers: Mapping[str, str | None] | None = None, riv_headers: bool = True) -> Prepared:
        """The request of `service` with `data` (XML local names, any key order), as `role`'s test actor `actor`.

        `headers` are HTTP headers laid over the prepared ones (a value None removes one).
        """
        svc = service if isinstance(service, Service) else self.contracts.service(service)
        http = {"Content-Type": envelope.CONTENT_TYPE, "SOAPAction": f'"{svc.soap_action}"'}
        soap_header = self.riv_headers(svc, role, actor) if riv_headers else []
        self.authorize(http, soap_header, role, actor)
        for name, value in (headers or {}).items():
            for present in [k for k in http if k.lower() == name.lower()]:
                del http[present]
            if value is not None:
                http[name] = value
        body = envelope.envelope(self.body_element(svc, data), soap_header)
        return Prepared(svc, self.base_url + svc.endpoint, http, body)

    # ---- sending and reading ----

    def send(self, prepared: Prepared, timeout: float = REQUEST_TIMEOUT_S) -> LegacyAnswer:
        """POST a prepared request through the guarded session; the answer read."""
        if self.session is None:
            raise ValueError("this LegacyClient has no session: it only prepares and reads")
        r = self.session.post(prepared.url, data=prepared.body, headers=prepared.headers, timeout=timeout)
        answer = self.read(prepared.service, r.status_code, r.headers.get("content-type", ""), r.content)
        answer.request = prepared
        return answer

    def call(self, service: str | Service, data: Mapping[str, Any] | etree._Element, *, role: str, actor: int = 0,
             headers: Mapping[str, str | None] | None = None, riv_headers: bool = True,
             timeout: float = REQUEST_TIMEOUT_S) -> LegacyAnswer:
        """Call a service with `data` as `role`'s test actor `actor`; the answer, read by the XSD."""
        prepared = self.prepare(service, data, role=role, actor=actor, headers=headers, riv_headers=riv_headers)
        return self.send(prepared, timeout)

    def read(self, service: str | Service, status: int, content_type: str, content: bytes) -> LegacyAnswer:
        """An answer of `service` (status, Content-Type, body) read as SOAP."""
        svc = service if isinstance(service, Service) else self.contracts.service(service)
        return LegacyAnswer(svc, status, content_type, content, envelope.parse(content), None, self.contracts)

    # ---- today's JSON shape ----

    def to_json(self, service: str | Service, data: Any) -> Any:
        """XML-named data of a service's answer in today's JSON shape."""
        svc = service if isinstance(service, Service) else self.contracts.service(service)
        return shape.to_json(data, self.contracts.names, svc.semantics.lists)

    def from_json(self, service: str | Service, data: Any) -> Any:
        """JSON-shaped data (a request as the REST rendering took it) under the XML names."""
        svc = service if isinstance(service, Service) else self.contracts.service(service)
        return shape.from_json(data, self.contracts.names, svc.semantics.lists)
