"""Compile a common subset of FHIRPath to Python closures: a fast path in front of fhirpathpy.

Why: fhirpathpy interprets its parse tree on every call (about 0.25 ms per invariant), which was
half of the cost of validating a profiled resource. The profile invariants use a small subset of
FHIRPath; compiled once to closures over plain JSON values they cost a few microseconds.

The contract is agreement, not the specification: whenever a closure returns, its result equals
`fhirpathpy.compile(expression)(resource, context)` with no model, which is how the validator
calls fhirpathpy. So this mirrors fhirpathpy on JSON without a model, where it differs from the
specification too: dates and dateTimes are strings (compared as strings), floats become Decimals
in ordering, arithmetic and results (equality compares them as they are), `toString()` of a
boolean is 'True', `where()` keeps an element when its criterion's first value is truthy,
`ofType()` knows resources only by their resourceType.
What this does not mirror is declined: `compile` returns None for an expression outside the
subset (the caller keeps fhirpathpy), and a closure raises `Unsupported` for an input whose
evaluation would need more (the caller asks fhirpathpy for that input): collections where a
singleton is expected, values of different types compared or combined, primitive extensions
(`_element`), nulls or nested arrays in the JSON, and any Python error on the way.

The subset: member navigation (arrays flattened), `$this`, string/number/boolean literals and
`{}`, `= != < <= > >=`, `and or xor implies`, `in contains`, `|`, `+ - * / mod`, parentheses,
a signed number, and exists() (with and without criteria), empty(), count(), not(),
where(), select(), all(), first(), ofType(ResourceType), toString(), length(), matches('re')
and startsWith('s'). Not hasValue(): fhirpathpy does not implement it, so any answer would
disagree with it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fhirpathpy.engine.evaluators import number_literal, string_literal
from fhirpathpy.engine.util import uniq
from fhirpathpy.models import models as fhirpath_models
from fhirpathpy.parser import parse

_Ast = dict[str, Any]
_Fn = Callable[[list[Any]], list[Any]]


class Unsupported(Exception):
    """The input needs behaviour the fast path does not mirror: evaluate it with fhirpathpy."""


class _Decline(Exception):
    """The expression is outside the subset."""


class _Kind(enum.Enum):
    """What fhirpathpy holds for the values of a collection; only ofType() and `|` depend on it."""

    RAW = "raw"  # plain values: the evaluated resource itself, literals, results of operators and functions
    NODE = "node"  # ResourceNodes with a path: everything reached by member navigation
    PATHLESS = "pathless"  # ResourceNodes without a path: the union of nodes


@dataclass(frozen=True)
class _Compiled:
    fn: _Fn
    kind: _Kind


_NUMBERS = (int, float, Decimal)
_SCALARS = (str, int, float, bool, Decimal)
_JSON_VALUES = (dict, str, int, float, bool)
R4_TYPES: dict[str, Any] = fhirpath_models["r4"]
_PARENT_TYPES = frozenset(R4_TYPES["type2Parent"].values())


def compile(
    expression: str, base: str | None = None, model: dict[str, Any] | None = None
) -> Callable[[Any], list[Any]] | None:
    """A closure evaluating `expression` on a focus as fhirpathpy would, or None outside the subset.

    With `base` and `model` (the focus typed as fhirpathpy's model sees it), it evaluates as
    fhirpathpy with the model does: a choice element (`value` on an Extension) is navigated as the
    model's type list says (the first of valueBase64Binary, valueBoolean, ... present), and only
    tested for existence; None when a temporal or Quantity value would be compared (the model
    makes them FP_DateTime / FP_Quantity first), but for a comparison of two elements both typed as
    dates or dateTimes, answered where the two are of one precision (`_temporal_operator`), and a
    date's toString() (its text); see `_model_free`.
    """
    try:
        tree = parse(expression)
    except Exception:  # fhirpathpy raises bare Exceptions for syntax errors
        return None
    try:
        _CHOICES.clear()
        _TEMPORAL_OPS.clear()
        if model is not None:
            _model_free(tree["children"][0], base, model)
        body = _expression(tree["children"][0], _Kind.RAW, this_ok=False).fn
    except _Decline:
        return None
    finally:
        _CHOICES.clear()
        _TEMPORAL_OPS.clear()

    def evaluate(resource: Any) -> list[Any]:
        focus = resource if isinstance(resource, list) else [] if resource is None else [resource]
        try:
            return _export(body(focus))
        except Unsupported:
            raise
        except Exception as exc:  # fhirpathpy may fail here or answer differently: it decides
            raise Unsupported(f"{type(exc).__name__}: {exc}") from exc

    return evaluate


# Types fhirpathpy's model turns into FP_DateTime / FP_Time / FP_Quantity before comparing them.
_MODEL_TYPED = frozenset(
    {
        "date", "dateTime", "instant", "time", "System.Date", "System.DateTime", "System.Time",
        "Quantity", "SimpleQuantity", "MoneyQuantity", "Age", "Count", "Distance", "Duration", "Money",
    }
)  # fmt: skip


_CHOICE = "<choice>"  # the model path of a choice element's value: its type is the data's
_CHOICES: dict[int, tuple[str, ...]] = {}  # while compiling: member node -> the choice's types, in the model's order
_EXISTENCE = frozenset({"exists", "empty", "count"})  # what may follow a choice element here
# while compiling: comparison nodes both of whose operands are elements the model types as dates or dateTimes
_TEMPORAL_OPS: set[int] = set()
_TEMPORAL_TYPES = frozenset({"date", "dateTime", "instant"})
_COMPARISONS = frozenset({"=", "!=", "<", "<=", ">", ">="})


def _child_path(node: _Ast, path: str | None, key: str, model: dict[str, Any]) -> str | None:
    """The model path of `key` below `path`, as fhirpathpy's member navigation computes it."""
    if path == _CHOICE:
        raise _Decline("a step below a choice element")
    if path is None:
        return None
    child = "Extension" if key == "extension" else f"{path}.{key}"
    child = model["pathsDefinedElsewhere"].get(child, child)
    choices = model["choiceTypePaths"].get(child)
    if choices:
        _CHOICES[id(node)] = tuple(choices)
        return _CHOICE
    return str(model["path2Type"].get(child, child))


def _comparable(path: str | None) -> None:
    if path == _CHOICE or path in _MODEL_TYPED:
        raise _Decline(f"an operand typed {path}: the model compares it otherwise")


def _model_free(node: _Ast, path: str | None, model: dict[str, Any]) -> str | None:
    """The model path of the node's result; _Decline where the model would change the result."""
    node_type = node["type"]
    children = node.get("children") or []
    if node_type in ("TermExpression", "InvocationTerm", "ParenthesizedTerm"):
        return _model_free(children[0], path, model)
    if node_type == "InvocationExpression":
        head = _model_free(children[0], path, model)
        return _model_free(children[1], head, model)
    if node_type == "MemberInvocation":
        return _child_path(node, path, _identifier(children[0]).replace("`", ""), model)
    if node_type == "ThisInvocation":
        return path
    if node_type == "FunctionInvocation":
        functn = children[0]["children"]
        name = _identifier(functn[0])
        params = functn[1]["children"] if len(functn) > 1 else []
        if path == _CHOICE and name not in _EXISTENCE:
            raise _Decline(f"{name}() of a choice element")
        if path in _MODEL_TYPED and name not in _EXISTENCE and not (name == "toString" and path in _TEMPORAL_TYPES):
            raise _Decline(f"{name}() of a {path}")  # a date's toString() is its text, with the model as without
        results = [_model_free(p, path, model) for p in params]
        if name in ("where", "first", "ofType"):
            return path
        if name == "select" and results:
            return results[0]
        return None
    operands = [_model_free(child, path, model) for child in children]  # evaluated on the same focus
    op = (node.get("terminalNodeText") or [""])[0]
    if op in _COMPARISONS and len(operands) == 2 and all(o in _TEMPORAL_TYPES for o in operands):
        _TEMPORAL_OPS.add(id(node))  # compared as the model compares them where both are of one precision
        return None
    for operand in operands:
        _comparable(operand)
    return None


def _expression(node: _Ast, kind: _Kind, this_ok: bool) -> _Compiled:
    """Compile `node` for a focus of `kind`; `this_ok`: whether fhirpathpy has set $this by then."""
    node_type = node["type"]
    children = node.get("children") or []
    if node_type == "TermExpression":
        return _term(children[0], kind, this_ok)
    if node_type == "InvocationExpression":
        head = _expression(children[0], kind, this_ok)
        tail = _invocation(children[1], head.kind)
        first, then = head.fn, tail.fn
        return _Compiled(lambda focus: then(first(focus)), tail.kind)
    if node_type == "PolarityExpression":
        value = _literal(children[0])
        if len(value) != 1 or type(value[0]) not in (int, Decimal):
            raise _Decline("unary sign of a non-number")
        signed = -value[0] if node["terminalNodeText"][0] == "-" else value[0]
        return _Compiled(lambda focus: [signed], _Kind.RAW)
    op = (node.get("terminalNodeText") or [""])[0]
    if node_type in _OPERATOR_TYPES and op in _OPERATORS:
        # fhirpathpy evaluates both operands on the operator's focus, with $this set to it
        left = _expression(children[0], kind, this_ok=True)
        right = _expression(children[1], kind, this_ok=True)
        if id(node) in _TEMPORAL_OPS:
            return _temporal_operator(op, left, right)
        return _operator(op, left, right)
    raise _Decline(f"{node_type} {op}".strip())


def _term(node: _Ast, kind: _Kind, this_ok: bool) -> _Compiled:
    node_type = node["type"]
    if node_type == "InvocationTerm":
        inner = node["children"][0]
        if inner["type"] == "ThisInvocation":
            if not this_ok:  # fhirpathpy fails on $this outside operators and functions
                raise _Decline("$this at the top level")
            # fhirpathpy sets $this to the focus of each operand and of each where/select/all/exists item;
            # the $this such a function leaves behind would be read only by arguments, here always literals
            return _Compiled(lambda focus: focus, kind)
        return _invocation(inner, kind)
    if node_type == "LiteralTerm":
        value = _literal(node)
        return _Compiled(lambda focus: list(value), _Kind.RAW)
    if node_type == "ParenthesizedTerm":
        return _expression(node["children"][0], kind, this_ok)
    raise _Decline(node_type)


def _literal(node: _Ast) -> list[Any]:
    """The value of a literal term, decoded by fhirpathpy's own evaluators."""
    if node["type"] == "TermExpression":
        node = node["children"][0]
    if node["type"] == "LiteralTerm":
        node = node["children"][0]
    node_type = node["type"]
    if node_type == "StringLiteral":
        return list(string_literal(None, None, node))
    if node_type == "NumberLiteral":
        return list(number_literal(None, None, node))
    if node_type == "BooleanLiteral":
        return [node["text"] == "true"]
    if node_type == "NullLiteral":
        return []
    raise _Decline(node_type)


def _identifier(node: _Ast) -> str:
    return re.sub(r"(^\"|\"$)", "", node["text"])


def _invocation(node: _Ast, kind: _Kind) -> _Compiled:
    node_type = node["type"]
    if node_type == "MemberInvocation":
        key = _identifier(node["children"][0]).replace("`", "")
        # fhirpathpy reads a capitalised name as a resource type filter, and fails on some inputs
        if not key or key[0] == key[0].upper():
            raise _Decline(f"member {key}")
        choices = _CHOICES.get(id(node))
        return _Compiled(_choice(key, choices) if choices else _member(key), _Kind.NODE)
    if node_type == "FunctionInvocation":
        functn = node["children"][0]["children"]
        name = _identifier(functn[0])
        params = functn[1]["children"] if len(functn) > 1 else []
        return _function(name, params, kind)
    raise _Decline(node_type)


def _member(key: str) -> _Fn:
    shadow = "_" + key

    def member(focus: list[Any]) -> list[Any]:
        out: list[Any] = []
        for item in focus:
            if type(item) is dict:
                if shadow in item:  # fhirpathpy adds the primitive's extension to the collection
                    raise Unsupported(f"primitive extension {shadow}")
                value = item.get(key)
                if value is None:
                    continue
                if isinstance(value, list):
                    for element in value:
                        if element is None or isinstance(element, list):
                            raise Unsupported(f"null or nested array in {key}")
                    out.extend(value)
                else:
                    out.append(value)
            elif key == "length" or not isinstance(item, _SCALARS):
                raise Unsupported(f"member {key} of {type(item).__name__}")
        return out

    return member


def _choice(key: str, types: tuple[str, ...]) -> _Fn:
    """A choice element as fhirpathpy's model navigates it: the first of key+Type (model order) present."""
    names = [(key + t, "_" + key + t) for t in types]

    def choice(focus: list[Any]) -> list[Any]:
        out: list[Any] = []
        for item in focus:
            if type(item) is not dict:
                if not isinstance(item, _SCALARS):
                    raise Unsupported(f"member {key} of {type(item).__name__}")
                continue
            for name, shadow in names:
                if shadow in item:
                    raise Unsupported(f"primitive extension {shadow}")
                value = item.get(name)
                if value is None:
                    continue
                if isinstance(value, list):
                    raise Unsupported(f"a choice element {name} given as an array")
                out.append(value)
                break
        return out

    return choice


# ---- functions


def _function(name: str, params: list[_Ast], kind: _Kind) -> _Compiled:
    arity = len(params)
    if name in ("exists", "where", "all", "select") and arity == 1:
        criteria = _expression(params[0], kind, this_ok=True)
        return _macro(name, criteria, kind)
    if arity == 0 and name in _SIMPLE:
        fn, keeps_kind = _SIMPLE[name]
        return _Compiled(fn, kind if keeps_kind else _Kind.RAW)
    if arity == 1 and name == "ofType":
        return _Compiled(_of_type(params[0], kind), kind)
    if arity == 1 and name in ("matches", "startsWith"):
        argument = _literal(params[0])
        if len(argument) != 1 or type(argument[0]) is not str:
            raise _Decline(f"{name} of a non-string")
        make = _matches if name == "matches" else _starts_with
        return _Compiled(make(argument[0]), _Kind.RAW)
    raise _Decline(f"{name}/{arity}")


def _macro(name: str, criteria: _Compiled, kind: _Kind) -> _Compiled:
    check = criteria.fn
    if name == "select":

        def select(focus: list[Any]) -> list[Any]:
            out: list[Any] = []
            for item in focus:
                out.extend(check([item]))
            return out

        return _Compiled(select, criteria.kind)
    if name == "all":

        def all_(focus: list[Any]) -> list[Any]:
            for item in focus:
                result = check([item])
                if not (len(result) == 1 and result[0] == True):  # noqa: E712 -- fhirpathpy's is_true
                    return [False]
            return [True]

        return _Compiled(all_, _Kind.RAW)
    # fhirpathpy keeps an item when the criterion's first value is truthy: any node, or a truthy plain value
    raw = criteria.kind is _Kind.RAW

    def where(focus: list[Any]) -> list[Any]:
        out = []
        for item in focus:
            result = check([item])
            if result and (not raw or result[0]):
                out.append(item)
        return out

    if name == "where":
        return _Compiled(where, kind)
    return _Compiled(lambda focus: [bool(where(focus))], _Kind.RAW)


def _first(focus: list[Any]) -> list[Any]:
    return focus[:1]


def _not(focus: list[Any]) -> list[Any]:
    if len(focus) != 1:
        return []
    value = focus[0]
    return [not value] if type(value) is bool else [False]


def _to_string(focus: list[Any]) -> list[Any]:
    if len(focus) != 1:
        return []
    value = _data(focus[0])
    if not isinstance(value, _SCALARS):
        raise Unsupported(f"toString() of {type(value).__name__}")
    return [str(value)]


def _string(focus: list[Any]) -> str:
    if len(focus) != 1 or type(focus[0]) is not str:
        raise Unsupported("a string function on a non-string or a collection")
    value: str = focus[0]
    return value


def _length(focus: list[Any]) -> list[Any]:
    return [len(_string(focus))] if focus else []


_SIMPLE: dict[str, tuple[_Fn, bool]] = {  # name -> (function, whether the result keeps the input's kind)
    "exists": (lambda focus: [bool(focus)], False),
    "empty": (lambda focus: [not focus], False),
    "count": (lambda focus: [len(focus)], False),
    "not": (_not, False),
    "first": (_first, True),
    "toString": (_to_string, False),
    "length": (_length, False),
}


def _matches(pattern: str) -> _Fn:
    if not pattern:
        return lambda focus: []
    try:
        regex = re.compile(pattern, re.DOTALL)
    except re.error as exc:
        raise _Decline(f"bad regular expression {pattern!r}") from exc
    return lambda focus: [regex.search(_string(focus)) is not None] if focus else []


def _starts_with(prefix: str) -> _Fn:
    def starts_with(focus: list[Any]) -> list[Any]:
        if not focus:
            return []
        text = _string(focus)
        return [bool(text) and text.startswith(prefix)]

    return starts_with


def _concrete_resource_type(name: str) -> bool:
    """A resource type no other type derives from (fhirpathpy's R4 model): ofType() of it is resourceType equality."""
    parents = R4_TYPES["type2Parent"]
    if name in _PARENT_TYPES:
        return False
    seen = name
    while seen in parents:
        seen = parents[seen]
        if seen == "Resource":
            return True
    return False


def _of_type(param: _Ast, kind: _Kind) -> _Fn:
    name = param.get("text") or ""
    # Only a concrete resource type: whether fhirpathpy has its model set (TypeInfo.model, a global any earlier
    # call with a model sets) or not, an item is of that type exactly when it is a resource of that resourceType.
    # A supertype (Resource, DomainResource) or a data type is typed by the model: declined.
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name) or kind is _Kind.PATHLESS or not _concrete_resource_type(name):
        raise _Decline(f"ofType({name})")

    def of_type(focus: list[Any]) -> list[Any]:
        out = []
        for item in focus:
            if isinstance(item, dict):
                if "resourceType" in item and type(item["resourceType"]) is not str:
                    # fhirpathpy fails reading a resourceType that is not a string (null, a number, an object)
                    kind_of = type(item["resourceType"]).__name__
                    raise Unsupported(f"ofType() of an item whose resourceType is {kind_of}")
                if item.get("resourceType") == name:
                    out.append(item)
            elif not isinstance(item, _JSON_VALUES):
                raise Unsupported(f"ofType() of {type(item).__name__}")
        return out

    return of_type


