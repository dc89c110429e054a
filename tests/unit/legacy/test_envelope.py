"""Envelopes written from dicts by the XSD model, answers read back: order, namespaces, occurrences, leniency."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from rxverify.contracts.riv import load_riv
from rxverify.legacy import envelope, shape

from ..conftest import CONTRACTS

RIV = load_riv(CONTRACTS)
CREATE = RIV.service("SkapaOrdinationVard")
HISTORY = RIV.service("HamtaOrdinationshistorik")
PRESCRIPTION = {
    "personnummer": "191212121212",
    "lakemedel": {"nplPackId": "19990101100001", "namn": "Alvedon 500 mg tablett"},
    "doseringstext": "1 tablett 3 gånger dagligen",
    "antalForpackningar": 2,
    "antalUttag": 3,
    "forskrivningstyp": "ELEKTRONISK",
    "giltigTom": "2027-01-31",
}
ORDINATION = {
    "ordinationsId": "3f0b7a2e-3c1d-4c55-9d7e-1b2a3c4d5e6f", "personnummer": "191212121212", "status": "Aktiv",
    "utfardandedatum": "2026-12-01", "giltigTom": "2027-12-02",
    "lakemedel": {"nplPackId": "19990101100001", "namn": "Alvedon"}, "doseringstext": "1 x 3",
    "antalForpackningar": 1, "antalUttag": 2, "uttagKvar": 1, "forskrivningstyp": "ELEKTRONISK",
    "forskrivare": {"hsaId": "SE2321000016-P0001", "forskrivarkod": "1100000", "arbetsplatskod": "4000000"},
    "senastAndrad": "2026-12-01T10:27:11Z",
}  # fmt: skip
WITHDRAWAL = {
    "uttagId": "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed", "ordinationsId": ORDINATION["ordinationsId"],
    "personnummer": "191212121212", "expeditionsId": "6ec0bd7f-11c0-43da-975e-2a8ad9ebae0b",
    "apotekGln": "7350045511119", "antalForpackningar": 1, "tidpunkt": "2026-12-01T11:00:00Z", "uttagKvar": 1,
    "ordinationsstatus": "Aktiv",
}  # fmt: skip


def _body(decl: Any, data: Any) -> etree._Element:
    return envelope.render(decl, data, {"rsp": etree.QName(decl.name).namespace})


@settings(deadline=None)  # the first example compiles the schema
@given(st.permutations(list(PRESCRIPTION)))
def test_any_key_order_gives_the_xsd_order(order: list[str]) -> None:
    data = {k: PRESCRIPTION[k] for k in order}
    element = _body(CREATE.element(), data)
    CREATE.schema.validate(element)
    assert [etree.QName(c).localname for c in element] == list(PRESCRIPTION)  # the XSD's sequence


def test_namespaces_come_from_the_schema() -> None:
    element = _body(CREATE.element(), PRESCRIPTION)
    assert element.tag == CREATE.request_element
    assert element.find(f"{{{CREATE.namespace}}}personnummer") is not None  # direct children: responder namespace
    assert element.find(f"{{{CREATE.namespace}}}lakemedel/{{{RIV.namespaces['common']}}}nplPackId") is not None


def test_repeated_elements_round_trip_as_lists() -> None:
    posts = [{"ordination": ORDINATION, "uttag": [WITHDRAWAL, WITHDRAWAL]}, {"ordination": ORDINATION}]
    answer = {"personnummer": "191212121212", "historikpost": posts}
    decl = HISTORY.element(response=True)
    element = _body(decl, answer)
    HISTORY.schema.validate(element)
    decoded = envelope.decode(element, decl)
    assert decoded["historikpost"][0]["uttag"][1]["antalForpackningar"] == 1
    assert decoded["historikpost"][1] == {"ordination": ORDINATION}  # no uttag: no list invented
    assert isinstance(decoded["historikpost"][0]["ordination"]["antalUttag"], int)
    assert decoded == answer | {"historikpost": [{"ordination": ORDINATION, "uttag": [WITHDRAWAL, WITHDRAWAL]},
                                                 {"ordination": ORDINATION}]}


def test_negative_data_is_written_as_given() -> None:
    data = PRESCRIPTION | {"antalForpackningar": "många", "okand": "x", "forskrivningstyp": True}
    element = _body(CREATE.element(), data)
    names = [etree.QName(c).localname for c in element]
    assert names[-1] == "okand" and element[-1].tag == f"{{{CREATE.namespace}}}okand"
    assert element.findtext(f"{{{CREATE.namespace}}}antalForpackningar") == "många"
    assert element.findtext(f"{{{CREATE.namespace}}}forskrivningstyp") == "true"
    assert not CREATE.schema.is_valid(element)


def test_an_envelope_holds_its_headers_and_one_body_element() -> None:
    logical = etree.Element(f"{{{RIV.namespaces['logical_address']}}}LogicalAddress")
    logical.text = "2021005489"
    data = envelope.envelope(_body(CREATE.element(), PRESCRIPTION), [logical])
    parsed = envelope.parse(data)
    assert parsed.problem is None and parsed.fault is None
    assert [e.tag for e in parsed.header] == [logical.tag]
    assert parsed.element is not None and parsed.element.tag == CREATE.request_element


def _fault(code: str, kind: str, kod: str) -> bytes:
    common = RIV.namespaces["common"]
    return (f'<s:Envelope xmlns:s="{envelope.SOAP11}"><s:Body><s:Fault><faultcode>s:{code}</faultcode>'
            f'<faultstring>nej</faultstring><detail><c:{kind} xmlns:c="{common}"><c:kod>{kod}</c:kod>'
            f"<c:meddelande>nej</c:meddelande></c:{kind}></detail></s:Fault></s:Body></s:Envelope>").encode()


def test_faults_are_read_with_their_kind_and_code() -> None:
    fault = envelope.parse(_fault("Client", "ApplicationException", "MAKULERAD")).fault
    assert fault is not None
    assert (fault.code, fault.code_namespace, fault.kind, fault.kod, fault.meddelande) == (
        "Client", envelope.SOAP11, "ApplicationException", "MAKULERAD", "nej")
    assert fault.as_dict() == {"faultcode": "Client", "faultstring": "nej",
                               "detail": {"ApplicationException": {"kod": "MAKULERAD", "meddelande": "nej"}}}
    system = envelope.parse(_fault("Server", "SystemException", "TJANSTEFEL")).fault
    assert system is not None and (system.code, system.kind) == ("Server", "SystemException")


def test_what_is_not_soap_is_a_problem_not_an_exception() -> None:
    assert envelope.parse(b"<html>nope</html>").problem == "not a SOAP 1.1 envelope: the root element is html"
    assert (envelope.parse(b"{}").problem or "").startswith("not XML")
    empty = f'<s:Envelope xmlns:s="{envelope.SOAP11}"><s:Body/></s:Envelope>'.encode()
    assert envelope.parse(empty).problem == "the SOAP Body holds 0 elements, not one"


def test_json_shape_both_ways() -> None:
    lists = HISTORY.semantics.lists
    xml = {"personnummer": "191212121212", "historikpost": [{"ordination": ORDINATION, "uttag": [WITHDRAWAL]}],
           "extension": {}}
    as_json = shape.to_json(xml, RIV.names, lists)
    assert as_json["personId"] == "191212121212" and "extension" not in as_json
    item = as_json["ordinationer"][0]
    assert item["ordination"]["ordinationId"] == ORDINATION["ordinationsId"]
    assert item["uttag"][0]["ordinationId"] == ORDINATION["ordinationsId"]
    assert shape.from_json(as_json, RIV.names, lists) == {k: v for k, v in xml.items() if k != "extension"}
    # an array the JSON shape always has is there when no element came
    assert shape.to_json({"personnummer": "191212121212"}, RIV.names, lists) == {"personId": "191212121212",
                                                                                "ordinationer": []}
    assert shape.to_json({"personnummer": "1", "historikpost": [{"ordination": {}}]}, RIV.names, lists)[
        "ordinationer"] == [{"ordination": {}, "uttag": []}]
