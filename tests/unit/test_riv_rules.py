"""Each wire rule of the old interface fails on the fault it exists for and passes on a correct answer."""

from __future__ import annotations

import codecs
from copy import deepcopy
from typing import Any

import pytest
from lxml import etree

from rxverify.checks import riv_rules
from rxverify.checks.failures import RuleViolation
from rxverify.contracts.riv import load_riv
from rxverify.legacy import envelope
from rxverify.legacy.client import LegacyAnswer, LegacyClient
from rxverify.target.credentials import TicketMinter, load_actors

from .conftest import CONTRACTS
from .test_legacy_rules import _ordination

RIV = load_riv(CONTRACTS)
CLIENT = LegacyClient(None, "http://127.0.0.1:9/legacy", RIV,
                      TicketMinter(b"k" * 32, load_actors(CONTRACTS / "testdata" / "test-actors.json")))
COMMON = RIV.namespaces["common"]


def _created() -> etree._Element:
    svc = RIV.service("SkapaOrdinationVard")
    data = CLIENT.from_json(svc, _ordination(status="Makulerad", makuleringsorsak="OVRIGT"))
    return envelope.render(svc.element(response=True), data, {None: svc.namespace, "or": RIV.namespaces["or"]})


def _read(service: str, element: etree._Element, header: list[etree._Element] | None = None) -> LegacyAnswer:
    return CLIENT.read(service, 200, "text/xml; charset=utf-8", envelope.envelope(element, header))


def _fault(kind: str, kod: str, code: str = "Client", service: str = "GodkannUttag") -> LegacyAnswer:
    raw = (f'<s:Envelope xmlns:s="{envelope.SOAP11}"><s:Body><s:Fault><faultcode>s:{code}</faultcode>'
           f'<faultstring>nej</faultstring><detail><c:{kind} xmlns:c="{COMMON}"><c:kod>{kod}</c:kod>'
           f"<c:meddelande>nej</c:meddelande></c:{kind}></detail></s:Fault></s:Body></s:Envelope>").encode()
    return CLIENT.read(service, 500, "text/xml", raw)


def _broken(rule: str, call: Any) -> RuleViolation:
    with pytest.raises(RuleViolation) as caught:
        call()
    assert caught.value.rule == rule
    return caught.value


def test_valid_against_xsd() -> None:
    riv_rules.valid_against_xsd(_read("SkapaOrdinationVard", _created()))
    unrenamed = _created()
    for node in unrenamed.iter("{*}ordinationsId"):
        node.tag = f"{{{etree.QName(node).namespace}}}ordinationId"  # the REST/JSON name on the wire
    v = _broken("riv_valid_against_xsd", lambda: riv_rules.valid_against_xsd(_read("SkapaOrdinationVard", unrenamed)))
    assert "SkapaOrdinationVard" in v.message and "ordinationId" in v.message
    swapped = _created()
    issued = swapped.find(f"{{{RIV.service('SkapaOrdinationVard').namespace}}}utfardandedatum")
    assert issued is not None
    issued.addprevious(issued.getnext())  # giltigTom before utfardandedatum: the sequence says otherwise
    v = _broken("riv_valid_against_xsd", lambda: riv_rules.valid_against_xsd(_read("SkapaOrdinationVard", swapped)))
    assert "giltigTom" in v.message
    riv_rules.valid_against_xsd(_fault("ApplicationException", "MAKULERAD"))
    _broken("riv_valid_against_xsd", lambda: riv_rules.valid_against_xsd(_fault("ApplicationException", "NEJ")))
    not_soap = CLIENT.read("SkapaOrdinationVard", 500, "text/html", b"<html>Internal Server Error</html>")
    _broken("riv_valid_against_xsd", lambda: riv_rules.valid_against_xsd(not_soap))


def test_response_element() -> None:
    riv_rules.response_element(_read("SkapaOrdinationVard", _created()))
    element = _created()
    wrong = RIV.service("SkapaOrdinationVard").namespace.replace(":6", ":5")
    for node in (element, *element):
        node.tag = f"{{{wrong}}}{etree.QName(node).localname}"
    v = _broken("riv_response_element", lambda: riv_rules.response_element(_read("SkapaOrdinationVard", element)))
    assert "SkapaOrdinationVardResponder:5" in v.message and "SkapaOrdinationVardResponder:6" in v.message
    other = RIV.service("HamtaPatientInfo")
    foreign = envelope.render(other.element(response=True), {}, {None: other.namespace})
    _broken("riv_response_element", lambda: riv_rules.response_element(_read("SkapaOrdinationVard", foreign)))


