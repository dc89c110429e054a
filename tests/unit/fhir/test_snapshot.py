"""The R4 base package and its cache; the snapshot generator; the committed snapshots are the generated ones."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from rxverify.errors import UserError
from rxverify.fhir.base import BASE_PREFIX, BaseDefinitions, base_definitions, package_file
from rxverify.fhir.snapshot import FolderResolver, generate_snapshot, stale

from .conftest import CORPUS_DIR, FHIR_DIR

PROFILES = sorted(FHIR_DIR.glob("StructureDefinition-*.json"))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_committed_snapshots_are_the_generated_ones() -> None:
    """contracts/fhir and the corpus's profiles: each committed snapshot equals the one generated now."""
    base = base_definitions()
    assert stale(FHIR_DIR, base.full_structure) == []
    assert stale(CORPUS_DIR / "profiles", FolderResolver(FHIR_DIR, base.full_structure)) == []


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_snapshot_is_complete(path: Path) -> None:
    """Every element of the base definition is in the profile's snapshot, each with a definition and cardinality."""
    profile = _load(path)
    base = base_definitions().full_structure(profile["baseDefinition"])
    assert base is not None
    ids = {e["id"] for e in profile["snapshot"]["element"]}
    assert {e["id"] for e in base["snapshot"]["element"]} <= ids
    assert all({"definition", "min", "max", "base"} <= e.keys() for e in profile["snapshot"]["element"])


def test_defects_of_the_partial_snapshots_are_gone() -> None:
    """The workplaceCode slice has its url child; Practitioner.id and Extension.url keep the base's type code."""
    mr = {e["id"]: e for e in _load(FHIR_DIR / "StructureDefinition-NLLMedicationRequest.json")["snapshot"]["element"]}
    url = mr["MedicationRequest.extension:workplaceCode.url"]
    assert url["fixedUri"] == "http://electronichealth.se/fhir/StructureDefinition/nll-workplace-code"
    prescriber = {e["id"]: e for e in _load(FHIR_DIR / "StructureDefinition-NLLPrescriber.json")["snapshot"]["element"]}
    wpc = {e["id"]: e for e in _load(FHIR_DIR / "StructureDefinition-nll-workplace-code.json")["snapshot"]["element"]}
    for element in (prescriber["Practitioner.id"], wpc["Extension.url"], url):
        assert [t["code"] for t in element["type"]] == ["http://hl7.org/fhirpath/System.String"]


def _resolve(url: str) -> dict[str, Any] | None:
    return FolderResolver(FHIR_DIR, base_definitions().full_structure)(url)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.append({"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "2"}), "above the base"),
        (lambda d: d.append({"id": "Extension.nothing", "path": "Extension.nothing", "min": 1}), "no such element"),
        (
            lambda d: d.append(
                {"id": "Extension.value[x]", "path": "Extension.value[x]", "type": [{"code": "Patient"}]}
            ),
            "not among the base's",
        ),
        (lambda d: d.append({"id": "Extension.url", "path": "Extension.uri"}), "has path"),
        (lambda d: d.append({"id": "Patient.name", "path": "Patient.name"}), "is not under Extension"),
    ],
)
def test_what_a_differential_may_not_do_is_one_line(change: Any, message: str) -> None:
    """Loosening a cardinality, an unknown element, a type the base lacks, a wrong path: one UserError each."""
    profile = copy.deepcopy(_load(FHIR_DIR / "StructureDefinition-nll-workplace-code.json"))
    change(profile["differential"]["element"])
    with pytest.raises(UserError, match=message):
        generate_snapshot(profile, _resolve)


def test_a_required_binding_cannot_be_weakened() -> None:
    """profiling.html: a profile may not weaken a required binding of the base."""
    profile = copy.deepcopy(_load(FHIR_DIR / "StructureDefinition-NLLConsent.json"))
    for element in profile["differential"]["element"]:
        if element["id"] == "Consent.status":
            element["binding"]["strength"] = "extensible"
    with pytest.raises(UserError, match="weakens the base's required binding"):
        generate_snapshot(profile, _resolve)


def test_base_index_is_cached_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first load writes the compact index under the cache folder; the next load reads it back."""
    package = package_file()
    assert package is not None
    monkeypatch.setenv("RXVERIFY_FHIR_CACHE", str(tmp_path))
    first = BaseDefinitions(package)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert any(n.startswith("index-") for n in written) and any(n.startswith("structures-") for n in written)
    again = BaseDefinitions(package)
    assert again.index.structures.keys() == first.index.structures.keys()
    assert again.index.type_definition("Period") == first.index.type_definition("Period")
    assert again.full_structure(BASE_PREFIX + "Period") is not None
