"""The FHIR R4 primitive types in JSON: the JSON type each must have, its regex, its range, its dates.

json.html#primitive: "The FHIR types integer and decimal are represented as a JSON number, the
FHIR type boolean as a JSON boolean, and all other types are represented as a JSON string"
(unsignedInt and positiveInt are integers, so JSON numbers too). The regexes are the ones the
base definitions declare on each primitive's `value` (extension
`http://hl7.org/fhir/StructureDefinition/regex`). They are XML Schema regexes: implicitly
anchored at both ends (matched here with `fullmatch`, so a trailing newline is never accepted the
way `$` would accept it), and their `\\s`/`\\S` mean only space, tab, CR and LF (Python's also
cover other Unicode spaces), so they are translated before use.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from rxverify.fhir.base import BaseIndex

REGEX_EXTENSION = "http://hl7.org/fhir/StructureDefinition/regex"
# datatypes.html: integer "-2,147,483,648..2,147,483,647"; unsignedInt "0..2,147,483,647";
# positiveInt "1..2,147,483,647".
INT_RANGES = {
    "integer": (-(2**31), 2**31 - 1),
    "unsignedInt": (0, 2**31 - 1),
    "positiveInt": (1, 2**31 - 1),
}
NUMBER_TYPES = frozenset({"integer", "unsignedInt", "positiveInt", "decimal"})
# datatypes.html#string: "Strings SHALL NOT exceed 1MB (1024*1024 characters) in size".
STRING_MAX = 1024 * 1024
DATE_TYPES = frozenset({"date", "dateTime", "instant"})
_XSD_SPACE = " \\t\\n\\r"
_DATE_PREFIX = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def xsd_to_python(pattern: str) -> str:
    """An XML Schema regex as a Python regex (to be used with fullmatch)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escape = pattern[i : i + 2]
            out.append({"\\s": f"[{_XSD_SPACE}]", "\\S": f"[^{_XSD_SPACE}]"}.get(escape, escape))
            i += 2
        elif char == "[":
            end = i + 1
            while end < len(pattern) and pattern[end] != "]":
                end += 2 if pattern[end] == "\\" else 1
            body = pattern[i + 1 : end]
            negated = body.startswith("^")
            inner = body[1:] if negated else body
            if "\\S" in inner and not negated:  # [ \r\n\t\S]: these characters, or any but XSD whitespace
                rest = inner.replace("\\S", "")
                out.append(f"(?:[{rest}]|[^{_XSD_SPACE}])" if rest else f"[^{_XSD_SPACE}]")
            else:
                inner = inner.replace("\\s", _XSD_SPACE)
                out.append(f"[{'^' if negated else ''}{inner}]")
            i = end + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Primitive:
    """One primitive type: the JSON type it needs and its checks."""

    code: str
    json_kind: str  # "string" | "number" | "boolean"
    regex: re.Pattern[str] | None

    def problem(self, value: Any) -> tuple[str, str] | None:
        """(issue code, message) when `value` is not a valid JSON value of this type, else None."""
        kind = self.json_kind
        if kind == "boolean":
            return None if isinstance(value, bool) else _wrong("a JSON boolean", value)
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
                return _wrong("a JSON number", value)
            if self.code == "decimal":
                if isinstance(value, float) and not math.isfinite(value):
                    return "value", f"{value!r} is not a decimal"
                return None
            if not isinstance(value, int):
                return "value", f"{value!r} is not an {self.code}: a JSON number without a fraction or exponent"
            low, high = INT_RANGES[self.code]
            if not low <= value <= high:
                return "value", f"{value} is outside the range of {self.code} ({low}..{high})"
            return None
        if not isinstance(value, str):
            return _wrong("a JSON string", value)
        if self.code in ("string", "markdown") and len(value) > STRING_MAX:
            return "too-long", f"a string of {len(value)} characters exceeds 1MB ({STRING_MAX} characters)"
        if self.regex is not None and self.regex.fullmatch(value) is None:
            return "value", f"{_show(value)} is not a valid {self.code} (regex {self.regex.pattern})"
        if self.code in DATE_TYPES and not _real_date(value):
            return "value", f"{_show(value)} is not a valid {self.code}: no such day"
        return None


def _real_date(text: str) -> bool:
    found = _DATE_PREFIX.match(text)
    if not found:
        return True  # year or year-month only: the regex said enough
    try:
        date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    except ValueError:
        return False
    return True


def _wrong(expected: str, value: Any) -> tuple[str, str]:
    return "structure", f"expected {expected}, found {_json_type(value)} {_show(value)}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_type(value: Any) -> str:
    """The JSON type name of a parsed value (null, boolean, number, string, array, object)."""
    return _json_type(value)


def load_primitives(index: BaseIndex) -> dict[str, Primitive]:
    """Every primitive type of the base, with the regex its definition declares."""
    out: dict[str, Primitive] = {}
    parents: dict[str, str] = {}
    regexes: dict[str, str] = {}
    for definition in index.structures.values():
        if definition.get("kind") != "primitive-type":
            continue
        code = str(definition["type"])
        parents[code] = str(definition.get("baseDefinition", "")).rsplit("/", 1)[-1]
        for element in definition["snapshot"]["element"]:
            if element.get("path") == f"{code}.value":
                for t in element.get("type", []):
                    for ext in t.get("extension", []) or []:
                        if ext.get("url") == REGEX_EXTENSION and isinstance(ext.get("valueString"), str):
                            regexes[code] = ext["valueString"]
    for code in parents:
        lineage, current = [code], code
        while current in parents and parents[current] not in ("Element", ""):
            current = parents[current]
            lineage.append(current)
        kind = "boolean" if "boolean" in lineage else "number" if lineage[-1] in NUMBER_TYPES else "string"
        pattern = regexes.get(code)
        compiled = re.compile(xsd_to_python(pattern)) if pattern and kind == "string" else None
        out[code] = Primitive(code, kind, compiled)
    return out
