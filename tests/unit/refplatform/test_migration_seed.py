"""`python -m refplatform seed`: the old store as years of use left it, deterministic, every invariant kept.

The invariants are those the old platform's handlers keep (refplatform/old/app.py); the answers
the seeded store gives satisfy the legacy contract (contracts/openapi/legacy.yaml).
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from refplatform.seed import seed_old_store

from .conftest import CONTRACTS
from .migration_support import ANSWER_SCHEMAS, AS_OF, read_old, run_main, subset, table, violations
from .test_platform_common import assert_bad_input, run_cli

pytestmark = pytest.mark.platforms("old")

STOCKHOLM = ZoneInfo("Europe/Stockholm")
REASONS = {"FEL_LAKEMEDEL", "FEL_PATIENT", "FEL_DOSERING", "BEHANDLING_AVSLUTAD", "OVRIGT"}
SWEDISH = re.compile("[åäöÅÄÖ]")


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def clock_change_days(as_of: date, years: int = 4) -> tuple[set[date], set[date]]:
    """The days Stockholm's clocks go forward and back in the `years` before `as_of`."""
    spring, autumn = set(), set()
    day = as_of - timedelta(days=365 * years)
    while day < as_of:
        before = datetime.combine(day - timedelta(days=1), time(12), STOCKHOLM).utcoffset()
        after = datetime.combine(day, time(12), STOCKHOLM).utcoffset()
        if before and after and before != after:
            (spring if after > before else autumn).add(day)
        day += timedelta(days=1)
    return spring, autumn


def assert_invariants(data_dir: Path, actors: dict[str, Any], as_of: date) -> None:
    """Every row keeps what the old platform's handlers keep."""
    start = datetime.combine(as_of, time(0), STOCKHOLM)
    prescribers = {(p["hsaId"], p["forskrivarkod"], p["careUnit"]) for p in actors["prescribers"]}
    glns = {p["gln"] for p in actors["pharmacies"]}
    patients = {p["person_id"]: p for p in table(data_dir, "patient")}
    reserved = {r["expeditions_id"]: r for r in table(data_dir, "expeditionsid")}
    withdrawals: dict[str, list[dict[str, Any]]] = {}
    for u in table(data_dir, "uttag", "seq"):
        withdrawals.setdefault(u["ordination_id"], []).append(u)
    ordinations = {o["ordination_id"]: o for o in table(data_dir, "ordination", "seq")}
    assert ordinations and set(withdrawals) <= set(ordinations)
    for oid, o in ordinations.items():
        taken = withdrawals.get(oid, [])
        registered = _utc(o["utfardad"])
        assert o["person_id"] in patients
        assert registered < start and _utc(o["senast_andrad"]) < start
        assert registered.astimezone(STOCKHOLM).date().isoformat() == o["utfardandedatum"], oid
        validity = (date.fromisoformat(o["giltig_tom"]) - date.fromisoformat(o["utfardandedatum"])).days
        assert validity == 14 if o["forskrivningstyp"] == "TELEFON" else 0 < validity <= 366, oid
        assert 1 <= o["antal_uttag"] <= 12 and 1 <= o["antal_forpackningar"] <= 99
        assert o["uttag_kvar"] == o["antal_uttag"] - len(taken), oid
        assert (o["status"] == "Slutexpedierad") == (o["uttag_kvar"] == 0), oid
        assert (o["makuleringsorsak"] is not None) == (o["status"] == "Makulerad"), oid
        assert o["makuleringsorsak"] in REASONS | {None}
        assert o["makuleringskommentar"] is None or o["status"] == "Makulerad"
        assert (o["hsa_id"], o["forskrivarkod"], o["arbetsplatskod"]) in prescribers
        assert 1 <= len(o["doseringstext"]) <= 500 and o["doseringstext"] == o["doseringstext"].strip()
        end = min(datetime.combine(date.fromisoformat(o["giltig_tom"]) + timedelta(days=1), time(0), STOCKHOLM),
                  start)
        previous = registered
        for n, u in enumerate(taken, start=1):
            when = _utc(u["tidpunkt"])
            assert previous < when < end, (oid, n)  # in order, inside the validity, before the as-of day
            previous = when
            assert u["uttag_kvar"] == o["antal_uttag"] - n
            # what the handler records: the status right after the withdrawal (Aktiv or Parkerad before it)
            expected = "Slutexpedierad" if u["uttag_kvar"] == 0 else ("Parkerad" if o["status"] == "Parkerad"
                                                                       else "Aktiv")
            assert u["ordinationsstatus"] == expected, (oid, n)
            assert 1 <= u["antal_forpackningar"] <= o["antal_forpackningar"]
            assert u["apotek_gln"] in glns and reserved[u["expeditions_id"]]["apotek_gln"] == u["apotek_gln"]
            assert _utc(reserved[u["expeditions_id"]]["reserverad"]) <= when
        assert _utc(o["senast_andrad"]) >= previous
    reports = table(data_dir, "lf_post", "seq")
    assert len({(r["ordination_id"], r["expeditions_id"]) for r in reports}) == len(reports)
    for r in reports:
        o = ordinations[r["ordination_id"]]
        assert r["person_id"] == o["person_id"] and r["npl_pack_id"] == o["npl_pack_id"]
        assert reserved[r["expeditions_id"]]["apotek_gln"] == r["apotek_gln"] and _utc(r["registrerad"]) < start
    assert len({r["expeditions_id"] for r in table(data_dir, "uttag")}) == len(table(data_dir, "uttag"))
    for p in patients.values():
        assert p["samtycke"] in (0, 1) and (p["samtycke_andrad"] is not None or p["samtycke"] == 0)


