"""The blind batch of seeded faults: each, switched on, gives the wrong answer under its triggering data.

The batch was written from the contracts and the platforms' code only, without reading the suite.
Every test runs one scenario at the platform's own interface (HTTP) twice: on a platform with the
fault on, where the regression shows, and on a fault-free platform (conftest's `new_platform` /
`old_platform`), where it does not. Faults that do not interfere share one platform process.
"""

from __future__ import annotations

import json
import tomllib
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import refplatform.new.app
import refplatform.old.app  # noqa: F401  (importing the platforms registers their faults)
from refplatform.common.faults import CATALOGUE

from .conftest import ROOT, RunningPlatform, start_platform
from .test_new_platform import days_from_today, fhir_headers, fhir_prescription, prescribe, reserve, today, withdraw

pytestmark = pytest.mark.platforms("new")

Mint = Callable[..., dict[str, str]]
Patients = list[dict[str, Any]]
PERSONNUMMER = "http://electronichealth.se/identifier/personnummer"
SAMORDNINGSNUMMER = "http://electronichealth.se/identifier/samordningsnummer"
STALE_EVERY = 20  # the intermittent faults answer stale one read in this many

INTERMITTENT = ["transformer-aktuella-stale-cache", "fhir-read-stale-replica"]
TEXTS_AND_LISTS = [
    "transformer-namn-nfd", "transformer-doseringstext-500-bytes", "transformer-history-last-two-withdrawals",
    "transformer-history-batch-drops-oldest", "transformer-history-drops-makuleringsorsak",
    "transformer-lf-drops-doseringstext", "transformer-lf-grouped-by-prescription", "transformer-telephone-validity-13",
    "transformer-giltigtom-limit-exclusive", "transformer-fault-charset-latin1",
]
DATES_AND_SEARCH = [
    "transformer-fixed-summer-offset", "fhir-authoredon-february-28-days", "fhir-later-pages-total-remaining",
    "core-index-samordningsnummer-as-personnummer",
]
WITHDRAWALS_AND_VERSIONS = [
    "transformer-epoch-day-rounded", "transformer-first-withdrawal-uttagkvar", "core-expires-on-last-day",
    "core-last-withdrawal-stays-active", "core-update-without-provenance", "core-withdrawal-keeps-version",
    "transformer-recancel-makulerad", "transformer-withdrawal-checks-reservation-first",
]
OLD = ["old-identity-kind-from-day-70"]
BLIND = INTERMITTENT + TEXTS_AND_LISTS + DATES_AND_SEARCH + WITHDRAWALS_AND_VERSIONS + OLD


def _group(name: str, faults: list[str], platform: str = "new") -> Any:
    """A module-scoped fixture `name`: one platform process with `faults` switched on."""

    @pytest.fixture(scope="module", name=name)
    def started(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path) -> Iterator[RunningPlatform]:
        running = start_platform(platform, tmp_path_factory.mktemp("blind"), ticket_key_file, faults)
        yield running
        running.stop()

    return started


intermittent = _group("intermittent", INTERMITTENT)
texts = _group("texts", TEXTS_AND_LISTS)
dates = _group("dates", DATES_AND_SEARCH)
withdrawals = _group("withdrawals", WITHDRAWALS_AND_VERSIONS)
old_faulty = _group("old_faulty", OLD, "old")


def pn(patients: Patients, index: int) -> str:
    """The index-th personnummer of the registry (each test its own, the baseline process is shared)."""
    return str([p for p in patients if p["kind"] == "personnummer"][index]["id"])


def sn_by_day(patients: Patients, day: int) -> str:
    """A samordningsnummer of the registry whose day digits are `day`."""
    return str(next(p["id"] for p in patients if p["kind"] == "samordningsnummer" and int(p["id"][6:8]) == day))


def aktuella(http: requests.Session, platform: RunningPlatform, mint: Mint, person: str) -> dict[str, Any]:
    r = http.get(f"{platform.legacy}/patienter/{person}/ordinationer/aktuella", headers=mint("pharmacy"))
    assert r.status_code == 200, r.text
    return dict(r.json())


def historik(http: requests.Session, platform: RunningPlatform, mint: Mint, person: str) -> dict[str, Any]:
    r = http.get(f"{platform.legacy}/patienter/{person}/ordinationer/historik", headers=mint("prescriber"))
    assert r.status_code == 200, r.text
    return dict(r.json())


