"""FHIRPath for the invariants: fhirpathpy with its FHIR R4 model, plus what FHIR adds to FHIRPath.

Each expression is parsed once and evaluated by fhirpathpy's engine with the R4 model, from a
node typed as the element the invariant constrains (so `value` finds `valueString` on an
Extension and `start <= end` compares dateTimes, not strings), with `%resource` and
`%rootResource` set as fhirpath.html says. fhirpathpy lacks the functions FHIR defines on top of
FHIRPath (R4 fhirpath.html#functions); these are added:

- `hasValue()`: "Returns true if the input collection contains a single value which is a FHIR
  primitive, and it has a primitive value (e.g. as opposed to not having a value and just
  having extensions)".
- `htmlChecks()`: "When invoked on an xhtml element, returns true if the rules around HTML usage
  are met" (narrative.py).
- `resolve()`: within the resource only: `#id` to a contained resource, `#` to the container.

`matches(regex)` is replaced too: fhirpathpy hands the pattern to Python's `re`, whose `$` also
matches before a final newline, so `matches('^[0-9]{7}$')` would accept "1234567\n"; here `$`
means the end of the string (`regex()` below), as FHIRPath's "single line mode" intends. And one
reading R4's own expressions need: `as(type)` applied to a collection. FHIRPath N1 lets
`as` take one item only, yet R4 writes `%resource.descendants().as(canonical)` (dom-3) and
similar, meaning "those of that type"; HL7's validator and other engines (e.g. Blaze, issue
samply/blaze#1568) read it as ofType(), and so does this module. `trace()` is silenced.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, cast

from fhirpathpy.engine import do_eval
from fhirpathpy.engine.invocations import invocation_registry
from fhirpathpy.engine.invocations.constants import constants
from fhirpathpy.engine.invocations.filtering import of_type_fn
from fhirpathpy.engine.nodes import FP_DateTime, FP_Time, FP_TimeBase, FP_Type, ResourceNode, TypeInfo
from fhirpathpy.engine.util import arraify, get_data
from fhirpathpy.models import models
from fhirpathpy.parser import parse

from rxverify.fhir import compiler, fastpath, narrative

R4_MODEL: dict[str, Any] = models["r4"]
UCUM = "http://unitsofmeasure.org"


class FhirPathError(Exception):
    """The expression cannot be parsed or evaluated."""


@lru_cache(maxsize=1024)
def regex(pattern: str) -> re.Pattern[str]:
    """A FHIRPath regex for Python: single-line mode, and `$` only at the very end of the string."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        out.append("\\Z" if char == "$" and not in_class else char)
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _matches(ctx: dict[str, Any], coll: list[Any], pattern: Any) -> list[bool]:
    if not pattern or not coll:
        return []
    if len(coll) != 1:
        raise FhirPathError(f"matches() on a collection of {len(coll)}")
    data = get_data(coll[0])
    if not isinstance(data, str):
        raise FhirPathError(f"matches() on a {type(data).__name__}")
    return [regex(str(pattern)).search(data) is not None]


def _has_value(ctx: dict[str, Any], coll: list[Any]) -> list[bool]:
    if len(coll) != 1:
        return [False]
    data = coll[0].data if isinstance(coll[0], ResourceNode) else coll[0]
    return [data is not None and not isinstance(data, dict | list)]


def _as(ctx: dict[str, Any], coll: list[Any], type_info: TypeInfo) -> list[Any]:
    TypeInfo.model = ctx.get("model")
    return list(of_type_fn(ctx, coll, type_info))


def _html_checks(ctx: dict[str, Any], coll: list[Any]) -> list[bool]:
    if len(coll) != 1:
        return []
    data = get_data(coll[0])
    return [isinstance(data, str) and not narrative.problems(data)]  # txt-1 and txt-2: see narrative.py


def _resolve(ctx: dict[str, Any], coll: list[Any]) -> list[Any]:
    root = ctx["vars"].get("rootResource")
    contained = root.get("contained", []) if isinstance(root, dict) else []
    out: list[Any] = []
    for item in coll:
        data = get_data(item)
        reference = data.get("reference") if isinstance(data, dict) else data
        if reference == "#" and isinstance(root, dict):
            out.append(ResourceNode.create_node(root))
        elif isinstance(reference, str) and reference.startswith("#"):
            for resource in contained if isinstance(contained, list) else []:
                if isinstance(resource, dict) and resource.get("id") == reference[1:]:
                    out.append(ResourceNode.create_node(resource))
    return out


