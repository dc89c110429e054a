"""The last withdrawal of a prescription is won by exactly one pharmacy.

Requirement: GodkannUttag (legacy.yaml): "Of two pharmacies taking the last withdrawal at the
same moment exactly one succeeds"; the others get 409 SLUTEXPEDIERAD.
"""

from __future__ import annotations

import threading
from typing import Any

import allure
import pytest
import requests

from rxverify.strategies import contract_patients
from rxverify.target.run import Run

PHARMACIES = 6  # the test actors: one request each, released together
ROUNDS = 5


def _race(sessions: list[Any], url: str, ids: list[str], headers: list[dict[str, str]]) -> list[Any]:
    """Each pharmacy withdraws at the same moment (a barrier releases them together)."""
    start = threading.Barrier(len(sessions))
    answers: list[Any] = [None] * len(sessions)

    def withdraw(i: int) -> None:
        start.wait()
        try:
            answers[i] = sessions[i].post(
                url, json={"expeditionsId": ids[i], "antalForpackningar": 1}, headers=headers[i], timeout=30
            )
        except requests.RequestException as exc:
            answers[i] = exc

    threads = [threading.Thread(target=withdraw, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


@pytest.mark.integration
@allure.epic("dispensing")
@allure.feature("GodkannUttag")
@allure.story("the last withdrawal is won by exactly one pharmacy")
@allure.severity(allure.severity_level.BLOCKER)
def test_last_withdrawal_has_one_winner(platform: str, legacy_url: str, rx_run: Run) -> None:
    """Pharmacies race for a prescription's only withdrawal: one 200, the rest 409 SLUTEXPEDIERAD."""
    patient = contract_patients(rx_run.registry)[7].id
    sessions = [rx_run.session() for _ in range(PHARMACIES)]
    try:
        for round_no in range(ROUNDS):
            body = {
                "personId": patient,
                "lakemedel": {"nplPackId": "19990101100001", "namn": "Alvedon"},
                "doseringstext": "1 x 3",
                "antalForpackningar": 1,
                "antalUttag": 1,
                "forskrivningstyp": "ELEKTRONISK",
            }
            created = sessions[0].post(
                f"{legacy_url}/ordinationer", json=body, headers=rx_run.auth_headers("prescriber"), timeout=30
            )
            assert created.status_code == 201, created.text
            oid = created.json()["ordinationId"]
            ids = [
                s.post(
                    f"{legacy_url}/expeditionsid",
                    json={"antal": 1},
                    headers=rx_run.auth_headers("pharmacy", i),
                    timeout=30,
                ).json()["expeditionsIdn"][0]
                for i, s in enumerate(sessions)
            ]
            url = f"{legacy_url}/ordinationer/{oid}/uttag"
            answers = _race(sessions, url, ids, [rx_run.auth_headers("pharmacy", i) for i in range(PHARMACIES)])
            codes = [a.status_code if hasattr(a, "status_code") else repr(a) for a in answers]
            winners = codes.count(200)
            losers = [a.json().get("kod") for a in answers if getattr(a, "status_code", 0) == 409]
            assert winners == 1 and losers == ["SLUTEXPEDIERAD"] * (PHARMACIES - 1), (
                f"round {round_no + 1}: {winners} pharmacies won the only withdrawal of {oid} (answers {codes}, "
                f"faults {losers}); the contract declares exactly one winner and 409 SLUTEXPEDIERAD for the others"
            )
    finally:
        for s in sessions:
            s.close()
