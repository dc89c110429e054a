"""Side by side with an independent validator: Medplum's (npm @medplum/core, validateResource) over the corpus.

Medplum runs in node (tests/unit/fhir/medplum_validate.mjs) on the same R4 bundles and the same
StructureDefinitions (snapshots included, as it needs). Its verdict on each case of the corpus
(valid, invalid, or failed: it could not validate) is compared with rxverify's; every case where
they differ is listed in tests/unit/data/fhir-disagreements.json with the rule of the
specification that decides it. An unlisted disagreement fails, and so does a listed one that
is gone. Our own StructureDefinitions must load in Medplum and the profiled examples validate there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rxverify.fhir.validator import Validator

from .conftest import FHIR_DIR, ROOT
from .corpus import CORPUS, cases, corpus_package

SCRIPT = Path(__file__).with_name("medplum_validate.mjs")
DISAGREEMENTS = CORPUS.parent / "fhir-disagreements.json"
EXAMPLES = {p.stem: json.loads(p.read_text("utf-8")) for p in sorted((FHIR_DIR / "examples").glob("*.json"))}
NODE_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def medplum() -> dict[str, Any]:
    """Medplum's findings on every corpus case and every contract example, in one node run."""
    node = shutil.which("node")
    assert node, "node is needed for the side-by-side check (Debian: apt-get install -y nodejs npm)"
    installed = (ROOT / "node_modules" / "@medplum" / "core").is_dir()
    assert installed, "Medplum's validator (npm @medplum/core) is not installed: run `npm ci` in the repository root"
    items = [{"id": c.id, "resource": c.resource, "profile": c.profile} for c in cases()]
    items += [{"id": f"example:{name}", "resource": resource, "profile": None} for name, resource in EXAMPLES.items()]
    payload = {"profiles": corpus_package().of_type("StructureDefinition"), "cases": items}
    done = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out: dict[str, Any] = json.loads(done.stdout)
    out["by_id"] = {r["id"]: r for r in out["results"]}
    return out


def _verdict(result: dict[str, Any]) -> str:
    if "failure" in result:
        return "failed"
    return "invalid" if any(i["severity"] in ("error", "fatal") for i in result["issues"]) else "valid"


def test_our_profiles_load_in_medplum_and_the_examples_validate(medplum: dict[str, Any]) -> None:
    """Every StructureDefinition of contracts/fhir loads in Medplum; every contract example validates there."""
    ours = {d["url"] for d in corpus_package().of_type("StructureDefinition") if "electronichealth.se" in d["url"]}
    assert not [u for u in medplum["unloaded"] if u["url"] in ours], medplum["unloaded"]
    profiled = [name for name, resource in EXAMPLES.items() if resource.get("meta", {}).get("profile")]
    assert len(profiled) >= 4
    for name in EXAMPLES:
        result = medplum["by_id"][f"example:{name}"]
        if name.startswith("Consent"):  # a listed disagreement (narrowed-array): Medplum misreads the array
            continue
        assert _verdict(result) == "valid", (name, result)


def test_every_disagreement_is_listed_with_its_rule(medplum: dict[str, Any]) -> None:
    """Each case where Medplum and rxverify differ is in fhir-disagreements.json with its verdicts and rule."""
    validator = Validator(corpus_package())
    found = {}
    for case in cases():
        issues = validator.validate(case.resource, [case.profile] if case.profile else None)
        ours = "invalid" if any(i.severity == "error" for i in issues) else "valid"
        theirs = _verdict(medplum["by_id"][case.id])
        if ours != theirs:
            found[case.id] = (ours, theirs)
    listed = json.loads(DISAGREEMENTS.read_text("utf-8"))["disagreements"]
    explained = {e["case"]: (e["rxverify"], e["medplum"]) for e in listed}
    assert all(e["rule"] and e["spec"] and e["why"] and e["right"] for e in listed)
    unexplained = {k: v for k, v in found.items() if explained.get(k) != v}
    gone = sorted(set(explained) - set(found))
    assert not unexplained, f"disagreements not in {DISAGREEMENTS.name}: {unexplained}"
    assert not gone, f"listed in {DISAGREEMENTS.name} but no longer disagreeing: {gone}"