_TEMPORAL = {"date": FP_DateTime, "dateTime": FP_DateTime, "instant": FP_DateTime, "time": FP_Time}
_QUANTITIES = frozenset({"Quantity", "SimpleQuantity", "MoneyQuantity", "Age", "Count", "Distance", "Duration"})


def _typed(items: list[Any]) -> list[Any]:
    """Temporal element values as fhirpathpy's date and time types (see the module docstring)."""
    out = []
    for item in items:
        if isinstance(item, ResourceNode) and isinstance(item.data, str) and item.path in _TEMPORAL:
            converted = FP_TimeBase.check_string(_TEMPORAL[item.path], item.data)
            out.append(converted if converted is not None else item)
        else:
            out.append(item)
    return out


def _quantities(a: list[Any], b: list[Any]) -> tuple[list[Any], list[Any]] | None:
    """Two Quantity elements made comparable (FP_Quantity, or the values of one unit); None: not comparable."""
    if len(a) != 1 or len(b) != 1:
        return a, b
    x, y = a[0], b[0]
    if not (isinstance(x, ResourceNode) and isinstance(y, ResourceNode)):
        return a, b
    if x.path not in _QUANTITIES or y.path not in _QUANTITIES:
        return a, b
    left, right = x.data, y.data
    if not (isinstance(left, dict) and isinstance(right, dict)):
        return a, b
    if "value" not in left or "value" not in right:
        return None
    if (left.get("system"), left.get("code")) == (right.get("system"), right.get("code")):
        return [left["value"]], [right["value"]]
    return None  # other units: fhirpathpy has no unit conversion to order them by, so not comparable


def _temporal_text(items: list[Any]) -> str | None:
    if len(items) != 1:
        return None
    item = items[0]
    if isinstance(item, ResourceNode) and item.path in _TEMPORAL and isinstance(item.data, str):
        return item.data
    return None


def _same_precision(op: str, a: list[Any], b: list[Any]) -> list[bool] | None:
    """Two element dates, or two element dateTimes to the second with a zone, compared directly (None: not so)."""
    x, y = _temporal_text(a), _temporal_text(b)
    if x is None or y is None:
        return None
    found = fastpath.compare_of_one_precision(op, x, y)
    return None if found is None else [found]


def _operator(name: str) -> dict[str, Any]:
    entry: dict[str, Any] = cast(dict[str, Any], invocation_registry[name])
    fn = entry["fn"]

    def typed(ctx: dict[str, Any], a: list[Any], b: list[Any]) -> Any:
        direct = _same_precision(name, a, b)
        if direct is not None:
            return direct
        pair = _quantities(a, b)
        if pair is None:
            return []
        return fn(ctx, _typed(pair[0]), _typed(pair[1]))

    return {**entry, "fn": typed}


_FHIR_FUNCTIONS: dict[str, dict[str, Any]] = {
    **{op: _operator(op) for op in ("=", "!=", "<", "<=", ">", ">=")},
    "hasValue": {"fn": _has_value},
    "htmlChecks": {"fn": _html_checks},
    "resolve": {"fn": _resolve},
    "as": {"fn": _as, "arity": {1: ["TypeSpecifier"]}},
    "matches": {"fn": _matches, "arity": {1: ["String"]}, "nullable_input": True},
}


def _quiet(label: str, value: Any) -> None:
    return None


def _plain(node: Any) -> Any:
    """A result as fhirpathpy returns it: nodes unwrapped, objects holding only `extension` left out."""
    data = get_data(node)
    if isinstance(node, list):
        out = []
        for item in data:
            value = _plain(item)
            if isinstance(value, dict) and list(value) == ["extension"]:
                continue
            out.append(value)
        return out
    if isinstance(data, dict) and not isinstance(data, FP_Type):
        return {key: _plain(value) for key, value in data.items()}
    return data


REF_1 = (
    "reference.startsWith('#').not() or "
    "(reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))"
)
PER_1 = "start.hasValue().not() or end.hasValue().not() or (start <= end)"


def _ref_1(focus: Any, resource: Any, root: Any) -> list[Any] | None:
    """ref-1 (Reference) on plain JSON, fhirpathpy's result; None where the engine must say (odd input)."""
    if not isinstance(focus, dict):
        return None
    reference = focus.get("reference")
    if reference is None:
        return []  # {}.startsWith() is {}; {} or ({} in ids) is {}
    if not isinstance(reference, str) or len(reference) < 2 or not isinstance(root, dict):
        return None
    if not reference.startswith("#"):
        return [True]
    contained = root.get("contained", [])
    if not isinstance(contained, list) or not all(isinstance(c, dict) for c in contained):
        return None
    ids = [c["id"] for c in contained if "id" in c]
    if not all(isinstance(i, str) for i in ids):
        return None
    return [reference[1:] in ids]  # false or (x in ids); `in` an empty collection is false


