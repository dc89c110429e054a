"""The SOAP layer of both platforms: tolerant as real stacks are, and a SOAP fault for everything else.

Tolerance: any namespace prefix, an XML declaration or none, whitespace between elements, a
quoted, bare, empty or absent SOAPAction, any spelling of the charset parameter. Refusals: a
malformed message is a Client fault without detail; SOAP 1.2 a VersionMismatch; an unknown
mandatory header a MustUnderstand; a well-formed request the contract refuses an
ApplicationException; a platform failure a SystemException. Never HTML, JSON or a stack trace.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree
from starlette.applications import Starlette

from refplatform.common.legacy import LegacyOperation
from refplatform.common.riv import load_riv
from refplatform.common.soap_binding import SoapBinding
from refplatform.common.tickets import Actor

from .conftest import CONTRACTS, RunningPlatform, start_platform
from .soap_calls import (
    COMMON,
    LOGICAL_ADDRESS,
    NS,
    SERVICES,
    SOAP11,
    Answer,
    bare_fault,
    body,
    call,
    envelope,
    ok,
    post,
    prescription,
    refused,
    url,
)

Mint = Callable[..., dict[str, str]]
AKTUELLA = "HamtaAktuellaOrdinationer"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
ARGOS = NS["argos"]


def aktuella(pid: str, prefix: str = "r") -> str:
    return body(AKTUELLA, {"personnummer": pid}, prefix=prefix)


def pretty(payload: bytes) -> bytes:
    """The same message indented, as a person or a logging proxy writes it."""
    return etree.tostring(etree.fromstring(payload), pretty_print=True, xml_declaration=True, encoding="utf-8")


TOLERATED: dict[str, Callable[[str], tuple[bytes, dict[str, str], str | None, str]]] = {
    # case -> (payload, extra headers, SOAPAction ("quoted" = the contract's, quoted), Content-Type)
    "SOAP-ENV prefix": lambda pid: (envelope(aktuella(pid), prefix="SOAP-ENV"), {}, "quoted", "text/xml"),
    "default namespaces": lambda pid: (
        f'<Envelope xmlns="{SOAP11}"><Body><HamtaAktuellaOrdinationer xmlns="{SERVICES[AKTUELLA]["namespace"]}">'
        f"<personnummer>{pid}</personnummer></HamtaAktuellaOrdinationer></Body></Envelope>".encode(),
        {}, "quoted", "text/xml; charset=utf-8"),
    "body prefix x": lambda pid: (envelope(aktuella(pid, prefix="x")), {}, "quoted", "text/xml; charset=utf-8"),
    "no XML declaration": lambda pid: (envelope(aktuella(pid), declaration=False), {}, "quoted", "text/xml"),
    "no SOAP header": lambda pid: (envelope(aktuella(pid), header_xml=None), {}, "quoted", "text/xml"),
    "indented": lambda pid: (pretty(envelope(aktuella(pid))), {}, "quoted", "text/xml; charset=utf-8"),
    "bare SOAPAction": lambda pid: (envelope(aktuella(pid)), {}, SERVICES[AKTUELLA]["soap_action"], "text/xml"),
    "empty SOAPAction": lambda pid: (envelope(aktuella(pid)), {}, '""', "text/xml"),
    "no SOAPAction": lambda pid: (envelope(aktuella(pid)), {}, None, "text/xml"),
    "charset UTF-8": lambda pid: (envelope(aktuella(pid)), {}, "quoted", "text/xml;charset=UTF-8"),
    "charset quoted": lambda pid: (envelope(aktuella(pid)), {}, "quoted", 'text/xml; charset="utf-8"'),
    "no Content-Type charset, BOM": lambda pid: (b"\xef\xbb\xbf" + envelope(aktuella(pid)), {}, "quoted",
                                                  "text/xml"),
    "charset iso-8859-1 over a utf-8 declaration": lambda pid: (
        envelope(aktuella(pid)).decode().encode("iso-8859-1"), {}, "quoted", "text/xml; charset=ISO-8859-1"),
    "ArgosHeader and an unknown optional header": lambda pid: (envelope(aktuella(pid), header_xml=(
        f'{LOGICAL_ADDRESS}<a:ArgosHeader xmlns:a="{ARGOS}"><a:requestId>r-1</a:requestId>'
        "<a:rollnamn>AP</a:rollnamn><a:systemnamn>unit</a:systemnamn></a:ArgosHeader>"
        '<t:Trace xmlns:t="urn:example:trace">abc</t:Trace>')), {}, "quoted", "text/xml"),
    "extension with foreign content": lambda pid: (envelope(
        aktuella(pid).replace("</r:personnummer>", '</r:personnummer><r:extension><e:x xmlns:e="urn:example:ext">'
                              "1</e:x></r:extension>")), {}, "quoted", "text/xml"),
}


@pytest.mark.parametrize("case", sorted(TOLERATED))
def test_tolerated_spellings_of_one_request(case: str, legacy_platform: RunningPlatform, mint: Mint,
                                            patients: list[dict[str, Any]], http: requests.Session) -> None:
    pid = patients[40]["id"]
    payload, headers, action, content_type = TOLERATED[case](pid)
    answer = post(http, legacy_platform, AKTUELLA, payload, {**mint("pharmacy", 0), **headers}, action,
                  content_type)
    assert ok(answer)["personnummer"] == pid


def test_latin1_text_arrives_as_sent(legacy_platform: RunningPlatform, mint: Mint,
                                     patients: list[dict[str, Any]], http: requests.Session) -> None:
    """A charset parameter other than UTF-8 decodes the text (å ä ö survive)."""
    fields = prescription(patients[41]["id"], doseringstext="1 tablett vid behov, högst 3 gånger per dygn")
    payload = envelope(body("SkapaOrdinationVard", fields), declaration=False).decode().encode("iso-8859-1")
    answer = post(http, legacy_platform, "SkapaOrdinationVard", payload, mint("prescriber", 0),
                  content_type="text/xml; charset=iso-8859-1")
    assert ok(answer)["doseringstext"] == fields["doseringstext"]


UNREADABLE: dict[str, tuple[bytes, str, str]] = {
    # case -> (payload, Content-Type, faultcode)
    "not XML": (b"personnummer=191212121212", "text/xml", "soap:Client"),
    "truncated": (envelope(aktuella("PID"))[:-20], "text/xml", "soap:Client"),
    "mismatched tags": (b"<soapenv:Envelope xmlns:soapenv='" + SOAP11.encode() + b"'><soapenv:Body></x>"
                        b"</soapenv:Envelope>", "text/xml", "soap:Client"),
    "not an envelope": (aktuella("PID").encode(), "text/xml", "soap:Client"),
    "two body elements": (envelope(aktuella("PID") + aktuella("PID")), "text/xml", "soap:Client"),
    "empty body": (envelope(""), "text/xml", "soap:Client"),
    "a DTD": (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]>' + envelope(aktuella("PID"),
                                                                             declaration=False),
              "text/xml", "soap:Client"),
    "SOAP 1.2 envelope": (envelope(aktuella("PID")).replace(SOAP11.encode(), SOAP12.encode()), "text/xml",
                          "soap:VersionMismatch"),
    "SOAP 1.2 media type": (envelope(aktuella("PID")), "application/soap+xml; charset=utf-8",
                            "soap:VersionMismatch"),
    "JSON": (json.dumps({"personnummer": "PID"}).encode(), "application/json", "soap:Client"),
    "unknown charset": (envelope(aktuella("PID")), "text/xml; charset=x-no-such", "soap:Client"),
    "unknown mandatory header": (envelope(aktuella("PID"), header_xml=(
        f'<t:Trace xmlns:t="urn:example:trace" xmlns:soapenv="{SOAP11}" soapenv:mustUnderstand="1">a</t:Trace>')),
        "text/xml", "soap:MustUnderstand"),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_messages_are_faults_without_detail(case: str, legacy_platform: RunningPlatform, mint: Mint,
                                                       patients: list[dict[str, Any]],
                                                       http: requests.Session) -> None:
    payload, content_type, code = UNREADABLE[case]
    payload = payload.replace(b"PID", patients[40]["id"].encode())
    answer = post(http, legacy_platform, AKTUELLA, payload, mint("pharmacy", 0), content_type=content_type)
    bare_fault(answer, code)


def refusal_of(legacy_platform: RunningPlatform, http: requests.Session, ticket: dict[str, str], payload: bytes,
               action: str | None = "quoted") -> str:
    return refused(post(http, legacy_platform, AKTUELLA, payload, ticket, action), "FELAKTIG_BEGARAN")


def test_wrong_namespace_version_action_or_element(legacy_platform: RunningPlatform, mint: Mint,
                                                   patients: list[dict[str, Any]], http: requests.Session) -> None:
    """The body element of another major version, another service's element or SOAPAction: FELAKTIG_BEGARAN."""
    pid, ticket = patients[40]["id"], mint("pharmacy", 0)
    v4 = SERVICES[AKTUELLA]["namespace"].replace(":5", ":4")
    message = refusal_of(legacy_platform, http, ticket, envelope(body(AKTUELLA, {"personnummer": pid},
                                                                      namespace=v4)))
    assert "Responder:4" in message
    other = envelope(body("HamtaPatientInfo", {"personnummer": pid}))
    refusal_of(legacy_platform, http, ticket, other, action=None)
    patient_info_action = SERVICES["HamtaPatientInfo"]["soap_action"]
    refusal_of(legacy_platform, http, ticket, envelope(aktuella(pid)), action=f'"{patient_info_action}"')
    refusal_of(legacy_platform, http, ticket, envelope(aktuella(pid)),
               action='"' + SERVICES[AKTUELLA]["soap_action"].replace(":5:", ":4:") + '"')