def test_fault_allowed() -> None:
    riv_rules.fault_allowed(_fault("ApplicationException", "MAKULERAD"))
    v = _broken("riv_fault_allowed", lambda: riv_rules.fault_allowed(_fault("ApplicationException", "SAMTYCKE_SAKNAS")))
    assert "GodkannUttag" in v.message and "SAMTYCKE_SAKNAS" in v.message


def test_fault_kind() -> None:
    riv_rules.fault_kind(_fault("ApplicationException", "MAKULERAD"))
    v = _broken("riv_fault_kind", lambda: riv_rules.fault_kind(_fault("SystemException", "TJANSTEFEL", "Server")))
    assert "SystemException" in v.message and "ApplicationException" in v.message
    _broken("riv_fault_kind", lambda: riv_rules.fault_kind(_fault("ApplicationException", "MAKULERAD", "Server")))
    _broken("riv_fault_kind", lambda: riv_rules.fault_kind(_fault("ApplicationException", "MAKULERAD",
                                                                  "VersionMismatch")))
    _broken("riv_fault_kind", lambda: riv_rules.fault_kind(_fault("Okand", "X")))


def test_answer_without_header() -> None:
    riv_rules.answer_without_header(_read("SkapaOrdinationVard", _created()))
    echoed = etree.Element(f"{{{RIV.namespaces['logical_address']}}}LogicalAddress")
    echoed.text = RIV.logical_address
    v = _broken("riv_answer_without_header",
                lambda: riv_rules.answer_without_header(_read("SkapaOrdinationVard", _created(), [echoed])))
    assert "LogicalAddress" in v.message


def _sent(service: str, data: dict[str, Any], riv_headers: bool = True) -> riv_rules.Sent:
    prepared = CLIENT.prepare(service, data, role="pharmacy", riv_headers=riv_headers)
    return riv_rules.sent(prepared.service, RIV, prepared.body, "POST", prepared.headers["Content-Type"])


def test_valid_request_accepted() -> None:
    valid = _sent("HamtaPatientInfo", {"personnummer": "191212121212"})
    assert valid.soap and not valid.problems and len(valid.headers) == 2
    refused = _fault("ApplicationException", "FELAKTIG_BEGARAN", service="HamtaPatientInfo")
    v = _broken("riv_valid_request_accepted", lambda: riv_rules.valid_request_accepted(refused, valid))
    assert "LogicalAddress" in v.message and "ArgosHeader" in v.message
    riv_rules.valid_request_accepted(_fault("ApplicationException", "PATIENT_SAKNAS", service="HamtaPatientInfo"),
                                     valid)
    riv_rules.valid_request_accepted(refused, _sent("HamtaPatientInfo", {"personnummer": "x"}))  # it was invalid


def test_invalid_request_refused() -> None:
    invalid = _sent("HamtaPatientInfo", {"personnummer": "not a number"})
    assert invalid.problems
    riv_rules.invalid_request_refused(_fault("ApplicationException", "FELAKTIG_BEGARAN", service="HamtaPatientInfo"),
                                      invalid)
    info = RIV.service("HamtaPatientInfo")
    answered = _read("HamtaPatientInfo", envelope.render(info.element(response=True), {}, {None: info.namespace}))
    v = _broken("riv_invalid_request_refused", lambda: riv_rules.invalid_request_refused(answered, invalid))
    assert "HamtaPatientInfo" in v.message and "personnummer" in v.message
    not_soap = riv_rules.sent(info, RIV, b"{}", "POST", "application/json")
    assert not not_soap.soap
    bare = CLIENT.read(info, 500, "text/xml", f'<s:Envelope xmlns:s="{envelope.SOAP11}"><s:Body><s:Fault>'
                       "<faultcode>s:Client</faultcode><faultstring>nej</faultstring></s:Fault></s:Body>"
                       "</s:Envelope>".encode())
    riv_rules.invalid_request_refused(bare, not_soap)
    _broken("riv_invalid_request_refused", lambda: riv_rules.invalid_request_refused(answered, not_soap))


