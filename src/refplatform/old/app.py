"""The old platform (STP stand-in): the legacy interface under `/legacy` on its own SQLite store.

Behaviour follows the service contracts (contracts/riv, served as SOAP) and their REST rendering
(contracts/openapi/legacy.yaml); the new platform's transformer must answer identically.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import refplatform
from refplatform.common import faults
from refplatform.common.config import PlatformConfig
from refplatform.common.legacy import Handler, LegacyFault, LegacyOperation, answer
from refplatform.common.rest import fault_response, rest_routes
from refplatform.common.riv import load_riv
from refplatform.common.soap import SoapFault
from refplatform.common.soap_binding import SoapBinding
from refplatform.common.store import Store
from refplatform.common.testdata import load_seed
from refplatform.common.tickets import Actor, read_actor
from refplatform.common.validation import OpenApiValidator
from refplatform.old.window import REFUSAL_KOD, REFUSAL_MESSAGE, REFUSAL_STATUS, ServiceWindow, window_routes

PLATFORM = "old"
PRODUCT = "STP (Receptdepå human / Läkemedelsförteckningen, reference stand-in)"
RELEASE = "21.0"
STOCKHOLM = ZoneInfo("Europe/Stockholm")
DEFAULT_VALIDITY = {"ELEKTRONISK": 366, "TELEFON": 14}
MAX_VALIDITY_DAYS = 366

FAULT_HISTORY_OMITS_CANCELLED = faults.register(
    "old-history-omits-cancelled", "old", "behaviour",
    "HamtaOrdinationshistorik leaves out cancelled (Makulerad) prescriptions",
).name
FAULT_LAST_WITHDRAWAL_RACE = faults.register(
    "old-last-withdrawal-race", "old", "behaviour",
    "GodkannUttag checks and writes in separate transactions: racing pharmacies can both take the last withdrawal",
).name
FAULT_SLOW_CURRENT = faults.register(
    "old-slow-aktuella", "old", "performance",
    "HamtaAktuellaOrdinationer waits 300 ms before answering",
).name
# blind batch (written without reading the suite)
FAULT_IDENTITY_KIND_DAY_70 = faults.register(
    "old-identity-kind-from-day-70", "old", "behaviour",
    "[data: samordningsnummer, day 61-69] HamtaPatientInfo on the old platform tells a samordningsnummer by the "
    "day's tens digit 7 to 9: samordningsnummer with day 61 to 69 come out as identitetstyp PERSONNUMMER",
).name
FIRST_SAMORDNINGSNUMMER_DAY = 61  # day of birth + 60
FAULTY_FIRST_SAMORDNINGSNUMMER_DAY = 70  # old-identity-kind-from-day-70

SCHEMA = """
CREATE TABLE IF NOT EXISTS patient (
    person_id TEXT PRIMARY KEY,
    fornamn TEXT NOT NULL,
    efternamn TEXT NOT NULL,
    fodelsedatum TEXT NOT NULL,
    samtycke INTEGER NOT NULL DEFAULT 0,
    samtycke_andrad TEXT
);
CREATE TABLE IF NOT EXISTS ordination (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ordination_id TEXT NOT NULL UNIQUE,
    person_id TEXT NOT NULL REFERENCES patient(person_id),
    status TEXT NOT NULL,
    utfardandedatum TEXT NOT NULL,
    utfardad TEXT,                -- the instant it was registered (UTC); the interface shows only its date
    giltig_tom TEXT NOT NULL,
    npl_pack_id TEXT NOT NULL,
    lakemedel_namn TEXT NOT NULL,
    doseringstext TEXT NOT NULL,
    antal_forpackningar INTEGER NOT NULL,
    antal_uttag INTEGER NOT NULL,
    uttag_kvar INTEGER NOT NULL,
    forskrivningstyp TEXT NOT NULL,
    hsa_id TEXT NOT NULL,
    forskrivarkod TEXT NOT NULL,
    arbetsplatskod TEXT NOT NULL,
    makuleringsorsak TEXT,
    makuleringskommentar TEXT,
    senast_andrad TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ordination_by_person ON ordination(person_id, seq);
CREATE TABLE IF NOT EXISTS expeditionsid (
    expeditions_id TEXT PRIMARY KEY,
    apotek_gln TEXT NOT NULL,
    reserverad TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS uttag (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    uttag_id TEXT NOT NULL UNIQUE,
    ordination_id TEXT NOT NULL REFERENCES ordination(ordination_id),
    expeditions_id TEXT NOT NULL,
    apotek_gln TEXT NOT NULL,
    antal_forpackningar INTEGER NOT NULL,
    tidpunkt TEXT NOT NULL,
    uttag_kvar INTEGER NOT NULL,
    ordinationsstatus TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uttag_by_ordination ON uttag(ordination_id, seq);
CREATE TABLE IF NOT EXISTS lf_post (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    rapport_id TEXT NOT NULL UNIQUE,
    person_id TEXT NOT NULL REFERENCES patient(person_id),
    ordination_id TEXT NOT NULL REFERENCES ordination(ordination_id),
    expeditions_id TEXT NOT NULL,
    npl_pack_id TEXT NOT NULL,
    lakemedel_namn TEXT NOT NULL,
    doseringstext TEXT,
    antal_forpackningar INTEGER NOT NULL,
    expedierad TEXT NOT NULL,
    apotek_gln TEXT NOT NULL,
    registrerad TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lf_post_by_person ON lf_post(person_id, seq);
CREATE INDEX IF NOT EXISTS lf_post_by_ordination ON lf_post(ordination_id, expeditions_id);
"""


def now_instant() -> str:
    """The current UTC instant, ISO 8601 with milliseconds and Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def today() -> date:
    """The current calendar date in Europe/Stockholm."""
    return datetime.now(STOCKHOLM).date()


def luhn_ok(person_id: str) -> bool:
    """Luhn check (weights 2,1) over the 10-digit form of a 12-digit identity."""
    digits = person_id[2:]
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(digits[:9]):
        product = int(ch) * (2 if i % 2 == 0 else 1)
        total += product // 10 + product % 10
    return (10 - total % 10) % 10 == int(digits[9])


def identity_kind(person_id: str, first_day: int = FIRST_SAMORDNINGSNUMMER_DAY) -> str:
    day = int(person_id[6:8])
    return "SAMORDNINGSNUMMER" if first_day <= day <= 91 else "PERSONNUMMER"


def ordination_json(row: sqlite3.Row) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ordinationId": row["ordination_id"],
        "personId": row["person_id"],
        "status": row["status"],
        "utfardandedatum": row["utfardandedatum"],
        "giltigTom": row["giltig_tom"],
        "lakemedel": {"nplPackId": row["npl_pack_id"], "namn": row["lakemedel_namn"]},
        "doseringstext": row["doseringstext"],
        "antalForpackningar": row["antal_forpackningar"],
        "antalUttag": row["antal_uttag"],
        "uttagKvar": row["uttag_kvar"],
        "forskrivningstyp": row["forskrivningstyp"],
        "forskrivare": {
            "hsaId": row["hsa_id"],
            "forskrivarkod": row["forskrivarkod"],
            "arbetsplatskod": row["arbetsplatskod"],
        },
        "senastAndrad": row["senast_andrad"],
    }
    if row["makuleringsorsak"] is not None:
        out["makuleringsorsak"] = row["makuleringsorsak"]
    return out


def uttag_json(row: sqlite3.Row, person_id: str) -> dict[str, Any]:
    return {
        "uttagId": row["uttag_id"],
        "ordinationId": row["ordination_id"],
        "personId": person_id,
        "expeditionsId": row["expeditions_id"],
        "apotekGln": row["apotek_gln"],
        "antalForpackningar": row["antal_forpackningar"],
        "tidpunkt": row["tidpunkt"],
        "uttagKvar": row["uttag_kvar"],
        "ordinationsstatus": row["ordinationsstatus"],
    }


class OldPlatform:
    """The old platform's state and its legacy operations."""

    def __init__(self, config: PlatformConfig) -> None:
        self.config = config
        self.validator = OpenApiValidator(config.contracts / "openapi" / "legacy-rest.yaml")
        self.store = Store(config.data_dir / "old.sqlite", SCHEMA)
        if "utfardad" not in {c["name"] for c in self.store.conn().execute("PRAGMA table_info(ordination)")}:
            self.store.conn().execute("ALTER TABLE ordination ADD COLUMN utfardad TEXT")  # a store from before it
        self.window = ServiceWindow(self.store)
        seed = load_seed(config.contracts)
        self.active_units = frozenset(u["arbetsplatskod"] for u in seed.care_units if u.get("active"))
        with self.store.write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO patient (person_id, fornamn, efternamn, fodelsedatum, samtycke)"
                " VALUES (?, ?, ?, ?, 0)",
                [(p["id"], p["givenName"], p["familyName"], p["birthDate"]) for p in seed.patients],
            )

    # -- plumbing ---------------------------------------------------------------------------

    def read_actor(self, operation: str, http_headers: Any, envelope: Any) -> Actor:
        """The caller, from the ticket (REST and SOAP alike)."""
        return read_actor(http_headers, envelope, self.config.ticket_key)

    def in_window(self, operation: str, handler: Handler) -> Handler:
        """`handler`, refused while the service window is open if `operation` writes (after ticket, request, role)."""

        async def run(actor: Actor, call: dict[str, Any]) -> Any:
            if self.window.refuses(operation):
                raise LegacyFault(REFUSAL_STATUS, REFUSAL_KOD, REFUSAL_MESSAGE)
            return await answer(handler, actor, call)

        return run

    def patient(self, person_id: str) -> sqlite3.Row:
        row = None
        if luhn_ok(person_id):
            row = self.store.conn().execute("SELECT * FROM patient WHERE person_id = ?", (person_id,)).fetchone()
        if row is None:
            raise LegacyFault(404, "PATIENT_SAKNAS", "patienten finns inte (okänd identitet eller fel kontrollsiffra)")
        return row

    @staticmethod
    def ordination(conn: sqlite3.Connection, ordination_id: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM ordination WHERE ordination_id = ?", (ordination_id,)).fetchone()
        if row is None:
            raise LegacyFault(404, "ORDINATION_SAKNAS", "ordinationen finns inte")
        return row

    # -- operations -------------------------------------------------------------------------

    async def skapa_ordination(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        person_id = call["personId"]
        self.patient(person_id)
        registered = now_instant()
        issued = datetime.fromisoformat(registered).astimezone(STOCKHOLM).date()  # the date of that very instant
        if "giltigTom" in call:
            valid_to = date.fromisoformat(call["giltigTom"])
            if valid_to < issued or valid_to > issued + timedelta(days=MAX_VALIDITY_DAYS):
                raise LegacyFault(
                    422, "OGILTIG_GILTIGHETSTID",
                    f"giltigTom måste ligga mellan {issued.isoformat()} och "
                    f"{(issued + timedelta(days=MAX_VALIDITY_DAYS)).isoformat()}",
                )
        else:
            valid_to = issued + timedelta(days=DEFAULT_VALIDITY[call["forskrivningstyp"]])
        ordination_id = str(uuid.uuid4())
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO ordination (ordination_id, person_id, status, utfardandedatum, utfardad, giltig_tom,"
                " npl_pack_id, lakemedel_namn, doseringstext, antal_forpackningar, antal_uttag, uttag_kvar,"
                " forskrivningstyp, hsa_id, forskrivarkod, arbetsplatskod, senast_andrad)"
                " VALUES (?, ?, 'Aktiv', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ordination_id, person_id, issued.isoformat(), registered, valid_to.isoformat(),
                    call["lakemedel"]["nplPackId"], call["lakemedel"]["namn"], call["doseringstext"],
                    call["antalForpackningar"], call["antalUttag"], call["antalUttag"], call["forskrivningstyp"],
                    actor.hsa_id, actor.forskrivarkod, actor.arbetsplatskod, registered,
                ),
            )
            row = self.ordination(conn, ordination_id)
        return ordination_json(row)

    async def makulera(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        ordination_id = call["ordinationId"]
        with self.store.write() as conn:
            row = self.ordination(conn, ordination_id)
            if row["status"] not in ("Aktiv", "Parkerad"):
                raise LegacyFault(409, "EJ_MAKULERBAR", f"en ordination med status {row['status']} kan inte makuleras")
            conn.execute(
                "UPDATE ordination SET status = 'Makulerad', makuleringsorsak = ?, makuleringskommentar = ?,"
                " senast_andrad = ? WHERE ordination_id = ?",
                (call["orsak"], call.get("kommentar"), now_instant(), ordination_id),
            )
            row = self.ordination(conn, ordination_id)
        return ordination_json(row)

    async def patient_info(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        row = self.patient(call["personId"])
        return {
            "personId": row["person_id"],
            "identitetstyp": identity_kind(row["person_id"], FAULTY_FIRST_SAMORDNINGSNUMMER_DAY
                                           if self.config.faults.on(FAULT_IDENTITY_KIND_DAY_70)
                                           else FIRST_SAMORDNINGSNUMMER_DAY),
            "fornamn": row["fornamn"],
            "efternamn": row["efternamn"],
            "fodelsedatum": row["fodelsedatum"],
            "samtycke": bool(row["samtycke"]),
        }

    async def aktuella(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        if self.config.faults.on(FAULT_SLOW_CURRENT):
            await asyncio.sleep(0.3)
        person_id = call["personId"]
        self.patient(person_id)
        rows = self.store.conn().execute(
            "SELECT * FROM ordination WHERE person_id = ? AND status IN ('Aktiv', 'Parkerad') AND giltig_tom >= ?"
            " ORDER BY seq DESC",
            (person_id, today().isoformat()),
        ).fetchall()
        return {"personId": person_id, "ordinationer": [ordination_json(r) for r in rows]}

    async def historik(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        person_id = call["personId"]
        self.patient(person_id)
        conn = self.store.conn()
        rows = conn.execute("SELECT * FROM ordination WHERE person_id = ? ORDER BY seq DESC", (person_id,)).fetchall()
        if self.config.faults.on(FAULT_HISTORY_OMITS_CANCELLED):
            rows = [r for r in rows if r["status"] != "Makulerad"]
        withdrawals: dict[str, list[dict[str, Any]]] = {r["ordination_id"]: [] for r in rows}
        if rows:
            for u in conn.execute(
                "SELECT u.* FROM uttag u JOIN ordination o ON o.ordination_id = u.ordination_id"
                " WHERE o.person_id = ? ORDER BY u.seq ASC",
                (person_id,),
            ):
                if u["ordination_id"] in withdrawals:
                    withdrawals[u["ordination_id"]].append(uttag_json(u, person_id))
        return {
            "personId": person_id,
            "ordinationer": [
                {"ordination": ordination_json(r), "uttag": withdrawals[r["ordination_id"]]} for r in rows
            ],
        }

    async def expeditions_id(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        ids = [str(uuid.uuid4()) for _ in range(call["antal"])]
        stamp = now_instant()
        with self.store.write() as conn:
            conn.executemany(
                "INSERT INTO expeditionsid (expeditions_id, apotek_gln, reserverad) VALUES (?, ?, ?)",
                [(i, actor.gln, stamp) for i in ids],
            )
        return {"expeditionsIdn": ids}

    def _check_withdrawal(self, conn: sqlite3.Connection, ordination_id: str, actor: Actor,
                          call: dict[str, Any]) -> sqlite3.Row:
        row = self.ordination(conn, ordination_id)
        expeditions_id = call["expeditionsId"]
        if conn.execute(
            "SELECT 1 FROM expeditionsid WHERE expeditions_id = ? AND apotek_gln = ?", (expeditions_id, actor.gln)
        ).fetchone() is None:
            raise LegacyFault(409, "OKANT_EXPEDITIONSID", "expeditionsId är inte reserverat av detta apotek")
        status = row["status"]
        if status == "Makulerad":
            raise LegacyFault(409, "MAKULERAD", "ordinationen är makulerad")
        if status == "Slutexpedierad" or row["uttag_kvar"] == 0:
            raise LegacyFault(409, "SLUTEXPEDIERAD", "ordinationen är slutexpedierad: inga uttag kvar")
        if status == "Avslutad":
            raise LegacyFault(409, "KONFLIKT", "ordinationen är avslutad")
        if row["giltig_tom"] < today().isoformat():
            raise LegacyFault(409, "UTGANGEN", f"ordinationen gällde till och med {row['giltig_tom']}")
        if call["antalForpackningar"] > row["antal_forpackningar"]:
            raise LegacyFault(
                409, "FOR_MANGA_FORPACKNINGAR",
                f"högst {row['antal_forpackningar']} förpackningar per uttag",
            )
        if conn.execute(
            "SELECT 1 FROM uttag WHERE ordination_id = ? AND expeditions_id = ?", (ordination_id, expeditions_id)
        ).fetchone() is not None:
            raise LegacyFault(409, "KONFLIKT", "expeditionsId är redan använt för ett uttag på denna ordination")
        return row

    def _record_withdrawal(
        self, conn: sqlite3.Connection, row: sqlite3.Row, actor: Actor, call: dict[str, Any], uttag_kvar: int
    ) -> dict[str, Any]:
        stamp = now_instant()
        status = "Slutexpedierad" if uttag_kvar == 0 else row["status"]
        uttag_id = str(uuid.uuid4())
        conn.execute(
            "INSERT INTO uttag (uttag_id, ordination_id, expeditions_id, apotek_gln, antal_forpackningar, tidpunkt,"
            " uttag_kvar, ordinationsstatus) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (uttag_id, row["ordination_id"], call["expeditionsId"], actor.gln, call["antalForpackningar"], stamp,
             uttag_kvar, status),
        )
        conn.execute(
            "UPDATE ordination SET uttag_kvar = ?, status = ?, senast_andrad = ? WHERE ordination_id = ?",
            (uttag_kvar, status, stamp, row["ordination_id"]),
        )
        return {
            "uttagId": uttag_id,
            "ordinationId": row["ordination_id"],
            "personId": row["person_id"],
            "expeditionsId": call["expeditionsId"],
            "apotekGln": actor.gln,
            "antalForpackningar": call["antalForpackningar"],
            "tidpunkt": stamp,
            "uttagKvar": uttag_kvar,
            "ordinationsstatus": status,
        }

    async def godkann_uttag(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        ordination_id = call["ordinationId"]
        if self.config.faults.on(FAULT_LAST_WITHDRAWAL_RACE):
            # The seeded regression: check, yield to other requests, then write from the stale read.
            with self.store.write() as conn:
                row = self._check_withdrawal(conn, ordination_id, actor, call)
            await asyncio.sleep(0.05)
            with self.store.write() as conn:
                result = self._record_withdrawal(conn, row, actor, call, max(row["uttag_kvar"] - 1, 0))
            return result
        # One write transaction for the whole check-and-write, with no await inside it.
        with self.store.write() as conn:
            row = self._check_withdrawal(conn, ordination_id, actor, call)
            result = self._record_withdrawal(conn, row, actor, call, row["uttag_kvar"] - 1)
        return result

    async def rapportera_lf(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        ordination_id = call["ordinationId"]
        expeditions_id = call["expeditionsId"]
        with self.store.write() as conn:
            row = self.ordination(conn, ordination_id)
            if row["person_id"] != call["personId"]:
                raise LegacyFault(409, "KONFLIKT", "personId stämmer inte med ordinationens patient")
            if conn.execute(
                "SELECT 1 FROM expeditionsid WHERE expeditions_id = ? AND apotek_gln = ?", (expeditions_id, actor.gln)
            ).fetchone() is None:
                raise LegacyFault(409, "OKANT_EXPEDITIONSID", "expeditionsId är inte reserverat av detta apotek")
            if conn.execute(
                "SELECT 1 FROM lf_post WHERE ordination_id = ? AND expeditions_id = ?", (ordination_id, expeditions_id)
            ).fetchone() is not None:
                raise LegacyFault(409, "KONFLIKT", "expeditionen är redan rapporterad för denna ordination")
            rapport_id = str(uuid.uuid4())
            stamp = now_instant()
            conn.execute(
                "INSERT INTO lf_post (rapport_id, person_id, ordination_id, expeditions_id, npl_pack_id,"
                " lakemedel_namn, doseringstext, antal_forpackningar, expedierad, apotek_gln, registrerad)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rapport_id, row["person_id"], ordination_id, expeditions_id, row["npl_pack_id"],
                 row["lakemedel_namn"], row["doseringstext"], call["antalForpackningar"], stamp, actor.gln, stamp),
            )
        return {"rapportId": rapport_id, "expeditionsId": expeditions_id, "personId": row["person_id"],
                "ordinationId": ordination_id, "registrerad": stamp}

    async def uppdatera_samtycke(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        person_id = call["personId"]
        self.patient(person_id)
        stamp = now_instant()
        with self.store.write() as conn:
            conn.execute(
                "UPDATE patient SET samtycke = ?, samtycke_andrad = ? WHERE person_id = ?",
                (1 if call["samtycke"] else 0, stamp, person_id),
            )
        return {"personId": person_id, "samtycke": bool(call["samtycke"]), "andrad": stamp}

    async def lakemedelsforteckning(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        person_id = call["personId"]
        patient = self.patient(person_id)
        if not patient["samtycke"]:
            raise LegacyFault(
                403, "SAMTYCKE_SAKNAS", "patienten har inte samtyckt till åtkomst till läkemedelsförteckningen"
            )
        rows = self.store.conn().execute(
            "SELECT * FROM lf_post WHERE person_id = ? ORDER BY seq DESC", (person_id,)
        ).fetchall()
        poster = []
        for r in rows:
            post: dict[str, Any] = {
                "rapportId": r["rapport_id"],
                "ordinationId": r["ordination_id"],
                "expeditionsId": r["expeditions_id"],
                "lakemedel": {"nplPackId": r["npl_pack_id"], "namn": r["lakemedel_namn"]},
                "antalForpackningar": r["antal_forpackningar"],
                "expedierad": r["expedierad"],
                "apotekGln": r["apotek_gln"],
            }
            if r["doseringstext"] is not None:
                post["doseringstext"] = r["doseringstext"]
            poster.append(post)
        return {"personId": person_id, "poster": poster}

    async def kontrollera_arbetsplatskod(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        code = call["arbetsplatskod"]
        return {"arbetsplatskod": code, "giltig": code in self.active_units}


PRESCRIBER, PHARMACY = ("prescriber",), ("pharmacy",)
BOTH = ("prescriber", "pharmacy")


def operations(p: OldPlatform) -> dict[str, LegacyOperation]:
    """The legacy operations by service name (contracts/riv/services.toml); writes refused while the window is open."""
    return {name: LegacyOperation(op.roles, p.in_window(name, op.handler)) for name, op in {
        "SkapaOrdinationVard": LegacyOperation(PRESCRIBER, p.skapa_ordination),
        "MakuleraOrdinationVard": LegacyOperation(PRESCRIBER, p.makulera),
        "MakuleraOrdinationApotek": LegacyOperation(PHARMACY, p.makulera),
        "HamtaPatientInfo": LegacyOperation(BOTH, p.patient_info),
        "HamtaAktuellaOrdinationer": LegacyOperation(BOTH, p.aktuella),
        "HamtaOrdinationshistorik": LegacyOperation(BOTH, p.historik),
        "HamtaExpeditionsId": LegacyOperation(PHARMACY, p.expeditions_id),
        "GodkannUttag": LegacyOperation(PHARMACY, p.godkann_uttag),
        "RapporteraExpeditionLF": LegacyOperation(PHARMACY, p.rapportera_lf),
        "UppdateraSamtycke": LegacyOperation(BOTH, p.uppdatera_samtycke),
        "HamtaLakemedelsforteckning": LegacyOperation(BOTH, p.lakemedelsforteckning),
        "KontrolleraArbetsplatskod": LegacyOperation(BOTH, p.kontrollera_arbetsplatskod),
    }.items()}


def create_app(config: PlatformConfig) -> Starlette:
    """The old platform's ASGI application: the legacy interface as SOAP, and its REST rendering."""
    p = OldPlatform(config)
    ops = operations(p)
    soap = SoapBinding(load_riv(config.contracts), ops, p.read_actor)

    async def status(request: Request) -> Response:
        return JSONResponse(
            {"platform": PLATFORM, "product": PRODUCT, "release": RELEASE, "version": refplatform.__version__}
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = exc.detail if exc.status_code != 404 else f"okänd resurs: {request.url.path}"
        if soap.serves(request.url.path):
            # a method the endpoint does not take: a Client fault, as every other refusal there
            return soap.fault(SoapFault("Client", str(message)), exc.status_code, exc.headers)
        return fault_response(exc.status_code, "FELAKTIG_BEGARAN", str(message), headers=exc.headers)

    routes = [
        Route("/status", status, methods=["GET"]),
        *rest_routes("/legacy", ops, p.validator, p.read_actor),
        *soap.routes(),
    ]
    if config.admin_key is not None:
        routes += window_routes(p.window, config.admin_key)
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
