"""XSD simple types as hypothesis strategies of lexical values: valid ones, and ones that break one rule.

The constraints of a simple type are gathered over its whole derivation chain (each restriction
step and the built-in types above it): length, minLength, maxLength; patterns (any pattern of one
step, every step: XSD 1.0 4.3.4.3); enumeration; min/max inclusive/exclusive; totalDigits,
fractionDigits; whiteSpace. Values are constructed to meet them (integers and decimals from their
scale and digit bounds, strings from the pattern with lengths fitted in, rxverify.legacy.xsdregex);
where a construction cannot be exact (patterns of several steps, patterns on a date, bounds on a
date) xmlschema's own reading of the type is the filter, so every value is valid by construction
or by check, never by hope. Values are written in their canonical lexical form.

A value that breaks a rule is checked the same way: xmlschema must report exactly that rule and
no other for it (`failures`), so a labelled violation breaks the one rule it names.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, localcontext
from functools import partial
from typing import Any, Literal

from hypothesis import strategies as st
from xmlschema.validators import (
    XsdAtomicBuiltin,
    XsdComplexType,
    XsdEnumerationFacets,
    XsdFacet,
    XsdList,
    XsdPatternFacets,
    XsdSimpleType,
    XsdUnion,
)

from rxverify.errors import UserError
from rxverify.legacy.xsdregex import Alphabet, exact, keep, pattern_strings, width

XS = "{http://www.w3.org/2001/XMLSchema}"
INTEGERS = frozenset({
    "integer", "long", "int", "short", "byte", "nonNegativeInteger", "positiveInteger", "nonPositiveInteger",
    "negativeInteger", "unsignedLong", "unsignedInt", "unsignedShort", "unsignedByte",
})
STRINGS = frozenset({"string", "normalizedString", "token", "language", "Name", "NCName", "NMTOKEN", "anySimpleType",
                     "anyAtomicType", "untypedAtomic"})
DATES = frozenset({"date", "dateTime", "time", "gYear", "gYearMonth", "gMonth", "gMonthDay", "gDay"})
# built-ins a document cannot carry without what XSD 1.0 asks around them (ID uniqueness, IDREF targets,
# declared notations and unparsed entities)
UNSUPPORTED = frozenset({"ID", "IDREF", "IDREFS", "ENTITY", "ENTITIES", "NOTATION"})
NCNAME = r"[\i-[:]][\c-[:]]*"  # XSD 1.0 Part 2, 3.3.7 (the built-in's pattern)
URI = r"(https|http|urn):[A-Za-z0-9._~/\-]{1,40}"  # a plain absolute URI: any anyURI validator takes it
DECIMAL_PLACES = 4  # fraction digits of a decimal when the type sets no fractionDigits
# what a mutation puts into a valid value to break a pattern or an enumeration
PROBES = (" ", "a", "Z", "0", "9", "-", "_", ".", ":", "\t", "!", "ö", "€", "x1")
# invalid (month, day) pairs and times for a date or time that must not be one
BAD_MONTH_DAYS = ((2, 30), (2, 31), (4, 31), (13, 1), (0, 10), (1, 32), (1, 0))
BAD_TIMES = ("24:30:00", "25:00:00", "23:60:00", "23:59:61", "7:00:00")
# texts outside a built-in type's lexical space, beside those made from valid values
# (float and double have none: xmlschema checks their lexical space as a pattern of the built-in type, so a
# malformed float breaks `pattern`, which the pattern candidates cover)
JUNK = {
    "boolean": ("yes", "TRUE", "2", "t"), "hexBinary": ("ABC", "0G"), "base64Binary": ("a===", "@@"),
    "duration": ("P", "PT", "1D", "P1H", "PT1Y"), "QName": ("1abc", ":x", "a:b:c", "-a"),
}
DATE_PROBES = {  # one valid value of each date type, to see which time-zone forms a pattern admits
    "date": "2000-01-01", "dateTime": "2000-01-01T00:00:00", "time": "00:00:00", "gYear": "2000",
    "gYearMonth": "2000-01", "gMonth": "--01", "gMonthDay": "--01-01", "gDay": "---01",
}


class CannotGenerate(UserError):
    """The schema asks for something this generator does not make (named in the message)."""


def xml_characters() -> st.SearchStrategy[str]:
    """Any character an XML 1.0 document may carry."""
    return Alphabet().characters()


def local(name: str | None) -> str:
    """The local part of an expanded name `{namespace}local`."""
    return (name or "").rpartition("}")[2]


def rule_of(error: Any) -> str:
    """The rule an xmlschema validation error reports: a facet's name, or `datatype`."""
    validator = error.validator
    if isinstance(validator, XsdPatternFacets):
        return "pattern"
    if isinstance(validator, XsdEnumerationFacets):
        return "enumeration"
    if isinstance(validator, XsdFacet):
        return local(validator.elem.tag)
    return "datatype"  # the lexical space or the range of a built-in type


