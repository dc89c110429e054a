"""The fault catalogue: each seeded fault, switched on, changes what it should at the HTTP level.

Faults that do not interfere share one platform process; the performance faults get their own.
Each test names its fault; the platform tests (test_old_platform, test_new_platform) show the
same operations are right with no fault on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from .conftest import ROOT, RunningPlatform, start_platform
from .test_new_platform import fhir_prescription

pytestmark = pytest.mark.platforms("new")

Mint = Callable[..., dict[str, str]]
STOCKHOLM = ZoneInfo("Europe/Stockholm")
PERSONNUMMER = "http://electronichealth.se/identifier/personnummer"
SAMORDNINGSNUMMER = "http://electronichealth.se/identifier/samordningsnummer"
PRESCRIPTION_ID = "http://electronichealth.se/identifier/nllmedicationrequestid"
PRESCRIPTION_FORMAT = "http://electronichealth.se/fhir/CodeSystem/nll-prescription-format"
NPL_EXAMPLE = "19990101100001"
KINDS = {"mapping", "fhir-conformance", "behaviour", "security", "performance", "migration", "wire"}

MAPPING_FAULTS = [
    "transformer-drops-doseringstext", "transformer-utc-dates", "transformer-quantity-rounded",
    "transformer-mojibake", "transformer-samordningsnummer-as-personnummer", "transformer-category-legacy-code",
]
FHIR_FAULTS = [
    "fhir-drops-validity-period", "fhir-search-ignores-status", "fhir-paging-repeats-entries",
    "fhir-404-without-operationoutcome", "fhir-read-wrong-content-type", "fhir-pharmacy-may-prescribe",
    "core-wrong-prescription-identifier-system", "fhir-metadata-omits-search-param",
]
BEHAVIOUR_FAULTS = [
    "fhir-metadata-searchset-bundle",  # here: the FHIR group reads /metadata
    "core-cancelled-withdrawable", "core-packages-not-checked", "transformer-lf-without-consent",
    "transformer-last-withdrawal-race", "transformer-patientinfo-without-ticket",
    "transformer-aktuella-slow-under-load",  # only HamtaAktuellaOrdinationer, which no other test here uses
]


def today() -> str:
    return datetime.now(STOCKHOLM).date().isoformat()


def days_from_today(days: int) -> str:
    return (datetime.now(STOCKHOLM).date() + timedelta(days=days)).isoformat()


def fhir_headers(ticket: dict[str, str], **extra: str) -> dict[str, str]:
    return {**ticket, "x-request-id": str(uuid.uuid4()), "x-context-id": str(uuid.uuid4()),
            "x-user-agent": "rxverify-unit/1.0", "content-type": "application/fhir+json", **extra}


def prescribe(http: requests.Session, platform: RunningPlatform, mint: Mint, person_id: str,
              **override: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "personId": person_id,
        "lakemedel": {"nplPackId": NPL_EXAMPLE, "namn": "Alvedon 500 mg tablett"},
        "doseringstext": "1 tablett 3 gånger dagligen vid behov",
        "antalForpackningar": 2,
        "antalUttag": 2,
        "forskrivningstyp": "ELEKTRONISK",
        **override,
    }
    r = http.post(f"{platform.legacy}/ordinationer", json=body, headers=mint("prescriber", 0))
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


def read_mr(http: requests.Session, platform: RunningPlatform, mint: Mint, rid: str) -> requests.Response:
    return http.get(f"{platform.fhir}/MedicationRequest/{rid}", headers=fhir_headers(mint("prescriber")))


def of_kind(patients: list[dict[str, Any]], kind: str, index: int) -> str:
    return str([p for p in patients if p["kind"] == kind][index]["id"])


def _start(tmp_path_factory: pytest.TempPathFactory, key: Path, faults: list[str]) -> Iterator[RunningPlatform]:
    platform = start_platform("new", tmp_path_factory.mktemp("faults"), key, faults)
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
def mapping(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path) -> Iterator[RunningPlatform]:
    yield from _start(tmp_path_factory, ticket_key_file, MAPPING_FAULTS)


@pytest.fixture(scope="module")
def fhir(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path) -> Iterator[RunningPlatform]:
    yield from _start(tmp_path_factory, ticket_key_file, FHIR_FAULTS)


@pytest.fixture(scope="module")
def behaviour(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path) -> Iterator[RunningPlatform]:
    yield from _start(tmp_path_factory, ticket_key_file, BEHAVIOUR_FAULTS)


# ---- the catalogue ----


def test_list_faults_names_at_least_24_with_kinds_and_descriptions() -> None:
    """`python -m refplatform --list-faults`: >= 24 faults, each with platform, kind and description."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run([sys.executable, "-m", "refplatform", "--list-faults"], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=60, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines() if line.strip()]
    assert len(rows) >= 24, out
    assert all(len(r) == 4 for r in rows), out
    names = [r[0] for r in rows]
    assert len(set(names)) == len(names)
    for name, platform, kind, description in rows:
        assert platform in ("old", "new", "both", "migration", "gateway"), name
        assert kind in KINDS, name
        assert len(description) > 20, name
    assert {r[2] for r in rows} == KINDS
    new = [r for r in rows if r[1] == "new"]
    assert len(new) > len(rows) / 2
    # every fault this file switches on is in the catalogue
    assert set(MAPPING_FAULTS + FHIR_FAULTS + BEHAVIOUR_FAULTS) <= set(names)
    assert {"new-periodic-stall", "new-503-under-concurrency"} <= set(names)


