"""The transformer: the old service interface (contracts/riv; its REST rendering legacy.yaml) on the FHIR core.

Every legacy call goes through the core's service functions: a prescription is a MedicationRequest,
a withdrawal a completed MedicationDispense, a report to the medication list a MedicationDispense
tagged reported-to-lf, consent a Consent. The mapping follows contracts/mapping/legacy-fhir.yaml,
written out by hand here (the suite reads the same file; the two must not share code).
"""

from __future__ import annotations

import asyncio
import sqlite3
import unicodedata
from collections.abc import Awaitable, Mapping
from datetime import UTC, date, timedelta, timezone
from typing import Any

from refplatform.common.faults import register
from refplatform.common.legacy import Handler, LegacyFault, LegacyOperation, answer
from refplatform.common.tickets import Actor, TicketError, read_actor
from refplatform.new import timefmt
from refplatform.new.core import (
    CANCELLATION_REASON,
    DISPENSING_ID,
    GLN,
    HSA_ID,
    NLL_TAGS,
    NPL_PACK_ID,
    PERSONNUMMER,
    PRESCRIBER_CODE,
    PRESCRIPTION_FORMAT,
    REPORTED_TO_LF,
    SAMORDNINGSNUMMER,
    WORKPLACE_CODE_EXT,
    BusinessRule,
    CoreError,
    FhirCore,
    identity_system,
    reference_id,
)

