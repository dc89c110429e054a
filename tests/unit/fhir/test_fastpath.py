"""The FHIRPath fast path (fastpath.py) against fhirpathpy: same results, or it declines.

Whenever the fast path answers, its result equals fhirpathpy's (value and type, as the validator
calls it: no model). Checked construct by construct on hand-written inputs, on the contract
examples, and as properties: the package's invariants on generated and mutated resources, and
random expressions of the subset on random JSON. The package's invariants must all compile, so
that the speed-up cannot silently vanish.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import fhirpathpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxverify.fhir import fastpath
from rxverify.fhir.fastpath import Unsupported
from rxverify.fhir.generate import resources
from rxverify.fhir.package import Package
from rxverify.fhir.validator import Constraint, Node, validator_for
from rxverify.safety.registry import Registry

from .conftest import FHIR_DIR, resource_profiles

EXAMPLES = sorted((FHIR_DIR / "examples").glob("*.json"))
PROFILES = resource_profiles()
DECLINED = object()  # the fast path gave no answer (not compiled, or Unsupported for this input)


def _invariants() -> list[tuple[str, bool, str]]:
    """(key, on_root, expression) of every constraint in the package's StructureDefinitions."""
    found = []
    for path in sorted(FHIR_DIR.rglob("StructureDefinition*.json")):
        definition = json.loads(path.read_text(encoding="utf-8"))
        for part in ("snapshot", "differential"):
            for element in (definition.get(part) or {}).get("element", []):
                on_root = "." not in str(element.get("path", ""))
                for raw in element.get("constraint", []) or []:
                    entry = (str(raw.get("key")), on_root, str(raw.get("expression") or ""))
                    if entry[2] and entry not in found:
                        found.append(entry)
    return found


INVARIANTS = _invariants()
# Common invariants of the base specification (FHIR R4) inside the subset, on the element they constrain.
BASE_INVARIANTS = {
    "dom-2": "contained.contained.empty()",
    "dom-4": "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()",
    "dom-5": "contained.meta.security.empty()",
    "ext-1": "extension.exists() != value.exists()",
    "qty-3": "code.empty() or system.exists()",
    "rat-1": "(numerator.empty() xor denominator.empty()).not()",
    "rng-2": "low.empty() or high.empty() or (low <= high)",
    "tim-4": "duration.exists() implies duration >= 0",
    "tim-9": "offset.empty() or (when.exists() and ((when in ('C' | 'CM' | 'CD' | 'CV')).not()))",
    "bdl-1": "total.empty() or (type = 'searchset') or (type = 'history')",
    "mdd-1": "whenHandedOver.empty() or whenPrepared.empty() or whenHandedOver >= whenPrepared",
    "ppc-1": "policy.exists() or policyRule.exists()",
    "ppc-2": "patient.exists() or scope.coding.where(system='something' and code='patient-privacy').exists().not()",
}
EXPRESSIONS = sorted({e for _, _, e in INVARIANTS} | set(BASE_INVARIANTS.values()))


def _text(expression: str, on_root: bool) -> str:
    """The expression as the validator compiles it: an element's invariant runs on {"x": value}."""
    return expression if on_root else f"x.select({expression})"


@cache
def _reference(text: str) -> Any:
    return fhirpathpy.compile(text)


@cache
def _fast(text: str) -> Any:
    return fastpath.compile(text)


def _agree(text: str, resource: Any) -> object:
    """The fast path's result (or DECLINED), asserted equal to fhirpathpy's in value and type."""
    fast = _fast(text)
    if fast is None:
        return DECLINED
    try:
        got = fast(resource)
    except Unsupported:
        return DECLINED
    try:
        expected = _reference(text)(resource, {"resource": resource})
    except Exception as exc:  # fhirpathpy raises bare Exceptions
        raise AssertionError(f"{text!r}: fhirpathpy fails ({exc}), the fast path answered {got!r}") from exc
    assert repr(got) == repr(expected), (text, resource)
    return got


# ---- construct by construct

