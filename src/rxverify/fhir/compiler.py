"""FHIRPath compiled once to Python closures over fhirpathpy's own engine: fhirpathpy's results, faster.

Why: fhirpathpy interprets its parse tree on every call. Each node is dispatched through a
table; each function call and operator first merges the whole function table (about 120
entries) with the user's, and re-reads its argument kinds; every literal is decoded again; a
`where()` evaluates its criterion twice for each item it keeps. With the base invariants on every
element (ext-1 on each extension, ref-1 on each reference, dom-3 over every descendant) that
made validation about 50 times slower than parsing.

What: each parse-tree node becomes a closure doing what fhirpathpy's evaluator for that node type
does (fhirpathpy/engine/evaluators and engine/__init__: the same `$this` and `$index` updates,
the same argument checks, the same nullable rules), calling the same fhirpathpy functions
(member navigation with the R4 model, every function and operator of its table, ResourceNode,
TypeInfo). What depends only on the expression is settled once: identifiers, literals, function
entries, argument kinds, type specifiers. Within one evaluation, `descendants()` and
`children()` of the same items are computed once (pure functions of their input).

The contract is identity, not the specification: the closure returns what
`fhirpathpy` returns for the same expression, focus, variables, model and function table, or
raises where it raises (tests/unit/fhir/test_fastpath.py checks both on every invariant of the
base and of the package, on generated, mutated and random input). Node types outside the list
below make `compile` return None; the caller then interprets with fhirpathpy.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from decimal import Decimal
from functools import reduce
from typing import Any, cast

from fhirpathpy.engine import check_boolean_param, check_integer_param, check_number_param, check_string_param
from fhirpathpy.engine import util as fp_util
from fhirpathpy.engine.evaluators import create_reduce_member_invocation, string_literal
from fhirpathpy.engine.invocations import invocation_registry
from fhirpathpy.engine.invocations import navigation as fp_navigation
from fhirpathpy.engine.nodes import FP_DateTime, FP_Quantity, FP_Time, ResourceNode, TypeInfo
from fhirpathpy.parser import parse

Ctx = dict[str, Any]
Fn = Callable[[Ctx, Any], list[Any]]
_PARAM_CHECKS = {
    "Integer": check_integer_param,
    "Number": check_number_param,
    "Boolean": check_boolean_param,
    "String": check_string_param,
}
_ALIASES = {
    "MembershipExpression": {"contains": "containsOp", "in": "inOp"},
    "TypeExpression": {"is": "isOp", "as": "asOp"},
}
_OPERATOR_TYPES = frozenset(
    {
        "InequalityExpression", "AdditiveExpression", "MultiplicativeExpression", "EqualityExpression",
        "OrExpression", "ImpliesExpression", "AndExpression", "XorExpression",
    }
)  # fmt: skip
_MEMO_FUNCTIONS = {"descendants": fp_navigation.descendants, "children": fp_navigation.children}


class Decline(Exception):
    """The expression has a node type this compiler does not translate."""


def compile(expression: str, model: dict[str, Any], functions: dict[str, dict[str, Any]]) -> Fn | None:
    """A closure `(ctx, dataRoot) -> result` equal to fhirpathpy's do_eval of the expression, or None."""
    try:
        tree = parse(expression)
    except Exception:  # fhirpathpy raises bare Exceptions for syntax errors: the interpreter reports them
        return None
    table: dict[str, dict[str, Any]] = {**cast(dict[str, dict[str, Any]], invocation_registry), **functions}
    try:
        return _Compiler(model, table).node(tree["children"][0])
    except Decline:
        return None