def cancel(http: requests.Session, platform: RunningPlatform, mint: Mint, ordination_id: str,
           orsak: str = "FEL_DOSERING") -> requests.Response:
    return http.post(f"{platform.legacy}/ordinationer/{ordination_id}/makulering", json={"orsak": orsak},
                     headers=mint("prescriber"))


def read_fhir(http: requests.Session, platform: RunningPlatform, mint: Mint, rtype: str, rid: str) -> dict[str, Any]:
    r = http.get(f"{platform.fhir}/{rtype}/{rid}", headers=fhir_headers(mint("pharmacy")))
    assert r.status_code == 200, r.text
    return dict(r.json())


def search(http: requests.Session, platform: RunningPlatform, mint: Mint, rtype: str,
           **params: str) -> dict[str, Any]:
    r = http.get(f"{platform.fhir}/{rtype}", params=params, headers=fhir_headers(mint("pharmacy")))
    assert r.status_code == 200, r.text
    return dict(r.json())


def create_fhir(http: requests.Session, platform: RunningPlatform, mint: Mint, person: str,
                authored_on: str) -> dict[str, Any]:
    """A MedicationRequest POSTed on FHIR with the given authoredOn."""
    body = {**fhir_prescription(person), "authoredOn": authored_on}
    r = http.post(f"{platform.fhir}/MedicationRequest", data=json.dumps(body), headers=fhir_headers(mint("prescriber")))
    assert r.status_code == 201, r.text
    return dict(r.json())


def utfardandedatum(http: requests.Session, platform: RunningPlatform, mint: Mint, person: str,
                    authored_on: str) -> str:
    """The legacy utfardandedatum of a prescription created on FHIR with `authored_on`."""
    created = create_fhir(http, platform, mint, person, authored_on)
    [entry] = [e for e in historik(http, platform, mint, person)["ordinationer"]
               if e["ordination"]["ordinationId"] == created["id"]]
    return str(entry["ordination"]["utfardandedatum"])


def report(http: requests.Session, platform: RunningPlatform, mint: Mint, person: str, ordination_id: str,
           dispensing_id: str) -> None:
    r = http.post(f"{platform.legacy}/lakemedelsforteckning/expeditioner", headers=mint("pharmacy"),
                  json={"expeditionsId": dispensing_id, "personId": person, "ordinationId": ordination_id,
                        "antalForpackningar": 1})
    assert r.status_code == 201, r.text


def medication_list(http: requests.Session, platform: RunningPlatform, mint: Mint, person: str) -> list[Any]:
    r = http.put(f"{platform.legacy}/patienter/{person}/samtycke", json={"samtycke": True}, headers=mint("pharmacy"))
    assert r.status_code == 200, r.text
    r = http.get(f"{platform.legacy}/patienter/{person}/lakemedelsforteckning", headers=mint("pharmacy"))
    assert r.status_code == 200, r.text
    return list(r.json()["poster"])


# ---- the catalogue and the matrix ----


def test_blind_faults_are_registered_and_in_the_matrix() -> None:
    """Every blind fault is in the catalogue (a known kind) and has a row of the blind matrix naming one of its runs."""
    matrix = tomllib.loads((ROOT / "tests" / "power" / "blind.toml").read_text(encoding="utf-8"))
    assert len(BLIND) >= 20 and len(set(BLIND)) == len(BLIND)
    for name in BLIND:
        fault = CATALOGUE[name]
        assert fault.kind in {"mapping", "fhir-conformance", "behaviour", "security", "performance"}, name
        assert fault.platform == ("old" if name.startswith("old-") else "new"), name
        row = matrix["faults"][name]
        assert row["run"] in matrix["runs"], name
        assert row["expect"] and len(row["expect"]) > 8, name


# ---- intermittent ----


def _stale_aktuella_reads(http: requests.Session, platform: RunningPlatform, mint: Mint, person: str) -> int:
    """Prescribe 21 times, reading the current prescriptions after each: how many reads missed the newest."""
    stale = 0
    for _ in range(STALE_EVERY + 1):
        created = prescribe(http, platform, mint, person, antalUttag=1)
        listed = [o["ordinationId"] for o in aktuella(http, platform, mint, person)["ordinationer"]]
        stale += listed[:1] != [created["ordinationId"]]
    return stale