def failures(xsd_type: XsdSimpleType, text: str) -> frozenset[str]:
    """The rules xmlschema says `text` breaks as a value of `xsd_type` (empty: valid)."""
    decoded: Any = xsd_type.decode(text, validation="lax")
    _, errors = decoded
    return frozenset(rule_of(e) for e in errors)


def _steps(xsd_type: XsdSimpleType) -> Iterator[XsdSimpleType]:
    """The type, then each type it restricts, up to its primitive (built-ins included)."""
    current: Any = xsd_type
    while isinstance(current, XsdSimpleType):
        yield current
        if isinstance(current, XsdList | XsdUnion):
            return
        base = current.base_type
        current = base.content if isinstance(base, XsdComplexType) else base


def _normal(white_space: str, text: str) -> bool:
    """Whether `text` is already in the form whiteSpace normalisation gives (so facets see it as written)."""
    if white_space == "preserve":
        return True
    if any(c in text for c in "\t\n\r"):
        return False
    return white_space == "replace" or (text == text.strip(" ") and "  " not in text)


@dataclass(frozen=True)
class Facets:
    """The constraints on one simple type, gathered over its derivation chain."""

    xsd_type: Any
    variety: str  # atomic, list, union
    builtin: str  # local name of the nearest built-in type: string, int, date, ...
    white_space: str
    min_length: int
    max_length: int | None
    length_rules: tuple[str | None, str | None]  # the facet that sets the minimum and the maximum length
    patterns: tuple[tuple[str, ...], ...]  # per step: a value matches one regexp of each step
    enumeration: tuple[str, ...] | None  # lexical values of the nearest enumeration
    low: Any
    low_rule: str | None  # minInclusive or minExclusive
    low_own: bool  # the bound is the schema's, not a built-in type's (whose range only its validator reports)
    high: Any
    high_rule: str | None
    high_own: bool
    total_digits: int | None
    fraction_digits: int | None
    checked: bool  # XSD 1.1 facets (assertion, explicitTimezone): only a check against the type meets them

    @classmethod
    def of(cls, xsd_type: XsdSimpleType) -> Facets:
        """Gather the facets of `xsd_type` and its bases."""
        steps = list(_steps(xsd_type))
        last = steps[-1]
        variety = "list" if isinstance(last, XsdList) else "union" if isinstance(last, XsdUnion) else "atomic"
        builtin = next((local(s.name) for s in steps if isinstance(s, XsdAtomicBuiltin)), "anySimpleType")
        found: dict[str, Any] = {}
        patterns: list[tuple[str, ...]] = []
        white_space = next((s.white_space for s in steps if s.white_space), "preserve" if variety == "atomic" else
                           "collapse")
        lengths: dict[str, int] = {}
        low = high = None
        low_rule = high_rule = None
        low_own = high_own = False
        digits: dict[str, int] = {}
        checked = False
        for step in steps:
            facet: Any
            for tag, facet in step.facets.items():
                name = local(tag) if tag else ""
                if isinstance(facet, XsdPatternFacets):
                    patterns.append(tuple(facet.regexps))
                elif isinstance(facet, XsdEnumerationFacets):
                    found.setdefault("enumeration", tuple(str(e.get("value", "")) for e in facet))
                elif name in ("length", "minLength", "maxLength"):
                    _tighter(lengths, name, facet.value, name != "maxLength")
                elif name in ("minInclusive", "minExclusive") and (low is None or facet.value > low or (
                        facet.value == low and name == "minExclusive")):
                    low, low_rule, low_own = facet.value, name, not isinstance(step, XsdAtomicBuiltin)
                elif name in ("maxInclusive", "maxExclusive") and (high is None or facet.value < high or (
                        facet.value == high and name == "maxExclusive")):
                    high, high_rule, high_own = facet.value, name, not isinstance(step, XsdAtomicBuiltin)
                elif name in ("totalDigits", "fractionDigits"):
                    digits[name] = min(digits.get(name, facet.value), facet.value)
                elif name in ("assertion", "explicitTimezone"):
                    checked = True
        min_length, max_length, length_rules = _length_bounds(lengths)
        return cls(xsd_type, variety, builtin, white_space, min_length, max_length, length_rules,
                   tuple(patterns), found.get("enumeration"), low, low_rule, low_own, high, high_rule, high_own,
                   digits.get("totalDigits"), digits.get("fractionDigits"), checked)

    def matches_patterns(self, text: str) -> bool:
        """Whether `text` meets the pattern facets of every step."""
        return all(any(_compiled(p).fullmatch(text) for p in step) for step in self.patterns)


