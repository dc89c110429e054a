"""JSON Schema of XSD declarations: the shape the old interface's XML has once decoded to XML local names.

An element's content becomes the schema of the dict the legacy client decodes it to (and renders
it from): a complex type an object of its children by local name, `required` from minOccurs, a
child that may repeat an array (minItems/maxItems from its occurrences), a simple type the JSON
type of its built-in base with every facet of every restriction step: enumeration, pattern
(translated, rxverify.contracts.patterns), length, minLength, maxLength, min/max
inclusive/exclusive, totalDigits, fractionDigits, and the value range of the built-in (xs:int).
Named types become components (`<prefix>.<TypeName>`, the prefix of their namespace); identity
slots (PersonnummerType, or an element named personnummer) carry `format: personid`, so the
suite's format strategy draws registered test patients for them.

Refused with a ValueError naming the type (no construct is silently approximated): attributes,
mixed content, choices other than one-of-elements, repeated groups, xs:list and xs:union.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from xmlschema.validators import XsdAnyElement, XsdElement, XsdGroup

from rxverify.contracts import patterns
from rxverify.contracts.xsdmodel import XSD, builtin, repeats

IDENTITY_TYPES = frozenset({"PersonnummerType"})  # simple types whose values are personal identity numbers
IDENTITY_ELEMENTS = frozenset({"personnummer"})
IDENTITY_FORMAT = "personid"  # the format rxverify.contract registers: registered test patients
_INTEGERS = {
    "integer": (None, None), "nonNegativeInteger": (0, None), "positiveInteger": (1, None),
    "nonPositiveInteger": (None, 0), "negativeInteger": (None, -1),
    "long": (-(2**63), 2**63 - 1), "int": (-(2**31), 2**31 - 1), "short": (-(2**15), 2**15 - 1), "byte": (-128, 127),
    "unsignedLong": (0, 2**64 - 1), "unsignedInt": (0, 2**32 - 1), "unsignedShort": (0, 2**16 - 1),
    "unsignedByte": (0, 255),
}  # fmt: skip
_NUMBERS = frozenset({"decimal", "float", "double"})
_FORMATS = {"date": "date", "dateTime": "date-time", "time": "time"}


def _local(name: str | None) -> str:
    return (name or "").rpartition("}")[2]


def _namespace(name: str | None) -> str:
    return (name or "").partition("}")[0].lstrip("{") if (name or "").startswith("{") else ""


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    as_decimal = Decimal(str(value))
    return int(as_decimal) if as_decimal == as_decimal.to_integral_value() else float(as_decimal)


class SchemaWriter:
    """Writes JSON Schemas of XSD declarations, collecting the named types as components."""

    def __init__(self, prefix_of: Callable[[str], str], ref_base: str = "#/components/schemas/") -> None:
        self.prefix_of = prefix_of  # namespace -> component prefix
        self.ref_base = ref_base
        self.components: dict[str, dict[str, Any]] = {}
        self._pending: set[str] = set()

    # ---- types ----

    def _component(self, xsd_type: Any, write: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        name = f"{self.prefix_of(_namespace(xsd_type.name))}.{_local(xsd_type.name)}"
        if name not in self.components and name not in self._pending:
            self._pending.add(name)
            self.components[name] = write()
            self._pending.discard(name)
        return {"$ref": self.ref_base + name}

    def type_schema(self, xsd_type: Any) -> dict[str, Any]:
        """The schema of a type: a reference to its component when named, else inline."""
        if xsd_type.is_simple():
            if xsd_type.name and not str(xsd_type.name).startswith(f"{{{XSD}}}"):
                return self._component(xsd_type, lambda: self.simple(xsd_type))
            return self.simple(xsd_type)
        if xsd_type.name:
            return self._component(xsd_type, lambda: self.complex(xsd_type))
        return self.complex(xsd_type)

    def simple(self, xsd_type: Any) -> dict[str, Any]:
        """A simple type: its built-in's JSON type and every facet of every restriction step."""
        what = f"type {xsd_type.name or '(anonymous)'}"
        if getattr(xsd_type, "is_list", lambda: False)() or getattr(xsd_type, "is_union", lambda: False)():
            raise ValueError(f"{what}: xs:list and xs:union have no JSON Schema rendering here")
        base = builtin(xsd_type)
        kind = _local(base.name) if base is not None else "string"
        schema: dict[str, Any]
        if kind == "boolean":
            schema = {"type": "boolean"}
        elif kind in _INTEGERS:
            schema = {"type": "integer"}
            low, high = _INTEGERS[kind]
            if low is not None:
                schema["minimum"] = low
            if high is not None:
                schema["maximum"] = high
        elif kind in _NUMBERS:
            schema = {"type": "number"}
        else:
            schema = {"type": "string"}
            if kind in _FORMATS:
                schema["format"] = _FORMATS[kind]
        found_patterns: list[str] = []
        enumeration: list[Any] | None = None
        step = xsd_type
        while step is not None and step is not base:
            facets = getattr(step, "facets", None) or {}
            self._bounds(schema, facets, kind)
            if f"{{{XSD}}}pattern" in facets:
                regexps = step.patterns.regexps
                try:
                    translated = [patterns.to_ecma(r) for r in regexps]
                except ValueError as exc:
                    raise ValueError(f"{what}: {exc}") from None
                # several patterns of one step: any of them; patterns of several steps: every step's
                found_patterns.append(translated[0] if len(translated) == 1 else
                                      "|".join(f"(?:{p})" for p in translated))
            if enumeration is None and getattr(step, "enumeration", None):
                enumeration = [self._typed(v, schema["type"]) for v in step.enumeration]
            step = getattr(step, "base_type", None)
        if enumeration is not None:
            schema["enum"] = enumeration
        if schema["type"] == "string":
            if not found_patterns and "enum" not in schema and "format" not in schema:
                found_patterns.append(patterns.ANY_XML_TEXT)
            if len(found_patterns) == 1:
                schema["pattern"] = found_patterns[0]
            elif found_patterns:
                schema["allOf"] = [{"pattern": p} for p in found_patterns]
        if _local(xsd_type.name) in IDENTITY_TYPES:
            schema["format"] = IDENTITY_FORMAT
        return schema

    @staticmethod
    def _typed(value: Any, json_type: str) -> Any:
        if json_type == "integer":
            return int(value)
        if json_type == "number":
            return _number(value)
        if json_type == "boolean":
            return value in (True, "true", "1")
        return str(value)

    @staticmethod
    def _bounds(schema: dict[str, Any], facets: Mapping[str, Any], kind: str) -> None:
        def value(local: str) -> Any:
            facet = facets.get(f"{{{XSD}}}{local}")
            return getattr(facet, "value", None) if facet is not None else None

        def tighten(key: str, new: Any, pick: Callable[[Any, Any], Any]) -> None:
            if new is not None:
                schema[key] = pick(schema[key], new) if key in schema else new

        if value("length") is not None:
            tighten("minLength", value("length"), max)
            tighten("maxLength", value("length"), min)
        tighten("minLength", value("minLength"), max)
        tighten("maxLength", value("maxLength"), min)
        for local, key, pick in (("minInclusive", "minimum", max), ("maxInclusive", "maximum", min),
                                 ("minExclusive", "exclusiveMinimum", max), ("maxExclusive", "exclusiveMaximum", min)):
            found = value(local)
            if found is not None:
                tighten(key, _number(found), pick)
        digits = value("totalDigits")
        if digits is not None and kind in _INTEGERS:
            tighten("maximum", 10 ** int(digits) - 1, min)
            tighten("minimum", -(10 ** int(digits) - 1), max)
        fraction = value("fractionDigits")
        if fraction is not None and kind in _NUMBERS:
            schema["multipleOf"] = 1 if int(fraction) == 0 else float(Decimal(1).scaleb(-int(fraction)))

    def complex(self, xsd_type: Any) -> dict[str, Any]:
        """A complex type: an object of its children by local name."""
        what = f"type {xsd_type.name or '(anonymous)'}"
        if getattr(xsd_type, "attributes", None):
            raise ValueError(f"{what}: attributes have no rendering in the decoded shape")
        if getattr(xsd_type, "mixed", False):
            raise ValueError(f"{what}: mixed content has no rendering in the decoded shape")
        content = xsd_type.content
        if not isinstance(content, XsdGroup):
            return self.simple(content)  # simple content without attributes: its value
        schema: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
        required: list[str] = []
        self._group(content, schema, required, what, top=True)
        if required:
            schema["required"] = required
        return schema

    def _group(self, group: XsdGroup, schema: dict[str, Any], required: list[str], what: str, top: bool) -> None:
        if not top and (group.min_occurs, group.max_occurs) != (1, 1) and group.model != "choice":
            raise ValueError(f"{what}: a repeated or optional {group.model} has no rendering in the decoded shape")
        if group.model == "choice":
            branches = [b for b in group if isinstance(b, XsdElement)]
            if (group.min_occurs, group.max_occurs) != (1, 1) or len(branches) != len(list(group)):
                raise ValueError(f"{what}: only a choice of one element among several is rendered")
            for branch in branches:
                schema["properties"][branch.local_name] = self._occurs(branch)
            schema.setdefault("allOf", []).append({"oneOf": [{"required": [b.local_name]} for b in branches]})
            return
        for item in group:
            if isinstance(item, XsdGroup):
                self._group(item, schema, required, what, top=False)
            elif isinstance(item, XsdAnyElement):
                # xs:any: elements the schema does not name, by their local names (XML names only)
                schema["additionalProperties"] = True
                schema["propertyNames"] = {"pattern": "^[A-Za-z_][A-Za-z0-9_.-]*$"}
            elif isinstance(item, XsdElement):
                schema["properties"][item.local_name] = self._occurs(item)
                if item.min_occurs >= 1:
                    required.append(item.local_name)

    def _occurs(self, decl: XsdElement) -> dict[str, Any]:
        one = self.element(decl)
        if not repeats(decl):
            return one
        array: dict[str, Any] = {"type": "array", "items": one}
        if decl.min_occurs:
            array["minItems"] = decl.min_occurs
        if decl.max_occurs is not None:
            array["maxItems"] = decl.max_occurs
        return array

    def element(self, decl: XsdElement) -> dict[str, Any]:
        """The schema of one occurrence of an element's content."""
        schema = self.type_schema(decl.type)
        identity = decl.local_name in IDENTITY_ELEMENTS and decl.type.is_simple()
        if identity and _local(decl.type.name) not in IDENTITY_TYPES:
            schema = {**self.simple(decl.type), "format": IDENTITY_FORMAT}
        return schema
