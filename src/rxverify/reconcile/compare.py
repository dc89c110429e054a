"""Old against new, per test patient: the records of each answer matched by their ids, then field by field.

Lists in the answers are matched by the records' own ids (a prescription by ordinationId, a
withdrawal by uttagId, a medication-list entry by rapportId), so a record lost or added is one
difference, named by its id, rather than a shift of every later position. Instants are compared
as moments (the mapping's legacy_instant_fields). Noise is learned as the differential learns it
(rxverify.differential.Noise): from two reads of the old platform before the migration; what
still differs is a difference.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from rxverify.differential import Exchange, Noise, paths
from rxverify.mapping import Mapping
from rxverify.reconcile.reads import set_path
from rxverify.safety.identity import mask

ABSENT, PRESENT = "absent", "present"
SHOWN_CHARS = 48  # of a long value in a difference line
# list in an answer -> (the id field of its records, the record's own part holding the id)
KEYS = {"ordinationer": ("ordinationId", "ordination"), "uttag": ("uttagId", None), "poster": ("rapportId", None)}
KEYED = re.compile(r"\[[A-Za-z]+=[^\]]*\]")
# which mapping section describes the records of each operation's answer (the FHIR lane compares these)
SECTIONS = {"HamtaOrdinationshistorik": {"ordinationer": "prescription", "uttag": "dispensing"},
            "HamtaLakemedelsforteckning": {"poster": "medication_list"}, "HamtaPatientInfo": {}}


@dataclass(frozen=True)
class Difference:
    """One place where the new platform does not serve what the old one did."""

    patient: str  # masked
    kind: str  # personnummer | samordningsnummer
    lane: str  # "new legacy" | "new fhir"
    operation: str
    element: str
    old: Any
    new: Any
    note: str = ""

    def __str__(self) -> str:
        note = f" ({self.note})" if self.note else ""
        return (f"{self.patient} ({self.kind}) [{self.lane}] {self.operation} {self.element}: "
                f"old={_shown(self.old)} new={_shown(self.new)}{note}")

    def as_dict(self) -> dict[str, Any]:
        """The difference as the JSON result keeps it."""
        return asdict(self)


def _shown(value: Any) -> str:
    """A value as a difference line shows it: long texts by their start and length (the JSON keeps all)."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}…' ({len(value)} characters)"


def _moment(value: Any) -> Any:
    if not isinstance(value, str) or len(value) < 19:
        return value
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).isoformat(timespec="milliseconds")
    except ValueError:
        return value


