"""Hypothesis strategies built from a profile: valid instances, and instances that break one constraint.

Everything is derived from the compiled profile (structure.Plan): cardinalities, choice types,
slices and their discriminator values, fixed and pattern values, codes from the bound ValueSets,
`matches('...')` constraints as regular expressions, maxLength, minValue/maxValue, contained
resources from their profiles and references to them. A value the profile cannot give comes from
NAMED_STRATEGIES, keyed by element id, by `Reference(<target type>).<element>` or by type code.
Personal identity numbers come only from the test-patient registry (rxverify.strategies); a string
drawn from a profile's regular expression that contains an unregistered identity is rejected.

The snapshots are complete (every element of the base), so an optional element is drawn only
where the profile's differential speaks of it (or of something below it): the elements the
profile is about. Elements only the base defines are left out, as a sender that knows nothing of
them would; they stay checked by the validator all the same.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from rxverify.errors import UserError
from rxverify.fhir.base import BASE_PREFIX
from rxverify.fhir.package import Package
from rxverify.fhir.structure import Node, Plan
from rxverify.fhir.validator import Invariant, Validator, validator_for
from rxverify.safety.registry import Registry, TestPatient, load_registry
from rxverify.strategies import test_patients

# The patient identifier systems (DOMAIN.md, Identifiers) by the registry's `kind`.
PATIENT_SYSTEMS = {
    "personnummer": "http://electronichealth.se/identifier/personnummer",
    "samordningsnummer": "http://electronichealth.se/identifier/samordningsnummer",
}
# Dates the generator uses: the release's era (DOMAIN.md: release 21.0, November 2021) +- years.
FIRST_DATE, LAST_DATE = date(2020, 1, 1), date(2025, 12, 31)
# Numbers without minValue/maxValue: small whole amounts (a count of packages, repeats, ...).
WHOLE_AMOUNTS = (1, 20)
# Optional elements are drawn in; repeating elements get at most this many beyond their minimum.
EXTRA_REPEATS = 1

_WORD = r"[A-Za-z0-9åäöÅÄÖ]{1,10}"
_TEXT = rf"{_WORD}( {_WORD}){{0,3}}"
_PRIMITIVE_NUMBERS = {"decimal", "integer", "unsignedInt", "positiveInt", "integer64"}


class CannotGenerate(UserError):
    """The profile asks for a value no rule or named strategy can give."""


@dataclass(frozen=True)
class Violation:
    """How an instance breaks its profile: the constraint kind and the issue the validator must report."""

    kind: str  # cardinality-min, cardinality-max, fixed, pattern, binding, max-length, invariant, ...
    location: str
    code: str  # the OperationOutcome issue code expected
    detail: str


@dataclass
class _Ctx:
    """Per-instance generation state: contained resources by type, for `#id` references."""

    contained: dict[str, str]
    constrained: frozenset[str] = frozenset()  # the element ids of the profile being drawn (see the docstring)


Named = Callable[["Generator", Node], st.SearchStrategy[Any]]


def _patient_identifier(gen: Generator, node: Node) -> st.SearchStrategy[Any]:
    def identifier(p: TestPatient) -> dict[str, str]:
        return {"system": PATIENT_SYSTEMS[p.kind], "value": p.id}

    return test_patients(gen.registry).filter(lambda p: p.kind in PATIENT_SYSTEMS).map(identifier)


def _dates() -> st.SearchStrategy[date]:
    return st.dates(FIRST_DATE, LAST_DATE)


def _period(gen: Generator, node: Node) -> st.SearchStrategy[Any]:
    """Full dates, end on or after start (a period is read as days)."""
    return st.tuples(_dates(), st.integers(0, 366)).map(
        lambda t: {"start": t[0].isoformat(), "end": (t[0] + timedelta(days=t[1])).isoformat()}
    )


def _date_time(gen: Generator, node: Node) -> st.SearchStrategy[Any]:
    return st.tuples(_dates(), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59)).map(
        lambda t: f"{t[0].isoformat()}T{t[1]:02d}:{t[2]:02d}:{t[3]:02d}+01:00"
    )


def _number(gen: Generator, node: Node) -> st.SearchStrategy[Any]:
    low = node.min_value if isinstance(node.min_value, int) else WHOLE_AMOUNTS[0]
    high = node.max_value if isinstance(node.max_value, int) else max(low, WHOLE_AMOUNTS[1])
    return st.integers(low, high)


def _text(gen: Generator, node: Node) -> st.SearchStrategy[Any]:
    limit = node.max_length or 10_000
    return st.from_regex(_TEXT, fullmatch=True).filter(lambda s: len(s) <= limit)


def _code(gen: Generator, node: Node) -> st.SearchStrategy[Any]:
    return st.from_regex(r"[a-z][a-z0-9\-]{0,15}", fullmatch=True)


def _uuid_uri(gen: Generator, node: Node) -> st.SearchStrategy[Any]:
    return st.uuids().map(lambda u: f"urn:uuid:{u}")


# Values the profile cannot give: keyed by element id, `Reference(<type>).<element>` or type code.
NAMED_STRATEGIES: dict[str, Named] = {
    "Reference(Patient).identifier": _patient_identifier,
    "Period": _period,
    "string": _text,
    "markdown": _text,
    "code": _code,
    "uri": _uuid_uri,
    "url": lambda gen, node: st.uuids().map(lambda u: f"http://example.org/{u}"),
    "canonical": lambda gen, node: st.uuids().map(lambda u: f"http://example.org/{u}"),
    "id": lambda gen, node: st.uuids().map(str),
    "uuid": _uuid_uri,
    "dateTime": _date_time,
    "instant": _date_time,
    "date": lambda gen, node: _dates().map(date.isoformat),
    "boolean": lambda gen, node: st.booleans(),
    **{t: _number for t in _PRIMITIVE_NUMBERS},
    "Identifier": lambda gen, node: st.builds(
        lambda s, v: {"system": s, "value": v}, _uuid_uri(gen, node), st.uuids().map(str)
    ),
    "Coding": lambda gen, node: st.builds(
        lambda s, c: {"system": s, "code": c}, _uuid_uri(gen, node), _code(gen, node)
    ),
    "CodeableConcept": lambda gen, node: _text(gen, node).map(lambda t: {"text": t}),
    "Dosage": lambda gen, node: _text(gen, node).map(lambda t: {"text": t}),
    "Quantity": lambda gen, node: _number(gen, node).map(lambda v: {"value": v}),
    "Annotation": lambda gen, node: _text(gen, node).map(lambda t: {"text": t}),
}


@cache
def _ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


_UUIDS = st.uuids()


def _cap(code: str) -> str:
    return code[:1].upper() + code[1:]


def _profile_rules(node: Node) -> bool:
    """Whether the profile (not the base) adds invariants to the element."""
    return any(not c.source.startswith(BASE_PREFIX) for c in node.constraints)


def _constrained(plan: Plan) -> frozenset[str]:
    """The element ids the profile's differential speaks of, and their ancestors."""
    found = plan.root.cache.get("constrained")
    if found is None:
        ids: set[str] = set()
        for element in (plan.definition.get("differential") or {}).get("element", []):
            parts = str(element.get("id", "")).split(".")
            for i in range(1, len(parts) + 1):
                ids.add(".".join(parts[:i]))
        found = plan.root.cache["constrained"] = frozenset(ids)
    return frozenset(found)


