"""The validity rules of SkapaOrdinationVard, exercised on purpose (SOAP).

Requirement: SkapaOrdinationVard (contracts/openapi/legacy.yaml, DOMAIN.md): without giltigTom a
prescription is valid until the issue date + 366 days, or + 14 days when it was phoned in
(forskrivningstyp TELEFON); a giltigTom given is kept as sent. Generated conformance cases hold a
create that the platform accepts and that leaves giltigTom out only now and then (in a power run
of 20 examples: 6 accepted creates out of 117 requests, all of them phoned in), so the rule is
driven here on every example, through the one legacy client and the same domain rule
(rxverify.checks.legacy_rules.default_validity) that judges the generated cases. A giltigTom given
may lie from the issue date through the issue date + 366 days, both included (legacy-rest.yaml):
both ends and a day past each are driven on every run (a generated day hits an end about once in
a run's hundreds).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import allure
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from rxverify.checks.legacy_rules import Exchange, legacy_rules
from rxverify.legacy import shape
from rxverify.legacy.client import LegacyClient
from rxverify.legacy.envelope import APPLICATION
from rxverify.strategies import contract_patients
from rxverify.target.run import Run

from .legacy_steps import MEDICATION, shown

STOCKHOLM = ZoneInfo("Europe/Stockholm")  # the issue date is the Stockholm day
pytestmark = [pytest.mark.acceptance, allure.epic("prescriptions"), allure.feature("SkapaOrdinationVard")]


@allure.story("default validity = issue date + 366 days")
@allure.severity(allure.severity_level.CRITICAL)
@given(data=st.data())
def test_validity_defaults_and_is_kept(
    data: st.DataObject, platform: str, legacy: LegacyClient, rx_run: Run, legacy_url: str
) -> None:
    """A create without giltigTom gets the default validity of its kind; one with giltigTom keeps it."""
    patient = data.draw(st.sampled_from([p.id for p in contract_patients(rx_run.registry)]))
    kind = data.draw(st.sampled_from(("ELEKTRONISK", "TELEFON")))
    sent = {"personnummer": patient, "lakemedel": MEDICATION, "doseringstext": "1 x 3",
            "antalForpackningar": 1, "antalUttag": 1, "forskrivningstyp": kind}
    # a day inside the validity allowed, a day off either end (the issue date may turn at midnight meanwhile)
    days = data.draw(st.one_of(st.none(), st.integers(1, 13 if kind == "TELEFON" else 365)))
    if days is not None:
        sent["giltigTom"] = (dt.datetime.now(STOCKHOLM).date() + dt.timedelta(days=days)).isoformat()
    created = legacy.call("SkapaOrdinationVard", sent, role="prescriber")
    assert created.ok and created.status == 200, f"SkapaOrdinationVard ({kind}): received {shown(created)}"
    as_sent = shape.to_json(sent, legacy.contracts.names, {})  # today's JSON shape, as the rule reads it
    answer = created.json
    missing = sorted({"utfardandedatum", "giltigTom"} - set(answer))
    assert not missing, f"SkapaOrdinationVard ({kind}): the answer has no {' and no '.join(missing)}"
    legacy_rules().default_validity(Exchange(created, as_sent, legacy_url), answer)


@allure.story("giltigTom allowed from the issue date through issue date + 366 days")
@allure.severity(allure.severity_level.CRITICAL)
@given(data=st.data())
def test_validity_limits_are_inclusive(data: st.DataObject, platform: str, legacy: LegacyClient, rx_run: Run) -> None:
    """giltigTom on the issue date or on issue date + 366 days is accepted and kept; a day before the first or
    after the last is refused with the fault the contract declares (ApplicationException OGILTIG_GILTIGHETSTID)."""
    patient = data.draw(st.sampled_from([p.id for p in contract_patients(rx_run.registry)]))
    days = data.draw(st.sampled_from((0, 366, -1, 367)), label="giltigTom - issue date (days)")
    kind = data.draw(st.sampled_from(("ELEKTRONISK", "TELEFON")))
    today = dt.datetime.now(STOCKHOLM).date()
    valid_to = (today + dt.timedelta(days=days)).isoformat()
    sent = {"personnummer": patient, "lakemedel": MEDICATION, "doseringstext": "1 x 3", "antalForpackningar": 1,
            "antalUttag": 1, "forskrivningstyp": kind, "giltigTom": valid_to}
    created = legacy.call("SkapaOrdinationVard", sent, role="prescriber")
    assume(dt.datetime.now(STOCKHOLM).date() == today)  # an issue date that turned meanwhile says nothing
    said = f"SkapaOrdinationVard ({kind}) issued {today.isoformat()} with giltigTom {valid_to} ({days:+d} days)"
    if 0 <= days <= 366:
        assert created.ok and created.status == 200, f"{said}: received {shown(created)}; the limits are inclusive"
        kept = (created.json or {}).get("giltigTom")
        assert kept == valid_to, f"{said}: kept as {kept!r}"
    else:
        fault = created.fault
        got = (created.status, fault.kind if fault else None, fault.kod if fault else None)
        assert got == (500, APPLICATION, "OGILTIG_GILTIGHETSTID"), (
            f"{said}: received {shown(created)}; the contract declares a fault ApplicationException "
            "OGILTIG_GILTIGHETSTID"
        )