def _tighter(lengths: dict[str, int], name: str, value: int, is_min: bool) -> None:
    if name == "length":
        lengths.setdefault("length", value)
    elif name not in lengths or (value > lengths[name] if is_min else value < lengths[name]):
        lengths[name] = value


def _length_bounds(lengths: dict[str, int]) -> tuple[int, int | None, tuple[str | None, str | None]]:
    low, high = lengths.get("minLength", 0), lengths.get("maxLength")
    rules: list[str | None] = ["minLength" if "minLength" in lengths else None, "maxLength" if high is not None else
                               None]
    if "length" in lengths:
        exact = lengths["length"]
        if exact >= low:
            low, rules[0] = exact, "length"
        if high is None or exact <= high:
            high, rules[1] = exact, "length"
    return low, high, (rules[0], rules[1])


_COMPILED: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    """xmlschema's reading of an XSD pattern (elementpath's translation, anchored)."""
    if pattern not in _COMPILED:
        from elementpath.regex import translate_pattern

        _COMPILED[pattern] = re.compile(translate_pattern(pattern, xsd_version="1.0", back_references=False,
                                                          lazy_quantifiers=False, anchors=False))
    return _COMPILED[pattern]


def _pattern_lengths(patterns: tuple[tuple[str, ...], ...], low: int, high: int | None) -> tuple[int, int | None]:
    """low..high narrowed to the lengths every pattern step admits (a value matches one pattern of each)."""
    for step in patterns:
        widths = [width(p) for p in step]
        low = max(low, min(w for w, _ in widths))
        highs = [h for _, h in widths]
        if None not in highs:
            longest = max(h for h in highs if h is not None)
            high = longest if high is None else min(high, longest)
    return low, high


def _decimal_text(mantissa: int, scale: int) -> str:
    """mantissa x 10^-scale in canonical decimal form (no exponent)."""
    if scale == 0:
        return str(mantissa)
    digits = str(abs(mantissa)).rjust(scale + 1, "0")
    return ("-" if mantissa < 0 else "") + digits[:-scale] + "." + digits[-scale:]


