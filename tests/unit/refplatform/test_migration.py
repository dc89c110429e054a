"""`python -m refplatform migrate`: the old store moved into the new platform's FHIR core.

The platform's own test of its job: what the old platform answered for each test patient before
is exactly what the new platform answers through its legacy interface (the transformer) after
(contracts/mapping/legacy-fhir.yaml), and what FHIR serves of the migrated resources satisfies
the NLL profiles as the new platform's own resources do.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from refplatform.common.cmdline import CommandError
from refplatform.migration import migrate
from refplatform.new.app import create_app
from refplatform.seed import seed_old_store

from .conftest import CONTRACTS
from .migration_support import (
    AS_OF,
    Reads,
    config,
    differences,
    key_paths,
    read_new,
    read_old,
    run_main,
    subset,
    table,
    ticket,
    violations,
)
from .test_platform_common import assert_bad_input

pytestmark = pytest.mark.platforms("new")

STORED_PROFILE = {"MedicationRequest": "NLLMedicationRequestStored",
                  "MedicationDispense": "NLLMedicationDispenseStored", "Consent": "NLLConsentStored",
                  "Provenance": "Provenance"}
PERSONNUMMER = "http://electronichealth.se/identifier/personnummer"
SAMORDNINGSNUMMER = "http://electronichealth.se/identifier/samordningsnummer"


@pytest.fixture(scope="session")
def old_reads(seeded_old: Path, patients: list[dict[str, Any]]) -> Reads:
    """What the old platform answers for the subset, before the migration."""
    return read_old(seeded_old, subset(patients))


@pytest.fixture(scope="session")
def migrated(seeded_old: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded old store migrated without faults (read it, never write)."""
    new_dir = tmp_path_factory.mktemp("migrated")
    migrate(seeded_old, new_dir, CONTRACTS)
    return new_dir


def resources(data_dir: Path) -> list[dict[str, Any]]:
    """Every resource of a new store, as stored (and served by a read)."""
    import sqlite3

    conn = sqlite3.connect(data_dir / "new.sqlite")
    try:
        return [json.loads(r[0]) for r in conn.execute("SELECT json FROM resources ORDER BY seq")]
    finally:
        conn.close()


def fhir_headers(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "x-request-id": str(uuid.uuid4()), "x-context-id": str(uuid.uuid4()),
            "x-user-agent": "rxverify-unit/1.0"}


# ---- the equivalence ----


def test_the_new_platform_answers_every_patient_exactly_as_the_old_one(
        migrated: Path, old_reads: Reads, patients: list[dict[str, Any]]) -> None:
    """Mapping contract, every read of every patient: same ids, statuses, dates, texts, withdrawals, list, consent."""
    new_reads = read_new(migrated, subset(patients))
    assert differences(old_reads, new_reads) == {}
    # not two empty answers: the patients have histories, withdrawals, lists and consents
    histories = [a["HamtaOrdinationshistorik"][1]["ordinationer"] for a in new_reads.values()]
    assert sum(len(h) for h in histories) > 100
    assert sum(len(e["uttag"]) for h in histories for e in h) > 100
    assert sum(1 for a in new_reads.values() if a["HamtaLakemedelsforteckning"][0] == 200
               and a["HamtaLakemedelsforteckning"][1]["poster"]) > 5


@pytest.mark.parametrize("seed", [2, 3])
def test_equivalence_holds_for_other_seeds(tmp_path: Path, patients: list[dict[str, Any]], seed: int) -> None:
    some = subset(patients)
    seed_old_store(tmp_path / "old", CONTRACTS, seed=seed, as_of=AS_OF, patients=some)
    migrate(tmp_path / "old", tmp_path / "new", CONTRACTS)
    assert differences(read_old(tmp_path / "old", some), read_new(tmp_path / "new", some)) == {}


