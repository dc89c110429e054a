"""Security rules on every operation: the access ticket and its role.

Requirement: "Säker åtkomst" (security solution 17.1, DOMAIN.md): a missing or bad ticket is
refused (401) on every operation, a ticket whose role may not call an operation is refused
(403, contract `x-roles`), and a prescriber sees the medication list only with consent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import allure
import pytest
import requests
from hypothesis import HealthCheck, given, reject, settings

from rxverify.contract import roles_of
from rxverify.safety.guard import RequestRefused
from rxverify.strategies import contract_patients
from rxverify.target.credentials import TicketMinter
from rxverify.target.local import new_ticket_key
from rxverify.target.run import Run

from .schemas import fhir, legacy

ROLES = ("prescriber", "pharmacy")
# The FHIR API is the new platform's: its cases are not collected for the old one (rxverify.conformance).
ON_ITS_PLATFORM = {"legacy": (), "fhir": (pytest.mark.platforms("new"),)}


def _operations(schema: Any, interface: str) -> list[Any]:
    # parametrized over `interface`: generated only for the platforms that have it (rxverify.conformance)
    ops = [r.ok() for r in schema.get_all_operations()]
    return [
        pytest.param(
            interface, op, id=f"{interface}:{op.definition.raw['operationId']}", marks=ON_ITS_PLATFORM[interface]
        )
        for op in ops
        if op.definition.raw.get("security") != []
    ]


OPERATIONS = _operations(legacy, "legacy") + _operations(fhir, "fhir")


def _minter(rx_run: Run) -> TicketMinter:
    assert isinstance(rx_run.tickets, TicketMinter), "forges_tickets: generated only where this run signs tickets"
    return rx_run.tickets


def _base(rx_run: Run, interface: str, platform: str) -> str:
    endpoints = rx_run.target.platforms[platform]
    url = endpoints.legacy if interface == "legacy" else endpoints.fhir
    assert url is not None, f"generated for {platform}, which has no {interface} interface"
    return url


def _send(session: requests.Session, base: str, case: Any, headers: dict[str, str]) -> Any:
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    return case.call(base_url=base, session=session, headers=headers)


@pytest.mark.acceptance
@pytest.mark.forges_tickets
@allure.epic("security")
@allure.story("a missing, forged or expired ticket is refused")
@allure.severity(allure.severity_level.BLOCKER)
@pytest.mark.parametrize(("interface", "operation"), OPERATIONS)
def test_bad_ticket_refused(
    interface: str,
    operation: Any,
    platform: str,
    rx_run: Run,
    rx_session: requests.Session,
    rx_refused: Callable[[str, RequestRefused], None],
) -> None:
    """No ticket, a ticket signed with another key, an expired ticket: 401 on every operation."""
    allure.dynamic.feature(operation.definition.raw["operationId"])
    base = _base(rx_run, interface, platform)
    minter = _minter(rx_run)
    role = roles_of(operation)[0]
    forged = TicketMinter(new_ticket_key(), minter.actors).ticket(role)
    expired = minter.ticket(role, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)

    @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy())
    def refused(case: Any) -> None:
        for label, headers in (
            ("no ticket", {}),
            ("forged ticket", {"Authorization": f"Bearer {forged}"}),
            ("expired ticket", {"Authorization": f"Bearer {expired}"}),
        ):
            try:
                response = _send(rx_session, base, case, headers)
            except RequestRefused as refused:
                rx_refused(operation.label, refused)  # counted and shown: the gate bounds refusals
                reject()  # generated data held an identity outside the registry: nothing was sent
            assert response.status_code == 401, (
                f"{operation.label} with {label}: received {response.status_code}, the contract declares 401"
            )

    refused()


def _disallowed() -> list[Any]:
    out = []
    for interface, schema in (("legacy", legacy), ("fhir", fhir)):
        for r in schema.get_all_operations():
            op = r.ok()
            allowed = op.definition.raw.get("x-roles")
            if allowed and set(allowed) != set(ROLES):
                for role in set(ROLES) - set(allowed):
                    out.append(
                        pytest.param(
                            interface,
                            op,
                            role,
                            id=f"{interface}:{op.definition.raw['operationId']}:{role}",
                            marks=ON_ITS_PLATFORM[interface],
                        )
                    )
    return out


@pytest.mark.acceptance
@allure.epic("security")
@allure.story("a ticket whose role may not call the operation is refused")
@allure.severity(allure.severity_level.BLOCKER)
@pytest.mark.parametrize(("interface", "operation", "role"), _disallowed())
def test_wrong_role_refused(
    interface: str,
    operation: Any,
    role: str,
    platform: str,
    rx_run: Run,
    rx_session: requests.Session,
    rx_refused: Callable[[str, RequestRefused], None],
) -> None:
    """E.g. a pharmacy ticket cannot create a care prescription: 403 (contract x-roles)."""
    allure.dynamic.feature(operation.definition.raw["operationId"])
    base = _base(rx_run, interface, platform)
    ticket = rx_run.tickets.ticket(role)

    @settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy())
    def refused(case: Any) -> None:
        try:
            response = _send(rx_session, base, case, {"Authorization": f"Bearer {ticket}"})
        except RequestRefused as refused:
            rx_refused(operation.label, refused)  # counted and shown: the gate bounds refusals
            reject()  # generated data held an identity outside the registry: nothing was sent
        assert response.status_code == 403, (
            f"{operation.label} as {role}: received {response.status_code}; the contract allows "
            f"{', '.join(roles_of(operation))} only (403 for others)"
        )

    refused()


@pytest.mark.acceptance
@allure.epic("medication list")
@allure.feature("HamtaLakemedelsforteckning")
@allure.story("a prescriber sees the medication list only with consent")
@allure.severity(allure.severity_level.BLOCKER)
def test_prescriber_sees_medication_list_only_with_consent(
    platform: str, legacy_url: str, rx_run: Run, rx_session: requests.Session
) -> None:
    """Consent withdrawn: 403 SAMTYCKE_SAKNAS; consent given: 200."""
    patient = contract_patients(rx_run.registry)[3].id
    prescriber, pharmacy = rx_run.auth_headers("prescriber"), rx_run.auth_headers("pharmacy")
    url = f"{legacy_url}/patienter/{patient}"
    assert rx_session.put(f"{url}/samtycke", json={"samtycke": False}, headers=pharmacy, timeout=30).status_code == 200
    refused = rx_session.get(f"{url}/lakemedelsforteckning", headers=prescriber, timeout=30)
    assert refused.status_code == 403 and refused.json().get("kod") == "SAMTYCKE_SAKNAS", (
        f"HamtaLakemedelsforteckning without consent: received {refused.status_code} {refused.text[:200]}; "
        "the contract declares 403 SAMTYCKE_SAKNAS"
    )
    assert rx_session.put(f"{url}/samtycke", json={"samtycke": True}, headers=pharmacy, timeout=30).status_code == 200
    served = rx_session.get(f"{url}/lakemedelsforteckning", headers=prescriber, timeout=30)
    assert served.status_code == 200, served.text
