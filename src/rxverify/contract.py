"""Binding schemathesis schemas to the run: tickets per operation role, identities from the registry.

Schemas are loaded when the test modules are imported, before the run's target is ready, so
they read the active run through `ACTIVE` when a case is generated or sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import AuthContext, Case
from schemathesis.core.parameters import ParameterLocation
from schemathesis.transport.requests import REQUESTS_TRANSPORT, RequestsTransport

from rxverify.contracts.riv import RivContracts, load_riv
from rxverify.errors import UserError
from rxverify.legacy import media
from rxverify.legacy.client import LegacyClient
from rxverify.mapping import load_mapping
from rxverify.paths import contracts_dir
from rxverify.safety.guard import Guard
from rxverify.safety.registry import Registry
from rxverify.strategies import contract_patients
from rxverify.target.credentials import EnvironmentTickets, TicketMinter
from rxverify.target.run import Run


class _Active:
    """The run the contract suite is currently bound to."""

    run: Run | None = None
    # known before collection: generating the explicit examples needs identities and tickets
    registry: Registry | None = None
    tickets: TicketMinter | EnvironmentTickets | None = None
    contracts: Path | None = None  # the contracts folder of the run (the legacy client reads contracts/riv there)
    _session: requests.Session | None = None
    _riv: tuple[Path, RivContracts] | None = None
    _session_run: Run | None = None

    def get(self) -> Run:
        """The active run (set by the session fixture before any case is sent)."""
        if self.run is None:
            raise UserError("no active run: the contract schemas are used outside the rxverify pytest plugin")
        return self.run

    def riv(self) -> RivContracts:
        """The old interface's contracts of the run (read once)."""
        folder = self.contracts or contracts_dir()
        if self._riv is None or self._riv[0] != folder:
            self._riv = (folder, load_riv(folder))
        return self._riv[1]

    def session(self) -> requests.Session:
        """One guarded session of the active run, for the checks' follow-up reads."""
        run = self.get()
        if self._session is None or self._session_run is not run:
            self._session, self._session_run = run.session(), run
        return self._session


ACTIVE = _Active()


def roles_of(operation: Any) -> list[str]:
    """The ticket roles the contract allows on an operation (`x-roles`; both when absent)."""
    return list(operation.definition.raw.get("x-roles") or ["prescriber", "pharmacy"])


class TestActorTicket:
    """schemathesis auth provider: a ticket of a test actor whose role the operation allows."""

    __test__ = False

    def get(self, case: Case, context: AuthContext) -> str:
        """Mint (or read) the ticket: under Säker åtkomst 17.1 the caller's access token (the session then
        presents that caller's certificate, rxverify.target.callers)."""
        role = roles_of(context.operation)[0]
        if ACTIVE.run is not None and ACTIVE.run.secure:
            return ACTIVE.run.auth_headers(role)["Authorization"].removeprefix("Bearer ")
        tickets = ACTIVE.tickets or ACTIVE.get().tickets
        return tickets.ticket(role)

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


def _formats() -> None:
    schemathesis.openapi.format("personid", st.deferred(_registered_ids))
    schemathesis.openapi.format("personid-token", st.deferred(_registered_tokens))


def load_contract(path: Path) -> Any:
    """A schemathesis schema of `path`, authenticated as test actors, identities from the registry."""
    _formats()
    schema = schemathesis.openapi.from_path(path)
    _route_through_guard(schema)
    schema.auth(refresh_interval=None)(TestActorTicket)
    schema.hook("filter_case")(only_registered_identities)
    schema.hook("filter_case")(negative_only_if_it_breaks_the_contract)
    return schema


def legacy_client(session: requests.Session | None = None, base_url: str = "") -> LegacyClient:
    """The one legacy client, with the active run's credentials (no session: it only prepares and reads)."""
    if ACTIVE.run is not None:
        return LegacyClient(session, base_url, ACTIVE.riv(), ACTIVE.run.legacy_credentials(), ACTIVE.run.actors)
    tickets = ACTIVE.tickets or ACTIVE.get().tickets
    return LegacyClient(session, base_url, ACTIVE.riv(), tickets, getattr(tickets, "actors", None))


def load_legacy_contract(path: Path) -> Any:
    """The old interface's schema (legacy.yaml, SOAP): bodies written and read by the legacy client.

    No schemathesis auth provider here: the legacy client puts the caller's credentials on every
    request itself (its one place for them), inside the serializer. The wire and domain checks of
    rxverify.checks.schemathesis_checks are registered with schemathesis on the way.
    """
    from rxverify.checks import schemathesis_checks  # noqa: F401  (registers the checks)

    _formats()
    media.register()
    media.bind(legacy_client, ACTIVE.session)
    schema = schemathesis.openapi.from_path(path)
    # the ticket comes from the client: schemathesis must not draw an Authorization header of its own
    schema.config.generation.update(with_security_parameters=False)
    _route_through_guard(schema)
    schema.hook("filter_case")(only_registered_identities)
    return schema


class GuardedTransport(RequestsTransport):
    """schemathesis's requests transport, but every request without a session goes through the run's guarded one.

    schemathesis's own checks send probes (`ignored_auth` resends a case without and with a bad
    ticket; object-level authorization reads as another actor) with a session of their own
    making; here they get the active run's guarded session instead, so the guard sees them.
    """

    def __init__(self) -> None:
        super().__init__()
        # the very serializers of schemathesis's own transport (and those registered on it later)
        self._serializers = REQUESTS_TRANSPORT._serializers

    def send(self, case: Case, *, session: requests.Session | None = None, **kwargs: Any) -> Any:
        """Send `case` through the guarded session (the given one, or the active run's)."""
        return super().send(case, session=session if session is not None else ACTIVE.session(), **kwargs)


GUARDED_TRANSPORT = GuardedTransport()


def _route_through_guard(schema: Any) -> None:
    # `transport` is a read-only property of schemathesis's schema class (the process-wide requests
    # transport): a subclass of this schema's class answers the guarded one instead.
    base = type(schema)
    schema.__class__ = type(f"Guarded{base.__name__}", (base,), {"transport": property(lambda _: GUARDED_TRANSPORT)})


def only_registered_identities(context: Any, case: Case) -> bool:
    """Keep a generated case only if the guard would send it: no identity outside the registry, in any reading.

    The formats draw identities from the registry, but free strings (a dosage text, a name) can
    still form a valid number by chance, in any of the forms the guard reads (separators, digit
    forms, encodings); such a case is dropped while it is generated, by the guard's own reading
    of the request as it would be sent, so generated data never carries one.
    """
    kwargs = case.as_transport_kwargs(base_url=FILTER_BASE)
    fields = {k: kwargs[k] for k in ("method", "url", "headers", "params", "json", "data", "cookies") if k in kwargs}
    try:
        prepared = requests.Request(**fields).prepare()
    except (ValueError, TypeError, requests.RequestException):
        return True  # schemathesis will fail to send it too; the guard still reads whatever is sent
    guard = _filter_guard()
    return guard.refusal(prepared.method or "GET", prepared.url or "", prepared.headers, prepared.body) is None


FILTER_BASE = "http://generated.invalid"  # only to build the URL the guard reads; nothing is sent there


def _filter_guard() -> Guard:
    run = ACTIVE.run
    if run is not None:
        return run.guard
    registry = ACTIVE.registry
    if registry is None:
        raise UserError("no test-patient registry: the contract schemas are used outside the rxverify pytest plugin")
    return Guard(registry)  # before the run starts (explicit examples at collection): the same reading


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
