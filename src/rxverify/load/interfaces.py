"""The work of the callers as requests: on the old service interface (legacy) or on the FHIR API.

`--platform old` and `--platform new` send the legacy requests, RIV-TA SOAP through the one legacy
client (to the old platform, or to the new platform through its transformer); `--platform fhir`
sends the FHIR requests of the new platform. Request names group URLs with ids: the legacy
service (`HamtaAktuellaOrdinationer`) or the FHIR interaction (`MedicationRequest?patient&status`).

Work with no FHIR counterpart in contracts/openapi/fhir.yaml is not sent on `fhir`: reserving
dispensing ids (the pharmacy system makes the dispensing id itself), cancelling a prescription
(the FHIR API has no update) and checking a workplace code; the care system's patient look-up
reads the patient's consent (`Consent?patient`), the part of HamtaPatientInfo FHIR has.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import requests

from rxverify.contracts.riv import load_riv
from rxverify.legacy.client import LegacyAnswer, LegacyClient
from rxverify.legacy.envelope import APPLICATION
from rxverify.load.client import document
from rxverify.paths import contracts_dir

if TYPE_CHECKING:
    from rxverify.target.run import Run

PERSONNUMMER = "http://electronichealth.se/identifier/personnummer"
SAMORDNINGSNUMMER = "http://electronichealth.se/identifier/samordningsnummer"
DISPENSING_ID = "http://electronichealth.se/identifier/nlldispensingid"
NPL_PACK_ID = "http://electronichealth.se/identifier/nplpackid"
NLL_TAGS = "http://electronichealth.se/fhir/CodeSystem/nll-tags"
PRESCRIPTION_ID = "http://electronichealth.se/identifier/nllmedicationrequestid"
NLL_UNITS = "http://electronichealth.se/fhir/CodeSystem/nll-units"
HSA_ID = "urn:oid:1.2.752.29.4.19"
PRESCRIBER_CODE = "urn:oid:1.2.752.116.3.1.2"
GLN = "urn:oid:1.3.88"
WORKPLACE_CODE_EXT = "http://electronichealth.se/fhir/StructureDefinition/nll-workplace-code"
PRESCRIPTION_CHAIN_ID = "http://electronichealth.se/identifier/nllprescriptionchainid"
PRESCRIPTION_FORMAT = "http://electronichealth.se/fhir/CodeSystem/nll-prescription-format"
USER_AGENT = "rxverify-load/0.1"
# a product every test prescription names (the example of legacy.yaml)
MEDICINE = {"nplPackId": "19990101100001", "namn": "Alvedon 500 mg tablett"}
DOSAGE = "1 tablett 3 gånger dagligen vid behov"
SEED_WITHDRAWALS = 12  # the most a prescription allows (legacy.yaml antalUttag maximum)
# A withdrawal or cancellation can meet a prescription another caller just completed or
# cancelled: a correct answer of the platform under concurrent load, not a failure.
LEGACY_RACES = frozenset({"SLUTEXPEDIERAD", "MAKULERAD", "EJ_MAKULERBAR"})


@dataclass
class Dispensable:
    """A prescription a pharmacy may withdraw against."""

    person_id: str
    prescription_id: str
    packages: int


@dataclass
class Withdrawal:
    """A withdrawal made, to be reported to the medication list."""

    person_id: str
    prescription_id: str
    dispensing_id: str
    packages: int


class Vu(Protocol):
    """What the interfaces need of a virtual user."""

    client: Any
    context_id: str
    secure: bool  # Säker åtkomst 17.1: assertions and tokens over the actor's certificate

    def auth(self) -> str:
        """The Authorization header value of this user's test actor (its access token under 17.1)."""
        ...

    def security_header(self) -> Any:
        """The wsse:Security header entry of this user's test actor (17.1; None on JWT tickets)."""
        ...

    def actor(self) -> dict[str, Any]:
        """This user's test actor (contracts/testdata/test-actors.json)."""
        ...