def test_aktuella_stale_cache(intermittent: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                              http: requests.Session, patients: Patients) -> None:
    """transformer-aktuella-stale-cache: of 20 reads right after a change, exactly one misses the change."""
    person = pn(patients, 60)
    assert _stale_aktuella_reads(http, intermittent, mint, person) == 1
    assert _stale_aktuella_reads(http, new_platform, mint, person) == 0


def _stale_fhir_reads(http: requests.Session, platform: RunningPlatform, mint: Mint, people: list[str]) -> int:
    """22 withdrawals over two prescriptions, a FHIR read of the prescription after each: how many were stale."""
    created = [prescribe(http, platform, mint, p, antalUttag=12, antalForpackningar=1) for p in people]
    versions = {c["ordinationId"]: 1 for c in created}
    for oid in versions:
        assert read_fhir(http, platform, mint, "MedicationRequest", oid)["meta"]["versionId"] == "1"
    ids = reserve(http, platform, mint, 22)
    stale = 0
    for n, dispensing_id in enumerate(ids):
        oid = created[n % 2]["ordinationId"]
        assert withdraw(http, platform, mint, oid, dispensing_id).status_code == 200
        versions[oid] += 1
        mr = read_fhir(http, platform, mint, "MedicationRequest", oid)
        stale += mr["meta"]["versionId"] != str(versions[oid])
    return stale


def test_fhir_read_stale_replica(intermittent: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                                 http: requests.Session, patients: Patients) -> None:
    """fhir-read-stale-replica: of 22 reads right after a change, one or two answer the version before it."""
    people = [pn(patients, 61), pn(patients, 62)]
    assert 1 <= _stale_fhir_reads(http, intermittent, mint, people) <= 2
    assert _stale_fhir_reads(http, new_platform, mint, people) == 0


# ---- data-dependent ----


def test_index_samordningsnummer(dates: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                                 http: requests.Session, patients: Patients) -> None:
    """core-index-samordningsnummer-as-personnummer: searching a samordningsnummer by its system finds nothing."""
    person = sn_by_day(patients, 75)
    for platform, expected in ((dates, 0), (new_platform, 1)):
        created = prescribe(http, platform, mint, person)
        mr = read_fhir(http, platform, mint, "MedicationRequest", created["ordinationId"])
        assert mr["subject"]["identifier"] == {"system": SAMORDNINGSNUMMER, "value": person}  # the resource is right
        found = search(http, platform, mint, "MedicationRequest",
                       **{"patient-identifier": f"{SAMORDNINGSNUMMER}|{person}"})
        assert found["total"] == expected, platform.faults
    # a personnummer is found with the fault on
    other = pn(patients, 63)
    created = prescribe(http, dates, mint, other)
    found = search(http, dates, mint, "MedicationRequest", **{"patient-identifier": f"{PERSONNUMMER}|{other}"})
    assert [e["resource"]["id"] for e in found["entry"]] == [created["ordinationId"]]


def test_old_identity_kind_from_day_70(old_faulty: RunningPlatform, old_platform: RunningPlatform,
                                       new_platform: RunningPlatform, mint: Mint, http: requests.Session,
                                       patients: Patients) -> None:
    """old-identity-kind-from-day-70: HamtaPatientInfo says PERSONNUMMER for samordningsnummer of day 61-69."""
    def kind(platform: RunningPlatform, person: str) -> str:
        r = http.get(f"{platform.legacy}/patienter/{person}", headers=mint("pharmacy"))
        assert r.status_code == 200, r.text
        return str(r.json()["identitetstyp"])

    for day in (61, 68):
        person = sn_by_day(patients, day)
        assert kind(old_faulty, person) == "PERSONNUMMER"
        assert kind(old_platform, person) == kind(new_platform, person) == "SAMORDNINGSNUMMER"
    for day in (75, 82):
        assert kind(old_faulty, sn_by_day(patients, day)) == "SAMORDNINGSNUMMER"
    assert kind(old_faulty, pn(patients, 64)) == "PERSONNUMMER"


