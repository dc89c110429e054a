"""Security rules on every operation: the access ticket and its role.

Requirement: "Säker åtkomst" (security solution 17.1, DOMAIN.md): a missing or bad ticket is
refused on every operation (FHIR 401; the old interface a SOAP fault ApplicationException
EJ_AUTENTISERAD), a ticket whose role may not call an operation is refused (FHIR 403; SOAP
EJ_BEHORIG; contract `x-roles`), and a prescriber sees the medication list only with consent.
The old interface's calls are SOAP requests of the one legacy client, bodies drawn by
schemathesis from legacy.yaml.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import allure
import pytest
import requests
from hypothesis import HealthCheck, given, reject, settings

from rxverify.contract import legacy_client, roles_of
from rxverify.legacy.client import LegacyAnswer, LegacyClient
from rxverify.legacy.envelope import APPLICATION
from rxverify.legacy.media import service_of
from rxverify.safety.guard import RequestRefused
from rxverify.strategies import contract_patients
from rxverify.target.credentials import TicketMinter
from rxverify.target.local import new_ticket_key
from rxverify.target.run import Run

from .legacy_steps import refusal, shown
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


class _Ticket:
    """Credentials that send one given ticket (forged, expired, another role's), or none."""

    def __init__(self, ticket: str | None) -> None:
        self._ticket = ticket

    def ticket(self, role: str, index: int = 0) -> str | None:
        """The given ticket, whatever the role."""
        return self._ticket


def _soap(session: requests.Session, base: str, operation: Any, case: Any, ticket: str | None) -> LegacyAnswer:
    client: LegacyClient = legacy_client(session, base).with_credentials(_Ticket(ticket))
    body = case.body if isinstance(case.body, dict) else {}
    return client.call(service_of(operation, client), body, role=roles_of(operation)[0])


def _send(session: requests.Session, base: str, case: Any, headers: dict[str, str]) -> Any:
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    return case.call(base_url=base, session=session, headers=headers)


def _refused_as(interface: str, operation: Any, label: str, answer: Any, kod: str, status: int) -> str | None:
    """Why the answer is not the refusal the contract declares (None: it is)."""
    if interface == "legacy":
        if refusal(answer) == (500, APPLICATION, kod):
            return None
        service = operation.definition.raw["operationId"]
        return f"{service} {label}: received {shown(answer)}, the contract declares a fault ApplicationException {kod}"
    if answer.status_code == status:
        return None
    return f"{operation.label} {label}: received {answer.status_code}, the contract declares {status}"


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
    """No ticket, a ticket signed with another key, an expired ticket: refused (401, or EJ_AUTENTISERAD) everywhere."""
    allure.dynamic.feature(operation.definition.raw["operationId"])
    base = _base(rx_run, interface, platform)
    minter = _minter(rx_run)
    role = roles_of(operation)[0]
    forged = TicketMinter(new_ticket_key(), minter.actors).ticket(role)
    expired = minter.ticket(role, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)

    @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy())
    def refused(case: Any) -> None:
        for label, ticket in (("no ticket", None), ("forged ticket", forged), ("expired ticket", expired)):
            try:
                if interface == "legacy":
                    response = _soap(rx_session, base, operation, case, ticket)
                else:
                    response = _send(rx_session, base, case, {"Authorization": f"Bearer {ticket}"} if ticket else {})
            except RequestRefused as refused:
                rx_refused(operation.label, refused)  # counted and shown: the gate bounds refusals
                reject()  # generated data held an identity outside the registry: nothing was sent
            problem = _refused_as(interface, operation, f"with {label}", response, "EJ_AUTENTISERAD", 401)
            assert problem is None, problem

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
    """E.g. a pharmacy ticket cannot create a care prescription: 403, or EJ_BEHORIG (contract x-roles)."""
    allure.dynamic.feature(operation.definition.raw["operationId"])
    base = _base(rx_run, interface, platform)
    ticket = rx_run.tickets.ticket(role)

    @settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy())
    def refused(case: Any) -> None:
        try:
            if interface == "legacy":
                response = _soap(rx_session, base, operation, case, ticket)
            else:
                response = _send(rx_session, base, case, {"Authorization": f"Bearer {ticket}"})
        except RequestRefused as refused:
            rx_refused(operation.label, refused)  # counted and shown: the gate bounds refusals
            reject()  # generated data held an identity outside the registry: nothing was sent
        allowed = ", ".join(roles_of(operation))
        if interface == "legacy":
            problem = _refused_as(interface, operation, f"as {role}", response, "EJ_BEHORIG", 403)
            assert problem is None, f"{problem}; the contract allows {allowed} only"
        else:
            assert response.status_code == 403, (
                f"{operation.label} as {role}: received {response.status_code}; the contract allows {allowed} only "
                "(403 for others)"
            )

    refused()


@pytest.mark.acceptance
@allure.epic("medication list")
@allure.feature("HamtaLakemedelsforteckning")
@allure.story("a prescriber sees the medication list only with consent")
@allure.severity(allure.severity_level.BLOCKER)
def test_prescriber_sees_medication_list_only_with_consent(platform: str, legacy: LegacyClient, rx_run: Run) -> None:
    """Consent withdrawn: the fault ApplicationException SAMTYCKE_SAKNAS; consent given: the list."""
    patient = {"personnummer": contract_patients(rx_run.registry)[3].id}
    withdrawn = legacy.call("UppdateraSamtycke", {**patient, "samtycke": False}, role="pharmacy")
    assert withdrawn.ok, f"UppdateraSamtycke: received {shown(withdrawn)}"
    refused = legacy.call("HamtaLakemedelsforteckning", patient, role="prescriber")
    assert refusal(refused) == (500, APPLICATION, "SAMTYCKE_SAKNAS"), (
        f"HamtaLakemedelsforteckning without consent: received {shown(refused)}; "
        "the contract declares a fault ApplicationException SAMTYCKE_SAKNAS"
    )
    given_ = legacy.call("UppdateraSamtycke", {**patient, "samtycke": True}, role="pharmacy")
    assert given_.ok, f"UppdateraSamtycke: received {shown(given_)}"
    served = legacy.call("HamtaLakemedelsforteckning", patient, role="prescriber")
    assert served.ok, f"HamtaLakemedelsforteckning with consent: received {shown(served)}"