def keyed(node: Any, parent: str = "") -> Any:
    """An answer with its lists of records turned into maps keyed `[idField=value]`; instants as moments."""
    if isinstance(node, list):
        return [keyed(v, parent) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in KEYS and isinstance(value, list):
            field, part = KEYS[key]
            records: dict[str, Any] = {}
            for item in value:
                holder = item.get(part, item) if part and isinstance(item, dict) else item
                ident = holder.get(field) if isinstance(holder, dict) else None
                records[f"[{field}={ident}]"] = keyed(item, key)
            out[key] = records
        else:
            out[key] = keyed(value, key)
    return out


def leaves(document: Any) -> dict[str, Any]:
    """Every leaf of a keyed answer by its path (`ordinationer[ordinationId=X].ordination.status`)."""
    return {p.replace(".[", "["): v for p, v in paths(document).items() if not p.endswith("#len") and v != {}}


def records(document: Any) -> set[str]:
    """The paths of every keyed record of a keyed answer."""
    found: set[str] = set()

    def walk(node: Any, at: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{at}{key}" if key.startswith("[") else (f"{at}.{key}" if at else key)
                if key.startswith("["):
                    found.add(here)
                walk(value, here)

    walk(document, "")
    return found


def positional(path: str) -> str:
    """A keyed path as the differential's noise knows paths (`[0]` for every record)."""
    return KEYED.sub("[0]", path)


def learn_noise(first: dict[str, dict[str, Any]], second: dict[str, dict[str, Any]]) -> Noise:
    """Noise of two reads of the old platform (patient -> operation -> answer), as the differential learns it."""
    noise = Noise(frozenset())  # instants are compared as moments, not declared noise
    for pid, answers in first.items():
        ops = sorted(answers)
        a = [Exchange(pid, op, answers[op]["status"], answers[op]["body"]) for op in ops]
        b = [Exchange(pid, op, second[pid][op]["status"], second[pid][op]["body"]) if op in second.get(pid, {})
             else Exchange(pid, op, None, None) for op in ops]
        noise.learn(a, b)
    return noise


def _answer(answer: dict[str, Any]) -> str:
    return f"{answer['status']}" + (f" {answer['kod']}" if answer.get("kod") else "")


def _note(old: Any, new: Any) -> str:
    if isinstance(old, str) and isinstance(new, str) and new and len(new) < len(old) and old.startswith(new):
        return f"new is old cut at {len(new)} characters"
    return ""


def _served(answers: dict[str, Any]) -> set[str]:
    """The records (prescriptions, medication-list entries) a patient's answers hold, by operation and id."""
    return {f"{op}{path}" for op in ("HamtaOrdinationshistorik", "HamtaLakemedelsforteckning")
            for path in records(keyed((answers.get(op) or {}).get("body"))) if path.count("[") == 1}


class Comparison:
    """Compares what the new platform serves with the old platform's snapshot, patient by patient."""

    def __init__(self, mapping: Mapping, noise: Noise) -> None:
        self.mapping = mapping
        self.noise = noise
        self.instants = mapping.instant_fields

    def mapped(self, operation: str, old_body: Any) -> Any:
        """The old answer cut to what the mapping carries into FHIR (the FHIR lane compares these fields only)."""
        sections = SECTIONS.get(operation)
        if sections is None or not isinstance(old_body, dict):
            return None
        if operation == "HamtaPatientInfo":
            return {"samtycke": old_body.get("samtycke")}
        fields = {s: {k for k, v in self.mapping.fields(s).items() if v != "derived"} for s in sections.values()}
        fields["prescription"] = fields.get("prescription", set()) | {"uttagKvar"}

        def cut(record: dict[str, Any], section: str) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name in fields[section]:
                head, _, tail = name.partition(".")
                value = record.get(head)
                if tail:
                    value = value.get(tail) if isinstance(value, dict) else None
                if value is not None:
                    set_path(out, name, value)
            return out

        if operation == "HamtaOrdinationshistorik":
            return {"ordinationer": [{"ordination": cut(item["ordination"], "prescription"),
                                      "uttag": [cut(u, "dispensing") for u in item.get("uttag", [])]}
                                     for item in old_body.get("ordinationer", [])]}
        return {"poster": [cut(p, "medication_list") for p in old_body.get("poster", [])]}

    def answers(self, who: tuple[str, str], lane: str, operation: str, old: dict[str, Any],
                new: dict[str, Any]) -> list[Difference]:
        """The differences between the old and the new answer of one operation about one patient."""
        patient, kind = who
        differs = (old["status"], old.get("kod")) != (new["status"], new.get("kod"))
        if differs and f"{operation}:status" not in self.noise.learned:
            return [Difference(patient, kind, lane, operation, "answer", _answer(old), _answer(new))]
        a, b = keyed(old.get("body")), keyed(new.get("body"))
        diffs: list[Difference] = []
        ra, rb = records(a), records(b)
        gone: set[str] = set()
        for path in sorted(ra ^ rb):
            if any(path.startswith(g + ".") or path.startswith(g + "[") for g in gone):
                continue  # inside a record already named as missing
            gone.add(path)
            diffs.append(Difference(patient, kind, lane, operation, path,
                                    PRESENT if path in ra else ABSENT, PRESENT if path in rb else ABSENT))
        la, lb = leaves(a), leaves(b)
        for path in sorted(la.keys() | lb.keys()):
            if any(path.startswith(g + ".") or path.startswith(g + "[") for g in gone):
                continue
            va, vb = la.get(path, ABSENT), lb.get(path, ABSENT)
            if path.rsplit(".", 1)[-1] in self.instants:
                va, vb = _moment(va), _moment(vb)
            if va != vb and not self.noise.covers(operation, positional(path)):
                diffs.append(Difference(patient, kind, lane, operation, path, va, vb, _note(va, vb)))
        return diffs

    def patient(self, person_id: str, kind: str, old: dict[str, Any], legacy: dict[str, Any] | None,
                fhir: dict[str, Any] | None) -> list[Difference]:
        """Every difference of one patient: the new legacy interface, then the FHIR resources, against the old."""
        who = (mask(person_id), kind)
        diffs: list[Difference] = []
        if legacy is not None:
            for operation, answer in sorted(old.items()):
                new = legacy.get(operation, {"status": None, "kod": "not read", "body": None})
                diffs += self.answers(who, "new legacy", operation, answer, new)
            served = _served(old)
            if served and not _served(legacy) & served:
                held = f"{len(served)} record" + "s" * (len(served) != 1)
                diffs.append(Difference(who[0], kind, "new legacy", "all reads", "records", held, "none",
                                        "none of the patient's data is on the new platform"))
        if fhir is not None:
            if "FHIR" in fhir:  # the searches failed
                return [*diffs, Difference(who[0], kind, "new fhir", "FHIR search", "answer", "200",
                                           _answer(fhir["FHIR"]))]
            for operation, new in sorted(fhir.items()):
                if operation not in old:
                    continue
                if old[operation]["status"] != 200:
                    continue  # nothing the old platform served to match (a refusal is the legacy lane's to compare)
                cut = {**old[operation], "body": self.mapped(operation, old[operation]["body"])}
                diffs += self.answers(who, "new fhir", operation, cut, new)
        return diffs
