"""Each legacy domain rule fails on a deliberately broken answer and passes on a correct one."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import Response

from rxverify.checks.failures import RuleViolation
from rxverify.checks.legacy_rules import LegacyRules
from rxverify.mapping import load_mapping

from .conftest import CONTRACTS

BASE = "http://127.0.0.1:9/legacy"
PID = "191212121212"
SCHEMA = schemathesis.openapi.from_path(CONTRACTS / "openapi" / "legacy.yaml")


def _case(path: str, method: str, body: Any = None, **path_parameters: str) -> Any:
    operation = SCHEMA[path][method]
    return operation.Case(body=body, path_parameters=path_parameters or None, media_type="application/json")


def _response(url: str, status: int, body: Any, method: str = "GET") -> Response:
    raw = requests.Response()
    raw.status_code = status
    raw._content = json.dumps(body).encode()
    raw.headers["Content-Type"] = "application/json"
    raw.request = requests.Request(method, url, headers={"Authorization": "Bearer x"}).prepare()
    raw.url = url
    return Response.from_any(raw)


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
    case = _case("/ordinationer", "POST", body)
    rules.check(None, _response(f"{BASE}/ordinationer", 201, answer, "POST"), case)  # type: ignore[arg-type]


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
    assert "365 days" in v.message and "366" in v.message
    _expect("default_validity", lambda: _create(rules, _ordination(forskrivningstyp="TELEFON", giltigTom="2026-12-10")))
    _expect("default_validity", lambda: _create(rules, _ordination(giltigTom="2027-01-02"), giltigTom="2027-01-01"))


def _read(rules: LegacyRules, op_path: str, body: Any, status: int = 200) -> None:
    url = f"{BASE}{op_path.replace('{personId}', PID)}"
    rules.check(None, _response(url, status, body), _case(op_path, "GET", None, personId=PID))  # type: ignore[arg-type]


def test_withdrawals_within_prescription(rules: LegacyRules) -> None:
    aktuella = "/patienter/{personId}/ordinationer/aktuella"
    _read(rules, aktuella, {"personId": PID, "ordinationer": [_ordination()]})
    _expect(
        "withdrawals_within_prescription",
        lambda: _read(rules, aktuella, {"personId": PID, "ordinationer": [_ordination(uttagKvar=4)]}),
    )
    _expect(
        "withdrawals_within_prescription",
        lambda: _read(rules, aktuella, {"personId": PID, "ordinationer": [_ordination(uttagKvar=0)]}),
    )
    historik = "/patienter/{personId}/ordinationer/historik"
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
    oid = answer["ordinationId"]
    case = _case(
        "/ordinationer/{ordinationId}/uttag",
        "POST",
        {"expeditionsId": answer["expeditionsId"], "antalForpackningar": packages},
        ordinationId=oid,
    )
    rules.check(None, _response(f"{BASE}/ordinationer/{oid}/uttag", 200, answer, "POST"), case)  # type: ignore[arg-type]


def test_status_transitions_and_cancelled_not_withdrawable(rules: LegacyRules) -> None:
    aktuella = "/patienter/{personId}/ordinationer/aktuella"
    _read(rules, aktuella, {"personId": PID, "ordinationer": [_ordination()]})
    _withdraw(rules, _uttag())  # Aktiv -> Aktiv: fine
    historik = "/patienter/{personId}/ordinationer/historik"
    cancelled = _ordination(status="Makulerad", uttagKvar=2, makuleringsorsak="FEL_LAKEMEDEL")
    _read(rules, historik, {"personId": PID, "ordinationer": [{"ordination": cancelled, "uttag": [_uttag()]}]})
    v = _expect("cancelled_not_withdrawable", lambda: _withdraw(rules, _uttag(uttagKvar=1)))
    assert "Makulerad" in v.message
    # Makulerad -> Aktiv is no transition of the mapping
    v = _expect(
        "status_transitions",
        lambda: _read(rules, aktuella, {"personId": PID, "ordinationer": [_ordination(uttagKvar=2)]}),
    )
    assert "Makulerad to Aktiv" in v.message


def test_withdrawal_larger_than_prescribed(rules: LegacyRules) -> None:
    _read(rules, "/patienter/{personId}/ordinationer/aktuella", {"personId": PID, "ordinationer": [_ordination()]})
    _withdraw(rules, _uttag(antalForpackningar=2))
    _expect("withdrawals_within_prescription", lambda: _withdraw(rules, _uttag(antalForpackningar=3)))


def test_faults_explained(rules: LegacyRules) -> None:
    path = "/patienter/{personId}"
    _read(rules, path, {"kod": "PATIENT_SAKNAS", "meddelande": "okänd patient"}, status=404)
    _expect("faults_explained", lambda: _read(rules, path, {"kod": "PATIENT_SAKNAS", "meddelande": ""}, status=404))
    _expect("faults_explained", lambda: _read(rules, path, "Internal Server Error", status=500))


def test_medication_list_needs_consent() -> None:
    consent = {"value": False}

    def probe(method: str, url: str, headers: dict[str, str]) -> Any:
        assert method == "GET" and url.endswith(f"/patienter/{PID}") and headers["Authorization"]
        return {"personId": PID, "samtycke": consent["value"]}

    rules = LegacyRules(load_mapping(CONTRACTS / "mapping" / "legacy-fhir.yaml"), probe)
    path = "/patienter/{personId}/lakemedelsforteckning"
    served = {"personId": PID, "poster": []}
    v = _expect("medication_list_needs_consent", lambda: _read(rules, path, served))
    assert "samtycke=false" in v.message
    consent["value"] = True
    _read(rules, path, served)
    _read(rules, path, {"kod": "SAMTYCKE_SAKNAS", "meddelande": "inget samtycke"}, status=403)
