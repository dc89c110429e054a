"""The withdrawal rules of GodkannUttag, exercised on purpose with reserved dispensing ids.

Requirement: GodkannUttag (legacy.yaml): a cancelled prescription cannot be withdrawn (409
MAKULERAD); a withdrawal never takes more packages than prescribed per withdrawal (409
FOR_MANGA_FORPACKNINGAR). Generated conformance cases rarely hold a reserved dispensing id, so
these rules are driven here through the whole path: create, (cancel), reserve, withdraw.
"""

from __future__ import annotations

import allure
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from rxverify.differential import ORSAKER
from rxverify.strategies import contract_patients
from rxverify.target.run import Run

pytestmark = [pytest.mark.acceptance, allure.epic("dispensing"), allure.feature("GodkannUttag")]


def _prescribe(session: requests.Session, legacy_url: str, rx_run: Run, patient: str, packages: int) -> str:
    body = {
        "personId": patient,
        "lakemedel": {"nplPackId": "19990101100001", "namn": "Alvedon"},
        "doseringstext": "1 x 3",
        "antalForpackningar": packages,
        "antalUttag": 2,
        "forskrivningstyp": "ELEKTRONISK",
    }
    created = session.post(
        f"{legacy_url}/ordinationer", json=body, headers=rx_run.auth_headers("prescriber"), timeout=30
    )
    assert created.status_code == 201, created.text
    return str(created.json()["ordinationId"])


def _withdraw(session: requests.Session, legacy_url: str, rx_run: Run, oid: str, packages: int) -> tuple[int, str]:
    pharmacy = rx_run.auth_headers("pharmacy")
    reserved = session.post(f"{legacy_url}/expeditionsid", json={"antal": 1}, headers=pharmacy, timeout=30)
    assert reserved.status_code == 200, reserved.text
    answer = session.post(
        f"{legacy_url}/ordinationer/{oid}/uttag",
        headers=pharmacy,
        timeout=30,
        json={"expeditionsId": reserved.json()["expeditionsIdn"][0], "antalForpackningar": packages},
    )
    return answer.status_code, str(answer.json().get("kod", "")) if answer.status_code >= 400 else ""


@allure.story("a cancelled prescription cannot be withdrawn")
@allure.severity(allure.severity_level.BLOCKER)
@given(data=st.data())
def test_cancelled_prescription_cannot_be_withdrawn(
    data: st.DataObject, platform: str, legacy_url: str, rx_run: Run, rx_session: requests.Session
) -> None:
    """Create, cancel (any reason), reserve an id, withdraw: 409 MAKULERAD."""
    patient = data.draw(st.sampled_from([p.id for p in contract_patients(rx_run.registry)]))
    oid = _prescribe(rx_session, legacy_url, rx_run, patient, data.draw(st.integers(1, 99)))
    reason = data.draw(st.sampled_from(ORSAKER))
    cancelled = rx_session.post(
        f"{legacy_url}/ordinationer/{oid}/makulering",
        json={"orsak": reason},
        headers=rx_run.auth_headers("prescriber"),
        timeout=30,
    )
    assert cancelled.status_code == 200, cancelled.text
    status, kod = _withdraw(rx_session, legacy_url, rx_run, oid, 1)
    assert (status, kod) == (409, "MAKULERAD"), (
        f"GodkannUttag on cancelled prescription {oid}: received {status} {kod}; the contract declares 409 MAKULERAD"
    )


@allure.story("withdrawals never exceed what was prescribed")
@allure.severity(allure.severity_level.BLOCKER)
@given(data=st.data())
def test_withdrawal_never_exceeds_prescribed_packages(
    data: st.DataObject, platform: str, legacy_url: str, rx_run: Run, rx_session: requests.Session
) -> None:
    """Prescribed n packages per withdrawal: n+k is refused (409 FOR_MANGA_FORPACKNINGAR), n is accepted."""
    patient = data.draw(st.sampled_from([p.id for p in contract_patients(rx_run.registry)]))
    prescribed = data.draw(st.integers(1, 98))
    oid = _prescribe(rx_session, legacy_url, rx_run, patient, prescribed)
    too_many = data.draw(st.integers(prescribed + 1, 99))
    status, kod = _withdraw(rx_session, legacy_url, rx_run, oid, too_many)
    assert (status, kod) == (409, "FOR_MANGA_FORPACKNINGAR"), (
        f"GodkannUttag of {too_many} packages on {oid} (prescribed {prescribed} per withdrawal): received {status} "
        f"{kod}; the contract declares 409 FOR_MANGA_FORPACKNINGAR"
    )
    status, kod = _withdraw(rx_session, legacy_url, rx_run, oid, prescribed)
    assert status == 200, f"GodkannUttag of the prescribed {prescribed} packages on {oid}: received {status} {kod}"
