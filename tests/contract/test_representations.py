"""Across representations on the new platform: the legacy view and the FHIR view are one prescription.

Requirement: the transformer's contract (contracts/mapping/legacy-fhir.yaml): every legacy
field maps to a FHIR element. A prescription created through the legacy interface reads back
through FHIR with equivalent content, and one created through FHIR reads back through the legacy interface; a
change made through FHIR shows through the legacy interface.
The legacy side is SOAP, through the one legacy client; the mapping speaks of the old interface's
data in its JSON shape (contracts/riv/services.toml [names] and lists), which `LegacyAnswer.json` gives.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from typing import Any

import allure
import pytest
import requests
from hypothesis import assume, given
from hypothesis import strategies as st

from rxverify.checks.fhir_rules import profile_errors
from rxverify.fhir.generate import FIRST_DATE, LAST_DATE, resources
from rxverify.legacy.client import LegacyClient
from rxverify.mapping import Mapping, load_mapping
from rxverify.paths import contracts_dir
from rxverify.strategies import contract_patients
from rxverify.target.run import Run

from .legacy_steps import prescribe, shown
from .schemas import legacy as legacy_schema

pytestmark = [pytest.mark.integration, pytest.mark.platforms("new"), allure.epic("across representations")]
CREATE = legacy_schema["/SkapaOrdinationVardResponder/V6"]["POST"]
IDENTITY_KINDS = ("personnummer", "samordningsnummer")
PROFILE = "http://electronichealth.se/fhir/StructureDefinition/NLLMedicationRequest"


def _mapping() -> Mapping:
    return load_mapping(contracts_dir() / "mapping" / "legacy-fhir.yaml")


def _fhir_headers(rx_run: Run, role: str) -> dict[str, str]:
    return rx_run.auth_headers(role) | {
        "x-request-id": str(uuid.uuid4()),
        "x-context-id": str(uuid.uuid4()),
        "x-user-agent": "rxverify-contract/1",
        "Accept": "application/fhir+json",
    }


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def mismatches(mapping: Mapping, ordination: dict[str, Any], resource: dict[str, Any]) -> list[str]:
    """Every mapped field whose FHIR element does not say what the legacy field says."""
    out = []
    for field_name, path in mapping.fields("prescription").items():
        if path == "derived":
            continue
        legacy_value: Any = ordination
        for part in field_name.split("."):
            legacy_value = legacy_value.get(part) if isinstance(legacy_value, dict) else None
        fhir_value = mapping.resolve(resource, path)
        expected: Any = legacy_value
        if field_name == "status":
            expected = mapping.status_to_fhir.get(legacy_value)
        elif field_name == "utfardandedatum" and isinstance(fhir_value, str):
            fhir_value = mapping.local_date(fhir_value)
        elif field_name == "antalUttag" and isinstance(fhir_value, int):
            fhir_value += 1  # mapping rules.withdrawals_from_repeats
        elif field_name == "forskrivningstyp" and legacy_value:
            expected = mapping.code("forskrivningstyp", legacy_value)
        elif field_name == "makuleringsorsak" and legacy_value:
            expected = mapping.code("makuleringsorsak", legacy_value)
        elif field_name == "senastAndrad" and isinstance(fhir_value, str) and isinstance(legacy_value, str):
            fhir_value, expected = _moment(fhir_value), _moment(legacy_value)
        if fhir_value != expected and not (expected is None and fhir_value is None):
            out.append(
                f"{field_name}: legacy {legacy_value!r} -> expected {path} = {expected!r}, FHIR has {fhir_value!r}"
            )
    subject = resource.get("subject", {}).get("identifier", {})
    if subject.get("system") != mapping.identity_system(ordination["personId"]):
        out.append(
            f"personId {ordination['personId'][:2]}…: FHIR subject system {subject.get('system')!r}, expected "
            f"{mapping.identity_system(ordination['personId'])!r}"
        )
    return out


@allure.feature("SkapaOrdinationVard -> MedicationRequest")
@allure.story("a prescription created through the legacy interface reads back through FHIR")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.parametrize("kind", IDENTITY_KINDS)
@given(data=st.data())
def test_legacy_prescription_reads_back_through_fhir(
    data: st.DataObject, kind: str, platform: str, rx_run: Run, rx_session: requests.Session, legacy: LegacyClient
) -> None:
    """Create through legacy, read MedicationRequest/{ordinationId}: every mapped field agrees.

    Each kind of identity is its own partition: the FHIR subject system depends on it, so a
    samordningsnummer is never left to the chance of a draw.
    """
    endpoints = rx_run.target.platforms[platform]
    assert endpoints.legacy and endpoints.fhir
    patients = [p.id for p in contract_patients(rx_run.registry) if p.kind == kind]
    assert patients, f"the registry holds no {kind} test patient"
    case = data.draw(CREATE.as_strategy().filter(lambda c: "giltigTom" not in (c.body or {})), label="create")
    case.body["personnummer"] = data.draw(st.sampled_from(patients), label=kind)
    created = legacy.call("SkapaOrdinationVard", case.body, role="prescriber")
    if not created.ok:
        return  # refused by a rule (the conformance tests judge that)
    ordination = created.json
    if data.draw(st.booleans(), label="cancel first"):
        cancelled = legacy.call("MakuleraOrdinationVard", {"ordinationsId": ordination["ordinationId"],
                                                           "orsak": "FEL_DOSERING"}, role="prescriber")
        assert cancelled.ok, f"MakuleraOrdinationVard: received {shown(cancelled)}"
        ordination = cancelled.json
    read = rx_session.get(
        f"{endpoints.fhir}/MedicationRequest/{ordination['ordinationId']}",
        headers=_fhir_headers(rx_run, "pharmacy"),
        timeout=30,
    )
    assert read.status_code == 200, read.text
    problems = mismatches(_mapping(), ordination, read.json())
    problems += [f"profile: {i.code} at {i.location}: {i.message}" for i in profile_errors(read.json())]
    assert not problems, "legacy and FHIR disagree:\n" + "\n".join(problems)


@allure.feature("MedicationDispense -> GodkannUttag")
@allure.story("a FHIR-side change shows through the legacy interface")
@allure.severity(allure.severity_level.CRITICAL)
def test_fhir_dispense_shows_as_legacy_withdrawal(
    platform: str, rx_run: Run, rx_session: requests.Session, legacy: LegacyClient
) -> None:
    """A MedicationDispense registered through FHIR is a withdrawal in the legacy history."""
    mapping = _mapping()
    endpoints = rx_run.target.platforms[platform]
    patient = contract_patients(rx_run.registry)[5].id
    oid = prescribe(legacy, patient, packages=2, withdrawals=2, doseringstext="1 kopp på kvällen",
                    lakemedel={"nplPackId": "19990101100001", "namn": "Åkerört örtte"})
    dispensing_id = str(uuid.uuid4())
    gln = rx_run.actors.pharmacies[0]["gln"]
    dispense = {
        "resourceType": "MedicationDispense",
        "identifier": [{"system": mapping.system("dispensing_id"), "value": dispensing_id}],
        "status": mapping.raw["status"]["dispensing"]["registered"],
        "subject": {"identifier": {"system": mapping.identity_system(patient), "value": patient}},
        "authorizingPrescription": [{"reference": f"MedicationRequest/{oid}"}],
        "medicationCodeableConcept": {
            "coding": [{"system": mapping.system("npl_pack_id"), "code": "19990101100001"}],
            "text": "Åkerört örtte",
        },
        "quantity": {
            "value": 1,
            "unit": "förpackning",
            "system": "http://electronichealth.se/fhir/CodeSystem/nll-units",
            "code": "pkg",
        },
        "performer": [{"actor": {"identifier": {"system": mapping.system("gln"), "value": gln}}}],
        "whenHandedOver": datetime.now(mapping.time_zone).isoformat(timespec="seconds"),
    }
    posted = rx_session.post(
        f"{endpoints.fhir}/MedicationDispense",
        json=dispense,
        headers=_fhir_headers(rx_run, "pharmacy") | {"Content-Type": "application/fhir+json"},
        timeout=30,
    )
    assert posted.status_code == 201, posted.text
    answer = legacy.call("HamtaOrdinationshistorik", {"personnummer": patient}, role="pharmacy")
    assert answer.ok, f"HamtaOrdinationshistorik: received {shown(answer)}"
    history = answer.json
    item = next(i for i in history["ordinationer"] if i["ordination"]["ordinationId"] == oid)
    assert item["ordination"]["uttagKvar"] == 1, item
    assert [u["expeditionsId"] for u in item["uttag"]] == [dispensing_id], item
    assert item["uttag"][0]["apotekGln"] == gln and item["uttag"][0]["antalForpackningar"] == 1, item


def _moments_at_day_edges(zone: Any) -> st.SearchStrategy[str]:
    """FHIR dateTimes of a prescription where a conversion to a legacy date errs: the last hour before
    local midnight and the first after, around noon (a rounding of days), any time; winter (CET) and
    summer (CEST) days; written with the local offset or in UTC."""
    times = st.one_of(st.times(time(23, 0), time(23, 59, 59)), st.times(time(0, 0), time(0, 59, 59)),
                      st.times(time(11, 59), time(12, 0, 59)), st.times())
    local = st.builds(lambda d, t: datetime.combine(d, t.replace(microsecond=0), zone),
                      st.dates(FIRST_DATE, LAST_DATE), times)
    return st.builds(lambda m, utc: m.astimezone(UTC).isoformat().replace("+00:00", "Z") if utc else m.isoformat(),
                     local, st.booleans())


@allure.feature("MedicationRequest -> HamtaOrdinationshistorik")
@allure.story("a prescription created through FHIR reads back through the legacy interface")
@allure.severity(allure.severity_level.CRITICAL)
@given(data=st.data())
def test_fhir_prescription_reads_back_through_legacy(
    data: st.DataObject, platform: str, rx_run: Run, rx_session: requests.Session, legacy: LegacyClient
) -> None:
    """Create a generated MedicationRequest through FHIR, authored at a day's edge; read the patient's
    history through the legacy interface: every mapped field agrees (utfardandedatum is the Stockholm
    date of authoredOn, whatever its offset and season)."""
    mapping = _mapping()
    endpoints = rx_run.target.platforms[platform]
    assert endpoints.legacy and endpoints.fhir
    registry = rx_run.registry.subset(contract_patients(rx_run.registry))
    resource = data.draw(resources(PROFILE, registry=registry), label="MedicationRequest")
    resource["status"] = "active"  # a prescription is born active
    resource.pop("statusReason", None)
    resource["authoredOn"] = data.draw(_moments_at_day_edges(mapping.time_zone), label="authoredOn")
    posted = rx_session.post(f"{endpoints.fhir}/MedicationRequest", json=resource,
                             headers=_fhir_headers(rx_run, "prescriber") | {"Content-Type": "application/fhir+json"},
                             timeout=30)
    assume(posted.status_code != 422)  # a business rule (the validity against the new date)
    assert posted.status_code == 201, f"MedicationRequest.create: {posted.status_code} {posted.text[:300]}"
    stored = posted.json()
    patient = stored["subject"]["identifier"]["value"]
    answer = legacy.call("HamtaOrdinationshistorik", {"personnummer": patient}, role="pharmacy")
    assert answer.ok, f"HamtaOrdinationshistorik: received {shown(answer)}"
    found = [i["ordination"] for i in answer.json.get("ordinationer", [])
             if i["ordination"]["ordinationId"] == stored["id"]]
    assert found, f"HamtaOrdinationshistorik does not list MedicationRequest/{stored['id']}, created through FHIR"
    problems = mismatches(mapping, found[0], stored)
    assert not problems, f"FHIR (authoredOn {stored.get('authoredOn')}) and legacy disagree:\n" + "\n".join(problems)