EMPTY: list[Any] = []
ANSWERED = [
    # navigation, arrays flattened, objects holding only `extension` left out of results, floats as Decimals
    ("a.b", {"a": [{"b": [1, 2]}, {"b": 3}, {"c": 4}]}),
    ("a", {"a": [{"extension": [{"url": "u"}]}, {"id": "x"}]}),
    ("a.select(b)", {"a": [{"b": 1.5}, {"b": "s"}]}),
    ("a.b", {"a": "text"}),
    ("a", {"a": []}),
    ("x.select($this)", {"x": {"y": 0.25}}),
    # literals
    ("'a\\'b'", {}),
    ("-1.5", {}),
    ("true", {}),
    ("{}", {}),
    # equality and empty propagation
    ("a = 'x'", {"a": "x"}),
    ("a = 'x'", {}),
    ("{} = 'a'", {}),
    ("a != 'x'", {"a": "y"}),
    ("a != {}", {"a": "y"}),
    ("a = 1", {"a": 1.0}),
    ("a = true", {"a": True}),
    # ordering: strings (dates too, without a model), numbers with floats as Decimals
    ("a >= b", {"a": "2024-06-01", "b": "2024-01-01T10:00:00Z"}),
    ("a < b", {"a": "2024", "b": "2024-01"}),
    ("a < 2.5", {"a": 2}),
    ("a <= 1", {"a": 1.0}),
    ("a > 0.1", {"a": 0.1}),
    ("a > 1", {}),
    # three-valued logic
    *[
        (f"a {op} b", {k: v for k, v in (("a", a), ("b", b)) if v is not None})
        for op in ("and", "or", "xor", "implies")
        for a in (True, False, None)
        for b in (True, False, None)
    ],
    ("a.not()", {"a": True}),
    ("a.not()", {"a": "s"}),
    ("a.not()", {}),
    ("a.not()", {"a": [True, False]}),
    # membership and union
    ("a in ('x' | 'y')", {"a": "y"}),
    ("a in ('x' | 'y')", {}),
    ("a in {}", {"a": "x"}),
    ("('x' | 'y') contains a", {"a": "z"}),
    ("a contains 'x'", {}),
    ("a | b", {"a": [1, 2], "b": [2, 3]}),
    ("(a | b).count()", {"a": [{"x": 1}], "b": [{"x": 1}, {"x": 2}]}),
    ("(1 | 1.0 | true).count()", {}),
    # arithmetic
    ("a mod 1 = 0", {"a": 3.0}),
    ("a mod 0", {"a": 3}),
    ("a / 2", {"a": 3}),
    ("a * 2", {"a": 1.5}),
    ("a + 'b'", {"a": "a"}),
    ("a - 1", {"a": 1.25}),
    ("a + 1", {}),
    ("x.select($this >= 1 and $this <= 99 and ($this mod 1) = 0)", {"x": 5.0}),
    ("x.select($this >= 1 and $this <= 99 and ($this mod 1) = 0)", {"x": 5.5}),
    # functions
    ("a.exists()", {"a": []}),
    ("a.exists(b = 2)", {"a": [{"b": 1}, {"b": 2}]}),
    ("a.empty()", {"a": {}}),
    ("a.count()", {"a": [1, 2, 3]}),
    ("a.where(b = 1).count()", {"a": [{"b": 1}, {"b": 2}, {"b": 1.0}]}),
    ("a.where(b).count()", {"a": [{"b": ""}, {"c": 1}]}),
    ("a.where('').count()", {"a": [1, 2]}),
    ("a.all(b > 1)", {"a": [{"b": 2}, {"b": 3.5}]}),
    ("a.all(b)", {"a": [{"b": 1}, {"b": True}, {"b": "x"}]}),
    ("a.all(b)", {}),
    ("a.first()", {"a": [{"b": 1.5}, 2]}),
    ("a.first()", {}),
    (
        "contained.ofType(Practitioner).where(id = 'p').count()",
        {"contained": [{"resourceType": "Practitioner", "id": "p"}, {"resourceType": "Patient", "id": "p"}]},
    ),
    ("a.ofType(Practitioner)", {"a": ["Practitioner", {"resourceType": "Practitioner"}]}),
    ("a.toString()", {"a": 1.5}),
    ("a.toString()", {"a": True}),
    ("a.toString()", {"a": [1, 2]}),
    ("a.toString().length()", {"a": "2024-01-01"}),
    ("a.length()", {}),
    ("a.matches('^x.$')", {"a": "x\n"}),
    ("a.matches('')", {"a": 1}),
    ("a.startsWith('x')", {"a": ""}),
    ("a.startsWith('x')", {"a": "xa"}),
    ("a.startsWith('x')", {}),
]