def test_requests_the_xsd_refuses(legacy_platform: RunningPlatform, mint: Mint, patients: list[dict[str, Any]],
                                  http: requests.Session) -> None:
    """Facets, order, required and unknown elements, and the declared headers: FELAKTIG_BEGARAN."""
    pid, prescriber = patients[40]["id"], mint("prescriber", 0)
    skapa = "SkapaOrdinationVard"
    cases = {
        "pattern": body(AKTUELLA, {"personnummer": pid[:-1]}),
        "unknown element": body(AKTUELLA, {"personnummer": pid, "ordinationsId": "x"}),
        "missing": body(AKTUELLA, {}),
        "value with blanks": body(AKTUELLA, {"personnummer": f" {pid}"}),
        "maxInclusive": body(skapa, prescription(pid, antalUttag=13)),
        "enumeration": body(skapa, prescription(pid, forskrivningstyp="FAX")),
        "order": body(skapa, dict(reversed(list(prescription(pid).items())))),
        "integer spelling": body(skapa, prescription(pid, antalForpackningar="1.0")),
        "text pattern": body(skapa, prescription(pid, doseringstext=" leading blank")),
        "date with zone": body(skapa, prescription(pid, giltigTom="2030-01-01Z")),
    }
    for case, xml in cases.items():
        service = skapa if f":{skapa}" in xml else AKTUELLA
        ticket = prescriber if service == skapa else mint("pharmacy", 0)
        answer = post(http, legacy_platform, service, envelope(xml), ticket)
        assert refused(answer, "FELAKTIG_BEGARAN"), case
    bad_argos = f'<a:ArgosHeader xmlns:a="{ARGOS}"><a:okand>1</a:okand></a:ArgosHeader>'
    refusal_of(legacy_platform, http, mint("pharmacy", 0), envelope(aktuella(pid), header_xml=bad_argos))
    refusal_of(legacy_platform, http, mint("pharmacy", 0), envelope(aktuella(pid),
                                                                    header_xml=LOGICAL_ADDRESS * 2))