def test_namn_nfd(texts: RunningPlatform, new_platform: RunningPlatform, mint: Mint, http: requests.Session,
                  patients: Patients) -> None:
    """transformer-namn-nfd: a name with å/ä/ö comes back decomposed (NFD); an ASCII name is unchanged."""
    person = pn(patients, 65)
    name = "Näsdroppar för små barn"
    lakemedel = {"nplPackId": "19990101100001", "namn": name}
    faulty = prescribe(http, texts, mint, person, lakemedel=lakemedel)
    assert faulty["lakemedel"]["namn"] == unicodedata.normalize("NFD", name) != name
    mr = read_fhir(http, texts, mint, "MedicationRequest", faulty["ordinationId"])
    assert mr["medicationCodeableConcept"]["text"] != name
    assert prescribe(http, texts, mint, person)["lakemedel"]["namn"] == "Alvedon 500 mg tablett"
    assert prescribe(http, new_platform, mint, person, lakemedel=lakemedel)["lakemedel"]["namn"] == name


def test_doseringstext_500_bytes(texts: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                                 http: requests.Session, patients: Patients) -> None:
    """transformer-doseringstext-500-bytes: 495 characters with å/ä/ö (> 500 bytes) lose their end."""
    person = pn(patients, 66)
    swedish = ("Två tabletter på morgonen, en till kvällen; " * 12)[:495].strip()
    assert len(swedish) <= 500 < len(swedish.encode("utf-8"))
    faulty = prescribe(http, texts, mint, person, doseringstext=swedish)["doseringstext"]
    assert faulty == swedish.encode("utf-8")[:500].decode("utf-8", "ignore") and len(faulty) < len(swedish)
    ascii_500 = ("1 tablett morgon och kvall " * 20)[:500].strip()
    assert prescribe(http, texts, mint, person, doseringstext=ascii_500)["doseringstext"] == ascii_500
    assert prescribe(http, new_platform, mint, person, doseringstext=swedish)["doseringstext"] == swedish


def _history_of_withdrawals(http: requests.Session, platform: RunningPlatform, mint: Mint, person: str,
                            count: int) -> tuple[list[str], list[str]]:
    """(the dispensing ids withdrawn, the ones the history lists) for one prescription with `count` withdrawals."""
    created = prescribe(http, platform, mint, person, antalUttag=4, antalForpackningar=1)
    ids = reserve(http, platform, mint, count)
    for dispensing_id in ids:
        assert withdraw(http, platform, mint, created["ordinationId"], dispensing_id).status_code == 200
    [entry] = [e for e in historik(http, platform, mint, person)["ordinationer"]
               if e["ordination"]["ordinationId"] == created["ordinationId"]]
    assert entry["ordination"]["uttagKvar"] == 4 - count
    return ids, [u["expeditionsId"] for u in entry["uttag"]]


def test_history_last_two_withdrawals(texts: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                                      http: requests.Session, patients: Patients) -> None:
    """transformer-history-last-two-withdrawals: of 3 withdrawals the history lists the last 2; 2 are both shown."""
    person = pn(patients, 67)
    taken, listed = _history_of_withdrawals(http, texts, mint, person, 3)
    assert listed == taken[1:]
    taken, listed = _history_of_withdrawals(http, texts, mint, person, 2)
    assert listed == taken
    taken, listed = _history_of_withdrawals(http, new_platform, mint, person, 3)
    assert listed == taken


def _oldest_of(http: requests.Session, platform: RunningPlatform, mint: Mint, person: str,
               prescriptions: int) -> dict[str, Any]:
    """`prescriptions` prescriptions with one withdrawal each: the history entry of the oldest."""
    ids = reserve(http, platform, mint, prescriptions)
    for dispensing_id in ids:
        created = prescribe(http, platform, mint, person, antalUttag=2, antalForpackningar=1)
        assert withdraw(http, platform, mint, created["ordinationId"], dispensing_id).status_code == 200
    entries = historik(http, platform, mint, person)["ordinationer"]
    assert len(entries) == prescriptions
    return dict(entries[-1])


def test_history_batch_drops_oldest(texts: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                                    http: requests.Session, patients: Patients) -> None:
    """transformer-history-batch-drops-oldest: with 6 prescriptions the oldest shows no withdrawal; with 5 it does."""
    oldest = _oldest_of(http, texts, mint, pn(patients, 68), 6)
    assert oldest["uttag"] == [] and oldest["ordination"]["uttagKvar"] == 2
    oldest = _oldest_of(http, texts, mint, pn(patients, 69), 5)
    assert len(oldest["uttag"]) == 1 and oldest["ordination"]["uttagKvar"] == 1
    oldest = _oldest_of(http, new_platform, mint, pn(patients, 68), 6)
    assert len(oldest["uttag"]) == 1 and oldest["ordination"]["uttagKvar"] == 1