def test_check_answer_runs_every_rule_and_spares_answers_to_non_soap_requests() -> None:
    riv_rules.check_answer(_read("SkapaOrdinationVard", _created()))
    system = _fault("SystemException", "TJANSTEFEL", "Server")
    _broken("riv_fault_kind", lambda: riv_rules.check_answer(system))
    not_soap = riv_rules.sent(RIV.service("GodkannUttag"), RIV, b"", "TRACE")
    bare = deepcopy(system)
    with pytest.raises(RuleViolation) as caught:
        riv_rules.check_answer(bare, not_soap)
    assert caught.value.rule == "riv_invalid_request_refused"  # a Server fault to a TRACE: not a Client fault


def test_the_rules_are_schemathesis_checks_that_judge_the_old_interface_only(registry: Any) -> None:
    import os

    import requests
    from schemathesis import Response
    from schemathesis.checks import CHECKS

    from rxverify.checks import schemathesis_checks
    from rxverify.contract import ACTIVE, load_contract, load_legacy_contract

    ACTIVE.registry, ACTIVE.contracts = registry, CONTRACTS
    ACTIVE.tickets = TicketMinter(os.urandom(32), load_actors(CONTRACTS / "testdata" / "test-actors.json"))
    try:
        legacy = load_legacy_contract(CONTRACTS / "openapi" / "legacy.yaml")
        names = set(CHECKS.get_all_names())
        assert {f.__name__ for f in schemathesis_checks.LEGACY_CHECKS} <= names
        case = legacy["/GodkannUttagResponder/V1"]["POST"].Case(body={"antalForpackningar": 1}, media_type="text/xml")
        raw = requests.Response()
        raw.status_code = 500
        raw._content = _fault("SystemException", "TJANSTEFEL", "Server").raw
        raw.headers["Content-Type"] = "text/xml"
        prepared = CLIENT.prepare("GodkannUttag", {"antalForpackningar": 1}, role="pharmacy")
        raw.request = requests.Request("POST", prepared.url, data=prepared.body, headers=prepared.headers).prepare()
        raw.url = prepared.url
        response = Response.from_any(raw)
        with pytest.raises(RuleViolation):
            schemathesis_checks.riv_fault_kind(None, response, case)  # type: ignore[arg-type]
        fhir = load_contract(CONTRACTS / "openapi" / "fhir.yaml")
        other = next(r.ok() for r in fhir.get_all_operations())
        assert schemathesis_checks.riv_fault_kind(None, response, other.Case()) is None  # type: ignore[arg-type]
    finally:
        ACTIVE.registry = ACTIVE.tickets = ACTIVE.contracts = None


def _typed(content_type: str, raw: bytes) -> LegacyAnswer:
    return CLIENT.read("SkapaOrdinationVard", 200, content_type, raw)


def test_content_type() -> None:
    body = envelope.envelope(_created())
    declared = b"<?xml version='1.0' encoding='UTF-8'?>" + body
    for ok in (_typed("text/xml; charset=utf-8", body), _typed('text/xml; charset="UTF-8"', declared),
               _typed("text/xml", body), _typed("text/xml;charset=utf-16", codecs.BOM_UTF16_LE + body)):
        riv_rules.content_type(ok)
    v = _broken("riv_content_type", lambda: riv_rules.content_type(_typed("text/xml; charset=ISO-8859-1", body)))
    assert "SkapaOrdinationVard" in v.message and "charset ISO-8859-1" in v.message and "utf-8" in v.message
    _broken("riv_content_type", lambda: riv_rules.content_type(_typed("text/xml; charset=iso-8859-1", declared)))
    latin = b"<?xml version='1.0' encoding='ISO-8859-1'?>" + body
    v = _broken("riv_content_type", lambda: riv_rules.content_type(_typed("text/xml; charset=ISO-8859-1", latin)))
    assert "R1012" in v.message
    v = _broken("riv_content_type", lambda: riv_rules.content_type(_typed("application/json; charset=utf-8", body)))
    assert "application/json" in v.message
