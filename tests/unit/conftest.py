"""Shared fixtures of the suite's own unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from rxverify.safety.registry import Registry, load_registry

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry(CONTRACTS / "testdata" / "test-patients.json")
