"""The reconciliation's comparison: records matched by id, each difference named, noise learned, FHIR by the mapping."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rxverify.differential import Noise
from rxverify.mapping import load_mapping
from rxverify.reconcile.compare import Comparison, learn_noise
from rxverify.reconcile.reads import FhirView

from .conftest import CONTRACTS

MAPPING = load_mapping(CONTRACTS / "mapping" / "legacy-fhir.yaml")
PID = "191212121212"
OID, UID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301", "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"
LONG = "1 tablett morgon och kväll " + "ä" * 300


def prescription(**changes: Any) -> dict[str, Any]:
    base = {
        "ordinationId": OID, "personId": PID, "status": "Aktiv", "utfardandedatum": "2026-03-01",
        "giltigTom": "2027-03-02", "lakemedel": {"nplPackId": "19990101100001", "namn": "Alvedon 500 mg tablett"},
        "doseringstext": LONG, "antalForpackningar": 1, "antalUttag": 3, "uttagKvar": 2,
        "forskrivningstyp": "ELEKTRONISK",
        "forskrivare": {"hsaId": "SE2321000016-P0001", "forskrivarkod": "1234567", "arbetsplatskod": "4000000"},
        "senastAndrad": "2026-03-05T10:00:00.000Z",
    }
    return base | changes


def withdrawal() -> dict[str, Any]:
    return {"uttagId": UID, "ordinationId": OID, "personId": PID, "expeditionsId": "e1", "apotekGln": "7350001000008",
            "antalForpackningar": 1, "tidpunkt": "2026-03-05T10:00:00.000Z", "uttagKvar": 2,
            "ordinationsstatus": "Aktiv"}


def answers(**over: Any) -> dict[str, Any]:
    docs = {
        "HamtaPatientInfo": {"status": 200, "kod": None, "body": {"personId": PID, "samtycke": True}},
        "HamtaAktuellaOrdinationer": {"status": 200, "kod": None, "body": {"personId": PID,
                                                                          "ordinationer": [prescription()]}},
        "HamtaOrdinationshistorik": {"status": 200, "kod": None, "body": {"personId": PID, "ordinationer": [
            {"ordination": prescription(), "uttag": [withdrawal()]}]}},
        "HamtaLakemedelsforteckning": {"status": 200, "kod": None, "body": {"personId": PID, "poster": []}},
    }
    return docs | over


def compare(old: dict[str, Any], new: dict[str, Any], kind: str = "personnummer") -> list[str]:
    return [str(d) for d in Comparison(MAPPING, Noise(frozenset())).patient(PID, kind, old, new, None)]


def test_the_same_answers_have_no_difference_and_instants_compare_as_moments() -> None:
    new = copy.deepcopy(answers())
    moved = new["HamtaOrdinationshistorik"]["body"]["ordinationer"][0]["ordination"]
    moved["senastAndrad"] = "2026-03-05T11:00:00+01:00"  # the same moment at another offset
    assert compare(answers(), new) == []


def test_a_lost_prescription_is_one_difference_named_by_its_id() -> None:
    new = copy.deepcopy(answers())
    new["HamtaOrdinationshistorik"]["body"]["ordinationer"] = []
    new["HamtaAktuellaOrdinationer"]["body"]["ordinationer"] = []
    found = compare(answers(), new)
    assert found == [
        f"19********12 (personnummer) [new legacy] HamtaAktuellaOrdinationer ordinationer[ordinationId={OID}]: "
        "old='present' new='absent'",
        f"19********12 (personnummer) [new legacy] HamtaOrdinationshistorik ordinationer[ordinationId={OID}]: "
        "old='present' new='absent'",
        "19********12 (personnummer) [new legacy] all reads records: old='1 record' new='none' "
        "(none of the patient's data is on the new platform)",
    ]


def test_a_lost_withdrawal_and_its_uttagkvar_are_named() -> None:
    new = copy.deepcopy(answers())
    item = new["HamtaOrdinationshistorik"]["body"]["ordinationer"][0]
    item["uttag"], item["ordination"]["uttagKvar"] = [], 3
    found = compare(answers(), new)
    assert any(f"uttag[uttagId={UID}]: old='present' new='absent'" in f for f in found)
    assert any(f.endswith("].ordination.uttagKvar: old=2 new=3") for f in found)


def test_a_cut_text_says_where_it_was_cut_and_a_wrong_status_names_both() -> None:
    new = copy.deepcopy(answers())
    new["HamtaAktuellaOrdinationer"]["body"]["ordinationer"][0] |= {"doseringstext": LONG[:255], "status": "Parkerad"}
    found = compare(answers(), new)
    assert any("].doseringstext: old='1 tablett" in f and "(new is old cut at 255 characters)" in f for f in found)
    assert any(f.endswith("].status: old='Aktiv' new='Parkerad'") for f in found)


def test_a_patient_missing_on_new_is_a_different_answer_with_its_kind() -> None:
    missing = {"status": 500, "kod": "PATIENT_SAKNAS", "body": None}
    found = compare(answers(), {op: missing for op in answers()}, "samordningsnummer")
    assert "19********12 (samordningsnummer) [new legacy] HamtaPatientInfo answer: old='200' new='500 PATIENT_SAKNAS'" \
        in found
    assert len(found) == 5 and found[-1].startswith("19********12 (samordningsnummer) [new legacy] all reads records")


def test_noise_learned_from_two_old_reads_is_not_a_difference() -> None:
    first, second = {PID: answers()}, {PID: copy.deepcopy(answers())}
    second[PID]["HamtaPatientInfo"]["body"]["samtycke"] = False  # differs between two old reads: noise
    noise = learn_noise(first, second)
    new = copy.deepcopy(answers())
    new["HamtaPatientInfo"]["body"]["samtycke"] = False
    assert Comparison(MAPPING, noise).patient(PID, "personnummer", answers(), new, None) == []
    assert compare(answers(), new) == ["19********12 (personnummer) [new legacy] HamtaPatientInfo samtycke: "
                                       "old=True new=False"]


def fhir(status: str = "active", text: str = LONG, authored: str = "2026-03-01T09:00:00.000+01:00") -> dict[str, Any]:
    mr = {
        "resourceType": "MedicationRequest", "id": OID, "meta": {"lastUpdated": "2026-03-05T10:00:00.000Z"},
        "contained": [{"resourceType": "Practitioner", "id": "prescriber", "identifier": [
            {"system": MAPPING.system("hsa_id"), "value": "SE2321000016-P0001"},
            {"system": MAPPING.system("prescriber_code"), "value": "1234567"}]}],
        "extension": [{"url": MAPPING.system("workplace_code_extension"), "valueString": "4000000"}],
        "status": status, "category": [{"coding": [{"system": MAPPING.system("prescription_format"),
                                                    "code": "electronic"}]}],
        "medicationCodeableConcept": {"coding": [{"system": MAPPING.system("npl_pack_id"), "code": "19990101100001"}],
                                      "text": "Alvedon 500 mg tablett"},
        "subject": {"identifier": {"system": MAPPING.identity_system(PID), "value": PID}},
        "authoredOn": authored, "dosageInstruction": [{"text": text}],
        "dispenseRequest": {"validityPeriod": {"end": "2027-03-02"}, "numberOfRepeatsAllowed": 2,
                            "quantity": {"value": 1}},
    }
    md = {
        "resourceType": "MedicationDispense", "id": UID, "status": "completed",
        "identifier": [{"system": MAPPING.system("dispensing_id"), "value": "e1"}],
        "subject": {"identifier": {"system": MAPPING.identity_system(PID), "value": PID}},
        "performer": [{"actor": {"identifier": {"value": "7350001000008"}}}],
        "authorizingPrescription": [{"reference": f"MedicationRequest/{OID}"}], "quantity": {"value": 1},
        "whenHandedOver": "2026-03-05T11:00:00.000+01:00",
    }
    consent = {"resourceType": "Consent", "status": "active", "dateTime": "2026-01-01T10:00:00Z",
               "patient": {"identifier": {"value": PID}}}
    return FhirView(MAPPING).answers({"MedicationRequest": [mr], "MedicationDispense": [md], "Consent": [consent]})


def fhir_lane(new: dict[str, Any]) -> list[str]:
    return [str(d) for d in Comparison(MAPPING, Noise(frozenset())).patient(PID, "personnummer", answers(), None, new)]


def test_fhir_resources_read_by_the_mapping_match_the_old_answers() -> None:
    assert fhir_lane(fhir()) == []


@pytest.mark.parametrize(
    ("new", "says"),
    [
        (dict(status="on-hold"), "ordination.status: old='Aktiv' new='Parkerad'"),
        (dict(text=LONG[:255]), "(new is old cut at 255 characters)"),
        (dict(authored="2026-02-28T23:30:00.000Z"), "ordination.utfardandedatum: old='2026-03-01' new='2026-03-01'"),
        (dict(authored="2026-02-28T22:30:00.000Z"), "ordination.utfardandedatum: old='2026-03-01' new='2026-02-28'"),
    ],
)
def test_the_fhir_lane_names_what_the_mapping_reads_differently(new: dict[str, Any], says: str) -> None:
    found = fhir_lane(fhir(**new))
    if "new='2026-03-01'" in says:  # 23:30 UTC is 00:30 in Stockholm: the same legacy day, no difference
        assert found == []
    else:
        assert any("[new fhir] HamtaOrdinationshistorik" in f and says in f for f in found), found


def test_a_patient_whose_records_are_all_gone_is_named_once_more_as_such() -> None:
    new = copy.deepcopy(answers())
    new["HamtaOrdinationshistorik"]["body"]["ordinationer"] = []
    found = compare(answers(), new, "samordningsnummer")
    assert found[-1] == ("19********12 (samordningsnummer) [new legacy] all reads records: old='1 record' new='none' "
                         "(none of the patient's data is on the new platform)")