# ---- operators


def _data(value: Any) -> Any:
    """A value as fhirpathpy's get_data gives it to functions and comparisons: floats as Decimals."""
    return Decimal(str(value)) if isinstance(value, float) else value


def _single(items: list[Any], op: str) -> Any:
    if len(items) != 1:
        raise Unsupported(f"a collection of {len(items)} for {op}")
    return items[0]


def _equal(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if (ta is tb and ta in (str, bool)) or (ta in _NUMBERS and tb in _NUMBERS and {ta, tb} != {float, Decimal}):
        return bool(a == b)
    raise Unsupported(f"equality of {ta.__name__} and {tb.__name__}")


def _eq(left: list[Any], right: list[Any]) -> list[Any]:
    if not left or not right:
        return []
    return [_equal(_single(left, "="), _single(right, "="))]


def _ne(left: list[Any], right: list[Any]) -> list[Any]:
    if not left or not right:
        return []
    return [not _equal(_single(left, "!="), _single(right, "!="))]


def _ordered(op: str, compare: Callable[[Any, Any], bool]) -> Callable[[list[Any], list[Any]], list[Any]]:
    def ordered(left: list[Any], right: list[Any]) -> list[Any]:
        if not left or not right:
            return []
        a, b = _data(_single(left, op)), _data(_single(right, op))
        ta, tb = type(a), type(b)
        if not ((ta is str and tb is str) or (ta in (int, Decimal) and tb in (int, Decimal))):
            raise Unsupported(f"{ta.__name__} {op} {tb.__name__}")
        return [compare(a, b)]

    return ordered


_DATE = re.compile(r"\d{4}(-\d\d(-\d\d)?)?")
_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda x, y: bool(x == y),
    "!=": lambda x, y: bool(x != y),
    "<": lambda x, y: bool(x < y),
    "<=": lambda x, y: bool(x <= y),
    ">": lambda x, y: bool(x > y),
    ">=": lambda x, y: bool(x >= y),
}


