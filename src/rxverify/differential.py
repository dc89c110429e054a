"""Old vs new: the same generated legacy call sequences go to both platforms and are compared.

Non-deterministic fields are learned, not listed by hand (the Diffy method): every sequence
also goes to a second instance of the old platform, and whatever differs between the two old
answers is noise. On top of that the mapping declares its instant fields non-deterministic.
What still differs between old and new is a difference the release board must see.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import requests
from hypothesis import strategies as st

from rxverify.mapping import Mapping
from rxverify.safety.registry import Registry, TestPatient
from rxverify.strategies import differential_patients

TEXTS = ("Alvedon 500 mg tablett", "Åkerört örtte", "Ibuprofen Björn 400 mg", "Öronsalva ÄÅÖ", "Levaxin 50 µg")
DOSAGES = ("1 tablett 3 gånger dagligen", "2 droppar i örat vid behov", "1 kapsel på morgonen, åt ärligt", "Enl. ö.k.")
ORSAKER = ("FEL_LAKEMEDEL", "FEL_PATIENT", "FEL_DOSERING", "BEHANDLING_AVSLUTAD", "OVRIGT")
_INDEX = re.compile(r"\[\d+\]")


@dataclass(frozen=True)
class Step:
    """One legacy call of a sequence; `ref` picks an earlier result (a prescription, a dispensing id)."""

    kind: str
    args: tuple[tuple[str, Any], ...] = ()
    ref: int = 0

    def arg(self, name: str, default: Any = None) -> Any:
        """An argument of the step."""
        return dict(self.args).get(name, default)

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.args)
        return f"{self.kind}({shown}{', ' if shown else ''}ref={self.ref})"


def _steps() -> st.SearchStrategy[Step]:
    create = st.builds(
        lambda typ, uttag, pkgs, name, dose, validity, who: Step(
            "create",
            (
                ("forskrivningstyp", typ),
                ("antalUttag", uttag),
                ("antalForpackningar", pkgs),
                ("namn", name),
                ("doseringstext", dose),
                ("giltigDagar", validity),
                ("prescriber", who),
            ),
        ),
        st.sampled_from(("ELEKTRONISK", "TELEFON")),
        st.integers(1, 3),
        st.integers(1, 3),
        st.sampled_from(TEXTS),
        st.sampled_from(DOSAGES),
        st.one_of(st.none(), st.integers(0, 366)),
        st.integers(0, 2),
    )
    simple = st.sampled_from([Step(k) for k in ("aktuella", "historik", "patientinfo", "lakemedelsforteckning")])
    reserve = st.builds(lambda n: Step("reserve", (("antal", n),)), st.integers(1, 2))
    # packages at the limit the prescription sets: one below, exactly, one above
    withdraw = st.builds(
        lambda ref, extra, who: Step("withdraw", (("extra", extra), ("pharmacy", who)), ref),
        st.integers(0, 3),
        st.sampled_from((-1, 0, 1)),
        st.integers(0, 1),
    )
    report = st.builds(lambda ref: Step("report", (), ref), st.integers(0, 3))
    cancel = st.builds(
        lambda ref, why: Step("cancel", (("orsak", why),), ref), st.integers(0, 3), st.sampled_from(ORSAKER)
    )
    consent = st.builds(lambda yes: Step("consent", (("samtycke", yes),)), st.booleans())
    return st.one_of(create, create, simple, reserve, withdraw, withdraw, report, cancel, consent)


def _chains() -> st.SearchStrategy[list[Step]]:
    """The lifecycles the services exist for, so they are drawn often, not only by chance.

    `ref=-1` is the prescription the chain just created.
    """
    create = _steps().filter(lambda s: s.kind == "create")
    withdraw = st.builds(
        lambda extra: Step("withdraw", (("extra", extra), ("pharmacy", 0)), -1), st.sampled_from((-1, 0, 1))
    )
    dispense = st.builds(
        lambda c, w, n: [c, Step("reserve", (("antal", 1),)), *[w] * n, Step("report", (), -1)],
        create,
        withdraw,
        st.integers(1, 4),
    )
    cancelled = st.builds(
        lambda c, why, w: [c, Step("cancel", (("orsak", why),), -1), Step("reserve", (("antal", 1),)), w],
        create,
        st.sampled_from(ORSAKER),
        withdraw,
    )
    consent = st.builds(
        lambda yes: [Step("consent", (("samtycke", yes),)), Step("lakemedelsforteckning")], st.booleans()
    )
    return st.one_of(dispense, cancelled, consent)


# Every sequence ends by reading the patient's whole state, so a difference a step left behind
# shows even when no generated read came after it.
EPILOGUE = (Step("historik"), Step("aktuella"), Step("patientinfo"), Step("lakemedelsforteckning"))


@st.composite
def call_sequences(draw: st.DrawFn, registry: Registry) -> tuple[TestPatient, list[Step]]:
    """A patient kept for the differential and a sequence of legacy calls about them, then the reads."""
    patient = draw(st.sampled_from(differential_patients(registry)))
    parts = draw(st.lists(st.one_of(_steps().map(lambda s: [s]), _chains()), min_size=1, max_size=6))
    return patient, [*(step for part in parts for step in part), *EPILOGUE]


@dataclass
class Exchange:
    """What one platform answered to one step."""

    step: str
    operation: str
    status: int | None
    body: Any


@dataclass
class Lane:
    """One platform's legacy interface, and how to call it."""

    name: str
    legacy: str
    session: requests.Session
    auth: Any  # (role, index) -> headers

    def run(self, patient: TestPatient, steps: list[Step], issue_date_days: Any) -> list[Exchange]:
        """Send every step in order, resolving references within this lane; record the answers."""
        created: list[str] = []
        prescribed: dict[str, int] = {}  # packages per withdrawal, per prescription of this lane
        reserved: list[str] = []
        withdrawn: list[tuple[str, str, int]] = []
        out: list[Exchange] = []
        pid = patient.id
        for step in steps:
            method, path, body, operation, role, who = self._request(
                step, pid, created, reserved, withdrawn, issue_date_days, prescribed
            )
            if path is None:
                out.append(Exchange(str(step), operation, None, "skipped: nothing to refer to"))
                continue
            r = self.session.request(method, self.legacy + path, json=body, headers=self.auth(role, who), timeout=30)
            try:
                answer = r.json()
            except ValueError:
                answer = r.text
            out.append(Exchange(str(step), operation, r.status_code, answer))
            if r.ok and isinstance(answer, dict):
                if operation == "SkapaOrdinationVard":
                    created.append(answer["ordinationId"])
                    prescribed[answer["ordinationId"]] = int(body["antalForpackningar"])
                elif operation == "HamtaExpeditionsId":
                    reserved.extend(answer.get("expeditionsIdn", []))
                elif operation == "GodkannUttag":
                    withdrawn.append((answer["ordinationId"], answer["expeditionsId"], answer["antalForpackningar"]))
        return out

    @staticmethod
    def _request(
        step: Step,
        pid: str,
        created: list[str],
        reserved: list[str],
        withdrawn: list[tuple[str, str, int]],
        issue_date_days: Any,
        prescribed: dict[str, int],
    ) -> tuple[str, str | None, Any, str, str, int]:
        k = step.kind
        if k == "create":
            body: dict[str, Any] = {
                "personId": pid,
                "lakemedel": {"nplPackId": "19990101100001", "namn": step.arg("namn")},
                "doseringstext": step.arg("doseringstext"),
                "antalForpackningar": step.arg("antalForpackningar"),
                "antalUttag": step.arg("antalUttag"),
                "forskrivningstyp": step.arg("forskrivningstyp"),
            }
            if step.arg("giltigDagar") is not None:
                body["giltigTom"] = issue_date_days(step.arg("giltigDagar"))
            return "POST", "/ordinationer", body, "SkapaOrdinationVard", "prescriber", step.arg("prescriber", 0)
        if k in ("aktuella", "historik"):
            op = "HamtaAktuellaOrdinationer" if k == "aktuella" else "HamtaOrdinationshistorik"
            return "GET", f"/patienter/{pid}/ordinationer/{k}", None, op, "pharmacy", 0
        if k == "patientinfo":
            return "GET", f"/patienter/{pid}", None, "HamtaPatientInfo", "prescriber", 0
        if k == "lakemedelsforteckning":
            return "GET", f"/patienter/{pid}/lakemedelsforteckning", None, "HamtaLakemedelsforteckning", "prescriber", 0
        if k == "reserve":
            return "POST", "/expeditionsid", {"antal": step.arg("antal")}, "HamtaExpeditionsId", "pharmacy", 0
        if k == "consent":
            body = {"samtycke": step.arg("samtycke")}
            return "PUT", f"/patienter/{pid}/samtycke", body, "UppdateraSamtycke", "pharmacy", 0
        if k == "withdraw":
            if not created or not reserved:
                return "POST", None, None, "GodkannUttag", "pharmacy", 0
            oid = created[step.ref % len(created)]
            # at the limit the prescription sets: one below, exactly, one above
            packages = max(1, prescribed.get(oid, 1) + step.arg("extra", 0))
            body = {"expeditionsId": reserved[-1], "antalForpackningar": packages}
            return "POST", f"/ordinationer/{oid}/uttag", body, "GodkannUttag", "pharmacy", 0
        if k == "report":
            if not withdrawn:
                return "POST", None, None, "RapporteraExpeditionLF", "pharmacy", 0
            oid, eid, pkgs = withdrawn[step.ref % len(withdrawn)]
            body = {"expeditionsId": eid, "personId": pid, "ordinationId": oid, "antalForpackningar": pkgs}
            return "POST", "/lakemedelsforteckning/expeditioner", body, "RapporteraExpeditionLF", "pharmacy", 0
        if k == "cancel":
            if not created:
                return "POST", None, None, "MakuleraOrdination", "prescriber", 0
            oid = created[step.ref % len(created)]
            return (
                "POST",
                f"/ordinationer/{oid}/makulering",
                {"orsak": step.arg("orsak")},
                "MakuleraOrdination",
                "prescriber",
                0,
            )
        raise ValueError(f"unknown step {k}")


