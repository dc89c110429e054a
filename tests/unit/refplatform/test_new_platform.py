"""The new reference platform (ECP stand-in): its FHIR core, the FHIR API and the transformer.

Each test names what it checks: a legacy operationId and rule (briefs: legacy behaviour), a FHIR
operation of the new platform's API, or a mapping element (contracts/mapping/legacy-fhir.yaml).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from .conftest import CONTRACTS, RunningPlatform, start_platform

pytestmark = pytest.mark.platforms("new")

STOCKHOLM = ZoneInfo("Europe/Stockholm")
PERSONNUMMER = "http://electronichealth.se/identifier/personnummer"
SAMORDNINGSNUMMER = "http://electronichealth.se/identifier/samordningsnummer"
PRESCRIPTION_ID = "http://electronichealth.se/identifier/nllmedicationrequestid"
DISPENSING_ID = "http://electronichealth.se/identifier/nlldispensingid"
NPL_PACK_ID = "http://electronichealth.se/identifier/nplpackid"
HSA_ID = "urn:oid:1.2.752.29.4.19"
PRESCRIBER_CODE = "urn:oid:1.2.752.116.3.1.2"
WORKPLACE_CODE_EXT = "http://electronichealth.se/fhir/StructureDefinition/nll-workplace-code"
PRESCRIPTION_FORMAT = "http://electronichealth.se/fhir/CodeSystem/nll-prescription-format"
CANCELLATION_REASON = "http://electronichealth.se/fhir/CodeSystem/nll-cancellation-reason"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
NPL_EXAMPLE = "19990101100001"  # the example package id of contracts/openapi/legacy.yaml

Mint = Callable[..., dict[str, str]]
GLN = "urn:oid:1.3.88"
PACKAGES = {"unit": "förpackning", "system": "http://electronichealth.se/fhir/CodeSystem/nll-units", "code": "pkg"}
_FHIR_SPEC = yaml.safe_load((CONTRACTS / "openapi" / "fhir.yaml").read_text(encoding="utf-8"))
_REGISTRY: Registry[Any] = Registry().with_resource("urn:contract", DRAFT202012.create_resource(_FHIR_SPEC))


def assert_conforms(schema: str, instance: Any) -> None:
    """The instance satisfies components/schemas/`schema` of contracts/openapi/fhir.yaml."""
    validator = Draft202012Validator({"$ref": f"urn:contract#/components/schemas/{schema}"}, registry=_REGISTRY)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, errors


def today() -> str:
    return datetime.now(STOCKHOLM).date().isoformat()


def days_from_today(days: int) -> str:
    return (datetime.now(STOCKHOLM).date() + timedelta(days=days)).isoformat()


def fhir_headers(ticket: dict[str, str], **extra: str) -> dict[str, str]:
    """The headers the FHIR API requires, with a ticket."""
    return {**ticket, "x-request-id": str(uuid.uuid4()), "x-context-id": str(uuid.uuid4()),
            "x-user-agent": "rxverify-unit/1.0", "content-type": "application/fhir+json", **extra}


def new_prescription(person_id: str, **override: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "personId": person_id,
        "lakemedel": {"nplPackId": NPL_EXAMPLE, "namn": "Alvedon 500 mg tablett"},
        "doseringstext": "1 tablett 3 gånger dagligen vid behov",
        "antalForpackningar": 2,
        "antalUttag": 2,
        "forskrivningstyp": "ELEKTRONISK",
    }
    body.update(override)
    return body


def prescribe(http: requests.Session, platform: RunningPlatform, mint: Mint, person_id: str,
              **override: Any) -> dict[str, Any]:
    r = http.post(f"{platform.legacy}/ordinationer", json=new_prescription(person_id, **override),
                  headers=mint("prescriber", 0))
    assert r.status_code == 201, r.text
    return dict(r.json())


def reserve(http: requests.Session, platform: RunningPlatform, mint: Mint, count: int = 1,
            pharmacy: int = 0) -> list[str]:
    r = http.post(f"{platform.legacy}/expeditionsid", json={"antal": count}, headers=mint("pharmacy", pharmacy))
    assert r.status_code == 200, r.text
    return list(r.json()["expeditionsIdn"])


def withdraw(http: requests.Session, platform: RunningPlatform, mint: Mint, ordination_id: str,
             dispensing_id: str, pharmacy: int = 0, packages: int = 1) -> requests.Response:
    return http.post(f"{platform.legacy}/ordinationer/{ordination_id}/uttag",
                     json={"expeditionsId": dispensing_id, "antalForpackningar": packages},
                     headers=mint("pharmacy", pharmacy))


def fhir_prescription(person_id: str, system: str = PERSONNUMMER) -> dict[str, Any]:
    """A MedicationRequest of profile NLLMedicationRequest, as a FHIR client sends it."""
    return {
        "resourceType": "MedicationRequest",
        "contained": [{"resourceType": "Practitioner", "id": "prescriber",
                       "identifier": [{"system": HSA_ID, "value": "SE2321000016-P0002"},
                                      {"system": PRESCRIBER_CODE, "value": "1113579"}]}],
        "extension": [{"url": WORKPLACE_CODE_EXT, "valueString": "4001111"}],
        "identifier": [{"system": PRESCRIPTION_ID, "value": str(uuid.uuid4())}],
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": PRESCRIPTION_FORMAT, "code": "electronic"}]}],
        "subject": {"identifier": {"system": system, "value": person_id}},
        "medicationCodeableConcept": {"coding": [{"system": NPL_PACK_ID, "code": NPL_EXAMPLE}],
                                      "text": "Alvedon 500 mg tablett"},
        "authoredOn": datetime.now(STOCKHOLM).isoformat(timespec="seconds"),
        "requester": {"reference": "#prescriber"},
        "dosageInstruction": [{"text": "1 tablett vid behov"}],
        "dispenseRequest": {"validityPeriod": {"start": today(), "end": days_from_today(30)},
                            "numberOfRepeatsAllowed": 1, "quantity": {"value": 1, **PACKAGES}},
    }


def fhir_dispensing(person_id: str, prescription_id: str, packages: int = 1, gln: str = "7350001086422",
                    system: str = PERSONNUMMER) -> dict[str, Any]:
    """A withdrawal as a pharmacy system registers it on FHIR (profile NLLMedicationDispense)."""
    return {
        "resourceType": "MedicationDispense",
        "identifier": [{"system": DISPENSING_ID, "value": str(uuid.uuid4())}],
        "status": "completed",
        "medicationCodeableConcept": {"coding": [{"system": NPL_PACK_ID, "code": NPL_EXAMPLE}],
                                      "text": "Alvedon 500 mg tablett"},
        "subject": {"identifier": {"system": system, "value": person_id}},
        "performer": [{"actor": {"identifier": {"system": GLN, "value": gln}}}],
        "authorizingPrescription": [{"reference": f"MedicationRequest/{prescription_id}"}],
        "quantity": {"value": packages, **PACKAGES},
        "whenHandedOver": datetime.now(STOCKHOLM).isoformat(timespec="seconds"),
    }


def kind_of(patients: list[dict[str, Any]], kind: str, skip: int = 0) -> str:
    return str([p for p in patients if p["kind"] == kind][skip]["id"])


@pytest.fixture()
def person(patients: list[dict[str, Any]], request: pytest.FixtureRequest) -> str:
    """A test patient of its own for each test (the platform process is shared by the module)."""
    names = [item.name for item in request.session.items if item.path == request.node.path]
    return str(patients[10 + names.index(request.node.name)]["id"])


# ---- the legacy interface through the transformer ----


def test_legacy_round_trip(new_platform: RunningPlatform, mint: Mint, http: requests.Session, person: str) -> None:
    """SkapaOrdinationVard -> HamtaAktuellaOrdinationer -> HamtaExpeditionsId -> GodkannUttag ->
    HamtaOrdinationshistorik -> RapporteraExpeditionLF -> UppdateraSamtycke -> HamtaLakemedelsforteckning."""
    legacy = new_platform.legacy
    created = prescribe(http, new_platform, mint, person)
    assert created["status"] == "Aktiv" and created["uttagKvar"] == 2 and created["utfardandedatum"] == today()
    assert created["giltigTom"] == days_from_today(366)
    assert created["forskrivare"] == {"hsaId": "SE2321000016-P0001", "forskrivarkod": "1100000",
                                      "arbetsplatskod": "4000000"}
    assert "makuleringsorsak" not in created
    assert created["senastAndrad"].endswith("Z") and len(created["senastAndrad"]) == 24

    current = http.get(f"{legacy}/patienter/{person}/ordinationer/aktuella", headers=mint("pharmacy")).json()
    assert current["ordinationer"] == [created]

    first, second, third = reserve(http, new_platform, mint, 3)
    r = withdraw(http, new_platform, mint, created["ordinationId"], first)
    assert r.status_code == 200, r.text
    uttag = r.json()
    assert uttag["uttagKvar"] == 1 and uttag["ordinationsstatus"] == "Aktiv"
    assert uttag["personId"] == person and uttag["apotekGln"] == "7350001000008"
    again = withdraw(http, new_platform, mint, created["ordinationId"], first)
    assert (again.status_code, again.json()["kod"]) == (409, "KONFLIKT")
    too_many = withdraw(http, new_platform, mint, created["ordinationId"], second, packages=3)
    assert (too_many.status_code, too_many.json()["kod"]) == (409, "FOR_MANGA_FORPACKNINGAR")
    other_pharmacy = withdraw(http, new_platform, mint, created["ordinationId"], second, pharmacy=1)
    assert (other_pharmacy.status_code, other_pharmacy.json()["kod"]) == (409, "OKANT_EXPEDITIONSID")

    history = http.get(f"{legacy}/patienter/{person}/ordinationer/historik", headers=mint("prescriber")).json()
    assert len(history["ordinationer"]) == 1
    assert history["ordinationer"][0]["ordination"]["uttagKvar"] == 1
    assert history["ordinationer"][0]["uttag"] == [uttag]

    report = {"expeditionsId": first, "personId": person, "ordinationId": created["ordinationId"],
              "antalForpackningar": 1}
    r = http.post(f"{legacy}/lakemedelsforteckning/expeditioner", json=report, headers=mint("pharmacy"))
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert set(receipt) == {"rapportId", "expeditionsId", "personId", "ordinationId", "registrerad"}
    dup = http.post(f"{legacy}/lakemedelsforteckning/expeditioner", json=report, headers=mint("pharmacy"))
    assert (dup.status_code, dup.json()["kod"]) == (409, "KONFLIKT")
    # a report is not a withdrawal
    after_report = http.get(f"{legacy}/patienter/{person}/ordinationer/aktuella", headers=mint("pharmacy")).json()
    assert after_report["ordinationer"][0]["uttagKvar"] == 1

    no_consent = http.get(f"{legacy}/patienter/{person}/lakemedelsforteckning", headers=mint("pharmacy"))
    assert (no_consent.status_code, no_consent.json()["kod"]) == (403, "SAMTYCKE_SAKNAS")
    r = http.put(f"{legacy}/patienter/{person}/samtycke", json={"samtycke": True}, headers=mint("pharmacy"))
    assert r.status_code == 200 and r.json()["samtycke"] is True
    info = http.get(f"{legacy}/patienter/{person}", headers=mint("prescriber")).json()
    assert info["samtycke"] is True and info["identitetstyp"] == "PERSONNUMMER"
    medication_list = http.get(f"{legacy}/patienter/{person}/lakemedelsforteckning", headers=mint("pharmacy"))
    assert medication_list.status_code == 200
    [post] = medication_list.json()["poster"]
    assert post == {"rapportId": receipt["rapportId"], "ordinationId": created["ordinationId"],
                    "expeditionsId": first, "lakemedel": created["lakemedel"],
                    "doseringstext": created["doseringstext"], "antalForpackningar": 1,
                    "expedierad": receipt["registrerad"], "apotekGln": "7350001000008"}

    last = withdraw(http, new_platform, mint, created["ordinationId"], second)
    assert last.status_code == 200 and last.json()["uttagKvar"] == 0
    assert last.json()["ordinationsstatus"] == "Slutexpedierad"
    empty = withdraw(http, new_platform, mint, created["ordinationId"], third)
    assert (empty.status_code, empty.json()["kod"]) == (409, "SLUTEXPEDIERAD")
    cancel = http.post(f"{legacy}/ordinationer/{created['ordinationId']}/makulering", json={"orsak": "OVRIGT"},
                       headers=mint("prescriber"))
    assert (cancel.status_code, cancel.json()["kod"]) == (409, "EJ_MAKULERBAR")
    current = http.get(f"{legacy}/patienter/{person}/ordinationer/aktuella", headers=mint("pharmacy")).json()
    assert current["ordinationer"] == []

    r = http.put(f"{legacy}/patienter/{person}/samtycke", json={"samtycke": False}, headers=mint("prescriber"))
    assert r.status_code == 200
    again_no = http.get(f"{legacy}/patienter/{person}/lakemedelsforteckning", headers=mint("pharmacy"))
    assert again_no.status_code == 403


def test_validity_rules(new_platform: RunningPlatform, mint: Mint, http: requests.Session, person: str,
                        patients: list[dict[str, Any]]) -> None:
    """SkapaOrdinationVard: default validity 366 days (14 for TELEFON); OGILTIG_GILTIGHETSTID; PATIENT_SAKNAS."""
    assert prescribe(http, new_platform, mint, person, forskrivningstyp="TELEFON")["giltigTom"] == days_from_today(14)
    assert prescribe(http, new_platform, mint, person, giltigTom=days_from_today(366))["giltigTom"] == \
        days_from_today(366)
    for bad in (days_from_today(367), days_from_today(-1)):
        r = http.post(f"{new_platform.legacy}/ordinationer", json=new_prescription(person, giltigTom=bad),
                      headers=mint("prescriber"))
        assert (r.status_code, r.json()["kod"]) == (422, "OGILTIG_GILTIGHETSTID")
    registered = str(patients[0]["id"])
    wrong_check_digit = registered[:-1] + str((int(registered[-1]) + 1) % 10)
    r = http.post(f"{new_platform.legacy}/ordinationer", json=new_prescription(wrong_check_digit),
                  headers=mint("prescriber"))
    assert (r.status_code, r.json()["kod"]) == (404, "PATIENT_SAKNAS")
    r = http.get(f"{new_platform.legacy}/ordinationer/{uuid.uuid4()}/uttag", headers=mint("pharmacy"))
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    r = http.post(f"{new_platform.legacy}/ordinationer/{uuid.uuid4()}/uttag", headers=mint("pharmacy"),
                  json={"expeditionsId": str(uuid.uuid4()), "antalForpackningar": 1})
    assert (r.status_code, r.json()["kod"]) == (404, "ORDINATION_SAKNAS")
    r = http.get(f"{new_platform.legacy}/arbetsplatskoder/4000000", headers=mint("pharmacy"))
    assert r.json() == {"arbetsplatskod": "4000000", "giltig": True}
    r = http.get(f"{new_platform.legacy}/arbetsplatskoder/4007777", headers=mint("pharmacy"))
    assert r.json() == {"arbetsplatskod": "4007777", "giltig": False}


def test_cancellation_is_a_fhir_update(new_platform: RunningPlatform, mint: Mint, http: requests.Session,
                                       person: str) -> None:
    """MakuleraOrdination: status cancelled + statusReason through a core update with a Provenance UPDATE."""
    created = prescribe(http, new_platform, mint, person)
    r = http.post(f"{new_platform.legacy}/ordinationer/{created['ordinationId']}/makulering",
                  json={"orsak": "FEL_DOSERING", "kommentar": "Fel styrka"}, headers=mint("prescriber", 1))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "Makulerad" and r.json()["makuleringsorsak"] == "FEL_DOSERING"
    [dispensing_id] = reserve(http, new_platform, mint)
    r = withdraw(http, new_platform, mint, created["ordinationId"], dispensing_id)
    assert (r.status_code, r.json()["kod"]) == (409, "MAKULERAD")
    mr = http.get(f"{new_platform.fhir}/MedicationRequest/{created['ordinationId']}",
                  headers=fhir_headers(mint("pharmacy"))).json()
    assert mr["status"] == "cancelled" and mr["meta"]["versionId"] == "2"
    assert mr["statusReason"]["coding"] == [{"system": CANCELLATION_REASON, "code": "wrong-dosage"}]
    assert_conforms("NLLMedicationRequestStored", mr)
    provenances = http.get(f"{new_platform.fhir}/Provenance",
                           params={"target": f"MedicationRequest/{created['ordinationId']}"},
                           headers=fhir_headers(mint("prescriber"))).json()
    activities = [e["resource"]["activity"]["coding"][0] for e in provenances["entry"]]  # newest first
    assert [a["code"] for a in activities] == ["UPDATE", "CREATE"]
    assert all(a["system"] == DATA_OPERATION for a in activities)
    whos = [e["resource"]["agent"][0]["who"]["identifier"]["value"] for e in provenances["entry"]]
    assert whos == ["SE2321000016-P0002", "SE2321000016-P0001"]


def test_last_withdrawal_race(new_platform: RunningPlatform, mint: Mint, actors: dict[str, Any],
                              person: str) -> None:
    """GodkannUttag: of 8 pharmacies racing for the last withdrawal exactly one wins (10 rounds)."""
    pharmacies = len(actors["pharmacies"])
    for _ in range(10):
        with requests.Session() as http:
            created = prescribe(http, new_platform, mint, person, antalUttag=1)
            ids = [reserve(http, new_platform, mint, 1, pharmacy=i % pharmacies)[0] for i in range(8)]
        barrier = threading.Barrier(8)
        results: list[requests.Response] = []
        lock = threading.Lock()

        def race(i: int, oid: str = created["ordinationId"], ids: list[str] = ids,
                 barrier: threading.Barrier = barrier, results: list[requests.Response] = results,
                 lock: threading.Lock = lock) -> None:
            headers = mint("pharmacy", i % pharmacies)
            with requests.Session() as own:
                barrier.wait()
                r = own.post(f"{new_platform.legacy}/ordinationer/{oid}/uttag",
                             json={"expeditionsId": ids[i], "antalForpackningar": 1}, headers=headers)
            with lock:
                results.append(r)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in results)
        assert codes == [200] + [409] * 7, [r.text for r in results]
        assert {r.json()["kod"] for r in results if r.status_code == 409} == {"SLUTEXPEDIERAD"}


def test_restart_keeps_data(tmp_path: Path, ticket_key_file: Path, mint: Mint, person: str) -> None:
    """The store is the SQLite file in the run directory: a restarted platform keeps its data."""
    first = start_platform("new", tmp_path, ticket_key_file)
    try:
        with requests.Session() as http:
            created = prescribe(http, first, mint, person)
            [dispensing_id] = reserve(http, first, mint)
            assert withdraw(http, first, mint, created["ordinationId"], dispensing_id).status_code == 200
    finally:
        first.stop()
    second = start_platform("new", tmp_path, ticket_key_file)
    try:
        with requests.Session() as http:
            history = http.get(f"{second.legacy}/patienter/{person}/ordinationer/historik",
                               headers=mint("prescriber")).json()
            assert [h["ordination"]["ordinationId"] for h in history["ordinationer"]] == [created["ordinationId"]]
            assert len(history["ordinationer"][0]["uttag"]) == 1
            r = http.get(f"{second.fhir}/MedicationRequest/{created['ordinationId']}",
                         headers=fhir_headers(mint("prescriber")))
            assert r.status_code == 200
    finally:
        second.stop()


def test_ticket_rules(new_platform: RunningPlatform, mint: Mint, http: requests.Session, person: str) -> None:
    """Tickets: missing or expired -> 401 (first of all checks); wrong role -> 403 after request validation."""
    legacy, fhir = new_platform.legacy, new_platform.fhir
    r = http.get(f"{legacy}/patienter/{person}")
    assert (r.status_code, r.json()["kod"]) == (401, "EJ_AUTENTISERAD")
    expired = mint("prescriber", 0, exp=1_000_000_000, iat=999_999_000)
    r = http.post(f"{legacy}/ordinationer", json={"bad": True}, headers=expired)
    assert (r.status_code, r.json()["kod"]) == (401, "EJ_AUTENTISERAD")
    r = http.post(f"{legacy}/ordinationer", json=new_prescription(person), headers=mint("pharmacy"))
    assert (r.status_code, r.json()["kod"]) == (403, "EJ_BEHORIG")
    r = http.post(f"{legacy}/ordinationer", json={"bad": True}, headers=mint("pharmacy"))
    assert (r.status_code, r.json()["kod"]) == (400, "FELAKTIG_BEGARAN")
    r = http.post(f"{legacy}/expeditionsid", json={"antal": 1}, headers=mint("prescriber"))
    assert (r.status_code, r.json()["kod"]) == (403, "EJ_BEHORIG")

    r = http.get(f"{fhir}/MedicationRequest", params={"patient-identifier": f"{PERSONNUMMER}|{person}"},
                 headers=fhir_headers({}))
    assert r.status_code == 401 and r.json()["resourceType"] == "OperationOutcome"
    r = http.post(f"{fhir}/MedicationRequest", data=json.dumps(fhir_prescription(person)),
                  headers=fhir_headers(mint("pharmacy")))
    assert r.status_code == 403 and r.json()["issue"][0]["code"] == "forbidden"
    r = http.post(f"{fhir}/MedicationDispense", data=json.dumps(fhir_dispensing(person, str(uuid.uuid4()))),
                  headers=fhir_headers(mint("prescriber")))
    assert r.status_code == 403


# ---- FHIR: the core seen directly, and the two interfaces on one store ----


def test_legacy_prescription_reads_back_through_fhir(new_platform: RunningPlatform, mint: Mint,
                                                     http: requests.Session,
                                                     patients: list[dict[str, Any]]) -> None:
    """Mapping prescription.fields: a legacy prescription is a MedicationRequest of the NLL shape."""
    person = kind_of(patients, "samordningsnummer", skip=3)
    created = prescribe(http, new_platform, mint, person, antalUttag=3, forskrivningstyp="TELEFON")
    r = http.get(f"{new_platform.fhir}/MedicationRequest/{created['ordinationId']}",
                 headers=fhir_headers(mint("pharmacy")))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    mr = r.json()
    assert mr["id"] == created["ordinationId"] and mr["status"] == "active"
    assert {"system": PRESCRIPTION_ID, "value": mr["id"]} in mr["identifier"]
    assert mr["subject"]["identifier"] == {"system": SAMORDNINGSNUMMER, "value": person}
    assert mr["authoredOn"][:10] == created["utfardandedatum"] and mr["authoredOn"][-6:] in ("+01:00", "+02:00")
    assert mr["dispenseRequest"]["validityPeriod"]["end"] == created["giltigTom"]
    assert mr["dispenseRequest"]["numberOfRepeatsAllowed"] == 2
    assert mr["dispenseRequest"]["quantity"] == {"value": 2, "unit": "förpackning",
                                                 "system": "http://electronichealth.se/fhir/CodeSystem/nll-units",
                                                 "code": "pkg"}
    assert mr["dosageInstruction"][0]["text"] == created["doseringstext"]
    assert mr["medicationCodeableConcept"] == {"coding": [{"system": NPL_PACK_ID, "code": NPL_EXAMPLE}],
                                               "text": "Alvedon 500 mg tablett"}
    assert mr["category"][0]["coding"] == [{"system": PRESCRIPTION_FORMAT, "code": "telephone"}]
    [practitioner] = [c for c in mr["contained"] if c["resourceType"] == "Practitioner"]
    assert practitioner["id"] == "prescriber"
    assert practitioner["identifier"] == [{"system": HSA_ID, "value": "SE2321000016-P0001"},
                                          {"system": PRESCRIBER_CODE, "value": "1100000"}]
    assert {"url": WORKPLACE_CODE_EXT, "valueString": "4000000"} in mr["extension"]
    assert mr["meta"]["lastUpdated"] == created["senastAndrad"] and mr["meta"]["versionId"] == "1"
    assert_conforms("NLLMedicationRequestStored", mr)

    bundle = http.get(f"{new_platform.fhir}/MedicationRequest",
                      params={"patient-identifier": f"{SAMORDNINGSNUMMER}|{person}"},
                      headers=fhir_headers(mint("prescriber"))).json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset" and bundle["total"] == 1
    assert bundle["entry"][0]["resource"] == mr
    assert_conforms("MedicationRequestBundle", bundle)
    wrong_system = http.get(f"{new_platform.fhir}/MedicationRequest",
                            params={"patient-identifier": f"{PERSONNUMMER}|{person}"},
                            headers=fhir_headers(mint("prescriber"))).json()
    assert wrong_system["total"] == 0
    by_identifier = http.get(f"{new_platform.fhir}/MedicationRequest",
                             params={"identifier": f"{PRESCRIPTION_ID}|{mr['id']}"},
                             headers=fhir_headers(mint("prescriber"))).json()
    assert by_identifier["total"] == 1


def test_fhir_dispensing_shows_in_legacy(new_platform: RunningPlatform, mint: Mint, http: requests.Session,
                                         person: str) -> None:
    """A MedicationDispense POSTed on FHIR is a withdrawal: uttagKvar drops, the history shows it."""
    created = prescribe(http, new_platform, mint, person, antalUttag=3)
    dispense = fhir_dispensing(person, created["ordinationId"])
    r = http.post(f"{new_platform.fhir}/MedicationDispense", data=json.dumps(dispense),
                  headers=fhir_headers(mint("pharmacy", 2), prefer="return=minimal"))
    assert r.status_code == 201, r.text
    md = r.json()
    assert_conforms("NLLMedicationDispenseStored", md)
    assert r.headers["location"] == f"{new_platform.fhir}/MedicationDispense/{md['id']}"
    assert http.get(r.headers["location"], headers=fhir_headers(mint("prescriber"))).json() == md
    current = http.get(f"{new_platform.legacy}/patienter/{person}/ordinationer/aktuella",
                       headers=mint("pharmacy")).json()
    assert current["ordinationer"][0]["uttagKvar"] == 2
    history = http.get(f"{new_platform.legacy}/patienter/{person}/ordinationer/historik",
                       headers=mint("pharmacy")).json()
    [uttag] = history["ordinationer"][0]["uttag"]
    assert uttag["uttagId"] == md["id"] and uttag["expeditionsId"] == dispense["identifier"][0]["value"]
    assert uttag["apotekGln"] == "7350001086422" and uttag["uttagKvar"] == 2
    by_prescription = http.get(f"{new_platform.fhir}/MedicationDispense",
                               params={"prescription": f"MedicationRequest/{created['ordinationId']}"},
                               headers=fhir_headers(mint("pharmacy"))).json()
    assert [e["resource"]["id"] for e in by_prescription["entry"]] == [md["id"]]
    assert_conforms("MedicationDispenseBundle", by_prescription)
    provenance = http.get(f"{new_platform.fhir}/Provenance",
                          params={"target": f"MedicationRequest/{created['ordinationId']}"},
                          headers=fhir_headers(mint("pharmacy"))).json()
    # newest first: the withdrawal's change of the prescription, then its creation
    assert [e["resource"]["activity"]["coding"][0]["code"] for e in provenance["entry"]] == ["UPDATE", "CREATE"]
    assert provenance["entry"][0]["resource"]["agent"][0]["who"]["identifier"] == {"system": GLN,
                                                                                   "value": "7350001086422"}
    for entry in provenance["entry"]:
        assert_conforms("Provenance", entry["resource"])
    too_many = http.post(f"{new_platform.fhir}/MedicationDispense",
                         data=json.dumps(fhir_dispensing(person, created["ordinationId"], packages=3)),
                         headers=fhir_headers(mint("pharmacy", 2)))
    assert too_many.status_code == 409 and too_many.json()["resourceType"] == "OperationOutcome"


def test_fhir_errors_are_operation_outcomes(new_platform: RunningPlatform, mint: Mint, http: requests.Session,
                                            person: str) -> None:
    """Errors: unknown id 404, missing x-request-id 400, bad body 400, unknown route 404, nll-1 422."""
    fhir = new_platform.fhir

    def assert_outcome(r: requests.Response, status: int) -> None:
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/fhir+json")
        assert_conforms("OperationOutcome", r.json())

    assert_outcome(http.get(f"{fhir}/MedicationRequest/{uuid.uuid4()}", headers=fhir_headers(mint("prescriber"))),
                   404)
    headers = fhir_headers(mint("prescriber"))
    del headers["x-request-id"]
    assert_outcome(http.get(f"{fhir}/MedicationRequest/{uuid.uuid4()}", headers=headers), 400)
    assert_outcome(http.post(f"{fhir}/MedicationRequest", data=b"{not json",
                             headers=fhir_headers(mint("prescriber"))), 400)
    assert_outcome(http.post(f"{fhir}/MedicationRequest", data=json.dumps({"resourceType": "Patient"}),
                             headers=fhir_headers(mint("prescriber"))), 400)
    assert_outcome(http.post(f"{fhir}/MedicationRequest",
                             data=json.dumps({**fhir_prescription(person), "authoredOn": "yesterday"}),
                             headers=fhir_headers(mint("prescriber"))), 400)
    assert_outcome(http.post(f"{fhir}/MedicationRequest", data=json.dumps(fhir_prescription(person)),
                             headers=fhir_headers(mint("prescriber"), **{"content-type": "text/plain"})), 400)
    backwards = fhir_prescription(person)
    backwards["dispenseRequest"]["validityPeriod"] = {"start": today(), "end": days_from_today(-1)}
    assert_outcome(http.post(f"{fhir}/MedicationRequest", data=json.dumps(backwards),
                             headers=fhir_headers(mint("prescriber"))), 422)
    assert_outcome(http.get(f"{fhir}/Patient/x", headers=fhir_headers(mint("prescriber"))), 404)
    assert_outcome(http.get(f"{fhir}/MedicationRequest", params={"_count": "0"},
                            headers=fhir_headers(mint("prescriber"))), 400)
    assert_outcome(http.post(f"{fhir}/MedicationDispense",
                             data=json.dumps(fhir_dispensing(person, str(uuid.uuid4()))),
                             headers=fhir_headers(mint("pharmacy"))), 404)


def test_metadata_serves_the_capability_statement(new_platform: RunningPlatform, http: requests.Session) -> None:
    """GET /fhir/metadata, without a ticket: the server's own statement (kind instance, software, implementation)
    with the contract's rest, formats and FHIR version (contracts/fhir/CapabilityStatement-*.json)."""
    files = sorted((CONTRACTS / "fhir").glob("CapabilityStatement-*.json"))
    assert files, "contracts/fhir has no CapabilityStatement"
    contract = json.loads(files[0].read_text(encoding="utf-8"))
    r = http.get(f"{new_platform.fhir}/metadata")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    served = r.json()
    assert served["resourceType"] == "CapabilityStatement" and served["kind"] == "instance"
    assert served["implementation"]["url"] == new_platform.fhir and served["software"]["name"]
    assert {k: served[k] for k in ("rest", "format", "fhirVersion")} == {
        k: contract[k] for k in ("rest", "format", "fhirVersion")}