class _Compiler:
    def __init__(self, model: dict[str, Any], table: dict[str, dict[str, Any]]) -> None:
        self.model = model
        self.table = table

    def node(self, node: dict[str, Any]) -> Fn:
        kind = node["type"]
        children = node.get("children") or []
        if kind in ("TermExpression", "InvocationTerm", "ParenthesizedTerm"):
            return self.node(children[0])
        if kind == "InvocationExpression":
            steps = [self.node(c) for c in children]

            def invocation_expression(ctx: Ctx, parent: Any) -> list[Any]:
                acc = parent
                for step in steps:
                    acc = step(ctx, acc)
                return list(acc)

            return invocation_expression
        if kind == "LiteralTerm":
            term = children[0] if children else None
            if term:
                return self.node(term)
            text = node["text"]
            return lambda ctx, parent: [text]
        if kind in ("StringLiteral", "NumberLiteral", "BooleanLiteral", "NullLiteral"):
            return self._literal(kind, node)
        if kind in ("QuantityLiteral", "DateTimeLiteral", "TimeLiteral"):
            return self._fresh_literal(kind, node)
        if kind == "ExternalConstantTerm":
            return self._external(node)
        if kind == "ThisInvocation":
            return lambda ctx, parent: fp_util.arraify(ctx["$this"])
        if kind == "IndexInvocation":
            return lambda ctx, parent: fp_util.arraify(ctx["$index"])
        if kind == "TotalInvocation":
            return lambda ctx, parent: fp_util.arraify(ctx["$total"])
        if kind == "MemberInvocation":
            return self._member(node)
        if kind == "FunctionInvocation":
            return self._function(node)
        if kind == "PolarityExpression":
            return self._polarity(node)
        if kind == "IndexerExpression":
            return self._indexer(node)
        if kind == "UnionExpression":
            return self._infix("|", children)
        if kind in _ALIASES:
            op = node["terminalNodeText"][0]
            if op not in _ALIASES[kind]:
                raise Decline(f"{kind} {op}")
            return self._infix(_ALIASES[kind][op], children)
        if kind in _OPERATOR_TYPES:
            return self._infix(node["terminalNodeText"][0], children)
        raise Decline(kind)

    # ---- terms

    def _literal(self, kind: str, node: dict[str, Any]) -> Fn:
        if kind == "StringLiteral":
            value: Any = string_literal(None, None, node)[0]
        elif kind == "NumberLiteral":
            number = Decimal(node["text"])
            value = int(number) if number == int(number) else number
        elif kind == "BooleanLiteral":
            value = node["text"] == "true"
        else:
            return lambda ctx, parent: []
        return lambda ctx, parent: [value]

    def _fresh_literal(self, kind: str, node: dict[str, Any]) -> Fn:
        if kind == "DateTimeLiteral":
            text = node["text"][1:]
            return lambda ctx, parent: [FP_DateTime(text)]
        if kind == "TimeLiteral":
            text = node["text"][2:]
            return lambda ctx, parent: [FP_Time(text)]
        value_node = node["children"][0]
        value = Decimal(value_node["terminalNodeText"][0])
        unit_node = value_node["children"][0]
        if len(unit_node["terminalNodeText"]) > 0:
            unit = unit_node["terminalNodeText"][0]
        elif "children" in unit_node and len(unit_node["children"]) > 0:
            unit = unit_node["children"][0]["terminalNodeText"][0]
        else:
            unit = None
        return lambda ctx, parent: [FP_Quantity(value, unit)]

    def _external(self, node: dict[str, Any]) -> Fn:
        identifier = node["children"][0]["children"][0]
        name = re.sub(r"(^\"|\"$)", "", identifier["text"]).replace("`", "")

        def external(ctx: Ctx, parent: Any) -> list[Any]:
            if name not in ctx["vars"]:
                raise ValueError(f"Attempting to access an undefined environment variable: {name}")
            value = ctx["vars"][name]
            if value is None:
                return []
            return value if isinstance(value, list) else [value]

        return external

    def _member(self, node: dict[str, Any]) -> Fn:
        key = re.sub(r"(^\"|\"$)", "", node["children"][0]["text"]).replace("`", "")
        reducer = create_reduce_member_invocation(self.model, key)
        capitalized = fp_util.is_capitalized(key)

        def member(ctx: Ctx, parent: Any) -> list[Any]:
            if isinstance(parent, list):
                if capitalized:
                    try:
                        return [ResourceNode.create_node(x, key) for x in parent if x["resourceType"] == key]
                    except TypeError:
                        pass
                return list(reduce(reducer, parent, []))
            return []

        return member

    def _polarity(self, node: dict[str, Any]) -> Fn:
        sign = node["terminalNodeText"][0]
        inner = self.node(node["children"][0])

        def polarity(ctx: Ctx, parent: Any) -> list[Any]:
            result = inner(ctx, parent)
            if len(result) != 1:
                raise Exception("Unary " + sign + " can only be applied to an individual number.")
            if not fp_util.is_number(result[0]):
                raise Exception("Unary " + sign + " can only be applied to a number.")
            if sign == "-":
                result[0] = -result[0]
            return result

        return polarity

    def _indexer(self, node: dict[str, Any]) -> Fn:
        collection, index = self.node(node["children"][0]), self.node(node["children"][1])

        def indexer(ctx: Ctx, parent: Any) -> list[Any]:
            coll = collection(ctx, parent)
            idx = index(ctx, parent)
            if fp_util.is_empty(idx):
                return []
            number = int(idx[0])
            if coll is not None and fp_util.is_some(number) and len(coll) > number and number >= 0:
                return [coll[number]]
            return []

        return indexer

    # ---- parameters, functions, operators

    def _param(self, kind: Any, raw: dict[str, Any]) -> Callable[[Ctx, Any], Any]:
        """What fhirpathpy's make_param gives for one argument kind, as (ctx, parentData) -> value."""
        if kind == "Expr":
            inner = self.node(raw)

            def expression(ctx: Ctx, parent: Any) -> Callable[[Any], list[Any]]:
                def func(data: Any) -> list[Any]:
                    ctx["$this"] = fp_util.arraify(data)
                    return inner(ctx, ctx["$this"])

                return func

            return expression
        if kind == "AnyAtRoot":
            inner = self.node(raw)

            def any_at_root(ctx: Ctx, parent: Any) -> list[Any]:
                ctx["$this"] = ctx["$this"] if "$this" in ctx else ctx["dataRoot"]
                return inner(ctx, ctx["$this"])

            return any_at_root
        if kind == "Identifier":
            if raw["type"] != "TermExpression":
                raise Decline("identifier argument that is not a term")
            text = raw["text"]
            return lambda ctx, parent: text
        if kind == "TypeSpecifier":
            identifiers = raw["text"].replace("`", "").split(".")
            if len(identifiers) not in (1, 2):
                raise Decline(f"type specifier {raw['text']}")
            namespace, name = (None, identifiers[0]) if len(identifiers) == 1 else identifiers
            return lambda ctx, parent: TypeInfo(name=name, namespace=namespace)
        inner = self.node(raw)
        many = isinstance(kind, list)
        wanted = kind[0] if many else kind
        check = _PARAM_CHECKS.get(wanted)
        if wanted != "Any" and check is None:
            raise Decline(f"argument kind {wanted}")

        def value(ctx: Ctx, parent: Any) -> Any:
            ctx["$this"] = parent
            result = inner(ctx, parent)
            if wanted == "Any" and not many:
                return result
            if many and len(result) == 0:
                return []
            if wanted == "Any":
                return result
            if len(result) > 1:
                raise Exception("Unexpected collection" + json.dumps(result) + "; expected singleton of type " + wanted)
            if len(result) == 0:
                return []
            assert check is not None
            return check(result[0])

        return value

    def _function(self, node: dict[str, Any]) -> Fn:
        functn = node["children"][0]["children"]
        name = re.sub(r"(^\"|\"$)", "", functn[0]["text"])
        raw_params = functn[1]["children"] if len(functn) > 1 and "children" in functn[1] else None
        entry = self.table.get(name)
        if entry is None:
            raise Decline(f"function {name}")  # fhirpathpy raises "Not implemented" at run time
        fn = entry["fn"]
        nullable_input = "nullable_input" in entry
        if name in _MEMO_FUNCTIONS and entry["fn"] is _MEMO_FUNCTIONS[name] and not raw_params:
            return self._memoized(name, fn)
        if name in ("where", "select", "exists", "all") and raw_params and len(raw_params) == 1:
            return self._macro(name, raw_params[0], nullable_input)
        if "variadic" in entry:
            kind = entry["variadic"]
            params = [self._param(kind, p) for p in raw_params or []]

            def variadic(ctx: Ctx, parent: Any) -> list[Any]:
                if nullable_input and fp_util.is_nullable(parent):
                    return []
                this = ctx["$this"] if "$this" in ctx else ctx["dataRoot"]
                values = [p(ctx, this) for p in params]
                return fp_util.arraify(fn(ctx, fp_util.arraify(parent), *values))

            return variadic
        if "arity" not in entry:
            if raw_params:
                raise Decline(f"{name} with arguments")  # fhirpathpy raises "expects no params"

            def plain(ctx: Ctx, parent: Any) -> list[Any]:
                if nullable_input and fp_util.is_nullable(parent):
                    return []
                return fp_util.arraify(fn(ctx, fp_util.arraify(parent)))

            return plain
        count = len(raw_params) if isinstance(raw_params, list) else 0
        if fn.__name__ == "trace_fn" and raw_params is not None:
            raw_params, count = raw_params[:1], min(count, 1)
        if count not in entry["arity"]:
            raise Decline(f"{name}/{count}")
        kinds = entry["arity"][count]
        params = [self._param(kinds[i], raw_params[i]) for i in range(count)] if raw_params else []
        nullable = "nullable" in entry

        def function(ctx: Ctx, parent: Any) -> list[Any]:
            if nullable_input and fp_util.is_nullable(parent):
                return []
            this = ctx["$this"] if "$this" in ctx else ctx["dataRoot"]
            values = [p(ctx, this) for p in params]
            if nullable and any(fp_util.is_nullable(x) for x in [ctx, parent, *values]):
                return []
            return fp_util.arraify(fn(ctx, parent, *values))

        return function

    def _memoized(self, name: str, fn: Callable[[Ctx, list[Any]], list[Any]]) -> Fn:
        def memoized(ctx: Ctx, parent: Any) -> list[Any]:
            coll = fp_util.arraify(parent)
            key = (name, tuple((id(fp_util.get_data(x)), getattr(x, "path", None)) for x in coll))
            memo = ctx.setdefault("_memo", {})
            found = memo.get(key)
            if found is None:
                found = memo[key] = (fp_util.arraify(fn(ctx, coll)), coll)  # the input kept alive for its ids
            # copies: a node object may not appear in two results where fhirpathpy would make two
            return [copy.copy(n) if isinstance(n, ResourceNode) else n for n in found[0]]

        return memoized

    def _macro(self, name: str, raw: dict[str, Any], nullable_input: bool) -> Fn:
        """where/select/exists/all with one criterion, each item's criterion evaluated once."""
        criterion = self._param("Expr", raw)

        def macro(ctx: Ctx, parent: Any) -> list[Any]:
            if nullable_input and fp_util.is_nullable(parent):
                return []
            this = ctx["$this"] if "$this" in ctx else ctx["dataRoot"]
            expr = criterion(ctx, this)
            data = fp_util.arraify(parent)
            if name == "all":
                for i, item in enumerate(data):
                    ctx["$index"] = i
                    if not fp_util.is_true(expr(item)):
                        return [False]
                return [True]
            if not isinstance(data, list):
                return [False] if name == "exists" else []
            out = []
            for i, item in enumerate(data):
                ctx["$index"] = i
                result = expr(item)
                if name == "select":
                    out.append(result)
                elif len(result) > 0 and result[0]:
                    out.append(item)
            flat = fp_util.flatten(out)
            if name == "exists":
                return [not fp_util.is_empty(flat)]
            return fp_util.arraify(flat)

        return macro

    def _infix(self, op: str, raw: list[dict[str, Any]]) -> Fn:
        entry = self.table.get(op)
        if entry is None or "fn" not in entry or len(raw) != 2:
            raise Decline(f"operator {op}")
        kinds = entry["arity"][2]
        left, right = self._param(kinds[0], raw[0]), self._param(kinds[1], raw[1])
        fn, nullable = entry["fn"], "nullable" in entry

        def infix(ctx: Ctx, parent: Any) -> list[Any]:
            a = left(ctx, parent)
            b = right(ctx, parent)
            if nullable and (fp_util.is_nullable(a) or fp_util.is_nullable(b)):
                return []
            return fp_util.arraify(fn(ctx, a, b))

        return infix