# ---- transformer mapping ----


def test_drops_doseringstext(mapping: RunningPlatform, mint: Mint, http: requests.Session,
                            patients: list[dict[str, Any]]) -> None:
    """transformer-drops-doseringstext: the Ordination's doseringstext is empty (FHIR still has it)."""
    created = prescribe(http, mapping, mint, of_kind(patients, "personnummer", 20))
    assert created["doseringstext"] == ""
    mr = read_mr(http, mapping, mint, created["ordinationId"]).json()
    assert mr["dosageInstruction"][0]["text"] == "1 tablett 3 gånger dagligen vid behov"


def test_utc_dates(mapping: RunningPlatform, mint: Mint, http: requests.Session,
                   patients: list[dict[str, Any]]) -> None:
    """transformer-utc-dates: giltigTom (a Stockholm date) comes out one day early; utfardandedatum is
    the UTC date of authoredOn."""
    created = prescribe(http, mapping, mint, of_kind(patients, "personnummer", 21), giltigTom=days_from_today(30))
    assert created["giltigTom"] == days_from_today(29)
    mr = read_mr(http, mapping, mint, created["ordinationId"]).json()
    assert mr["dispenseRequest"]["validityPeriod"]["end"] == days_from_today(30)
    authored = datetime.fromisoformat(mr["authoredOn"])
    assert created["utfardandedatum"] == authored.astimezone(UTC).date().isoformat()


def test_quantity_rounded(mapping: RunningPlatform, mint: Mint, http: requests.Session,
                          patients: list[dict[str, Any]]) -> None:
    """transformer-quantity-rounded: 3 packages per withdrawal, 2 withdrawals -> antalForpackningar 1."""
    created = prescribe(http, mapping, mint, of_kind(patients, "personnummer", 22), antalForpackningar=3)
    assert created["antalForpackningar"] == 1
    mr = read_mr(http, mapping, mint, created["ordinationId"]).json()
    assert mr["dispenseRequest"]["quantity"]["value"] == 3


def test_mojibake(mapping: RunningPlatform, mint: Mint, http: requests.Session,
                  patients: list[dict[str, Any]]) -> None:
    """transformer-mojibake: å/ä/ö in medication and patient names come out as UTF-8 read as latin-1."""
    person = next(p for p in patients if p["kind"] == "personnummer" and "Å" in p["givenName"] + p["familyName"])
    created = prescribe(http, mapping, mint, person["id"], lakemedel={"nplPackId": NPL_EXAMPLE,
                                                                        "namn": "Näsdroppar för små barn"})
    assert created["lakemedel"]["namn"] == "NÃ¤sdroppar fÃ¶r smÃ¥ barn"
    info = http.get(f"{mapping.legacy}/patienter/{person['id']}", headers=mint("pharmacy")).json()
    assert (info["fornamn"], info["efternamn"]) == (
        person["givenName"].encode().decode("latin-1"), person["familyName"].encode().decode("latin-1"))
    assert "Ã" in info["fornamn"] + info["efternamn"]