def test_paging_returns_each_prescription_once(new_platform: RunningPlatform, mint: Mint, http: requests.Session,
                                               person: str) -> None:
    """MedicationRequest.search: _count=2 over 5 prescriptions, following next links, gives each once."""
    made = []
    for _ in range(5):
        r = http.post(f"{new_platform.fhir}/MedicationRequest", data=json.dumps(fhir_prescription(person)),
                      headers=fhir_headers(mint("prescriber")))
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    url: str | None = f"{new_platform.fhir}/MedicationRequest?patient-identifier={PERSONNUMMER}|{person}&_count=2"
    seen: list[str] = []
    pages = 0
    while url:
        bundle = http.get(url, headers=fhir_headers(mint("pharmacy"))).json()
        assert bundle["total"] == 5
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        pages += 1
    assert pages == 3 and sorted(seen) == sorted(made) and len(seen) == 5
    for query, expected in ((f"ge{today()}", 5), (f"lt{today()}", 0), (today(), 5)):
        bundle = http.get(f"{new_platform.fhir}/MedicationRequest",
                          params={"patient-identifier": f"{PERSONNUMMER}|{person}", "authoredon": query},
                          headers=fhir_headers(mint("pharmacy"))).json()
        assert bundle["total"] == expected, query


def test_monitoring(new_platform: RunningPlatform, mint: Mint, http: requests.Session,
                    patients: list[dict[str, Any]], person: str) -> None:
    """MedicationRequest/$monitoring: 1-50 personalIdentityNumber; 51 -> 400."""
    created = prescribe(http, new_platform, mint, person)

    def parameters(ids: list[str]) -> str:
        return json.dumps({"resourceType": "Parameters", "parameter": [
            {"name": "personalIdentityNumber", "valueIdentifier": {"system": PERSONNUMMER, "value": i}} for i in ids]})

    url = f"{new_platform.fhir}/MedicationRequest/$monitoring"
    r = http.post(url, data=parameters([p["id"] for p in patients[:51]]), headers=fhir_headers(mint("pharmacy")))
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    r = http.post(url, data=parameters([]), headers=fhir_headers(mint("pharmacy")))
    assert r.status_code == 400
    r = http.post(url, data=parameters([person]), headers=fhir_headers(mint("pharmacy")))
    assert r.status_code == 200, r.text
    assert [e["resource"]["id"] for e in r.json()["entry"]] == [created["ordinationId"]]