def paths(node: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a JSON document by its path (`ordinationer[0].status`)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        if not node:
            out[prefix or "$"] = {}
        for key, value in node.items():
            out.update(paths(value, f"{prefix}.{key}" if prefix else key))
        return out
    if isinstance(node, list):
        out = {f"{prefix}#len": len(node)}
        for i, value in enumerate(node):
            out.update(paths(value, f"{prefix}[{i}]"))
        return out
    return {prefix or "$": node}


def generalise(path: str) -> str:
    """A path with its list positions dropped: the noise of one element is noise of every element."""
    return _INDEX.sub("[]", path)


@dataclass
class Difference:
    """Old and new disagree at one place of one step's answer."""

    step: str
    operation: str
    path: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.operation} [{self.step}] {self.path}: old={self.old!r} new={self.new!r}"


@dataclass
class Noise:
    """Fields that differ between two instances of the old platform: learned over the run."""

    declared: frozenset[str]
    learned: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def is_noise(self, path: str) -> bool:
        """Whether differences at `path` are expected."""
        g = generalise(path)
        return g in self.learned or g.rsplit(".", 1)[-1] in self.declared

    def learn(self, primary: list[Exchange], secondary: list[Exchange]) -> None:
        """Add every place where the two old answers differ."""
        with self._lock:
            for a, b in zip(primary, secondary, strict=True):
                if a.status != b.status:
                    self.learned.add(f"{a.operation}:status")
                pa, pb = paths(a.body), paths(b.body)
                for p in pa.keys() | pb.keys():
                    if pa.get(p) != pb.get(p):
                        self.learned.add(generalise(f"{a.operation}:{p}"))

    def covers(self, operation: str, path: str) -> bool:
        """Noise at `path` of an operation's answer."""
        return self.is_noise(f"{operation}:{path}") or generalise(path).rsplit(".", 1)[-1] in self.declared


