"""The lifecycle steps the contract tests drive on purpose, as SOAP calls of the one legacy client."""

from __future__ import annotations

from typing import Any

from rxverify.legacy.client import LegacyAnswer, LegacyClient

MEDICATION = {"nplPackId": "19990101100001", "namn": "Alvedon"}


def shown(answer: LegacyAnswer) -> str:
    """An answer in a failure message: the status and the response element, or the fault's kind and kod."""
    fault = answer.fault
    if fault is not None:
        return f"{answer.status} {fault.kind or 'fault without detail'} {fault.kod or ''}".rstrip()
    if answer.element is None:
        return f"{answer.status} not SOAP ({answer.parsed.problem})"
    return f"{answer.status} {answer.element.tag.rsplit('}', 1)[-1]}"


def refusal(answer: LegacyAnswer) -> tuple[int, str | None, str | None]:
    """(status, fault kind, kod): what a refusal is compared by."""
    fault = answer.fault
    return answer.status, fault.kind if fault else None, fault.kod if fault else None


def prescribe(legacy: LegacyClient, patient: str, packages: int = 1, withdrawals: int = 2, **more: Any) -> str:
    """SkapaOrdinationVard for `patient`; the new prescription's ordinationsId."""
    data = {"personnummer": patient, "lakemedel": MEDICATION, "doseringstext": "1 x 3",
            "antalForpackningar": packages, "antalUttag": withdrawals, "forskrivningstyp": "ELEKTRONISK"}
    data.update(more)
    created = legacy.call("SkapaOrdinationVard", data, role="prescriber")
    assert created.ok and created.status == 200, f"SkapaOrdinationVard: received {shown(created)}"
    return str(created.body["ordinationsId"])


def reserve(legacy: LegacyClient, actor: int = 0) -> str:
    """HamtaExpeditionsId for one dispensing id, as pharmacy `actor`."""
    reserved = legacy.call("HamtaExpeditionsId", {"antal": 1}, role="pharmacy", actor=actor)
    assert reserved.ok, f"HamtaExpeditionsId: received {shown(reserved)}"
    ids = reserved.body["expeditionsId"]
    return str(ids[0] if isinstance(ids, list) else ids)


def withdraw(legacy: LegacyClient, oid: str, packages: int, actor: int = 0, dispensing: str | None = None
             ) -> LegacyAnswer:
    """GodkannUttag of `packages` on `oid` with a freshly reserved (or the given) dispensing id."""
    eid = dispensing if dispensing is not None else reserve(legacy, actor)
    data = {"ordinationsId": oid, "expeditionsId": eid, "antalForpackningar": packages}
    return legacy.call("GodkannUttag", data, role="pharmacy", actor=actor)


def cancel(legacy: LegacyClient, oid: str, reason: str) -> LegacyAnswer:
    """MakuleraOrdinationVard of `oid` for `reason`."""
    return legacy.call("MakuleraOrdinationVard", {"ordinationsId": oid, "orsak": reason}, role="prescriber")
