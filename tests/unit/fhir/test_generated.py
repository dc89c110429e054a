"""Profile-driven generation against the validator (issue 4, Proof: properties).

Every generated instance of each profile validates without errors; every single-constraint
violation is reported with the expected issue code at the expected location.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from rxverify.fhir.generate import Generator, Violation, generator_for, resources, violations
from rxverify.fhir.package import Package
from rxverify.fhir.validator import errors, validator_for
from rxverify.safety.identity import find_identities
from rxverify.safety.registry import Registry

from .conftest import resource_profiles

PROFILES = resource_profiles()
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = {
    "cardinality-min", "cardinality-max", "fixed", "pattern", "binding", "max-length",
    "invariant", "closed-slice", "type", "contained-reference",
}  # fmt: skip


def _identities(value: Any) -> list[str]:
    import json

    return [f.twelve for f in find_identities(json.dumps(value))]


@pytest.mark.parametrize("profile", PROFILES)
def test_generated_instances_validate(profile: str, package: Package, registry: Registry) -> None:
    """Profile (every constraint): a generated instance has no error; identities only from the registry."""
    validator = validator_for(package)

    @SETTINGS
    @given(resources(profile, package, registry))
    def check(instance: dict[str, Any]) -> None:
        assert errors(validator.validate(instance)) == []
        assert all(pid in registry for pid in _identities(instance))

    check()


@pytest.mark.parametrize("profile", PROFILES)
def test_each_violation_is_reported(profile: str, package: Package, registry: Registry) -> None:
    """Profile (each constraint kind): the broken constraint is reported with its issue code and location."""
    validator = validator_for(package)

    @SETTINGS
    @given(violations(profile, package, registry))
    def check(pair: tuple[dict[str, Any], Violation]) -> None:
        instance, violation = pair
        found = {(i.code, i.location) for i in errors(validator.validate(instance))}
        assert (violation.code, violation.location) in found, (violation, found)
        assert all(pid in registry for pid in _identities(instance))

    check()


def _kinds_in(gen: Generator, profile: str, package: Package, registry: Registry) -> set[str]:
    plan, seen = gen.plan(profile), set()

    @settings(max_examples=30, deadline=None, database=None)
    @given(resources(profile, package, registry))
    def collect(instance: dict[str, Any]) -> None:
        seen.update(v.kind for v, _ in gen._candidates(plan, instance))

    collect()
    return seen


def test_every_violation_kind_occurs(package: Package, registry: Registry) -> None:
    """Generator: across the package's profiles, every named violation kind can be produced."""
    gen = generator_for(package, registry)
    seen: set[str] = set()
    for profile in PROFILES:
        seen |= _kinds_in(gen, profile, package, registry)
    assert seen == KINDS
