"""Each legacy domain rule fails on a deliberately broken answer and passes on a correct one.

The answers are SOAP, as the platforms send them: written from today's JSON shape by the XSD and
read back by the legacy client, so a rule sees exactly what it sees on the wire.
"""

from __future__ import annotations

from typing import Any

import pytest

from rxverify.checks.failures import RuleViolation
from rxverify.checks.legacy_rules import Exchange, LegacyRules
from rxverify.contracts.riv import load_riv
from rxverify.legacy import envelope
from rxverify.legacy.client import LegacyAnswer, LegacyClient
from rxverify.mapping import load_mapping

from .conftest import CONTRACTS

BASE = "http://127.0.0.1:9/legacy"
PID = "191212121212"
CLIENT = LegacyClient(None, BASE, load_riv(CONTRACTS), None)


def answer_of(service: str, body: Any, fault: tuple[str, str] | None = None) -> LegacyAnswer:
    """The SOAP answer of `service` carrying `body` (today's JSON shape), or a fault (kod, meddelande)."""
    svc = CLIENT.service(service)
    if fault is not None:
        common = CLIENT.contracts.namespaces["common"]
        kod, meddelande = fault
        raw = (f'<s:Envelope xmlns:s="{envelope.SOAP11}"><s:Body><s:Fault><faultcode>s:Client</faultcode>'
               f"<faultstring>{meddelande or 'nej'}</faultstring><detail><c:ApplicationException xmlns:c=\"{common}\">"
               f"<c:kod>{kod}</c:kod><c:meddelande>{meddelande}</c:meddelande></c:ApplicationException></detail>"
               "</s:Fault></s:Body></s:Envelope>").encode()
        return CLIENT.read(svc, 500, "text/xml", raw)
    element = envelope.render(svc.element(response=True), CLIENT.from_json(svc, body), {None: svc.namespace})
    return CLIENT.read(svc, 200, "text/xml", envelope.envelope(element))


def _exchange(service: str, body: Any, sent: dict[str, Any] | None = None, fault: tuple[str, str] | None = None
              ) -> Exchange:
    return Exchange(answer_of(service, body, fault), sent or {}, BASE, {"Authorization": "Bearer x"})


def _ordination(**changes: Any) -> dict[str, Any]:
    o = {
        "ordinationId": "0b7c5c4e-5d1a-4e7a-9b54-3f0d2a1c9e01",
        "personId": PID,
        "status": "Aktiv",
        "utfardandedatum": "2026-11-25",
        "giltigTom": "2027-11-26",
        "lakemedel": {"nplPackId": "19990101100001", "namn": "Alvedon"},
        "doseringstext": "1 x 3",
        "antalForpackningar": 2,
        "antalUttag": 3,
        "uttagKvar": 3,
        "forskrivningstyp": "ELEKTRONISK",
        "forskrivare": {"hsaId": "SE2321000016-P0001", "forskrivarkod": "1100000", "arbetsplatskod": "4000000"},
        "senastAndrad": "2026-11-25T10:00:00.000Z",
    }
    o.update(changes)
    return o


def _uttag(**changes: Any) -> dict[str, Any]:
    u = {
        "uttagId": "5f8e2b1a-0c3d-4e5f-8a9b-1c2d3e4f5a6b",
        "ordinationId": _ordination()["ordinationId"],
        "personId": PID,
        "expeditionsId": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "apotekGln": "7350001000007",
        "antalForpackningar": 1,
        "tidpunkt": "2026-11-25T11:00:00.000Z",
        "uttagKvar": 2,
        "ordinationsstatus": "Aktiv",
    }
    u.update(changes)
    return u


@pytest.fixture()
def rules() -> LegacyRules:
    return LegacyRules(load_mapping(CONTRACTS / "mapping" / "legacy-fhir.yaml"))


def _create(rules: LegacyRules, answer: dict[str, Any], **sent: Any) -> None:
    body = {
        "personId": PID,
        "lakemedel": {"nplPackId": "19990101100001", "namn": "A"},
        "doseringstext": "x",
        "antalForpackningar": 2,
        "antalUttag": 3,
        "forskrivningstyp": answer["forskrivningstyp"],
        **sent,
    }
    rules.check(_exchange("SkapaOrdinationVard", answer, body))


def _expect(rule: str, call: Any) -> RuleViolation:
    with pytest.raises(RuleViolation) as caught:
        call()
    assert caught.value.rule == rule
    return caught.value


def test_default_validity(rules: LegacyRules) -> None:
    _create(rules, _ordination())
    _create(rules, _ordination(forskrivningstyp="TELEFON", giltigTom="2026-12-09"))
    _create(rules, _ordination(giltigTom="2027-01-01"), giltigTom="2027-01-01")
    v = _expect("default_validity", lambda: _create(rules, _ordination(giltigTom="2027-11-25")))
    assert "365 days" in v.message and "366" in v.message and v.operation == "SkapaOrdinationVard"
    _expect("default_validity", lambda: _create(rules, _ordination(forskrivningstyp="TELEFON", giltigTom="2026-12-10")))
    _expect("default_validity", lambda: _create(rules, _ordination(giltigTom="2027-01-02"), giltigTom="2027-01-01"))


def _read(rules: LegacyRules, service: str, body: Any, fault: tuple[str, str] | None = None) -> None:
    rules.check(_exchange(service, body, {"personId": PID}, fault))