def test_samordningsnummer_as_personnummer(mapping: RunningPlatform, mint: Mint, http: requests.Session,
                                           patients: list[dict[str, Any]]) -> None:
    """transformer-samordningsnummer-as-personnummer: identitetstyp and the FHIR subject system are wrong."""
    person = of_kind(patients, "samordningsnummer", 0)
    info = http.get(f"{mapping.legacy}/patienter/{person}", headers=mint("pharmacy")).json()
    assert info["identitetstyp"] == "PERSONNUMMER"
    created = prescribe(http, mapping, mint, person)
    mr = read_mr(http, mapping, mint, created["ordinationId"]).json()
    assert mr["subject"]["identifier"] == {"system": PERSONNUMMER, "value": person}


def test_category_legacy_code(mapping: RunningPlatform, mint: Mint, http: requests.Session,
                              patients: list[dict[str, Any]]) -> None:
    """transformer-category-legacy-code: FHIR category code TELEFON (not in the binding); legacy looks right."""
    created = prescribe(http, mapping, mint, of_kind(patients, "personnummer", 23), forskrivningstyp="TELEFON")
    assert created["forskrivningstyp"] == "TELEFON"
    mr = read_mr(http, mapping, mint, created["ordinationId"]).json()
    assert mr["category"][0]["coding"] == [{"system": PRESCRIPTION_FORMAT, "code": "TELEFON"}]


# ---- FHIR conformance and the FHIR API's security ----


def test_drops_validity_period(fhir: RunningPlatform, mint: Mint, http: requests.Session,
                               patients: list[dict[str, Any]]) -> None:
    """fhir-drops-validity-period: read and search lack dispenseRequest.validityPeriod; legacy keeps giltigTom."""
    person = of_kind(patients, "personnummer", 30)
    created = prescribe(http, fhir, mint, person)
    assert created["giltigTom"] == days_from_today(366)
    mr = read_mr(http, fhir, mint, created["ordinationId"]).json()
    assert "validityPeriod" not in mr["dispenseRequest"]
    bundle = http.get(f"{fhir.fhir}/MedicationRequest", params={"patient-identifier": f"{PERSONNUMMER}|{person}"},
                      headers=fhir_headers(mint("pharmacy"))).json()
    assert bundle["total"] == 1
    assert "validityPeriod" not in bundle["entry"][0]["resource"]["dispenseRequest"]


def test_search_ignores_status(fhir: RunningPlatform, mint: Mint, http: requests.Session,
                               patients: list[dict[str, Any]]) -> None:
    """fhir-search-ignores-status: status=cancelled also returns the active prescription."""
    person = of_kind(patients, "personnummer", 31)
    active = prescribe(http, fhir, mint, person)
    cancelled = prescribe(http, fhir, mint, person)
    r = http.post(f"{fhir.legacy}/ordinationer/{cancelled['ordinationId']}/makulering", json={"orsak": "OVRIGT"},
                  headers=mint("prescriber"))
    assert r.status_code == 200
    bundle = http.get(f"{fhir.fhir}/MedicationRequest",
                      params={"patient-identifier": f"{PERSONNUMMER}|{person}", "status": "cancelled"},
                      headers=fhir_headers(mint("pharmacy"))).json()
    ids = {e["resource"]["id"] for e in bundle["entry"]}
    assert ids == {active["ordinationId"], cancelled["ordinationId"]}


def test_paging_repeats_entries(fhir: RunningPlatform, mint: Mint, http: requests.Session,
                                patients: list[dict[str, Any]]) -> None:
    """fhir-paging-repeats-entries: following next links over 4 prescriptions (_count=2) repeats entries."""
    person = of_kind(patients, "personnummer", 32)
    made = {prescribe(http, fhir, mint, person)["ordinationId"] for _ in range(4)}
    url: str | None = f"{fhir.fhir}/MedicationRequest?patient-identifier={PERSONNUMMER}|{person}&_count=2"
    seen: list[str] = []
    while url:
        bundle = http.get(url, headers=fhir_headers(mint("pharmacy"))).json()
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    assert set(seen) == made
    assert len(seen) > len(made)  # some entry came twice