def declared_noise(mapping: Mapping) -> frozenset[str]:
    """The mapping's instant fields: moments of a call, never equal across platforms."""
    return mapping.instant_fields


def compare(old: list[Exchange], new: list[Exchange], noise: Noise) -> list[Difference]:
    """Every difference between old and new answers that noise does not explain."""
    diffs: list[Difference] = []
    for a, b in zip(old, new, strict=True):
        if a.status != b.status and f"{a.operation}:status" not in noise.learned:
            diffs.append(Difference(a.step, a.operation, "status", a.status, b.status))
            continue
        pa, pb = paths(a.body), paths(b.body)
        for p in sorted(pa.keys() | pb.keys()):
            if pa.get(p, "<absent>") != pb.get(p, "<absent>") and not noise.covers(a.operation, p):
                diffs.append(Difference(a.step, a.operation, p, pa.get(p, "<absent>"), pb.get(p, "<absent>")))
    return diffs


def render(patient: str, steps: list[Step], diffs: list[Difference], old: list[Exchange], new: list[Exchange]) -> str:
    """A readable report of one sequence's differences, with both answers of each differing step."""
    lines = [f"old/new differences for test patient {patient} ({len(diffs)}):"]
    lines += [f"  {d}" for d in diffs]
    lines.append("sequence:")
    lines += [f"  {i + 1}. {s}" for i, s in enumerate(steps)]
    differing = {d.step for d in diffs}
    for a, b in zip(old, new, strict=True):
        if a.step in differing:
            lines.append(f"--- {a.operation} [{a.step}]")
            lines.append(f"old {a.status}: {json.dumps(a.body, ensure_ascii=False)[:2000]}")
            lines.append(f"new {b.status}: {json.dumps(b.body, ensure_ascii=False)[:2000]}")
    return "\n".join(lines)
