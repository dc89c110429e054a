"""The service window on the old platform: /admin/window opens it (writes refused, reads served), closes it.

Writes are refused with 503 and the legacy fault kod TJANSTEFEL, after the ticket, request and
role checks; the control needs the operator key (--admin-key-file), never a test actor's ticket.
"""

from __future__ import annotations

import secrets
import sqlite3
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from starlette.testclient import TestClient

from refplatform.old.app import create_app
from refplatform.old.window import WRITE_OPERATIONS

from .conftest import CONTRACTS, start_platform
from .migration_support import KEY, config, run_main, ticket
from .test_platform_common import assert_bad_input

pytestmark = pytest.mark.platforms("old")
REST_WRITES = {"SkapaOrdinationVard", "MakuleraOrdination", "GodkannUttag", "HamtaExpeditionsId",
               "RapporteraExpeditionLF", "UppdateraSamtycke"}  # the REST rendering's writes

OPERATOR_KEY = b"operator-" + b"k" * 40
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY.decode()}"}
PERSON = "191212121212"
NEW_PRESCRIPTION = {"personId": PERSON, "lakemedel": {"nplPackId": "19990101100001", "namn": "Alvedon 500 mg tablett"},
                    "doseringstext": "1 tablett vid behov", "antalForpackningar": 1, "antalUttag": 2,
                    "forskrivningstyp": "ELEKTRONISK"}


@pytest.fixture()
def old(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(config(tmp_path, admin_key=OPERATOR_KEY))) as client:
        yield client


def rows(data_dir: Path) -> dict[str, int]:
    conn = sqlite3.connect(data_dir / "old.sqlite")
    try:
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                  for t in ("ordination", "uttag", "lf_post", "expeditionsid")}
        counts["consent"] = conn.execute("SELECT COUNT(*) FROM patient WHERE samtycke_andrad IS NOT NULL").fetchone()[0]
        return counts
    finally:
        conn.close()


def writes(client: TestClient, actors: dict[str, Any], ordination_id: str, dispensing_id: str) -> dict[str, Any]:
    """One call of every write operation of the legacy interface."""
    prescriber, pharmacy = ticket("prescriber", actors), ticket("pharmacy", actors)
    return {
        "SkapaOrdinationVard": client.post("/legacy/ordinationer", json=NEW_PRESCRIPTION, headers=prescriber),
        "MakuleraOrdination": client.post(f"/legacy/ordinationer/{ordination_id}/makulering",
                                          json={"orsak": "OVRIGT"}, headers=prescriber),
        "GodkannUttag": client.post(f"/legacy/ordinationer/{ordination_id}/uttag", headers=pharmacy,
                                    json={"expeditionsId": dispensing_id, "antalForpackningar": 1}),
        "HamtaExpeditionsId": client.post("/legacy/expeditionsid", json={"antal": 1}, headers=pharmacy),
        "RapporteraExpeditionLF": client.post("/legacy/lakemedelsforteckning/expeditioner", headers=pharmacy, json={
            "expeditionsId": dispensing_id, "personId": PERSON, "ordinationId": ordination_id,
            "antalForpackningar": 1}),
        "UppdateraSamtycke": client.put(f"/legacy/patienter/{PERSON}/samtycke", json={"samtycke": True},
                                        headers=pharmacy),
    }


def reads(client: TestClient, actors: dict[str, Any]) -> dict[str, Any]:
    """One call of every read operation."""
    pharmacy = ticket("pharmacy", actors)
    return {op: client.get(path, headers=pharmacy) for op, path in (
        ("HamtaPatientInfo", f"/legacy/patienter/{PERSON}"),
        ("HamtaAktuellaOrdinationer", f"/legacy/patienter/{PERSON}/ordinationer/aktuella"),
        ("HamtaOrdinationshistorik", f"/legacy/patienter/{PERSON}/ordinationer/historik"),
        ("HamtaLakemedelsforteckning", f"/legacy/patienter/{PERSON}/lakemedelsforteckning"),
        ("KontrolleraArbetsplatskod", "/legacy/arbetsplatskoder/4000000"),
    )}


def test_open_window_refuses_every_write_serves_every_read_and_closes(old: TestClient, tmp_path: Path,
                                                                      actors: dict[str, Any]) -> None:
    prescriber, pharmacy = ticket("prescriber", actors), ticket("pharmacy", actors)
    created = old.post("/legacy/ordinationer", json=NEW_PRESCRIPTION, headers=prescriber).json()
    [dispensing_id] = old.post("/legacy/expeditionsid", json={"antal": 1}, headers=pharmacy).json()["expeditionsIdn"]
    assert old.get("/admin/window", headers=OPERATOR).json() == {"open": False, "changed": None}
    before_reads = {op: (r.status_code, r.json()) for op, r in reads(old, actors).items()}

    opened = old.post("/admin/window", json={"open": True}, headers=OPERATOR)
    assert opened.status_code == 200 and opened.json()["open"] is True and opened.json()["changed"].endswith("Z")
    before = rows(tmp_path)
    refused = writes(old, actors, created["ordinationId"], dispensing_id)
    assert set(refused) == REST_WRITES
    for op, r in refused.items():
        assert r.status_code == 503, (op, r.text)
        assert r.json()["kod"] == "TJANSTEFEL" and set(r.json()) == {"kod", "meddelande"}, op
    assert rows(tmp_path) == before  # nothing written
    assert {op: (r.status_code, r.json()) for op, r in reads(old, actors).items()} == before_reads

    closed = old.post("/admin/window", json={"open": False}, headers=OPERATOR)
    assert closed.json()["open"] is False
    accepted = writes(old, actors, created["ordinationId"], dispensing_id)
    assert {op: r.status_code for op, r in accepted.items()} == {
        "SkapaOrdinationVard": 201, "MakuleraOrdination": 200, "GodkannUttag": 409,  # cancelled just before
        "HamtaExpeditionsId": 200, "RapporteraExpeditionLF": 201, "UppdateraSamtycke": 200}
    assert accepted["GodkannUttag"].json()["kod"] == "MAKULERAD"


