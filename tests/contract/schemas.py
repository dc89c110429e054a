"""The contracts as schemathesis schemas (loaded once; configured from the command line)."""

from __future__ import annotations

from rxverify.contract import load_contract, load_legacy_contract
from rxverify.paths import contracts_dir

CONTRACTS = contracts_dir()
legacy = load_legacy_contract(CONTRACTS / "openapi" / "legacy.yaml")
fhir = load_contract(CONTRACTS / "openapi" / "fhir.yaml")
