"""Seed data: the test patients and test actors from contracts/testdata."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SeedData:
    """Test patients and actors the platforms know from the start."""

    patients: list[dict[str, Any]]
    care_units: list[dict[str, Any]]
    prescribers: list[dict[str, Any]]
    pharmacies: list[dict[str, Any]]


def load_seed(contracts: Path) -> SeedData:
    """Read the registry and the actors."""
    patients = json.loads((contracts / "testdata" / "test-patients.json").read_text(encoding="utf-8"))
    actors = json.loads((contracts / "testdata" / "test-actors.json").read_text(encoding="utf-8"))
    return SeedData(patients["patients"], actors["careUnits"], actors["prescribers"], actors["pharmacies"])