FAULT_VALIDITY_365 = register(
    "transformer-default-validity-365", "new", "behaviour",
    "the transformer computes the default validity as issue date + 365 days instead of + 366",
).name
FAULT_CANCELLED_AS_COMPLETED = register(
    "transformer-cancelled-as-completed", "new", "mapping",
    "the transformer shows a cancelled prescription (FHIR cancelled) as Slutexpedierad instead of Makulerad",
).name
FAULT_DROPS_DOSAGE = register(
    "transformer-drops-doseringstext", "new", "mapping",
    "the transformer reads doseringstext from dosageInstruction[0].patientInstruction (never set): it is empty",
).name
FAULT_UTC_DATES = register(
    "transformer-utc-dates", "new", "mapping",
    "the transformer takes the UTC date of FHIR dates instead of the Stockholm date: giltigTom one day early, "
    "utfardandedatum wrong between 00:00 and 01:00/02:00",
).name
FAULT_QUANTITY_ROUNDED = register(
    "transformer-quantity-rounded", "new", "mapping",
    "the transformer reads dispenseRequest.quantity as the total of all withdrawals: antalForpackningar is "
    "quantity / antalUttag rounded down",
).name
FAULT_MOJIBAKE = register(
    "transformer-mojibake", "new", "mapping",
    "the transformer decodes UTF-8 text as latin-1: å, ä, ö in names and dosage texts come out as Ã¥, Ã¤, Ã¶",
).name
FAULT_SAMORDNINGSNUMMER = register(
    "transformer-samordningsnummer-as-personnummer", "new", "mapping",
    "the transformer treats every personId as a personnummer: samordningsnummer get the personnummer system in "
    "FHIR and identitetstyp PERSONNUMMER",
).name
FAULT_CATEGORY_LEGACY_CODE = register(
    "transformer-category-legacy-code", "new", "fhir-conformance",
    "the transformer writes forskrivningstyp unmapped into MedicationRequest.category (ELEKTRONISK, not in the "
    "required nll-prescription-format binding) and reads it back the same way",
).name
FAULT_LF_WITHOUT_CONSENT = register(
    "transformer-lf-without-consent", "new", "behaviour",
    "HamtaLakemedelsforteckning no longer checks consent: the medication list is served without it",
).name
FAULT_LAST_WITHDRAWAL_RACE = register(
    "transformer-last-withdrawal-race", "new", "behaviour",
    "GodkannUttag checks and writes in two transactions: racing pharmacies can both take the last withdrawal",
).name
FAULT_PATIENT_INFO_WITHOUT_TICKET = register(
    "transformer-patientinfo-without-ticket", "new", "security",
    "HamtaPatientInfo answers a request without an access ticket (a default actor is used) instead of 401",
).name
FAULT_SLOW_AKTUELLA_UNDER_LOAD = register(
    "transformer-aktuella-slow-under-load", "new", "performance",
    "HamtaAktuellaOrdinationer queues on one shared downstream connection (held 40 ms per call): latency grows "
    "with the number of concurrent requests",
).name
# blind batch (written without reading the suite): subtler regressions of the kinds a migration ships
FAULT_AKTUELLA_STALE_CACHE = register(
    "transformer-aktuella-stale-cache", "new", "behaviour",
    "[intermittent] HamtaAktuellaOrdinationer keeps a per-patient answer cache that writes do not invalidate; "
    "1 read in 20 (the cache node's round-robin share) is answered from it: the answer of the patient's previous "
    "read, without the changes made since",
).name
FAULT_NAMN_NFD = register(
    "transformer-namn-nfd", "new", "mapping",
    "[data: å/ä/ö] SkapaOrdinationVard stores lakemedel.namn Unicode-decomposed (NFD, å = a + U+030A) as the new "
    "store's text layer normalises it: names with å, ä, ö, é differ byte for byte from what was sent",
).name
FAULT_DOSAGE_BYTES = register(
    "transformer-doseringstext-500-bytes", "new", "mapping",
    "[data: å/ä/ö] SkapaOrdinationVard cuts doseringstext to 500 UTF-8 bytes (a VARCHAR(500 BYTE) column) where "
    "the contract allows 500 characters: long texts with å, ä, ö lose their end",
).name
FAULT_HISTORY_LAST_TWO = register(
    "transformer-history-last-two-withdrawals", "new", "mapping",
    "[data: >= 3 withdrawals] HamtaOrdinationshistorik lists only the 2 most recent withdrawals of a prescription "
    "(a summary-view query reused): a prescription with 3 or more withdrawals loses its oldest ones",
).name
FAULT_HISTORY_BATCH = register(
    "transformer-history-batch-drops-oldest", "new", "mapping",
    "[data: > 5 prescriptions] HamtaOrdinationshistorik reads withdrawals in batches of 5 prescriptions and drops "
    "the last partial batch: the oldest prescriptions of a patient with more than 5 show no withdrawals and full "
    "uttagKvar",
).name
FAULT_FIXED_SUMMER_OFFSET = register(
    "transformer-fixed-summer-offset", "new", "mapping",
    "[data: last hour before midnight, winter] the transformer turns FHIR dateTimes into legacy dates with a fixed "
    "+02:00 offset instead of Europe/Stockholm: in winter (CET) an authoredOn between 23:00 and 24:00 gets the "
    "next day as utfardandedatum",
).name
FAULT_EPOCH_DAY_ROUNDED = register(
    "transformer-epoch-day-rounded", "new", "mapping",
    "[rounding at .5] the transformer computes the legacy date of a FHIR dateTime as round(local seconds / 86400) "
    "days after 1970-01-01 instead of truncating: from 12:00 Stockholm time (exactly 12:00: to the even day) "
    "utfardandedatum is the next day",
).name
FAULT_FIRST_WITHDRAWAL_COUNT = register(
    "transformer-first-withdrawal-uttagkvar", "new", "behaviour",
    "[partial: first dispensing] GodkannUttag takes uttagKvar from a count cache that a prescription's first "
    "withdrawal fills from a read made before its own write: the answer to the first withdrawal says "
    "uttagKvar = antalUttag (later answers and the history are right)",
).name
FAULT_VALIDITY_LIMIT_EXCLUSIVE = register(
    "transformer-giltigtom-limit-exclusive", "new", "behaviour",
    "[off by one: the 366th day] SkapaOrdinationVard treats issue date + 366 days as outside the allowed validity: "
    "giltigTom exactly on the 366th day is refused with 422 OGILTIG_GILTIGHETSTID",
).name
FAULT_TELEPHONE_13 = register(
    "transformer-telephone-validity-13", "new", "behaviour",
    "[data: TELEFON] the default validity of a phoned-in prescription counts the issue day among the 2 weeks: "
    "giltigTom is issue date + 13 days instead of + 14 (electronic prescriptions are right)",
).name
FAULT_HISTORY_DROPS_REASON = register(
    "transformer-history-drops-makuleringsorsak", "new", "mapping",
    "[optional element dropped] HamtaOrdinationshistorik builds its Ordination from a projection without "
    "statusReason: a cancelled prescription has no makuleringsorsak in the history (other reads keep it)",
).name
FAULT_LF_DROPS_DOSAGE = register(
    "transformer-lf-drops-doseringstext", "new", "mapping",
    "[optional element dropped] RapporteraExpeditionLF no longer copies the prescription's dosage into the "
    "reported MedicationDispense: HamtaLakemedelsforteckning posts have no doseringstext",
).name
FAULT_LF_GROUPED = register(
    "transformer-lf-grouped-by-prescription", "new", "mapping",
    "[order changed] HamtaLakemedelsforteckning lists the reports grouped by prescription (prescriptions newest "
    "first, then each one's reports newest first) instead of all reports newest first",
).name
FAULT_FAULT_CHARSET = register(
    "transformer-fault-charset-latin1", "new", "mapping",
    "[header changed] the legacy business-fault answers (404/409/422/403 raised by an operation) declare "
    "Content-Type application/json; charset=ISO-8859-1 while the body is UTF-8: meddelande with å/ä/ö decodes wrong",
).name
FAULT_RECANCEL_MAKULERAD = register(
    "transformer-recancel-makulerad", "new", "behaviour",
    "[error code swapped] MakuleraOrdination of an already cancelled prescription answers 409 MAKULERAD (the "
    "withdrawal rule's code) instead of EJ_MAKULERBAR",
).name
FAULT_RESERVATION_FIRST = register(
    "transformer-withdrawal-checks-reservation-first", "new", "behaviour",
    "[error code swapped] GodkannUttag checks the expeditionsId reservation before the prescription exists: an "
    "unknown ordinationId with an unreserved expeditionsId is 409 OKANT_EXPEDITIONSID instead of 404 "
    "ORDINATION_SAKNAS",
).name
# the blind batch's parameters
STALE_EVERY = 20  # one aktuella read in this many is answered from the stale cache
DOSAGE_COLUMN_BYTES = 500  # the byte-sized column of transformer-doseringstext-500-bytes
HISTORY_SHOWN = 2  # withdrawals per prescription the summary-view query of the history returns
HISTORY_BATCH = 5  # prescriptions per withdrawal batch of transformer-history-batch-drops-oldest
SUMMER_OFFSET = timezone(timedelta(hours=2))  # CEST, hard-coded by transformer-fixed-summer-offset
SECONDS_PER_DAY = 86400
EPOCH = date(1970, 1, 1)
# the performance faults' parameters
AKTUELLA_HOLD_S = 0.04  # how long one HamtaAktuellaOrdinationer holds the shared connection
RACE_WINDOW_S = 0.05  # the pause between the check and the write of GodkannUttag (the race window)
ANONYMOUS = Actor(role="pharmacy", actor_id="anonymous")  # the default actor of the no-ticket fault

