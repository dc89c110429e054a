"""The last withdrawal of a prescription is won by exactly one pharmacy (SOAP).

Requirement: GodkannUttag (contracts/riv/services.toml): "Of two pharmacies taking the last
withdrawal at the same moment exactly one succeeds"; the others get the fault ApplicationException
SLUTEXPEDIERAD.
"""

from __future__ import annotations

import threading
from typing import Any

import allure
import pytest
import requests

from rxverify.contract import legacy_client
from rxverify.legacy.client import LegacyClient, Prepared
from rxverify.strategies import contract_patients
from rxverify.target.run import Run

from .legacy_steps import prescribe, reserve

PHARMACIES = 6  # the test actors: one request each, released together
ROUNDS = 5


def _race(clients: list[LegacyClient], requests_: list[Prepared]) -> list[Any]:
    """Each pharmacy withdraws at the same moment (a barrier releases them together)."""
    start = threading.Barrier(len(clients))
    answers: list[Any] = [None] * len(clients)

    def withdraw(i: int) -> None:
        start.wait()
        try:
            answers[i] = clients[i].send(requests_[i])
        except requests.RequestException as exc:
            answers[i] = exc

    threads = [threading.Thread(target=withdraw, args=(i,)) for i in range(len(clients))]
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
    """Pharmacies race for a prescription's only withdrawal: one answer, the rest the fault SLUTEXPEDIERAD."""
    patient = contract_patients(rx_run.registry)[7].id
    clients = [legacy_client(rx_run.session(), legacy_url) for _ in range(PHARMACIES)]
    try:
        for round_no in range(ROUNDS):
            oid = prescribe(clients[0], patient, packages=1, withdrawals=1)
            prepared = [
                c.prepare("GodkannUttag", {"ordinationsId": oid, "expeditionsId": reserve(c, i),
                                           "antalForpackningar": 1}, role="pharmacy", actor=i)
                for i, c in enumerate(clients)
            ]
            answers = _race(clients, prepared)
            codes = [a.status if hasattr(a, "status") else repr(a) for a in answers]
            winners = sum(1 for a in answers if getattr(a, "ok", False))
            losers = [a.kod for a in answers if getattr(a, "fault", None) is not None]
            assert winners == 1 and losers == ["SLUTEXPEDIERAD"] * (PHARMACIES - 1), (
                f"round {round_no + 1}: {winners} pharmacies won the only withdrawal of {oid} (answers {codes}, "
                f"faults {losers}); the contract declares exactly one winner and the fault SLUTEXPEDIERAD for "
                "the others"
            )
    finally:
        for c in clients:
            if c.session is not None:
                c.session.close()