def compare_of_one_precision(op: str, x: str, y: str) -> bool | None:
    """`x op y` for two date or dateTime texts of one precision, as FHIRPath compares them; None if not so.

    Of one precision, FHIRPath's comparison is the comparison of the instants (fhirpath.html#comparison):
    dates of one precision compare as their text; dateTimes to the second with a zone as the moments they
    name, zones respected.
    """
    if _DATE.fullmatch(x) and _DATE.fullmatch(y) and len(x) == len(y):
        return _COMPARE[op](x, y)
    if _DATETIME.fullmatch(x) and _DATETIME.fullmatch(y):
        try:
            return _COMPARE[op](datetime.fromisoformat(x), datetime.fromisoformat(y))
        except ValueError:
            return None
    return None


def _temporal_operator(op: str, left: _Compiled, right: _Compiled) -> _Compiled:
    """`op` between two elements the model types as dates or dateTimes, as fhirpathpy with the model compares
    them where both are of one precision (fhirpath.html#comparison): dates of one precision as their text,
    dateTimes to the second with a zone as the moments they name. Any other pair: Unsupported."""
    first, second = left.fn, right.fn

    def temporal(focus: list[Any]) -> list[Any]:
        a, b = first(focus), second(focus)
        if not a or not b:
            return []
        x, y = _single(a, op), _single(b, op)
        if type(x) is not str or type(y) is not str:
            raise Unsupported(f"{type(x).__name__} {op} {type(y).__name__} typed as dates")
        found = compare_of_one_precision(op, x, y)
        if found is None:
            raise Unsupported(f"{x!r} {op} {y!r}: not of one precision")
        return [found]

    return _Compiled(temporal, _Kind.RAW)