NLL_MEDICATION_REQUEST = "http://electronichealth.se/fhir/StructureDefinition/NLLMedicationRequest"
NLL_UNITS = "http://electronichealth.se/fhir/CodeSystem/nll-units"
PACKAGE_UNIT = {"value": None, "unit": "förpackning", "system": NLL_UNITS, "code": "pkg"}
# contracts/mapping/legacy-fhir.yaml: status.prescription, codes.*, rules.*
STATUS_TO_FHIR = {"Aktiv": "active", "Parkerad": "on-hold", "Makulerad": "cancelled",
                  "Slutexpedierad": "completed", "Avslutad": "stopped"}
STATUS_FROM_FHIR = {v: k for k, v in STATUS_TO_FHIR.items()}
FORMAT_TO_FHIR = {"ELEKTRONISK": "electronic", "TELEFON": "telephone"}
FORMAT_FROM_FHIR = {v: k for k, v in FORMAT_TO_FHIR.items()}
REASON_TO_FHIR = {"FEL_LAKEMEDEL": "wrong-medication", "FEL_PATIENT": "wrong-patient",
                  "FEL_DOSERING": "wrong-dosage", "BEHANDLING_AVSLUTAD": "treatment-ended", "OVRIGT": "other"}
REASON_FROM_FHIR = {v: k for k, v in REASON_TO_FHIR.items()}
DEFAULT_VALIDITY_DAYS = 366  # rules.default_validity_days
DEFAULT_VALIDITY_DAYS_TELEPHONE = 14  # rules.default_validity_days_telephone
MAX_VALIDITY_DAYS = 366  # legacy.yaml SkapaOrdinationVard: at most issue date + 366 days
# Which core rule refusing a withdrawal is which legacy fault.
WITHDRAWAL_FAULTS = {
    "cancelled": "MAKULERAD", "completed": "SLUTEXPEDIERAD", "not-dispensable": "KONFLIKT",
    "expired": "UTGANGEN", "too-many-packages": "FOR_MANGA_FORPACKNINGAR", "duplicate-dispensing": "KONFLIKT",
}
PRESCRIBER, PHARMACY = "prescriber", "pharmacy"
BOTH = (PRESCRIBER, PHARMACY)


def _first(items: list[dict[str, Any]] | None, system: str) -> dict[str, Any]:
    return next((i for i in items or [] if i.get("system") == system), {})


def _instant(value: str) -> str:
    """A FHIR instant as the legacy writes instants (UTC, milliseconds, Z)."""
    return timefmt.utc_instant(timefmt.parse_datetime(value))


