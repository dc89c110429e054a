"""Old vs new: the same generated legacy call sequences go to both platforms and are compared.

The calls are SOAP requests of the one legacy client; the answers are compared canonically (see
`canonical`): element local names, namespaces and child order, never the platforms' prefixes,
whitespace or attribute order.

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

from hypothesis import strategies as st
from lxml import etree

from rxverify.contracts.xsdmodel import children, is_simple, repeats
from rxverify.legacy.client import LegacyAnswer, LegacyClient
from rxverify.mapping import Mapping
from rxverify.safety.registry import Registry, TestPatient
from rxverify.strategies import differential_patients

TEXTS = ("Alvedon 500 mg tablett", "Åkerört örtte", "Ibuprofen Björn 400 mg", "Öronsalva ÄÅÖ", "Levaxin 50 µg")
DOSAGES = ("1 tablett 3 gånger dagligen", "2 droppar i örat vid behov", "1 kapsel på morgonen, åt ärligt", "Enl. ö.k.")
ORSAKER = ("FEL_LAKEMEDEL", "FEL_PATIENT", "FEL_DOSERING", "BEHANDLING_AVSLUTAD", "OVRIGT")
TEXT_MAX = 500  # TextType's maxLength in characters (se.apotekensservice_common_1.0.xsd): doseringstext
_LETTERS = "abcdefghijklmnopqrstuvwxyzåäöÅÄÖéü"
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


def _texts_at_the_limit() -> st.SearchStrategy[str]:
    """Free texts of nearly or exactly TEXT_MAX characters, many of them å, ä, ö: a limit counted in
    characters, not bytes, holds them whole (a boundary value of the contract's TextType)."""
    letter = st.sampled_from(_LETTERS)
    middle = st.text(alphabet=_LETTERS + " ", min_size=TEXT_MAX - 12, max_size=TEXT_MAX - 2)
    return st.builds(lambda a, m, b: a + m + b, letter, middle, letter)


def _create() -> st.SearchStrategy[Step]:
    """A SkapaOrdinationVard step: type, withdrawals, packages, texts, validity (or none) and prescriber."""
    return st.builds(
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
        st.integers(1, 4),
        st.integers(1, 3),
        st.sampled_from(TEXTS),
        st.one_of(st.sampled_from(DOSAGES), st.sampled_from(DOSAGES), _texts_at_the_limit()),
        # giltigTom in days from today: none (the default), inside the range allowed, or on either of its
        # ends and one day past each (both platforms must draw the same line)
        st.one_of(st.none(), st.integers(0, 366), st.sampled_from((-1, 0, 366, 367))),
        st.integers(0, 2),
    )


def _steps() -> st.SearchStrategy[Step]:
    create = _create()
    simple = st.sampled_from([Step(k) for k in ("aktuella", "historik", "patientinfo", "lakemedelsforteckning")])
    reserve = st.builds(lambda n: Step("reserve", (("antal", n),)), st.integers(1, 2))
    # packages at the limit the prescription sets: one below, exactly, one above; now and then a
    # prescription or a dispensing id the platform does not know (which refusal comes first)
    withdraw = st.builds(
        lambda ref, extra, who, unknown, uid: Step(
            "withdraw",
            (("extra", extra), ("pharmacy", who), *((("unknown", unknown), ("id", uid)) if unknown else ())),
            ref,
        ),
        st.integers(0, 3),
        st.sampled_from((-1, 0, 1)),
        st.integers(0, 1),
        st.sampled_from((None, "ordination", "expedition", "both")),  # known or not, each id
        st.uuids().map(str),
    )
    report = st.builds(lambda ref: Step("report", (), ref), st.integers(0, 3))
    cancel = st.builds(
        lambda ref, why: Step("cancel", (("orsak", why),), ref), st.integers(0, 3), st.sampled_from(ORSAKER)
    )
    consent = st.builds(lambda yes: Step("consent", (("samtycke", yes),)), st.booleans())
    return st.one_of(create, create, simple, reserve, withdraw, withdraw, report, cancel, consent)


def _chains() -> st.SearchStrategy[list[Step]]:
    """The lifecycles the services exist for, so they are drawn often, not only by chance.

    `ref=-1` is the prescription the chain just created. The create is drawn as itself: filtered
    out of every step kind, hypothesis gave up on most draws, and a run of 100 sequences could hold
    no cancelled prescription at all (power, seed 537863606).
    """
    create = _create()
    withdraw = st.builds(
        lambda extra: Step("withdraw", (("extra", extra), ("pharmacy", 0)), -1), st.sampled_from((-1, 0, 1))
    )
    # each withdrawal on its own reserved dispensing id (one id serves one withdrawal), so a
    # prescription gets as many withdrawals as it allows, and one more is refused
    dispense = st.builds(
        lambda c, ws: [c, *(s for w in ws for s in (Step("reserve", (("antal", 1),)), w)), Step("report", (), -1)],
        create,
        st.lists(withdraw, min_size=1, max_size=5),
    )
    # cancelled, then withdrawn from (refused: MAKULERAD) and cancelled again (refused: EJ_MAKULERBAR), in
    # either order
    def cancelled_twice(c: Step, why: str, w: Step, again: str, again_first: bool) -> list[Step]:
        second = Step("cancel", (("orsak", again),), -1)
        withdrawal = [Step("reserve", (("antal", 1),)), w]
        return [c, Step("cancel", (("orsak", why),), -1),
                *([second, *withdrawal] if again_first else [*withdrawal, second])]

    cancelled = st.builds(
        cancelled_twice, create, st.sampled_from(ORSAKER), withdraw, st.sampled_from(ORSAKER), st.booleans()
    )
    # a patient with two prescriptions dispensed in turn, each withdrawal reported to the list
    # (ref -2 and -1: the two just created), so histories and the list interleave prescriptions
    def in_turn(first: Step, second: Step, order: list[int]) -> list[Step]:
        steps = [first, second]
        for ref in order:
            steps += [Step("reserve", (("antal", 1),)), Step("withdraw", (("extra", 0), ("pharmacy", 0)), ref),
                      Step("report", (), -1)]
        return steps

    # both prescriptions in the first two withdrawals, in either order, then up to three more: drawn as a
    # free list, most runs held few that alternated (hypothesis draws [-2, -2] as readily as [-2, -1])
    order = st.builds(lambda first, more: [*first, *more], st.permutations((-2, -1)),
                      st.lists(st.sampled_from((-2, -1)), max_size=3))
    alternating = st.builds(in_turn, create, create, order)
    consent = st.builds(
        lambda yes: [Step("consent", (("samtycke", yes),)), Step("lakemedelsforteckning")], st.booleans()
    )
    # a pharmacy names a prescription or a dispensing id the platform does not know while the patient has
    # a real one of each (which refusal comes first); drawn only by chance as a single step, a run of 100
    # sequences could hold one such withdrawal (CI, seed 206720519)
    refused = st.builds(
        lambda c, unknown, uid: [
            c, Step("reserve", (("antal", 1),)),
            Step("withdraw", (("extra", 0), ("pharmacy", 0), ("unknown", unknown), ("id", uid)), -1),
        ],
        create,
        st.sampled_from(("ordination", "expedition", "both")),
        st.uuids().map(str),
    )
    return st.one_of(dispense, cancelled, alternating, consent, refused)


# Every sequence ends by reading the patient's whole state, so a difference a step left behind
# shows even when no generated read came after it.
EPILOGUE = (Step("historik"), Step("aktuella"), Step("patientinfo"), Step("lakemedelsforteckning"))


@st.composite
def call_sequences(draw: st.DrawFn, registry: Registry) -> tuple[TestPatient, list[Step]]:
    """A patient kept for the differential and a sequence of legacy calls about them, then the reads.

    Every sequence holds at least one lifecycle (dispensed, cancelled and cancelled again, two
    prescriptions dispensed in turn, consent then the list, a withdrawal naming an unknown id) among
    single calls and further lifecycles, so each lifecycle is in about a fifth of a run's sequences
    (hypothesis clusters its draws: over 100 seeds, each in 3 to 70 of 100).
    """
    patient = draw(st.sampled_from(differential_patients(registry)))
    parts = draw(st.lists(st.one_of(_steps().map(lambda s: [s]), _chains()), max_size=5))
    parts.insert(draw(st.integers(0, len(parts))), draw(_chains()))
    return patient, [*(step for part in parts for step in part), *EPILOGUE]


@dataclass
class Exchange:
    """What one platform answered to one step: the status and the answer's canonical leaves."""

    step: str
    operation: str
    status: int | None
    body: Any


def canonical(answer: LegacyAnswer) -> Any:
    """An answer as the comparison sees it, whatever the platform's prefixes, whitespace and attribute order.

    The body element read by its XSD (XML local names, lists where an element repeats, values typed;
    a fault as faultcode, faultstring and its detail's kind, kod and meddelande), plus what the local
    names alone would hide: the namespace of the body element and of every element whose namespace is
    not its parent's (`@ns`), and the order of an element's children where it has several (`#order`).
    Not SOAP at all: the reason, as text.
    """
    element = answer.element
    if element is None:
        return f"not SOAP: {answer.parsed.problem}"
    body = answer.body
    if not isinstance(body, dict):
        return body
    out = body if answer.fault is not None else _with_empty_lists(body, answer.service.element(response=True))
    out = dict(out)
    out.update(_wire_leaves(element, "", None))
    return out


def _with_empty_lists(data: Any, decl: Any) -> Any:
    """Decoded data with every absent element that may repeat as an empty list: none is a length of 0.

    XML has no empty list: an answer with no prescriptions simply has no `ordination`; read as a
    length it compares as 0 against the other platform's n, which names the list in the difference.
    """
    if not isinstance(data, dict) or decl is None or is_simple(decl.type):
        return data
    out = dict(data)
    for child in children(decl.type):
        name = child.local_name
        if name not in out:
            if repeats(child):
                out[name] = []
            continue
        value = out[name]
        out[name] = ([_with_empty_lists(v, child) for v in value] if isinstance(value, list)
                     else _with_empty_lists(value, child))
    return out


def _wire_leaves(node: etree._Element, path: str, parent_ns: str | None) -> dict[str, Any]:
    qname = etree.QName(node)
    out: dict[str, Any] = {}
    children = [c for c in node if isinstance(c.tag, str)]
    if qname.namespace != parent_ns:
        out[f"{path}@ns"] = qname.namespace
    if len(children) > 1:
        out[f"{path}#order"] = " ".join(etree.QName(c).localname for c in children)
    seen: dict[str, int] = {}
    for child in children:
        local = etree.QName(child).localname
        index = seen.get(local, 0)
        seen[local] = index + 1
        at = f"{path}.{local}" if path else local
        out.update(_wire_leaves(child, f"{at}[{index}]" if index or _repeated(children, local) else at,
                                qname.namespace))
    return out


def _repeated(children: list[etree._Element], local: str) -> bool:
    return sum(1 for c in children if etree.QName(c).localname == local) > 1


@dataclass
class Lane:
    """One platform's old interface, called through the one legacy client."""

    name: str
    client: LegacyClient
    # every ordinationsId and expeditionsId this lane was given over the run, by the call that gave
    # it (sequence, step, position): every lane is sent the same sequences, so the same call names
    # the same prescription on each platform, and one a platform refused shifts no other
    aliases: dict[str, str] = field(default_factory=dict)

    def run(self, patient: TestPatient, steps: list[Step], issue_date_days: Any, sequence: int = 0
            ) -> list[Exchange]:
        """Send every step in order, resolving references within this lane; record the answers."""
        created: list[str] = []
        prescribed: dict[str, int] = {}  # packages per withdrawal, per prescription of this lane
        reserved: list[str] = []
        withdrawn: list[tuple[str, str, int]] = []
        out: list[Exchange] = []
        pid = patient.id
        for at, step in enumerate(steps, 1):
            service, data, role, who = self._request(step, pid, created, reserved, withdrawn, issue_date_days,
                                                     prescribed)
            if data is None:
                out.append(Exchange(str(step), service, None, "skipped: nothing to refer to"))
                continue
            answer = self.client.call(service, data, role=role, actor=who)
            out.append(Exchange(str(step), service, answer.status, canonical(answer)))
            got = answer.body if answer.ok else None
            if not isinstance(got, dict):
                continue
            if service == "SkapaOrdinationVard" and "ordinationsId" in got:
                created.append(got["ordinationsId"])
                self.aliases.setdefault(got["ordinationsId"], f"<ordination {sequence}.{at}>")
                prescribed[got["ordinationsId"]] = int(data["antalForpackningar"])
            elif service == "HamtaExpeditionsId":
                ids = got.get("expeditionsId", [])
                ids = ids if isinstance(ids, list) else [ids]
                reserved.extend(ids)
                for n, eid in enumerate(ids, 1):
                    self.aliases.setdefault(eid, f"<expedition {sequence}.{at}.{n}>")
            elif service == "GodkannUttag" and {"ordinationsId", "expeditionsId"} <= got.keys():
                withdrawn.append((got["ordinationsId"], got["expeditionsId"], int(got["antalForpackningar"])))
        return [Exchange(e.step, e.operation, e.status, aliased(e.body, self.aliases)) for e in out]

    @staticmethod
    def _request(
        step: Step,
        pid: str,
        created: list[str],
        reserved: list[str],
        withdrawn: list[tuple[str, str, int]],
        issue_date_days: Any,
        prescribed: dict[str, int],
    ) -> tuple[str, dict[str, Any] | None, str, int]:
        """The service, its request element's children (XML names; None: nothing to refer to), role, actor."""
        k = step.kind
        if k == "create":
            body: dict[str, Any] = {
                "personnummer": pid,
                "lakemedel": {"nplPackId": "19990101100001", "namn": step.arg("namn")},
                "doseringstext": step.arg("doseringstext"),
                "antalForpackningar": step.arg("antalForpackningar"),
                "antalUttag": step.arg("antalUttag"),
                "forskrivningstyp": step.arg("forskrivningstyp"),
            }
            if step.arg("giltigDagar") is not None:
                body["giltigTom"] = issue_date_days(step.arg("giltigDagar"))
            return "SkapaOrdinationVard", body, "prescriber", step.arg("prescriber", 0)
        reads = {
            "aktuella": ("HamtaAktuellaOrdinationer", "pharmacy"),
            "historik": ("HamtaOrdinationshistorik", "pharmacy"),
            "patientinfo": ("HamtaPatientInfo", "prescriber"),
            "lakemedelsforteckning": ("HamtaLakemedelsforteckning", "prescriber"),
        }
        if k in reads:
            service, role = reads[k]
            return service, {"personnummer": pid}, role, 0
        if k == "reserve":
            return "HamtaExpeditionsId", {"antal": step.arg("antal")}, "pharmacy", 0
        if k == "consent":
            return "UppdateraSamtycke", {"personnummer": pid, "samtycke": step.arg("samtycke")}, "pharmacy", 0
        if k == "withdraw":
            unknown = step.arg("unknown")
            if (not created and unknown not in ("ordination", "both")) or (
                not reserved and unknown not in ("expedition", "both")
            ):
                return "GodkannUttag", None, "pharmacy", 0
            oid = step.arg("id") if unknown in ("ordination", "both") else created[step.ref % len(created)]
            eid = step.arg("id") if unknown in ("expedition", "both") else reserved[-1]
            # at the limit the prescription sets: one below, exactly, one above
            packages = max(1, prescribed.get(oid, 1) + step.arg("extra", 0))
            body = {"ordinationsId": oid, "expeditionsId": eid, "antalForpackningar": packages}
            return "GodkannUttag", body, "pharmacy", 0
        if k == "report":
            if not withdrawn:
                return "RapporteraExpeditionLF", None, "pharmacy", 0
            oid, eid, pkgs = withdrawn[step.ref % len(withdrawn)]
            body = {"expeditionsId": eid, "personnummer": pid, "ordinationsId": oid, "antalForpackningar": pkgs}
            return "RapporteraExpeditionLF", body, "pharmacy", 0
        if k == "cancel":
            if not created:
                return "MakuleraOrdinationVard", None, "prescriber", 0
            oid = created[step.ref % len(created)]
            return "MakuleraOrdinationVard", {"ordinationsId": oid, "orsak": step.arg("orsak")}, "prescriber", 0
        raise ValueError(f"unknown step {k}")


def aliased(node: Any, alias: dict[str, str]) -> Any:
    """`node` with every id a lane was given replaced by its place in the run (`Lane.aliases`).

    An ordinationsId or expeditionsId differs between any two platforms (noise by value), but
    which prescription an answer names does not: `<ordination 7.2>` is the one step 2 of the
    run's 7th sequence created, on every platform, so an answer that lists or refers to another one, or in
    another order, is a difference, where the raw ids would have been learned as noise.
    """
    if isinstance(node, dict):
        return {k: aliased(v, alias) for k, v in node.items()}
    if isinstance(node, list):
        return [aliased(v, alias) for v in node]
    if isinstance(node, str):
        return alias.get(node, node)
    return node


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
            lines.append(f"old {a.status}: {json.dumps(a.body, ensure_ascii=False, default=str)[:2000]}")
            lines.append(f"new {b.status}: {json.dumps(b.body, ensure_ascii=False, default=str)[:2000]}")
    return "\n".join(lines)
