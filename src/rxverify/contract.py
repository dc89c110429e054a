"""Binding schemathesis schemas to the run: tickets per operation role, identities from the registry.

Schemas are loaded when the test modules are imported, before the run's target is ready, so
they read the active run through `ACTIVE` when a case is generated or sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis import AuthContext, Case
from schemathesis.core.parameters import ParameterLocation

from rxverify.errors import UserError
from rxverify.guard import GuardedSession
from rxverify.mapping import load_mapping
from rxverify.paths import contracts_dir
from rxverify.registry import Registry
from rxverify.session import Run
from rxverify.strategies import contract_patients
from rxverify.tickets import EnvironmentTickets, TicketMinter


class _Active:
    """The run the contract suite is currently bound to."""

    run: Run | None = None
    # known before collection: generating the explicit examples needs identities and tickets
    registry: Registry | None = None
    tickets: TicketMinter | EnvironmentTickets | None = None
    _session: GuardedSession | None = None

    def get(self) -> Run:
        """The active run (set by the session fixture before any case is sent)."""
        if self.run is None:
            raise UserError("no active run: the contract schemas are used outside the rxverify pytest plugin")
        return self.run

    def session(self) -> GuardedSession:
        """One guarded session of the active run, for the checks' follow-up reads."""
        run = self.get()
        if self._session is None or self._session.guard is not run.guard:
            self._session = run.session()
        return self._session


ACTIVE = _Active()


def roles_of(operation: Any) -> list[str]:
    """The ticket roles the contract allows on an operation (`x-roles`; both when absent)."""
    return list(operation.definition.raw.get("x-roles") or ["prescriber", "pharmacy"])


class TestActorTicket:
    """schemathesis auth provider: a ticket of a test actor whose role the operation allows."""

    __test__ = False

    def get(self, case: Case, context: AuthContext) -> str:
        """Mint (or read) the ticket."""
        tickets = ACTIVE.tickets or ACTIVE.get().tickets
        return tickets.ticket(roles_of(context.operation)[0])

    def set(self, case: Case, data: str, context: AuthContext) -> None:
        """Put the ticket in the Authorization header."""
        if case.headers is None:
            case.headers = {}
        case.headers["Authorization"] = f"Bearer {data}"


def _registered_ids() -> st.SearchStrategy[str]:
    registry = ACTIVE.registry or ACTIVE.get().registry
    return st.sampled_from([p.id for p in contract_patients(registry)])


def _registered_tokens() -> st.SearchStrategy[str]:
    """`system|value` search tokens of registered patients, the system as the mapping declares it."""
    registry = ACTIVE.registry or ACTIVE.get().registry
    mapping = load_mapping(contracts_dir() / "mapping" / "legacy-fhir.yaml")
    return st.sampled_from([f"{mapping.identity_system(p.id)}|{p.id}" for p in contract_patients(registry)])


def load_contract(path: Path) -> Any:
    """A schemathesis schema of `path`, authenticated as test actors, identities from the registry."""
    schemathesis.openapi.format("personid", st.deferred(_registered_ids))
    schemathesis.openapi.format("personid-token", st.deferred(_registered_tokens))
    schema = schemathesis.openapi.from_path(path)
    schema.auth(refresh_interval=None)(TestActorTicket)
    schema.hook("filter_case")(only_registered_identities)
    schema.hook("filter_case")(negative_only_if_it_breaks_the_contract)
    return schema


def only_registered_identities(context: Any, case: Case) -> bool:
    """Keep a generated case only if every identity number in it is a registered test patient.

    The formats draw identities from the registry, but free strings (a dosage text, a name) can
    still form a valid number by chance; such a case is dropped while it is generated, so
    generated data never carries one (the guard would refuse it anyway, as the last line).
    """
    registry = ACTIVE.registry or ACTIVE.get().registry
    parts = [case.path_parameters, case.query, case.headers, case.cookies, case.body]
    return not registry.unregistered_in(json.dumps(parts, ensure_ascii=False, default=str))


def negative_only_if_it_breaks_the_contract(context: Any, case: Case) -> bool:
    """Keep a case made as negative data only if its body really breaks the contract's schema.

    Schemathesis makes a negative body by negating one keyword of one branch of an `anyOf`:
    negating `format: date-time` in FhirDateTime's third branch gave "4000", which the first
    branch (a year) accepts. The platform rightly answered 201 and "Schema-violating request
    accepted" failed a correct platform (about one contract run in five). A body that the
    operation's own schema (schemathesis's validator, formats asserted) accepts is positive data:
    the case is dropped while it is generated.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_negative:
        return True
    negative = {location for location, info in meta.components.items() if info.mode.is_negative}
    if negative != {ParameterLocation.BODY} or not isinstance(case.body, dict | list | str | int | float):
        return True
    body = next((b for b in case.operation.body if b.media_type == case.media_type), None)
    return body is None or not body.is_valid(case.body)


def configure(schema: Any, examples: int, seed: int | None) -> None:
    """Apply --examples and --seed."""
    schema.config.generation.update(max_examples=examples)
    if seed is not None:
        schema.config.seed = seed


EPICS = {
    "prescriptions": "prescriptions",
    "dispensing": "dispensing",
    "medication-list": "medication list",
    "patients": "patients",
}
CRITICAL_AREAS = ("prescriptions", "dispensing", "medication-list")


_LABELLED: set[tuple[str, str]] = set()


def label_case(case: Any, platform: str) -> None:
    """Trace a conformance test in Allure: epic = service area, feature = operationId, story = rule.

    Called for every generated case; labels go on the test's result once (Allure appends them).
    """
    import allure

    key = (case.operation.label, platform)
    if key in _LABELLED:
        return
    _LABELLED.add(key)
    raw = case.operation.definition.raw
    operation_id = raw.get("operationId", case.operation.label)
    tags = raw.get("tags") or []
    fhir = "." in operation_id
    area = "FHIR" if fhir else EPICS.get(tags[0], tags[0]) if tags else "legacy"
    allure.dynamic.epic(area)
    allure.dynamic.feature(operation_id)
    allure.dynamic.story("answers as the contract declares" + ("" if fhir else " and keeps the domain rules"))
    critical = fhir or (tags and tags[0] in CRITICAL_AREAS)
    allure.dynamic.severity(allure.severity_level.CRITICAL if critical else allure.severity_level.NORMAL)
    allure.dynamic.parameter("platform", platform)