def _per_1(focus: Any, resource: Any, root: Any) -> list[Any] | None:
    """per-1 (Period) on plain JSON where both ends are of one precision (as `<=` compares them); else None."""
    if not isinstance(focus, dict):
        return None
    start, end = focus.get("start"), focus.get("end")
    if start is None or end is None:
        return [True]  # hasValue() is false for an absent value: its not() is true
    if not (isinstance(start, str) and isinstance(end, str)):
        return None
    found = fastpath.compare_of_one_precision("<=", start, end)
    return None if found is None else [found]


# Base invariants evaluated on the plain JSON, by their exact R4 expressions: the two the validator meets most
# (every Reference, every Period) and that the fast path cannot take (%rootResource; temporal comparison).
# Each returns fhirpathpy's result or None (then the engine evaluates); test_fastpath checks the agreement.
NATIVE_EXPRESSIONS: dict[str, Callable[[Any, Any, Any], list[Any] | None]] = {REF_1: _ref_1, PER_1: _per_1}


class Expression:
    """One FHIRPath expression on a focus typed as `base`, parsed once, evaluated by the fastest path that agrees.

    1. fastpath.py: a subset compiled to closures over plain JSON, where the model cannot change
       the result (a few microseconds); it declines an input it does not mirror;
    2. compiler.py: the whole expression compiled to closures over fhirpathpy's own engine;
    3. fhirpathpy's interpreter, for what the compiler does not translate.
    All three give fhirpathpy's result (tests/unit/fhir/test_fastpath.py).
    """

    def __init__(self, text: str, base: str | None = None, fast: bool = True) -> None:
        self.text = text
        self.base = base
        try:
            self._parsed = parse(text)
        except Exception as exc:  # fhirpathpy raises bare Exceptions for syntax errors
            raise FhirPathError(f"cannot parse {text!r}: {exc}") from None
        self._raw = fastpath.compile(text, base, R4_MODEL) if fast else None
        self._compiled = compiler.compile(text, R4_MODEL, _FHIR_FUNCTIONS) if fast else None
        self._native = NATIVE_EXPRESSIONS.get(text.strip()) if fast else None

    @property
    def is_compiled(self) -> bool:
        """Whether a compiled path evaluates it (else fhirpathpy's interpreter)."""
        return self._raw is not None or self._compiled is not None

    def evaluate(self, focus: Any, resource: Any, root: Any) -> list[Any]:
        """The result on `focus` (typed as `base`), %resource and %rootResource given."""
        if self._native is not None:
            found = self._native(focus, resource, root)
            if found is not None:
                return found
        if self._raw is not None:
            try:
                return self._raw(focus)
            except fastpath.Unsupported:
                pass
        return self.interpret(focus, resource, root)

    def interpret(self, focus: Any, resource: Any, root: Any) -> list[Any]:
        """The result through fhirpathpy's engine (compiled, else interpreted)."""
        base = self.base
        constants.reset()
        # A resource stays a plain dict: fhirpathpy types it from its resourceType all the same, and only on a
        # plain dict does a leading type name select it (`Appointment.status` in app-4, fhirpath.html#path-selection:
        # "the path may start with the type of the context"); on a ResourceNode that step finds nothing.
        if base and not (isinstance(focus, dict) and focus.get("resourceType") == base):
            node = ResourceNode.create_node(focus, base)
        else:
            node = focus
        data_root = arraify(node)
        ctx = {
            "dataRoot": data_root,
            "vars": {"context": node, "ucum": UCUM, "resource": resource, "rootResource": root},
            "model": R4_MODEL,
            "userInvocationTable": _FHIR_FUNCTIONS,
            "traceFn": _quiet,
        }
        try:
            if self._compiled is not None:
                result = self._compiled(ctx, data_root)
            else:
                result = do_eval(ctx, data_root, self._parsed["children"][0])
        except Exception as exc:  # fhirpathpy raises anything on inputs it cannot evaluate
            raise FhirPathError(f"{type(exc).__name__}: {exc}") from None
        plain = _plain(result)
        return plain if isinstance(plain, list) else [plain]


Evaluator = Callable[[Any, Any, Any], list[Any]]


def holds(result: list[Any]) -> bool:
    """An invariant's verdict from its result: empty or all true holds (one non-boolean value too)."""
    if not result:
        return True
    if all(isinstance(r, bool) for r in result):
        return all(result)
    return len(result) == 1
