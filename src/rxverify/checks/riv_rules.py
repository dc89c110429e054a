"""The wire rules of the old interface (RIV-TA SOAP 1.1), checked on every answer.

Each rule takes what the legacy client read (a LegacyAnswer) and, where it needs to, what was
sent (the request read back: its XSD problems); it returns nothing when all is well and raises one
RuleViolation naming the operation, the element and what the contract declares:
- the answer is valid against its XSD (the responder schema; a fault's detail by the shared one);
- a successful answer is the service's response element, in its responder namespace;
- a fault only where the contract allows one: an ApplicationException code services.toml lists
  for the operation;
- a fault of the right kind: a business refusal is an ApplicationException (faultcode Client);
  a SystemException (faultcode Server) means the platform failed, and is a failure wherever it
  comes;
- the answer is text/xml (the SOAP 1.1 binding) in UTF-8 or UTF-16 (WS-I Basic Profile R1012), and
  the charset its Content-Type declares is the encoding its body is in (RFC 7303: the header wins
  over the XML declaration, so a client trusting it reads å, ä, ö wrong where they disagree);
- RIV-TA headers: the answer carries no SOAP header entries (nothing is echoed back), and a
  request whose LogicalAddress, ArgosHeader and body are valid is not refused as malformed;
- a request invalid against the XSD is refused (ApplicationException FELAKTIG_BEGARAN, or the
  ticket's EJ_AUTENTISERAD, which is checked first), never answered.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rxverify.checks.failures import Rule, RuleViolation
from rxverify.contracts.riv import RivContracts, Service
from rxverify.legacy import envelope
from rxverify.legacy.client import LegacyAnswer, xsd_problems

MALFORMED = "FELAKTIG_BEGARAN"
NOT_AUTHENTICATED = "EJ_AUTENTISERAD"  # checked before the XSD: an invalid request without a ticket gets this

RULES = {
    r.name: r
    for r in (
        Rule("riv_valid_against_xsd", "every answer is valid against its XSD", "critical",
             "contracts/riv: the responder XSD of the operation; faults: se.apotekensservice_common "
             "ApplicationException/SystemException"),
        Rule("riv_response_element", "the answer is the service's response element in its namespace", "critical",
             "contracts/riv WSDL: output part <Service>Response in urn:riv:...:<Service>Responder:<major>"),
        Rule("riv_fault_allowed", "a fault only where the contract allows one", "critical",
             "services.toml [operations.<Service>] faults"),
        Rule("riv_fault_kind", "a business refusal is an ApplicationException, never a SystemException", "critical",
             "contracts/riv README: Client + ApplicationException for a rule, Server + SystemException for a failure"),
        Rule("riv_content_type", "the answer is text/xml in the charset its Content-Type declares", "critical",
             "SOAP 1.1 HTTP binding (text/xml); WS-I Basic Profile 1.1 R1012 (UTF-8 or UTF-16); RFC 7303 "
             "section 3 (the charset parameter is authoritative)"),
        Rule("riv_answer_without_header", "answers carry no SOAP header", "normal",
             "RIV-TA: LogicalAddress addresses the producer and is not answered back; the WSDL output has no header"),
        Rule("riv_valid_request_accepted", "a valid request with RIV-TA headers is not refused as malformed",
             "critical", "WSDL header parts LogicalAddress and ArgosHeader (optional, accepted when valid); the "
             "responder XSD"),
        Rule("riv_invalid_request_refused", "a request invalid against the XSD is refused with a SOAP fault",
             "normal", "contracts/riv README: body or header invalid against the XSD -> ApplicationException "
             "FELAKTIG_BEGARAN"),
    )
}  # fmt: skip


def _violation(rule: str, answer: LegacyAnswer, message: str, **context: object) -> RuleViolation:
    return RuleViolation(rule=rule, operation=answer.service.operation_id, message=message, context=dict(context))


@dataclass(frozen=True)
class Sent:
    """A request read back from the bytes that went out: whether it was SOAP, its XSD problems, its header entries."""

    soap: bool
    problems: tuple[str, ...]
    headers: tuple[str, ...]
    data: Any = None  # the body element decoded by its XSD model (XML local names), as the platform read it


@lru_cache(maxsize=256)
def _read_sent(service: Service, contracts: RivContracts, body: bytes) -> Sent:
    parsed = envelope.parse(body)
    if parsed.problem is not None or parsed.element is None:
        return Sent(False, (parsed.problem or "no body element",), ())
    problems = [f"body: {p}" for p in xsd_problems(service.schema, parsed.element)]
    if parsed.element.tag != service.request_element:
        problems.append(f"body: {parsed.element.tag} is not {service.request_element}")
    schemas = contracts.header_schemas
    for entry in parsed.header:
        schema = schemas.get(entry.tag)
        if schema is not None:
            problems += [f"header: {p}" for p in xsd_problems(schema, entry)]
    data = envelope.decode(parsed.element, service.element())
    return Sent(True, tuple(problems), tuple(str(e.tag) for e in parsed.header), data)


SOAP_MEDIA = ("text/xml", "application/xml")  # what a SOAP 1.1 request may be sent as (none: taken as text/xml)


def sent(service: Service, contracts: RivContracts, body: bytes | None, method: str = "POST",
         content_type: str | None = None) -> Sent:
    """The request as it went out, read back and checked against the XSD (cached per request)."""
    if method.upper() != "POST":
        return Sent(False, (f"{method.upper()} is no SOAP request (SOAP 1.1 over HTTP is POST)",), ())
    media = (content_type or "text/xml").split(";", 1)[0].strip().lower()
    if media not in SOAP_MEDIA:
        return Sent(False, (f"Content-Type {media} is no SOAP 1.1 request (text/xml)",), ())
    return _read_sent(service, contracts, bytes(body or b""))


def valid_against_xsd(answer: LegacyAnswer) -> None:
    """The answer is valid against its XSD (the response element by its responder schema, a fault's detail by the
    shared schema), and it is SOAP at all."""
    problems = answer.problems
    if problems:
        where = answer.service.responder_xsd.name if answer.fault is None else "se.apotekensservice_common_1.0.xsd"
        raise _violation(
            "riv_valid_against_xsd", answer,
            f"{answer.service.operation_id}: the answer breaks its XSD ({where}): {'; '.join(problems)}",
            problems=problems,
        )  # fmt: skip


def response_element(answer: LegacyAnswer) -> None:
    """A successful answer is `<Service>Response` in the responder namespace of the service's major version."""
    element = answer.element
    if answer.fault is not None or element is None:
        return
    expected = answer.service.response_element
    if element.tag != expected:
        raise _violation(
            "riv_response_element", answer,
            f"{answer.service.operation_id}: received the body element {element.tag}; the contract declares "
            f"{expected} (the WSDL's output part)",
            received=str(element.tag), expected=expected,
        )  # fmt: skip


