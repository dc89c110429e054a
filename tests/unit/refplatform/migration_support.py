"""Reading test patients through both platforms' legacy interface, in process, at the handler level.

The migration tests compare what the old platform answers from its store with what the new
platform's transformer answers from the migrated FHIR store: the same handlers the wire calls,
without the wire, so the comparison holds whatever the wire becomes (REST today, SOAP next).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jwt
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from refplatform.common.config import PlatformConfig
from refplatform.common.faults import FaultSet
from refplatform.common.legacy import LegacyFault
from refplatform.common.tickets import Actor
from refplatform.new import transformer
from refplatform.new.core import FhirCore
from refplatform.old import app as old_app

from .conftest import CONTRACTS

KEY = b"0123456789abcdef0123456789abcdef"
AS_OF = datetime.now(ZoneInfo("Europe/Stockholm")).date()  # the day the test stores are seeded as of
PHARMACY = Actor(role="pharmacy", actor_id="pharmacy-1", gln="7350001000008")
# The legacy reads of one patient; what each answers (the body of the answer or of its fault).
READS = ("HamtaPatientInfo", "HamtaAktuellaOrdinationer", "HamtaOrdinationshistorik", "HamtaLakemedelsforteckning")
# The schema of each read's answer in contracts/openapi/legacy.yaml
ANSWER_SCHEMAS = {"HamtaPatientInfo": "Person", "HamtaAktuellaOrdinationer": "Ordinationslista",
                  "HamtaOrdinationshistorik": "Ordinationshistorik",
                  "HamtaLakemedelsforteckning": "Lakemedelsforteckning"}
Answer = tuple[int, Any]
Reads = dict[str, dict[str, Answer]]  # person -> operation -> answer


def subset(patients: list[dict[str, Any]]) -> list[str]:
    """30 consecutive personnummer patients and 12 samordningsnummer ones (the seed's cases cycle every 26)."""
    return [p["id"] for p in patients[:30]] + [p["id"] for p in patients if p["kind"] == "samordningsnummer"][:12]


def table(data_dir: Path, name: str, order: str = "rowid") -> list[dict[str, Any]]:
    """The rows of one table of the old store, as dicts."""
    conn = sqlite3.connect(data_dir / "old.sqlite")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {name} ORDER BY {order}")]
    finally:
        conn.close()


def ticket(role: str, actors: dict[str, Any], index: int = 0, key: bytes = KEY) -> dict[str, str]:
    """Headers with a ticket for a test actor, signed with `key` (default: the in-process platforms' key)."""
    now = int(time.time())
    if role == "prescriber":
        p = actors["prescribers"][index]
        claims = {"sub": p["id"], "role": role, "hsaId": p["hsaId"], "forskrivarkod": p["forskrivarkod"],
                  "arbetsplatskod": p["careUnit"]}
    else:
        ph = actors["pharmacies"][index]
        claims = {"sub": ph["id"], "role": role, "gln": ph["gln"]}
    claims |= {"iss": "rxverify-local", "iat": now, "exp": now + 600}
    return {"Authorization": "Bearer " + jwt.encode(claims, key, algorithm="HS256")}


def config(data_dir: Path, faults: list[str] | None = None, admin_key: bytes | None = None) -> PlatformConfig:
    """A platform configuration for in-process use."""
    return PlatformConfig(data_dir=data_dir, ticket_key=KEY, contracts=CONTRACTS, faults=FaultSet(faults or []),
                          admin_key=admin_key)


def _answer(call: Callable[[], Any]) -> Answer:
    """What a read handler answers (the binding-independent dict), as (REST status, body)."""
    try:
        result = call()
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
        return 200, json.loads(json.dumps(result))
    except LegacyFault as fault:
        return fault.status, {"kod": fault.kod, "meddelande": fault.meddelande}


async def _awaited(pending: Awaitable[Any]) -> Any:
    return await pending


def read_old(data_dir: Path, patients: list[str]) -> Reads:
    """Every read of every patient, answered by the old platform's handlers from its store."""
    p = old_app.OldPlatform(config(data_dir))
    handlers = {"HamtaPatientInfo": p.patient_info, "HamtaAktuellaOrdinationer": p.aktuella,
                "HamtaOrdinationshistorik": p.historik, "HamtaLakemedelsforteckning": p.lakemedelsforteckning}
    return {person: {op: _answer(lambda h=h, person=person: h(PHARMACY, {"personId": person}))
                     for op, h in handlers.items()} for person in patients}


def read_new(data_dir: Path, patients: list[str]) -> Reads:
    """Every read of every patient, answered by the new platform's transformer from its FHIR store."""
    t = transformer.Transformer(FhirCore(config(data_dir)))
    handlers = {"HamtaPatientInfo": t.hamta_patient_info, "HamtaAktuellaOrdinationer": t.hamta_aktuella,
                "HamtaOrdinationshistorik": t.hamta_historik,
                "HamtaLakemedelsforteckning": t.hamta_lakemedelsforteckning}
    return {person: {op: _answer(lambda h=h, person=person: h(PHARMACY, {"personId": person}))
                     for op, h in handlers.items()} for person in patients}


def differences(old: Reads, new: Reads) -> dict[str, list[str]]:
    """person -> the reads whose answers differ."""
    out: dict[str, list[str]] = {}
    for person, answers in old.items():
        differing = [op for op, answer in answers.items() if new.get(person, {}).get(op) != answer]
        if differing:
            out[person] = differing
    return out


@cache
def _spec(name: str) -> tuple[dict[str, Any], Registry[Any]]:
    import yaml

    spec = yaml.safe_load((CONTRACTS / "openapi" / name).read_text(encoding="utf-8"))
    return spec, Registry().with_resource("urn:contract", DRAFT202012.create_resource(spec))


@cache
def _validator(contract: str, schema: str) -> Draft202012Validator:
    _, registry = _spec(contract)
    return Draft202012Validator({"$ref": f"urn:contract#/components/schemas/{schema}"}, registry=registry)


def violations(contract: str, schema: str, instance: Any) -> list[str]:
    """What in `instance` breaks components/schemas/`schema` of contracts/openapi/`contract`."""
    validator = _validator(contract, schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(instance)]


def key_paths(node: Any, prefix: str = "") -> set[str]:
    """The shape of a JSON value: every key path, list positions as []."""
    if isinstance(node, dict):
        return {prefix} | {p for k, v in node.items() for p in key_paths(v, f"{prefix}.{k}" if prefix else k)}
    if isinstance(node, list):
        return {prefix} | {p for v in node for p in key_paths(v, prefix + "[]")}
    return {prefix}


def stockholm_date_differs_from_utc(instant: str) -> bool:
    """Whether a UTC instant's Stockholm calendar date is another day than its UTC date."""
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    return moment.astimezone(ZoneInfo("Europe/Stockholm")).date() != moment.date()


UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def run_main(capsys: Any, *args: str) -> Any:
    """`python -m refplatform ARGS` in this process (as fast as a function call): code, stdout, stderr."""
    import subprocess

    from refplatform.cli import main

    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's --help and usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)
