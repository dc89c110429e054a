"""The transformer's seeded wire faults: each, switched on, changes the SOAP wire as it says; off, it does not.

One new platform runs with all five (they touch different things), a second without any; every
check makes the same calls to both. The REST rendering of the faulted platform stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import xmlschema
from lxml import etree

from .conftest import RunningPlatform, start_platform
from .soap_calls import SERVICES, Answer, call, ok, prescription, refused, schema

pytestmark = pytest.mark.platforms("new")

Mint = Callable[..., dict[str, str]]
WIRE_FAULTS = [
    "transformer-wire-ordinationid-unrenamed", "transformer-wire-namespace-v4",
    "transformer-wire-giltigtom-before-utfardandedatum", "transformer-wire-drops-makuleringsorsak",
    "transformer-wire-systemexception-for-refusal",
]
AKTUELLA = "HamtaAktuellaOrdinationer"


@pytest.fixture(scope="module")
def wired(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path) -> Iterator[RunningPlatform]:
    p = start_platform("new", tmp_path_factory.mktemp("wired"), ticket_key_file, WIRE_FAULTS)
    yield p
    p.stop()


def cancelled(http: requests.Session, p: RunningPlatform, mint: Mint, pid: str) -> Answer:
    """A new prescription of the patient, cancelled: the answer of MakuleraOrdinationVard."""
    created = call(http, p, "SkapaOrdinationVard", mint("prescriber", 0), **prescription(pid))
    rx = created.element.find("{*}ordinationsId")
    rx = rx if rx is not None else created.element.find("{*}ordinationId")
    assert rx is not None, created.response.text
    return call(http, p, "MakuleraOrdinationVard", mint("prescriber", 0), ordinationsId=rx.text, orsak="OVRIGT")


def locals_of(element: etree._Element) -> list[str]:
    return [etree.QName(e).localname for e in element.iter()]


def errors(answer: Answer) -> list[str]:
    xsd: xmlschema.XMLSchema10 = schema(answer.service)
    return [e.reason or "" for e in xsd.iter_errors(answer.element)]


@pytest.fixture(scope="module")
def pair(wired: RunningPlatform, new_platform: RunningPlatform) -> dict[str, RunningPlatform]:
    return {"faulted": wired, "clean": new_platform}


def test_element_renamed(pair: dict[str, RunningPlatform], mint: Mint, patients: list[dict[str, Any]],
                         http: requests.Session) -> None:
    """transformer-wire-ordinationid-unrenamed: ordinationId instead of ordinationsId, and so invalid."""
    faulted = cancelled(http, pair["faulted"], mint, patients[60]["id"])
    clean = cancelled(http, pair["clean"], mint, patients[60]["id"])
    assert "ordinationId" in locals_of(faulted.element) and "ordinationsId" not in locals_of(faulted.element)
    assert errors(faulted)
    assert ok(clean)["ordinationsId"]


def test_namespace_version(pair: dict[str, RunningPlatform], mint: Mint, patients: list[dict[str, Any]],
                           http: requests.Session) -> None:
    """transformer-wire-namespace-v4: HamtaAktuellaOrdinationerResponse in the :4 namespace."""
    pid = patients[61]["id"]
    v5 = SERVICES[AKTUELLA]["namespace"]
    faulted = call(http, pair["faulted"], AKTUELLA, mint("pharmacy", 0), personnummer=pid)
    assert faulted.response.status_code == 200
    assert faulted.element.tag == f"{{{v5[:-1]}4}}{AKTUELLA}Response"
    assert all(etree.QName(c).namespace == v5[:-1] + "4" for c in faulted.element)
    assert ok(call(http, pair["clean"], AKTUELLA, mint("pharmacy", 0), personnummer=pid))["personnummer"] == pid
    # only that service: the others keep their namespace
    other = call(http, pair["faulted"], "HamtaPatientInfo", mint("pharmacy", 0), personnummer=pid)
    assert etree.QName(other.element).namespace == SERVICES["HamtaPatientInfo"]["namespace"]


def test_order_changed(pair: dict[str, RunningPlatform], mint: Mint, patients: list[dict[str, Any]],
                       http: requests.Session) -> None:
    """transformer-wire-giltigtom-before-utfardandedatum: the sequence the XSD fixes is broken."""
    faulted = cancelled(http, pair["faulted"], mint, patients[62]["id"])
    names = locals_of(faulted.element)
    assert names.index("giltigTom") < names.index("utfardandedatum")
    clean = locals_of(cancelled(http, pair["clean"], mint, patients[62]["id"]).element)
    assert clean.index("utfardandedatum") < clean.index("giltigTom")


def test_optional_element_dropped(pair: dict[str, RunningPlatform], mint: Mint, patients: list[dict[str, Any]],
                                  http: requests.Session) -> None:
    """transformer-wire-drops-makuleringsorsak: the answer stays valid, the reason is gone."""
    faulted = cancelled(http, pair["faulted"], mint, patients[63]["id"])
    assert "makuleringsorsak" not in locals_of(faulted.element)
    assert "makuleringsorsak" in ok(cancelled(http, pair["clean"], mint, patients[63]["id"]))
    # valid but for the other wire faults of the same answer (the renamed id, the order)
    assert not [e for e in errors(faulted) if "makuleringsorsak" in e]


def test_fault_of_the_wrong_kind(pair: dict[str, RunningPlatform], mint: Mint, patients: list[dict[str, Any]],
                                 http: requests.Session) -> None:
    """transformer-wire-systemexception-for-refusal: SAMTYCKE_SAKNAS comes as a SystemException."""
    pid = patients[64]["id"]
    lf = "HamtaLakemedelsforteckning"
    refused(call(http, pair["faulted"], lf, mint("prescriber", 0), personnummer=pid), "TJANSTEFEL",
            kind="SystemException", code="soap:Server")
    refused(call(http, pair["clean"], lf, mint("prescriber", 0), personnummer=pid), "SAMTYCKE_SAKNAS")
    # a request the contract refuses is still an ApplicationException: only business rules are hit
    refused(call(http, pair["faulted"], lf, {}, personnummer=pid), "EJ_AUTENTISERAD")


def test_rest_rendering_untouched(pair: dict[str, RunningPlatform], mint: Mint, patients: list[dict[str, Any]],
                                  http: requests.Session) -> None:
    """The wire faults live in the SOAP layer only: REST answers of the faulted platform are the clean ones'."""
    pid = patients[65]["id"]
    for p in pair.values():
        r = http.get(f"{p.legacy}/patienter/{pid}/lakemedelsforteckning", headers=mint("prescriber", 0))
        assert r.status_code == 403 and r.json()["kod"] == "SAMTYCKE_SAKNAS"