def _offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _float_text(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "INF" if value > 0 else "-INF"
    return repr(value)


class Values:
    """Strategies of lexical values for simple types, from one alphabet and one window of years."""

    def __init__(self, alphabet: str | None, years: tuple[int, int]) -> None:
        chars = None if alphabet is None else frozenset(alphabet)
        self.alphabet = Alphabet(chars)  # None: every character XML 1.0 allows; else exactly these
        self.no_controls = Alphabet(chars, "\t\n\r")  # whiteSpace replace and collapse: never tab, LF, CR
        self.years = years
        self._alphabet_text = alphabet
        self._valid: dict[int, st.SearchStrategy[str]] = {}
        self._breaking: dict[int, tuple[tuple[str, st.SearchStrategy[str]], ...]] = {}

    # ---- valid values ----

    def valid(self, xsd_type: XsdSimpleType) -> st.SearchStrategy[str]:
        """Lexical values `xsd_type` accepts (cached per type)."""
        key = id(xsd_type)
        if key not in self._valid:
            self._valid[key] = self._build(Facets.of(xsd_type))
        return self._valid[key]

    def _build(self, f: Facets) -> st.SearchStrategy[str]:
        if f.builtin in UNSUPPORTED:
            raise CannotGenerate(f"type {f.xsd_type.name or 'anonymous'}: xs:{f.builtin} is not supported")
        strategy, exact = self._construct(f)
        if f.checked or not exact:
            xsd_type = f.xsd_type
            return keep(strategy, xsd_type.is_valid)
        return strategy

    def _construct(self, f: Facets) -> tuple[st.SearchStrategy[str], bool]:
        """A strategy meeting the facets of `f`, and whether it meets them all by construction."""
        if f.enumeration is not None:
            admitted = [v for v in f.enumeration if f.xsd_type.is_valid(v)]
            if not admitted:
                raise CannotGenerate(f"type {f.xsd_type.name or 'anonymous'}: no enumeration value is valid")
            return st.sampled_from(admitted), True
        if f.variety == "list":
            return self._list(f), False
        if f.variety == "union":
            union: Any = list(_steps(f.xsd_type))[-1]
            members = [self.valid(m) for m in union.member_types]
            return st.one_of(members), not (f.patterns or f.min_length or f.max_length is not None)
        if f.builtin in INTEGERS or f.builtin == "decimal":
            if f.patterns:
                return self._strings(f), False
            return (self._integers(f) if f.builtin in INTEGERS else self._decimals(f)), True
        if f.builtin in DATES:
            return self._dates(f)
        if f.builtin in ("float", "double"):
            width: Literal[32, 64] = 32 if f.builtin == "float" else 64
            bounded = f.low is not None or f.high is not None
            floats = st.floats(
                min_value=None if f.low is None else float(f.low), max_value=None if f.high is None else float(f.high),
                exclude_min=f.low_rule == "minExclusive", exclude_max=f.high_rule == "maxExclusive",
                allow_nan=not bounded, allow_infinity=not bounded, width=width,
            )
            return floats.map(_float_text), not f.patterns
        if f.builtin == "boolean":
            return st.sampled_from(["true", "false"]), not f.patterns
        if f.builtin in ("hexBinary", "base64Binary"):
            octets = st.binary(min_size=f.min_length, max_size=f.max_length)
            if f.builtin == "hexBinary":
                return octets.map(lambda b: b.hex().upper()), not f.patterns
            return octets.map(lambda b: base64.b64encode(b).decode("ascii")), not f.patterns
        if f.builtin == "duration":
            return _durations(), not (f.patterns or f.low is not None or f.high is not None)
        if f.builtin in STRINGS or f.builtin in ("anyURI", "QName"):
            return self._strings(f), self._strings_exact(f)
        raise CannotGenerate(f"type {f.xsd_type.name or 'anonymous'}: xs:{f.builtin} is not supported")

    def _string_alphabet(self, f: Facets) -> Alphabet:
        return self.alphabet if f.white_space == "preserve" else self.no_controls

    def _own_patterns(self, f: Facets) -> tuple[tuple[str, ...], ...]:
        # the built-ins' lexical rules as patterns where xmlschema checks them with a function
        extra = {"QName": (NCNAME,), "anyURI": (URI,)}.get(f.builtin)
        return f.patterns if extra is None or f.patterns else (extra,)

    def _strings_exact(self, f: Facets) -> bool:
        patterns = self._own_patterns(f)
        if f.white_space == "collapse" or len(patterns) > 1:
            return False
        if not patterns:
            return True
        low, high = _pattern_lengths(patterns, f.min_length, f.max_length)
        return all(exact(p, low, high) for p in patterns[0])

    def _strings(self, f: Facets, min_length: int | None = None, max_length: int | None = None,
                 alphabet: Alphabet | None = None) -> st.SearchStrategy[str]:
        """Strings from the first pattern step (filtered by the others) or plain text, in normal whitespace form."""
        low = f.min_length if min_length is None else min_length
        high = f.max_length if max_length is None else max_length
        chars = alphabet or self._string_alphabet(f)
        patterns = self._own_patterns(f)
        if patterns:
            low, high = _pattern_lengths(patterns, low, high)
            first, *rest = patterns
            strings = st.one_of([pattern_strings(p, chars, low, high) for p in first])
            if rest:
                strings = keep(strings, lambda s: all(any(_compiled(p).fullmatch(s) for p in step) for step in rest))
        else:
            strings = st.text(chars.characters(), min_size=low, max_size=high)
        if f.white_space == "collapse":
            strings = keep(strings, lambda s: _normal("collapse", s))
        return strings

    def _list(self, f: Facets) -> st.SearchStrategy[str]:
        return st.lists(self._list_items(f), min_size=f.min_length, max_size=f.max_length).map(" ".join)

    def _list_items(self, f: Facets) -> st.SearchStrategy[str]:
        """Items of a list type: valid values of its item type, without blanks (which separate items)."""
        list_type: Any = list(_steps(f.xsd_type))[-1]
        return keep(self.valid(list_type.item_type), lambda s: s != "" and not any(c in s for c in " \t\n\r"))

    def _integer_bounds(self, f: Facets, scale: int = 0) -> tuple[int | None, int | None]:
        """Bounds of the mantissa of a value with `scale` fraction digits, from min/max and totalDigits."""
        low = high = None
        if f.low is not None:
            # the smallest mantissa above (or at) the bound: floor + 1 when exclusive, else the ceiling
            low = _mantissa(f.low, scale) + 1 if f.low_rule == "minExclusive" else _mantissa(f.low, scale, up=True)
        if f.high is not None:
            high = _mantissa(f.high, scale, up=True) - 1 if f.high_rule == "maxExclusive" else _mantissa(f.high, scale)
        if f.total_digits is not None:
            most = 10 ** f.total_digits - 1
            low, high = max(low, -most) if low is not None else -most, min(high, most) if high is not None else most
        return low, high

    def _integers(self, f: Facets) -> st.SearchStrategy[str]:
        low, high = self._integer_bounds(f)
        if low is not None and high is not None and low > high:
            raise CannotGenerate(f"type {f.xsd_type.name or 'anonymous'}: no integer meets its bounds")
        return st.integers(low, high).map(str)

    def _decimals(self, f: Facets) -> st.SearchStrategy[str]:
        most = DECIMAL_PLACES if f.fraction_digits is None else f.fraction_digits
        if f.total_digits is not None:
            most = min(most, f.total_digits)
        options = []
        for scale in range(most + 1):
            low, high = self._integer_bounds(f, scale)
            if low is None or high is None or low <= high:
                options.append((scale, low, high))
        if not options:
            raise CannotGenerate(f"type {f.xsd_type.name or 'anonymous'}: no decimal meets its facets")
        return st.sampled_from(options).flatmap(
            lambda o: st.integers(o[1], o[2]).map(lambda m: _decimal_text(m, o[0])))

    def _zones(self, f: Facets) -> st.SearchStrategy[str]:
        """The time-zone suffixes the type's patterns admit: none, Z, an offset (all when none fits)."""
        probe = DATE_PROBES[f.builtin]
        forms = [z for z in ("", "Z", "+01:00") if f.matches_patterns(probe + z)] or ["", "Z", "+01:00"]
        options = []
        if "" in forms:
            options.append(st.just(""))
        if "Z" in forms:
            options.append(st.just("Z"))
        if "+01:00" in forms:
            options.append(st.integers(-14 * 60, 14 * 60).map(_offset))
        return st.one_of(options)

    def _dates(self, f: Facets) -> tuple[st.SearchStrategy[str], bool]:
        first, last = self.years
        first = max(first, getattr(f.low, "year", first) or first)
        last = min(last, getattr(f.high, "year", last) or last)
        if first > last:
            raise CannotGenerate(f"type {f.xsd_type.name or 'anonymous'}: no date meets its bounds")
        days = st.dates(date(first, 1, 1), date(last, 12, 31))
        zones = self._zones(f)
        times = st.builds(
            lambda h, m, s, frac: f"{h:02d}:{m:02d}:{s:02d}{frac}",
            st.integers(0, 23), st.integers(0, 59), st.integers(0, 59),
            st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,6}", fullmatch=True)),
        )
        iso = days.map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}")
        plain = {
            "date": iso,
            "dateTime": st.builds(lambda d, t: f"{d}T{t}", iso, times),
            "time": times,
            "gYear": st.integers(first, last).map(lambda y: f"{y:04d}"),
            "gYearMonth": days.map(lambda d: f"{d.year:04d}-{d.month:02d}"),
            "gMonth": st.integers(1, 12).map(lambda m: f"--{m:02d}"),
            "gMonthDay": st.dates(date(2000, 1, 1), date(2000, 12, 31)).map(lambda d: f"--{d.month:02d}-{d.day:02d}"),
            "gDay": st.integers(1, 31).map(lambda d: f"---{d:02d}"),
        }[f.builtin]
        exact = not f.patterns and f.low is None and f.high is None
        return st.builds(lambda v, z: v + z, plain, zones), exact

    # ---- values that break one rule ----

    def breaking(self, xsd_type: XsdSimpleType) -> tuple[tuple[str, st.SearchStrategy[str]], ...]:
        """(rule, texts breaking that rule and no other) for each rule of `xsd_type` that can be broken alone."""
        key = id(xsd_type)
        if key not in self._breaking:
            f = Facets.of(xsd_type)
            rules = []
            for rule, candidates in self._candidates(f):
                def only(text: str, rule: str = rule) -> bool:
                    return failures(xsd_type, text) == {rule}

                rules.append((rule, keep(candidates, only)))
            self._breaking[key] = tuple(rules)
        return self._breaking[key]

    def _candidates(self, f: Facets) -> Iterator[tuple[str, st.SearchStrategy[str]]]:
        if f.builtin in UNSUPPORTED or f.variety == "union":
            return
        valid = self.valid(f.xsd_type)
        lengthy = f.builtin in STRINGS or f.builtin in ("anyURI", "hexBinary", "base64Binary") or f.variety == "list"
        if lengthy and f.enumeration is None:
            yield from self._length_candidates(f)
        if f.patterns and f.enumeration is None:
            mutated = st.builds(_mutate, valid, st.integers(0, 10_000), st.sampled_from(PROBES), st.integers(0, 2))
            yield "pattern", st.one_of(mutated, st.text(xml_characters(), min_size=f.min_length,
                                                        max_size=max(f.min_length, f.max_length or 20)))
        if f.enumeration is not None:
            enum = st.sampled_from(f.enumeration)
            yield "enumeration", st.one_of(
                st.builds(_mutate, enum, st.integers(0, 10_000), st.sampled_from(PROBES), st.integers(0, 2)),
                enum.map(str.swapcase), self._base_values(f))
        if f.variety == "atomic" and (f.builtin in INTEGERS or f.builtin == "decimal"):
            yield from self._number_candidates(f)
        if f.variety == "atomic" and f.builtin in DATES:
            yield from self._date_candidates(f)
        if f.variety == "atomic" and f.builtin in ("float", "double"):
            yield from self._float_candidates(f)
        if f.variety == "atomic" and f.builtin in JUNK:
            yield "datatype", st.one_of(st.sampled_from(JUNK[f.builtin]), valid.map(lambda v: v + "x"))

    def _float_candidates(self, f: Facets) -> Iterator[tuple[str, st.SearchStrategy[str]]]:
        width: Literal[32, 64] = 32 if f.builtin == "float" else 64
        if f.low_rule is not None and f.low_own:
            below = st.floats(max_value=float(f.low), exclude_max=f.low_rule == "minInclusive", allow_nan=False,
                              allow_infinity=False, width=width)
            yield f.low_rule, below.map(_float_text)
        if f.high_rule is not None and f.high_own:
            above = st.floats(min_value=float(f.high), exclude_min=f.high_rule == "maxInclusive", allow_nan=False,
                              allow_infinity=False, width=width)
            yield f.high_rule, above.map(_float_text)

    def _base_values(self, f: Facets) -> st.SearchStrategy[str]:
        """Values of the type without its enumeration: what breaks an enumeration alone."""
        if f.builtin in STRINGS:
            return self._strings(f)
        return st.nothing()

    def _length_candidates(self, f: Facets) -> Iterator[tuple[str, st.SearchStrategy[str]]]:
        min_rule, max_rule = f.length_rules
        if max_rule is not None and f.max_length is not None:
            yield max_rule, self._sized(f, f.max_length + 1, f.max_length + 8)
        if min_rule is not None and f.min_length > 0:
            yield min_rule, self._sized(f, 0, f.min_length - 1)

    def _sized(self, f: Facets, low: int, high: int) -> st.SearchStrategy[str]:
        """Values like the type's but of low..high length units (characters, octets or list items)."""
        if f.variety == "list":
            return st.lists(self._list_items(f), min_size=low, max_size=high).map(" ".join)
        if f.builtin == "hexBinary":
            return st.binary(min_size=low, max_size=high).map(lambda b: b.hex().upper())
        if f.builtin == "base64Binary":
            return st.binary(min_size=low, max_size=high).map(lambda b: base64.b64encode(b).decode("ascii"))
        return self._strings(f, low, high)

    def _number_candidates(self, f: Facets) -> Iterator[tuple[str, st.SearchStrategy[str]]]:
        scale = 0 if f.builtin in INTEGERS else min(f.fraction_digits or 0, DECIMAL_PLACES)
        if f.low_rule is not None and f.low_own:
            # the first value outside the bound, then further out, in steps of the type's last digit
            below = _mantissa(f.low, scale) - (0 if f.low_rule == "minExclusive" else 1)
            yield f.low_rule, st.integers(0, 1000).map(partial(_step_away, below, -1, scale))
        if f.high_rule is not None and f.high_own:
            above = _mantissa(f.high, scale, up=True) + (0 if f.high_rule == "maxExclusive" else 1)
            yield f.high_rule, st.integers(0, 1000).map(partial(_step_away, above, 1, scale))
        integer = f.builtin in INTEGERS
        if f.total_digits is not None:
            # td + 1 significant digits at some scale the type allows, the trailing one not zero
            digits = f.total_digits + 1
            most_scale = 0 if integer else (digits if f.fraction_digits is None else f.fraction_digits)
            scales = [k for k in range(most_scale + 1) if _reachable(f, Decimal(10) ** (f.total_digits - k))]
            if scales:
                yield "totalDigits", st.builds(
                    lambda m, sign, k: _decimal_text(sign * m, k),
                    keep(st.integers(10 ** (digits - 1), 10**digits - 1), lambda m: m % 10 != 0),
                    st.sampled_from([1, -1]), st.sampled_from(scales))
        if f.fraction_digits is not None and not integer and (f.total_digits is None or
                                                              f.total_digits > f.fraction_digits):
            places = f.fraction_digits + 1
            yield "fractionDigits", st.builds(
                lambda whole, m: _decimal_text(whole * 10**places + (m if whole >= 0 else -m), places),
                st.integers(*self._integer_bounds(f)), st.integers(1, 10**places - 1))
        yield "datatype", st.one_of(self.valid(f.xsd_type).map(lambda v: v + ("x" if "." in v else ".5")),
                                    st.sampled_from(["", "x", "1e3", "--1", "1,5"]))

    def _date_candidates(self, f: Facets) -> Iterator[tuple[str, st.SearchStrategy[str]]]:
        zones = self._zones(f)
        years = st.integers(max(self.years[0], 1000), self.years[1])
        bad_day = st.builds(lambda y, md: f"{y:04d}-{md[0]:02d}-{md[1]:02d}", years, st.sampled_from(BAD_MONTH_DAYS))
        iso = st.dates(date(2000, 1, 1), date(2030, 12, 31)).map(lambda d: d.isoformat())
        bad = {
            "date": bad_day,
            "dateTime": st.one_of(st.builds(lambda d: d + "T10:00:00", bad_day),
                                  st.builds(lambda d, t: f"{d}T{t}", iso, st.sampled_from(BAD_TIMES))),
            "time": st.sampled_from(BAD_TIMES),
            "gYear": st.sampled_from(["0000", "21", "2021-"]),
            "gYearMonth": st.builds(lambda y, m: f"{y:04d}-{m:02d}", years, st.sampled_from([0, 13])),
            "gMonth": st.sampled_from(["--00", "--13"]),
            "gMonthDay": st.sampled_from(["--02-30", "--13-01", "--04-31"]),
            "gDay": st.sampled_from(["---00", "---32"]),
        }[f.builtin]
        yield "datatype", st.builds(lambda v, z: v + z, bad, zones)
        unbounded = replace(f, low=None, low_rule=None, high=None, high_rule=None)
        any_dates = Values(self._alphabet_text, (1, 9999))._dates(unbounded)[0]
        if f.low_rule is not None and f.low_own:
            yield f.low_rule, any_dates
        if f.high_rule is not None and f.high_own:
            yield f.high_rule, any_dates