def test_the_ticket_comes_before_the_body(legacy_platform: RunningPlatform, patients: list[dict[str, Any]],
                                          http: requests.Session) -> None:
    """As on REST: without a ticket even an invalid body is EJ_AUTENTISERAD."""
    answer = post(http, legacy_platform, AKTUELLA, envelope(body(AKTUELLA, {"personnummer": "1"})), {})
    refused(answer, "EJ_AUTENTISERAD")


def test_unknown_endpoint_version_and_methods(legacy_platform: RunningPlatform, mint: Mint,
                                              patients: list[dict[str, Any]], http: requests.Session) -> None:
    """V4 is not served, GET without ?wsdl and PUT are not SOAP calls: faults, never HTML or JSON."""
    endpoint = url(legacy_platform, AKTUELLA)
    r = http.post(endpoint.replace("/V5", "/V4"), data=envelope(aktuella(patients[40]["id"])),
                  headers={**mint("pharmacy", 0), "Content-Type": "text/xml"})
    assert r.headers["content-type"].startswith("text/xml"), r.text
    refused(Answer(AKTUELLA, r, etree.fromstring(r.content)), "FELAKTIG_BEGARAN", status=404)
    for method in ("GET", "PUT", "DELETE"):
        r = http.request(method, endpoint)
        assert r.status_code in (404, 405) and r.headers["content-type"].startswith("text/xml"), (method, r.text)
        faultcode = etree.fromstring(r.content).findtext(f".//{{{SOAP11}}}Fault/faultcode")
        assert faultcode == "soap:Client", r.text
    r = http.get(endpoint + "?xsd=../../../services.toml")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/xml")


