"""Verification plans (contracts/verification/*.toml): who runs which steps, when, how fast.

A production verification may use only test patients and only the calls it covers
(DOMAIN.md). The plan is that list: participants with named contacts, ordered steps
(operation, test patient, request, expected outcome, blocking or not), the time window and
the rate limit. The allowed operations are the steps' operations; the guard refuses any other
on a production target. A step of the old interface names its service (`SkapaOrdinationVard`,
`MakuleraOrdinationVard`) and gives the request element's children in `body` under their XML
names (contracts/riv); a FHIR step its path `params` and JSON `body`. A step refers to earlier
steps' results as `${S3.ordinationsId}` or `${S5.expeditionsId[0]}` (the answer decoded by its
XSD: XML local names, lists where an element repeats), and to its own test patient as `${patient}`.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rxverify.contracts.xsdmodel import children as children_of
from rxverify.errors import UserError
from rxverify.operations import Operation
from rxverify.safety.identity import mask
from rxverify.safety.registry import Registry
from rxverify.target.credentials import TestActors
from rxverify.target.targets import CLASSES
from rxverify.target.trust import ENTRY_POINTS

ROLES = ("prescriber", "pharmacy")
REFERENCE = re.compile(r"\$\{([^}]*)\}")
_REF_PATH = re.compile(r"(?:\.([A-Za-z_][\w-]*)|\[(\d+)\])")
_STEP_REF = re.compile(r"([A-Za-z][\w-]*)((?:\.[A-Za-z_][\w-]*|\[\d+\])+)")


@dataclass(frozen=True)
class Participant:
    """An organisation's system taking part, and whom to call about it."""

    key: str
    name: str
    role: str  # prescriber | pharmacy: the ticket role its steps are sent with
    actor: int  # index into that role's list in contracts/testdata/test-actors.json
    contact: str
    # the entry point its system calls over ("internet" or "sjunet", Säker åtkomst 17.1): its steps are sent there,
    # over that entry point's certificate of its system
    entry: str = "internet"


@dataclass(frozen=True)
class Expectation:
    """What a step must get back."""

    status: int
    kod: str | None = None  # legacy fault code, when the expected answer is a fault


@dataclass(frozen=True)
class Step:
    """One call of the plan."""

    id: str
    participant: str
    operation: str
    expect: Expectation
    blocking: bool
    patient: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    description: str = ""


@dataclass(frozen=True)
class Plan:
    """A verification plan, validated against the contracts, the registry and the test actors."""

    path: Path
    name: str
    release: str
    target_class: str
    description: str
    window_start: datetime
    window_end: datetime
    rate_per_second: float
    burst: int
    participants: dict[str, Participant]
    steps: tuple[Step, ...]

    @property
    def allowed_operations(self) -> frozenset[str]:
        """The operations the plan covers: exactly those of its steps."""
        return frozenset(s.operation for s in self.steps)

    def in_window(self, now: datetime) -> bool:
        """Whether `now` lies in the plan's time window."""
        return self.window_start <= now < self.window_end


def plan_path(name_or_path: str, contracts: Path) -> Path:
    """A plan given as a file, or by name in contracts/verification/."""
    given = Path(name_or_path)
    if given.is_file():
        return given
    for candidate in (contracts / "verification" / name_or_path, contracts / "verification" / f"{name_or_path}.toml"):
        if candidate.is_file():
            return candidate
    shipped = ", ".join(sorted(p.stem for p in (contracts / "verification").glob("*.toml"))) or "none"
    raise UserError(f"no verification plan {name_or_path!r} (plans in {contracts / 'verification'}: {shipped})")


class _Problem(Exception):
    pass


