"""The migration job: the old platform's store moved into the new platform's FHIR core.

    python -m refplatform migrate --from OLD_DATA_DIR --to NEW_DATA_DIR --contracts contracts [--fault NAME ...]

What a vendor's migration job does in the service window, written as its own program: it reads
the old store (read-only, in one snapshot) and writes the new platform's FHIR store through the
core's store API, before the new platform serves anyone. It follows
contracts/mapping/legacy-fhir.yaml (the status, code and identity tables are read from it) and
the NLL profiles:

  patient                  -> the core's patient table, as the old platform knew them
  ordination               -> MedicationRequest, same id; authoredOn the registration instant at its
                              Stockholm offset, validityPeriod start..giltigTom, meta.lastUpdated senastAndrad
  uttag                    -> completed MedicationDispense, same id, whenHandedOver its tidpunkt
  lf_post                  -> MedicationDispense tagged reported-to-lf, same id (rapportId)
  patient.samtycke         -> Consent active (given) or inactive (withdrawn); none if never given
  expeditionsid            -> the core's reserved dispensing ids, per GLN
  the history it knows     -> Provenance: CREATE by the prescriber when registered; per withdrawal
                              CREATE of the dispensing and UPDATE of the prescription by the pharmacy;
                              CREATE of each medication-list report by the pharmacy

Not carried, and said so in the summary: cancellation comments (makuleringskommentar; the
legacy interface never served them and NLLMedicationRequest.statusReason holds the code
only), and the authors of cancellations, parkings and endings (the old store never recorded
them; NLLProvenance needs an HSA-id or GLN, so those changes count in meta.versionId without
a Provenance of their own).

Everything goes in one transaction: a job that fails leaves the new store empty. A new store
that already holds data is refused (a second run would duplicate everything).
"""

from __future__ import annotations

import argparse
import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from refplatform.common.cmdline import CommandError, OneLineParser, fail
from refplatform.common.config import PlatformConfig
from refplatform.common.faults import CATALOGUE, FaultSet, register
from refplatform.new.core import FhirCore

PLATFORM = "migration"  # the faults' platform in the catalogue

FAULT_RECORD_LOST = register(
    "migration-record-lost", PLATFORM, "migration",
    "one prescription (the oldest in the old store) is not migrated: its patient's history on the new platform "
    "lacks it (its withdrawals and medication-list entries are migrated without it)",
).name
TRUNCATED_HISTORY = 2  # withdrawals kept per prescription by the faulty job
FAULT_HISTORY_TRUNCATED = register(
    "migration-history-truncated", PLATFORM, "migration",
    f"the dispensing history is truncated: withdrawals beyond the first {TRUNCATED_HISTORY} of a prescription are "
    "dropped (uttagKvar too high, the withdrawal history short)",
).name
CUT_AT = 255  # the faulty job's staging column: VARCHAR(255)
FAULT_TEXT_CUT = register(
    "migration-text-cut", PLATFORM, "migration",
    f"long texts are cut: doseringstext of prescriptions and medication-list entries truncated at {CUT_AT} "
    "characters",
).name
FAULT_CONSENT_LOST = register(
    "migration-consent-lost", PLATFORM, "migration",
    "a consent is lost: the given consent of one patient (the first in the old store with one) is not migrated, "
    "so samtycke is false and the medication list refused",
).name
FAULT_UTC_DATES = register(
    "migration-utc-dates", PLATFORM, "migration",
    "dates shifted by a time-zone error: registration instants are read as Stockholm wall-clock time from their "
    "UTC form, so a prescription registered between local midnight and 01:00 (02:00 in summer) gets the previous "
    "day as utfardandedatum",
).name
FAULT_DUPLICATES = register(
    "migration-duplicates", PLATFORM, "migration",
    "duplicates: one prescription (the newest Aktiv one) is migrated twice, the copy under a new id, so its "
    "patient has an extra prescription",
).name
FAULT_SKIPS_SAMORDNINGSNUMMER = register(
    "migration-skips-samordningsnummer", PLATFORM, "migration",
    "one identity kind skipped: patients with a samordningsnummer are not migrated (no prescriptions, "
    "withdrawals, medication list or consent on the new platform)",
).name
FAULT_PARKED_AS_ACTIVE = register(
    "migration-parked-as-active", PLATFORM, "migration",
    "statuses mapped wrongly: Parkerad is migrated as active, so those prescriptions show as Aktiv",
).name

