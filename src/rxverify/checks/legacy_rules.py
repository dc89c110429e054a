"""Domain rules of the old service interface, checked on every answer of it.

Each rule names its requirement: the service and the rule of the contract (contracts/riv: the
WSDL's documentation, services.toml) or of the mapping (contracts/mapping/legacy-fhir.yaml). The
rules read the answers of the one legacy client in today's JSON shape (rxverify.legacy.shape:
`ordinationId`, `personId`, `ordinationer[]`), so they read as they did on the REST rendering;
where a rule speaks of a REST status it is services.toml [faults.rest_status]. Rules that need
history (status transitions, cancelled prescriptions) remember what this run has seen, per
platform.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rxverify.checks.failures import Rule, RuleViolation
from rxverify.legacy.client import LegacyAnswer
from rxverify.mapping import Mapping as FhirMapping
from rxverify.mapping import days_between, load_mapping
from rxverify.paths import contracts_dir

# (the platform's legacy base, service, request data under the XML names, the original request's HTTP headers)
Probe = Callable[[str, str, dict[str, Any], Mapping[str, str]], LegacyAnswer | None]
CANCELLATIONS = ("MakuleraOrdinationVard", "MakuleraOrdinationApotek")


@dataclass(frozen=True)
class Exchange:
    """One call of the old interface, as the rules see it."""

    answer: LegacyAnswer
    sent: Mapping[str, Any]  # the request in today's JSON shape
    base: str  # the platform it went to (its legacy base URL): the rules' memory is per platform
    headers: Mapping[str, str] = field(default_factory=dict)  # the request's HTTP headers (a probe's caller)

    @property
    def service(self) -> str:
        """The service name (every major version of a service keeps its rules)."""
        return self.answer.service.name

    @property
    def label(self) -> str:
        """The operation as the report names it."""
        return self.answer.service.operation_id


RULES = {
    r.name: r
    for r in (
        Rule(
            "default_validity",
            "default validity = issue date + 366 days",
            "critical",
            "SkapaOrdinationVard: giltigTom defaults to utfardandedatum + 366 days (14 for TELEFON); DOMAIN.md",
        ),
        Rule(
            "status_transitions",
            "status transitions only as the mapping allows",
            "critical",
            "mapping status.transitions",
        ),
        Rule(
            "withdrawals_within_prescription",
            "withdrawals never exceed what was prescribed",
            "blocker",
            "GodkannUttag: uttagKvar = antalUttag - withdrawals >= 0; packages per withdrawal <= antalForpackningar",
        ),
        Rule(
            "medication_list_needs_consent",
            "the medication list is refused without consent",
            "blocker",
            "HamtaLakemedelsforteckning: ApplicationException SAMTYCKE_SAKNAS (REST 403) unless the patient consented",
        ),
        Rule(
            "cancelled_not_withdrawable",
            "a cancelled prescription cannot be withdrawn",
            "blocker",
            "GodkannUttag: ApplicationException MAKULERAD (REST 409) for a Makulerad prescription",
        ),
        Rule(
            "faults_explained",
            "every fault carries a code and a message",
            "normal",
            "SOAP fault: faultstring and a detail (ApplicationException or SystemException) with kod and meddelande",
        ),
    )
}


@dataclass
class _Seen:
    """What this run has seen of one platform's prescriptions."""

    status: dict[str, str] = field(default_factory=dict)
    packages: dict[str, int] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)


