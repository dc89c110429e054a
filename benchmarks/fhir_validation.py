"""Validations per second of a profiled MedicationRequest, as a ratio to fhir.resources parsing it alone.

Both run in this process on the same document (an example from contracts/fhir/examples); the
validator's figure includes its own fhir.resources R4B parse. Also the cost of generating one
instance of each resource profile (ms per example). Run: python benchmarks/fhir_validation.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from fhir.resources.R4B import get_fhir_model_class
from hypothesis import HealthCheck, given, settings

from rxverify.fhir.generate import resources
from rxverify.fhir.package import load_package
from rxverify.fhir.validator import Validator, errors
from rxverify.safety.registry import load_registry

ROOT = Path(__file__).resolve().parents[1]
FHIR_DIR = ROOT / "contracts" / "fhir"
EXAMPLE = FHIR_DIR / "examples" / "MedicationRequest-9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d.json"
ROUNDS = 3  # best of, against scheduler noise on a 2-core machine
SECONDS = 1.0  # per round and side
GENERATED = 200  # examples per profile for the generation cost
AIM = 0.5  # issue 4: validations/s at least half of fhir.resources parses/s


def _rate(work: object) -> float:
    assert callable(work)
    best = 0.0
    for _ in range(ROUNDS):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < SECONDS:
            for _ in range(50):
                work()
            count += 50
        best = max(best, count / elapsed)
    return best


def main() -> None:
    """Print validations/s, parses/s, their ratio and the generation cost."""
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    package = load_package(FHIR_DIR)
    validator = Validator(package)
    assert errors(validator.validate(document)) == []
    model = get_fhir_model_class("MedicationRequest")
    parses = _rate(lambda: model.model_validate(document))
    validations = _rate(lambda: validator.validate(document))
    ratio = validations / parses
    print(f"document: {EXAMPLE.relative_to(ROOT)}")
    print(f"fhir.resources R4B parse only : {parses:10.0f} /s")
    print(f"rxverify validate (profiled)  : {validations:10.0f} /s")
    print(f"ratio validate/parse          : {ratio:10.2f}  (aim >= {AIM})")
    registry = load_registry(ROOT / "contracts" / "testdata" / "test-patients.json")
    for definition in package.of_type("StructureDefinition"):
        if definition.get("kind") != "resource":
            continue
        url = definition["url"]
        strategy = resources(url, package, registry)

        @settings(max_examples=GENERATED, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(strategy)
        def draw(instance: dict[str, object]) -> None:
            pass

        start = time.perf_counter()
        draw()
        cost = (time.perf_counter() - start) / GENERATED * 1000
        print(f"generation {definition['name']:<24}: {cost:8.2f} ms/example")


if __name__ == "__main__":
    main()