def _body(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _json(response: Any) -> Any:
    return document(response)


def patient_system(person_id: str) -> str:
    """The FHIR identifier system of a 12-digit number (samordningsnummer: day of birth + 60)."""
    return SAMORDNINGSNUMMER if int(person_id[6:8]) > 60 else PERSONNUMMER


class _Interface:
    """What both interfaces share: one request through Locust's client, judged by its status.

    The expected statuses pass; a 409 passes only where the work allows a race (`race=True`)
    and the interface's `_race` recognises the answer; everything else is a failure.
    """

    def _headers(self, vu: Vu) -> dict[str, str]:
        raise NotImplementedError

    @staticmethod
    def _race(response: Any) -> bool:
        raise NotImplementedError

    def _send(
        self,
        vu: Vu,
        method: str,
        path: str,
        name: str,
        body: Any = None,
        ok: tuple[int, ...] = (200,),
        race: bool = False,
    ) -> Any:
        data = _body(body) if body is not None else None
        with vu.client.request(
            method, path, name=name, data=data, headers=self._headers(vu), catch_response=True
        ) as response:
            return judge(response, ok, self._race if race else None)


def judge(response: Any, ok: tuple[int, ...], race: Callable[[Any], bool] | None = None) -> Any:
    """Mark a Locust response context: success on `ok` (or a recognised 409 race), failure otherwise."""
    status = response.status_code
    if status in ok or (status == 409 and race is not None and race(response)):
        response.success()
        return response if status in ok else None  # parsed only by the work that reads it
    response.failure(f"status {status}: {(response.text or '')[:200] if status else response.error}")
    return None


class _VuCredentials:
    """A VU's ticket as the legacy client's credentials (the VU re-mints it before it expires)."""

    def __init__(self, vu: Vu) -> None:
        self.vu = vu

    def ticket(self, role: str, index: int = 0) -> str | None:
        """The VU's JWT ticket, whatever role is asked (a VU acts as one test actor); none under 17.1."""
        if self.vu.secure:
            return None
        return self.vu.auth().removeprefix("Bearer ")

    def security_header(self, role: str, index: int = 0) -> Any:
        """The VU's assertion in wsse:Security (17.1), whatever role is asked; None on JWT tickets."""
        return self.vu.security_header() if self.vu.secure else None


@dataclass(frozen=True)
class _OneActor:
    """The test actors as the legacy client reads them, when one actor acts (a VU, the seeding prescriber)."""

    actor: dict[str, Any]

    @property
    def prescribers(self) -> list[dict[str, Any]]:
        """The one acting actor."""
        return [self.actor]

    pharmacies = prescribers


class Legacy(_Interface):
    """The old service interface: RIV-TA SOAP 1.1, each request written and read by the one legacy client.

    The client prepares the request (endpoint below the legacy base, SOAPAction, LogicalAddress and
    ArgosHeader of the VU's actor, its ticket) and Locust's guarded client sends it. A refusal is a
    SOAP fault (HTTP 500): an ApplicationException whose kod is a race of concurrent load passes
    where the work allows one, every other fault is a failure named by its kind and kod.
    """

    name = "legacy"
    # every request name it sends: the SLO file's objectives of other names are not this run's
    request_names = frozenset({
        "HamtaAktuellaOrdinationer", "HamtaOrdinationshistorik", "HamtaPatientInfo", "HamtaExpeditionsId",
        "GodkannUttag", "RapporteraExpeditionLF", "UppdateraSamtycke", "HamtaLakemedelsforteckning",
        "SkapaOrdinationVard", "MakuleraOrdinationVard", "KontrolleraArbetsplatskod",
    })  # fmt: skip

    def __init__(self, contracts: Path | None = None) -> None:
        self.riv = load_riv(contracts or contracts_dir())

    def _client(self, vu: Vu) -> LegacyClient:
        return LegacyClient(None, "", self.riv, _VuCredentials(vu), _OneActor(vu.actor()))

    def _headers(self, vu: Vu) -> dict[str, str]:
        return {}  # the legacy client writes every header

    @staticmethod
    def _race(response: Any) -> bool:
        return False  # SOAP races are read from the fault (_call)

    def _call(self, vu: Vu, service: str, data: dict[str, Any], race: bool = False) -> LegacyAnswer | None:
        """Send one SOAP request of `service`; the answer when it is the response element, else None."""
        client = self._client(vu)
        role = getattr(vu, "role", "") or client.service(service).roles[0]
        prepared = client.prepare(service, data, role=role)
        with vu.client.request("POST", prepared.url, name=service, data=prepared.body, headers=prepared.headers,
                               catch_response=True) as response:
            status = response.status_code
            answer = client.read(prepared.service, status, response.headers.get("content-type") or "",
                                 response.content or b"")
            if answer.ok and status == 200:
                response.success()
                return answer
            fault = answer.fault
            if race and fault is not None and fault.kind == APPLICATION and fault.kod in LEGACY_RACES:
                response.success()
                return None
            if fault is not None:
                response.failure(f"status {status}: {fault.kind or 'fault'} {fault.kod or ''} {fault.meddelande or ''}"
                                 .strip())
            else:
                reason = answer.parsed.problem or f"status {status}"
                response.failure(f"{reason}: {(response.text or '')[:200]}" if status else str(response.error))
            return None

    def current_prescriptions(self, vu: Vu, person_id: str) -> list[Dispensable]:
        """HamtaAktuellaOrdinationer: the patient's current prescriptions with withdrawals left."""
        answer = self._call(vu, "HamtaAktuellaOrdinationer", {"personnummer": person_id})
        found = answer.body.get("ordination", []) if answer is not None else []
        return [
            Dispensable(person_id, o["ordinationsId"], int(o["antalForpackningar"]))
            for o in found
            if o.get("status") == "Aktiv" and int(o.get("uttagKvar", 0)) > 0
        ]

    def history(self, vu: Vu, person_id: str) -> None:
        """HamtaOrdinationshistorik: every prescription with its withdrawals."""
        self._call(vu, "HamtaOrdinationshistorik", {"personnummer": person_id})

    def patient_info(self, vu: Vu, person_id: str) -> None:
        """HamtaPatientInfo."""
        self._call(vu, "HamtaPatientInfo", {"personnummer": person_id})

    def reserve_dispensing_ids(self, vu: Vu, count: int) -> list[str]:
        """HamtaExpeditionsId: `count` dispensing ids."""
        answer = self._call(vu, "HamtaExpeditionsId", {"antal": count})
        ids = answer.body.get("expeditionsId", []) if answer is not None else []
        return [str(i) for i in (ids if isinstance(ids, list) else [ids])]

    def withdraw(self, vu: Vu, item: Dispensable, dispensing_id: str) -> Withdrawal | None:
        """GodkannUttag: one withdrawal against a prescription."""
        data = {"ordinationsId": item.prescription_id, "expeditionsId": dispensing_id,
                "antalForpackningar": item.packages}
        if self._call(vu, "GodkannUttag", data, race=True) is None:
            return None
        return Withdrawal(item.person_id, item.prescription_id, dispensing_id, item.packages)

    def report(self, vu: Vu, done: Withdrawal) -> None:
        """RapporteraExpeditionLF: report a withdrawal to the medication list."""
        self._call(vu, "RapporteraExpeditionLF", {
            "expeditionsId": done.dispensing_id, "personnummer": done.person_id,
            "ordinationsId": done.prescription_id, "antalForpackningar": done.packages,
        })  # fmt: skip

    def record_consent(self, vu: Vu, person_id: str) -> None:
        """UppdateraSamtycke: consent given (kept given, so the medication list stays readable)."""
        self._call(vu, "UppdateraSamtycke", {"personnummer": person_id, "samtycke": True})

    def medication_list(self, vu: Vu, person_id: str) -> None:
        """HamtaLakemedelsforteckning."""
        self._call(vu, "HamtaLakemedelsforteckning", {"personnummer": person_id})

    def write_prescription(self, vu: Vu, person_id: str) -> str | None:
        """SkapaOrdinationVard: a new prescription; returns its id."""
        answer = self._call(vu, "SkapaOrdinationVard", new_prescription(person_id))
        return str(answer.body["ordinationsId"]) if answer is not None and "ordinationsId" in answer.body else None

    def cancel(self, vu: Vu, prescription_id: str) -> None:
        """MakuleraOrdinationVard (the care system cancels its prescription)."""
        self._call(vu, "MakuleraOrdinationVard", {"ordinationsId": prescription_id, "orsak": "FEL_DOSERING"},
                   race=True)

    def check_workplace_code(self, vu: Vu, code: str) -> None:
        """KontrolleraArbetsplatskod."""
        self._call(vu, "KontrolleraArbetsplatskod", {"arbetsplatskod": code})

    def seed(
        self,
        http: requests.Session,
        run: Run,
        base: str,
        person_id: str,
        prescriptions: int,
        prescriber: dict[str, Any],
    ) -> None:
        """Consent and `prescriptions` prescriptions for one test patient (synchronous, guarded session)."""
        credentials = run.legacy_credentials() if run.secure else _Fixed(
            run.auth_headers("prescriber")["Authorization"].removeprefix("Bearer "))
        client = LegacyClient(http, base, self.riv, credentials, _OneActor(prescriber))
        calls = [("UppdateraSamtycke", {"personnummer": person_id, "samtycke": True}, "pharmacy")]
        calls += [("SkapaOrdinationVard", new_prescription(person_id), "prescriber")] * prescriptions
        for service, data, role in calls:
            answer = client.call(service, data, role=role)
            if not answer.ok:
                kod = answer.kod or answer.parsed.problem or ""
                raise SeedError(f"{service} {answer.status}: {kod} {(answer.fault.meddelande if answer.fault else '')}"
                                .strip())


class _Fixed:
    """Credentials that send one ticket (the seeding prescriber's)."""

    def __init__(self, ticket: str) -> None:
        self._ticket = ticket

    def ticket(self, role: str, index: int = 0) -> str | None:
        """The one ticket."""
        return self._ticket


def new_prescription(person_id: str) -> dict[str, Any]:
    """A prescription from care for a test patient (SkapaOrdinationVard's request element, XML names)."""
    return {
        "personnummer": person_id, "lakemedel": MEDICINE, "doseringstext": DOSAGE,
        "antalForpackningar": 1, "antalUttag": SEED_WITHDRAWALS, "forskrivningstyp": "ELEKTRONISK",
    }  # fmt: skip


def _seeded(response: requests.Response) -> None:
    if response.status_code >= 400:
        raise SeedError(f"{response.request.method} {response.status_code}: {response.text[:200]}")


class SeedError(Exception):
    """The platform refused the data the run needs."""


class Fhir(_Interface):
    """The new platform's FHIR API (contracts/openapi/fhir.yaml)."""

    name = "fhir"
    request_names = frozenset({
        "MedicationRequest?patient&status", "MedicationRequest?patient", "MedicationRequest", "MedicationDispense",
        "MedicationDispense?patient", "MedicationDispense (report)", "Consent", "Consent?patient",
    })  # fmt: skip

    def __init__(self, contracts: Path | None = None) -> None:
        pass  # the FHIR requests are built here; fhir.yaml is the contract they keep

    def _headers(self, vu: Vu) -> dict[str, str]:
        return {
            "Authorization": vu.auth(), "Accept": "application/fhir+json",
            "Content-Type": "application/fhir+json", "x-request-id": str(uuid.uuid4()),
            "x-context-id": vu.context_id, "x-user-agent": USER_AGENT,
        }  # fmt: skip

    @staticmethod
    def _race(response: Any) -> bool:
        return True  # a 409 on a withdrawal: the prescription was used up or cancelled meanwhile

    @staticmethod
    def _token(person_id: str) -> str:
        return f"{patient_system(person_id)}|{person_id}"

    def current_prescriptions(self, vu: Vu, person_id: str) -> list[Dispensable]:
        """MedicationRequest search: the patient's active prescriptions."""
        answer = self._send(
            vu,
            "GET",
            f"/MedicationRequest?patient-identifier={self._token(person_id)}&status=active",
            "MedicationRequest?patient&status",
        )
        found = []
        for entry in ((_json(answer) if answer is not None else None) or {}).get("entry", []):
            res = entry.get("resource", {})
            request = res.get("dispenseRequest", {})
            found.append(
                Dispensable(person_id, res.get("id", ""), int((request.get("quantity") or {}).get("value", 1)))
            )
        return found

    def history(self, vu: Vu, person_id: str) -> None:
        """MedicationRequest search: every prescription of the patient."""
        self._send(
            vu, "GET", f"/MedicationRequest?patient-identifier={self._token(person_id)}", "MedicationRequest?patient"
        )

    def patient_info(self, vu: Vu, person_id: str) -> None:
        """Consent search: the patient's consent (the part of HamtaPatientInfo FHIR has)."""
        self._send(vu, "GET", f"/Consent?patient-identifier={self._token(person_id)}", "Consent?patient")

    def reserve_dispensing_ids(self, vu: Vu, count: int) -> list[str]:
        """No request: on FHIR the pharmacy system makes its dispensing ids itself."""
        return [str(uuid.uuid4()) for _ in range(count)]

    def _dispense(
        self, item: Dispensable | Withdrawal, dispensing_id: str, reported: bool, pharmacy: dict[str, Any]
    ) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "resourceType": "MedicationDispense",
            "identifier": [{"system": DISPENSING_ID, "value": dispensing_id}],
            "status": "completed",
            "medicationCodeableConcept": {
                "coding": [{"system": NPL_PACK_ID, "code": MEDICINE["nplPackId"]}], "text": MEDICINE["namn"],
            },
            "subject": {"identifier": {"system": patient_system(item.person_id), "value": item.person_id}},
            "authorizingPrescription": [{"reference": f"MedicationRequest/{item.prescription_id}"}],
            "quantity": packages(item.packages),
            "performer": [{"actor": {"identifier": {"system": GLN, "value": pharmacy["gln"]}}}],
            "whenHandedOver": _now(),
        }  # fmt: skip
        if reported:
            resource["meta"] = {"tag": [{"system": NLL_TAGS, "code": "reported-to-lf"}]}
        return resource

    def withdraw(self, vu: Vu, item: Dispensable, dispensing_id: str) -> Withdrawal | None:
        """MedicationDispense create: one withdrawal."""
        doc = self._send(
            vu,
            "POST",
            "/MedicationDispense",
            "MedicationDispense",
            self._dispense(item, dispensing_id, False, vu.actor()),
            ok=(201,),
            race=True,
        )
        if doc is None:
            return None
        return Withdrawal(item.person_id, item.prescription_id, dispensing_id, item.packages)

    def report(self, vu: Vu, done: Withdrawal) -> None:
        """MedicationDispense create, tagged reported-to-lf: the report to the medication list."""
        self._send(
            vu,
            "POST",
            "/MedicationDispense",
            "MedicationDispense (report)",
            self._dispense(done, done.dispensing_id, True, vu.actor()),
            ok=(201,),
        )

    def record_consent(self, vu: Vu, person_id: str) -> None:
        """Consent create (active)."""
        self._send(vu, "POST", "/Consent", "Consent", consent(person_id), ok=(201,))

    def medication_list(self, vu: Vu, person_id: str) -> None:
        """MedicationDispense search: the patient's dispensings."""
        self._send(
            vu, "GET", f"/MedicationDispense?patient-identifier={self._token(person_id)}", "MedicationDispense?patient"
        )

    def write_prescription(self, vu: Vu, person_id: str) -> str | None:
        """MedicationRequest create."""
        answer = self._send(
            vu, "POST", "/MedicationRequest", "MedicationRequest", medication_request(person_id, vu.actor()), ok=(201,)
        )
        return (_json(answer) or {}).get("id") if answer is not None else None

    def cancel(self, vu: Vu, prescription_id: str) -> None:
        """No request: fhir.yaml has no update of a MedicationRequest."""

    def check_workplace_code(self, vu: Vu, code: str) -> None:
        """No request: fhir.yaml has no workplace-code check."""

    def seed(
        self,
        http: requests.Session,
        run: Run,
        base: str,
        person_id: str,
        prescriptions: int,
        prescriber: dict[str, Any],
    ) -> None:
        """Consent and `prescriptions` prescriptions for one test patient (synchronous, guarded session)."""
        headers = {
            **run.auth_headers("prescriber"), "Content-Type": "application/fhir+json", "x-request-id": "",
            "x-context-id": str(uuid.uuid4()), "x-user-agent": USER_AGENT,
        }  # fmt: skip
        for path, body in [("Consent", consent(person_id))] + [
            ("MedicationRequest", medication_request(person_id, prescriber)) for _ in range(prescriptions)
        ]:
            headers["x-request-id"] = str(uuid.uuid4())
            _seeded(http.post(f"{base}/{path}", data=_body(body), headers=headers, timeout=30))