def test_counts_are_those_of_the_old_store(seeded_old: Path, tmp_path: Path) -> None:
    counts = migrate(seeded_old, tmp_path, CONTRACTS)
    old = {name: table(seeded_old, name) for name in ("patient", "ordination", "uttag", "lf_post", "expeditionsid")}
    assert counts["patients"] == len(old["patient"])
    assert counts["prescriptions"] == len(old["ordination"])
    assert counts["withdrawals"] == len(old["uttag"])
    assert counts["medication-list entries"] == len(old["lf_post"])
    assert counts["consents"] == sum(1 for p in old["patient"] if p["samtycke_andrad"])
    assert counts["reserved dispensing ids"] == len(old["expeditionsid"])
    # one CREATE per prescription, withdrawal and report; one UPDATE of the prescription per withdrawal
    assert counts["provenances"] == len(old["ordination"]) + 2 * len(old["uttag"]) + len(old["lf_post"])
    assert counts["cancellation comments not carried"] == sum(1 for o in old["ordination"]
                                                              if o["makuleringskommentar"])


# ---- FHIR: the migrated resources as the new platform serves them ----


def test_every_migrated_resource_satisfies_its_nll_profile(migrated: Path) -> None:
    """fhir.yaml components (the NLL profiles) and fhir.resources (R4 structure, primitive formats)."""
    from fhir.resources.R4B.consent import Consent
    from fhir.resources.R4B.medicationdispense import MedicationDispense
    from fhir.resources.R4B.medicationrequest import MedicationRequest
    from fhir.resources.R4B.provenance import Provenance

    models = {"MedicationRequest": MedicationRequest, "MedicationDispense": MedicationDispense,
              "Consent": Consent, "Provenance": Provenance}
    stored = resources(migrated)
    assert {r["resourceType"] for r in stored} == set(STORED_PROFILE)
    # every prescription, dispensing and consent; of the Provenances (made by one function) each kind and a tenth
    kinds: set[tuple[str, str]] = set()
    sample = []
    for n, resource in enumerate(stored):
        if resource["resourceType"] == "Provenance":
            kind = (resource["activity"]["coding"][0]["code"], resource["agent"][0]["who"]["identifier"]["system"])
            if kind in kinds and n % 10:
                continue
            kinds.add(kind)
        sample.append(resource)
    assert len(kinds) == 3  # CREATE by a prescriber, CREATE and UPDATE by a pharmacy
    for resource in sample:
        assert not violations("fhir.yaml", STORED_PROFILE[resource["resourceType"]], resource), resource["id"]
        models[resource["resourceType"]].model_validate(resource)


def test_fhir_reads_and_searches_of_migrated_patients(migrated: Path, tmp_path: Path, actors: dict[str, Any],
                                                       seeded_old: Path) -> None:
    """MedicationRequest/MedicationDispense/Consent/Provenance search and read: Bundles of the profiles."""
    shutil.copytree(migrated, tmp_path / "new")  # the app may write (its patient table); keep the shared store
    client = TestClient(create_app(config(tmp_path / "new")))
    headers = fhir_headers(ticket("pharmacy", actors))
    ordinations = table(seeded_old, "ordination")
    person = max({o["person_id"] for o in ordinations if 61 <= int(o["person_id"][6:8]) <= 91},
                 key=lambda p: sum(1 for o in ordinations if o["person_id"] == p))
    identity = f"{SAMORDNINGSNUMMER}|{person}"
    for rtype, bundle_schema in (("MedicationRequest", "MedicationRequestBundle"),
                                 ("MedicationDispense", "MedicationDispenseBundle")):
        r = client.get(f"/fhir/{rtype}", params={"patient-identifier": identity, "_count": 100}, headers=headers)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
        bundle = r.json()
        assert bundle["total"] > 0 and not violations("fhir.yaml", bundle_schema, bundle)
    mine = [o for o in ordinations if o["person_id"] == person]
    r = client.get(f"/fhir/MedicationRequest/{mine[0]['ordination_id']}", headers=headers)
    assert r.status_code == 200 and r.json()["id"] == mine[0]["ordination_id"]
    assert r.headers["etag"] == f'W/"{r.json()["meta"]["versionId"]}"'
    provenance = client.get("/fhir/Provenance", params={"target": f"MedicationRequest/{mine[0]['ordination_id']}"},
                            headers=headers).json()
    codes = [e["resource"]["activity"]["coding"][0]["code"] for e in provenance["entry"]]
    assert codes[-1] == "CREATE" and set(codes[:-1]) <= {"UPDATE"}  # newest first: its withdrawals, then its creation
    assert not violations("fhir.yaml", "ProvenanceBundle", provenance)
    wrong_kind = client.get("/fhir/MedicationRequest", params={"patient-identifier": f"{PERSONNUMMER}|{person}"},
                            headers=headers).json()
    assert wrong_kind["total"] == 0  # a samordningsnummer is migrated under its own system


