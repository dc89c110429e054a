"""Domain rules of the old service interface, checked on every legacy answer.

Each rule names its requirement: the operationId and the rule of the contract
(contracts/openapi/legacy.yaml) or of the mapping (contracts/mapping/legacy-fhir.yaml).
Rules that need history (status transitions, cancelled prescriptions) remember what this run
has seen, per platform.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from schemathesis import Case, CheckContext, Response

from rxverify.checks.failures import RuleViolation
from rxverify.mapping import Mapping, days_between, load_mapping
from rxverify.paths import contracts_dir

Probe = Callable[[str, str, dict[str, str]], Any]  # (method, url, headers) -> parsed JSON answer


@dataclass(frozen=True)
class Rule:
    """A rule's trace for the report: story, severity, requirement."""

    name: str
    story: str
    severity: str
    requirement: str


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
            "HamtaLakemedelsforteckning: 403 SAMTYCKE_SAKNAS unless the patient consented",
        ),
        Rule(
            "cancelled_not_withdrawable",
            "a cancelled prescription cannot be withdrawn",
            "blocker",
            "GodkannUttag: 409 MAKULERAD for a Makulerad prescription",
        ),
        Rule(
            "faults_explained",
            "every error carries a code and a message",
            "normal",
            "legacy Fault {kod, meddelande} on every error status",
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

    def __init__(self, mapping: Mapping, probe: Probe | None = None) -> None:
        self.mapping = mapping
        self.probe = probe
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()

    # --- helpers -------------------------------------------------------------------------
    def _memory(self, base: str) -> _Seen:
        with self._lock:
            return self._seen.setdefault(base, _Seen())

    @staticmethod
    def _violation(rule: str, case: Case, message: str, **context: Any) -> RuleViolation:
        return RuleViolation(rule=rule, operation=case.operation.label, message=message, context=context)

    @staticmethod
    def _json(response: Response) -> Any:
        try:
            return json.loads(response.content or b"null")
        except ValueError:
            return None

    @staticmethod
    def _ordinations(operation_id: str, body: Any) -> Iterator[dict[str, Any]]:
        """The current prescriptions an answer shows (history's withdrawals are not current)."""
        if not isinstance(body, dict):
            return
        if operation_id in ("SkapaOrdinationVard", "MakuleraOrdination"):
            yield body
        elif operation_id == "HamtaAktuellaOrdinationer":
            yield from (o for o in body.get("ordinationer", []) if isinstance(o, dict))
        elif operation_id == "HamtaOrdinationshistorik":
            yield from (
                i["ordination"] for i in body.get("ordinationer", []) if isinstance(i, dict) and "ordination" in i
            )

    # --- the rules ----------------------------------------------------------------------
    def check(self, ctx: CheckContext, response: Response, case: Case) -> None:
        """Run every rule that applies to this legacy answer."""
        op = case.operation.definition.raw.get("operationId", "")
        base = response.request.url.split("/legacy", 1)[0] if response.request.url else ""
        body = self._json(response)
        status = response.status_code
        if status >= 400:
            self.faults_explained(case, status, body)
            return
        if not 200 <= status < 300:
            return
        for ordination in self._ordinations(op, body):
            self.withdrawals_within_prescription(case, ordination)
            self.status_transitions(case, base, ordination)
        if op == "SkapaOrdinationVard":
            self.default_validity(case, body)
        elif op == "HamtaOrdinationshistorik":
            self.history_withdrawals(case, body)
        elif op == "GodkannUttag":
            self.withdrawal(case, base, body)
        elif op == "HamtaLakemedelsforteckning":
            self.medication_list_needs_consent(case, response, body)

    def faults_explained(self, case: Case, status: int, body: Any) -> None:
        """Every error answer is a legacy fault with a non-empty code and message."""
        if not (
            isinstance(body, dict) and str(body.get("kod") or "").strip() and str(body.get("meddelande") or "").strip()
        ):
            raise self._violation(
                "faults_explained",
                case,
                f"Received status {status} with body {str(body)[:200]!r}; the contract declares a Fault "
                "{kod, meddelande} with both set for every error",
                status=status,
            )

    def default_validity(self, case: Case, body: Any) -> None:
        """Without giltigTom, validity is issue date + 366 days (14 for a phoned-in prescription)."""
        sent = case.body if isinstance(case.body, dict) else {}
        if not isinstance(body, dict) or "utfardandedatum" not in body or "giltigTom" not in body:
            return
        if "giltigTom" in sent:
            if body["giltigTom"] != sent["giltigTom"]:
                raise self._violation(
                    "default_validity", case, f"Sent giltigTom {sent['giltigTom']}, received {body['giltigTom']}"
                )
            return
        telephone = body.get("forskrivningstyp") == "TELEFON"
        expected = self.mapping.default_validity_days_telephone if telephone else self.mapping.default_validity_days
        days = days_between(body["utfardandedatum"], body["giltigTom"])
        if days != expected:
            raise self._violation(
                "default_validity",
                case,
                f"Issue date {body['utfardandedatum']}, giltigTom {body['giltigTom']}: {days} days; the rule declares "
                f"issue date + {expected} days for {'a phoned-in' if telephone else 'an electronic'} prescription",
                measured_days=days,
                expected_days=expected,
            )

    def withdrawals_within_prescription(self, case: Case, o: dict[str, Any]) -> None:
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
                case,
                f"Prescription {o.get('ordinationId')}: {problem}",
                ordination=o.get("ordinationId"),
            )

    def history_withdrawals(self, case: Case, body: Any) -> None:
        """History: withdrawals listed = antalUttag - uttagKvar, none larger than prescribed."""
        for item in body.get("ordinationer", []) if isinstance(body, dict) else []:
            o, taken = item.get("ordination", {}), item.get("uttag", [])
            if not isinstance(o, dict) or not isinstance(taken, list):
                continue
            counts = isinstance(o.get("antalUttag"), int) and isinstance(o.get("uttagKvar"), int)
            if counts and len(taken) != o["antalUttag"] - o["uttagKvar"]:
                raise self._violation(
                    "withdrawals_within_prescription",
                    case,
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
                        case,
                        f"Withdrawal {u.get('uttagId')} took {u['antalForpackningar']} packages; the prescription "
                        f"allows {o.get('antalForpackningar')} per withdrawal",
                        ordination=o.get("ordinationId"),
                    )

    def status_transitions(self, case: Case, base: str, o: dict[str, Any]) -> None:
        """A prescription's status only changes along the mapping's transitions."""
        oid, status = o.get("ordinationId"), o.get("status")
        if not isinstance(oid, str) or not isinstance(status, str):
            return
        seen = self._memory(base)
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
                case,
                f"Prescription {oid} went from {before} to {status}; the mapping allows {before} -> "
                f"{', '.join(self.mapping.transitions.get(before, [])) or 'nothing'}",
                ordination=oid,
                before=before,
                after=status,
            )

    def withdrawal(self, case: Case, base: str, body: Any) -> None:
        """An accepted withdrawal: never on a cancelled prescription, never more than prescribed."""
        if not isinstance(body, dict):
            return
        oid = body.get("ordinationId")
        seen = self._memory(base)
        if oid in seen.cancelled:
            raise self._violation(
                "cancelled_not_withdrawable",
                case,
                f"Withdrawal accepted (uttagId {body.get('uttagId')}) on prescription {oid}, which this run saw "
                "Makulerad; the contract declares 409 MAKULERAD",
                ordination=oid,
            )
        allowed = seen.packages.get(oid) if isinstance(oid, str) else None
        taken = body.get("antalForpackningar")
        if allowed is not None and isinstance(taken, int) and taken > allowed:
            raise self._violation(
                "withdrawals_within_prescription",
                case,
                f"Withdrawal of {taken} packages accepted on prescription {oid}, which allows {allowed} per withdrawal",
                ordination=oid,
            )
        if isinstance(body.get("uttagKvar"), int) and body["uttagKvar"] < 0:
            raise self._violation(
                "withdrawals_within_prescription",
                case,
                f"uttagKvar {body['uttagKvar']} after withdrawal on {oid}",
                ordination=oid,
            )
        if isinstance(oid, str) and isinstance(body.get("ordinationsstatus"), str):
            self.status_transitions(case, base, {"ordinationId": oid, "status": body["ordinationsstatus"]})

    def medication_list_needs_consent(self, case: Case, response: Response, body: Any) -> None:
        """A served medication list means the patient has consented (asked right after, as the same actor)."""
        if self.probe is None or not isinstance(body, dict):
            return
        url = response.request.url or ""
        info_url = url.rsplit("/lakemedelsforteckning", 1)[0]
        auth = {"Authorization": str(response.request.headers.get("Authorization", ""))}
        info = self.probe("GET", info_url, auth)
        if isinstance(info, dict) and info.get("samtycke") is False:
            raise self._violation(
                "medication_list_needs_consent",
                case,
                "HamtaLakemedelsforteckning answered 200 for a patient whose HamtaPatientInfo says samtycke=false; "
                "the contract declares 403 SAMTYCKE_SAKNAS without consent",
            )


_INSTANCE: dict[str, LegacyRules] = {}


def legacy_rules(probe: Probe | None = None) -> LegacyRules:
    """The run's LegacyRules (one per process, with its memory)."""
    if "rules" not in _INSTANCE:
        _INSTANCE["rules"] = LegacyRules(load_mapping(contracts_dir() / "mapping" / "legacy-fhir.yaml"), probe)
    elif probe is not None:
        _INSTANCE["rules"].probe = probe
    return _INSTANCE["rules"]
