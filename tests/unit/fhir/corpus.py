"""The conformance corpus (tests/unit/data/fhir-corpus): cases written from the R4 specification, loaded.

Each file of cases/ holds cases of one rule kind. A case names the rule it checks (the words of
the specification, quoted or paraphrased, and the section), a resource (inline, or a document of
start/ or a conformance resource of contracts/fhir, changed by a JSON Patch, RFC 6902),
optionally the profile to validate against, and the exact issues the specification makes of it:
(severity, code, location, and the key of an invariant) of every error and warning. profiles/
holds the profiles some cases need (differentials; snapshots generated from the R4 base with
`rxverify fhir snapshot --folder tests/unit/data/fhir-corpus/profiles`).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonpatch

from rxverify.fhir.package import Package, load_package

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "unit" / "data" / "fhir-corpus"
CONTRACTS = ROOT / "contracts" / "fhir"


@dataclass(frozen=True)
class Case:
    """One case of the corpus."""

    id: str
    group: str
    rule: str
    spec: str
    resource: dict[str, Any]
    profile: str | None
    expect: frozenset[tuple[str, str, str, str]]  # (severity, code, location, invariant key or "")


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def cases() -> tuple[Case, ...]:
    """Every case of the corpus, in file order."""
    out = []
    for path in sorted((CORPUS / "cases").glob("*.json")):
        for raw in _load(path)["cases"]:
            if "resource" in raw:
                resource = copy.deepcopy(raw["resource"])
            elif raw["start"].endswith(".json"):  # a conformance resource of the contract
                resource = _load(CONTRACTS / raw["start"])
            else:
                resource = _load(CORPUS / "start" / f"{raw['start']}.json")
            if raw.get("patch"):
                resource = jsonpatch.apply_patch(resource, raw["patch"])
            expect = frozenset((e[0], e[1], e[2], e[3] if len(e) > 3 else "") for e in raw["expect"])
            out.append(Case(raw["id"], path.stem, raw["rule"], raw["spec"], resource, raw.get("profile"), expect))
    return tuple(out)


@cache
def corpus_package() -> Package:
    """contracts/fhir with the corpus's own profiles added."""
    package = load_package(CONTRACTS)
    for path in sorted((CORPUS / "profiles").glob("*.json")):
        package.add(str(path), _load(path))
    return package