class Transformer:
    """The legacy operations, each mapped onto the FHIR core."""

    def __init__(self, core: FhirCore) -> None:
        self.core = core
        self.faults = core.config.faults
        self.key = core.config.ticket_key
        self.shared_connection = asyncio.Lock()  # fault transformer-aktuella-slow-under-load only
        self.aktuella_cache: dict[str, dict[str, Any]] = {}  # fault transformer-aktuella-stale-cache only
        self.aktuella_reads = 0

    # ---- FHIR -> legacy ----

    def legacy_status(self, fhir_status: str) -> str:
        """The agency's status of a MedicationRequest.status."""
        if fhir_status == "cancelled" and self.faults.on(FAULT_CANCELLED_AS_COMPLETED):
            return "Slutexpedierad"
        return STATUS_FROM_FHIR.get(fhir_status, "Avslutad")

    def legacy_date(self, value: str) -> str:
        """The legacy date (Stockholm calendar date) of a FHIR date or dateTime."""
        if self.faults.on(FAULT_UTC_DATES):
            return timefmt.parse_datetime(value).astimezone(UTC).date().isoformat()
        if len(value) > 10 and self.faults.on(FAULT_FIXED_SUMMER_OFFSET):
            return timefmt.parse_datetime(value).astimezone(SUMMER_OFFSET).date().isoformat()
        if len(value) > 10 and self.faults.on(FAULT_EPOCH_DAY_ROUNDED):
            local = timefmt.parse_datetime(value).astimezone(timefmt.STOCKHOLM)
            offset = local.utcoffset() or timedelta()
            days = (local.timestamp() + offset.total_seconds()) / SECONDS_PER_DAY
            return (EPOCH + timedelta(days=round(days))).isoformat()
        return timefmt.local_date(value)

    def legacy_text(self, value: Any) -> Any:
        """A FHIR string as legacy text."""
        if isinstance(value, str) and self.faults.on(FAULT_MOJIBAKE):
            return value.encode("utf-8").decode("latin-1")
        return value

    def patient_system(self, person_id: str) -> str:
        """The FHIR identifier system of a legacy personId."""
        if self.faults.on(FAULT_SAMORDNINGSNUMMER):
            return PERSONNUMMER
        return identity_system(person_id)

    def ordination(self, mr: dict[str, Any], taken: int) -> dict[str, Any]:
        """The legacy Ordination of a MedicationRequest with `taken` withdrawals."""
        request = mr.get("dispenseRequest") or {}
        allowed = int(request.get("numberOfRepeatsAllowed", 0)) + 1
        medication = mr.get("medicationCodeableConcept") or {}
        practitioner: dict[str, Any] = next(
            (c for c in mr.get("contained", []) if c.get("resourceType") == "Practitioner"), {}
        )
        category = (mr.get("category") or [{}])[0].get("coding")
        packages = int((request.get("quantity") or {}).get("value", 1))
        if self.faults.on(FAULT_QUANTITY_ROUNDED):
            packages = max(1, packages // allowed)
        dosage = (mr.get("dosageInstruction") or [{}])[0].get("text")
        if self.faults.on(FAULT_DROPS_DOSAGE):
            dosage = (mr.get("dosageInstruction") or [{}])[0].get("patientInstruction", "")
        format_code = _first(category, PRESCRIPTION_FORMAT).get("code", "")
        if self.faults.on(FAULT_CATEGORY_LEGACY_CODE) and format_code in FORMAT_TO_FHIR:
            format_code = FORMAT_TO_FHIR[format_code]
        out: dict[str, Any] = {
            "ordinationId": mr["id"],
            "personId": mr["subject"]["identifier"]["value"],
            "status": self.legacy_status(mr["status"]),
            "utfardandedatum": self.legacy_date(mr["authoredOn"]),
            "giltigTom": self.legacy_date(request["validityPeriod"]["end"]),
            "lakemedel": {"nplPackId": _first(medication.get("coding"), NPL_PACK_ID).get("code"),
                          "namn": self.legacy_text(medication.get("text"))},
            "doseringstext": self.legacy_text(dosage),
            "antalForpackningar": packages,
            "antalUttag": allowed,
            "uttagKvar": max(0, allowed - taken),
            "forskrivningstyp": FORMAT_FROM_FHIR.get(format_code, "ELEKTRONISK"),
            "forskrivare": {
                "hsaId": _first(practitioner.get("identifier"), HSA_ID).get("value"),
                "forskrivarkod": _first(practitioner.get("identifier"), PRESCRIBER_CODE).get("value"),
                "arbetsplatskod": next((e.get("valueString") for e in mr.get("extension", [])
                                        if e.get("url") == WORKPLACE_CODE_EXT), None),
            },
        }
        out["senastAndrad"] = _instant(mr["meta"]["lastUpdated"])
        reason = _first((mr.get("statusReason") or {}).get("coding"), CANCELLATION_REASON).get("code")
        if mr["status"] == "cancelled" and reason in REASON_FROM_FHIR:
            out["makuleringsorsak"] = REASON_FROM_FHIR[reason]
        return out

    def uttag(self, md: dict[str, Any], uttag_kvar: int, status: str) -> dict[str, Any]:
        """The legacy Uttag of a withdrawal (a completed MedicationDispense)."""
        performer = (md.get("performer") or [{}])[0].get("actor", {}).get("identifier", {})
        return {
            "uttagId": md["id"],
            "ordinationId": reference_id(md["authorizingPrescription"][0]["reference"], "MedicationRequest"),
            "personId": md["subject"]["identifier"]["value"],
            "expeditionsId": _first(md.get("identifier"), DISPENSING_ID).get("value"),
            "apotekGln": performer.get("value"),
            "antalForpackningar": int((md.get("quantity") or {}).get("value", 1)),
            "tidpunkt": _instant(md.get("whenHandedOver") or md["meta"]["lastUpdated"]),
            "uttagKvar": uttag_kvar,
            "ordinationsstatus": status,
        }

    def _patient(self, person_id: str, conn: sqlite3.Connection | None = None) -> sqlite3.Row:
        row = self.core.patient(person_id, conn)
        if row is None:
            raise LegacyFault(404, "PATIENT_SAKNAS", "patienten finns inte (okänd identitet eller fel kontrollsiffra)")
        return row

    def _prescription(self, ordination_id: str, conn: sqlite3.Connection | None = None) -> dict[str, Any]:
        mr = self.core.read("MedicationRequest", ordination_id, conn)
        if mr is None:
            raise LegacyFault(404, "ORDINATION_SAKNAS", "ordinationen finns inte")
        return mr

    def _consent(self, person_id: str) -> bool:
        consent = self.core.current_consent(person_id)
        return bool(consent and consent.get("status") == "active")

    # ---- operations ----

    def skapa_ordination_vard(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        """SkapaOrdinationVard: a MedicationRequest created through the core."""
        person_id = call["personId"]
        self._patient(person_id)
        moment = timefmt.now()
        today = moment.astimezone(timefmt.STOCKHOLM).date()
        kind = call["forskrivningstyp"]
        if "giltigTom" in call:
            valid_to = date.fromisoformat(call["giltigTom"])
            latest_allowed = today + timedelta(days=MAX_VALIDITY_DAYS)
            if self.faults.on(FAULT_VALIDITY_LIMIT_EXCLUSIVE):
                latest_allowed -= timedelta(days=1)
            if valid_to < today or valid_to > latest_allowed:
                latest = today + timedelta(days=MAX_VALIDITY_DAYS)
                raise LegacyFault(422, "OGILTIG_GILTIGHETSTID", f"giltigTom måste ligga mellan {today} och {latest}")
        else:
            days = DEFAULT_VALIDITY_DAYS_TELEPHONE if kind == "TELEFON" else DEFAULT_VALIDITY_DAYS
            if kind != "TELEFON" and self.faults.on(FAULT_VALIDITY_365):
                days = 365
            if kind == "TELEFON" and self.faults.on(FAULT_TELEPHONE_13):
                days -= 1
            valid_to = today + timedelta(days=days)
        format_code = kind if self.faults.on(FAULT_CATEGORY_LEGACY_CODE) else FORMAT_TO_FHIR[kind]
        name, dosage = call["lakemedel"]["namn"], call["doseringstext"]
        if self.faults.on(FAULT_NAMN_NFD):
            name = unicodedata.normalize("NFD", name)
        if self.faults.on(FAULT_DOSAGE_BYTES):
            dosage = dosage.encode("utf-8")[:DOSAGE_COLUMN_BYTES].decode("utf-8", "ignore")
        mr = {
            "resourceType": "MedicationRequest",
            "meta": {"profile": [NLL_MEDICATION_REQUEST]},
            "contained": [{
                "resourceType": "Practitioner", "id": "prescriber",
                "identifier": [{"system": HSA_ID, "value": actor.hsa_id},
                               {"system": PRESCRIBER_CODE, "value": actor.forskrivarkod}],
            }],
            "extension": [{"url": WORKPLACE_CODE_EXT, "valueString": actor.arbetsplatskod}],
            "status": "active",
            "intent": "order",
            "category": [{"coding": [{"system": PRESCRIPTION_FORMAT, "code": format_code}]}],
            "medicationCodeableConcept": {
                "coding": [{"system": NPL_PACK_ID, "code": call["lakemedel"]["nplPackId"]}],
                "text": name,
            },
            "subject": {"identifier": {"system": self.patient_system(person_id), "value": person_id}},
            "authoredOn": timefmt.stockholm_instant(moment),
            "requester": {"reference": "#prescriber"},
            "dosageInstruction": [{"text": dosage}],
            "dispenseRequest": {
                "validityPeriod": {"start": today.isoformat(), "end": valid_to.isoformat()},
                "numberOfRepeatsAllowed": call["antalUttag"] - 1,
                "quantity": {**PACKAGE_UNIT, "value": call["antalForpackningar"]},
            },
        }
        with self.core.store.write() as conn:
            created = self.core.create(conn, mr, actor)
        return self.ordination(created, 0)

    def makulera_ordination(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        """MakuleraOrdinationVard and -Apotek: status cancelled with a reason, through a core update."""
        with self.core.store.write() as conn:
            mr = self._prescription(call["ordinationId"], conn)
            if mr["status"] not in ("active", "on-hold"):
                if mr["status"] == "cancelled" and self.faults.on(FAULT_RECANCEL_MAKULERAD):
                    raise LegacyFault(409, "MAKULERAD", "ordinationen är makulerad")
                raise LegacyFault(409, "EJ_MAKULERBAR",
                                  f"en ordination med status {self.legacy_status(mr['status'])} kan inte makuleras")
            mr["status"] = "cancelled"
            # The profile's statusReason is the reason code only: the free-text kommentar is not kept.
            mr["statusReason"] = {"coding": [{"system": CANCELLATION_REASON, "code": REASON_TO_FHIR[call["orsak"]]}]}
            updated = self.core.update(conn, mr, actor)
            taken = self.core.withdrawal_counts([updated["id"]], conn).get(updated["id"], 0)
        return self.ordination(updated, taken)

    def hamta_patient_info(self, _: Actor, call: dict[str, Any]) -> dict[str, Any]:
        """HamtaPatientInfo: the internal patient table plus the current Consent."""
        person_id = call["personId"]
        row = self._patient(person_id)
        return {
            "personId": person_id,
            "identitetstyp": "SAMORDNINGSNUMMER" if self.patient_system(person_id) == SAMORDNINGSNUMMER
            else "PERSONNUMMER",
            "fornamn": self.legacy_text(row["given_name"]),
            "efternamn": self.legacy_text(row["family_name"]),
            "fodelsedatum": row["birth_date"],
            "samtycke": self._consent(person_id),
        }

    def hamta_aktuella(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any] | Awaitable[dict[str, Any]]:
        """HamtaAktuellaOrdinationer: active or on-hold MedicationRequests still valid, newest first."""
        if self.faults.on(FAULT_SLOW_AKTUELLA_UNDER_LOAD):
            return self._aktuella_through_shared_connection(actor, call)
        return self._aktuella(call["personId"])

    async def _aktuella_through_shared_connection(self, _: Actor, call: dict[str, Any]) -> dict[str, Any]:
        # The seeded regression: every call waits its turn for one shared downstream connection.
        async with self.shared_connection:
            await asyncio.sleep(AKTUELLA_HOLD_S)
        return self._aktuella(call["personId"])

    def _aktuella(self, person_id: str) -> dict[str, Any]:
        self._patient(person_id)
        today = timefmt.today().isoformat()
        current = [
            mr for mr in self.core.prescriptions_of(person_id)
            if mr["status"] in ("active", "on-hold")
            and timefmt.local_date(mr["dispenseRequest"]["validityPeriod"]["end"]) >= today
        ]
        taken = self.core.withdrawal_counts(mr["id"] for mr in current)
        answer = {"personId": person_id,
                  "ordinationer": [self.ordination(mr, taken.get(mr["id"], 0)) for mr in current]}
        if self.faults.on(FAULT_AKTUELLA_STALE_CACHE):
            self.aktuella_reads += 1
            cached = self.aktuella_cache.get(person_id)
            self.aktuella_cache[person_id] = answer
            if cached is not None and self.aktuella_reads % STALE_EVERY == 0:
                return cached
        return answer

    def hamta_historik(self, _: Actor, call: dict[str, Any]) -> dict[str, Any]:
        """HamtaOrdinationshistorik: every MedicationRequest with its withdrawals (oldest first)."""
        person_id = call["personId"]
        self._patient(person_id)
        withdrawals = self.core.withdrawals_by_prescription(person_id)
        prescriptions = self.core.prescriptions_of(person_id)
        if len(prescriptions) > HISTORY_BATCH and self.faults.on(FAULT_HISTORY_BATCH):
            batched = {mr["id"] for mr in prescriptions[: len(prescriptions) - len(prescriptions) % HISTORY_BATCH]}
            withdrawals = {k: v for k, v in withdrawals.items() if k in batched}
        entries = []
        for mr in prescriptions:
            taken = withdrawals.get(mr["id"], [])
            ordination = self.ordination(mr, len(taken))
            if self.faults.on(FAULT_HISTORY_DROPS_REASON):
                ordination.pop("makuleringsorsak", None)
            uttag = self._history(ordination, taken)
            if self.faults.on(FAULT_HISTORY_LAST_TWO):
                uttag = uttag[-HISTORY_SHOWN:]
            entries.append({"ordination": ordination, "uttag": uttag})
        return {"personId": person_id, "ordinationer": entries}

    def _history(self, ordination: dict[str, Any], taken: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Each withdrawal as it was answered: what remained and the status right after it.
        # A withdrawal is only possible on an Aktiv or Parkerad prescription.
        before = ordination["status"] if ordination["status"] in ("Aktiv", "Parkerad") else "Aktiv"
        out = []
        for n, md in enumerate(taken, start=1):
            left = max(0, ordination["antalUttag"] - n)
            out.append(self.uttag(md, left, "Slutexpedierad" if left == 0 else before))
        return out

    def hamta_expeditions_id(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        """HamtaExpeditionsId: dispensing ids reserved for this pharmacy (an internal table)."""
        ids = self.core.reserve_dispensing_ids(actor.gln or "", call["antal"])
        return {"expeditionsIdn": ids}

    def godkann_uttag(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any] | Awaitable[dict[str, Any]]:
        """GodkannUttag: a completed MedicationDispense; check and write in one transaction."""
        if self.faults.on(FAULT_LAST_WITHDRAWAL_RACE):
            return self._godkann_uttag_in_two_steps(actor, call)
        dispensing_id = call["expeditionsId"]
        with self.core.store.write() as conn:
            if self.faults.on(FAULT_RESERVATION_FIRST) and not self.core.is_reserved(conn, dispensing_id, actor.gln):
                raise LegacyFault(409, "OKANT_EXPEDITIONSID", "expeditionsId är inte reserverat av detta apotek")
            mr = self._prescription(call["ordinationId"], conn)
            if not self.core.is_reserved(conn, dispensing_id, actor.gln):
                raise LegacyFault(409, "OKANT_EXPEDITIONSID", "expeditionsId är inte reserverat av detta apotek")
            md = self._withdrawal(mr, actor, call)
            try:
                created = self.core.create(conn, md, actor)
            except BusinessRule as exc:
                raise self._withdrawal_fault(exc, mr) from None
            after = self._prescription(mr["id"], conn)
            taken = self.core.withdrawal_counts([mr["id"]], conn).get(mr["id"], 0)
            if taken == 1 and self.faults.on(FAULT_FIRST_WITHDRAWAL_COUNT):
                taken = 0  # the count cache was filled before this first withdrawal was written
        ordination = self.ordination(after, taken)
        return self.uttag(created, ordination["uttagKvar"], ordination["status"])

    async def _godkann_uttag_in_two_steps(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        # The seeded regression: check in one transaction, yield to other requests, write in another.
        dispensing_id = call["expeditionsId"]
        with self.core.store.write() as conn:
            mr = self._prescription(call["ordinationId"], conn)
            if not self.core.is_reserved(conn, dispensing_id, actor.gln):
                raise LegacyFault(409, "OKANT_EXPEDITIONSID", "expeditionsId är inte reserverat av detta apotek")
            md = self._withdrawal(mr, actor, call)
            try:
                self.core.check_withdrawal(conn, mr, md, dispensing_id)
            except BusinessRule as exc:
                raise self._withdrawal_fault(exc, mr) from None
        await asyncio.sleep(RACE_WINDOW_S)
        with self.core.store.write() as conn:
            created = self.core.create(conn, md, actor, prechecked=True)
            after = self._prescription(mr["id"], conn)
            taken = self.core.withdrawal_counts([mr["id"]], conn).get(mr["id"], 0)
        ordination = self.ordination(after, taken)
        return self.uttag(created, ordination["uttagKvar"], ordination["status"])

    def _withdrawal(self, mr: dict[str, Any], actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        return {
            "resourceType": "MedicationDispense",
            "identifier": [{"system": DISPENSING_ID, "value": call["expeditionsId"]}],
            "status": "completed",
            "medicationCodeableConcept": mr["medicationCodeableConcept"],
            "subject": {"identifier": dict(mr["subject"]["identifier"])},
            "performer": [{"actor": {"identifier": {"system": GLN, "value": actor.gln}}}],
            "authorizingPrescription": [{"reference": f"MedicationRequest/{mr['id']}"}],
            "quantity": {**PACKAGE_UNIT, "value": call["antalForpackningar"]},
            "whenHandedOver": timefmt.utc_instant(timefmt.now()),
        }

    def _withdrawal_fault(self, exc: BusinessRule, mr: dict[str, Any]) -> Exception:
        kod = WITHDRAWAL_FAULTS.get(exc.rule)
        if kod is None:
            return exc
        return LegacyFault(409, kod, self._withdrawal_message(exc.rule, mr))

    def _withdrawal_message(self, rule: str, mr: dict[str, Any]) -> str:
        request = mr.get("dispenseRequest") or {}
        if rule == "cancelled":
            return "ordinationen är makulerad"
        if rule == "completed":
            return "ordinationen är slutexpedierad: inga uttag kvar"
        if rule == "not-dispensable":
            return "ordinationen är avslutad"
        if rule == "expired":
            return f"ordinationen gällde till och med {timefmt.local_date(request['validityPeriod']['end'])}"
        if rule == "too-many-packages":
            return f"högst {int(request['quantity']['value'])} förpackningar per uttag"
        return "expeditionsId är redan använt för ett uttag på denna ordination"

    def rapportera_expedition(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        """RapporteraExpeditionLF: a MedicationDispense tagged reported-to-lf."""
        dispensing_id = call["expeditionsId"]
        with self.core.store.write() as conn:
            mr = self._prescription(call["ordinationId"], conn)
            if mr["subject"]["identifier"]["value"] != call["personId"]:
                raise LegacyFault(409, "KONFLIKT", "personId stämmer inte med ordinationens patient")
            if not self.core.is_reserved(conn, dispensing_id, actor.gln):
                raise LegacyFault(409, "OKANT_EXPEDITIONSID", "expeditionsId är inte reserverat av detta apotek")
            registered = timefmt.utc_instant(timefmt.now())
            md = {
                "resourceType": "MedicationDispense",
                "meta": {"tag": [{"system": NLL_TAGS, "code": REPORTED_TO_LF}]},
                "identifier": [{"system": DISPENSING_ID, "value": dispensing_id}],
                "status": "completed",
                "medicationCodeableConcept": mr["medicationCodeableConcept"],
                "subject": {"identifier": dict(mr["subject"]["identifier"])},
                "performer": [{"actor": {"identifier": {"system": GLN, "value": actor.gln}}}],
                "authorizingPrescription": [{"reference": f"MedicationRequest/{mr['id']}"}],
                "quantity": {**PACKAGE_UNIT, "value": call["antalForpackningar"]},
                "whenHandedOver": registered,
            }
            dosage = (mr.get("dosageInstruction") or [{}])[0].get("text")
            if dosage and not self.faults.on(FAULT_LF_DROPS_DOSAGE):
                md["dosageInstruction"] = [{"text": dosage}]
            try:
                created = self.core.create(conn, md, actor)
            except BusinessRule as exc:
                if exc.rule != "duplicate-report":
                    raise
                raise LegacyFault(409, "KONFLIKT", "expeditionen är redan rapporterad för denna ordination") from None
        return {
            "rapportId": created["id"], "expeditionsId": dispensing_id, "personId": call["personId"],
            "ordinationId": mr["id"], "registrerad": _instant(created["whenHandedOver"]),
        }

    def uppdatera_samtycke(self, actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
        """UppdateraSamtycke: a new Consent (active or inactive); the newest one counts."""
        person_id = call["personId"]
        self._patient(person_id)
        changed = timefmt.utc_instant(timefmt.now())
        consent = {
            "resourceType": "Consent",
            "status": "active" if call["samtycke"] else "inactive",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"identifier": {"system": self.patient_system(person_id), "value": person_id}},
            "dateTime": changed,
            # NLLConsent fixes policyRule to OPTIN; a withdrawn consent is status inactive.
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        }
        with self.core.store.write() as conn:
            self.core.create(conn, consent, actor)
        return {"personId": person_id, "samtycke": call["samtycke"], "andrad": changed}

    def hamta_lakemedelsforteckning(self, _: Actor, call: dict[str, Any]) -> dict[str, Any]:
        """HamtaLakemedelsforteckning: the reported dispensings, newest first, with consent."""
        person_id = call["personId"]
        self._patient(person_id)
        if not self._consent(person_id) and not self.faults.on(FAULT_LF_WITHOUT_CONSENT):
            raise LegacyFault(403, "SAMTYCKE_SAKNAS",
                              "patienten har inte samtyckt till åtkomst till läkemedelsförteckningen")
        poster = []
        reported = self.core.reported_dispensings(person_id)
        if self.faults.on(FAULT_LF_GROUPED):
            order = {mr["id"]: n for n, mr in enumerate(self.core.prescriptions_of(person_id))}
            reported.sort(key=lambda md: order.get(
                reference_id(md["authorizingPrescription"][0]["reference"], "MedicationRequest") or "", len(order)))
        for md in reported:
            medication = md.get("medicationCodeableConcept") or {}
            post: dict[str, Any] = {
                "rapportId": md["id"],
                "ordinationId": reference_id(md["authorizingPrescription"][0]["reference"], "MedicationRequest"),
                "expeditionsId": _first(md.get("identifier"), DISPENSING_ID).get("value"),
                "lakemedel": {"nplPackId": _first(medication.get("coding"), NPL_PACK_ID).get("code"),
                              "namn": self.legacy_text(medication.get("text"))},
            }
            dosage = (md.get("dosageInstruction") or [{}])[0].get("text")
            if dosage:
                post["doseringstext"] = self.legacy_text(dosage)
            post["antalForpackningar"] = int((md.get("quantity") or {}).get("value", 1))
            post["expedierad"] = _instant(md.get("whenHandedOver") or md["meta"]["lastUpdated"])
            post["apotekGln"] = (md.get("performer") or [{}])[0].get("actor", {}).get("identifier", {}).get("value")
            poster.append(post)
        return {"personId": person_id, "poster": poster}

    def kontrollera_arbetsplatskod(self, _: Actor, call: dict[str, Any]) -> dict[str, Any]:
        """KontrolleraArbetsplatskod: whether the code is an active care unit's (internal table)."""
        code = call["arbetsplatskod"]
        return {"arbetsplatskod": code, "giltig": self.core.care_unit_active(code)}

    # ---- bindings ----

    def read_actor(self, operation: str, http_headers: Mapping[str, str], envelope: Any) -> Actor:
        """The caller, from the ticket (REST and SOAP alike)."""
        try:
            return read_actor(http_headers, envelope, self.key)
        except TicketError:
            if (operation == "HamtaPatientInfo" and not http_headers.get("authorization")
                    and self.faults.on(FAULT_PATIENT_INFO_WITHOUT_TICKET)):
                return ANONYMOUS
            raise

    def _legacy(self, handler: Handler) -> Handler:
        # A core refusal the legacy interface has no own fault for is a KONFLIKT.
        async def run(actor: Actor, call: dict[str, Any]) -> dict[str, Any]:
            try:
                return await answer(handler, actor, call)
            except LegacyFault as exc:
                if self.faults.on(FAULT_FAULT_CHARSET):
                    exc.charset = "ISO-8859-1"  # every binding declares this charset over its UTF-8 body
                raise
            except CoreError as exc:
                fault = LegacyFault(409 if exc.status == 422 else exc.status, "KONFLIKT", exc.message)
                if self.faults.on(FAULT_FAULT_CHARSET):
                    fault.charset = "ISO-8859-1"
                raise fault from None

        return run

    def operations(self) -> dict[str, LegacyOperation]:
        """The legacy operations by service name (contracts/riv/services.toml)."""
        def op(roles: tuple[str, ...], handler: Handler) -> LegacyOperation:
            return LegacyOperation(roles, self._legacy(handler))

        return {
            "SkapaOrdinationVard": op((PRESCRIBER,), self.skapa_ordination_vard),
            "MakuleraOrdinationVard": op((PRESCRIBER,), self.makulera_ordination),
            "MakuleraOrdinationApotek": op((PHARMACY,), self.makulera_ordination),
            "GodkannUttag": op((PHARMACY,), self.godkann_uttag),
            "HamtaPatientInfo": op(BOTH, self.hamta_patient_info),
            "HamtaAktuellaOrdinationer": op(BOTH, self.hamta_aktuella),
            "HamtaOrdinationshistorik": op(BOTH, self.hamta_historik),
            "UppdateraSamtycke": op(BOTH, self.uppdatera_samtycke),
            "HamtaLakemedelsforteckning": op(BOTH, self.hamta_lakemedelsforteckning),
            "HamtaExpeditionsId": op((PHARMACY,), self.hamta_expeditions_id),
            "RapporteraExpeditionLF": op((PHARMACY,), self.rapportera_expedition),
            "KontrolleraArbetsplatskod": op(BOTH, self.kontrollera_arbetsplatskod),
        }