# ---- faults: each switched-on fault changes what it should ----


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path) -> Iterator[RunningPlatform]:
    platform = start_platform("new", tmp_path_factory.mktemp("new-faulty"), ticket_key_file,
                              ["transformer-default-validity-365", "transformer-cancelled-as-completed"])
    yield platform
    platform.stop()


def test_fault_default_validity_365(faulty: RunningPlatform, mint: Mint, http: requests.Session,
                                    person: str) -> None:
    """Fault transformer-default-validity-365: the default validity is issue date + 365 days."""
    assert prescribe(http, faulty, mint, person)["giltigTom"] == days_from_today(365)
    assert prescribe(http, faulty, mint, person, forskrivningstyp="TELEFON")["giltigTom"] == days_from_today(14)


def test_fault_cancelled_as_completed(faulty: RunningPlatform, mint: Mint, http: requests.Session,
                                      person: str) -> None:
    """Fault transformer-cancelled-as-completed: a cancelled prescription shows as Slutexpedierad."""
    created = prescribe(http, faulty, mint, person)
    r = http.post(f"{faulty.legacy}/ordinationer/{created['ordinationId']}/makulering", json={"orsak": "OVRIGT"},
                  headers=mint("prescriber"))
    assert r.status_code == 200 and r.json()["status"] == "Slutexpedierad"
    mr = http.get(f"{faulty.fhir}/MedicationRequest/{created['ordinationId']}",
                  headers=fhir_headers(mint("prescriber"))).json()
    assert mr["status"] == "cancelled"  # the core is right; only the transformer's mapping is wrong
