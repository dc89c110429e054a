"""The FHIR core of the new platform: a resource store on SQLite and the service functions on it.

Resources are kept as JSON text with index columns for search. The HTTP handlers (fhir_api) and
the transformer (legacy interface) both call these functions; nothing writes resources around them.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from refplatform.common.config import PlatformConfig
from refplatform.common.faults import register
from refplatform.common.store import Store
from refplatform.common.testdata import load_seed
from refplatform.common.tickets import Actor
from refplatform.new import timefmt

# Systems and codes (contracts/mapping/legacy-fhir.yaml, DOMAIN.md).
PERSONNUMMER = "http://electronichealth.se/identifier/personnummer"
SAMORDNINGSNUMMER = "http://electronichealth.se/identifier/samordningsnummer"
PATIENT_SYSTEMS = (PERSONNUMMER, SAMORDNINGSNUMMER)
PRESCRIPTION_ID = "http://electronichealth.se/identifier/nllmedicationrequestid"
DISPENSING_ID = "http://electronichealth.se/identifier/nlldispensingid"
NPL_PACK_ID = "http://electronichealth.se/identifier/nplpackid"
HSA_ID = "urn:oid:1.2.752.29.4.19"
PRESCRIBER_CODE = "urn:oid:1.2.752.116.3.1.2"
GLN = "urn:oid:1.3.88"
WORKPLACE_CODE_EXT = "http://electronichealth.se/fhir/StructureDefinition/nll-workplace-code"
PRESCRIPTION_FORMAT = "http://electronichealth.se/fhir/CodeSystem/nll-prescription-format"
CANCELLATION_REASON = "http://electronichealth.se/fhir/CodeSystem/nll-cancellation-reason"
NLL_TAGS = "http://electronichealth.se/fhir/CodeSystem/nll-tags"
REPORTED_TO_LF = "reported-to-lf"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
DEFAULT_VALIDITY_DAYS = 366  # DOMAIN.md: issue date + 366 days when no validity is given

FAULT_WRONG_IDENTIFIER_SYSTEM = register(
    "core-wrong-prescription-identifier-system", "new", "fhir-conformance",
    "the core gives new MedicationRequests their identifier under a wrong system "
    "(.../identifier/medicationrequestid instead of .../nllmedicationrequestid)",
).name
FAULT_CANCELLED_WITHDRAWABLE = register(
    "core-cancelled-withdrawable", "new", "behaviour",
    "the core's withdrawal rules forget the cancelled status: a cancelled (Makulerad) prescription can still be "
    "withdrawn",
).name
FAULT_PACKAGES_NOT_CHECKED = register(
    "core-packages-not-checked", "new", "behaviour",
    "the core no longer compares a withdrawal's packages with the prescribed antalForpackningar "
    "(no FOR_MANGA_FORPACKNINGAR / too-many-packages)",
).name
# blind batch (written without reading the suite): subtler regressions of the kinds a migration ships
FAULT_INDEX_SAMORDNINGSNUMMER = register(
    "core-index-samordningsnummer-as-personnummer", "new", "fhir-conformance",
    "[data: samordningsnummer] the core's search index records every patient under the personnummer system: a "
    "search by patient-identifier with the samordningsnummer system finds nothing (the resources are right)",
).name
FAULT_EXPIRES_ON_LAST_DAY = register(
    "core-expires-on-last-day", "new", "behaviour",
    "[off by one: last day of validity] the core's withdrawal rules treat the validity end date as already "
    "passed: a withdrawal on the giltigTom day itself is refused as expired (409 UTGANGEN)",
).name
FAULT_LAST_WITHDRAWAL_STAYS_ACTIVE = register(
    "core-last-withdrawal-stays-active", "new", "behaviour",
    "[off by one: the last allowed withdrawal] the core completes a prescription only when more withdrawals than "
    "allowed were taken: after the last one uttagKvar is 0 but the status stays active (Aktiv, not Slutexpedierad)",
).name
FAULT_UPDATE_WITHOUT_PROVENANCE = register(
    "core-update-without-provenance", "new", "fhir-conformance",
    "[Provenance not written] the core's audit hook runs on inserts only: changes of a stored resource "
    "(cancellation, the status and lastUpdated a withdrawal sets) get no Provenance (activity UPDATE)",
).name
FAULT_WITHDRAWAL_KEEPS_VERSION = register(
    "core-withdrawal-keeps-version", "new", "fhir-conformance",
    "[version not written] a withdrawal's change of its MedicationRequest (lastUpdated, status) keeps "
    "meta.versionId: the prescription changes under the same version (and ETag)",
).name
WRONG_PRESCRIPTION_ID = "http://electronichealth.se/identifier/medicationrequestid"  # the faulty system

MR_STATUSES = ("active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown")
MD_STATUSES = ("preparation", "in-progress", "cancelled", "on-hold", "completed", "entered-in-error",
               "stopped", "declined", "unknown")
CONSENT_STATUSES = ("active", "inactive")  # profile NLLConsent
PROFILES = {
    "MedicationRequest": "http://electronichealth.se/fhir/StructureDefinition/NLLMedicationRequest",
    "MedicationDispense": "http://electronichealth.se/fhir/StructureDefinition/NLLMedicationDispense",
    "Consent": "http://electronichealth.se/fhir/StructureDefinition/NLLConsent",
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- insertion sequence (creation order)
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    patient_system TEXT,
    patient_value TEXT,
    status TEXT,
    authored_on TEXT,                        -- UTC instant, sortable
    prescription TEXT,                       -- MedicationRequest id a dispensing is authorised by
    target TEXT,                             -- Type/id a Provenance is about
    withdrawal INTEGER NOT NULL DEFAULT 0,   -- a completed dispensing not tagged reported-to-lf
    reported INTEGER NOT NULL DEFAULT 0,     -- a dispensing tagged reported-to-lf
    json TEXT NOT NULL,
    UNIQUE (type, id)
);
CREATE INDEX IF NOT EXISTS resources_patient ON resources (type, patient_value, seq);
CREATE INDEX IF NOT EXISTS resources_prescription ON resources (prescription, type);
CREATE INDEX IF NOT EXISTS resources_target ON resources (target);
CREATE TABLE IF NOT EXISTS identifiers (
    type TEXT NOT NULL, id TEXT NOT NULL, system TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (type, system, value, id)
);
CREATE INDEX IF NOT EXISTS identifiers_value ON identifiers (type, value);
CREATE TABLE IF NOT EXISTS patients (
    person_id TEXT PRIMARY KEY, given_name TEXT NOT NULL, family_name TEXT NOT NULL, birth_date TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS care_units (arbetsplatskod TEXT PRIMARY KEY, active INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reserved_dispensing_ids (
    dispensing_id TEXT PRIMARY KEY, gln TEXT NOT NULL, reserved TEXT NOT NULL
);
"""