def assert_covers_every_case(data_dir: Path, as_of: date) -> None:
    """Every case the brief names appears at least once."""
    ordinations = table(data_dir, "ordination")
    taken = Counter(u["ordination_id"] for u in table(data_dir, "uttag"))
    patients = table(data_dir, "patient")
    assert {o["status"] for o in ordinations} == {"Aktiv", "Parkerad", "Makulerad", "Slutexpedierad", "Avslutad"}
    assert {o["makuleringsorsak"] for o in ordinations} - {None} == REASONS
    assert any(o["makuleringskommentar"] for o in ordinations)
    assert any(not o["makuleringskommentar"] for o in ordinations if o["status"] == "Makulerad")
    today = as_of.isoformat()
    for status in ("Aktiv", "Parkerad"):
        assert any(o["giltig_tom"] < today for o in ordinations if o["status"] == status), f"expired {status}"
        assert any(o["giltig_tom"] >= today for o in ordinations if o["status"] == status), f"current {status}"
    assert {o["forskrivningstyp"] for o in ordinations} == {"ELEKTRONISK", "TELEFON"}
    counts = {taken.get(o["ordination_id"], 0) for o in ordinations}
    assert {0, 1, 2, 3, 12} <= counts
    assert any(taken[o["ordination_id"]] >= 3 for o in ordinations if o["status"] == "Aktiv")
    assert table(data_dir, "lf_post")
    consents = {("given" if p["samtycke"] else "withdrawn") if p["samtycke_andrad"] else "never" for p in patients}
    assert consents == {"given", "withdrawn", "never"}
    lengths = [len(o["doseringstext"]) for o in ordinations]
    assert any(470 <= n <= 500 for n in lengths) and any(255 < n < 470 for n in lengths)
    assert any(SWEDISH.search(o["doseringstext"]) for o in ordinations)
    assert any(SWEDISH.search(o["lakemedel_namn"]) for o in ordinations)
    night = [_utc(o["utfardad"]).astimezone(STOCKHOLM) for o in ordinations
             if _utc(o["utfardad"]).astimezone(STOCKHOLM).date() != _utc(o["utfardad"]).date()]
    assert {m.utcoffset() for m in night} == {timedelta(hours=1), timedelta(hours=2)}, "after midnight, both offsets"
    spring, autumn = clock_change_days(as_of)
    issued = {date.fromisoformat(o["utfardandedatum"]) for o in ordinations}
    assert issued & spring and issued & autumn
    assert any(o["utfardandedatum"].endswith("-02-29") for o in ordinations)
    assert any(o["giltig_tom"].endswith("-02-29") for o in ordinations)
    kinds = {"S" if 61 <= int(o["person_id"][6:8]) <= 91 else "P" for o in ordinations}
    assert kinds == {"P", "S"}


