"""The one legacy client: the request it prepares (endpoint, SOAPAction, RIV-TA headers, credentials), its answers."""

from __future__ import annotations

from typing import Any

from lxml import etree

from rxverify.contracts.riv import load_riv
from rxverify.legacy import envelope
from rxverify.legacy.client import LegacyClient, NoTicket
from rxverify.target.credentials import TicketMinter, load_actors

from ..conftest import CONTRACTS

RIV = load_riv(CONTRACTS)
ACTORS = load_actors(CONTRACTS / "testdata" / "test-actors.json")
KEY = b"k" * 32


def _client(credentials: Any = None) -> LegacyClient:
    return LegacyClient(None, "http://127.0.0.1:1/legacy/", RIV, credentials or TicketMinter(KEY, ACTORS))


def test_a_request_is_the_services_endpoint_action_and_envelope() -> None:
    data = {"antalForpackningar": 1, "expeditionsId": "6ec0bd7f-11c0-43da-975e-2a8ad9ebae0b",
            "ordinationsId": "3f0b7a2e-3c1d-4c55-9d7e-1b2a3c4d5e6f"}
    prepared = _client().prepare("GodkannUttag", data, role="pharmacy")
    service = RIV.service("GodkannUttag")
    assert prepared.url == "http://127.0.0.1:1/legacy/GodkannUttagResponder/V1"
    assert prepared.headers["SOAPAction"] == f'"{service.soap_action}"'  # quoted, as CXF sends it
    assert prepared.headers["Content-Type"] == "text/xml; charset=utf-8"
    parsed = envelope.parse(prepared.body)
    assert parsed.element is not None and parsed.element.tag == service.request_element
    service.schema.validate(parsed.element)
    assert [etree.QName(c).localname for c in parsed.element] == ["ordinationsId", "expeditionsId",
                                                                  "antalForpackningar"]


def test_the_riv_headers_are_valid_and_name_the_actor() -> None:
    prepared = _client().prepare("HamtaPatientInfo", {"personnummer": "191212121212"}, role="prescriber", actor=1)
    header = envelope.parse(prepared.body).header
    schemas = RIV.header_schemas
    assert [e.tag for e in header] == list(RIV.service("HamtaPatientInfo").header_parts)
    for entry in header:
        schemas[entry.tag].validate(entry)
    argos = header[1]
    assert argos.findtext(f"{{{RIV.namespaces['argos']}}}forskrivarkod") == ACTORS.prescribers[1]["forskrivarkod"]
    assert header[0].text == RIV.logical_address
    bare = _client().prepare("HamtaPatientInfo", {"personnummer": "191212121212"}, role="prescriber",
                             riv_headers=False)
    assert envelope.parse(bare.body).header == ()


def test_credentials_go_on_in_one_place_and_can_be_left_off() -> None:
    minter = TicketMinter(KEY, ACTORS)
    prepared = _client(minter).prepare("HamtaPatientInfo", {"personnummer": "191212121212"}, role="pharmacy")
    assert prepared.headers["Authorization"].startswith("Bearer ey")
    assert "Authorization" not in _client(NoTicket()).prepare(
        "HamtaPatientInfo", {"personnummer": "191212121212"}, role="pharmacy").headers
    replaced = _client(minter).prepare("HamtaPatientInfo", {"personnummer": "191212121212"}, role="pharmacy",
                                       headers={"authorization": "Bearer other", "SOAPAction": None})
    assert replaced.headers["authorization"] == "Bearer other" and "SOAPAction" not in replaced.headers
    assert "Authorization" not in replaced.headers


def _answer(service: str, inner: str) -> bytes:
    ns = RIV.service(service).namespace
    return (f'<s:Envelope xmlns:s="{envelope.SOAP11}"><s:Body><r:{service}Response xmlns:r="{ns}">{inner}'
            f"</r:{service}Response></s:Body></s:Envelope>").encode()


def test_an_answer_is_read_with_its_xsd_problems() -> None:
    client = _client()
    good = client.read("KontrolleraArbetsplatskod", 200, "text/xml",
                       _answer("KontrolleraArbetsplatskod", "<r:arbetsplatskod>4000000</r:arbetsplatskod>"
                                                            "<r:giltig>true</r:giltig>"))
    assert good.ok and good.problems == [] and good.body == {"arbetsplatskod": "4000000", "giltig": True}
    bad = client.read("KontrolleraArbetsplatskod", 200, "text/xml",
                      _answer("KontrolleraArbetsplatskod", "<r:giltig>ja</r:giltig>"))
    assert bad.problems and "giltig" in " ".join(bad.problems) + str(bad.body)


def test_an_answer_in_todays_json_shape() -> None:
    client = _client()
    ids = "".join(f"<r:expeditionsId>6ec0bd7f-11c0-43da-975e-2a8ad9ebae0{i}</r:expeditionsId>" for i in range(2))
    answer = client.read("HamtaExpeditionsId", 200, "text/xml", _answer("HamtaExpeditionsId", ids))
    assert answer.body == {"expeditionsId": [f"6ec0bd7f-11c0-43da-975e-2a8ad9ebae0{i}" for i in range(2)]}
    assert answer.json == {"expeditionsIdn": [f"6ec0bd7f-11c0-43da-975e-2a8ad9ebae0{i}" for i in range(2)]}
    assert client.from_json("SkapaOrdinationVard", {"personId": "191212121212"}) == {"personnummer": "191212121212"}