@pytest.mark.parametrize(("expression", "resource"), ANSWERED, ids=lambda v: v if isinstance(v, str) else "")
def test_construct_agrees_with_fhirpathpy(expression: str, resource: Any) -> None:
    """Each construct of the subset: the fast path answers, and as fhirpathpy does."""
    assert _agree(expression, resource) is not DECLINED


def test_empty_propagation_and_three_valued_logic() -> None:
    """The answers themselves, as FHIRPath defines them, for the cases the validator relies on."""
    assert _agree("{} = 'a'", {}) == EMPTY
    assert _agree("a implies b", {"b": False}) == EMPTY
    assert _agree("a implies b", {"a": False}) == [True]
    assert _agree("a and b", {"a": False}) == [False]
    assert _agree("a and b", {"a": True}) == EMPTY
    assert _agree("a or b", {"b": True}) == [True]
    assert _agree("a or b", {"b": False}) == EMPTY


NOT_ANSWERED = [
    ("a.hasValue()", {"a": 1}),  # fhirpathpy does not implement hasValue()
    ("$this.a", {"a": 1}),  # fhirpathpy has no $this outside functions and operators
    ("%resource.a", {"a": 1}),
    ("a.substring(1) = 'bc'", {"a": "abc"}),
    ("a[0]", {"a": [1, 2]}),
    ("a is string", {"a": "x"}),
    ("Patient.a", {"resourceType": "Patient", "a": 1}),
    ("extension.ofType(Extension)", {"extension": [{"url": "u"}]}),  # typed by its path in fhirpathpy
    ("a = 0.1", {"a": 0.1}),  # fhirpathpy compares the float with a Decimal: false
    ("a = 1.5", {"a": 1.5}),  # true: float and Decimal only sometimes agree
    ("a = 1", {"a": True}),
    ("a = 'x'", {"a": "x", "_a": {"extension": [{"url": "u"}]}}),  # fhirpathpy adds the extension
    ("a = b", {"a": [1, 2], "b": [1, 3]}),  # fhirpathpy compares only the first items
    ("a and b", {"a": "x", "b": False}),  # fhirpathpy fails
    ("a.length", {"a": "abc"}),
    ("a.b", {"a": [None, {"b": 1}]}),
    ("a | 'x'", {"a": "y"}),
    ("a.toString()", {"a": {"b": 1}}),
    ("a < b", {"a": True, "b": False}),
]


@pytest.mark.parametrize(("expression", "resource"), NOT_ANSWERED, ids=lambda v: v if isinstance(v, str) else "")
def test_outside_the_subset_falls_back_to_fhirpathpy(expression: str, resource: Any) -> None:
    """Outside the subset the fast path declines, and a constraint still holds exactly when fhirpathpy says so."""
    assert _agree(expression, resource) is DECLINED
    constraint = Constraint.build({"key": "t-1", "expression": expression}, on_root=True)
    try:
        expected: Any = fhirpathpy.compile(expression)(resource, {"resource": resource})
    except Exception as exc:  # fhirpathpy raises bare Exceptions
        with pytest.raises(type(exc)):
            constraint.holds(resource, resource)
        return
    if not expected:
        holds = True
    elif all(isinstance(r, bool) for r in expected):
        holds = all(expected)
    else:
        holds = len(expected) == 1
    assert constraint.holds(resource, resource) is holds


# ---- the package's invariants


def _nodes(node: Node) -> Iterator[Node]:
    yield node
    for child in [*node.children.values(), *node.slices.values()]:
        yield from _nodes(child)