def test_seed_keeps_the_old_platforms_invariants(seeded_old: Path, actors: dict[str, Any]) -> None:
    assert_invariants(seeded_old, actors, AS_OF)


def test_seed_covers_every_case_in_26_consecutive_patients(seeded_old: Path) -> None:
    assert_covers_every_case(seeded_old, AS_OF)


def test_seeded_answers_satisfy_the_legacy_contract(seeded_old: Path, patients: list[dict[str, Any]]) -> None:
    """Read through the old platform's handlers, every answer is one legacy.yaml declares."""
    reads = read_old(seeded_old, subset(patients))
    refused = 0
    for person, answers in reads.items():
        for op, (status, body) in answers.items():
            if op == "HamtaLakemedelsforteckning" and status == 403:
                assert body["kod"] == "SAMTYCKE_SAKNAS" and answers["HamtaPatientInfo"][1]["samtycke"] is False
                refused += 1
                continue
            assert status == 200, (person, op, body)
            assert not violations("legacy-rest.yaml", ANSWER_SCHEMAS[op], body), (person, op)
    assert 0 < refused < len(reads)
    assert any(len(a["HamtaOrdinationshistorik"][1]["ordinationer"]) >= 5 for a in reads.values())


def _dump(data_dir: Path) -> dict[str, list[dict[str, Any]]]:
    return {name: table(data_dir, name) for name in ("patient", "ordination", "uttag", "lf_post", "expeditionsid")}


def test_same_seed_same_store_other_seed_other_store(tmp_path: Path, patients: list[dict[str, Any]]) -> None:
    some = [p["id"] for p in patients[40:52]]
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        seed_old_store(tmp_path / name, CONTRACTS, seed=seed, as_of=AS_OF, patients=some)
    assert _dump(tmp_path / "a") == _dump(tmp_path / "b")
    assert _dump(tmp_path / "a")["ordination"] != _dump(tmp_path / "c")["ordination"]


def test_a_patient_gets_the_same_data_whoever_else_is_seeded(tmp_path: Path, patients: list[dict[str, Any]]) -> None:
    """Data is drawn per patient: seeding fewer patients gives those patients the same rows."""
    many, few = [p["id"] for p in patients[60:72]], [p["id"] for p in patients[64:67]]
    seed_old_store(tmp_path / "many", CONTRACTS, seed=3, as_of=AS_OF, patients=many)
    seed_old_store(tmp_path / "few", CONTRACTS, seed=3, as_of=AS_OF, patients=few)

    def of_few(data_dir: Path) -> list[dict[str, Any]]:
        return [{k: v for k, v in o.items() if k != "seq"} for o in table(data_dir, "ordination", "utfardad")
                if o["person_id"] in few]

    assert of_few(tmp_path / "few") and of_few(tmp_path / "many") == of_few(tmp_path / "few")


def test_all_instants_are_before_the_as_of_day(tmp_path: Path, patients: list[dict[str, Any]]) -> None:
    """--as-of moves the data: a store seeded as of a past day has nothing after it (and its own special days)."""
    as_of = date(2021, 11, 20)  # the release's window
    seed_old_store(tmp_path, CONTRACTS, seed=2, as_of=as_of, patients=[p["id"] for p in patients[:30]])
    start = datetime.combine(as_of, time(0), STOCKHOLM).astimezone(UTC)
    for name, column in (("ordination", "senast_andrad"), ("uttag", "tidpunkt"), ("lf_post", "registrerad"),
                         ("expeditionsid", "reserverad")):
        assert all(_utc(r[column]) < start for r in table(tmp_path, name)), name
    assert any(o["utfardandedatum"] == "2020-02-29" for o in table(tmp_path, "ordination"))