def test_withdrawals_within_prescription(rules: LegacyRules) -> None:
    aktuella = "HamtaAktuellaOrdinationer"
    _read(rules, aktuella, {"personId": PID, "ordinationer": [_ordination()]})
    _expect(
        "withdrawals_within_prescription",
        lambda: _read(rules, aktuella, {"personId": PID, "ordinationer": [_ordination(uttagKvar=4)]}),
    )
    _expect(
        "withdrawals_within_prescription",
        lambda: _read(rules, aktuella, {"personId": PID, "ordinationer": [_ordination(uttagKvar=0)]}),
    )
    historik = "HamtaOrdinationshistorik"
    good = {"personId": PID, "ordinationer": [{"ordination": _ordination(uttagKvar=2), "uttag": [_uttag()]}]}
    _read(rules, historik, good)
    too_many = {"personId": PID, "ordinationer": [{"ordination": _ordination(uttagKvar=2), "uttag": [_uttag()] * 2}]}
    _expect("withdrawals_within_prescription", lambda: _read(rules, historik, too_many))
    big = {
        "personId": PID,
        "ordinationer": [{"ordination": _ordination(uttagKvar=2), "uttag": [_uttag(antalForpackningar=5)]}],
    }
    _expect("withdrawals_within_prescription", lambda: _read(rules, historik, big))


def _withdraw(rules: LegacyRules, answer: dict[str, Any], packages: int = 1) -> None:
    sent = {"ordinationId": answer["ordinationId"], "expeditionsId": answer["expeditionsId"],
            "antalForpackningar": packages}
    rules.check(_exchange("GodkannUttag", answer, sent))


def test_status_transitions_and_cancelled_not_withdrawable(rules: LegacyRules) -> None:
    aktuella = "HamtaAktuellaOrdinationer"
    _read(rules, aktuella, {"personId": PID, "ordinationer": [_ordination()]})
    _withdraw(rules, _uttag())  # Aktiv -> Aktiv: fine
    cancelled = _ordination(status="Makulerad", uttagKvar=2, makuleringsorsak="FEL_LAKEMEDEL")
    _read(rules, "HamtaOrdinationshistorik",
          {"personId": PID, "ordinationer": [{"ordination": cancelled, "uttag": [_uttag()]}]})
    v = _expect("cancelled_not_withdrawable", lambda: _withdraw(rules, _uttag(uttagKvar=1)))
    assert "Makulerad" in v.message and "MAKULERAD" in v.message
    # Makulerad -> Aktiv is no transition of the mapping
    v = _expect(
        "status_transitions",
        lambda: _read(rules, aktuella, {"personId": PID, "ordinationer": [_ordination(uttagKvar=2)]}),
    )
    assert "Makulerad to Aktiv" in v.message


def test_a_cancellation_answer_is_a_prescription_too(rules: LegacyRules) -> None:
    _read(rules, "HamtaAktuellaOrdinationer", {"personId": PID, "ordinationer": [_ordination()]})
    for service in ("MakuleraOrdinationVard", "MakuleraOrdinationApotek"):
        rules.check(_exchange(service, _ordination(status="Makulerad", makuleringsorsak="OVRIGT"),
                              {"ordinationId": _ordination()["ordinationId"], "orsak": "OVRIGT"}))
    v = _expect("status_transitions", lambda: rules.check(_exchange("MakuleraOrdinationVard", _ordination(), {})))
    assert v.operation == "MakuleraOrdinationVard"


def test_withdrawal_larger_than_prescribed(rules: LegacyRules) -> None:
    _read(rules, "HamtaAktuellaOrdinationer", {"personId": PID, "ordinationer": [_ordination()]})
    _withdraw(rules, _uttag(antalForpackningar=2))
    _expect("withdrawals_within_prescription", lambda: _withdraw(rules, _uttag(antalForpackningar=3)))


def test_faults_explained(rules: LegacyRules) -> None:
    _read(rules, "HamtaPatientInfo", None, fault=("PATIENT_SAKNAS", "okänd patient"))
    _expect("faults_explained", lambda: _read(rules, "HamtaPatientInfo", None, fault=("PATIENT_SAKNAS", "")))
    bare = CLIENT.read("HamtaPatientInfo", 500, "text/html", b"Internal Server Error")
    _expect("faults_explained", lambda: rules.check(Exchange(bare, {}, BASE)))


def test_medication_list_needs_consent() -> None:
    consent = {"value": False}

    def probe(base: str, service: str, data: dict[str, Any], headers: Any) -> LegacyAnswer:
        assert base == BASE and service == "HamtaPatientInfo" and data == {"personnummer": PID}
        assert headers["Authorization"]
        return answer_of("HamtaPatientInfo", {"personId": PID, "identitetstyp": "PERSONNUMMER", "fornamn": "Tolvan",
                                              "efternamn": "Tolvansson", "fodelsedatum": "1912-12-12",
                                              "samtycke": consent["value"]})

    rules = LegacyRules(load_mapping(CONTRACTS / "mapping" / "legacy-fhir.yaml"), probe)
    served = {"personId": PID, "poster": []}
    v = _expect("medication_list_needs_consent", lambda: _read(rules, "HamtaLakemedelsforteckning", served))
    assert "samtycke=false" in v.message
    consent["value"] = True
    _read(rules, "HamtaLakemedelsforteckning", served)
    _read(rules, "HamtaLakemedelsforteckning", None, fault=("SAMTYCKE_SAKNAS", "inget samtycke"))