def test_every_package_invariant_runs_on_the_fast_path(package: Package) -> None:
    """Every FHIRPath invariant of the package's profiles (all NLL ones) is compiled by the fast path."""
    validator = validator_for(package)
    compiled = []
    for definition in package.of_type("StructureDefinition"):
        for node in _nodes(validator.plan(definition["url"]).root):
            for constraint in node.constraints:
                if constraint.regex is None:
                    assert constraint._fast is not None, (constraint.key, constraint.expression)
                    compiled.append(constraint.key)
    assert {"nll-1", "nll-2", "nll-3", "nll-4", "nll-5", "nll-8"} <= set(compiled)
    for key, on_root, expression in INVARIANTS:  # also those the validator runs as a regex
        assert _fast(_text(expression, on_root)) is not None, key


@pytest.mark.parametrize("key", sorted(BASE_INVARIANTS))
def test_common_base_invariants_compile(key: str) -> None:
    """The common base-specification invariants inside the subset compile, on the root and on an element."""
    assert _fast(BASE_INVARIANTS[key]) is not None
    assert _fast(_text(BASE_INVARIANTS[key], on_root=False)) is not None


@pytest.fixture
def evaluations(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Constraint, Any]]:
    """Every (constraint, value) the validator and the generator evaluate while the test runs."""
    seen: list[tuple[Constraint, Any]] = []
    holds = Constraint.holds

    def recording(self: Constraint, value: Any, resource: Any) -> bool:
        seen.append((self, value))
        return holds(self, value, resource)

    monkeypatch.setattr(Constraint, "holds", recording)
    return seen


def test_fast_path_answers_on_the_examples(package: Package, evaluations: list[tuple[Constraint, Any]]) -> None:
    """contracts/fhir/examples: every FHIRPath invariant the validator evaluates is answered by the fast path."""
    for path in EXAMPLES:
        validator_for(package).validate(json.loads(path.read_text(encoding="utf-8")))
    fast = [(c, v) for c, v in evaluations if c._fast is not None and not (c.regex and isinstance(v, str))]
    assert {"nll-1", "nll-2", "nll-3", "nll-4", "nll-5", "nll-8"} <= {c.key for c, _ in fast}
    for constraint, value in fast:
        subject = value if constraint.on_root else {"x": value}
        assert _agree(_text(constraint.expression, constraint.on_root), subject) is not DECLINED, constraint.key


STATUSES = ["active", "cancelled", "completed", "stopped", "on-hold", "entered-in-error", "draft", "unknown"]
DATES = ["2024-01-01", "2024-12-31", "2024-06", "2024", "2024-06-15T10:00:00+01:00", "2024-06-15T10:00:00Z", ""]
SYSTEMS = [
    "http://electronichealth.se/identifier/personnummer",
    "http://electronichealth.se/identifier/samordningsnummer",
    "urn:oid:1.2.752.29.4.19",
    "http://example.org",
]
ODD_VALUES = [None, [], {}, "", 0, -1, 1.5, 100, True, "#prescriber", ["x", "y"], {"extension": [{"url": "u"}]}]
_DATE = re.compile(r"^\d{4}(-\d\d){0,2}(T.*)?$")


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) of a JSON document but `meta` (the validator fails on a malformed one)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    out = []
    for key, item in items:
        if key == "meta":
            continue
        out.append((value, key))
        out.extend(_slots(item))
    return out