def packages(count: int) -> dict[str, Any]:
    """A quantity of packages (NLL units)."""
    return {"value": count, "unit": "förpackning", "system": NLL_UNITS, "code": "pkg"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def consent(person_id: str) -> dict[str, Any]:
    """An active NLL Consent for a test patient."""
    return {
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"identifier": {"system": patient_system(person_id), "value": person_id}},
        "dateTime": _now(),
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
    }  # fmt: skip


def medication_request(person_id: str, prescriber: dict[str, Any]) -> dict[str, Any]:
    """An active NLL MedicationRequest for a test patient, written by a test prescriber."""
    return {
        "resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "contained": [{"resourceType": "Practitioner", "id": "prescriber", "identifier": [
            {"system": HSA_ID, "value": prescriber["hsaId"]},
            {"system": PRESCRIBER_CODE, "value": prescriber["forskrivarkod"]},
        ]}],
        "extension": [{"url": WORKPLACE_CODE_EXT, "valueString": prescriber["careUnit"]}],
        "identifier": [{"system": PRESCRIPTION_ID, "value": str(uuid.uuid4())},
                       {"system": PRESCRIPTION_CHAIN_ID, "value": str(uuid.uuid4())}],
        "category": [{"coding": [{"system": PRESCRIPTION_FORMAT, "code": "electronic"}]}],
        "authoredOn": _now(),
        "requester": {"reference": "#prescriber"},
        "medicationCodeableConcept": {
            "coding": [{"system": NPL_PACK_ID, "code": MEDICINE["nplPackId"]}], "text": MEDICINE["namn"],
        },
        "subject": {"identifier": {"system": patient_system(person_id), "value": person_id}},
        "dosageInstruction": [{"text": DOSAGE}],
        "dispenseRequest": {"numberOfRepeatsAllowed": SEED_WITHDRAWALS - 1, "quantity": packages(1), "validityPeriod": {
            "start": date.today().isoformat(), "end": (date.today() + timedelta(days=365)).isoformat()}},
    }  # fmt: skip


INTERFACES: dict[str, type[Legacy] | type[Fhir]] = {"old": Legacy, "new": Legacy, "fhir": Fhir}