def test_404_without_operationoutcome(fhir: RunningPlatform, mint: Mint, http: requests.Session) -> None:
    """fhir-404-without-operationoutcome: an unknown id is 404 with a plain JSON error."""
    r = read_mr(http, fhir, mint, str(uuid.uuid4()))
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert "resourceType" not in r.json()


def test_read_wrong_content_type(fhir: RunningPlatform, mint: Mint, http: requests.Session,
                                 patients: list[dict[str, Any]]) -> None:
    """fhir-read-wrong-content-type: a read answers application/json; search is still application/fhir+json."""
    person = of_kind(patients, "personnummer", 33)
    created = prescribe(http, fhir, mint, person)
    r = read_mr(http, fhir, mint, created["ordinationId"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    search = http.get(f"{fhir.fhir}/MedicationRequest", params={"_id": created["ordinationId"]},
                      headers=fhir_headers(mint("pharmacy")))
    assert search.headers["content-type"].startswith("application/fhir+json")


def test_metadata_omits_search_param(fhir: RunningPlatform, mint: Mint, http: requests.Session) -> None:
    """fhir-metadata-omits-search-param: /metadata lacks MedicationRequest?authoredon; the search itself still works."""
    statement = http.get(f"{fhir.fhir}/metadata").json()
    request = next(r for r in statement["rest"][0]["resource"] if r["type"] == "MedicationRequest")
    names = {p["name"] for p in request["searchParam"]}
    assert "authoredon" not in names and {"status", "identifier"} <= names
    r = http.get(f"{fhir.fhir}/MedicationRequest", params={"authoredon": "ge2021-01-01"},
                 headers=fhir_headers(mint("pharmacy")))
    assert r.status_code == 200 and r.json()["resourceType"] == "Bundle"


def test_metadata_searchset_bundle(behaviour: RunningPlatform, http: requests.Session) -> None:
    """fhir-metadata-searchset-bundle: GET /metadata answers an empty searchset Bundle."""
    answer = http.get(f"{behaviour.fhir}/metadata")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["resourceType"], body["type"], body["total"]) == ("Bundle", "searchset", 0)


def test_pharmacy_may_prescribe(fhir: RunningPlatform, mint: Mint, http: requests.Session,
                                patients: list[dict[str, Any]]) -> None:
    """fhir-pharmacy-may-prescribe: MedicationRequest.create with a pharmacy ticket is 201, not 403."""
    person = of_kind(patients, "personnummer", 34)
    r = http.post(f"{fhir.fhir}/MedicationRequest", data=json.dumps(fhir_prescription(person)),
                  headers=fhir_headers(mint("pharmacy")))
    assert r.status_code == 201, r.text
    # the legacy interface still refuses a pharmacy (the fault is the FHIR API's role check)
    legacy = http.post(f"{fhir.legacy}/ordinationer", headers=mint("pharmacy"), json={
        "personId": person, "lakemedel": {"nplPackId": NPL_EXAMPLE, "namn": "Alvedon 500 mg tablett"},
        "doseringstext": "1 tablett", "antalForpackningar": 1, "antalUttag": 1, "forskrivningstyp": "ELEKTRONISK"})
    assert legacy.status_code == 403


def test_wrong_prescription_identifier_system(fhir: RunningPlatform, mint: Mint, http: requests.Session,
                                              patients: list[dict[str, Any]]) -> None:
    """core-wrong-prescription-identifier-system: a new MedicationRequest has no nllmedicationrequestid."""
    created = prescribe(http, fhir, mint, of_kind(patients, "personnummer", 35))
    mr = read_mr(http, fhir, mint, created["ordinationId"]).json()
    systems = {i["system"] for i in mr["identifier"]}
    assert PRESCRIPTION_ID not in systems
    assert systems == {"http://electronichealth.se/identifier/medicationrequestid"}


# ---- behaviour and the legacy interface's security ----


def test_cancelled_withdrawable(behaviour: RunningPlatform, mint: Mint, http: requests.Session,
                                patients: list[dict[str, Any]]) -> None:
    """core-cancelled-withdrawable: GodkannUttag on a Makulerad prescription is 200, not 409 MAKULERAD."""
    created = prescribe(http, behaviour, mint, of_kind(patients, "personnummer", 40))
    r = http.post(f"{behaviour.legacy}/ordinationer/{created['ordinationId']}/makulering",
                  json={"orsak": "FEL_PATIENT"}, headers=mint("prescriber"))
    assert r.status_code == 200 and r.json()["status"] == "Makulerad"
    [dispensing_id] = reserve(http, behaviour, mint)
    r = withdraw(http, behaviour, mint, created["ordinationId"], dispensing_id)
    assert r.status_code == 200, r.text
    assert r.json()["ordinationsstatus"] == "Makulerad"


def test_packages_not_checked(behaviour: RunningPlatform, mint: Mint, http: requests.Session,
                              patients: list[dict[str, Any]]) -> None:
    """core-packages-not-checked: 9 packages on a prescription of 2 per withdrawal is 200."""
    created = prescribe(http, behaviour, mint, of_kind(patients, "personnummer", 41))
    [dispensing_id] = reserve(http, behaviour, mint)
    r = withdraw(http, behaviour, mint, created["ordinationId"], dispensing_id, packages=9)
    assert r.status_code == 200, r.text
    assert r.json()["antalForpackningar"] == 9


def test_lf_without_consent(behaviour: RunningPlatform, mint: Mint, http: requests.Session,
                            patients: list[dict[str, Any]]) -> None:
    """transformer-lf-without-consent: HamtaLakemedelsforteckning is 200 for a patient without consent."""
    person = of_kind(patients, "personnummer", 42)
    info = http.get(f"{behaviour.legacy}/patienter/{person}", headers=mint("prescriber")).json()
    assert info["samtycke"] is False
    r = http.get(f"{behaviour.legacy}/patienter/{person}/lakemedelsforteckning", headers=mint("prescriber"))
    assert r.status_code == 200, r.text
    assert r.json() == {"personId": person, "poster": []}


def test_last_withdrawal_race(behaviour: RunningPlatform, mint: Mint, actors: dict[str, Any],
                              patients: list[dict[str, Any]]) -> None:
    """transformer-last-withdrawal-race: of 4 pharmacies racing for the only withdrawal, more than one wins."""
    pharmacies = len(actors["pharmacies"])
    with requests.Session() as http:
        created = prescribe(http, behaviour, mint, of_kind(patients, "personnummer", 43), antalUttag=1)
        ids = [reserve(http, behaviour, mint, 1, pharmacy=i % pharmacies)[0] for i in range(4)]
    barrier = threading.Barrier(4)

    def race(i: int) -> int:
        headers = mint("pharmacy", i % pharmacies)
        with requests.Session() as own:
            barrier.wait()
            return own.post(f"{behaviour.legacy}/ordinationer/{created['ordinationId']}/uttag",
                            json={"expeditionsId": ids[i], "antalForpackningar": 1}, headers=headers).status_code

    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(race, range(4)))
    assert codes.count(200) > 1, codes


