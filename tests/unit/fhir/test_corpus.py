"""The conformance corpus (tests/unit/data/fhir-corpus): every case is reported exactly as the R4 specification says.

Each case states the rule it checks in the specification's words and the exact issues expected
(severity, code, location, invariant key) for every error and warning; information notes
(must-support absent, a ValueSet not expandable offline) are not part of the comparison.
"""

from __future__ import annotations

import json

import pytest

from rxverify.fhir.validator import Validator
from rxverify.safety.registry import Registry

from .corpus import CORPUS, Case, cases, corpus_package

CASES = cases()
# The rule kinds the issue names: one case or more of each (and of each invariant listed here).
BASE_INVARIANTS = {
    "ele-1", "ext-1", "dom-2", "dom-3", "dom-4", "dom-5", "dom-6", "ref-1", "per-1", "qty-3", "rng-2", "rat-1",
    "att-1", "cpt-2", "tim-1", "tim-2", "tim-4", "tim-5", "tim-6", "tim-7", "tim-8", "tim-9", "tim-10",
    "bdl-1", "bdl-2", "bdl-3", "bdl-4", "bdl-5", "bdl-7", "bdl-8", "bdl-9", "bdl-10", "bdl-11", "bdl-12",
    "inv-1", "mdd-1", "ppc-1", "txt-1", "txt-2", "sdf-0", "sdf-3", "sdf-5", "sdf-6", "sdf-8", "sdf-8a", "sdf-11",
    "sdf-16", "eld-2", "eld-16", "vsd-1", "vsd-2", "vsd-3", "csd-1", "cpb-1", "cpb-2", "cpb-9", "cpb-12",
    "cpb-14", "cpb-16", "spd-1", "spd-2", "opd-1", "opd-2",
}  # fmt: skip
GROUPS = {
    "json",
    "primitives",
    "structure",
    "bindings",
    "references",
    "narrative",
    "profiles",
    "slicing",
    "conformance",
    "base-r4",
}
DISCRIMINATORS = {"value", "pattern", "exists", "type", "profile"}


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(corpus_package())


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.group}/{c.id}")
def test_case(case: Case, validator: Validator) -> None:
    """One case: its errors and warnings are exactly those the specification makes of it."""
    issues = validator.validate(case.resource, [case.profile] if case.profile else None)
    found = {(i.severity, i.code, i.location, i.key) for i in issues if i.severity in ("error", "warning")}
    assert found == case.expect, f"{case.rule} ({case.spec})\n" + "\n".join(map(str, issues))


def test_corpus_covers_every_rule_kind() -> None:
    """At least 150 cases, every group, each base invariant named, valid cases beside invalid ones."""
    assert len(CASES) >= 150
    assert {c.group for c in CASES} == GROUPS
    keys = {key for c in CASES for (_, _, _, key) in c.expect if key}
    assert keys >= BASE_INVARIANTS, sorted(BASE_INVARIANTS - keys)
    assert sum(not c.expect for c in CASES) >= 30  # what is valid is said too
    assert all(c.rule and c.spec for c in CASES)
    used = set()
    for c in CASES:
        for url in [c.profile] if c.profile else []:
            definition = corpus_package().find(url) or {}
            for element in definition.get("differential", {}).get("element", []):
                used |= {d["type"] for d in (element.get("slicing") or {}).get("discriminator", [])}
    assert used | {"value"} >= DISCRIMINATORS  # value: the NLL profiles' own slicing (profiles, slicing cases)


def test_corpus_ids_are_unique_and_identities_registered(registry: Registry) -> None:
    """Case ids are unique; the corpus carries no personal identity number outside the test-patient registry."""
    assert len({c.id for c in CASES}) == len(CASES)
    for path in sorted(CORPUS.rglob("*.json")):
        assert not registry.unregistered_in(path.read_text(encoding="utf-8")), path
    assert all(json.dumps(c.resource) for c in CASES)
