"""The validator on the contract examples, against fhir.resources, and its behaviour where FHIR leaves room.

The conformance corpus (test_corpus.py) holds the cases written from the specification.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from rxverify.fhir.package import Package
from rxverify.fhir.validator import errors, validator_for

from .conftest import FHIR_DIR

EXAMPLES = sorted((FHIR_DIR / "examples").glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_contract_examples_validate(path: Path, package: Package) -> None:
    """contracts/fhir/examples: every example is valid against its profiles."""
    assert errors(validator_for(package).validate(_load(path))) == []


BASE_CASES = {
    "bad date": ("authoredOn", "2021-02-30x"),
    "bad dateTime": ("authoredOn", "yesterday"),
    "unknown element": ("pharmacy", "Apoteket"),
    "wrong primitive kind": ("intent", 7),
    "object for a primitive": ("status", {"code": "active"}),
    "number for a boolean": ("doNotPerform", 3),
}


@pytest.mark.parametrize("case", sorted(BASE_CASES))
def test_base_findings_agree_with_fhir_resources(case: str, package: Package) -> None:
    """Base level: where fhir.resources (R4B) rejects an element, the validator (R4 definitions) reports it too."""
    document = _load(FHIR_DIR / "examples" / "MedicationRequest-3f2504e0-4f89-41d3-9a0c-0305e82c3301.json")
    key, value = BASE_CASES[case]
    broken = copy.deepcopy(document)
    broken[key] = value
    model = get_fhir_model_class("MedicationRequest")
    with pytest.raises(ValidationError):
        model.model_validate(broken)
    model.model_validate(document)
    locations = {i.location for i in errors(validator_for(package).validate(broken))}
    assert f"MedicationRequest.{key}" in locations


def test_r4b_only_data_type_is_rejected(package: Package) -> None:
    """R4/R4B: a CodeableReference (R4B only) in an extension is not valid R4."""
    document = _load(FHIR_DIR / "examples" / "Provenance-c56a4180-65aa-42ec-a945-5fd21dec0538.json")
    document["extension"] = [{"url": "http://example.org/x", "valueCodeableReference": {"concept": {"text": "x"}}}]
    found = {(i.code, i.location) for i in errors(validator_for(package).validate(document))}
    assert ("structure", "Provenance.extension[0].valueCodeableReference") in found


def test_unevaluable_invariant_is_a_warning(package: Package, tmp_path: Path) -> None:
    """Invariants: an expression fhirpathpy cannot evaluate is a warning naming the key, never a crash."""
    from rxverify.fhir.package import load_package

    definition = _load(FHIR_DIR / "StructureDefinition-NLLConsent.json")
    definition["url"] = "http://example.org/fhir/StructureDefinition/BrokenConsent"
    definition["snapshot"]["element"][0]["constraint"] = [
        {"key": "brk-1", "severity": "error", "human": "broken", "expression": "status.noSuchFunction()"}
    ]
    for source in FHIR_DIR.glob("*.json"):
        (tmp_path / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "StructureDefinition-BrokenConsent.json").write_text(json.dumps(definition), encoding="utf-8")
    document = _load(FHIR_DIR / "examples" / "Consent-a8098c1a-f86e-41a5-8c8b-33b1e2c6d8a1.json")
    issues = validator_for(load_package(tmp_path)).validate(document, [definition["url"]])
    warnings = [i for i in issues if i.severity == "warning"]
    assert any("brk-1" in i.message for i in warnings)
    assert not any("brk-1" in i.message for i in errors(issues))


def test_must_support_absent_is_information(package: Package) -> None:
    """mustSupport: an absent must-support element is reported as information, not as an error."""
    document = _load(FHIR_DIR / "examples" / "MedicationDispense-1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed.json")
    del document["dosageInstruction"]
    issues = validator_for(package).validate(document)
    assert errors(issues) == []
    notes = [(i.severity, i.location) for i in issues if i.severity != "warning"]  # dom-6: no narrative
    assert notes == [("information", "MedicationDispense.dosageInstruction")]


def test_capability_statement_supplies_the_profile(package: Package) -> None:
    """Profiles: without meta.profile the CapabilityStatement's supported profile applies."""
    document = _load(FHIR_DIR / "examples" / "MedicationRequest-3f2504e0-4f89-41d3-9a0c-0305e82c3301.json")
    del document["meta"]
    document["status"] = "aktiv"
    found = {(i.code, i.location) for i in errors(validator_for(package).validate(document))}
    assert found == {("code-invalid", "MedicationRequest.status")}


@pytest.mark.parametrize("meta", [0, [1], {"profile": "not-a-list"}, {"profile": [[]]}, {"profile": [0, None]}])
def test_malformed_meta_is_an_issue_not_a_crash(meta: Any, package: Package) -> None:
    """A malformed meta or meta.profile is reported at meta; the CapabilityStatement's profile still applies."""
    document = _load(FHIR_DIR / "examples" / "MedicationRequest-3f2504e0-4f89-41d3-9a0c-0305e82c3301.json")
    document["meta"] = meta
    document["status"] = "aktiv"
    found = errors(validator_for(package).validate(document))
    assert any(i.location.startswith("MedicationRequest.meta") for i in found), found
    assert ("code-invalid", "MedicationRequest.status") in {(i.code, i.location) for i in found}


def test_a_discriminator_path_through_a_malformed_extension_selects_nothing() -> None:
    """`extension('url')` on an `extension` that is no array: nothing (the walk reports the JSON), no crash."""
    validator = validator_for()
    url = "http://electronichealth.se/fhir/StructureDefinition/nll-workplace-code"
    for malformed in (5, "x", {"url": url}):
        assert validator._values_at({"extension": malformed}, f"extension('{url}')", None) == []
    found = validator._values_at({"extension": [{"url": url, "valueString": "1"}]}, f"extension('{url}')", None)
    assert found == [{"url": url, "valueString": "1"}]