def _step_away(first: int, direction: int, scale: int, steps: int) -> str:
    """The value `steps` further out than the mantissa `first`, at `scale` fraction digits."""
    return _decimal_text(first + direction * steps, scale)


def _reachable(f: Facets, magnitude: Decimal) -> bool:
    """Whether a value just above `magnitude` (or just below its negative) is within the type's bounds."""
    above = f.high is None or magnitude < Decimal(f.high)
    below = f.low is None or -magnitude > Decimal(f.low)
    return above or below


def _mantissa(value: Any, scale: int, up: bool = False) -> int:
    """`value` x 10^scale as an integer, rounded down (or up), exactly however many digits it has."""
    with localcontext(Context(prec=max(len(str(value)) + scale + 10, 28))):
        shifted = Decimal(value).scaleb(scale)
        return int(shifted.to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR))


def _mutate(value: str, position: int, probe: str, how: int) -> str:
    """`value` with `probe` put in at a position: replacing a character, inserted, or replacing the rest."""
    at = position % (len(value) + 1)
    if how == 0:
        return value[:at] + probe + value[at + 1 :]
    if how == 1:
        return value[:at] + probe + value[at:]
    return value[:at] + probe


def _durations() -> st.SearchStrategy[str]:
    """xs:duration values: at least one component, a T only before a time component."""
    part = st.one_of(st.none(), st.integers(0, 99))

    def text(negative: bool, y: int | None, mo: int | None, d: int | None, h: int | None, mi: int | None,
             s: int | None) -> str:
        day_part = "".join(f"{v}{u}" for v, u in ((y, "Y"), (mo, "M"), (d, "D")) if v is not None)
        time_part = "".join(f"{v}{u}" for v, u in ((h, "H"), (mi, "M"), (s, "S")) if v is not None)
        if not day_part and not time_part:
            day_part = "0D"
        return ("-" if negative else "") + "P" + day_part + ("T" + time_part if time_part else "")

    build: Callable[..., str] = text
    return st.builds(build, st.booleans(), part, part, part, part, part, part)
