"""Generated contract cases never carry an identity outside the registry: dropped while generated.

The legacy contract is SOAP: the filter reads the envelope the legacy client writes, as the guard reads it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER

from rxverify.contract import ACTIVE, load_legacy_contract, only_registered_identities
from rxverify.safety.identity import check_digit
from rxverify.safety.registry import Registry
from rxverify.target.credentials import TicketMinter, load_actors

from .conftest import CONTRACTS
from .strategies import foreign_identities

SCHEMA = load_legacy_contract(CONTRACTS / "openapi" / "legacy.yaml")
CREATE = SCHEMA["/SkapaOrdinationVardResponder/V6"]["POST"]


@pytest.fixture
def active_registry(registry: Registry) -> Iterator[Registry]:
    """The registry (and test actors' tickets) the contract suite's run would bind."""
    ACTIVE.registry = registry
    ACTIVE.contracts = CONTRACTS
    ACTIVE.tickets = TicketMinter(os.urandom(32), load_actors(CONTRACTS / "testdata" / "test-actors.json"))
    yield registry
    ACTIVE.registry = ACTIVE.tickets = ACTIVE.contracts = None


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_case_with_a_foreign_identity_anywhere_is_dropped(active_registry: Registry, data: st.DataObject) -> None:
    create = CREATE
    registered = active_registry.patients[0].id
    foreign = data.draw(foreign_identities(active_registry))
    body = {"personnummer": registered, "doseringstext": "1 tablett", "antalUttag": 1}
    assert only_registered_identities(None, create.Case(body=body))
    place = data.draw(st.sampled_from(["body", "query", "headers"]))
    text = f"enl. ordination {foreign[2:8]}-{foreign[8:]}"
    case = create.Case(body={**body, "doseringstext": text}) if place == "body" else create.Case(body=body)
    if place == "query":
        case.query = {"note": text}
    elif place == "headers":
        case.headers = {"x-note": text}
    assert not only_registered_identities(None, case)


def test_the_schema_applies_the_filter_while_generating(active_registry: Registry) -> None:
    """Free text that is a foreign identity (planted in about half the cases, before the schema's
    hooks run) never reaches a generated case; the other cases still do."""
    foreign = _a_foreign_identity(active_registry)

    def plant(context: object, case: Case) -> Case:
        if isinstance(case.body, dict) and len(str(case.body)) % 2:
            case.body["doseringstext"] = f"se {foreign}"
        return case

    kept: list[str] = []
    schemathesis.hook("map_case")(plant)  # global hooks run before the schema's own
    try:

        @settings(max_examples=60, database=None, suppress_health_check=list(HealthCheck))
        @given(case=CREATE.as_strategy())  # the strategy takes the hooks registered by now
        def generate(case: Case) -> None:
            kept.append(json.dumps(case.body, ensure_ascii=False))

        generate()
    finally:
        GLOBAL_HOOK_DISPATCHER.unregister(plant)
    assert len(kept) >= 30
    assert not [text for text in kept if foreign in text]


def _a_foreign_identity(registry: Registry) -> str:
    nine = next(n for n in (f"990101{s:03d}" for s in range(1000)) if f"19{n}{check_digit(n)}" not in registry)
    return f"19{nine}{check_digit(nine)}"