def test_cli_refuses_a_store_that_holds_data(tmp_path: Path) -> None:
    # the command seeds the whole registry: test_migration_full runs it; here what it refuses, as a process
    (tmp_path / "old").mkdir()
    seed_old_store(tmp_path / "old", CONTRACTS, seed=1, as_of=AS_OF, patients=["191212121212"])
    assert_bad_input(run_cli("seed", "--platform", "old", "--data-dir", str(tmp_path / "old"),
                             "--contracts", str(CONTRACTS)), "already holds data")


@pytest.mark.parametrize(("args", "words"), [
    (["--platform", "new", "--data-dir", "{tmp}/d"], ("only the old platform",)),
    (["--data-dir", "{tmp}/d"], ("--platform",)),
    (["--platform", "old"], ("--data-dir",)),
    (["--platform", "old", "--data-dir", "{tmp}/d", "--seed", "x"], ("--seed",)),
    (["--platform", "old", "--data-dir", "{tmp}/d", "--as-of", "2021-02-30"], ("--as-of",)),
    (["--platform", "old", "--data-dir", "{tmp}/d", "--contracts", "{tmp}/no-contracts"], ("no-contracts",)),
    (["--platform", "old", "--data-dir", "{tmp}/file"], ("file",)),
    (["--platform", "old", "--data-dir", "{tmp}/d", "--bogus"], ("--bogus",)),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                             words: tuple[str, ...]) -> None:
    (tmp_path / "file").write_text("not a directory")
    result = run_main(capsys, "seed", *(a.replace("{tmp}", str(tmp_path)) for a in args),
                      *([] if "--contracts" in args else ["--contracts", str(CONTRACTS)]))
    assert_bad_input(result, *words)


@pytest.mark.parametrize("corruption", [
    "UPDATE ordination SET uttag_kvar = uttag_kvar + 1 WHERE seq = (SELECT MIN(seq) FROM ordination)",
    "UPDATE uttag SET ordinationsstatus = 'Parkerad' WHERE seq = (SELECT MIN(seq) FROM uttag WHERE uttag_kvar > 0)",
    "UPDATE uttag SET apotek_gln = '7350001216058' WHERE apotek_gln != '7350001216058'",
    "UPDATE ordination SET utfardandedatum = '2020-01-01' WHERE seq = (SELECT MAX(seq) FROM ordination)",
])
def test_the_invariant_check_fails_on_a_broken_store(seeded_old: Path, tmp_path: Path, actors: dict[str, Any],
                                                      corruption: str) -> None:
    """The check above is no tautology: one broken row and it fails."""
    import shutil

    conn = sqlite3.connect(seeded_old / "old.sqlite")
    conn.execute("PRAGMA wal_checkpoint(FULL)")
    conn.close()
    shutil.copy(seeded_old / "old.sqlite", tmp_path / "old.sqlite")
    broken = sqlite3.connect(tmp_path / "old.sqlite")
    with broken:
        broken.execute(corruption)
    broken.close()
    with pytest.raises(AssertionError):
        assert_invariants(tmp_path, actors, AS_OF)


@pytest.mark.parametrize(("seed", "as_of"), [(100, date(2021, 11, 20)), (108, date(2024, 3, 1)), (3, AS_OF)])
def test_the_whole_registry_keeps_the_invariants_for_other_seeds_and_days(tmp_path: Path, actors: dict[str, Any],
                                                                           seed: int, as_of: date) -> None:
    """Other draws, other calendars (a day after 29 February; the release's window): still every invariant."""
    seed_old_store(tmp_path, CONTRACTS, seed=seed, as_of=as_of)
    assert_invariants(tmp_path, actors, as_of)
    assert_covers_every_case(tmp_path, as_of)