STOCKHOLM = ZoneInfo("Europe/Stockholm")
PROFILE = "http://electronichealth.se/fhir/StructureDefinition/"
UNITS = "http://electronichealth.se/fhir/CodeSystem/nll-units"  # NLL's package unit (PackageQuantity)
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
CONSENT_SCOPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                             "code": "patient-privacy"}]}
CONSENT_CATEGORY = [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}]
CONSENT_POLICY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]}
# A status change the old store keeps without its author (not a withdrawal): a version, no Provenance.
CHANGED_WITHOUT_AUTHOR = ("Makulerad", "Parkerad", "Avslutad")


@dataclass(frozen=True)
class Mapping:
    """The tables of contracts/mapping/legacy-fhir.yaml the job needs."""

    status: dict[str, str]
    formats: dict[str, str]
    reasons: dict[str, str]
    systems: dict[str, str]
    personnummer: str
    samordningsnummer: str
    day_offset: int
    reported_tag: tuple[str, str]


def load_mapping(contracts: Path) -> Mapping:
    """Read the mapping contract; a missing or malformed one is a CommandError."""
    path = contracts / "mapping" / "legacy-fhir.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        system, _, code = raw["medication_list"]["reported_tag"].partition("|")
        return Mapping(
            status=dict(raw["status"]["prescription"]), formats=dict(raw["codes"]["forskrivningstyp"]),
            reasons=dict(raw["codes"]["makuleringsorsak"]), systems=dict(raw["systems"]),
            personnummer=raw["identity"]["personnummer"], samordningsnummer=raw["identity"]["samordningsnummer"],
            day_offset=int(raw["identity"]["samordningsnummer_day_offset"]), reported_tag=(system, code),
        )
    except OSError as exc:
        raise CommandError(f"migrate: cannot read the mapping contract {path}: {exc.strerror}") from None
    except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CommandError(f"migrate: the mapping contract {path} lacks what the job needs: {exc!r}") from None


@dataclass
class OldStore:
    """One consistent snapshot of the old platform's tables, each in its own order."""

    patients: list[sqlite3.Row]
    ordinations: list[sqlite3.Row]
    withdrawals: list[sqlite3.Row]
    reports: list[sqlite3.Row]
    reserved: list[sqlite3.Row]


