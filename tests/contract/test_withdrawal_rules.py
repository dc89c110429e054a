"""The withdrawal rules of GodkannUttag, exercised on purpose with reserved dispensing ids (SOAP).

Requirement: GodkannUttag (contracts/riv/services.toml): a cancelled prescription cannot be
withdrawn (a SOAP fault, ApplicationException MAKULERAD); a withdrawal never takes more packages
than prescribed per withdrawal (ApplicationException FOR_MANGA_FORPACKNINGAR). Generated
conformance cases rarely hold a reserved dispensing id, so these rules are driven here through
the whole path: create, (cancel), reserve, withdraw, every call through the one legacy client.
"""

from __future__ import annotations

import allure
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxverify.differential import ORSAKER
from rxverify.legacy.client import LegacyClient
from rxverify.legacy.envelope import APPLICATION
from rxverify.strategies import contract_patients
from rxverify.target.run import Run

from .legacy_steps import cancel, prescribe, refusal, shown, withdraw

pytestmark = [pytest.mark.acceptance, allure.epic("dispensing"), allure.feature("GodkannUttag")]
FAULT = 500  # every SOAP fault comes as HTTP 500 (SOAP 1.1 over HTTP)


@allure.story("a cancelled prescription cannot be withdrawn")
@allure.severity(allure.severity_level.BLOCKER)
@given(data=st.data())
def test_cancelled_prescription_cannot_be_withdrawn(
    data: st.DataObject, platform: str, legacy: LegacyClient, rx_run: Run
) -> None:
    """Create, cancel (any reason), reserve an id, withdraw: the fault ApplicationException MAKULERAD."""
    patient = data.draw(st.sampled_from([p.id for p in contract_patients(rx_run.registry)]))
    oid = prescribe(legacy, patient, data.draw(st.integers(1, 99)))
    cancelled = cancel(legacy, oid, data.draw(st.sampled_from(ORSAKER)))
    assert cancelled.ok, f"MakuleraOrdinationVard of {oid}: received {shown(cancelled)}"
    answer = withdraw(legacy, oid, 1)
    assert refusal(answer) == (FAULT, APPLICATION, "MAKULERAD"), (
        f"GodkannUttag on cancelled prescription {oid}: received {shown(answer)}; "
        "the contract declares a fault ApplicationException MAKULERAD"
    )


@allure.story("withdrawals never exceed what was prescribed")
@allure.severity(allure.severity_level.BLOCKER)
@given(data=st.data())
def test_withdrawal_never_exceeds_prescribed_packages(
    data: st.DataObject, platform: str, legacy: LegacyClient, rx_run: Run
) -> None:
    """Prescribed n packages per withdrawal: n+k is refused (FOR_MANGA_FORPACKNINGAR), n is accepted."""
    patient = data.draw(st.sampled_from([p.id for p in contract_patients(rx_run.registry)]))
    prescribed = data.draw(st.integers(1, 98))
    oid = prescribe(legacy, patient, prescribed)
    too_many = data.draw(st.integers(prescribed + 1, 99))
    answer = withdraw(legacy, oid, too_many)
    assert refusal(answer) == (FAULT, APPLICATION, "FOR_MANGA_FORPACKNINGAR"), (
        f"GodkannUttag of {too_many} packages on {oid} (prescribed {prescribed} per withdrawal): received "
        f"{shown(answer)}; the contract declares a fault ApplicationException FOR_MANGA_FORPACKNINGAR"
    )
    answer = withdraw(legacy, oid, prescribed)
    assert answer.ok, f"GodkannUttag of the prescribed {prescribed} packages on {oid}: received {shown(answer)}"