def _in(left: list[Any], right: list[Any]) -> list[Any]:
    if not left:
        return []
    if not right:
        return [False]
    value = _single(left, "in")
    return [any(_equal(item, value) for item in right)]


def _contains(left: list[Any], right: list[Any]) -> list[Any]:
    return _in(right, left) if right else []  # `a contains b` is `b in a`, but empty on an empty right


def _truth(items: list[Any], op: str) -> bool | None:
    """An operand of a boolean operator: None for empty; fhirpathpy fails on anything but one boolean."""
    if not items:
        return None
    value = _single(items, op)
    if type(value) is not bool:
        raise Unsupported(f"{type(value).__name__} operand of {op}")
    return value


def _and(left: list[Any], right: list[Any]) -> list[Any]:
    a, b = _truth(left, "and"), _truth(right, "and")
    if a is False or b is False:
        return [False]
    return [] if a is None or b is None else [True]


def _or(left: list[Any], right: list[Any]) -> list[Any]:
    a, b = _truth(left, "or"), _truth(right, "or")
    if a is True or b is True:
        return [True]
    return [] if a is None or b is None else [False]


def _xor(left: list[Any], right: list[Any]) -> list[Any]:
    a, b = _truth(left, "xor"), _truth(right, "xor")
    return [] if a is None or b is None else [a != b]