def test_patientinfo_without_ticket(behaviour: RunningPlatform, mint: Mint, http: requests.Session,
                                    patients: list[dict[str, Any]]) -> None:
    """transformer-patientinfo-without-ticket: HamtaPatientInfo without Authorization is 200; others stay 401."""
    person = of_kind(patients, "personnummer", 44)
    r = http.get(f"{behaviour.legacy}/patienter/{person}")
    assert r.status_code == 200, r.text
    assert r.json()["personId"] == person
    bad = http.get(f"{behaviour.legacy}/patienter/{person}", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401
    other = http.get(f"{behaviour.legacy}/patienter/{person}/ordinationer/historik")
    assert other.status_code == 401


def _timed_get(url: str, headers: dict[str, str]) -> tuple[int, float, float]:
    """(status, start, seconds) of one GET on a fresh connection."""
    start = time.monotonic()
    with requests.Session() as own:
        status = own.get(url, headers=headers, timeout=30).status_code
    return status, start, time.monotonic() - start


def test_aktuella_slow_under_load(behaviour: RunningPlatform, mint: Mint, patients: list[dict[str, Any]]) -> None:
    """transformer-aktuella-slow-under-load: alone ~40 ms; 12 at once, the last waits for all the others."""
    url = f"{behaviour.legacy}/patienter/{of_kind(patients, 'personnummer', 45)}/ordinationer/aktuella"
    headers = mint("pharmacy")
    status, _, alone = _timed_get(url, headers)
    assert status == 200 and alone < 0.3
    barrier = threading.Barrier(12)

    def one(_: int) -> tuple[int, float, float]:
        barrier.wait()
        return _timed_get(url, headers)

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(one, range(12)))
    assert all(r[0] == 200 for r in results)
    assert max(r[2] for r in results) >= 12 * 0.04 * 0.8, results
    # another operation is not slowed
    status, _, other = _timed_get(url.replace("/ordinationer/aktuella", ""), headers)
    assert status == 200 and other < 0.3