def test_migrated_resources_have_the_shape_of_the_platforms_own(migrated: Path, tmp_path: Path,
                                                                 actors: dict[str, Any]) -> None:
    """A prescription, withdrawal, report and consent made through the new platform have the migrated ones' shape."""
    client = TestClient(create_app(config(tmp_path)))
    person = "191212121212"
    prescriber, pharmacy = ticket("prescriber", actors), ticket("pharmacy", actors)
    body = {"personId": person, "lakemedel": {"nplPackId": "19990101100001", "namn": "Alvedon 500 mg tablett"},
            "doseringstext": "1 tablett vid behov", "antalForpackningar": 1, "antalUttag": 2,
            "forskrivningstyp": "ELEKTRONISK"}
    created = client.post("/legacy/ordinationer", json=body, headers=prescriber).json()
    cancelled = client.post("/legacy/ordinationer", json=body, headers=prescriber).json()
    client.post(f"/legacy/ordinationer/{cancelled['ordinationId']}/makulering", json={"orsak": "OVRIGT"},
                headers=prescriber)
    [dispensing_id] = client.post("/legacy/expeditionsid", json={"antal": 1}, headers=pharmacy).json()["expeditionsIdn"]
    client.post(f"/legacy/ordinationer/{created['ordinationId']}/uttag",
                json={"expeditionsId": dispensing_id, "antalForpackningar": 1}, headers=pharmacy)
    client.post("/legacy/lakemedelsforteckning/expeditioner", headers=pharmacy, json={
        "expeditionsId": dispensing_id, "personId": person, "ordinationId": created["ordinationId"],
        "antalForpackningar": 1})
    client.put(f"/legacy/patienter/{person}/samtycke", json={"samtycke": True}, headers=pharmacy)

    def shape(rs: list[dict[str, Any]], rtype: str, **where: Any) -> set[str]:
        picked = [r for r in rs if r["resourceType"] == rtype and all(r.get(k) == v for k, v in where.items())]
        assert picked, (rtype, where)
        return set().union(*(key_paths(r) for r in picked))

    own, moved = resources(tmp_path), resources(migrated)
    assert shape(moved, "MedicationRequest", status="active") == shape(own, "MedicationRequest", status="active")
    assert shape(moved, "MedicationRequest", status="cancelled") == shape(own, "MedicationRequest", status="cancelled")
    for rtype in ("Consent", "Provenance"):
        assert shape(moved, rtype) == shape(own, rtype)
    withdrawals = [r for r in moved if r["resourceType"] == "MedicationDispense" and "tag" not in r["meta"]]
    reports = [r for r in moved if r["resourceType"] == "MedicationDispense" and "tag" in r["meta"]]
    own_md = [r for r in own if r["resourceType"] == "MedicationDispense"]
    assert {frozenset(key_paths(r)) for r in withdrawals} == {frozenset(key_paths(r)) for r in own_md
                                                             if "tag" not in r["meta"]}
    assert {frozenset(key_paths(r)) for r in reports} == {frozenset(key_paths(r)) for r in own_md if "tag" in r["meta"]}


