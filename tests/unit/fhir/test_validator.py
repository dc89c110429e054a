"""The validator on the contract examples, the hand-written invalid corpus and against fhir.resources (issue 4)."""

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
from rxverify.safety.registry import Registry

from .conftest import FHIR_DIR, INVALID_DIR

EXAMPLES = sorted((FHIR_DIR / "examples").glob("*.json"))
CORPUS = sorted(p for p in INVALID_DIR.glob("*.json") if not p.name.endswith(".expected.json"))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_contract_examples_validate(path: Path, package: Package) -> None:
    """contracts/fhir/examples: every example is valid against its profiles."""
    assert errors(validator_for(package).validate(_load(path))) == []


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_invalid_corpus_is_reported(path: Path, package: Package, registry: Registry) -> None:
    """tests/unit/data/fhir-invalid: each file's expected issues (code, location) are reported, nothing else."""
    expected = {(e["code"], e["location"]) for e in _load(path.with_suffix(".expected.json"))}
    found = {(i.code, i.location) for i in errors(validator_for(package).validate(_load(path)))}
    assert expected <= found
    # a constraint broken on purpose may invalidate what depends on it, never unrelated elements
    assert {loc.split(".")[1].split("[")[0] for _, loc in found if "." in loc} <= {
        loc.split(".")[1].split("[")[0] for _, loc in expected if "." in loc
    } | {"requester", "contained"}
    assert not registry.unregistered_in(path.read_text(encoding="utf-8"))


def test_corpus_covers_every_constraint_kind() -> None:
    """The corpus has one file per constraint kind the validator checks."""
    kinds = {p.stem for p in CORPUS}
    assert {
        "cardinality-min", "cardinality-max", "choice-type", "slice-cardinality", "fixed", "pattern",
        "binding-required-code", "max-length", "invariant-element", "invariant-resource", "closed-slice",
        "primitive-format", "reference-target-type", "contained-reference", "contained-profile",
    } <= kinds  # fmt: skip


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
    """Base level: where fhir.resources (R4B) rejects an element, the validator reports an error there too."""
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
    assert [(i.severity, i.location) for i in issues] == [("information", "MedicationDispense.dosageInstruction")]


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