def test_wsdl_and_its_schemas_are_served(legacy_platform: RunningPlatform, http: requests.Session) -> None:
    """GET ?wsdl: the contract's WSDL, its imports pointing at ?xsd= of the same endpoint, every one served."""
    for service, spec in SERVICES.items():
        endpoint = url(legacy_platform, service)
        r = http.get(endpoint + "?wsdl")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml"), r.text
        wsdl = etree.fromstring(r.content)
        mine = etree.parse(str(CONTRACTS / "riv" / spec["wsdl"])).getroot()
        assert wsdl.get("targetNamespace") == mine.get("targetNamespace")
        [address] = wsdl.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address")
        assert address.get("location") == endpoint
        pending = [wsdl]
        seen = set()
        while pending:
            document = pending.pop()
            for node in document.iter("{http://www.w3.org/2001/XMLSchema}import"):
                location = node.get("schemaLocation")
                assert location.startswith(endpoint + "?xsd="), location
                if location not in seen:
                    seen.add(location)
                    got = http.get(location)
                    assert got.status_code == 200, location
                    pending.append(etree.fromstring(got.content))
        assert len(seen) >= 4, service  # responder, common, registry, Argos (and the domain's own)


def test_a_platform_failure_is_a_system_exception(tmp_path: Path) -> None:
    """An operation that crashes answers SystemException (faultcode Server), with no trace of the crash."""
    contracts = load_riv(CONTRACTS)

    def crash(actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("secret internal detail")

    ops = {name: LegacyOperation(("prescriber", "pharmacy"), crash) for name in contracts.services}
    binding = SoapBinding(contracts, ops, lambda operation, headers, envelope_: Actor("pharmacy", "a", gln="1"))
    app = Starlette(routes=binding.routes())
    status, headers, content = asyncio.run(_asgi_post(app, "/legacy/HamtaAktuellaOrdinationerResponder/V5",
                                                      envelope(aktuella("191212121212"))))
    assert status == 500 and headers[b"content-type"].startswith(b"text/xml")
    assert b"secret internal detail" not in content and b"Traceback" not in content
    fault = etree.fromstring(content).find(f".//{{{SOAP11}}}Fault")
    assert fault is not None and fault.findtext("faultcode") == "soap:Server"
    assert fault.find(f"detail/{{{COMMON}}}SystemException/{{{COMMON}}}kod").text == "TJANSTEFEL"


async def _asgi_post(app: Any, path: str, payload: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """One POST through an ASGI app in process (no HTTP client library needed)."""
    sent: list[dict[str, Any]] = []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"text/xml"), (b"host", b"127.0.0.1")], "server": ("127.0.0.1", 80),
             "client": ("127.0.0.1", 1)}
    messages = [{"type": "http.request", "body": payload, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), content


def test_business_refusals_and_tickets_are_application_exceptions(legacy_platform: RunningPlatform, mint: Mint,
                                                                   patients: list[dict[str, Any]],
                                                                   http: requests.Session) -> None:
    pid = patients[42]["id"]
    refused(call(http, legacy_platform, "HamtaLakemedelsforteckning", mint("prescriber", 0), personnummer=pid),
            "SAMTYCKE_SAKNAS")
    refused(call(http, legacy_platform, AKTUELLA, {"Authorization": "Basic x"}, personnummer=pid), "EJ_AUTENTISERAD")


def test_an_overloaded_platform_answers_system_exceptions(tmp_path: Path, ticket_key_file: Path, mint: Mint,
                                                          patients: list[dict[str, Any]]) -> None:
    """Over real HTTP: the new platform out of pooled connections (seeded new-503-under-concurrency) fails as
    SOAP, a SystemException with faultcode Server, where its REST rendering answers JSON."""
    platform = start_platform("new", tmp_path / "busy", ticket_key_file, ["new-503-under-concurrency"])
    try:
        payload = envelope(aktuella(patients[43]["id"]))

        def one(_: int) -> Answer:
            with requests.Session() as s:
                return post(s, platform, AKTUELLA, payload, mint("pharmacy", 0))

        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(one, range(24)))
    finally:
        platform.stop()
    failed = [a for a in answers if a.response.status_code != 200]
    assert failed, "no request found the pool exhausted"
    for answer in failed:
        refused(answer, "TJANSTEFEL", kind="SystemException", code="soap:Server")
    assert all(ok(a)["personnummer"] == patients[43]["id"] for a in answers if a.response.status_code == 200)