def test_pharmacies_use_the_dispensing_ids_they_reserved_before_the_window(tmp_path: Path,
                                                                            actors: dict[str, Any]) -> None:
    """Reserved ids move per GLN: a spare one works on the new platform, another pharmacy's does not."""
    seed_old_store(tmp_path / "old", CONTRACTS, seed=4, as_of=AS_OF, patients=["191212121212"])
    migrate(tmp_path / "old", tmp_path / "new", CONTRACTS)
    client = TestClient(create_app(config(tmp_path / "new")))
    prescriber = ticket("prescriber", actors)
    created = client.post("/legacy/ordinationer", headers=prescriber, json={
        "personId": "191212121212", "lakemedel": {"nplPackId": "19990101100001", "namn": "Alvedon 500 mg tablett"},
        "doseringstext": "1 tablett vid behov", "antalForpackningar": 1, "antalUttag": 3,
        "forskrivningstyp": "ELEKTRONISK"}).json()
    used = {u["expeditions_id"] for u in table(tmp_path / "old", "uttag")}
    spare = {}
    for r in table(tmp_path / "old", "expeditionsid"):
        if r["expeditions_id"] not in used:
            spare.setdefault(r["apotek_gln"], r["expeditions_id"])
    glns = [p["gln"] for p in actors["pharmacies"]]
    first, second = glns.index(next(iter(spare))), glns.index(list(spare)[1])

    def withdraw(dispensing_id: str, pharmacy: int) -> Any:
        return client.post(f"/legacy/ordinationer/{created['ordinationId']}/uttag", headers=ticket("pharmacy", actors,
                           pharmacy), json={"expeditionsId": dispensing_id, "antalForpackningar": 1})

    foreign = withdraw(spare[glns[second]], first)
    assert (foreign.status_code, foreign.json()["kod"]) == (409, "OKANT_EXPEDITIONSID")
    own = withdraw(spare[glns[first]], first)
    assert own.status_code == 200 and own.json()["uttagKvar"] == 2
    again = withdraw(spare[glns[first]], first)
    assert (again.status_code, again.json()["kod"]) == (409, "KONFLIKT")


# ---- refusals ----