def read_old_store(old_dir: Path) -> OldStore:
    """Read the old store of `old_dir` read-only, in one transaction."""
    path = old_dir / "old.sqlite"
    if not old_dir.is_dir():
        raise CommandError(f"migrate: --from {old_dir} is not a directory")
    if not path.is_file():
        raise CommandError(f"migrate: no old store in {old_dir} (old.sqlite missing)")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("BEGIN")
            columns = {r["name"] for r in conn.execute("PRAGMA table_info(ordination)")}
            registered = "utfardad" if "utfardad" in columns else "NULL AS utfardad"
            snapshot = OldStore(
                patients=conn.execute("SELECT * FROM patient ORDER BY rowid").fetchall(),
                ordinations=conn.execute(f"SELECT *, {registered} FROM ordination ORDER BY seq").fetchall(),
                withdrawals=conn.execute("SELECT * FROM uttag ORDER BY seq").fetchall(),
                reports=conn.execute("SELECT * FROM lf_post ORDER BY seq").fetchall(),
                reserved=conn.execute("SELECT * FROM expeditionsid ORDER BY rowid").fetchall(),
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise CommandError(f"migrate: cannot read the old store {path}: {exc}") from None
    return snapshot


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Job:
    """One run of the job: the mapping, the faults switched on, and what it has built."""

    mapping: Mapping
    faults: frozenset[str]
    resources: list[dict[str, Any]] = field(default_factory=list)
    provenances: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def on(self, fault: str) -> bool:
        """Whether a seeded fault of the job is switched on."""
        return fault in self.faults

    # ---- identities and values ----

    def subject(self, person_id: str) -> dict[str, Any]:
        """A patient reference by identifier, the system by identity kind (day of birth + 60)."""
        day = int(person_id[6:8])
        kind = self.mapping.samordningsnummer if day > self.mapping.day_offset else self.mapping.personnummer
        return {"identifier": {"system": kind, "value": person_id}}

    def is_samordningsnummer(self, person_id: str) -> bool:
        """Whether the identity is a samordningsnummer."""
        return int(person_id[6:8]) > self.mapping.day_offset

    def text(self, value: str) -> str:
        """A text as the job carries it."""
        return value[:CUT_AT] if self.on(FAULT_TEXT_CUT) else value

    def authored(self, registered: str | None, issued: str) -> str:
        """authoredOn: the registration instant at its Stockholm offset (only the date when none was kept)."""
        if registered is None:
            return issued
        moment = _utc(registered)
        if self.on(FAULT_UTC_DATES):
            moment = moment.replace(tzinfo=None).replace(tzinfo=STOCKHOLM)  # UTC wall clock taken as local
        return moment.astimezone(STOCKHOLM).isoformat(timespec="milliseconds")

    def medication(self, npl_pack_id: str, name: str) -> dict[str, Any]:
        """medicationCodeableConcept of a package."""
        return {"coding": [{"system": self.mapping.systems["npl_pack_id"], "code": npl_pack_id}], "text": name}

    @staticmethod
    def packages(count: int) -> dict[str, Any]:
        """A quantity of whole packages."""
        return {"value": count, "unit": "förpackning", "system": UNITS, "code": "pkg"}

    def provenance(self, target: str, activity: str, recorded: str, who_system: str, who: str) -> None:
        """Record one event of a resource's history as the core records it."""
        self.provenances.append({
            "resourceType": "Provenance", "id": str(uuid.uuid4()),
            "meta": {"versionId": "1", "lastUpdated": recorded},
            "target": [{"reference": target}], "recorded": recorded,
            "activity": {"coding": [{"system": DATA_OPERATION, "code": activity}]},
            "agent": [{"who": {"identifier": {"system": who_system, "value": who}}}],
        })

    # ---- resources ----

    def prescription(self, row: sqlite3.Row, withdrawals: list[sqlite3.Row], rid: str | None = None) -> None:
        """The MedicationRequest of an ordination (with the Provenance of its creation and withdrawals)."""
        systems = self.mapping.systems
        status = self.mapping.status[row["status"]]
        if row["status"] == "Parkerad" and self.on(FAULT_PARKED_AS_ACTIVE):
            status = "active"
        rid = rid or row["ordination_id"]
        versions = 1 + len(withdrawals) + (1 if row["status"] in CHANGED_WITHOUT_AUTHOR else 0)
        authored = self.authored(row["utfardad"], row["utfardandedatum"])
        mr: dict[str, Any] = {
            "resourceType": "MedicationRequest", "id": rid,
            "meta": {"versionId": str(versions), "lastUpdated": row["senast_andrad"],
                     "profile": [PROFILE + "NLLMedicationRequest"]},
            "contained": [{"resourceType": "Practitioner", "id": "prescriber", "identifier": [
                {"system": systems["hsa_id"], "value": row["hsa_id"]},
                {"system": systems["prescriber_code"], "value": row["forskrivarkod"]}]}],
            "extension": [{"url": systems["workplace_code_extension"], "valueString": row["arbetsplatskod"]}],
            "identifier": [{"system": systems["prescription_id"], "value": rid}],
            "status": status,
            "intent": "order",
            "category": [{"coding": [{"system": systems["prescription_format"],
                                      "code": self.mapping.formats[row["forskrivningstyp"]]}]}],
            "medicationCodeableConcept": self.medication(row["npl_pack_id"], row["lakemedel_namn"]),
            "subject": self.subject(row["person_id"]),
            "authoredOn": authored,
            "requester": {"reference": "#prescriber"},
            "dosageInstruction": [{"text": self.text(row["doseringstext"])}],
            "dispenseRequest": {
                "validityPeriod": {"start": authored[:10], "end": row["giltig_tom"]},
                "numberOfRepeatsAllowed": row["antal_uttag"] - 1,
                "quantity": self.packages(row["antal_forpackningar"]),
            },
        }
        if row["status"] == "Makulerad":
            mr["statusReason"] = {"coding": [{"system": systems["cancellation_reason"],
                                              "code": self.mapping.reasons[row["makuleringsorsak"]]}]}
            if row["makuleringskommentar"]:
                self.counts["cancellation comments not carried"] += 1
        if row["status"] in CHANGED_WITHOUT_AUTHOR:
            self.counts["changes without a known author"] += 1
        self.resources.append(mr)
        self.counts["prescriptions"] += 1
        target = f"MedicationRequest/{rid}"
        self.provenance(target, "CREATE", row["utfardad"] or row["senast_andrad"], systems["hsa_id"], row["hsa_id"])
        for uttag in withdrawals:
            self.provenance(target, "UPDATE", uttag["tidpunkt"], systems["gln"], uttag["apotek_gln"])

    def dispensing(self, rid: str, when: str, row: sqlite3.Row, medication: sqlite3.Row, person_id: str,
                   reported: bool) -> dict[str, Any]:
        """A completed MedicationDispense (and the Provenance of its creation by the pharmacy)."""
        meta: dict[str, Any] = {"versionId": "1", "lastUpdated": when, "profile": [PROFILE + "NLLMedicationDispense"]}
        if reported:
            system, code = self.mapping.reported_tag
            meta["tag"] = [{"system": system, "code": code}]
        md: dict[str, Any] = {
            "resourceType": "MedicationDispense", "id": rid, "meta": meta,
            "identifier": [{"system": self.mapping.systems["dispensing_id"], "value": row["expeditions_id"]}],
            "status": "completed",
            "medicationCodeableConcept": self.medication(medication["npl_pack_id"], medication["lakemedel_namn"]),
            "subject": self.subject(person_id),
            "performer": [{"actor": {"identifier": {"system": self.mapping.systems["gln"],
                                                    "value": row["apotek_gln"]}}}],
            "authorizingPrescription": [{"reference": f"MedicationRequest/{row['ordination_id']}"}],
            "quantity": self.packages(row["antal_forpackningar"]),
            "whenHandedOver": when,
        }
        self.resources.append(md)
        self.provenance(f"MedicationDispense/{rid}", "CREATE", when, self.mapping.systems["gln"], row["apotek_gln"])
        return md

    def withdrawal(self, row: sqlite3.Row, ordination: sqlite3.Row) -> None:
        """The completed MedicationDispense of an uttag (the package as the prescription names it)."""
        self.dispensing(row["uttag_id"], row["tidpunkt"], row, ordination, ordination["person_id"], reported=False)
        self.counts["withdrawals"] += 1

    def report(self, row: sqlite3.Row) -> None:
        """The MedicationDispense tagged reported-to-lf of an lf_post (a medication-list entry, as reported)."""
        md = self.dispensing(row["rapport_id"], row["registrerad"], row, row, row["person_id"], reported=True)
        md["whenHandedOver"] = row["expedierad"]
        if row["doseringstext"] is not None:
            md["dosageInstruction"] = [{"text": self.text(row["doseringstext"])}]
        self.counts["medication-list entries"] += 1

    def consent(self, row: sqlite3.Row) -> None:
        """The Consent of a patient who gave (active) or withdrew (inactive) it."""
        changed = row["samtycke_andrad"]
        self.resources.append({
            "resourceType": "Consent", "id": str(uuid.uuid4()),
            "meta": {"versionId": "1", "lastUpdated": changed, "profile": [PROFILE + "NLLConsent"]},
            "status": "active" if row["samtycke"] else "inactive",
            "scope": CONSENT_SCOPE, "category": CONSENT_CATEGORY,
            "patient": self.subject(row["person_id"]),
            "dateTime": changed,
            "policyRule": CONSENT_POLICY,
        })
        self.counts["consents"] += 1

    # ---- the whole store ----

    def build(self, old: OldStore) -> list[sqlite3.Row]:
        """Every resource of the old store, in the old store's order; the patients to keep."""
        skipped = {p["person_id"] for p in old.patients
                   if self.on(FAULT_SKIPS_SAMORDNINGSNUMMER) and self.is_samordningsnummer(p["person_id"])}
        patients = [p for p in old.patients if p["person_id"] not in skipped]
        ordinations = [o for o in old.ordinations if o["person_id"] not in skipped]
        by_id = {o["ordination_id"]: o for o in ordinations}
        withdrawals: dict[str, list[sqlite3.Row]] = {}
        for uttag in old.withdrawals:
            if uttag["ordination_id"] in by_id:
                withdrawals.setdefault(uttag["ordination_id"], []).append(uttag)
        if self.on(FAULT_HISTORY_TRUNCATED):
            withdrawals = {k: v[:TRUNCATED_HISTORY] for k, v in withdrawals.items()}
        lost = ordinations[0]["ordination_id"] if ordinations and self.on(FAULT_RECORD_LOST) else None
        for o in ordinations:
            if o["ordination_id"] != lost:
                self.prescription(o, withdrawals.get(o["ordination_id"], []))
        if self.on(FAULT_DUPLICATES):
            newest = next((o for o in reversed(ordinations) if o["status"] == "Aktiv"), None)
            if newest is not None:
                self.prescription(newest, [], rid=str(uuid.uuid4()))
        kept = {u["uttag_id"] for rows in withdrawals.values() for u in rows}
        for uttag in old.withdrawals:  # in the old store's order: the history is read in it
            if uttag["uttag_id"] in kept:
                self.withdrawal(uttag, by_id[uttag["ordination_id"]])
        for report in old.reports:
            if report["person_id"] not in skipped:
                self.report(report)
        lost_consent = next((p["person_id"] for p in patients if p["samtycke"]), None) \
            if self.on(FAULT_CONSENT_LOST) else None
        for p in patients:
            if p["samtycke_andrad"] is not None and p["person_id"] != lost_consent:
                self.consent(p)
        self.provenances.sort(key=lambda p: p["recorded"])
        return patients


def _fault_names(names: Iterable[str]) -> frozenset[str]:
    known = sorted(n for n, f in CATALOGUE.items() if f.platform == PLATFORM)
    for name in names:
        if name not in known:
            raise CommandError(f"migrate: unknown migration fault {name!r} (known: {', '.join(known)})")
    return frozenset(names)


def migrate(old_dir: Path, new_dir: Path, contracts: Path, faults: Iterable[str] = ()) -> dict[str, int]:
    """Move the old store of `old_dir` into a new, empty FHIR store in `new_dir`; the counts per kind."""
    job = Job(load_mapping(contracts), _fault_names(faults))
    old = read_old_store(old_dir)
    patients = job.build(old)
    if new_dir.exists() and not new_dir.is_dir():
        raise CommandError(f"migrate: --to {new_dir} is not a directory")
    try:
        core = FhirCore(PlatformConfig(data_dir=new_dir, ticket_key=b"", contracts=contracts, faults=FaultSet()))
    except OSError as exc:
        raise CommandError(f"migrate: cannot open the new store in {new_dir}: {exc.strerror or exc}") from None
    except sqlite3.Error as exc:
        raise CommandError(f"migrate: cannot open the new store in {new_dir}: {exc}") from None
    held = core.holds_data()
    if held:
        raise CommandError(f"migrate: the new store in {new_dir} already holds data ({held} records): refusing to "
                           "migrate into it (a second run would duplicate everything)")
    with core.store.write() as conn:
        for p in patients:
            core.import_patient(conn, p["person_id"], p["fornamn"], p["efternamn"], p["fodelsedatum"])
        for resource in [*job.resources, *job.provenances]:
            core.import_resource(conn, resource)
        core.import_reserved_ids(conn, [(r["expeditions_id"], r["apotek_gln"], r["reserverad"]) for r in old.reserved])
    job.counts["patients"] = len(patients)
    job.counts["reserved dispensing ids"] = len(old.reserved)
    job.counts["provenances"] = len(job.provenances)
    return dict(job.counts)


KINDS = ("patients", "prescriptions", "withdrawals", "medication-list entries", "consents",
         "reserved dispensing ids", "provenances")


def summary(counts: dict[str, int], faults: Iterable[str]) -> str:
    """The one line `migrate` prints."""
    moved = ", ".join(f"{kind} {counts.get(kind, 0)}" for kind in KINDS)
    comments = counts.get("cancellation comments not carried", 0)
    authors = counts.get("changes without a known author", 0)
    return (f"{moved}; not carried: {comments} cancellation comments (no element in NLLMedicationRequest), "
            f"the authors of {authors} status changes (never recorded); faults: {', '.join(faults) or 'none'}")


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m refplatform migrate", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="old", type=Path, required=True, metavar="OLD_DATA_DIR",
                   help="the old platform's run directory (old.sqlite), read only")
    p.add_argument("--to", dest="new", type=Path, required=True, metavar="NEW_DATA_DIR",
                   help="the new platform's run directory (new.sqlite): empty or new")
    p.add_argument("--contracts", type=Path, default=Path("contracts"))
    p.add_argument("--fault", action="append", default=[], metavar="NAME",
                   help="switch a seeded migration fault on (repeatable; python -m refplatform --list-faults)")
    return p


def main(argv: list[str]) -> int:
    """`python -m refplatform migrate ...`; the exit code."""
    try:
        args = _parser().parse_args(argv)
        counts = migrate(args.old, args.new, args.contracts, args.fault)
    except CommandError as exc:
        return fail(str(exc))
    except (OSError, sqlite3.Error) as exc:
        return fail(f"migrate: {exc}")
    print(f"refplatform migrate: {args.old} -> {args.new}: {summary(counts, args.fault)}", flush=True)
    return 0