def test_authoredon_february_28_days(dates: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                                     http: requests.Session, patients: Patients) -> None:
    """fhir-authoredon-february-28-days: authoredon=2024-02 misses a prescription of 29 Feb 2024."""
    for platform, expected in ((dates, 0), (new_platform, 1)):
        person = pn(patients, 71)
        leap = create_fhir(http, platform, mint, person, "2024-02-29T10:00:00+01:00")
        other = create_fhir(http, platform, mint, person, "2023-02-28T10:00:00+01:00")
        patient = f"{PERSONNUMMER}|{person}"
        february = search(http, platform, mint, "MedicationRequest", authoredon="2024-02",
                          **{"patient-identifier": patient})
        assert february["total"] == expected, platform.faults
        assert [e["resource"]["id"] for e in february.get("entry", [])] == [leap["id"]] * expected
        later = search(http, platform, mint, "MedicationRequest", authoredon="gt2024-02",
                       **{"patient-identifier": patient})
        assert later["total"] == 1 - expected
        normal_year = search(http, platform, mint, "MedicationRequest", authoredon="2023-02",
                             **{"patient-identifier": patient})
        assert [e["resource"]["id"] for e in normal_year["entry"]] == [other["id"]]


def test_telephone_validity_13(texts: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                               http: requests.Session, patients: Patients) -> None:
    """transformer-telephone-validity-13: a TELEFON prescription is valid 13 days; ELEKTRONISK stays 366."""
    person = pn(patients, 72)
    assert prescribe(http, texts, mint, person, forskrivningstyp="TELEFON")["giltigTom"] == days_from_today(13)
    assert prescribe(http, texts, mint, person)["giltigTom"] == days_from_today(366)
    assert prescribe(http, new_platform, mint, person, forskrivningstyp="TELEFON")["giltigTom"] == days_from_today(14)


# ---- partial ----


def test_later_pages_total_remaining(dates: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                                     http: requests.Session, patients: Patients) -> None:
    """fhir-later-pages-total-remaining: Bundle.total is 3 on page 1 and 1 on page 2 (3 on both without it)."""
    person = pn(patients, 73)
    for platform, second_total in ((dates, 1), (new_platform, 3)):
        for _ in range(3):
            prescribe(http, platform, mint, person)
        first = search(http, platform, mint, "MedicationRequest", _count="2",
                       **{"patient-identifier": f"{PERSONNUMMER}|{person}"})
        assert first["total"] == 3 and len(first["entry"]) == 2
        [next_url] = [link["url"] for link in first["link"] if link["relation"] == "next"]
        second = http.get(next_url, headers=fhir_headers(mint("pharmacy"))).json()
        assert len(second["entry"]) == 1
        assert second["total"] == second_total, platform.faults


def test_first_withdrawal_uttagkvar(withdrawals: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                                    http: requests.Session, patients: Patients) -> None:
    """transformer-first-withdrawal-uttagkvar: the first GodkannUttag answer says uttagKvar 3 of 3, later ones are
    right, and so is the history."""
    person = pn(patients, 74)
    for platform, first_left in ((withdrawals, 3), (new_platform, 2)):
        created = prescribe(http, platform, mint, person, antalUttag=3, antalForpackningar=1)
        one, two = reserve(http, platform, mint, 2)
        first = withdraw(http, platform, mint, created["ordinationId"], one)
        assert first.status_code == 200 and first.json()["uttagKvar"] == first_left, platform.faults
        second = withdraw(http, platform, mint, created["ordinationId"], two)
        assert second.json()["uttagKvar"] == 1
        [entry] = [e for e in historik(http, platform, mint, person)["ordinationer"]
                   if e["ordination"]["ordinationId"] == created["ordinationId"]]
        assert [u["uttagKvar"] for u in entry["uttag"]] == [2, 1]


# ---- off by one ----