def test_migrating_into_a_store_that_holds_data_is_refused(seeded_old: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    migrate(seeded_old, tmp_path, CONTRACTS)
    with pytest.raises(CommandError, match="already holds data"):
        migrate(seeded_old, tmp_path, CONTRACTS)
    result = run_main(capsys, "migrate", "--from", str(seeded_old), "--to", str(tmp_path),
                      "--contracts", str(CONTRACTS))
    assert_bad_input(result, "already holds data")


def test_cli_prints_one_summary_line_of_counts(seeded_old: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    result = run_main(capsys, "migrate", "--from", str(seeded_old), "--to", str(tmp_path / "new"),
                      "--contracts", str(CONTRACTS))
    assert result.returncode == 0 and result.stderr == ""
    [line] = result.stdout.splitlines()
    prescriptions = len(table(seeded_old, "ordination"))
    assert f"prescriptions {prescriptions}," in line and "faults: none" in line
    for kind in ("patients", "withdrawals", "medication-list entries", "consents", "reserved dispensing ids",
                 "provenances", "cancellation comments"):
        assert kind in line


@pytest.mark.parametrize(("args", "words"), [
    (["--from", "{tmp}/nowhere", "--to", "{tmp}/new"], ("nowhere", "not a directory")),
    (["--from", "{tmp}/empty", "--to", "{tmp}/new"], ("old.sqlite missing",)),
    (["--from", "{tmp}/garbage", "--to", "{tmp}/new"], ("cannot read the old store",)),
    (["--from", "{tmp}/notables", "--to", "{tmp}/new"], ("cannot read the old store",)),
    (["--from", "{old}", "--to", "{tmp}/file"], ("not a directory",)),
    (["--from", "{old}", "--to", "{tmp}/new", "--fault", "no-such-fault"], ("no-such-fault",)),
    (["--from", "{old}", "--to", "{tmp}/new", "--fault", "transformer-mojibake"], ("unknown migration fault",)),
    (["--from", "{old}", "--to", "{tmp}/new", "--contracts", "{tmp}"], ("mapping contract",)),
    (["--to", "{tmp}/new"], ("--from",)),
    (["--from", "{old}"], ("--to",)),
])
def test_cli_bad_input_is_one_line_and_exit_2(seeded_old: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              args: list[str], words: tuple[str, ...]) -> None:
    import sqlite3

    (tmp_path / "empty").mkdir()
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "old.sqlite").write_bytes(b"this is no database " * 100)
    (tmp_path / "notables").mkdir()
    sqlite3.connect(tmp_path / "notables" / "old.sqlite").close()
    (tmp_path / "file").write_text("not a directory")
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{old}", str(seeded_old)) for a in args]
    result = run_main(capsys, "migrate", *argv, *([] if "--contracts" in args else ["--contracts", str(CONTRACTS)]))
    assert_bad_input(result, *words)
    assert not (tmp_path / "new" / "new.sqlite").exists()  # refused before anything was written


def test_a_platform_refuses_a_migration_fault(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ticket.key").write_bytes(b"t" * 40)
    result = run_main(capsys, "--platform", "new", "--data-dir", str(tmp_path), "--ticket-key-file",
                      str(tmp_path / "ticket.key"), "--fault", "migration-text-cut", "--contracts", str(CONTRACTS))
    assert_bad_input(result, "migration-text-cut", "migrate --fault")


def test_list_faults_names_every_migration_fault(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [line.split("\t") for line in run_main(capsys, "--list-faults").stdout.splitlines()]
    migration = {r[0] for r in rows if r[1] == "migration"}
    assert migration == set(MIGRATION_FAULTS)
    assert all(r[2] == "migration" and len(r[3]) > 40 for r in rows if r[1] == "migration")


# ---- the seeded migration faults: each changes what the new platform answers ----

MIGRATION_FAULTS = ("migration-record-lost", "migration-history-truncated", "migration-text-cut",
                    "migration-consent-lost", "migration-utc-dates", "migration-duplicates",
                    "migration-skips-samordningsnummer", "migration-parked-as-active")


def faulty_reads(seeded_old: Path, tmp_path: Path, patients: list[dict[str, Any]], fault: str) -> Reads:
    migrate(seeded_old, tmp_path, CONTRACTS, [fault])
    return read_new(tmp_path, subset(patients))


def history(reads: Reads, person: str) -> list[dict[str, Any]]:
    return list(reads[person]["HamtaOrdinationshistorik"][1]["ordinationer"])


def test_fault_record_lost(seeded_old: Path, tmp_path: Path, patients: list[dict[str, Any]],
                           old_reads: Reads) -> None:
    """migration-record-lost: one patient's history lacks one prescription (the oldest of the old store)."""
    new = faulty_reads(seeded_old, tmp_path, patients, "migration-record-lost")
    oldest = table(seeded_old, "ordination", "seq")[0]
    diff = differences(old_reads, new)
    assert list(diff) == [oldest["person_id"]] and "HamtaOrdinationshistorik" in diff[oldest["person_id"]]
    before = [e["ordination"]["ordinationId"] for e in history(old_reads, oldest["person_id"])]
    after = [e["ordination"]["ordinationId"] for e in history(new, oldest["person_id"])]
    assert [i for i in before if i not in after] == [oldest["ordination_id"]] and len(after) == len(before) - 1


def test_fault_history_truncated(seeded_old: Path, tmp_path: Path, patients: list[dict[str, Any]],
                                 old_reads: Reads) -> None:
    """migration-history-truncated: every prescription with 3+ withdrawals shows 2, and too many left."""
    new = faulty_reads(seeded_old, tmp_path, patients, "migration-history-truncated")
    counts: dict[str, int] = {}
    for u in table(seeded_old, "uttag"):
        counts[u["ordination_id"]] = counts.get(u["ordination_id"], 0) + 1
    long_ones = {o for o, n in counts.items() if n > 2}
    owners = {o["person_id"] for o in table(seeded_old, "ordination") if o["ordination_id"] in long_ones}
    assert owners and set(differences(old_reads, new)) == owners
    for person in owners:
        for before, after in zip(history(old_reads, person), history(new, person), strict=True):
            if before["ordination"]["ordinationId"] in long_ones:
                assert len(after["uttag"]) == 2 < len(before["uttag"])
                assert after["ordination"]["uttagKvar"] > before["ordination"]["uttagKvar"]


def test_fault_text_cut(seeded_old: Path, tmp_path: Path, patients: list[dict[str, Any]], old_reads: Reads) -> None:
    """migration-text-cut: dosage texts over 255 characters come back cut at 255, in history and list."""
    new = faulty_reads(seeded_old, tmp_path, patients, "migration-text-cut")
    owners = {o["person_id"] for o in table(seeded_old, "ordination") if len(o["doseringstext"]) > 255}
    assert owners and set(differences(old_reads, new)) == owners
    for person in owners:
        for before, after in zip(history(old_reads, person), history(new, person), strict=True):
            text = before["ordination"]["doseringstext"]
            assert after["ordination"]["doseringstext"] == text[:255]


def test_fault_consent_lost(seeded_old: Path, tmp_path: Path, patients: list[dict[str, Any]],
                            old_reads: Reads) -> None:
    """migration-consent-lost: one patient who consented has samtycke false and no medication list."""
    new = faulty_reads(seeded_old, tmp_path, patients, "migration-consent-lost")
    [person] = differences(old_reads, new)
    assert old_reads[person]["HamtaPatientInfo"][1]["samtycke"] is True
    assert new[person]["HamtaPatientInfo"][1]["samtycke"] is False
    assert old_reads[person]["HamtaLakemedelsforteckning"][0] == 200
    status, body = new[person]["HamtaLakemedelsforteckning"]
    assert (status, body["kod"]) == (403, "SAMTYCKE_SAKNAS")


def test_fault_utc_dates(seeded_old: Path, tmp_path: Path, patients: list[dict[str, Any]], old_reads: Reads) -> None:
    """migration-utc-dates: a prescription registered after local midnight is dated the day before."""
    from datetime import date, timedelta

    from .migration_support import stockholm_date_differs_from_utc

    new = faulty_reads(seeded_old, tmp_path, patients, "migration-utc-dates")
    night = {o["ordination_id"]: o for o in table(seeded_old, "ordination")
             if stockholm_date_differs_from_utc(o["utfardad"])}
    owners = {o["person_id"] for o in night.values()}
    assert owners and set(differences(old_reads, new)) == owners
    for person in owners:
        for before, after in zip(history(old_reads, person), history(new, person), strict=True):
            issued = before["ordination"]["utfardandedatum"]
            if before["ordination"]["ordinationId"] in night:
                assert after["ordination"]["utfardandedatum"] == (date.fromisoformat(issued)
                                                                  - timedelta(days=1)).isoformat()
            else:
                assert after["ordination"]["utfardandedatum"] == issued


def test_fault_duplicates(seeded_old: Path, tmp_path: Path, patients: list[dict[str, Any]], old_reads: Reads) -> None:
    """migration-duplicates: the newest Aktiv prescription appears twice, the copy under another id."""
    new = faulty_reads(seeded_old, tmp_path, patients, "migration-duplicates")
    newest = [o for o in table(seeded_old, "ordination", "seq") if o["status"] == "Aktiv"][-1]
    diff = differences(old_reads, new)
    assert list(diff) == [newest["person_id"]]
    before, after = history(old_reads, newest["person_id"]), history(new, newest["person_id"])
    assert len(after) == len(before) + 1
    copy = after[0]["ordination"]
    assert copy["ordinationId"] != newest["ordination_id"] and copy["lakemedel"]["namn"] == newest["lakemedel_namn"]
    assert after[1:] == before


def test_fault_skips_samordningsnummer(seeded_old: Path, tmp_path: Path, patients: list[dict[str, Any]],
                                       old_reads: Reads) -> None:
    """migration-skips-samordningsnummer: those patients have nothing on the new platform; the others all."""
    new = faulty_reads(seeded_old, tmp_path, patients, "migration-skips-samordningsnummer")
    coordination = {p["id"] for p in patients if p["kind"] == "samordningsnummer"}
    with_data = {o["person_id"] for o in table(seeded_old, "ordination")} | {
        p["person_id"] for p in table(seeded_old, "patient") if p["samtycke"]}
    diff = differences(old_reads, new)
    assert set(diff) == with_data & coordination and set(diff)
    for person in diff:
        assert history(new, person) == [] and new[person]["HamtaPatientInfo"][1]["samtycke"] is False


def test_fault_parked_as_active(seeded_old: Path, tmp_path: Path, patients: list[dict[str, Any]],
                                old_reads: Reads) -> None:
    """migration-parked-as-active: every Parkerad prescription shows as Aktiv."""
    new = faulty_reads(seeded_old, tmp_path, patients, "migration-parked-as-active")
    parked = {o["ordination_id"] for o in table(seeded_old, "ordination") if o["status"] == "Parkerad"}
    owners = {o["person_id"] for o in table(seeded_old, "ordination") if o["ordination_id"] in parked}
    assert owners and set(differences(old_reads, new)) == owners
    for person in owners:
        for before, after in zip(history(old_reads, person), history(new, person), strict=True):
            if before["ordination"]["ordinationId"] in parked:
                assert (before["ordination"]["status"], after["ordination"]["status"]) == ("Parkerad", "Aktiv")


def test_a_store_from_before_the_registration_instant_migrates_by_its_dates(tmp_path: Path,
                                                                             patients: list[dict[str, Any]]) -> None:
    """An old store without ordination.utfardad (or with it empty): authoredOn is the issue date, answers equal."""
    import sqlite3

    some = [p["id"] for p in patients[100:112]]
    seed_old_store(tmp_path / "old", CONTRACTS, seed=8, as_of=AS_OF, patients=some)
    conn = sqlite3.connect(tmp_path / "old" / "old.sqlite")
    conn.execute("ALTER TABLE ordination DROP COLUMN utfardad")
    conn.commit()
    conn.close()
    migrate(tmp_path / "old", tmp_path / "new", CONTRACTS)
    old_reads = read_old(tmp_path / "old", some)  # the old platform adds the column back, empty, on start
    assert all(o["utfardad"] is None for o in table(tmp_path / "old", "ordination"))
    assert differences(old_reads, read_new(tmp_path / "new", some)) == {}
    authored = {r["authoredOn"] for r in resources(tmp_path / "new") if r["resourceType"] == "MedicationRequest"}
    assert authored and all(len(a) == 10 for a in authored)


def test_what_the_old_platforms_own_handlers_wrote_migrates_too(tmp_path: Path, actors: dict[str, Any]) -> None:
    """Not only the seed: prescriptions, withdrawals, reports and consent written through old's interface."""
    from refplatform.old.app import create_app as create_old

    person = "191212121212"
    with TestClient(create_old(config(tmp_path / "old"))) as old:
        prescriber, pharmacy = ticket("prescriber", actors, 2), ticket("pharmacy", actors, 3)
        body = {"personId": person, "lakemedel": {"nplPackId": "19990101100003", "namn": "Kåvepenin 1 g tablett"},
                "doseringstext": "1 tablett 3 gånger dagligen i 10 dagar", "antalForpackningar": 2, "antalUttag": 3,
                "forskrivningstyp": "TELEFON"}
        kept = old.post("/legacy/ordinationer", json=body, headers=prescriber).json()
        cancelled = old.post("/legacy/ordinationer", json={**body, "forskrivningstyp": "ELEKTRONISK"},
                             headers=prescriber).json()
        ids = old.post("/legacy/expeditionsid", json={"antal": 3}, headers=pharmacy).json()["expeditionsIdn"]
        for dispensing_id in ids[:2]:
            assert old.post(f"/legacy/ordinationer/{kept['ordinationId']}/uttag", headers=pharmacy,
                            json={"expeditionsId": dispensing_id, "antalForpackningar": 2}).status_code == 200
        assert old.post("/legacy/lakemedelsforteckning/expeditioner", headers=pharmacy, json={
            "expeditionsId": ids[0], "personId": person, "ordinationId": kept["ordinationId"],
            "antalForpackningar": 2}).status_code == 201
        assert old.post(f"/legacy/ordinationer/{cancelled['ordinationId']}/makulering", headers=prescriber,
                        json={"orsak": "FEL_DOSERING", "kommentar": "Fel styrka"}).status_code == 200
        assert old.put(f"/legacy/patienter/{person}/samtycke", json={"samtycke": True}, headers=pharmacy).status_code \
            == 200
    counts = migrate(tmp_path / "old", tmp_path / "new", CONTRACTS)
    assert (counts["prescriptions"], counts["withdrawals"], counts["medication-list entries"]) == (2, 2, 1)
    old_reads, new_reads = read_old(tmp_path / "old", [person]), read_new(tmp_path / "new", [person])
    assert differences(old_reads, new_reads) == {}
    assert len(new_reads[person]["HamtaOrdinationshistorik"][1]["ordinationer"]) == 2
    assert new_reads[person]["HamtaLakemedelsforteckning"][0] == 200