@st.composite
def _mutated(draw: st.DrawFn, instance: dict[str, Any]) -> dict[str, Any]:
    """`instance` with up to three changes that tend to break invariants or leave the subset."""
    doc = copy.deepcopy(instance)
    for _ in range(draw(st.integers(0, 3))):
        change = draw(st.sampled_from(["drop", "status", "date", "swap", "system", "odd", "shadow"]))
        slots = _slots(doc)
        if change == "status":
            slots = [(c, k) for c, k in slots if k == "status"]
        elif change == "date":
            slots = [(c, k) for c, k in slots if isinstance(c[k], str) and _DATE.match(c[k])]
        elif change == "swap":
            slots = [(c, k) for c, k in slots if isinstance(c[k], dict) and {"start", "end"} <= c[k].keys()]
        elif change == "system":
            slots = [(c, k) for c, k in slots if k == "system"]
        elif change == "shadow":
            slots = [(c, k) for c, k in slots if isinstance(c, dict) and not isinstance(c[k], dict | list)]
        if not slots:
            continue
        container, key = draw(st.sampled_from(slots))
        if change == "drop":
            del container[key]
        elif change == "status":
            container[key] = draw(st.sampled_from(STATUSES))
        elif change == "date":
            container[key] = draw(st.sampled_from(DATES))
        elif change == "swap":
            period = container[key]
            period["start"], period["end"] = period["end"], period["start"]
        elif change == "system":
            container[key] = draw(st.sampled_from(SYSTEMS))
        elif change == "odd":
            container[key] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
        else:
            container["_" + key] = {"extension": [{"url": "http://example.org"}]}
    return doc


@pytest.mark.parametrize("profile", PROFILES)
def test_invariants_agree_on_generated_and_mutated_resources(
    profile: str, package: Package, registry: Registry, evaluations: list[tuple[Constraint, Any]]
) -> None:
    """Property: on generated and mutated resources, every invariant of the package and the common base
    ones, on the resource and on values in it, evaluates as in fhirpathpy or is declined."""
    validator = validator_for(package)

    @settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(resources(profile, package, registry).flatmap(_mutated), st.data())
    def check(document: dict[str, Any], data: st.DataObject) -> None:
        evaluations.clear()
        validator.validate(document)
        for constraint, value in evaluations:
            _agree(_text(constraint.expression, constraint.on_root), value if constraint.on_root else {"x": value})
        slots = _slots(document)
        values = [c[k] for c, k in data.draw(st.lists(st.sampled_from(slots), max_size=3))] if slots else []
        for expression in EXPRESSIONS:
            _agree(expression, document)
            for value in values:
                _agree(_text(expression, on_root=False), {"x": value})

    check()


# ---- random expressions of the subset on random JSON

_KEYS = ["a", "b", "c", "id", "status"]
_LITERALS = ["'x'", "'y'", "''", "'2024-01-01'", "0", "1", "2", "1.5", "0.1", "true", "false", "{}", "-1"]
_JSON = st.recursive(
    st.sampled_from(["x", "y", "", "2024-01-01", "2024-01-01T10:00:00Z", 0, 1, 2, 1.5, 0.1, True, False]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from([*_KEYS, "resourceType", "extension"]), inner, max_size=3)
    ),
    max_leaves=8,
)
_PATHS = st.builds(
    lambda head, tail: ".".join([head, *tail]), st.sampled_from([*_KEYS, "$this"]), st.lists(st.sampled_from(_KEYS))
)
_FUNCTIONS = [
    "exists()", "empty()", "count()", "not()", "first()", "toString()", "length()", "matches('^x')",
    "startsWith('2024')", "ofType(Practitioner)",
]  # fmt: skip
_OPS = [
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "and",
    "or",
    "xor",
    "implies",
    "in",
    "contains",
    "|",
    "+",
    "-",
    "*",
    "/",
    "mod",
]


def _compose(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    call = st.sampled_from(_FUNCTIONS) | st.builds(
        lambda name, arg: f"{name}({arg})", st.sampled_from(["where", "select", "all", "exists"]), inner
    )
    return st.builds(lambda a, op, b: f"({a} {op} {b})", inner, st.sampled_from(_OPS), inner) | st.builds(
        lambda base, fn: f"{base}.{fn}", _PATHS | inner.map(lambda e: f"({e})"), call
    )


_EXPRESSIONS = st.recursive(_PATHS | st.sampled_from(_LITERALS), _compose, max_leaves=6)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(_EXPRESSIONS, _JSON, st.booleans())
def test_random_expressions_agree_with_fhirpathpy(expression: str, value: Any, on_root: bool) -> None:
    """Property: any expression built from the subset, on any small JSON, evaluates as in fhirpathpy or is declined."""
    _agree(_text(expression, on_root), value if on_root else {"x": value})
