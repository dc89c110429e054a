"""A case schemathesis made as negative data is sent only if its body really breaks the contract.

Schemathesis negated `format: date-time` in the third branch of FhirDateTime's `anyOf` and got
"4000", a year the first branch accepts: a correct platform answered 201 and failed "Schema-
violating request accepted" (contract run with --seed 782487284). The filter keeps negative
bodies that break the schema and drops the ones that do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode

from rxverify.contract import negative_only_if_it_breaks_the_contract
from rxverify.safety.registry import Registry

from .conftest import CONTRACTS

CONSENT = {
    "resourceType": "Consent",
    "status": "active",
    "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
    "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
    "patient": {"identifier": {"system": "http://electronichealth.se/identifier/personnummer", "value": ""}},
    "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
}


@dataclass
class _Info:
    mode: GenerationMode


@dataclass
class _Generation:
    mode: GenerationMode


@dataclass
class _Meta:
    generation: _Generation
    components: dict[ParameterLocation, _Info] = field(default_factory=dict)


@dataclass
class _Case:
    """What the filter reads of a schemathesis Case."""

    operation: Any
    body: Any
    meta: _Meta | None
    media_type: str = "application/fhir+json"


@pytest.fixture(scope="module")
def consent(registry: Registry) -> dict[str, Any]:
    """A Consent the schema accepts, of a registered test patient."""
    patient = {"identifier": {**CONSENT["patient"]["identifier"], "value": registry.patients[0].id}}
    return {**CONSENT, "patient": patient}


@pytest.fixture(scope="module")
def consent_create() -> Any:
    schema = schemathesis.openapi.from_path(CONTRACTS / "openapi" / "fhir.yaml")
    return next(
        r.ok() for r in schema.get_all_operations() if r.ok().definition.raw.get("operationId") == "Consent.create"
    )


def _negative(operation: Any, body: Any, *where: ParameterLocation) -> _Case:
    components = {w: _Info(GenerationMode.NEGATIVE) for w in where}
    return _Case(operation, body, _Meta(_Generation(GenerationMode.NEGATIVE), components))


@pytest.mark.parametrize(
    ("when", "kept"),
    [
        ("4000", False),  # a year: FhirDateTime's first branch accepts it, so it is not negative data
        ("2021-02-28T10:00:00Z", False),
        ("2021-02-30", True),  # no such day: really breaks the schema (format date)
        ("2021-02-28T25:00:00Z", True),
        ("yesterday", True),
    ],
)
def test_a_negative_body_is_kept_only_if_the_schema_rejects_it(
    consent_create: Any, consent: dict[str, Any], when: str, kept: bool
) -> None:
    case = _negative(consent_create, {**consent, "dateTime": when}, ParameterLocation.BODY)
    assert negative_only_if_it_breaks_the_contract(None, case) is kept  # type: ignore[arg-type]


def test_positive_cases_and_other_negative_parts_are_left_alone(consent_create: Any, consent: dict[str, Any]) -> None:
    valid = {**consent, "dateTime": "4000"}
    positive = _Case(consent_create, valid, _Meta(_Generation(GenerationMode.POSITIVE)))
    assert negative_only_if_it_breaks_the_contract(None, positive)  # type: ignore[arg-type]
    headers = _negative(consent_create, valid, ParameterLocation.HEADER)  # the header is what is negative
    assert negative_only_if_it_breaks_the_contract(None, headers)  # type: ignore[arg-type]
    both = _negative(consent_create, valid, ParameterLocation.BODY, ParameterLocation.QUERY)
    assert negative_only_if_it_breaks_the_contract(None, both)  # type: ignore[arg-type]