class CoreError(Exception):
    """A refusal of the core; `status` and `code` become an OperationOutcome."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, rule: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule


class Invalid(CoreError):
    """The resource is malformed (400)."""


class NotFound(CoreError):
    """No such resource (404)."""

    status = 404
    code = "not-found"


class BusinessRule(CoreError):
    """A well-formed request a business rule refuses (422); `rule` names which one."""

    status = 422
    code = "business-rule"


class Conflict(BusinessRule):
    """The referenced prescription's state does not allow this (409, fhir.yaml MedicationDispense.create)."""

    status = 409
    code = "conflict"


@dataclass(frozen=True)
class Page:
    """One page of search results: the total and the resources' JSON texts."""

    total: int
    items: list[tuple[str, str]]  # (id, JSON text)


def luhn_ok(person_id: str) -> bool:
    """Whether the check digit of a 12-digit identity is right (Luhn, weights 2,1 over 10 digits)."""
    digits = person_id[2:]
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(digits[:9]):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return (10 - total % 10) % 10 == int(digits[9])


def identity_system(person_id: str) -> str:
    """The identifier system of a 12-digit personId: samordningsnummer when the day is 61..91."""
    day = int(person_id[6:8]) if person_id[6:8].isdigit() else 0
    return SAMORDNINGSNUMMER if 61 <= day <= 91 else PERSONNUMMER