def test_giltigtom_limit_exclusive(texts: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                                   http: requests.Session, patients: Patients) -> None:
    """transformer-giltigtom-limit-exclusive: giltigTom on the 366th day is 422; the 365th is accepted."""
    person = pn(patients, 75)
    body = {"personId": person, "lakemedel": {"nplPackId": "19990101100001", "namn": "Alvedon 500 mg tablett"},
            "doseringstext": "1 tablett", "antalForpackningar": 1, "antalUttag": 1, "forskrivningstyp": "ELEKTRONISK"}
    r = http.post(f"{texts.legacy}/ordinationer", json={**body, "giltigTom": days_from_today(366)},
                  headers=mint("prescriber"))
    assert (r.status_code, r.json()["kod"]) == (422, "OGILTIG_GILTIGHETSTID")
    assert prescribe(http, texts, mint, person, giltigTom=days_from_today(365))["giltigTom"] == days_from_today(365)
    assert prescribe(http, new_platform, mint, person, giltigTom=days_from_today(366))["giltigTom"] == \
        days_from_today(366)


def test_expires_on_last_day(withdrawals: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                             http: requests.Session, patients: Patients) -> None:
    """core-expires-on-last-day: a withdrawal on the giltigTom day is 409 UTGANGEN; the day before it is fine."""
    person = pn(patients, 76)
    last_day = prescribe(http, withdrawals, mint, person, giltigTom=today())
    [dispensing_id] = reserve(http, withdrawals, mint)
    r = withdraw(http, withdrawals, mint, last_day["ordinationId"], dispensing_id)
    assert (r.status_code, r.json()["kod"]) == (409, "UTGANGEN")
    # still listed as current, which the refusal contradicts
    assert last_day["ordinationId"] in [o["ordinationId"] for o in
                                        aktuella(http, withdrawals, mint, person)["ordinationer"]]
    tomorrow = prescribe(http, withdrawals, mint, person, giltigTom=days_from_today(1))
    [dispensing_id] = reserve(http, withdrawals, mint)
    assert withdraw(http, withdrawals, mint, tomorrow["ordinationId"], dispensing_id).status_code == 200
    fine = prescribe(http, new_platform, mint, person, giltigTom=today())
    [dispensing_id] = reserve(http, new_platform, mint)
    assert withdraw(http, new_platform, mint, fine["ordinationId"], dispensing_id).status_code == 200


def test_last_withdrawal_stays_active(withdrawals: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                                      http: requests.Session, patients: Patients) -> None:
    """core-last-withdrawal-stays-active: after the last allowed withdrawal uttagKvar is 0 and the status Aktiv."""
    person = pn(patients, 77)
    for platform, legacy_status, fhir_status in ((withdrawals, "Aktiv", "active"),
                                                 (new_platform, "Slutexpedierad", "completed")):
        created = prescribe(http, platform, mint, person, antalUttag=2, antalForpackningar=1)
        one, two, three = reserve(http, platform, mint, 3)
        assert withdraw(http, platform, mint, created["ordinationId"], one).status_code == 200
        last = withdraw(http, platform, mint, created["ordinationId"], two).json()
        assert (last["uttagKvar"], last["ordinationsstatus"]) == (0, legacy_status), platform.faults
        assert read_fhir(http, platform, mint, "MedicationRequest", created["ordinationId"])["status"] == fhir_status
        r = withdraw(http, platform, mint, created["ordinationId"], three)
        assert (r.status_code, r.json()["kod"]) == (409, "SLUTEXPEDIERAD")


# ---- the last hour before midnight, rounding at .5: the legacy date of an authoredOn ----

# fault: (its platform fixture, patient index, [(authoredOn, utfardandedatum with it, without it)])
AUTHORED_ON_CASES = {
    # 23:30 CET is 00:30 at +02:00; 22:30 CET and 23:30 CEST stay on their day
    "transformer-fixed-summer-offset": ("dates", 70, [
        ("2026-01-15T23:30:00+01:00", "2026-01-16", "2026-01-15"),
        ("2026-01-15T22:30:00+01:00", "2026-01-15", "2026-01-15"),
        ("2026-07-15T23:30:00+02:00", "2026-07-15", "2026-07-15"),
    ]),
    # 15:00 is 0.625 of the day (rounded up to the next), 09:00 is 0.375 (rounded down)
    "transformer-epoch-day-rounded": ("withdrawals", 78, [
        ("2026-03-10T15:00:00+01:00", "2026-03-11", "2026-03-10"),
        ("2026-03-10T09:00:00+01:00", "2026-03-10", "2026-03-10"),
    ]),
}


