"""A server's CapabilityStatement against the contract's (rxverify.fhir.capability), as the contract suite checks it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from rxverify.fhir import capability

from .conftest import FHIR_DIR

CONTRACT: dict[str, Any] = json.loads((FHIR_DIR / "CapabilityStatement-nll-server.json").read_text(encoding="utf-8"))


def _server() -> dict[str, Any]:
    server = copy.deepcopy(CONTRACT)
    server.update(kind="instance", implementation={"description": "a server", "url": "https://ecp.example.org/fhir"})
    return server


def test_every_declared_piece_is_a_requirement() -> None:
    """Resources, interactions, search parameters, the operation, profiles, formats and the FHIR version."""
    ids = {r.id for r in capability.requirements(CONTRACT)}
    assert {
        "fhir-version:4.0.1", "format:application/fhir+json", "MedicationRequest:resource:MedicationRequest",
        "MedicationRequest:interaction:create", "MedicationRequest:search-param:authoredon",
        "MedicationRequest:operation:monitoring",
        "MedicationRequest:profile:http://electronichealth.se/fhir/StructureDefinition/NLLMedicationRequest",
        "Provenance:search-param:target", "Consent:interaction:read",
    } <= ids  # fmt: skip
    assert capability.gaps(_server(), CONTRACT) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s["rest"][0]["resource"][0]["searchParam"].pop(4),
            "does not declare search parameter authoredon (date) on MedicationRequest",
        ),
        (
            lambda s: s["rest"][0]["resource"][2].update(interaction=[{"code": "read"}]),
            "does not declare the interaction search-type on Provenance",
        ),
        (lambda s: s["rest"][0]["resource"][0].pop("operation"), "does not declare the operation $monitoring"),
        (
            lambda s: s["rest"][0]["resource"][1].update(supportedProfile=[], profile=None),
            "does not declare the supported profile http://electronichealth.se/fhir/StructureDefinition/NLLMedicationDispense",
        ),
        (lambda s: s["rest"][0]["resource"].pop(3), "does not declare the resource type Consent"),
        (lambda s: s.update(fhirVersion="4.3.0"), "does not declare fhirVersion 4.0.1"),
        (lambda s: s.update(format=["xml"]), "does not declare the format application/fhir+json"),
    ],
)
def test_each_missing_piece_is_its_own_failure(change: Any, message: str) -> None:
    """A server that leaves one thing out: exactly that, named."""
    server = _server()
    change(server)
    found = capability.gaps(server, CONTRACT)
    assert [g for g in found if message in g], found


def test_a_searchset_bundle_is_no_capability_statement() -> None:
    """What Medplum's memory server answers: a searchset Bundle is said as such, not as 50 missing pieces."""
    answer = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    assert capability.gaps(answer, CONTRACT) == [
        "GET [base]/metadata answered a Bundle (searchset), not a CapabilityStatement (http.html#capabilities)"
    ]


def test_metadata_answers_kind_instance() -> None:
    """The contract's own statement (kind requirements) is not what /metadata answers."""
    assert any("kind 'requirements'" in p for p in capability.statement_problems(CONTRACT))
    assert capability.statement_problems(_server()) == []