def fault_allowed(answer: LegacyAnswer) -> None:
    """An ApplicationException's kod is one of the operation's faults (services.toml)."""
    fault = answer.fault
    if fault is None or fault.kind != envelope.APPLICATION:
        return
    allowed = answer.service.semantics.faults
    if fault.kod not in allowed:
        raise _violation(
            "riv_fault_allowed", answer,
            f"{answer.service.operation_id} answered ApplicationException kod {fault.kod!r} ({fault.meddelande!r}); "
            f"the contract allows {', '.join(allowed)}",
            kod=fault.kod, allowed=list(allowed),
        )  # fmt: skip


def fault_kind(answer: LegacyAnswer) -> None:
    """A refusal is an ApplicationException with faultcode Client; a SystemException (Server) is a platform failure."""
    fault = answer.fault
    if fault is None:
        return
    op = answer.service.operation_id
    if fault.code_namespace != envelope.SOAP11 or fault.code not in ("Client", "Server"):
        raise _violation("riv_fault_kind", answer, f"{op} answered faultcode {fault.code!r} (namespace "
                         f"{fault.code_namespace}) to a well-formed request; the contract declares soap:Client or "
                         "soap:Server", faultcode=fault.code)
    if fault.kind == envelope.SYSTEM:
        raise _violation(
            "riv_fault_kind", answer,
            f"{op} answered a SystemException (faultcode {fault.code}, kod {fault.kod}: {fault.meddelande!r}): the "
            "platform failed, or answered a business refusal as a platform failure; the contract declares a refusal "
            "an ApplicationException (soap:Client) and a SystemException only for a platform failure",
            faultcode=fault.code, kind=fault.kind,
        )  # fmt: skip
    if fault.kind == envelope.APPLICATION and fault.code != "Client":
        raise _violation("riv_fault_kind", answer, f"{op} answered an ApplicationException with faultcode "
                         f"{fault.code}; the contract declares soap:Client for it", faultcode=fault.code)
    if fault.kind not in (envelope.APPLICATION, envelope.SYSTEM):
        raise _violation("riv_fault_kind", answer, f"{op} answered a fault whose detail is {fault.kind!r}; the "
                         "contract declares ApplicationException or SystemException", kind=fault.kind)


_XML_DECLARATION = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
SOAP_ENCODINGS = ("utf-8", "utf-16")  # WS-I Basic Profile 1.1 R1012


def _codec(name: str) -> str | None:
    try:
        found = codecs.lookup(name).name
    except LookupError:
        return None
    return "utf-16" if found.startswith("utf-16") else found


