"""What a platform serves about each test patient: the legacy reads, and the FHIR resources read as legacy data.

The legacy side is the old interface's four read services, called through the one legacy client
as a pharmacy system calls them; an answer is kept as its status, its fault code and its body in
today's JSON shape (the mapping contract's field names). The FHIR side reads the patient's
MedicationRequests, MedicationDispenses and Consents and turns them into the same legacy shape
by the mapping contract (contracts/mapping/legacy-fhir.yaml), so both compare field by field
with what the old platform served. Reads only; every request leaves through the run's guarded
session.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import requests

from rxverify import __version__
from rxverify.contracts.riv import RivContracts
from rxverify.legacy.client import LegacyClient
from rxverify.mapping import Mapping
from rxverify.safety.registry import TestPatient
from rxverify.target.run import Run

# The read services whose answers the migration must keep (contracts/riv/services.toml, writes = false).
READS = ("HamtaPatientInfo", "HamtaAktuellaOrdinationer", "HamtaOrdinationshistorik", "HamtaLakemedelsforteckning")
# The census: what a reconciliation of a sample still reads of every other test patient, so that no
# prescription (nor any withdrawal of one) is lost, doubled or altered unseen outside the sample, nor
# any patient's consent: the patient record (HamtaPatientInfo: samtycke, the consent that opens the
# medication list) and the whole history, every prescription the patient has had with its withdrawals
# (a migration's control totals). One consent lost outside a sample of 40 went unseen without the first.
CENSUS = ("HamtaPatientInfo", "HamtaOrdinationshistorik")
ROLE = "pharmacy"  # a pharmacy system may call every one of READS
FHIR_PAGE = 100  # fhir.yaml _count maximum
FHIR_TIMEOUT_S = 30.0
REPORTED = "reported"  # where a dispensing's reported-to-lf tag is kept while it is sorted
WORKERS = 4  # patients read at a time: the platforms answer while the next request is made (2 cores)
Answer = dict[str, Any]
T = TypeVar("T")  # {"status": int, "kod": str | None, "body": Any}


def per_patient(run: Run, patients: Iterable[TestPatient], read: Callable[[requests.Session, TestPatient], T],
                workers: int = WORKERS) -> dict[str, T]:
    """`read` of every patient, `workers` at a time, each worker with its own guarded session; by patient id."""
    local = threading.local()

    def one(patient: TestPatient) -> T:
        if not hasattr(local, "session"):
            local.session = run.session()
        return read(local.session, patient)

    chosen = list(patients)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip((p.id for p in chosen), pool.map(one, chosen), strict=True))


def legacy_reads(run: Run, platform: str, contracts: RivContracts, patients: Iterable[TestPatient],
                 operations: tuple[str, ...] = READS) -> dict[str, dict[str, Answer]]:
    """Every read of `operations` for every patient on `platform`'s legacy interface: id -> operation -> answer."""
    endpoints = run.target.platforms[platform]
    assert endpoints.legacy is not None
    base = endpoints.legacy

    def read(session: requests.Session, patient: TestPatient) -> dict[str, Answer]:
        client = LegacyClient(session, base, contracts, run.legacy_credentials(), run.actors)
        answers = {}
        for operation in operations:
            answer = client.call(operation, {"personnummer": patient.id}, role=ROLE)
            answers[operation] = {"status": answer.status, "kod": answer.kod,
                                  "body": answer.json if answer.ok else None}
        return answers

    return per_patient(run, patients, read)


def _search(session: requests.Session, run: Run, base: str, resource: str, token: str) -> list[dict[str, Any]]:
    """Every resource of a patient search, page after page (Bundle link next)."""
    headers = run.auth_headers(ROLE) | {
        "Accept": "application/fhir+json", "x-request-id": str(uuid.uuid4()), "x-context-id": str(uuid.uuid4()),
        "x-user-agent": f"rxverify-reconcile/{__version__}",
    }
    url: str | None = f"{base}/{resource}"
    params: dict[str, Any] | None = {"patient-identifier": token, "_count": FHIR_PAGE}
    found: list[dict[str, Any]] = []
    while url:
        r = session.get(url, params=params, headers=headers, timeout=FHIR_TIMEOUT_S)
        if r.status_code != 200:
            raise FhirReadError(f"{resource} search answered {r.status_code}")
        bundle = r.json()
        found += [e["resource"] for e in bundle.get("entry") or [] if "resource" in e]
        url = next((link["url"] for link in bundle.get("link") or [] if link.get("relation") == "next"), None)
        params = None  # the next link carries the whole query
    return found


class FhirReadError(Exception):
    """A FHIR search did not answer 200 (kept as the patient's answer, not raised further)."""