@pytest.mark.parametrize("fault", sorted(AUTHORED_ON_CASES))
def test_legacy_date_of_authored_on(fault: str, request: pytest.FixtureRequest, new_platform: RunningPlatform,
                                    mint: Mint, http: requests.Session, patients: Patients) -> None:
    """transformer-fixed-summer-offset, transformer-epoch-day-rounded: a prescription created on FHIR shows the
    wrong utfardandedatum for the triggering authoredOn only."""
    group, index, cases = AUTHORED_ON_CASES[fault]
    faulty: RunningPlatform = request.getfixturevalue(group)
    assert fault in faulty.faults
    person = pn(patients, index)
    for authored_on, with_fault, without in cases:
        assert utfardandedatum(http, faulty, mint, person, authored_on) == with_fault, authored_on
        assert utfardandedatum(http, new_platform, mint, person, authored_on) == without, authored_on


# ---- optional elements dropped ----


def test_history_drops_makuleringsorsak(texts: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                                        http: requests.Session, patients: Patients) -> None:
    """transformer-history-drops-makuleringsorsak: MakuleraOrdination answers the reason, the history omits it."""
    person = pn(patients, 79)
    for platform, in_history in ((texts, False), (new_platform, True)):
        created = prescribe(http, platform, mint, person)
        r = cancel(http, platform, mint, created["ordinationId"], "FEL_DOSERING")
        assert r.status_code == 200 and r.json()["makuleringsorsak"] == "FEL_DOSERING"
        [entry] = [e for e in historik(http, platform, mint, person)["ordinationer"]
                   if e["ordination"]["ordinationId"] == created["ordinationId"]]
        assert entry["ordination"]["status"] == "Makulerad"
        assert ("makuleringsorsak" in entry["ordination"]) is in_history, platform.faults


def test_lf_drops_doseringstext(texts: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                                http: requests.Session, patients: Patients) -> None:
    """transformer-lf-drops-doseringstext: the medication list post of a reported dispensing has no doseringstext."""
    person = pn(patients, 80)
    for platform, has_dosage in ((texts, False), (new_platform, True)):
        created = prescribe(http, platform, mint, person)
        [dispensing_id] = reserve(http, platform, mint)
        report(http, platform, mint, person, created["ordinationId"], dispensing_id)
        [post] = [p for p in medication_list(http, platform, mint, person) if p["expeditionsId"] == dispensing_id]
        assert ("doseringstext" in post) is has_dosage, platform.faults


# ---- order ----


def test_lf_grouped_by_prescription(texts: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                                    http: requests.Session, patients: Patients) -> None:
    """transformer-lf-grouped-by-prescription: reports A1, B1, A2 come back B1, A2, A1 instead of A2, B1, A1."""
    person = pn(patients, 81)
    for platform, grouped in ((texts, True), (new_platform, False)):
        first = prescribe(http, platform, mint, person)["ordinationId"]
        second = prescribe(http, platform, mint, person)["ordinationId"]
        a1, b1, a2 = reserve(http, platform, mint, 3)
        report(http, platform, mint, person, first, a1)
        report(http, platform, mint, person, second, b1)
        report(http, platform, mint, person, first, a2)
        order = [p["expeditionsId"] for p in medication_list(http, platform, mint, person)]
        assert order == ([b1, a2, a1] if grouped else [a2, b1, a1]), platform.faults


# ---- header ----


def test_fault_charset_latin1(texts: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                              http: requests.Session, patients: Patients) -> None:
    """transformer-fault-charset-latin1: a business fault declares charset=ISO-8859-1 over a UTF-8 body."""
    person = pn(patients, 82)
    for platform in (texts, new_platform):
        created = prescribe(http, platform, mint, person)
        assert cancel(http, platform, mint, created["ordinationId"]).status_code == 200
        [dispensing_id] = reserve(http, platform, mint)
        r = withdraw(http, platform, mint, created["ordinationId"], dispensing_id)
        assert r.status_code == 409
        meddelande = json.loads(r.content.decode("utf-8"))["meddelande"]
        assert meddelande == "ordinationen är makulerad"
        if platform is texts:
            assert r.headers["content-type"] == "application/json; charset=ISO-8859-1"
            assert json.loads(r.text)["meddelande"] != meddelande  # decoded as declared, it is mojibake
        else:
            assert r.headers["content-type"] == "application/json"
    # answers that are not business faults keep their header
    unauthenticated = http.get(f"{texts.legacy}/patienter/{person}")
    assert unauthenticated.status_code == 401 and unauthenticated.headers["content-type"] == "application/json"
    answered = http.get(f"{texts.legacy}/patienter/{person}/ordinationer/aktuella", headers=mint("pharmacy"))
    assert answered.status_code == 200 and answered.headers["content-type"] == "application/json"