def body_encoding(raw: bytes) -> str:
    """The encoding an XML body says it is in: its byte order mark, its XML declaration, else UTF-8."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            return name
    declared = _XML_DECLARATION.match(raw[:200])
    if declared is None:
        return "utf-8"
    name = declared.group(1).decode("ascii")
    return _codec(name) or name


def content_type(answer: LegacyAnswer) -> None:
    """text/xml, in UTF-8 or UTF-16, and the Content-Type's charset (when given) is the body's own encoding."""
    op = answer.service.operation_id
    media, _, parameters = answer.content_type.partition(";")
    if media.strip().lower() != "text/xml":
        shown = media.strip() or "without a Content-Type"
        raise _violation("riv_content_type", answer, f"{op}: the answer is {shown}; SOAP 1.1 over HTTP is text/xml",
                         content_type=answer.content_type)
    charset = next((v.strip().strip('"') for k, _, v in (p.partition("=") for p in parameters.split(";"))
                    if k.strip().lower() == "charset"), None)
    body = body_encoding(answer.raw)
    if charset is not None and _codec(charset) != body:
        raise _violation(
            "riv_content_type", answer,
            f"{op}: the answer's Content-Type declares charset {charset}, its body is {body} (its XML declaration, "
            "byte order mark or XML's default); the header is authoritative (RFC 7303), so å, ä, ö read wrong",
            charset=charset, body=body,
        )  # fmt: skip
    if (_codec(charset) if charset else body) not in SOAP_ENCODINGS:
        raise _violation("riv_content_type", answer, f"{op}: the answer is in {charset or body}; WS-I Basic Profile "
                         "R1012 allows UTF-8 or UTF-16", charset=charset or body)


def answer_without_header(answer: LegacyAnswer) -> None:
    """The answer's envelope has no SOAP header entries: RIV-TA echoes nothing back."""
    header = answer.parsed.header
    if header:
        raise _violation(
            "riv_answer_without_header", answer,
            f"{answer.service.operation_id}: the answer carries SOAP header entries "
            f"{', '.join(str(e.tag) for e in header)}; the WSDL's output has none (nothing is echoed)",
        )  # fmt: skip


def valid_request_accepted(answer: LegacyAnswer, request: Sent) -> None:
    """A request valid against the XSD (body, LogicalAddress, ArgosHeader) is not refused as malformed."""
    fault = answer.fault
    if not request.soap or request.problems or fault is None or fault.kod != MALFORMED:
        return
    carried = [h.rpartition("}")[2] for h in request.headers] or ["no SOAP header"]
    raise _violation(
        "riv_valid_request_accepted", answer,
        f"{answer.service.operation_id} refused a request that is valid against its XSD (headers: "
        f"{', '.join(carried)}) as {MALFORMED}: {fault.meddelande!r}",
        headers=carried,
    )  # fmt: skip


def invalid_request_refused(answer: LegacyAnswer, request: Sent) -> None:
    """A request that is no SOAP envelope gets a soap:Client fault; one invalid against the XSD an
    ApplicationException FELAKTIG_BEGARAN (or, without a valid ticket, EJ_AUTENTISERAD); neither an answer."""
    fault = answer.fault
    if not request.soap:
        if fault is None or fault.code != "Client" or fault.code_namespace != envelope.SOAP11:
            got = f"faultcode {fault.code}" if fault is not None else f"HTTP {answer.status} without a SOAP fault"
            raise _violation("riv_invalid_request_refused", answer,
                             f"{answer.service.operation_id} gave {got} to a request that is not a SOAP envelope "
                             f"({request.problems[0]}); the contract declares a soap:Client fault")
        return
    if not request.problems:
        return
    if fault is not None and fault.kind == envelope.APPLICATION and fault.kod in (MALFORMED, NOT_AUTHENTICATED):
        return
    got = f"the fault {fault.kind} {fault.kod}" if fault is not None else f"HTTP {answer.status} with an answer"
    raise _violation(
        "riv_invalid_request_refused", answer,
        f"{answer.service.operation_id} gave {got} to a request invalid against its XSD "
        f"({'; '.join(request.problems[:2])}); the contract declares ApplicationException {MALFORMED}",
        problems=list(request.problems),
    )  # fmt: skip


ANSWER_RULES = (valid_against_xsd, response_element, fault_allowed, fault_kind, content_type, answer_without_header)
REQUEST_RULES = (valid_request_accepted, invalid_request_refused)


def check_answer(answer: LegacyAnswer, request: Sent | None = None) -> None:
    """Every wire rule on one answer (and its request, when known); the first broken one raises.

    The answer rules judge answers to SOAP requests: a request that was no envelope at all is
    judged by invalid_request_refused alone.
    """
    if request is None or request.soap:
        for rule in ANSWER_RULES:
            rule(answer)
    if request is not None:
        for request_rule in REQUEST_RULES:
            request_rule(answer, request)