class Generator:
    """Builds instances of a package's profiles; one per (package, registry)."""

    def __init__(self, validator: Validator, registry: Registry) -> None:
        self.validator = validator
        self.registry = registry
        self._resource_types: dict[str, bool] = {}
        self._strategies: dict[tuple[int, str], st.SearchStrategy[Any]] = {}

    def cached(self, node: Node, what: str, make: Callable[[], st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
        """A node's strategy, built once (building regex strategies is costly)."""
        key = (id(node), what)
        found = self._strategies.get(key)
        if found is None:
            found = self._strategies[key] = make()
        return found

    def plan(self, url: str) -> Plan:
        """The compiled profile."""
        return self.validator.plan(url)

    def resource_type(self, code: str) -> bool:
        """Whether a type code is a resource type (contained) rather than a data type (R4 definitions)."""
        if code not in self._resource_types:
            self._resource_types[code] = self.validator.index.is_resource_or_abstract(code)
        return self._resource_types[code]

    def rules(self, node: Node, code: str | None = None) -> tuple[Invariant, ...]:
        """The error invariants that must hold on a value of the node (its own and its type's)."""
        return tuple(i for i in self.validator.invariants(node, code) if i.severity == "error")

    # -------------------------------------------------------------- valid instances

    def resource(self, draw: st.DrawFn, plan: Plan, ctx: _Ctx | None = None, declare: bool = True) -> dict[str, Any]:
        """One instance of a resource profile (meta.profile declares it unless contained)."""
        ctx = ctx or _Ctx({})
        body = self.object(draw, plan.root, ctx, root=True, constrained=_constrained(plan))
        instance: dict[str, Any] = {"resourceType": plan.type}
        if "id" not in body:
            instance["id"] = str(draw(_UUIDS))
        instance.update(body)
        if declare:
            meta = instance.setdefault("meta", {})
            meta["profile"] = [plan.url]
        for constraint in self.rules(plan.root):
            assume(self._holds(constraint, instance, instance))
        return instance

    def _holds(self, constraint: Any, value: Any, resource: Any) -> bool:
        try:
            return bool(constraint.holds(value, resource))
        except Exception:
            return False

    def object(
        self, draw: st.DrawFn, node: Node, ctx: _Ctx, root: bool = False, constrained: frozenset[str] | None = None
    ) -> dict[str, Any]:
        """The children of a complex element, each per its cardinality (optional ones where the profile speaks)."""
        if constrained is not None:
            ctx.constrained = constrained
        obj: dict[str, Any] = {}
        children = list(node.children.values())
        if root:  # contained resources first, so references can point at them
            children.sort(key=lambda c: c.name != "contained")
        for child in children:
            if child.max == 0:
                continue
            if child.min == 0 and child.id not in ctx.constrained:
                continue
            key, items = self.element(draw, child, ctx)
            if items:
                obj[key] = items if child.is_array else items[0]
        return obj

    def element(self, draw: st.DrawFn, node: Node, ctx: _Ctx) -> tuple[str, list[Any]]:
        """The JSON key and the values of one element (empty when left out)."""
        code = draw(self.cached(node, "types", lambda: st.sampled_from(node.type_codes()))) if node.types else None
        key = node.name + _cap(code) if node.choice and code else node.name
        if node.slices:
            items: list[Any] = []
            for slice_node in node.slices.values():
                items += self.values(draw, slice_node, code, ctx)
            return key, items
        return key, self.values(draw, node, code, ctx)

    def values(self, draw: st.DrawFn, node: Node, code: str | None, ctx: _Ctx) -> list[Any]:
        """Between min and a small maximum values of a node; optional ones only when derivable."""
        high = node.min + EXTRA_REPEATS if node.max is None else min(node.max, max(node.min, 1))
        count = draw(_ints(node.min, max(node.min, high)))
        if not node.is_array and node.slice_name is None:
            count = min(count, 1)
        out = []
        for _ in range(count):
            try:
                out.append(self.value(draw, node, code, ctx))
            except CannotGenerate:
                if node.min > 0:
                    raise
                return []
        return out

    def named(self, node: Node, code: str | None, parent_targets: tuple[str, ...] = ()) -> Named | None:
        """The named strategy for an element: by id, by reference target, by type."""
        found = NAMED_STRATEGIES.get(node.id)
        for target in parent_targets:
            found = found or NAMED_STRATEGIES.get(f"Reference({target}).{node.name}")
        return found or (NAMED_STRATEGIES.get(code) if code else None)

    def value(self, draw: st.DrawFn, node: Node, code: str | None, ctx: _Ctx, targets: tuple[str, ...] = ()) -> Any:
        """One value of a node: fixed, pattern, named, bound code, profile, children or primitive."""
        if node.has_fixed:
            return copy.deepcopy(node.fixed)
        if node.has_pattern:
            return copy.deepcopy(node.pattern)
        code = code or (node.types[0].code if node.types else None)
        named = NAMED_STRATEGIES.get(node.id) or next(
            (NAMED_STRATEGIES[k] for t in targets if (k := f"Reference({t}).{node.name}") in NAMED_STRATEGIES), None
        )
        if named is not None:
            return draw(self.cached(node, "named", lambda: named(self, node)))
        if node.binding_set is not None:
            return self._coded(draw, node, code)
        type_ref = next((t for t in node.types if t.code == code), None)
        if code and type_ref and type_ref.profiles and self.resource_type(code):
            plan = self.plan(type_ref.profiles[0])
            outer = ctx.constrained
            contained = self.resource(draw, plan, ctx, declare=False)
            ctx.constrained = outer
            ctx.contained.setdefault(plan.type, contained["id"])
            return contained
        if code and type_ref and type_ref.profiles and not node.children:
            profiled = self.plan(type_ref.profiles[0])
            outer = ctx.constrained
            body = self.object(draw, profiled.root, ctx, constrained=_constrained(profiled))
            ctx.constrained = outer
            return self._checked(draw, profiled.root, body, code)
        if code == "Reference":
            return self._reference(draw, node, type_ref.targets if type_ref else (), ctx)
        if node.children and code and code[:1].isupper():
            typed = NAMED_STRATEGIES.get(code)
            if typed is not None and all(_plain(c) for c in node.children.values()):
                drawn = draw(self.cached(node, "typed", lambda: typed(self, node)))
                if all((c.name in drawn) >= (c.min > 0) for c in node.children.values()):
                    return self._checked(draw, node, drawn)
            return self._checked(draw, node, self.object(draw, node, ctx))
        regexes = [c.regex for c in self.rules(node, code) if c.regex is not None]
        if regexes and code in (None, "string", "code", "id", "uri", "markdown"):
            strategy = self.cached(
                node, "regex", lambda: st.from_regex(regexes[0], fullmatch=True).filter(self._safe_text(node))
            )
            return self._checked(draw, node, draw(strategy))
        fallback = NAMED_STRATEGIES.get(code or "")
        if fallback is None:
            raise CannotGenerate(f"no rule or named strategy generates {node.id} (type {code})")
        return self._checked(draw, node, draw(self.cached(node, f"type:{code}", lambda: fallback(self, node))))

    def _safe_text(self, node: Node) -> Callable[[str], bool]:
        def ok(text: str) -> bool:
            if node.max_length is not None and len(text) > node.max_length:
                return False
            return text.strip() == text and not self.registry.unregistered_in(text)

        return ok

    def _checked(self, draw: st.DrawFn, node: Node, value: Any, code: str | None = None) -> Any:
        # an invariant reading the resource around the value waits for the resource (resource())
        for constraint in self.rules(node, code):
            if not constraint.reads_resource:
                assume(self._holds(constraint, value, value))
        return value

    def _coded(self, draw: st.DrawFn, node: Node, code: str | None) -> Any:
        assert node.binding_set is not None
        codes = sorted(self.validator.expansion(node.binding_set))
        if not codes:
            raise CannotGenerate(f"ValueSet {node.binding_set} of {node.id} has no codes")
        system, value = draw(self.cached(node, "codes", lambda: st.sampled_from(codes)))
        if code in ("code", "string", "uri", None):
            return value
        coding = {"system": system, "code": value}
        if code == "Coding":
            return coding
        if code == "Quantity":
            return {"value": draw(_number(self, node)), **coding}
        return {"coding": [coding]}

    def _reference(self, draw: st.DrawFn, node: Node, targets: tuple[str, ...], ctx: _Ctx) -> dict[str, Any]:
        target_types = tuple(self.validator.target_type(u) for u in targets)
        out: dict[str, Any] = {}
        for child in node.children.values():
            if child.max == 0 or (child.min == 0 and child.id not in ctx.constrained):
                continue
            if child.name == "reference" and not child.has_fixed:
                if draw(_ints(child.min, 1)) == 0:
                    continue
                out["reference"] = self._reference_text(draw, target_types, ctx)
                continue
            items = []
            high = child.min if child.max is None else min(child.max, max(child.min, 1))
            for _ in range(draw(_ints(child.min, max(child.min, high)))):
                items.append(self.value(draw, child, None, ctx, targets=target_types))
            if items:
                out[child.name] = items if child.is_array else items[0]
        if not out:
            out["reference"] = self._reference_text(draw, target_types, ctx)
        return self._checked(draw, node, out)

    def _reference_text(self, draw: st.DrawFn, target_types: tuple[str, ...], ctx: _Ctx) -> str:
        for rtype in target_types:
            if rtype in ctx.contained:
                return f"#{ctx.contained[rtype]}"
        rtype = draw(st.sampled_from(target_types or ("Resource",)))
        return f"{rtype}/{draw(_UUIDS)}"

    # -------------------------------------------------------------- violations

    def sites(self, plan: Plan, instance: dict[str, Any]) -> list[_Site]:
        """Every element of an instance with the profile node that governs it."""
        out: list[_Site] = []
        self._sites(plan.root, instance, plan.type, out, False)
        return out

    def _sites(self, node: Node, obj: dict[str, Any], loc: str, out: list[_Site], guarded: bool) -> None:
        for child in node.children.values():
            key = next(
                (
                    k
                    for k in obj
                    if child.choice and k.startswith(child.name) and k[len(child.name) :] in child.choice_keys
                ),
                child.name,
            )
            where = f"{loc}.{child.name}[x]" if child.choice else f"{loc}.{child.name}"
            value = obj.get(key)
            items = value if isinstance(value, list) else ([] if value is None else [value])
            locs = [f"{loc}.{key}[{i}]" if isinstance(value, list) else f"{loc}.{key}" for i in range(len(items))]
            code = child.choice_keys.get(key[len(child.name) :]) if child.choice else None
            out.append(_Site(child, loc, obj, key, where, items, locs, code, guarded))
            slice_of: list[Node | None] = [None] * len(items)
            if child.slices:
                for i, item in enumerate(items):
                    name = self.validator.slice_of(child, item, code)
                    slice_of[i] = child.slices.get(name) if name else None
                for name, slice_node in child.slices.items():
                    picked = [i for i, s in enumerate(slice_of) if s is slice_node]
                    out.append(
                        _Site(
                            slice_node,
                            loc,
                            obj,
                            key,
                            f"{where}:{name}",
                            [items[i] for i in picked],
                            [locs[i] for i in picked],
                            code,
                            True,
                            indices=picked,
                        )
                    )
            for i, item in enumerate(items):
                if not isinstance(item, dict) or "resourceType" in item:
                    continue
                governing = slice_of[i] or child
                self._sites(governing, item, locs[i], out, guarded or slice_of[i] is not None or bool(child.slices))

    def violations(self, draw: st.DrawFn, plan: Plan, kinds: frozenset[str] | None) -> tuple[dict[str, Any], Violation]:
        """A valid instance changed to break exactly one constraint, and the issue expected."""
        instance = self.resource(draw, plan)
        candidates = [c for c in self._candidates(plan, instance) if kinds is None or c[0].kind in kinds]
        assume(candidates)
        kind = draw(st.sampled_from(sorted({v.kind for v, _ in candidates})))
        violation, mutate = draw(st.sampled_from([c for c in candidates if c[0].kind == kind]))
        broken = copy.deepcopy(instance)
        mutate(broken)
        return broken, violation

    def _candidates(self, plan: Plan, instance: dict[str, Any]) -> list[tuple[Violation, Callable[[Any], None]]]:
        out: list[tuple[Violation, Callable[[Any], None]]] = []
        sites = self.sites(plan, instance)
        for site in sites:
            out += _site_candidates(self, site)
        out += self._contained_reference_candidates(instance)
        out += self._root_invariant_candidates(plan, instance, sites)
        return out

    def _contained_reference_candidates(
        self, instance: dict[str, Any]
    ) -> list[tuple[Violation, Callable[[Any], None]]]:
        contained = instance.get("contained") or []
        ids = [c.get("id") for c in contained]
        out: list[tuple[Violation, Callable[[Any], None]]] = []
        for path, ref in _references(instance, instance["resourceType"]):
            if ref.startswith("#") and ref[1:] in ids:
                index = ids.index(ref[1:])

                def drop(doc: Any, index: int = index) -> None:
                    del doc["contained"][index]
                    if not doc["contained"]:
                        del doc["contained"]

                # ref-1 (Reference): "SHALL have a contained resource if a local reference is provided"
                where = path.removesuffix(".reference")
                out.append(
                    (Violation("contained-reference", where, "invariant", f"{ref} has no contained target"), drop)
                )
        return out

    def _root_invariant_candidates(
        self, plan: Plan, instance: dict[str, Any], sites: list[_Site]
    ) -> list[tuple[Violation, Callable[[Any], None]]]:
        """Changes that keep the structure valid yet make exactly one root invariant false."""
        constraints = self.rules(plan.root)
        if not constraints:
            return []
        changes: list[Callable[[Any], None]] = []
        for site in sites:
            node = site.node
            if site.guarded or not site.items or node.slice_name is not None:
                continue
            if node.min == 0 and not node.slices:
                changes.append(_remover(site))
            if node.binding_set and node.types and node.types[0].code == "code" and not node.has_fixed:
                for _, other in sorted(self.validator.expansion(node.binding_set)):
                    if other != site.items[0]:
                        changes.append(_setter(site, 0, other))
            siblings = [s for s in node.children.values() if s.types and s.types[0].code[:1].islower()]
            for value, _ in zip(site.items, site.locs, strict=True):
                if isinstance(value, dict) and len(siblings) >= 2:
                    for a in siblings:
                        for b in siblings:
                            if (
                                a.name < b.name
                                and a.types[0].code == b.types[0].code
                                and a.name in value
                                and b.name in value
                            ):
                                changes.append(_swapper(site, value, a.name, b.name))
        out = []
        for change in changes:
            doc = copy.deepcopy(instance)
            change(doc)
            failing = [c for c in constraints if not self._holds(c, doc, doc)]
            if len(failing) == 1 and failing[0].severity == "error":
                key = failing[0].key
                out.append((Violation("invariant", plan.type, "invariant", f"{key}: {failing[0].human}"), change))
        return out


def _plain(node: Node) -> bool:
    """A child that only restates cardinality: a named value of its parent's type may stand for it."""
    return not (
        node.has_fixed
        or node.has_pattern
        or node.binding_set
        or _profile_rules(node)
        or node.max_length
        or node.children
        or node.slices
        or node.max == 0
        or node.min_value is not None
        or node.max_value is not None
    )


@dataclass
class _Site:
    node: Node
    parent_loc: str
    parent: dict[str, Any]
    key: str
    where: str
    items: list[Any]
    locs: list[str]
    code: str | None
    guarded: bool  # inside a slice or sliced element: changing it may move it between slices
    indices: list[int] | None = None


def _index(site: _Site, i: int) -> int | None:
    if not isinstance(site.parent.get(site.key), list):
        return None
    return site.indices[i] if site.indices is not None else i


def _locate(doc: Any, loc: str) -> Any:
    """The JSON object at a location like `MedicationRequest.dispenseRequest.quantity` (first step is the type)."""
    current = doc
    for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", loc):
        name, index = step
        current = current[name] if name else current[int(index)]
    return current


def _setter(site: _Site, i: int, new: Any) -> Callable[[Any], None]:
    parent_loc, index = site.parent_loc, _index(site, i)

    def change(doc: Any) -> None:
        parent = _locate(doc, parent_loc)
        if index is None:
            parent[site.key] = new
        else:
            parent[site.key][index] = new

    return change


def _remover(site: _Site) -> Callable[[Any], None]:
    parent_loc = site.parent_loc

    def change(doc: Any) -> None:
        del _locate(doc, parent_loc)[site.key]

    return change


def _swapper(site: _Site, value: dict[str, Any], a: str, b: str) -> Callable[[Any], None]:
    loc = site.locs[site.items.index(value)]

    def change(doc: Any) -> None:
        obj = _locate(doc, loc)
        obj[a], obj[b] = obj[b], obj[a]

    return change


def _appender(site: _Site, new: Any) -> Callable[[Any], None]:
    parent_loc = site.parent_loc

    def change(doc: Any) -> None:
        _locate(doc, parent_loc)[site.key].append(copy.deepcopy(new))

    return change


def _safe_string(rules: tuple[Invariant, ...], candidates: list[str]) -> str | None:
    for text in candidates:
        if all(c.regex is None or c.regex.search(text) is None for c in rules):
            return text
    return None


# A malformed value per primitive type, and the issue code it gets: `value` when the JSON type is
# right but the content is not (regex, range), `structure` when the JSON type is wrong (json.html).
_MALFORMED: dict[str, tuple[Any, str]] = {
    "dateTime": ("2021-13-45T25:61:00", "value"),
    "date": ("2021-02-30x", "value"),
    "instant": ("yesterday", "value"),
    "boolean": ("yes", "structure"),
    "decimal": ("one", "structure"),
    "integer": ("1.5", "structure"),
    "unsignedInt": (-1, "value"),
    "positiveInt": (0, "value"),
}


def _site_candidates(gen: Generator, site: _Site) -> list[tuple[Violation, Callable[[Any], None]]]:
    node, out = site.node, []
    count = len(site.items)
    structural = node.name not in ("id", "url", "resourceType", "contained") and not node.slices
    if count and count == node.min and structural and node.slice_name is None and not site.guarded:
        out.append((Violation("cardinality-min", site.where, "required", f"remove {site.key}"), _remover(site)))
    if count and node.max is not None and count >= node.max and isinstance(site.parent.get(site.key), list):
        extra = site.items[-1]
        if node.slice_name is not None or not node.slices:
            out.append(
                (
                    Violation("cardinality-max", site.where, "structure", f"one {site.key} too many"),
                    _appender(site, extra),
                )
            )
    if node.max == 0 and not count and node.types and node.types[0].code == "string" and not site.guarded:
        out.append(
            (Violation("cardinality-max", site.where, "structure", f"{site.key} is prohibited"), _setter(site, 0, "x"))
        )
    if node.slicing_rules == "closed" and count and node.discriminators:
        path = node.discriminators[0][1]
        if path not in ("", "$this") and "." not in path and isinstance(site.items[0], dict):
            stray = copy.deepcopy(site.items[0])
            stray[path] = "http://example.org/fhir/no-such-slice"
            loc = f"{site.parent_loc}.{site.key}[{len(site.parent[site.key])}]"
            out.append((Violation("closed-slice", loc, "structure", "an unmatched slice item"), _appender(site, stray)))
    for i, (value, loc) in enumerate(zip(site.items, site.locs, strict=True)):
        if (
            node.has_fixed
            and isinstance(value, str)
            and not site.guarded
            and node.name != "id"
            and not value.startswith("#")
        ):
            out.append((Violation("fixed", loc, "value", f"{value!r} changed"), _setter(site, i, value + "-x")))
        if node.has_pattern and isinstance(value, dict) and "coding" in value and not site.guarded:
            wrong = copy.deepcopy(value)
            wrong["coding"][0]["code"] = str(wrong["coding"][0].get("code", "")) + "-x"
            out.append((Violation("pattern", loc, "value", "pattern code changed"), _setter(site, i, wrong)))
        if node.binding_set and node.binding_strength == "required" and not node.has_fixed:
            bogus = "not-in-the-valueset"
            if isinstance(value, str):
                out.append((Violation("binding", loc, "code-invalid", bogus), _setter(site, i, bogus)))
            elif isinstance(value, dict) and value.get("coding"):
                wrong = copy.deepcopy(value)
                for coding in wrong["coding"]:
                    coding["code"] = bogus
                out.append((Violation("binding", loc, "code-invalid", bogus), _setter(site, i, wrong)))
        if node.max_length is not None and isinstance(value, str):
            out.append(
                (
                    Violation("max-length", loc, "too-long", f"{node.max_length + 1} characters"),
                    _setter(site, i, "a" * (node.max_length + 1)),
                )
            )
        rules = gen.rules(node, site.code)
        if isinstance(value, str) and any(c.regex is not None for c in rules):
            bad = _safe_string(rules, ["x!", "!" + value])
            if bad is not None and (node.max_length is None or len(bad) <= node.max_length) and not site.guarded:
                key = next(c.key for c in rules if c.regex is not None)
                out.append((Violation("invariant", loc, "invariant", key), _setter(site, i, bad)))
        code = site.code or (node.types[0].code if len(node.types) == 1 else None)
        if code in _MALFORMED and not site.guarded and not node.has_fixed:
            bad_value, issue = _MALFORMED[code]
            out.append((Violation("type", loc, issue, f"malformed {code}"), _setter(site, i, bad_value)))
    return out


def _references(value: Any, loc: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "reference" and isinstance(inner, str):
                found.append((f"{loc}.reference", inner))
            elif key != "contained":
                found += _references(inner, f"{loc}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found += _references(inner, f"{loc}[{i}]")
    return found


_GENERATORS: dict[tuple[int, int], Generator] = {}


def generator_for(package: Package | None = None, registry: Registry | None = None) -> Generator:
    """The cached Generator of a package (default contracts/fhir) and registry (default the test patients)."""
    validator = validator_for(package)
    if registry is None:
        from rxverify.paths import contracts_dir

        registry = _default_registry(str(contracts_dir().resolve() / "testdata" / "test-patients.json"))
    key = (id(validator), id(registry))
    if key not in _GENERATORS:
        _GENERATORS[key] = Generator(validator, registry)
    return _GENERATORS[key]


_REGISTRIES: dict[str, Registry] = {}


def _default_registry(path: str) -> Registry:
    from pathlib import Path

    if path not in _REGISTRIES:
        _REGISTRIES[path] = load_registry(Path(path))
    return _REGISTRIES[path]


def resources(
    profile_url: str, package: Package | None = None, registry: Registry | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """Instances of a profile that satisfy every constraint the validator checks."""
    gen = generator_for(package, registry)
    plan = gen.plan(profile_url)

    @st.composite
    def instances(draw: st.DrawFn) -> dict[str, Any]:
        return gen.resource(draw, plan)

    return instances()


def violations(
    profile_url: str,
    package: Package | None = None,
    registry: Registry | None = None,
    kinds: set[str] | frozenset[str] | None = None,
) -> st.SearchStrategy[tuple[dict[str, Any], Violation]]:
    """(instance, Violation): a valid instance with exactly one constraint broken, and the issue expected."""
    gen = generator_for(package, registry)
    plan = gen.plan(profile_url)
    wanted = frozenset(kinds) if kinds else None

    @st.composite
    def broken(draw: st.DrawFn) -> tuple[dict[str, Any], Violation]:
        return gen.violations(draw, plan, wanted)

    return broken()
