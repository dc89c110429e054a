"""The withdrawal rules of GodkannUttag, exercised on purpose with reserved dispensing ids (SOAP).

Requirement: GodkannUttag (contracts/riv/services.toml): a cancelled prescription cannot be
withdrawn (a SOAP fault, ApplicationException MAKULERAD); a withdrawal never takes more packages
than prescribed per withdrawal (ApplicationException FOR_MANGA_FORPACKNINGAR); the last allowed
withdrawal leaves the prescription Slutexpedierad and one more is refused (SLUTEXPEDIERAD); a
prescription may be withdrawn through its giltigTom day ("till och med"), refused as UTGANGEN after. Generated
conformance cases rarely hold a reserved dispensing id, so these rules are driven here through
the whole path: create, (cancel), reserve, withdraw, every call through the one legacy client.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import allure
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from rxverify.differential import ORSAKER
from rxverify.legacy.client import LegacyClient
from rxverify.legacy.envelope import APPLICATION
from rxverify.mapping import load_mapping
from rxverify.paths import contracts_dir
from rxverify.strategies import contract_patients
from rxverify.target.run import Run

from .legacy_steps import cancel, prescribe, refusal, shown, withdraw

pytestmark = [pytest.mark.acceptance, allure.epic("dispensing"), allure.feature("GodkannUttag")]
FAULT = 500  # every SOAP fault comes as HTTP 500 (SOAP 1.1 over HTTP)


def _patient(data: st.DataObject, run: Run) -> str:
    """A conformance test patient (never one of the differential's)."""
    return str(data.draw(st.sampled_from([p.id for p in contract_patients(run.registry)]), label="patient"))


@allure.story("a cancelled prescription cannot be withdrawn")
@allure.severity(allure.severity_level.BLOCKER)
@given(data=st.data())
def test_cancelled_prescription_cannot_be_withdrawn(
    data: st.DataObject, platform: str, legacy: LegacyClient, rx_run: Run
) -> None:
    """Create, cancel (any reason), reserve an id, withdraw: the fault ApplicationException MAKULERAD."""
    patient = _patient(data, rx_run)
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
    patient = _patient(data, rx_run)
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


def _legacy_today() -> date:
    """Today in the mapping's time zone: the day the legacy interface's dates are written in."""
    return datetime.now(load_mapping(contracts_dir() / "mapping" / "legacy-fhir.yaml").time_zone).date()


@allure.story("the last allowed withdrawal completes the prescription")
@allure.severity(allure.severity_level.BLOCKER)
@given(data=st.data())
def test_last_allowed_withdrawal_completes_the_prescription(
    data: st.DataObject, platform: str, legacy: LegacyClient, rx_run: Run
) -> None:
    """n withdrawals allowed: each counts uttagKvar down and leaves the prescription Aktiv until the n-th,
    which leaves it Slutexpedierad with uttagKvar 0; one more is refused (ApplicationException SLUTEXPEDIERAD)."""
    patient = _patient(data, rx_run)
    allowed = data.draw(st.integers(1, 4), label="antalUttag")
    packages = data.draw(st.integers(1, 5), label="antalForpackningar")
    oid = prescribe(legacy, patient, packages, withdrawals=allowed)
    for taken in range(1, allowed + 1):
        answer = withdraw(legacy, oid, data.draw(st.integers(1, packages), label=f"packages of withdrawal {taken}"))
        assert answer.ok, f"GodkannUttag {taken} of {allowed} allowed on {oid}: received {shown(answer)}"
        left = allowed - taken
        expected = ("Slutexpedierad" if left == 0 else "Aktiv", left)
        got = (answer.body.get("ordinationsstatus"), answer.body.get("uttagKvar"))
        assert got == expected, (
            f"GodkannUttag {taken} of {allowed} allowed on {oid}: ordinationsstatus, uttagKvar = {got}; "
            f"the rules give {expected} (a prescription is Slutexpedierad once no withdrawal is left)"
        )
    answer = withdraw(legacy, oid, 1)
    assert refusal(answer) == (FAULT, APPLICATION, "SLUTEXPEDIERAD"), (
        f"GodkannUttag after all {allowed} allowed withdrawals on {oid}: received {shown(answer)}; "
        "the contract declares a fault ApplicationException SLUTEXPEDIERAD"
    )


@allure.story("a prescription can be withdrawn through its last day of validity")
@allure.severity(allure.severity_level.BLOCKER)
@given(data=st.data())
def test_prescription_can_be_withdrawn_on_its_last_day(
    data: st.DataObject, platform: str, legacy: LegacyClient, rx_run: Run
) -> None:
    """giltigTom is the last day a prescription may be withdrawn ("gäller till och med"): valid through
    today or a later day, a withdrawal today is accepted, not refused as UTGANGEN."""
    patient = _patient(data, rx_run)
    days = data.draw(st.sampled_from((0, 0, 1, 30)), label="giltigTom - today (days)")
    today = _legacy_today()
    valid_to = (today + timedelta(days=days)).isoformat()
    oid = prescribe(legacy, patient, 1, giltigTom=valid_to)
    answer = withdraw(legacy, oid, 1)
    assume(_legacy_today() == today)  # a run across midnight says nothing about the last day
    assert answer.ok, (
        f"GodkannUttag on {today.isoformat()} of {oid}, valid to {valid_to} (giltigTom, inclusive): "
        f"received {shown(answer)}"
    )