def _instant(value: Any, what: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise _Problem(f"{what} {value!r} is not an ISO 8601 date-time") from None
    if not isinstance(value, datetime):
        raise _Problem(f"{what} must be a date-time with a UTC offset")
    if value.tzinfo is None:
        raise _Problem(f"{what} {value.isoformat()} has no UTC offset")
    return value.astimezone(UTC)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _check_references(step: Step, earlier: list[str], all_ids: list[str]) -> None:
    for text in _strings(step.params) + _strings(step.body):
        for ref in REFERENCE.findall(text):
            if ref == "patient":
                if step.patient is None:
                    raise _Problem(f"step {step.id}: ${{patient}} is used but the step names no patient")
                continue
            m = _STEP_REF.fullmatch(ref)
            if not m:
                raise _Problem(f"step {step.id}: ${{{ref}}} is not a reference (write ${{S1.ordinationId}})")
            head = m.group(1)
            if head not in all_ids:
                raise _Problem(f"step {step.id}: ${{{ref}}} refers to an unknown step {head!r}")
            if head not in earlier:
                raise _Problem(f"step {step.id}: ${{{ref}}} refers to step {head!r}, which does not run before it")


def _participant(key: str, raw: Any, actors: TestActors) -> Participant:
    if not isinstance(raw, Mapping):
        raise _Problem(f"[participants.{key}] must be a table")
    role = raw.get("role")
    if role not in ROLES:
        raise _Problem(f"participant {key!r} has role {role!r}, expected prescriber or pharmacy")
    actor = raw.get("actor", 0)
    pool = actors.prescribers if role == "prescriber" else actors.pharmacies
    if not isinstance(actor, int) or not 0 <= actor < len(pool):
        raise _Problem(f"participant {key!r}: actor {actor!r} is not an index into the {len(pool)} test {role}s")
    contact = str(raw.get("contact", "")).strip()
    if not contact:
        raise _Problem(f"participant {key!r} names no contact")
    entry = raw.get("entry", "internet")
    if entry not in ENTRY_POINTS:
        raise _Problem(f"participant {key!r}: entry {entry!r} is not an entry point ({', '.join(ENTRY_POINTS)})")
    return Participant(key, str(raw.get("name", key)), role, actor, contact, entry)


IDENTITY_ELEMENT = "personnummer"  # the request child a step's test patient fills when the body leaves it out


def _soap_body(sid: str, op: Operation, params: Mapping[str, Any], body: Any, patient: str | None) -> dict[str, Any]:
    """A step's request of the old interface: its body, checked against the request element's children."""
    assert op.service is not None
    if params:
        raise _Problem(f"step {sid}: {op.operation_id} is a SOAP service: its data goes in body, not params")
    if body is not None and not isinstance(body, Mapping):
        raise _Problem(f"step {sid}: body must be a table of {op.operation_id}'s elements")
    data = dict(body or {})
    children = [c.local_name for c in children_of(op.service.element().type)]
    unknown = [k for k in data if k not in children]
    if unknown:
        raise _Problem(f"step {sid}: {', '.join(unknown)} is not an element of {op.service.name} (its elements: "
                       f"{', '.join(children)})")
    if IDENTITY_ELEMENT in children and IDENTITY_ELEMENT not in data:
        if patient is None:
            raise _Problem(f"step {sid}: {op.operation_id} needs a patient (its request names {IDENTITY_ELEMENT})")
        data[IDENTITY_ELEMENT] = "${patient}"
    return data


def _step(
    raw: Any,
    number: int,
    participants: Mapping[str, Participant],
    operations: Mapping[str, Operation],
    registry: Registry,
) -> Step:
    if not isinstance(raw, Mapping) or not raw.get("id"):
        raise _Problem(f"step {number} has no id")
    sid = str(raw["id"])
    operation_id = str(raw.get("operation", ""))
    op = operations.get(operation_id)
    if op is None:
        raise _Problem(f"step {sid}: unknown operation {operation_id!r} (not an operationId of the contracts)")
    who = participants.get(str(raw.get("participant", "")))
    if who is None:
        raise _Problem(f"step {sid}: unknown participant {raw.get('participant')!r}")
    if who.role not in op.roles:
        raise _Problem(f"step {sid}: {operation_id} allows roles {', '.join(op.roles)}, not {who.key}'s {who.role}")
    patient = raw.get("patient")
    if patient is not None:
        patient = str(patient)
        if patient not in registry:
            raise _Problem(f"step {sid}: patient {mask(patient)} is not in the test-patient registry {registry.path}")
    params = dict(raw.get("params") or {})
    body = raw.get("body")
    if op.service is not None:
        body = _soap_body(sid, op, params, body, patient)
    else:
        if "personId" in op.path_params and "personId" not in params:
            if patient is None:
                raise _Problem(f"step {sid}: {operation_id} needs a patient ({op.template})")
            params["personId"] = "${patient}"
        missing = [p for p in op.path_params if p not in params]
        if missing:
            raise _Problem(f"step {sid}: {operation_id} ({op.template}) needs params {', '.join(missing)}")
    stray = registry.unregistered_in(json.dumps([params, body], ensure_ascii=False))
    if stray:
        raise _Problem(f"step {sid}: {stray[0].kind} {stray[0].masked} is not a registered test patient")
    expect = raw.get("expect")
    if not isinstance(expect, Mapping) or not isinstance(expect.get("status"), int):
        raise _Problem(f"step {sid}: expect.status (an HTTP status) is missing")
    blocking = raw.get("blocking", True)
    if not isinstance(blocking, bool):
        raise _Problem(f"step {sid}: blocking must be true or false")
    kod = expect.get("kod")
    return Step(
        sid,
        who.key,
        operation_id,
        Expectation(int(expect["status"]), str(kod) if kod else None),
        blocking,
        patient,
        params,
        body,
        str(raw.get("description", "")),
    )


def _plan(
    path: Path, data: dict[str, Any], operations: Mapping[str, Operation], registry: Registry, actors: TestActors
) -> Plan:
    for key in ("name", "release", "target_class"):
        if not data.get(key):
            raise _Problem(f"{key} is missing")
    if data["target_class"] not in CLASSES:
        raise _Problem(f"target_class {data['target_class']!r} is not one of {', '.join(CLASSES)}")
    window = data.get("window")
    if not isinstance(window, Mapping):
        raise _Problem("[window] with start and end is missing")
    start, end = _instant(window.get("start"), "window.start"), _instant(window.get("end"), "window.end")
    if end <= start:
        raise _Problem("window.end is not after window.start")
    rate = data.get("rate")
    if not isinstance(rate, Mapping) or not isinstance(rate.get("requests_per_second"), int | float):
        raise _Problem("[rate] requests_per_second is missing")
    per_second = float(rate["requests_per_second"])
    burst = rate.get("burst", 1)
    if per_second <= 0 or not isinstance(burst, int) or burst < 1:
        raise _Problem("rate.requests_per_second must be > 0 and rate.burst a whole number >= 1")
    raw_participants = data.get("participants")
    if not isinstance(raw_participants, Mapping) or not raw_participants:
        raise _Problem("[participants] is missing")
    participants = {key: _participant(key, raw, actors) for key, raw in raw_participants.items()}
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise _Problem("no [[steps]]")
    all_ids = [str(s.get("id")) for s in raw_steps if isinstance(s, Mapping)]
    steps: list[Step] = []
    for number, raw in enumerate(raw_steps, 1):
        step = _step(raw, number, participants, operations, registry)
        if step.id in (s.id for s in steps):
            raise _Problem(f"step id {step.id!r} is used twice")
        _check_references(step, [s.id for s in steps], all_ids)
        steps.append(step)
    return Plan(
        path,
        str(data["name"]),
        str(data["release"]),
        str(data["target_class"]),
        str(data.get("description", "")),
        start,
        end,
        per_second,
        burst,
        participants,
        tuple(steps),
    )


def load_plan(path: Path, operations: Mapping[str, Operation], registry: Registry, actors: TestActors) -> Plan:
    """Read and validate a plan; a bad plan is one UserError naming the problem and the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read verification plan {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"verification plan {path} is not valid TOML: {exc}") from None
    try:
        return _plan(path, data, operations, registry, actors)
    except _Problem as exc:
        raise UserError(f"verification plan {path}: {exc}") from None


def resolve(value: Any, results: Mapping[str, Any], patient: str | None) -> Any:
    """`value` with its references replaced by earlier steps' results (KeyError names a missing one)."""
    if isinstance(value, Mapping):
        return {k: resolve(v, results, patient) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, results, patient) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = REFERENCE.fullmatch(value)
    if whole:
        return _lookup(whole.group(1), results, patient)
    return REFERENCE.sub(lambda m: str(_lookup(m.group(1), results, patient)), value)


def _lookup(ref: str, results: Mapping[str, Any], patient: str | None) -> Any:
    if ref == "patient":
        return patient
    m = _STEP_REF.fullmatch(ref)
    if not m or m.group(1) not in results:
        raise KeyError(ref)
    current = results[m.group(1)]
    for name, index in _REF_PATH.findall(m.group(2)):
        try:
            current = current[name] if name else current[int(index)]
        except (KeyError, IndexError, TypeError):
            raise KeyError(ref) from None
    return current
