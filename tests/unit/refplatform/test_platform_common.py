"""Unit tests of the shared platform code: tickets, faults, request validation, the command line."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

import refplatform.old.app  # noqa: F401  (registers the old platform's faults)
from refplatform.common.faults import CATALOGUE, FaultSet, UnknownFault
from refplatform.common.tickets import TicketError, verify_ticket
from refplatform.common.validation import OpenApiValidator, RequestInvalid

ROOT = Path(__file__).resolve().parents[3]
KEY = b"0123456789abcdef0123456789abcdef"


def bearer(key: bytes = KEY, **claims: Any) -> str:
    now = int(time.time())
    base: dict[str, Any] = {"sub": "pharmacy-1", "role": "pharmacy", "gln": "7350001000008",
                            "iss": "rxverify-local", "iat": now, "exp": now + 600}
    base.update(claims)
    return "Bearer " + jwt.encode({k: v for k, v in base.items() if v is not None}, key, algorithm="HS256")


# -- tickets --------------------------------------------------------------------------------------

def test_ticket_valid_pharmacy_and_prescriber() -> None:
    actor = verify_ticket(bearer(), KEY)
    assert actor.role == "pharmacy" and actor.gln == "7350001000008" and actor.identifier == "7350001000008"
    actor = verify_ticket(bearer(role="prescriber", gln=None, hsaId="SE2321000016-P0001", forskrivarkod="1100000",
                                 arbetsplatskod="4000000"), KEY)
    assert actor.role == "prescriber" and actor.identifier == "SE2321000016-P0001"
    with pytest.raises(TicketError) as err:
        actor.require("pharmacy")
    assert err.value.status == 403


@pytest.mark.parametrize("header", [
    None, "", "Bearer ", "Basic abc", "Bearer not.a.jwt",
    bearer(key=b"another-key-another-key-another-key"),
    bearer(iat=int(time.time()) - 7200, exp=int(time.time()) - 60),
    bearer(iss="someone-else"),
    bearer(role="admin"),
    bearer(gln=None),
    bearer(role="prescriber", gln=None, hsaId="SE2321000016-P0001"),
    bearer(exp=None),
])
def test_ticket_rejected(header: str | None) -> None:
    with pytest.raises(TicketError) as err:
        verify_ticket(header, KEY)
    assert err.value.status == 401 and err.value.message


# -- faults ---------------------------------------------------------------------------------------

def test_faultset_rejects_unknown_names() -> None:
    with pytest.raises(UnknownFault, match="no-such-fault"):
        FaultSet(["no-such-fault"])
    faults = FaultSet(["old-history-omits-cancelled"])
    assert faults.on("old-history-omits-cancelled")
    assert not FaultSet().on("old-history-omits-cancelled")
    with pytest.raises(UnknownFault):
        faults.on("not-registered-anywhere")


def test_old_faults_registered() -> None:
    for name in ("old-history-omits-cancelled", "old-last-withdrawal-race", "old-slow-aktuella"):
        assert CATALOGUE[name].platform == "old"


# -- request validation ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def validator() -> OpenApiValidator:
    return OpenApiValidator(ROOT / "contracts" / "openapi" / "legacy-rest.yaml")


GOOD = {
    "personId": "191212121212",
    "lakemedel": {"nplPackId": "19990101100001", "namn": "Alvedon 500 mg tablett"},
    "doseringstext": "1 tablett 3 gånger dagligen",
    "antalForpackningar": 1,
    "antalUttag": 3,
    "forskrivningstyp": "ELEKTRONISK",
}


def create(validator: OpenApiValidator, body: bytes, content_type: str | None = "application/json") -> Any:
    return validator.validate("SkapaOrdinationVard", {}, {}, {}, body, content_type)


def test_validator_accepts_a_good_body(validator: OpenApiValidator) -> None:
    import json

    assert create(validator, json.dumps(dict(GOOD, giltigTom="2027-01-31")).encode()) == dict(
        GOOD, giltigTom="2027-01-31")


@pytest.mark.parametrize("body", [
    dict(GOOD, giltigTom="2027-02-30"),  # no such date
    dict(GOOD, giltigTom="31/01/2027"),
    dict(GOOD, personId="19121212121"),  # wrong pattern
    dict(GOOD, lakemedel={"nplPackId": "123", "namn": "x"}),
    dict(GOOD, antalUttag=0),
    dict(GOOD, extra=1),
    {k: v for k, v in GOOD.items() if k != "doseringstext"},
])
def test_validator_rejects_bad_bodies(validator: OpenApiValidator, body: dict[str, Any]) -> None:
    import json

    with pytest.raises(RequestInvalid) as err:
        create(validator, json.dumps(body).encode())
    assert err.value.status == 400 and err.value.message.startswith("body")


def test_validator_rejects_missing_body_bad_json_and_media_type(validator: OpenApiValidator) -> None:
    with pytest.raises(RequestInvalid, match="required"):
        create(validator, b"")
    with pytest.raises(RequestInvalid, match="JSON"):
        create(validator, b"{not json")
    with pytest.raises(RequestInvalid) as err:
        create(validator, b"{}", "text/plain")
    assert err.value.status == 415


def test_validator_checks_path_parameters(validator: OpenApiValidator) -> None:
    assert validator.validate("HamtaPatientInfo", {"personId": "191212121212"}, {}, {}, b"", None) is None
    for bad in ("1912121212", "19121212121a", "191213121212"):
        with pytest.raises(RequestInvalid, match="path personId"):
            validator.validate("HamtaPatientInfo", {"personId": bad}, {}, {}, b"", None)
    with pytest.raises(RequestInvalid):
        validator.validate("MakuleraOrdination", {"ordinationId": "ABC"}, {}, {}, b'{"orsak": "OVRIGT"}',
                           "application/json")


# -- the command line -----------------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "refplatform", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def assert_bad_input(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    for word in words:
        assert word in lines[0]


@pytest.fixture()
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "ticket.key"
    path.write_bytes(KEY)
    return path


def test_cli_unknown_fault(tmp_path: Path, key_file: Path) -> None:
    result = run_cli("--platform", "old", "--data-dir", str(tmp_path / "d"), "--ticket-key-file", str(key_file),
                     "--fault", "no-such-fault")
    assert_bad_input(result, "no-such-fault")


def test_cli_busy_port(tmp_path: Path, key_file: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_cli("--platform", "old", "--data-dir", str(tmp_path / "d"), "--ticket-key-file", str(key_file),
                         "--port", str(port))
    assert_bad_input(result, "busy")


def test_cli_unreadable_key_file(tmp_path: Path) -> None:
    result = run_cli("--platform", "old", "--data-dir", str(tmp_path / "d"), "--ticket-key-file",
                     str(tmp_path / "missing.key"))
    assert_bad_input(result, "missing.key")


def test_cli_short_key(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_text("too-short")
    result = run_cli("--platform", "old", "--data-dir", str(tmp_path / "d"), "--ticket-key-file", str(short))
    assert_bad_input(result, "shorter")


def test_cli_non_loopback_host(tmp_path: Path, key_file: Path) -> None:
    result = run_cli("--platform", "old", "--data-dir", str(tmp_path / "d"), "--ticket-key-file", str(key_file),
                     "--host", "0.0.0.0")
    assert_bad_input(result, "loopback")


@pytest.mark.parametrize("which", ["old", "new"])
@pytest.mark.parametrize(("damage", "named"), [
    ("services.toml", "services.toml"),
    ("core_components/se.apotekensservice_or_1.0.xsd", "cannot compile"),
])
def test_cli_broken_service_contract(which: str, damage: str, named: str, tmp_path: Path, key_file: Path) -> None:
    """A broken file of contracts/riv stops the platform with one line naming it, exit 2."""
    contracts = tmp_path / "contracts"
    shutil.copytree(ROOT / "contracts", contracts)
    (contracts / "riv" / damage).write_text("<not [valid", encoding="utf-8")
    result = run_cli("--platform", which, "--data-dir", str(tmp_path / "d"), "--ticket-key-file", str(key_file),
                     "--contracts", str(contracts))
    assert_bad_input(result, named)