def _implies(left: list[Any], right: list[Any]) -> list[Any]:
    a, b = _truth(left, "implies"), _truth(right, "implies")
    if a is False or b is True:
        return [True]
    return [] if a is None or b is None else [False]


def _arithmetic(op: str) -> Callable[[list[Any], list[Any]], list[Any]]:
    def arithmetic(left: list[Any], right: list[Any]) -> list[Any]:
        # fhirpathpy checks both operands of * / mod before it returns empty for an empty one
        if op in ("*", "/", "mod"):
            operands = [_data(_single(side, op)) if side else None for side in (left, right)]
            if any(value is not None and type(value) not in (int, Decimal) for value in operands):
                raise Unsupported(f"non-number operand of {op}")
            x, y = operands
            if x is None or y is None:
                return []
            if op != "*" and y == 0:
                return []
            return [x * y if op == "*" else x / y if op == "/" else x % y]
        if not left or not right:
            return []
        x, y = _data(_single(left, op)), _data(_single(right, op))
        if type(x) in (int, Decimal) and type(y) in (int, Decimal):
            return [x + y if op == "+" else x - y]
        if op == "+" and type(x) is str and type(y) is str:
            return [x + y]
        raise Unsupported(f"{type(x).__name__} {op} {type(y).__name__}")

    return arithmetic