def fhir_reads(run: Run, platform: str, mapping: Mapping,
               patients: Iterable[TestPatient]) -> dict[str, dict[str, Answer]]:
    """The FHIR resources of every patient, as legacy answers (patient id -> operation -> answer) by the mapping."""
    base = run.target.platforms[platform].fhir
    if base is None:
        return {}
    view = FhirView(mapping)

    def read(session: requests.Session, patient: TestPatient) -> dict[str, Answer]:
        token = f"{mapping.identity_system(patient.id)}|{patient.id}"
        try:
            found = {r: _search(session, run, base, r, token) for r in ("MedicationRequest", "MedicationDispense",
                                                                          "Consent")}
        except FhirReadError as exc:
            return {"FHIR": {"status": 0, "kod": str(exc), "body": None}}
        return view.answers(found)

    return per_patient(run, patients, read)


def set_path(document: dict[str, Any], dotted: str, value: Any) -> None:
    """Put `value` at a dotted field name (`lakemedel.namn`) of a nested dict."""
    *parents, leaf = dotted.split(".")
    for p in parents:
        document = document.setdefault(p, {})
    document[leaf] = value


class FhirView:
    """FHIR resources read as the legacy answers the mapping says they are."""

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        raw = mapping.raw
        self.status_back = {v: k for k, v in raw["status"]["prescription"].items()} | dict(raw["status"]["fhir_only"])
        self.codes_back = {table: {v: k for k, v in codes.items()} for table, codes in raw["codes"].items()}
        system, _, code = raw["medication_list"]["reported_tag"].partition("|")
        self.reported_tag = (system, code)

    def record(self, section: str, resource: dict[str, Any]) -> dict[str, Any]:
        """One resource as the legacy record of `section` (the mapped fields; derived ones left out)."""
        out: dict[str, Any] = {}
        for name, path in self.mapping.fields(section).items():
            if path == "derived":
                continue
            value = self.mapping.resolve(resource, path.split(" ")[0])
            if value is None:
                continue
            set_path(out, name, self.value(name, value))
        return out

    def value(self, name: str, value: Any) -> Any:
        """A FHIR value in its legacy form (codes back, dates local, references to ids, repeats + 1)."""
        if name == "status":
            return self.status_back.get(value, value)
        if name in ("forskrivningstyp", "makuleringsorsak"):
            return self.codes_back[name].get(value, value)
        if name == "utfardandedatum":
            return self.mapping.local_date(value)
        if name == "antalUttag":
            return value + 1  # rules.withdrawals_from_repeats
        if name == "ordinationId" and isinstance(value, str) and "/" in value:
            return value.rsplit("/", 1)[-1]
        if name == "samtycke":
            return value == "active"
        return value

    def is_reported(self, dispense: dict[str, Any]) -> bool:
        """Whether a MedicationDispense is a medication-list entry (tagged reported-to-lf)."""
        tags = (dispense.get("meta") or {}).get("tag") or []
        return any((t.get("system"), t.get("code")) == self.reported_tag for t in tags)

    def answers(self, found: dict[str, list[dict[str, Any]]]) -> dict[str, Answer]:
        """The patient's resources as HamtaOrdinationshistorik, HamtaLakemedelsforteckning and HamtaPatientInfo."""
        dispenses = [d for d in found["MedicationDispense"] if d.get("status") == self.mapping.raw["status"][
            "dispensing"]["registered"]]
        withdrawals = [d for d in dispenses if not self.is_reported(d)]
        entries = [d for d in dispenses if self.is_reported(d)]
        by_prescription: dict[str, list[dict[str, Any]]] = {}
        for d in withdrawals:
            record = self.record("dispensing", d)
            by_prescription.setdefault(str(record.get("ordinationId")), []).append(record)
        history = []
        for mr in found["MedicationRequest"]:
            prescription = self.record("prescription", mr)
            taken = by_prescription.get(prescription.get("ordinationId", ""), [])
            if "antalUttag" in prescription:  # uttagKvar: derived, antalUttag less the completed withdrawals
                prescription["uttagKvar"] = prescription["antalUttag"] - len(taken)
            history.append({"ordination": prescription, "uttag": taken})
        consents = sorted(found["Consent"], key=lambda c: str(c.get("dateTime") or ""))
        samtycke = self.record("consent", consents[-1]).get("samtycke", False) if consents else False
        return {
            "HamtaOrdinationshistorik": {"status": 200, "kod": None, "body": {"ordinationer": history}},
            "HamtaLakemedelsforteckning": {"status": 200, "kod": None,
                                           "body": {"poster": [self.record("medication_list", d) for d in entries]}},
            "HamtaPatientInfo": {"status": 200, "kod": None, "body": {"samtycke": samtycke}},
        }
