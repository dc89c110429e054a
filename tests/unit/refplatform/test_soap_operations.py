"""Every service interaction of contracts/riv on both platforms over real HTTP: valid answers of the XSD.

The same tests run on the old platform (its own store) and on the new one (the transformer on the
FHIR core). Each answer is validated against the responder schema read from the contract files.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import requests

from .conftest import RunningPlatform
from .soap_calls import ALVEDON, DOSAGE, SERVICES, call, ok, prescription, refused

Mint = Callable[..., dict[str, str]]


def today() -> date:
    return datetime.now(ZoneInfo("Europe/Stockholm")).date()


def test_services_toml_names_twelve_operations() -> None:
    assert len(SERVICES) == 12


def test_every_operation_answers_valid_xml(legacy_platform: RunningPlatform, mint: Mint,
                                           patients: list[dict[str, Any]], actors: dict[str, Any],
                                           http: requests.Session) -> None:
    """A lifecycle through all twelve operations; each answer validates against its responder XSD."""
    p, pid = legacy_platform, patients[30]["id"]
    prescriber, gln = actors["prescribers"][0], actors["pharmacies"][0]["gln"]
    rx = ok(call(http, p, "SkapaOrdinationVard", mint("prescriber", 0), **prescription(pid, antalUttag=2,
                                                                                         antalForpackningar=2)))
    assert rx["personnummer"] == pid and rx["status"] == "Aktiv" and rx["uttagKvar"] == 2
    assert rx["lakemedel"] == ALVEDON and rx["doseringstext"] == DOSAGE
    assert rx["utfardandedatum"] == today().isoformat()
    assert rx["giltigTom"] == (today() + timedelta(days=366)).isoformat()
    assert rx["forskrivare"] == {"hsaId": prescriber["hsaId"], "forskrivarkod": prescriber["forskrivarkod"],
                                 "arbetsplatskod": prescriber["careUnit"]}
    assert "makuleringsorsak" not in rx
    rx_id = rx["ordinationsId"]

    current = ok(call(http, p, "HamtaAktuellaOrdinationer", mint("pharmacy", 0), personnummer=pid))
    assert current["personnummer"] == pid and [o["ordinationsId"] for o in current["ordination"]] == [rx_id]

    ids = ok(call(http, p, "HamtaExpeditionsId", mint("pharmacy", 0), antal=2))["expeditionsId"]
    assert len(ids) == 2 and len(set(ids)) == 2
    uttag = ok(call(http, p, "GodkannUttag", mint("pharmacy", 0), ordinationsId=rx_id, expeditionsId=ids[0],
                    antalForpackningar=2))
    assert uttag["ordinationsId"] == rx_id and uttag["personnummer"] == pid and uttag["apotekGln"] == gln
    assert uttag["uttagKvar"] == 1 and uttag["ordinationsstatus"] == "Aktiv"

    history = ok(call(http, p, "HamtaOrdinationshistorik", mint("prescriber", 1), personnummer=pid))
    [entry] = history["historikpost"]
    assert entry["ordination"]["ordinationsId"] == rx_id and entry["ordination"]["uttagKvar"] == 1
    assert [u["uttagId"] for u in entry["uttag"]] == [uttag["uttagId"]]

    receipt = ok(call(http, p, "RapporteraExpeditionLF", mint("pharmacy", 0), expeditionsId=ids[0],
                      personnummer=pid, ordinationsId=rx_id, antalForpackningar=2))
    assert receipt["expeditionsId"] == ids[0] and receipt["ordinationsId"] == rx_id and receipt["personnummer"] == pid

    refused(call(http, p, "HamtaLakemedelsforteckning", mint("prescriber", 0), personnummer=pid), "SAMTYCKE_SAKNAS")
    consent = ok(call(http, p, "UppdateraSamtycke", mint("prescriber", 0), personnummer=pid, samtycke=True))
    assert consent["personnummer"] == pid and consent["samtycke"] is True and consent["andrad"].endswith("Z")
    lf = ok(call(http, p, "HamtaLakemedelsforteckning", mint("prescriber", 0), personnummer=pid))
    [post] = lf["post"]
    assert post["rapportId"] == receipt["rapportId"] and post["ordinationsId"] == rx_id
    assert post["lakemedel"] == ALVEDON and post["doseringstext"] == DOSAGE and post["apotekGln"] == gln

    patient = ok(call(http, p, "HamtaPatientInfo", mint("pharmacy", 1), personnummer=pid))
    assert patient == {"personnummer": pid, "identitetstyp": "PERSONNUMMER", "fornamn": patients[30]["givenName"],
                       "efternamn": patients[30]["familyName"], "fodelsedatum": patients[30]["birthDate"],
                       "samtycke": True}

    active = actors["careUnits"][0]["arbetsplatskod"]
    assert ok(call(http, p, "KontrolleraArbetsplatskod", mint("prescriber", 0), arbetsplatskod=active)) == {
        "arbetsplatskod": active, "giltig": True}
    assert ok(call(http, p, "KontrolleraArbetsplatskod", mint("pharmacy", 0), arbetsplatskod="9999999"))[
        "giltig"] is False

    by_prescriber = ok(call(http, p, "MakuleraOrdinationVard", mint("prescriber", 0), ordinationsId=rx_id,
                            orsak="FEL_DOSERING", kommentar="Fel styrka"))
    assert by_prescriber["status"] == "Makulerad" and by_prescriber["makuleringsorsak"] == "FEL_DOSERING"
    refused(call(http, p, "GodkannUttag", mint("pharmacy", 0), ordinationsId=rx_id, expeditionsId=ids[1],
                 antalForpackningar=1), "MAKULERAD")
    other = ok(call(http, p, "SkapaOrdinationVard", mint("prescriber", 1), **prescription(pid)))
    by_pharmacy = ok(call(http, p, "MakuleraOrdinationApotek", mint("pharmacy", 0),
                          ordinationsId=other["ordinationsId"], orsak="FEL_PATIENT"))
    assert by_pharmacy["status"] == "Makulerad" and by_pharmacy["makuleringsorsak"] == "FEL_PATIENT"
    refused(call(http, p, "MakuleraOrdinationApotek", mint("pharmacy", 0), ordinationsId=other["ordinationsId"],
                 orsak="OVRIGT"), "EJ_MAKULERBAR")
    assert ok(call(http, p, "HamtaAktuellaOrdinationer", mint("pharmacy", 0), personnummer=pid)).get(
        "ordination", []) == []


def test_soap_and_rest_share_one_store(legacy_platform: RunningPlatform, mint: Mint,
                                       patients: list[dict[str, Any]], http: requests.Session) -> None:
    """A prescription made over SOAP is the same prescription over REST, under the renamed fields."""
    p, pid = legacy_platform, patients[31]["id"]
    rx = ok(call(http, p, "SkapaOrdinationVard", mint("prescriber", 0), **prescription(pid)))
    r = http.get(f"{p.legacy}/patienter/{pid}/ordinationer/aktuella", headers=mint("pharmacy", 0))
    [same] = r.json()["ordinationer"]
    renamed = {{"ordinationId": "ordinationsId", "personId": "personnummer"}.get(k, k): v for k, v in same.items()}
    assert renamed == rx


def test_roles_and_tickets(legacy_platform: RunningPlatform, mint: Mint, patients: list[dict[str, Any]],
                           http: requests.Session) -> None:
    """Prescribers cancel through MakuleraOrdinationVard, pharmacies through -Apotek; no ticket, no answer."""
    p, pid = legacy_platform, patients[32]["id"]
    rx = ok(call(http, p, "SkapaOrdinationVard", mint("prescriber", 0), **prescription(pid)))["ordinationsId"]
    refused(call(http, p, "MakuleraOrdinationVard", mint("pharmacy", 0), ordinationsId=rx, orsak="OVRIGT"),
            "EJ_BEHORIG")
    refused(call(http, p, "MakuleraOrdinationApotek", mint("prescriber", 0), ordinationsId=rx, orsak="OVRIGT"),
            "EJ_BEHORIG")
    refused(call(http, p, "SkapaOrdinationVard", mint("pharmacy", 0), **prescription(pid)), "EJ_BEHORIG")
    refused(call(http, p, "HamtaExpeditionsId", mint("prescriber", 0), antal=1), "EJ_BEHORIG")
    refused(call(http, p, "HamtaAktuellaOrdinationer", {}, personnummer=pid), "EJ_AUTENTISERAD")
    refused(call(http, p, "HamtaAktuellaOrdinationer", {"Authorization": "Bearer not-a-ticket"}, personnummer=pid),
            "EJ_AUTENTISERAD")


def test_validity_rules_and_missing_things(legacy_platform: RunningPlatform, mint: Mint,
                                           patients: list[dict[str, Any]], http: requests.Session) -> None:
    """Default validity (+366 days, +14 by telephone), OGILTIG_GILTIGHETSTID, unknown patient and prescription."""
    p, pid, t = legacy_platform, patients[33]["id"], today()
    phoned = ok(call(http, p, "SkapaOrdinationVard", mint("prescriber", 0),
                     **prescription(pid, forskrivningstyp="TELEFON")))
    assert phoned["giltigTom"] == (t + timedelta(days=14)).isoformat()
    late = (t + timedelta(days=367)).isoformat()
    refused(call(http, p, "SkapaOrdinationVard", mint("prescriber", 0), **prescription(pid, giltigTom=late)),
            "OGILTIG_GILTIGHETSTID")
    wrong_check_digit = pid[:-1] + str((int(pid[-1]) + 1) % 10)
    refused(call(http, p, "HamtaPatientInfo", mint("prescriber", 0), personnummer=wrong_check_digit),
            "PATIENT_SAKNAS")
    refused(call(http, p, "MakuleraOrdinationVard", mint("prescriber", 0),
                 ordinationsId="00000000-0000-4000-8000-000000000000", orsak="OVRIGT"), "ORDINATION_SAKNAS")


def test_samordningsnummer(legacy_platform: RunningPlatform, mint: Mint, patients: list[dict[str, Any]],
                           http: requests.Session) -> None:
    patient = next(x for x in patients if x["kind"] == "samordningsnummer")
    info = ok(call(http, legacy_platform, "HamtaPatientInfo", mint("prescriber", 0), personnummer=patient["id"]))
    assert info["identitetstyp"] == "SAMORDNINGSNUMMER"