_OPERATOR_TYPES = frozenset(
    {
        "EqualityExpression",
        "InequalityExpression",
        "MembershipExpression",
        "AndExpression",
        "OrExpression",
        "XorExpression",
        "ImpliesExpression",
        "AdditiveExpression",
        "MultiplicativeExpression",
        "UnionExpression",
    }
)
_OPERATORS: dict[str, Callable[[list[Any], list[Any]], list[Any]]] = {
    "=": _eq,
    "!=": _ne,
    "<": _ordered("<", lambda a, b: a < b),
    "<=": _ordered("<=", lambda a, b: a <= b),
    ">": _ordered(">", lambda a, b: a > b),
    ">=": _ordered(">=", lambda a, b: a >= b),
    "in": _in,
    "contains": _contains,
    "and": _and,
    "or": _or,
    "xor": _xor,
    "implies": _implies,
    "+": _arithmetic("+"),
    "-": _arithmetic("-"),
    "*": _arithmetic("*"),
    "/": _arithmetic("/"),
    "mod": _arithmetic("mod"),
    "|": lambda left, right: uniq(left + right),
}


def _operator(op: str, left: _Compiled, right: _Compiled) -> _Compiled:
    kind = _Kind.RAW
    if op == "|":
        # fhirpathpy de-duplicates plain values and nodes alike (by their JSON), nodes then lose their path;
        # a mix of both it de-duplicates differently
        if (left.kind is _Kind.RAW) != (right.kind is _Kind.RAW):
            raise _Decline("union of plain values and nodes")
        kind = _Kind.RAW if left.kind is _Kind.RAW else _Kind.PATHLESS
    apply, first, second = _OPERATORS[op], left.fn, right.fn
    return _Compiled(lambda focus: apply(first(focus), second(focus)), kind)


# ---- results


def _export(items: list[Any]) -> list[Any]:
    """The result as fhirpathpy returns it: floats as Decimals, objects holding only `extension` left out."""
    out = []
    for item in items:
        value = _visit(item)
        if isinstance(value, dict) and list(value) == ["extension"]:
            continue
        out.append(value)
    return out


def _visit(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, list):
        return _export(value)
    if isinstance(value, dict):
        return {key: _visit(item) for key, item in value.items()}
    return value
