"""The old platform (STP stand-in) through a real process: the legacy interface, end to end."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jwt
import pytest
import requests

from .conftest import RunningPlatform, start_platform

Mint = Callable[..., dict[str, str]]


def today() -> date:
    return datetime.now(ZoneInfo("Europe/Stockholm")).date()


def assert_fault(r: requests.Response, status: int, kod: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"kod", "meddelande"}, body
    assert body["kod"] == kod, body
    assert isinstance(body["meddelande"], str) and body["meddelande"]


def new_rx(http: requests.Session, base: str, mint: Mint, person_id: str, **fields: Any) -> requests.Response:
    body: dict[str, Any] = {
        "personId": person_id,
        "lakemedel": {"nplPackId": "19990101100001", "namn": "Alvedon 500 mg tablett"},
        "doseringstext": "1 tablett 3 gånger dagligen vid behov",
        "antalForpackningar": 1,
        "antalUttag": 3,
        "forskrivningstyp": "ELEKTRONISK",
    }
    body.update(fields)
    return http.post(f"{base}/ordinationer", json=body, headers=mint("prescriber", 0))


def created(http: requests.Session, base: str, mint: Mint, person_id: str, **fields: Any) -> dict[str, Any]:
    r = new_rx(http, base, mint, person_id, **fields)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def reserve(http: requests.Session, base: str, mint: Mint, pharmacy: int = 0, antal: int = 1) -> list[str]:
    r = http.post(f"{base}/expeditionsid", json={"antal": antal}, headers=mint("pharmacy", pharmacy))
    assert r.status_code == 200, r.text
    ids = r.json()["expeditionsIdn"]
    assert len(ids) == antal
    return ids  # type: ignore[no-any-return]


def withdraw(http: requests.Session, base: str, mint: Mint, rx: str, exp_id: str, pharmacy: int = 0,
             antal: int = 1) -> requests.Response:
    return http.post(f"{base}/ordinationer/{rx}/uttag", json={"expeditionsId": exp_id, "antalForpackningar": antal},
                     headers=mint("pharmacy", pharmacy))


def bad_check_digit(person_id: str) -> str:
    return person_id[:-1] + str((int(person_id[-1]) + 1) % 10)


def test_status(old_platform: RunningPlatform, http: requests.Session) -> None:
    r = http.get(f"{old_platform.base_url}/status")
    assert r.status_code == 200
    body = r.json()
    assert body["platform"] == "old" and body["release"] == "21.0" and body["product"] and body["version"]


def test_round_trip(old_platform: RunningPlatform, mint: Mint, patients: list[dict[str, Any]],
                    actors: dict[str, Any], http: requests.Session) -> None:
    base = old_platform.legacy
    pid = patients[1]["id"]
    first = created(http, base, mint, pid, antalUttag=2)
    rx = created(http, base, mint, pid, antalUttag=2, antalForpackningar=2)
    prescriber = actors["prescribers"][0]
    assert rx["status"] == "Aktiv" and rx["uttagKvar"] == 2 and rx["utfardandedatum"] == today().isoformat()
    assert rx["forskrivare"] == {"hsaId": prescriber["hsaId"], "forskrivarkod": prescriber["forskrivarkod"],
                                 "arbetsplatskod": prescriber["careUnit"]}
    assert "makuleringsorsak" not in rx
    assert rx["senastAndrad"].endswith("Z") and len(rx["senastAndrad"]) == 24

    current = http.get(f"{base}/patienter/{pid}/ordinationer/aktuella", headers=mint("pharmacy", 0)).json()
    assert current["personId"] == pid
    assert [o["ordinationId"] for o in current["ordinationer"]] == [rx["ordinationId"], first["ordinationId"]]

    ids = reserve(http, base, mint, antal=2)
    r = withdraw(http, base, mint, rx["ordinationId"], ids[0], antal=2)
    assert r.status_code == 200, r.text
    uttag = r.json()
    gln = actors["pharmacies"][0]["gln"]
    assert uttag["personId"] == pid and uttag["apotekGln"] == gln and uttag["expeditionsId"] == ids[0]
    assert uttag["uttagKvar"] == 1 and uttag["ordinationsstatus"] == "Aktiv"
    # the same dispensing id twice on one prescription is a conflict
    assert_fault(withdraw(http, base, mint, rx["ordinationId"], ids[0]), 409, "KONFLIKT")
    # more packages than prescribed per withdrawal
    assert_fault(withdraw(http, base, mint, rx["ordinationId"], ids[1], antal=3), 409, "FOR_MANGA_FORPACKNINGAR")
    # an id another pharmacy reserved
    assert_fault(withdraw(http, base, mint, rx["ordinationId"], ids[1], pharmacy=1), 409, "OKANT_EXPEDITIONSID")

    history = http.get(f"{base}/patienter/{pid}/ordinationer/historik", headers=mint("prescriber", 1)).json()
    assert [h["ordination"]["ordinationId"] for h in history["ordinationer"]] == [rx["ordinationId"],
                                                                                 first["ordinationId"]]
    assert [u["uttagId"] for u in history["ordinationer"][0]["uttag"]] == [uttag["uttagId"]]
    assert history["ordinationer"][0]["ordination"]["uttagKvar"] == 1
    assert history["ordinationer"][1]["uttag"] == []

    report = {"expeditionsId": ids[0], "personId": pid, "ordinationId": rx["ordinationId"], "antalForpackningar": 2}
    r = http.post(f"{base}/lakemedelsforteckning/expeditioner", json=report, headers=mint("pharmacy", 0))
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["expeditionsId"] == ids[0] and receipt["personId"] == pid
    assert receipt["ordinationId"] == rx["ordinationId"]
    r = http.post(f"{base}/lakemedelsforteckning/expeditioner", json=report, headers=mint("pharmacy", 0))
    assert_fault(r, 409, "KONFLIKT")
    other = dict(report, personId=patients[2]["id"])
    assert_fault(http.post(f"{base}/lakemedelsforteckning/expeditioner", json=other, headers=mint("pharmacy", 0)),
                 409, "KONFLIKT")
    assert_fault(http.post(f"{base}/lakemedelsforteckning/expeditioner", json=report, headers=mint("pharmacy", 2)),
                 409, "OKANT_EXPEDITIONSID")

    assert_fault(http.get(f"{base}/patienter/{pid}/lakemedelsforteckning", headers=mint("prescriber", 0)),
                 403, "SAMTYCKE_SAKNAS")
    r = http.put(f"{base}/patienter/{pid}/samtycke", json={"samtycke": True}, headers=mint("prescriber", 0))
    assert r.status_code == 200 and r.json()["samtycke"] is True and r.json()["andrad"].endswith("Z")
    assert http.get(f"{base}/patienter/{pid}", headers=mint("pharmacy", 0)).json()["samtycke"] is True
    lf = http.get(f"{base}/patienter/{pid}/lakemedelsforteckning", headers=mint("prescriber", 0))
    assert lf.status_code == 200
    [post] = lf.json()["poster"]
    assert post["rapportId"] == receipt["rapportId"] and post["antalForpackningar"] == 2
    assert post["lakemedel"] == rx["lakemedel"] and post["doseringstext"] == rx["doseringstext"]
    assert post["apotekGln"] == gln and post["expedierad"] == receipt["registrerad"]


def test_patient_info(old_platform: RunningPlatform, mint: Mint, patients: list[dict[str, Any]],
                      http: requests.Session) -> None:
    for patient in (patients[0], next(p for p in patients if p["kind"] == "samordningsnummer")):
        r = http.get(f"{old_platform.legacy}/patienter/{patient['id']}", headers=mint("prescriber", 0))
        assert r.status_code == 200
        assert r.json() == {
            "personId": patient["id"],
            "identitetstyp": patient["kind"].upper(),
            "fornamn": patient["givenName"],
            "efternamn": patient["familyName"],
            "fodelsedatum": patient["birthDate"],
            "samtycke": False,
        }


def test_default_validity_and_422(old_platform: RunningPlatform, mint: Mint, patients: list[dict[str, Any]],
                                  http: requests.Session) -> None:
    base, pid, t = old_platform.legacy, patients[3]["id"], today()
    assert created(http, base, mint, pid)["giltigTom"] == (t + timedelta(days=366)).isoformat()
    assert created(http, base, mint, pid, forskrivningstyp="TELEFON")["giltigTom"] == (
        t + timedelta(days=14)).isoformat()
    for ok in (t, t + timedelta(days=366)):
        assert created(http, base, mint, pid, giltigTom=ok.isoformat())["giltigTom"] == ok.isoformat()
    for bad in (t - timedelta(days=1), t + timedelta(days=367)):
        assert_fault(new_rx(http, base, mint, pid, giltigTom=bad.isoformat()), 422, "OGILTIG_GILTIGHETSTID")


def test_cancel_then_withdraw(old_platform: RunningPlatform, mint: Mint, patients: list[dict[str, Any]],
                              http: requests.Session) -> None:
    base = old_platform.legacy
    rx = created(http, base, mint, patients[4]["id"])
    r = http.post(f"{base}/ordinationer/{rx['ordinationId']}/makulering", json={"orsak": "FEL_LAKEMEDEL"},
                  headers=mint("pharmacy", 0))
    assert r.status_code == 200 and r.json()["status"] == "Makulerad"
    assert r.json()["makuleringsorsak"] == "FEL_LAKEMEDEL"
    [exp_id] = reserve(http, base, mint)
    assert_fault(withdraw(http, base, mint, rx["ordinationId"], exp_id), 409, "MAKULERAD")
    r = http.post(f"{base}/ordinationer/{rx['ordinationId']}/makulering", json={"orsak": "OVRIGT"},
                  headers=mint("prescriber", 0))
    assert_fault(r, 409, "EJ_MAKULERBAR")
    current = http.get(f"{base}/patienter/{patients[4]['id']}/ordinationer/aktuella", headers=mint("pharmacy", 0))
    assert current.json()["ordinationer"] == []
    history = http.get(f"{base}/patienter/{patients[4]['id']}/ordinationer/historik", headers=mint("pharmacy", 0))
    assert [h["ordination"]["status"] for h in history.json()["ordinationer"]] == ["Makulerad"]


def test_withdrawals_never_exceed_antal_uttag(old_platform: RunningPlatform, mint: Mint,
                                              patients: list[dict[str, Any]], http: requests.Session) -> None:
    base = old_platform.legacy
    rx = created(http, base, mint, patients[5]["id"], antalUttag=3)
    ids = reserve(http, base, mint, antal=4)
    for n, exp_id in enumerate(ids[:3]):
        r = withdraw(http, base, mint, rx["ordinationId"], exp_id)
        assert r.status_code == 200, r.text
        assert r.json()["uttagKvar"] == 2 - n
        assert r.json()["ordinationsstatus"] == ("Slutexpedierad" if n == 2 else "Aktiv")
    assert_fault(withdraw(http, base, mint, rx["ordinationId"], ids[3]), 409, "SLUTEXPEDIERAD")
    r = http.post(f"{base}/ordinationer/{rx['ordinationId']}/makulering", json={"orsak": "OVRIGT"},
                  headers=mint("prescriber", 0))
    assert_fault(r, 409, "EJ_MAKULERBAR")
    history = http.get(f"{base}/patienter/{patients[5]['id']}/ordinationer/historik", headers=mint("pharmacy", 0))
    [entry] = history.json()["ordinationer"]
    assert entry["ordination"]["status"] == "Slutexpedierad" and entry["ordination"]["uttagKvar"] == 0
    assert [u["expeditionsId"] for u in entry["uttag"]] == ids[:3]
    current = http.get(f"{base}/patienter/{patients[5]['id']}/ordinationer/aktuella", headers=mint("pharmacy", 0))
    assert current.json()["ordinationer"] == []


def race_last_withdrawal(base: str, mint: Mint, person_id: str, actors: dict[str, Any],
                         racers: int = 8) -> list[requests.Response]:
    """Create a prescription with one withdrawal left; `racers` pharmacies take it at once."""
    with requests.Session() as http:
        rx = created(http, base, mint, person_id, antalUttag=2)
        [first] = reserve(http, base, mint)
        assert withdraw(http, base, mint, rx["ordinationId"], first).status_code == 200
        pharmacies = len(actors["pharmacies"])
        own = [(i % pharmacies, reserve(http, base, mint, pharmacy=i % pharmacies)[0]) for i in range(racers)]
    barrier = threading.Barrier(racers)
    results: list[requests.Response] = []
    lock = threading.Lock()

    def racer(pharmacy: int, exp_id: str) -> None:
        with requests.Session() as s:
            headers = mint("pharmacy", pharmacy)
            url = f"{base}/ordinationer/{rx['ordinationId']}/uttag"
            s.get(f"{base}/arbetsplatskoder/4000000", headers=headers)  # open the connection first
            barrier.wait()
            r = s.post(url, json={"expeditionsId": exp_id, "antalForpackningar": 1}, headers=headers)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=racer, args=args) for args in own]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == racers
    return results


def test_last_withdrawal_race(old_platform: RunningPlatform, mint: Mint, patients: list[dict[str, Any]],
                              actors: dict[str, Any], http: requests.Session) -> None:
    pid = patients[6]["id"]
    for _ in range(10):
        results = race_last_withdrawal(old_platform.legacy, mint, pid, actors)
        ok = [r for r in results if r.status_code == 200]
        assert len(ok) == 1, [r.text for r in ok]
        assert ok[0].json()["uttagKvar"] == 0 and ok[0].json()["ordinationsstatus"] == "Slutexpedierad"
        for r in results:
            if r.status_code != 200:
                assert_fault(r, 409, "SLUTEXPEDIERAD")
    history = http.get(f"{old_platform.legacy}/patienter/{pid}/ordinationer/historik", headers=mint("pharmacy", 0))
    for entry in history.json()["ordinationer"]:
        assert len(entry["uttag"]) == 2 and entry["ordination"]["uttagKvar"] == 0


def test_restart_keeps_data(tmp_path: Path, ticket_key_file: Path, mint: Mint, patients: list[dict[str, Any]],
                            http: requests.Session) -> None:
    pid = patients[7]["id"]
    first = start_platform("old", tmp_path, ticket_key_file)
    try:
        rx = created(http, first.legacy, mint, pid)
        assert http.put(f"{first.legacy}/patienter/{pid}/samtycke", json={"samtycke": True},
                        headers=mint("prescriber", 0)).status_code == 200
    finally:
        first.stop()
    second = start_platform("old", tmp_path, ticket_key_file)
    try:
        current = http.get(f"{second.legacy}/patienter/{pid}/ordinationer/aktuella", headers=mint("pharmacy", 0))
        assert [o["ordinationId"] for o in current.json()["ordinationer"]] == [rx["ordinationId"]]
        assert current.json()["ordinationer"][0] == rx
        assert http.get(f"{second.legacy}/patienter/{pid}", headers=mint("pharmacy", 0)).json()["samtycke"] is True
    finally:
        second.stop()


def test_ticket_rules(old_platform: RunningPlatform, mint: Mint, patients: list[dict[str, Any]],
                      http: requests.Session) -> None:
    base, pid = old_platform.legacy, patients[8]["id"]
    url = f"{base}/patienter/{pid}/ordinationer/aktuella"
    assert_fault(http.get(url), 401, "EJ_AUTENTISERAD")
    assert_fault(http.get(url, headers={"Authorization": "Basic dXNlcjpwdw=="}), 401, "EJ_AUTENTISERAD")
    now = int(time.time())
    forged = jwt.encode({"sub": "x", "role": "pharmacy", "gln": "7350001000008", "iss": "rxverify-local",
                         "iat": now, "exp": now + 600}, "another-key-" * 4, algorithm="HS256")
    assert_fault(http.get(url, headers={"Authorization": f"Bearer {forged}"}), 401, "EJ_AUTENTISERAD")
    assert_fault(http.get(url, headers=mint("pharmacy", 0, iat=now - 7200, exp=now - 60)), 401, "EJ_AUTENTISERAD")
    assert http.get(url, headers=mint("pharmacy", 0)).status_code == 200
    # role: a pharmacy may not prescribe, a prescriber may not dispense
    r = http.post(f"{base}/ordinationer", headers=mint("pharmacy", 0), json={
        "personId": pid, "lakemedel": {"nplPackId": "19990101100001", "namn": "Alvedon"},
        "doseringstext": "1 x 1", "antalForpackningar": 1, "antalUttag": 1, "forskrivningstyp": "ELEKTRONISK"})
    assert_fault(r, 403, "EJ_BEHORIG")
    rx = created(http, base, mint, pid)
    [exp_id] = reserve(http, base, mint)
    r = http.post(f"{base}/ordinationer/{rx['ordinationId']}/uttag", headers=mint("prescriber", 0),
                  json={"expeditionsId": exp_id, "antalForpackningar": 1})
    assert_fault(r, 403, "EJ_BEHORIG")
    assert_fault(http.post(f"{base}/expeditionsid", json={"antal": 1}, headers=mint("prescriber", 0)),
                 403, "EJ_BEHORIG")
    # order of checks: ticket, then request validation, then role
    assert_fault(http.post(f"{base}/ordinationer", json={}), 401, "EJ_AUTENTISERAD")
    assert_fault(http.post(f"{base}/ordinationer", json={}, headers=mint("pharmacy", 0)), 400, "FELAKTIG_BEGARAN")


def test_request_validation(old_platform: RunningPlatform, mint: Mint, patients: list[dict[str, Any]],
                            http: requests.Session) -> None:
    base, pid = old_platform.legacy, patients[9]["id"]
    headers = mint("prescriber", 0)
    assert_fault(new_rx(http, base, mint, pid, antalUttag=13), 400, "FELAKTIG_BEGARAN")
    assert_fault(new_rx(http, base, mint, pid, giltigTom="2026-02-30"), 400, "FELAKTIG_BEGARAN")
    assert_fault(http.get(f"{base}/patienter/12345/ordinationer/aktuella", headers=headers), 400, "FELAKTIG_BEGARAN")
    assert_fault(http.post(f"{base}/ordinationer/not-a-uuid/makulering", json={"orsak": "OVRIGT"}, headers=headers),
                 400, "FELAKTIG_BEGARAN")
    assert_fault(http.post(f"{base}/ordinationer", data=b"x=1", headers=dict(headers, **{
        "Content-Type": "text/plain"})), 400, "FELAKTIG_BEGARAN")
    assert_fault(http.get(f"{base}/no/such/route", headers=headers), 404, "FELAKTIG_BEGARAN")
    r = http.delete(f"{base}/ordinationer", headers=headers)
    assert r.status_code == 405 and "POST" in r.headers["Allow"]
    assert_fault(r, 405, "FELAKTIG_BEGARAN")


def test_unknown_patient_and_prescription(old_platform: RunningPlatform, mint: Mint,
                                          patients: list[dict[str, Any]], http: requests.Session) -> None:
    base = old_platform.legacy
    bad = bad_check_digit(patients[10]["id"])
    headers = mint("prescriber", 0)
    for path in ("", "/ordinationer/aktuella", "/ordinationer/historik", "/lakemedelsforteckning"):
        assert_fault(http.get(f"{base}/patienter/{bad}{path}", headers=headers), 404, "PATIENT_SAKNAS")
    assert_fault(http.put(f"{base}/patienter/{bad}/samtycke", json={"samtycke": True}, headers=headers),
                 404, "PATIENT_SAKNAS")
    assert_fault(new_rx(http, base, mint, bad), 404, "PATIENT_SAKNAS")
    missing = "00000000-0000-4000-8000-000000000000"
    assert_fault(http.post(f"{base}/ordinationer/{missing}/makulering", json={"orsak": "OVRIGT"}, headers=headers),
                 404, "ORDINATION_SAKNAS")
    [exp_id] = reserve(http, base, mint)
    assert_fault(withdraw(http, base, mint, missing, exp_id), 404, "ORDINATION_SAKNAS")
    report = {"expeditionsId": exp_id, "personId": patients[10]["id"], "ordinationId": missing,
              "antalForpackningar": 1}
    assert_fault(http.post(f"{base}/lakemedelsforteckning/expeditioner", json=report, headers=mint("pharmacy", 0)),
                 404, "ORDINATION_SAKNAS")


def test_medication_list_needs_consent(old_platform: RunningPlatform, mint: Mint, patients: list[dict[str, Any]],
                                       http: requests.Session) -> None:
    base, pid = old_platform.legacy, patients[11]["id"]
    url = f"{base}/patienter/{pid}/lakemedelsforteckning"
    assert_fault(http.get(url, headers=mint("pharmacy", 0)), 403, "SAMTYCKE_SAKNAS")
    assert http.put(f"{base}/patienter/{pid}/samtycke", json={"samtycke": True}, headers=mint("pharmacy", 0)).ok
    assert http.get(url, headers=mint("pharmacy", 0)).json() == {"personId": pid, "poster": []}
    assert http.put(f"{base}/patienter/{pid}/samtycke", json={"samtycke": False}, headers=mint("pharmacy", 0)).ok
    assert_fault(http.get(url, headers=mint("pharmacy", 0)), 403, "SAMTYCKE_SAKNAS")


def test_kontrollera_arbetsplatskod(old_platform: RunningPlatform, mint: Mint, actors: dict[str, Any],
                                    http: requests.Session) -> None:
    for unit in actors["careUnits"]:
        r = http.get(f"{old_platform.legacy}/arbetsplatskoder/{unit['arbetsplatskod']}", headers=mint("pharmacy", 0))
        assert r.status_code == 200
        assert r.json() == {"arbetsplatskod": unit["arbetsplatskod"], "giltig": unit["active"]}
    assert any(not u["active"] for u in actors["careUnits"])
    r = http.get(f"{old_platform.legacy}/arbetsplatskoder/4009999", headers=mint("prescriber", 0))
    assert r.json()["giltig"] is False


@pytest.fixture(scope="module")
def faulty_old(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path):  # type: ignore[no-untyped-def]
    p = start_platform("old", tmp_path_factory.mktemp("old-faulty"), ticket_key_file,
                       ["old-history-omits-cancelled", "old-last-withdrawal-race"])
    yield p
    p.stop()


def test_faults_bite(faulty_old: RunningPlatform, mint: Mint, patients: list[dict[str, Any]],
                     actors: dict[str, Any], http: requests.Session) -> None:
    base, pid = faulty_old.legacy, patients[12]["id"]
    rx = created(http, base, mint, pid)
    http.post(f"{base}/ordinationer/{rx['ordinationId']}/makulering", json={"orsak": "OVRIGT"},
              headers=mint("prescriber", 0))
    history = http.get(f"{base}/patienter/{pid}/ordinationer/historik", headers=mint("pharmacy", 0)).json()
    assert history["ordinationer"] == []
    doubles = [sum(r.status_code == 200 for r in race_last_withdrawal(base, mint, patients[13]["id"], actors))
               for _ in range(3)]
    assert max(doubles) > 1