def reference_id(reference: str | None, rtype: str) -> str | None:
    """The id in a reference to `rtype` ("MedicationRequest/x", a full URL or a bare id)."""
    if not reference:
        return None
    parts = reference.rstrip("/").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) == 1:
        return parts[0]
    if parts[-2] != rtype:
        return None
    return parts[-1]


def has_tag(resource: dict[str, Any], system: str, code: str) -> bool:
    """Whether meta.tag holds system|code."""
    return any(t.get("system") == system and t.get("code") == code for t in resource.get("meta", {}).get("tag", []))


def _patient_of(resource: dict[str, Any]) -> tuple[str | None, str | None]:
    ref = resource.get("patient" if resource["resourceType"] == "Consent" else "subject") or {}
    ident = ref.get("identifier") or {}
    return ident.get("system"), ident.get("value")


class FhirCore:
    """The resource store and the service functions the HTTP API and the transformer share."""

    def __init__(self, config: PlatformConfig) -> None:
        self.config = config
        self.store = Store(config.data_dir / "new.sqlite", SCHEMA)
        seed = load_seed(config.contracts)
        with self.store.write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO patients VALUES (?, ?, ?, ?)",
                [(p["id"], p["givenName"], p["familyName"], p["birthDate"]) for p in seed.patients],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO care_units VALUES (?, ?)",
                [(u["arbetsplatskod"], 1 if u.get("active") else 0) for u in seed.care_units],
            )

    def conn(self) -> sqlite3.Connection:
        """The connection for reads outside a write transaction."""
        return self.store.conn()

    # ---- internal tables (not FHIR resources) ----

    def patient(self, person_id: str, conn: sqlite3.Connection | None = None) -> sqlite3.Row | None:
        """The seeded test patient, or None (also for a wrong check digit)."""
        if not luhn_ok(person_id):
            return None
        row: sqlite3.Row | None = (conn or self.conn()).execute(
            "SELECT * FROM patients WHERE person_id = ?", (person_id,)
        ).fetchone()
        return row

    def care_unit_active(self, arbetsplatskod: str) -> bool:
        """Whether the workplace code is that of an active care unit."""
        row = self.conn().execute(
            "SELECT active FROM care_units WHERE arbetsplatskod = ?", (arbetsplatskod,)
        ).fetchone()
        return bool(row and row["active"])

    def reserve_dispensing_ids(self, gln: str, count: int) -> list[str]:
        """Reserve `count` new dispensing ids for the pharmacy `gln`."""
        ids = [str(uuid.uuid4()) for _ in range(count)]
        stamp = timefmt.utc_instant(timefmt.now())
        with self.store.write() as conn:
            conn.executemany("INSERT INTO reserved_dispensing_ids VALUES (?, ?, ?)", [(i, gln, stamp) for i in ids])
        return ids

    def is_reserved(self, conn: sqlite3.Connection, dispensing_id: str, gln: str | None) -> bool:
        """Whether `dispensing_id` was reserved by the pharmacy `gln`."""
        row = conn.execute(
            "SELECT 1 FROM reserved_dispensing_ids WHERE dispensing_id = ? AND gln = ?", (dispensing_id, gln)
        ).fetchone()
        return row is not None

    # ---- reads ----

    def read(self, rtype: str, rid: str, conn: sqlite3.Connection | None = None) -> dict[str, Any] | None:
        """The current version of a resource, or None."""
        text = self.read_text(rtype, rid, conn)
        return json.loads(text) if text is not None else None

    def read_text(self, rtype: str, rid: str, conn: sqlite3.Connection | None = None) -> str | None:
        """The stored JSON of a resource, or None."""
        row = (conn or self.conn()).execute(
            "SELECT json FROM resources WHERE type = ? AND id = ?", (rtype, rid)
        ).fetchone()
        return row["json"] if row else None

    def prescriptions_of(self, person_id: str, conn: sqlite3.Connection | None = None) -> list[dict[str, Any]]:
        """A patient's MedicationRequests, newest first (by creation order)."""
        rows = (conn or self.conn()).execute(
            "SELECT json FROM resources WHERE type = 'MedicationRequest' AND patient_value = ? ORDER BY seq DESC",
            (person_id,),
        ).fetchall()
        return [json.loads(r["json"]) for r in rows]

    def withdrawal_counts(
        self, prescription_ids: Iterable[str], conn: sqlite3.Connection | None = None
    ) -> dict[str, int]:
        """How many withdrawals (completed, not reported-only dispensings) each prescription has."""
        ids = list(prescription_ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = (conn or self.conn()).execute(
            f"SELECT prescription, COUNT(*) AS n FROM resources WHERE prescription IN ({marks}) "
            "AND type = 'MedicationDispense' AND withdrawal = 1 GROUP BY prescription",
            ids,
        ).fetchall()
        return {r["prescription"]: r["n"] for r in rows}

    def dispensings_of(
        self, prescription_id: str, *, reported: bool, conn: sqlite3.Connection | None = None
    ) -> list[dict[str, Any]]:
        """The withdrawals (or the reports to the medication list) of a prescription, oldest first."""
        column = "reported" if reported else "withdrawal"
        rows = (conn or self.conn()).execute(
            f"SELECT json FROM resources WHERE prescription = ? AND type = 'MedicationDispense' AND {column} = 1 "
            "ORDER BY seq",
            (prescription_id,),
        ).fetchall()
        return [json.loads(r["json"]) for r in rows]

    def withdrawals_by_prescription(self, person_id: str) -> dict[str, list[dict[str, Any]]]:
        """A patient's withdrawals grouped by prescription id, oldest first."""
        rows = self.conn().execute(
            "SELECT prescription, json FROM resources WHERE type = 'MedicationDispense' AND patient_value = ? "
            "AND withdrawal = 1 ORDER BY seq",
            (person_id,),
        ).fetchall()
        out: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            out.setdefault(r["prescription"], []).append(json.loads(r["json"]))
        return out

    def reported_dispensings(self, person_id: str) -> list[dict[str, Any]]:
        """A patient's dispensings reported to the medication list, newest first."""
        rows = self.conn().execute(
            "SELECT json FROM resources WHERE type = 'MedicationDispense' AND patient_value = ? AND reported = 1 "
            "ORDER BY seq DESC",
            (person_id,),
        ).fetchall()
        return [json.loads(r["json"]) for r in rows]

    def current_consent(self, person_id: str, conn: sqlite3.Connection | None = None) -> dict[str, Any] | None:
        """The patient's newest Consent, or None."""
        row = (conn or self.conn()).execute(
            "SELECT json FROM resources WHERE type = 'Consent' AND patient_value = ? ORDER BY seq DESC LIMIT 1",
            (person_id,),
        ).fetchone()
        return json.loads(row["json"]) if row else None

    # ---- search ----

    def search(self, rtype: str, where: list[str], args: list[Any], count: int, offset: int) -> Page:
        """Resources of `rtype` matching all `where` clauses, newest first, one page of them."""
        clause = " AND ".join(["type = ?", *where])
        conn = self.conn()
        total = conn.execute(f"SELECT COUNT(*) FROM resources WHERE {clause}", [rtype, *args]).fetchone()[0]
        rows = conn.execute(
            f"SELECT id, json FROM resources WHERE {clause} ORDER BY seq DESC LIMIT ? OFFSET ?",
            [rtype, *args, count, offset],
        ).fetchall()
        return Page(total, [(r["id"], r["json"]) for r in rows])

    def monitoring(self, identities: list[tuple[str | None, str]], limit: int) -> list[tuple[str, str]]:
        """The MedicationRequests of the given patients (system may be None), at most `limit`."""
        where = " OR ".join(
            "(patient_value = ?" + (" AND patient_system = ?)" if system else ")") for system, _ in identities
        )
        args: list[Any] = []
        for system, value in identities:
            args.append(value)
            if system:
                args.append(system)
        rows = self.conn().execute(
            f"SELECT id, json FROM resources WHERE type = 'MedicationRequest' AND ({where}) ORDER BY seq DESC LIMIT ?",
            [*args, limit],
        ).fetchall()
        return [(r["id"], r["json"]) for r in rows]

    # ---- writes (always inside a Store.write() transaction the caller holds) ----

    def create(self, conn: sqlite3.Connection, resource: dict[str, Any], actor: Actor, *,
               prechecked: bool = False) -> dict[str, Any]:
        """Create a resource: the server sets id and meta, checks the rules, writes a Provenance.

        `prechecked`: the withdrawal rules were checked by the caller (only the transformer's seeded
        fault transformer-last-withdrawal-race does this, in an earlier transaction).
        """
        rtype = resource.get("resourceType")
        moment = timefmt.now()
        stamp = timefmt.utc_instant(moment)
        res = dict(resource)
        res["id"] = str(uuid.uuid4())
        # The server sets meta (fhir.yaml: "any given are ignored"): its own version, time and profile; of the
        # client's meta only the tags (reported-to-lf) are kept. A client's meta.profile was served back as it
        # came, canonicals with spaces and all: invalid R4 output.
        given: dict[str, Any] = res["meta"] if isinstance(res.get("meta"), dict) else {}
        res["meta"] = {"versionId": "1", "lastUpdated": stamp}
        if rtype in PROFILES:
            res["meta"]["profile"] = [PROFILES[rtype]]
        if given.get("tag"):
            res["meta"]["tag"] = given["tag"]
        if rtype == "MedicationRequest":
            self._prepare_prescription(conn, res, actor, moment)
        elif rtype == "MedicationDispense":
            self._prepare_dispensing(conn, res, actor, stamp, prechecked)
        elif rtype == "Consent":
            self._prepare_consent(conn, res, stamp)
        else:
            raise Invalid(f"resources of type {rtype} cannot be created here")
        self._insert(conn, res)
        if rtype in ("MedicationRequest", "MedicationDispense"):
            self._provenance(conn, res, actor, "CREATE", stamp)
        return res

    def update(self, conn: sqlite3.Connection, resource: dict[str, Any], actor: Actor, *,
               new_version: bool = True) -> dict[str, Any]:
        """Store a changed resource as its next version and record the change in a Provenance.

        `new_version` False: the change keeps its version (only the seeded fault core-withdrawal-keeps-version).
        """
        stamp = timefmt.utc_instant(timefmt.now())
        res = dict(resource)
        meta = dict(res.get("meta") or {})
        meta["versionId"] = str(int(meta.get("versionId", "1")) + (1 if new_version else 0))
        meta["lastUpdated"] = stamp
        res["meta"] = meta
        idx = self._index(res)
        cur = conn.execute(
            "UPDATE resources SET version = ?, last_updated = ?, patient_system = ?, patient_value = ?, status = ?, "
            "authored_on = ?, prescription = ?, target = ?, withdrawal = ?, reported = ?, json = ? "
            "WHERE type = ? AND id = ?",
            (int(meta["versionId"]), stamp, *idx, _dump(res), res["resourceType"], res["id"]),
        )
        if cur.rowcount != 1:
            raise NotFound(f"{res['resourceType']}/{res['id']} not found")
        self._identifiers(conn, res)
        if not self.config.faults.on(FAULT_UPDATE_WITHOUT_PROVENANCE):
            self._provenance(conn, res, actor, "UPDATE", stamp)
        return res

    # ---- a migration's writes: the store filled from the old platform's data, before it serves ----

    def holds_data(self, conn: sqlite3.Connection | None = None) -> int:
        """How many resources and reserved dispensing ids the store holds (0 for a store never used)."""
        c = conn or self.conn()
        return int(c.execute("SELECT (SELECT COUNT(*) FROM resources) + "
                             "(SELECT COUNT(*) FROM reserved_dispensing_ids)").fetchone()[0])

    def import_resource(self, conn: sqlite3.Connection, resource: dict[str, Any]) -> None:
        """Store a resource exactly as given (id, meta and all): no rules run, no Provenance is made."""
        self._insert(conn, resource)

    def import_patient(self, conn: sqlite3.Connection, person_id: str, given_name: str, family_name: str,
                       birth_date: str) -> None:
        """Keep a patient as the other platform knew them."""
        conn.execute("INSERT OR REPLACE INTO patients VALUES (?, ?, ?, ?)",
                     (person_id, given_name, family_name, birth_date))

    def import_reserved_ids(self, conn: sqlite3.Connection, rows: Iterable[tuple[str, str, str]]) -> None:
        """Keep dispensing ids reserved on the other platform: (dispensing id, GLN, reserved instant)."""
        conn.executemany("INSERT INTO reserved_dispensing_ids VALUES (?, ?, ?)", rows)

    # ---- per-type rules ----

    def _known_patient(self, conn: sqlite3.Connection, res: dict[str, Any]) -> tuple[str, str]:
        system, value = _patient_of(res)
        if not value or system not in PATIENT_SYSTEMS:
            raise Invalid(f"{res['resourceType']} needs the patient as an identifier of system "
                          f"{PERSONNUMMER} or {SAMORDNINGSNUMMER}")
        if self.patient(value, conn) is None:
            raise BusinessRule(f"patient {system}|{value} is not known", "unknown-patient")
        return system, value

    def _prepare_prescription(self, conn: sqlite3.Connection, res: dict[str, Any], actor: Actor, moment: Any) -> None:
        if res.get("status") not in MR_STATUSES:
            raise Invalid(f"MedicationRequest.status {res.get('status')!r} is not a MedicationRequest status")
        self._known_patient(conn, res)
        if not isinstance(res.get("medicationCodeableConcept"), dict):
            raise Invalid("MedicationRequest.medicationCodeableConcept is required")
        res.setdefault("authoredOn", timefmt.stockholm_instant(moment))
        if not any(i.get("system") == PRESCRIPTION_ID for i in res.get("identifier", [])):
            system = WRONG_PRESCRIPTION_ID if self.config.faults.on(FAULT_WRONG_IDENTIFIER_SYSTEM) else PRESCRIPTION_ID
            res["identifier"] = [*res.get("identifier", []), {"system": system, "value": res["id"]}]
        # The prescriber and the care unit default to the ticket's (Säker åtkomst), as on create from care.
        contained = res.get("contained") or []
        if not any(c.get("resourceType") == "Practitioner" for c in contained):
            res["contained"] = [*contained, {
                "resourceType": "Practitioner", "id": "prescriber",
                "identifier": [{"system": HSA_ID, "value": actor.hsa_id},
                               {"system": PRESCRIBER_CODE, "value": actor.forskrivarkod}],
            }]
            res.setdefault("requester", {"reference": "#prescriber"})
        if not any(e.get("url") == WORKPLACE_CODE_EXT for e in res.get("extension", [])):
            res["extension"] = [*res.get("extension", []),
                                {"url": WORKPLACE_CODE_EXT, "valueString": actor.arbetsplatskod}]
        if not res.get("category"):
            res["category"] = [{"coding": [{"system": PRESCRIPTION_FORMAT, "code": "electronic"}]}]
        request = res.setdefault("dispenseRequest", {})
        request.setdefault("numberOfRepeatsAllowed", 0)
        request.setdefault("quantity", {"value": 1})
        period = request.setdefault("validityPeriod", {})
        issued = date.fromisoformat(timefmt.local_date(res["authoredOn"]))
        period.setdefault("start", issued.isoformat())
        period.setdefault("end", (issued + timedelta(days=DEFAULT_VALIDITY_DAYS)).isoformat())
        if timefmt.local_date(period["end"]) < timefmt.local_date(period["start"]):
            raise BusinessRule("nll-1: dispenseRequest.validityPeriod.end is before its start", "nll-1")
        if res.get("status") != "active":
            # a prescription is born active (the register's Aktiv); other statuses come from its life
            raise BusinessRule(f"a new prescription is active, not {res.get('status')!r}", "new-is-active")

    def _prepare_dispensing(self, conn: sqlite3.Connection, res: dict[str, Any], actor: Actor, stamp: str,
                            prechecked: bool = False) -> None:
        if res.get("status") not in MD_STATUSES:
            raise Invalid(f"MedicationDispense.status {res.get('status')!r} is not a MedicationDispense status")
        if res["status"] != "completed":
            # a dispensing is registered once handed over (the mapping: registered = completed)
            raise BusinessRule(
                f"a registered dispensing is completed, not {res['status']!r}", "registered-is-completed"
            )
        refs = res.get("authorizingPrescription") or []
        mr_id = reference_id(refs[0].get("reference"), "MedicationRequest") if refs else None
        if not mr_id:
            raise Invalid("MedicationDispense.authorizingPrescription must reference a MedicationRequest")
        mr = self.read("MedicationRequest", mr_id, conn)
        if mr is None:
            raise NotFound(f"MedicationRequest/{mr_id} does not exist", "unknown-prescription")
        res["authorizingPrescription"] = [{"reference": f"MedicationRequest/{mr_id}"}, *refs[1:]]
        if not res.get("subject"):
            res["subject"] = {"identifier": dict(mr["subject"]["identifier"])}
        if _patient_of(res) != _patient_of(mr):
            raise BusinessRule("the dispensing's patient is not the prescription's patient", "patient-mismatch")
        if not res.get("performer") and actor.gln:
            res["performer"] = [{"actor": {"identifier": {"system": GLN, "value": actor.gln}}}]
        if res["status"] == "completed":
            res.setdefault("whenHandedOver", stamp)
        if res["status"] != "completed":
            return
        dispensing_id = next((i.get("value") for i in res.get("identifier", []) if i.get("system") == DISPENSING_ID),
                             None)
        if has_tag(res, NLL_TAGS, REPORTED_TO_LF):
            if dispensing_id and any(
                _dispensing_id(d) == dispensing_id for d in self.dispensings_of(mr_id, reported=True, conn=conn)
            ):
                raise Conflict(f"dispensing id {dispensing_id} is already reported for this prescription",
                                   "duplicate-report")
            return
        if not prechecked:
            self.check_withdrawal(conn, mr, res, dispensing_id)
        # The withdrawal changes the prescription: its last change, and its status when none remain.
        taken = self.withdrawal_counts([mr["id"]], conn).get(mr["id"], 0) + 1
        allowed = mr.get("dispenseRequest", {}).get("numberOfRepeatsAllowed", 0) + 1
        if self.config.faults.on(FAULT_LAST_WITHDRAWAL_STAYS_ACTIVE):
            allowed += 1
        if taken >= allowed:
            mr["status"] = "completed"
        self.update(conn, mr, actor, new_version=not self.config.faults.on(FAULT_WITHDRAWAL_KEEPS_VERSION))

    def check_withdrawal(self, conn: sqlite3.Connection, mr: dict[str, Any], res: dict[str, Any],
                          dispensing_id: str | None) -> None:
        """The rules for a withdrawal, in the order the legacy interface reports them."""
        status = mr.get("status")
        request = mr.get("dispenseRequest", {})
        allowed = request.get("numberOfRepeatsAllowed", 0) + 1
        dispensable: tuple[str, ...] = ("active", "on-hold")
        if self.config.faults.on(FAULT_CANCELLED_WITHDRAWABLE):
            dispensable = ("active", "on-hold", "cancelled")
        elif status == "cancelled":
            raise Conflict("the prescription is cancelled", "cancelled")
        if status == "completed" or self.withdrawal_counts([mr["id"]], conn).get(mr["id"], 0) >= allowed:
            raise Conflict("no withdrawals remain on the prescription", "completed")
        if status not in dispensable:
            raise Conflict(f"the prescription is {status}", "not-dispensable")
        end = request.get("validityPeriod", {}).get("end")
        today = timefmt.today().isoformat()
        if end and (timefmt.local_date(end) < today or (
                timefmt.local_date(end) == today and self.config.faults.on(FAULT_EXPIRES_ON_LAST_DAY))):
            raise Conflict("the prescription's validity has passed", "expired")
        asked = (res.get("quantity") or {}).get("value")
        if asked is None:
            raise Invalid("a completed MedicationDispense needs quantity.value")
        if asked > (request.get("quantity") or {}).get("value", 0) and not self.config.faults.on(
                FAULT_PACKAGES_NOT_CHECKED):
            raise Conflict("more packages than prescribed per withdrawal", "too-many-packages")
        if dispensing_id and any(
            _dispensing_id(d) == dispensing_id for d in self.dispensings_of(mr["id"], reported=False, conn=conn)
        ):
            raise Conflict(f"dispensing id {dispensing_id} is already used for a withdrawal", "duplicate-dispensing")

    def _prepare_consent(self, conn: sqlite3.Connection, res: dict[str, Any], stamp: str) -> None:
        if res.get("status") not in CONSENT_STATUSES:
            raise Invalid(f"Consent.status {res.get('status')!r} is not a Consent status")
        self._known_patient(conn, res)
        res.setdefault("dateTime", stamp)

    # ---- storage ----

    def _index(self, res: dict[str, Any]) -> tuple[Any, ...]:
        rtype = res["resourceType"]
        system, value = (None, None) if rtype == "Provenance" else _patient_of(res)
        if system == SAMORDNINGSNUMMER and self.config.faults.on(FAULT_INDEX_SAMORDNINGSNUMMER):
            system = PERSONNUMMER
        authored = None
        if rtype == "MedicationRequest" and res.get("authoredOn"):
            authored = timefmt.interval(res["authoredOn"])[0]
        prescription = None
        withdrawal = reported = 0
        if rtype == "MedicationDispense":
            refs = res.get("authorizingPrescription") or [{}]
            prescription = reference_id(refs[0].get("reference"), "MedicationRequest")
            reported = 1 if has_tag(res, NLL_TAGS, REPORTED_TO_LF) else 0
            withdrawal = 1 if res.get("status") == "completed" and not reported else 0
        target = None
        if rtype == "Provenance":
            target = res["target"][0]["reference"]
        return (system, value, res.get("status"), authored, prescription, target, withdrawal, reported)

    def _insert(self, conn: sqlite3.Connection, res: dict[str, Any]) -> None:
        conn.execute(
            "INSERT INTO resources (type, id, version, last_updated, patient_system, patient_value, status, "
            "authored_on, prescription, target, withdrawal, reported, json) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (res["resourceType"], res["id"], int(res["meta"]["versionId"]), res["meta"]["lastUpdated"],
             *self._index(res), _dump(res)),
        )
        self._identifiers(conn, res, replace=False)  # a new row has none to replace

    def _identifiers(self, conn: sqlite3.Connection, res: dict[str, Any], replace: bool = True) -> None:
        if replace:  # scans the type's identifiers (the key starts with type, system): only for an update
            conn.execute("DELETE FROM identifiers WHERE type = ? AND id = ?", (res["resourceType"], res["id"]))
        idents = res.get("identifier") or []
        if isinstance(idents, dict):  # Consent.identifier is a list in R4; be lenient
            idents = [idents]
        conn.executemany(
            "INSERT OR IGNORE INTO identifiers VALUES (?, ?, ?, ?)",
            [(res["resourceType"], res["id"], i.get("system") or "", i["value"]) for i in idents if i.get("value")],
        )

    def _provenance(self, conn: sqlite3.Connection, res: dict[str, Any], actor: Actor, activity: str,
                    stamp: str) -> None:
        system = GLN if actor.role == "pharmacy" else HSA_ID
        prov = {
            "resourceType": "Provenance",
            "id": str(uuid.uuid4()),
            "meta": {"versionId": "1", "lastUpdated": stamp},
            "target": [{"reference": f"{res['resourceType']}/{res['id']}"}],
            "recorded": stamp,
            "activity": {"coding": [{"system": DATA_OPERATION, "code": activity}]},
            "agent": [{"who": {"identifier": {"system": system, "value": actor.identifier}}}],
        }
        self._insert(conn, prov)


def _dispensing_id(dispensing: dict[str, Any]) -> str | None:
    return next((i.get("value") for i in dispensing.get("identifier", []) if i.get("system") == DISPENSING_ID), None)


def _dump(res: dict[str, Any]) -> str:
    return json.dumps(res, ensure_ascii=False, separators=(",", ":"))