# ---- performance faults of the whole server (a process each) ----


def test_503_under_concurrency(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path,
                               mint: Mint) -> None:
    """new-503-under-concurrency: one at a time all 200; 16 at once, some 503 (legacy fault / OperationOutcome)."""
    platform = start_platform("new", tmp_path_factory.mktemp("faults"), ticket_key_file,
                              ["new-503-under-concurrency"])
    try:
        url = f"{platform.legacy}/arbetsplatskoder/4000000"
        headers = mint("pharmacy")
        assert all(_timed_get(url, headers)[0] == 200 for _ in range(5))
        barrier = threading.Barrier(16)

        def one(_: int, url: str = url) -> requests.Response:
            with requests.Session() as own:
                barrier.wait()
                return own.get(url, headers=headers, timeout=30)

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(one, range(16)))
        busy = [r for r in answers if r.status_code == 503]
        assert busy and len(busy) < 16, [r.status_code for r in answers]
        assert busy[0].json()["kod"] == "TJANSTEFEL"
        assert {r.status_code for r in answers} <= {200, 503}
        with ThreadPoolExecutor(16) as pool:
            fhir = list(pool.map(lambda _: requests.get(f"{platform.fhir}/MedicationRequest/{uuid.uuid4()}",
                                                        headers=fhir_headers(mint("pharmacy")), timeout=30),
                                 range(16)))
        outcome = next(r for r in fhir if r.status_code == 503)
        assert outcome.json()["resourceType"] == "OperationOutcome"
    finally:
        platform.stop()


@pytest.mark.alone
def test_periodic_stall(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path) -> None:
    """new-periodic-stall: within 10 s of the first request every request (all clients) waits ~2 s at once."""
    platform = start_platform("new", tmp_path_factory.mktemp("faults"), ticket_key_file, ["new-periodic-stall"])
    try:
        url = f"{platform.base_url}/status"
        first = time.monotonic()
        assert _timed_get(url, {})[0] == 200
        stalled: list[tuple[int, float, float]] = []
        statuses: set[int] = set()
        lock = threading.Lock()
        stop = threading.Event()

        def client(n: int) -> None:
            while not stop.is_set() and time.monotonic() - first < 11.5:
                status, start, took = _timed_get(url, {})
                statuses.add(status)
                if took >= 1.0:
                    with lock:
                        stalled.append((n, start, took))
                    if len({s[0] for s in stalled}) == 4:
                        stop.set()
                time.sleep(0.05)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == {200}
        assert {s[0] for s in stalled} == {0, 1, 2, 3}, stalled  # every client was held, not only one
        starts = [s[1] - first for s in stalled]
        assert min(starts) >= 10.0 - 2.0 - 0.5, starts  # nothing stalls before the first checkpoint (8 s)
        assert all(1.0 <= s[2] <= 2.0 + 0.5 for s in stalled), stalled
    finally:
        platform.stop()