class LegacyRules:
    """The legacy domain rules, with the run's memory per platform (base URL)."""

    def __init__(self, mapping: FhirMapping, probe: Probe | None = None) -> None:
        self.mapping = mapping
        self.probe = probe
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()

    # --- helpers -------------------------------------------------------------------------
    def _memory(self, base: str) -> _Seen:
        with self._lock:
            return self._seen.setdefault(base, _Seen())

    @staticmethod
    def _violation(rule: str, exchange: Exchange, message: str, **context: Any) -> RuleViolation:
        return RuleViolation(rule=rule, operation=exchange.label, message=message, context=context)

    @staticmethod
    def _ordinations(service: str, body: Any) -> Iterator[dict[str, Any]]:
        """The current prescriptions an answer shows (history's withdrawals are not current)."""
        if not isinstance(body, dict):
            return
        if service == "SkapaOrdinationVard" or service in CANCELLATIONS:
            yield body
        elif service == "HamtaAktuellaOrdinationer":
            yield from (o for o in body.get("ordinationer", []) if isinstance(o, dict))
        elif service == "HamtaOrdinationshistorik":
            yield from (
                i["ordination"] for i in body.get("ordinationer", []) if isinstance(i, dict) and "ordination" in i
            )

    # --- the rules ----------------------------------------------------------------------
    def check(self, exchange: Exchange) -> None:
        """Run every rule that applies to this answer of the old interface."""
        answer = exchange.answer
        if answer.fault is not None or answer.parsed.problem is not None:
            self.faults_explained(exchange)
            return
        if not answer.ok:
            return
        body = answer.json
        service = exchange.service
        for ordination in self._ordinations(service, body):
            self.withdrawals_within_prescription(exchange, ordination)
            self.status_transitions(exchange, ordination)
        if service == "SkapaOrdinationVard":
            self.default_validity(exchange, body)
        elif service == "HamtaOrdinationshistorik":
            self.history_withdrawals(exchange, body)
        elif service == "GodkannUttag":
            self.withdrawal(exchange, body)
        elif service == "HamtaLakemedelsforteckning":
            self.medication_list_needs_consent(exchange, body)

    def faults_explained(self, exchange: Exchange) -> None:
        """Every fault carries a faultstring and a detail with a non-empty kod and meddelande."""
        answer = exchange.answer
        fault = answer.fault
        explained = fault is not None and (fault.kod or "").strip() and (fault.meddelande or "").strip()
        if fault is not None and explained and fault.string.strip():
            return
        shown = answer.raw[:200].decode("utf-8", "replace")
        raise self._violation(
            "faults_explained",
            exchange,
            f"Received HTTP {answer.status} with {shown!r}; the contract declares a SOAP fault whose detail "
            "(ApplicationException or SystemException) has kod and meddelande, both set, for every refusal",
            status=answer.status,
        )

    def default_validity(self, exchange: Exchange, body: Any) -> None:
        """Without giltigTom, validity is issue date + 366 days (14 for a phoned-in prescription)."""
        sent = exchange.sent
        if not isinstance(body, dict) or "utfardandedatum" not in body or "giltigTom" not in body:
            return
        if "giltigTom" in sent:
            if body["giltigTom"] != sent["giltigTom"]:
                raise self._violation(
                    "default_validity", exchange, f"Sent giltigTom {sent['giltigTom']}, received {body['giltigTom']}"
                )
            return
        telephone = body.get("forskrivningstyp") == "TELEFON"
        expected = self.mapping.default_validity_days_telephone if telephone else self.mapping.default_validity_days
        days = days_between(body["utfardandedatum"], body["giltigTom"])
        if days != expected:
            raise self._violation(
                "default_validity",
                exchange,
                f"Issue date {body['utfardandedatum']}, giltigTom {body['giltigTom']}: {days} days; the rule declares "
                f"issue date + {expected} days for {'a phoned-in' if telephone else 'an electronic'} prescription",
                measured_days=days,
                expected_days=expected,
            )

    def withdrawals_within_prescription(self, exchange: Exchange, o: dict[str, Any]) -> None:
        """0 <= uttagKvar <= antalUttag, and Slutexpedierad exactly when none remain (unless cancelled or ended)."""
        left, allowed, status = o.get("uttagKvar"), o.get("antalUttag"), o.get("status")
        if not isinstance(left, int) or not isinstance(allowed, int):
            return
        problem = None
        if not 0 <= left <= allowed:
            problem = f"uttagKvar {left} outside 0..antalUttag {allowed}"
        elif status == "Slutexpedierad" and left != 0:
            problem = f"status Slutexpedierad with {left} withdrawals left"
        elif status in ("Aktiv", "Parkerad") and left == 0:
            problem = f"status {status} with no withdrawals left (expected Slutexpedierad)"
        if problem:
            raise self._violation(
                "withdrawals_within_prescription",
                exchange,
                f"Prescription {o.get('ordinationId')}: {problem}",
                ordination=o.get("ordinationId"),
            )

    def history_withdrawals(self, exchange: Exchange, body: Any) -> None:
        """History: withdrawals listed = antalUttag - uttagKvar, none larger than prescribed."""
        for item in body.get("ordinationer", []) if isinstance(body, dict) else []:
            o, taken = item.get("ordination", {}), item.get("uttag", [])
            if not isinstance(o, dict) or not isinstance(taken, list):
                continue
            counts = isinstance(o.get("antalUttag"), int) and isinstance(o.get("uttagKvar"), int)
            if counts and len(taken) != o["antalUttag"] - o["uttagKvar"]:
                raise self._violation(
                    "withdrawals_within_prescription",
                    exchange,
                    f"Prescription {o.get('ordinationId')}: {len(taken)} withdrawals listed but antalUttag "
                    f"{o['antalUttag']} - uttagKvar {o['uttagKvar']} = {o['antalUttag'] - o['uttagKvar']}",
                    ordination=o.get("ordinationId"),
                )
            for u in taken:
                if (
                    isinstance(u, dict)
                    and isinstance(u.get("antalForpackningar"), int)
                    and u["antalForpackningar"] > o.get("antalForpackningar", 99)
                ):
                    raise self._violation(
                        "withdrawals_within_prescription",
                        exchange,
                        f"Withdrawal {u.get('uttagId')} took {u['antalForpackningar']} packages; the prescription "
                        f"allows {o.get('antalForpackningar')} per withdrawal",
                        ordination=o.get("ordinationId"),
                    )

    def status_transitions(self, exchange: Exchange, o: dict[str, Any]) -> None:
        """A prescription's status only changes along the mapping's transitions."""
        oid, status = o.get("ordinationId"), o.get("status")
        if not isinstance(oid, str) or not isinstance(status, str):
            return
        seen = self._memory(exchange.base)
        with self._lock:
            before = seen.status.get(oid)
            seen.status[oid] = status
            if isinstance(o.get("antalForpackningar"), int):
                seen.packages[oid] = o["antalForpackningar"]
            if status == "Makulerad":
                seen.cancelled.add(oid)
        if before is not None and before != status and status not in self.mapping.transitions.get(before, []):
            raise self._violation(
                "status_transitions",
                exchange,
                f"Prescription {oid} went from {before} to {status}; the mapping allows {before} -> "
                f"{', '.join(self.mapping.transitions.get(before, [])) or 'nothing'}",
                ordination=oid,
                before=before,
                after=status,
            )

    def withdrawal(self, exchange: Exchange, body: Any) -> None:
        """An accepted withdrawal: never on a cancelled prescription, never more than prescribed."""
        if not isinstance(body, dict):
            return
        oid = body.get("ordinationId")
        seen = self._memory(exchange.base)
        if oid in seen.cancelled:
            raise self._violation(
                "cancelled_not_withdrawable",
                exchange,
                f"Withdrawal accepted (uttagId {body.get('uttagId')}) on prescription {oid}, which this run saw "
                "Makulerad; the contract declares ApplicationException MAKULERAD (REST 409)",
                ordination=oid,
            )
        allowed = seen.packages.get(oid) if isinstance(oid, str) else None
        taken = body.get("antalForpackningar")
        if allowed is not None and isinstance(taken, int) and taken > allowed:
            raise self._violation(
                "withdrawals_within_prescription",
                exchange,
                f"Withdrawal of {taken} packages accepted on prescription {oid}, which allows {allowed} per withdrawal",
                ordination=oid,
            )
        if isinstance(body.get("uttagKvar"), int) and body["uttagKvar"] < 0:
            raise self._violation(
                "withdrawals_within_prescription",
                exchange,
                f"uttagKvar {body['uttagKvar']} after withdrawal on {oid}",
                ordination=oid,
            )
        if isinstance(oid, str) and isinstance(body.get("ordinationsstatus"), str):
            self.status_transitions(exchange, {"ordinationId": oid, "status": body["ordinationsstatus"]})

    def medication_list_needs_consent(self, exchange: Exchange, body: Any) -> None:
        """A served medication list means the patient has consented (asked right after, as the same actor)."""
        if self.probe is None or not isinstance(body, dict) or not isinstance(body.get("personId"), str):
            return
        info = self.probe(exchange.base, "HamtaPatientInfo", {"personnummer": body["personId"]}, exchange.headers)
        shown = info.json if info is not None and info.ok else None
        if isinstance(shown, dict) and shown.get("samtycke") is False:
            raise self._violation(
                "medication_list_needs_consent",
                exchange,
                "HamtaLakemedelsforteckning answered its list for a patient whose HamtaPatientInfo says "
                "samtycke=false; the contract declares ApplicationException SAMTYCKE_SAKNAS (REST 403) without consent",
            )


_INSTANCE: dict[str, LegacyRules] = {}


def legacy_rules(probe: Probe | None = None) -> LegacyRules:
    """The run's LegacyRules (one per process, with its memory)."""
    if "rules" not in _INSTANCE:
        _INSTANCE["rules"] = LegacyRules(load_mapping(contracts_dir() / "mapping" / "legacy-fhir.yaml"), probe)
    elif probe is not None:
        _INSTANCE["rules"].probe = probe
    return _INSTANCE["rules"]
