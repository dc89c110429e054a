"""The cancellation rules of MakuleraOrdinationVard and MakuleraOrdinationApotek, exercised on purpose (SOAP).

Requirement: MakuleraOrdinationVard / MakuleraOrdinationApotek (contracts/riv/services.toml,
legacy-rest.yaml): a prescription that is Aktiv or Parkerad may be cancelled; one already Makulerad
or Slutexpedierad cannot be (a SOAP fault, ApplicationException EJ_MAKULERBAR, the one refusal the
operations declare for it). Generated conformance cases and the lifecycle's links never cancel a
prescription twice, nor one whose withdrawals are all taken, so the rule is driven here through
the whole path: create, (withdraw), cancel, cancel again, every call through the one legacy client.
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

from .legacy_steps import prescribe, refusal, shown, withdraw

pytestmark = [pytest.mark.acceptance, allure.epic("prescriptions"), allure.feature("MakuleraOrdination")]
FAULT = 500  # every SOAP fault comes as HTTP 500 (SOAP 1.1 over HTTP)
CANCELS = {"MakuleraOrdinationVard": "prescriber", "MakuleraOrdinationApotek": "pharmacy"}


@allure.story("a prescription no longer Aktiv cannot be cancelled")
@allure.severity(allure.severity_level.CRITICAL)
@given(data=st.data())
def test_a_prescription_no_longer_active_cannot_be_cancelled(
    data: st.DataObject, platform: str, legacy: LegacyClient, rx_run: Run
) -> None:
    """Cancelled (by either operation) or withdrawn to its last withdrawal, a prescription's cancellation by
    either operation is refused with ApplicationException EJ_MAKULERBAR, whatever the reason given."""
    patient = str(data.draw(st.sampled_from([p.id for p in contract_patients(rx_run.registry)]), label="patient"))
    state = data.draw(st.sampled_from(("Makulerad", "Slutexpedierad")), label="state")
    allowed = data.draw(st.integers(1, 3), label="antalUttag")
    oid = prescribe(legacy, patient, 1, withdrawals=allowed)
    if state == "Makulerad":
        first = data.draw(st.sampled_from(sorted(CANCELS)), label="cancelled by")
        answer = legacy.call(first, {"ordinationsId": oid, "orsak": data.draw(st.sampled_from(ORSAKER))},
                             role=CANCELS[first])
        assert answer.ok, f"{first} of {oid}: received {shown(answer)}"
    else:
        for taken in range(1, allowed + 1):
            answer = withdraw(legacy, oid, 1)
            assert answer.ok, f"GodkannUttag {taken} of {allowed} allowed on {oid}: received {shown(answer)}"
    operation = data.draw(st.sampled_from(sorted(CANCELS)), label="cancelled again by")
    again = legacy.call(operation, {"ordinationsId": oid, "orsak": data.draw(st.sampled_from(ORSAKER))},
                        role=CANCELS[operation])
    assert refusal(again) == (FAULT, APPLICATION, "EJ_MAKULERBAR"), (
        f"{operation} of {state} prescription {oid}: received {shown(again)}; the contract declares a fault "
        "ApplicationException EJ_MAKULERBAR"
    )