# ---- version and Provenance ----


def _activities(http: requests.Session, platform: RunningPlatform, mint: Mint, oid: str) -> list[str]:
    bundle = search(http, platform, mint, "Provenance", target=f"MedicationRequest/{oid}")
    return [e["resource"]["activity"]["coding"][0]["code"] for e in bundle.get("entry", [])]


def test_update_without_provenance(withdrawals: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                                   http: requests.Session, patients: Patients) -> None:
    """core-update-without-provenance: a cancelled prescription has only its CREATE Provenance."""
    person = pn(patients, 83)
    for platform, expected in ((withdrawals, ["CREATE"]), (new_platform, ["UPDATE", "CREATE"])):
        created = prescribe(http, platform, mint, person)
        assert cancel(http, platform, mint, created["ordinationId"]).status_code == 200
        assert read_fhir(http, platform, mint, "MedicationRequest", created["ordinationId"])["status"] == "cancelled"
        assert _activities(http, platform, mint, created["ordinationId"]) == expected, platform.faults


def test_withdrawal_keeps_version(withdrawals: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                                  http: requests.Session, patients: Patients) -> None:
    """core-withdrawal-keeps-version: a withdrawal changes lastUpdated of its MedicationRequest, not versionId."""
    person = pn(patients, 84)
    for platform, version in ((withdrawals, "1"), (new_platform, "2")):
        created = prescribe(http, platform, mint, person, antalForpackningar=1)
        before = read_fhir(http, platform, mint, "MedicationRequest", created["ordinationId"])
        [dispensing_id] = reserve(http, platform, mint)
        assert withdraw(http, platform, mint, created["ordinationId"], dispensing_id).status_code == 200
        r = http.get(f"{platform.fhir}/MedicationRequest/{created['ordinationId']}",
                     headers=fhir_headers(mint("pharmacy")))
        after = r.json()
        assert after["meta"]["lastUpdated"] > before["meta"]["lastUpdated"]
        assert after["meta"]["versionId"] == version and r.headers["etag"] == f'W/"{version}"', platform.faults


# ---- error codes swapped ----


def test_recancel_makulerad(withdrawals: RunningPlatform, new_platform: RunningPlatform, mint: Mint,
                            http: requests.Session, patients: Patients) -> None:
    """transformer-recancel-makulerad: cancelling a cancelled prescription is 409 MAKULERAD, not EJ_MAKULERBAR."""
    person = pn(patients, 85)
    for platform, kod in ((withdrawals, "MAKULERAD"), (new_platform, "EJ_MAKULERBAR")):
        created = prescribe(http, platform, mint, person)
        assert cancel(http, platform, mint, created["ordinationId"]).status_code == 200
        again = cancel(http, platform, mint, created["ordinationId"], "OVRIGT")
        assert (again.status_code, again.json()["kod"]) == (409, kod), platform.faults


def test_withdrawal_checks_reservation_first(withdrawals: RunningPlatform, new_platform: RunningPlatform,
                                             old_platform: RunningPlatform, mint: Mint,
                                             http: requests.Session) -> None:
    """transformer-withdrawal-checks-reservation-first: unknown prescription + unreserved id is 409, not 404."""
    body = {"expeditionsId": str(uuid.uuid4()), "antalForpackningar": 1}
    unknown = str(uuid.uuid4())
    for platform, expected in ((withdrawals, (409, "OKANT_EXPEDITIONSID")),
                               (new_platform, (404, "ORDINATION_SAKNAS")), (old_platform, (404, "ORDINATION_SAKNAS"))):
        r = http.post(f"{platform.legacy}/ordinationer/{unknown}/uttag", json=body, headers=mint("pharmacy"))
        assert (r.status_code, r.json()["kod"]) == expected, platform.platform
    # an unknown prescription with a reserved id is still 404 with the fault on
    [reserved] = reserve(http, withdrawals, mint)
    r = http.post(f"{withdrawals.legacy}/ordinationer/{unknown}/uttag",
                  json={"expeditionsId": reserved, "antalForpackningar": 1}, headers=mint("pharmacy"))
    assert (r.status_code, r.json()["kod"]) == (404, "ORDINATION_SAKNAS")
