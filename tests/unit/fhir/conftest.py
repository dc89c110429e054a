"""Fixtures of the FHIR validator and generator tests: the contracts package and its profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from rxverify.errors import UserError
from rxverify.fhir.base import base_definitions
from rxverify.fhir.package import Package, load_package

ROOT = Path(__file__).resolve().parents[3]
FHIR_DIR = ROOT / "contracts" / "fhir"
CORPUS_DIR = ROOT / "tests" / "unit" / "data" / "fhir-corpus"


def pytest_configure(config: pytest.Config) -> None:
    """Without the R4 base package the FHIR tests cannot run: one line, what to do, exit 2."""
    try:
        base_definitions()
    except UserError as exc:
        pytest.exit(f"rxverify: {exc}", returncode=2)


@pytest.fixture(scope="session")
def package() -> Package:
    return load_package(FHIR_DIR)


def resource_profiles() -> list[str]:
    """The package's resource profiles (read from the files, not named in code)."""
    import json

    urls = []
    for path in sorted(FHIR_DIR.glob("StructureDefinition-*.json")):
        definition = json.loads(path.read_text(encoding="utf-8"))
        if definition.get("kind") == "resource":
            urls.append(definition["url"])
    return urls