def test_refusal_comes_after_ticket_request_and_role(old: TestClient, actors: dict[str, Any]) -> None:
    old.post("/admin/window", json={"open": True}, headers=OPERATOR)
    assert old.post("/legacy/ordinationer", json=NEW_PRESCRIPTION).status_code == 401
    bad = old.post("/legacy/ordinationer", json={"personId": PERSON}, headers=ticket("prescriber", actors))
    assert (bad.status_code, bad.json()["kod"]) == (400, "FELAKTIG_BEGARAN")
    wrong_role = old.post("/legacy/ordinationer", json=NEW_PRESCRIPTION, headers=ticket("pharmacy", actors))
    assert (wrong_role.status_code, wrong_role.json()["kod"]) == (403, "EJ_BEHORIG")
    refused = old.post("/legacy/ordinationer", json=NEW_PRESCRIPTION, headers=ticket("prescriber", actors))
    assert (refused.status_code, refused.json()["kod"]) == (503, "TJANSTEFEL")


def test_the_control_needs_the_operator_key_not_a_ticket(old: TestClient, actors: dict[str, Any]) -> None:
    for headers in ({}, ticket("pharmacy", actors), ticket("prescriber", actors),
                    {"Authorization": "Bearer " + "x" * 49}, {"Authorization": f"Basic {OPERATOR_KEY.decode()}"}):
        for r in (old.get("/admin/window", headers=headers),
                  old.post("/admin/window", json={"open": True}, headers=headers)):
            assert r.status_code == 401, headers
    assert old.get("/admin/window", headers=OPERATOR).json()["open"] is False  # none of them opened it
    for body in ({}, {"open": "yes"}, {"open": True, "also": 1}, [True]):
        assert old.post("/admin/window", json=body, headers=OPERATOR).status_code == 400
    assert old.post("/admin/window", content=b"{", headers=OPERATOR).status_code == 400


def test_without_an_operator_key_there_is_no_control(tmp_path: Path) -> None:
    with TestClient(create_app(config(tmp_path))) as client:
        assert client.get("/admin/window", headers=OPERATOR).status_code == 404
        assert client.post("/admin/window", json={"open": True}, headers=OPERATOR).status_code == 404


def test_the_refused_operations_are_the_contracts_writes() -> None:
    """WRITE_OPERATIONS is every service of contracts/riv that writes (and REST_WRITES legacy.yaml's non-GETs)."""
    services = tomllib.loads((CONTRACTS / "riv" / "services.toml").read_text(encoding="utf-8"))["operations"]
    assert {name for name, op in services.items() if op["writes"]} == WRITE_OPERATIONS
    spec = yaml.safe_load((CONTRACTS / "openapi" / "legacy-rest.yaml").read_text(encoding="utf-8"))
    non_get = {op["operationId"] for item in spec["paths"].values() for method, op in item.items()
               if method in ("post", "put", "patch", "delete")}
    assert non_get == REST_WRITES


def test_the_window_stays_open_across_a_restart(tmp_path: Path, ticket_key_file: Path,
                                                actors: dict[str, Any]) -> None:
    """`--admin-key-file` on the command line; the state is kept in the old store."""
    key_file = tmp_path / "operator.key"
    key_file.write_text(secrets.token_hex(32))
    operator = {"Authorization": f"Bearer {key_file.read_text()}"}
    ticket_key = ticket_key_file.read_text().strip().encode()
    prescriber = ticket("prescriber", actors, key=ticket_key)
    platform = start_platform("old", tmp_path / "data", ticket_key_file, extra=["--admin-key-file", str(key_file)])
    try:
        assert requests.post(f"{platform.base_url}/admin/window", json={"open": True}, headers=operator,
                             timeout=10).json()["open"] is True
    finally:
        platform.stop()
    platform = start_platform("old", tmp_path / "data", ticket_key_file, extra=["--admin-key-file", str(key_file)])
    try:
        assert requests.get(f"{platform.base_url}/admin/window", headers=operator, timeout=10).json()["open"] is True
        refused = requests.post(f"{platform.legacy}/ordinationer", json=NEW_PRESCRIPTION, headers=prescriber,
                                timeout=10)
        assert (refused.status_code, refused.json()["kod"]) == (503, "TJANSTEFEL")
        requests.post(f"{platform.base_url}/admin/window", json={"open": False}, headers=operator, timeout=10)
        assert requests.post(f"{platform.legacy}/ordinationer", json=NEW_PRESCRIPTION, headers=prescriber,
                             timeout=10).status_code == 201
    finally:
        platform.stop()


@pytest.mark.parametrize(("key", "which", "words"), [
    (None, "old", ("missing.key",)),
    (b"too-short", "old", ("shorter than 32",)),
    (KEY, "old", ("is the ticket key",)),
    (OPERATOR_KEY, "new", ("only the old platform",)),
])
def test_cli_admin_key_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], key: bytes | None,
                                 which: str, words: tuple[str, ...]) -> None:
    ticket_file, admin_file = tmp_path / "ticket.key", tmp_path / ("missing.key" if key is None else "admin.key")
    ticket_file.write_bytes(KEY)
    if key is not None:
        admin_file.write_bytes(key)
    result = run_main(capsys, "--platform", which, "--data-dir", str(tmp_path / "d"), "--ticket-key-file",
                      str(ticket_file), "--admin-key-file", str(admin_file), "--contracts", str(CONTRACTS))
    assert_bad_input(result, *words)
