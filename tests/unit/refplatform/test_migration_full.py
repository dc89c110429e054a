"""The whole registry through the real commands and processes: seed, window, migrate, gateway switch, compare.

The one test over all 216 test patients (the others use a subset): every legacy read of every
patient, answered by the old platform's handlers before the window, is what the new platform's
transformer answers from the migrated store (at the handler level, as the other migration tests
compare); over the wire, the same holds for a sample read directly on the old platform and then
through the gateway before and after its switch to the new one.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import CONTRACTS, ROOT, RunningPlatform, start_platform, start_ready
from .migration_support import AS_OF, READS, differences, read_new, read_old, ticket, violations
from .test_migration_seed import assert_covers_every_case, assert_invariants

pytestmark = pytest.mark.platforms("old", "new")

PATHS = {"HamtaPatientInfo": "/legacy/patienter/{}", "HamtaAktuellaOrdinationer": "/legacy/patienter/{}/ordinationer/"
         "aktuella", "HamtaOrdinationshistorik": "/legacy/patienter/{}/ordinationer/historik",
         "HamtaLakemedelsforteckning": "/legacy/patienter/{}/lakemedelsforteckning"}


def command(*args: str) -> str:
    """Run `python -m refplatform ARGS` to its end; its one line of output."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "refplatform", *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    [line] = done.stdout.splitlines()
    return line


def read_all(http: requests.Session, base: str, patients: list[str], headers: dict[str, str]) -> dict[str, Any]:
    """Every legacy read of every patient over the wire: (status, body) each."""
    out: dict[str, Any] = {}
    for person in patients:
        for op in READS:
            r = http.get(base + PATHS[op].format(person), headers=headers, timeout=30)
            out[f"{person} {op}"] = (r.status_code, r.json())
    return out


@pytest.fixture()
def processes() -> Iterator[list[RunningPlatform | subprocess.Popen[str]]]:
    started: list[RunningPlatform | subprocess.Popen[str]] = []
    yield started
    for p in reversed(started):
        if isinstance(p, RunningPlatform):
            p.stop()
        else:
            p.terminate()
            p.wait(timeout=10)


def test_the_window_on_the_whole_registry(tmp_path: Path, ticket_key_file: Path, actors: dict[str, Any],
                                          patients: list[dict[str, Any]],
                                          processes: list[RunningPlatform | subprocess.Popen[str]]) -> None:
    old_dir, new_dir, key_file = tmp_path / "old", tmp_path / "new", tmp_path / "operator.key"
    key_file.write_text(secrets.token_hex(32))
    operator = {"Authorization": f"Bearer {key_file.read_text()}"}
    ticket_key = ticket_key_file.read_text().strip().encode()
    pharmacy, prescriber = ticket("pharmacy", actors, key=ticket_key), ticket("prescriber", actors, key=ticket_key)
    everyone = [p["id"] for p in patients]

    seeded = command("seed", "--platform", "old", "--data-dir", str(old_dir), "--contracts", str(CONTRACTS),
                     "--seed", "21")
    assert f"patients {len(everyone)}," in seeded and "(seed 21, as of" in seeded
    assert_invariants(old_dir, actors, AS_OF)
    assert_covers_every_case(old_dir, AS_OF)

    old_reads = read_old(old_dir, everyone)
    old = start_platform("old", old_dir, ticket_key_file, extra=["--admin-key-file", str(key_file)])
    processes.append(old)
    http = requests.Session()
    sample = everyone[::12]
    before = read_all(http, old.base_url, sample, pharmacy)
    assert before == {f"{person} {op}": answer for person in sample for op, answer in old_reads[person].items()}
    assert http.post(f"{old.base_url}/admin/window", json={"open": True}, headers=operator).json()["open"] is True

    migrated = command("migrate", "--from", str(old_dir), "--to", str(new_dir), "--contracts", str(CONTRACTS))
    prescriptions = re.search(r"prescriptions (\d+) \(", seeded)
    assert prescriptions and f"prescriptions {prescriptions.group(1)}," in migrated and "faults: none" in migrated
    new = start_platform("new", new_dir, ticket_key_file)
    processes.append(new)
    gateway, gateway_url = start_ready(["gateway", "--upstream", f"old={old.base_url}", "--upstream",
                                        f"new={new.base_url}", "--route", "old", "--admin-key-file", str(key_file)],
                                       "gateway")
    processes.append(gateway)
    assert read_all(http, gateway_url, sample, pharmacy) == before
    switched = http.post(f"{gateway_url}/admin/route", json={"route": "new"}, headers=operator).json()
    assert switched["route"] == "new"

    new_reads = read_new(new_dir, everyone)
    assert differences(old_reads, new_reads) == {}
    assert sum(len(r["HamtaOrdinationshistorik"][1]["ordinationer"]) for r in new_reads.values()) > 500
    after = read_all(http, gateway_url, sample, pharmacy)
    assert sorted(k for k in before if before[k] != after[k]) == []

    # FHIR through the gateway: the migrated prescriptions and dispensings of a sample, as Bundles of the profiles
    fhir = {**pharmacy, "x-request-id": str(uuid.uuid4()), "x-context-id": str(uuid.uuid4()),
            "x-user-agent": "rxverify-unit/1.0"}
    for person in sample:
        for rtype, schema in (("MedicationRequest", "MedicationRequestBundle"),
                              ("MedicationDispense", "MedicationDispenseBundle")):
            kind = "samordningsnummer" if 61 <= int(person[6:8]) <= 91 else "personnummer"
            bundle = http.get(f"{gateway_url}/fhir/{rtype}", headers=fhir, params={
                "patient-identifier": f"http://electronichealth.se/identifier/{kind}|{person}", "_count": 100}).json()
            assert not violations("fhir.yaml", schema, bundle), (person, rtype)
            assert bundle["link"][0]["url"].startswith(gateway_url)  # addresses name the callers' one address

    # writes: the old platform refuses them in the window, the new one behind the gateway takes them
    body = {"personId": everyone[0], "lakemedel": {"nplPackId": "19990101100001", "namn": "Alvedon 500 mg tablett"},
            "doseringstext": "1 tablett vid behov", "antalForpackningar": 1, "antalUttag": 1,
            "forskrivningstyp": "ELEKTRONISK"}
    assert http.post(f"{old.legacy}/ordinationer", json=body, headers=prescriber).status_code == 503
    assert http.post(f"{gateway_url}/legacy/ordinationer", json=body, headers=prescriber).status_code == 201
