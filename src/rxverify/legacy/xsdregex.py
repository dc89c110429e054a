"""XSD regular expressions as hypothesis strategies: faithful character sets, lengths fitted in.

An XSD pattern (XML Schema Part 2, appendix F) is translated to a Python regular expression by
elementpath, the translator xmlschema itself validates with, so character class subtraction
(`[a-z-[aeiou]]`), `\\i`, `\\c`, `\\p{..}` and the implicit anchoring mean what the XSD says.
The translation keeps the standalone escapes `\\w`, `\\W`, `\\s` as Python's, whose sets differ
from the XSD's (`_` is a word character to Python, `+` to XSD), so they are generated from the
intersection of both sets: a value is then accepted by a validator that follows the
specification and by xmlschema alike.

The translated expression is re-read (Python's own regex parser) into a small tree so that length
facets can be fitted in before generation: where the length a pattern allows varies in one
repetition only (`[A-Z]+` with length 5, `SE[0-9]{10}-[A-Za-z0-9]{1,18}` with maxLength 31),
its bounds are computed exactly; elsewhere unbounded repetitions are capped at maxLength and the
remaining length condition is a filter. Examples shrink as hypothesis's from_regex shrinks them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from re import _constants as sre  # type: ignore[attr-defined,unused-ignore]
from re import _parser as sre_parse  # type: ignore[attr-defined,unused-ignore]
from typing import Any, TypeVar, cast

from elementpath.regex import translate_pattern
from hypothesis import strategies as st

T = TypeVar("T")
INFINITE = -1  # an unbounded width or repetition in the tree below
LISTED = 200_000  # a class of at most this many characters is generated from its list (one draw per run)
# elementpath anchors an XSD pattern as ^(...)$(?!\n\Z) (where ^ and $ inside are plain characters)
_ANCHORED = re.compile(r"\^\((?:\?:)?(.*)\)\$\(\?!\\n\\Z\)", re.DOTALL)


class UnsupportedPattern(ValueError):
    """The pattern uses a construct this module cannot generate from."""


@dataclass(frozen=True)
class _Atom:
    """One character: from `chars` (or any but `chars` when negated), or, for a class too large to list, `regex`."""

    regex: str
    chars: str | None = None  # its characters, sorted, once each; None: only `regex` says which
    negated: bool = False


@dataclass(frozen=True)
class _Seq:
    items: tuple[_Node, ...]


@dataclass(frozen=True)
class _Alt:
    options: tuple[_Seq, ...]


@dataclass(frozen=True)
class _Rep:
    low: int
    high: int  # INFINITE when unbounded
    body: _Seq


_Node = _Atom | _Seq | _Alt | _Rep


@cache
def _xsd_class_body(xsd_class: str) -> str:
    """The body (between the brackets) of elementpath's Python class for an XSD character class."""
    return translate_pattern(xsd_class, xsd_version="1.0")[1:-1]


def _category(code: object, negated: bool) -> str:
    # Standalone \w \W \s as the intersection of the XSD set and Python's (see the module docstring);
    # \d \D \S are Python's (a subset of the XSD set, or the same set).
    if not negated and code is sre.CATEGORY_WORD:
        return _xsd_class_body(r"[\p{L}\p{N}]")
    if not negated and code is sre.CATEGORY_NOT_WORD:
        return _xsd_class_body(r"[\p{P}\p{Z}\p{C}-[_]]")
    if not negated and code is sre.CATEGORY_SPACE:
        return "\t\n\r "
    names = {
        sre.CATEGORY_DIGIT: r"\d", sre.CATEGORY_NOT_DIGIT: r"\D", sre.CATEGORY_SPACE: r"\s",
        sre.CATEGORY_NOT_SPACE: r"\S", sre.CATEGORY_WORD: r"\w", sre.CATEGORY_NOT_WORD: r"\W",
    }
    if code not in names:
        raise UnsupportedPattern(f"character category {code}")
    return names[code]


@cache
def _category_ranges(code: object, negated: bool) -> tuple[tuple[int, int], ...] | None:
    """The code point ranges of a category `_category` spells out explicitly; None for those left to Python."""
    body = _category(code, negated)
    if body.startswith("\\"):
        return None
    [(op, items)] = sre_parse.parse(f"[{body}]").data
    ranges = []
    for item, value in items if op is sre.IN else [(op, items)]:
        if item is sre.LITERAL:
            ranges.append((cast(int, value), cast(int, value)))
        elif item is sre.RANGE:
            ranges.append(cast(tuple[int, int], value))
        else:
            return None
    return tuple(ranges)


def _atom(items: list[tuple[object, object]]) -> _Atom:
    """A class of Python's parse as an atom: its characters listed unless it uses a category or is huge."""
    negated = bool(items) and items[0][0] is sre.NEGATE
    parts: list[str] = []
    ranges: list[tuple[int, int]] = []
    listable = True
    for op, av in items[1:] if negated else items:
        if op is sre.LITERAL:
            parts.append(re.escape(chr(cast(int, av))))
            ranges.append((cast(int, av), cast(int, av)))
        elif op is sre.RANGE:
            low, high = cast(tuple[int, int], av)
            parts.append(f"{re.escape(chr(low))}-{re.escape(chr(high))}")
            ranges.append((low, high))
        elif op is sre.CATEGORY:
            parts.append(_category(av, negated))
            explicit = _category_ranges(av, negated)
            if explicit is None:
                listable = False
            else:
                ranges += explicit
        else:
            raise UnsupportedPattern(f"class item {op}")
    regex = "[" + ("^" if negated else "") + "".join(parts) + "]"
    if not listable or sum(high - low + 1 for low, high in ranges) > LISTED:
        return _Atom(regex)
    codes = sorted({c for low, high in ranges for c in range(low, high + 1)})
    return _Atom(regex, "".join(map(chr, codes)), negated)


def _tree(data: list[tuple[object, object]]) -> _Seq:
    """Python's parse of a translated pattern as a tree of sequences, alternatives, repetitions, characters."""
    items: list[_Node] = []
    for op, av in data:
        if op is sre.LITERAL:
            items.append(_Atom(re.escape(chr(cast(int, av))), chr(cast(int, av))))
        elif op is sre.NOT_LITERAL:
            items.append(_Atom(f"[^{re.escape(chr(cast(int, av)))}]", chr(cast(int, av)), negated=True))
        elif op is sre.ANY:
            items.append(_Atom(".", "\n", negated=True))
        elif op is sre.IN:
            items.append(_atom(av))  # type: ignore[arg-type]
        elif op is sre.MAX_REPEAT:
            low, high, body = cast(tuple[int, Any, Any], av)
            items.append(_Rep(low, INFINITE if high is sre.MAXREPEAT else high, _tree(body.data)))
        elif op is sre.SUBPATTERN:
            items.append(_tree(av[3].data))  # type: ignore[index]
        elif op is sre.BRANCH:
            items.append(_Alt(tuple(_tree(option.data) for option in av[1])))  # type: ignore[index]
        else:  # anchors, lazy repetitions, back references: XSD has none
            raise UnsupportedPattern(f"regex operator {op}")
    return _Seq(tuple(items))


def _add(a: int, b: int) -> int:
    return INFINITE if INFINITE in (a, b) else a + b


def _width(node: _Node) -> tuple[int, int]:
    """(shortest, longest) length of what `node` matches; longest INFINITE when unbounded."""
    if isinstance(node, _Atom):
        return 1, 1
    if isinstance(node, _Seq):
        low, high = 0, 0
        for item in node.items:
            item_low, item_high = _width(item)
            low, high = low + item_low, _add(high, item_high)
        return low, high
    if isinstance(node, _Alt):
        widths = [_width(option) for option in node.options]
        highs = [h for _, h in widths]
        return min(w for w, _ in widths), INFINITE if INFINITE in highs else max(highs)
    body_low, body_high = _width(node.body)
    if node.high == INFINITE:
        return node.low * body_low, INFINITE if body_high else 0
    return node.low * body_low, INFINITE if body_high == INFINITE else node.high * body_high


def _fit(node: _Node, low: int, high: int) -> _Node | None:
    """`node` restricted towards lengths low..high (high INFINITE: no bound); None if it cannot fit.

    Exact where one repetition carries all the variable length; otherwise only upper bounds are
    pushed down and the caller filters on length.
    """
    node_low, node_high = _width(node)
    if (high != INFINITE and node_low > high) or (node_high != INFINITE and node_high < low):
        return None
    if isinstance(node, _Atom):
        return node
    if isinstance(node, _Alt):
        options = [o for o in (_fit(option, low, high) for option in node.options) if o is not None]
        return _Alt(tuple(o for o in options if isinstance(o, _Seq))) if options else None
    if isinstance(node, _Rep):
        return _fit_repetition(node, low, high)
    widths = [_width(item) for item in node.items]
    fixed = sum(w for w, h in widths if w == h)
    variable = [i for i, (w, h) in enumerate(widths) if w != h]
    if len(variable) == 1:
        [index] = variable
        inner = _fit(node.items[index], max(low - fixed, 0), high - fixed if high != INFINITE else INFINITE)
        if inner is None:
            return None
        return _Seq((*node.items[:index], inner, *node.items[index + 1 :]))
    if high == INFINITE:
        return node
    shortest = sum(w for w, _ in widths)
    items = []
    for item, (w, _) in zip(node.items, widths, strict=True):
        fitted = _fit(item, 0, high - (shortest - w))
        if fitted is None:
            return None
        items.append(fitted)
    return _Seq(tuple(items))


def _fit_repetition(node: _Rep, low: int, high: int) -> _Node | None:
    body_low, body_high = _width(node.body)
    if body_low == body_high:
        if body_low == 0:
            return node
        count_low = max(node.low, -(-low // body_low))
        count_high = high // body_low if high != INFINITE else node.high
        if node.high != INFINITE:
            count_high = min(count_high, node.high) if count_high != INFINITE else node.high
        if count_high != INFINITE and count_low > count_high:
            return None
        return _Rep(count_low, count_high, node.body)
    if high == INFINITE:
        return node
    # a variable body: at most as many repetitions as fit, each body at most `high` long
    count_high = high // body_low if body_low else high
    count_high = min(count_high, node.high) if node.high != INFINITE else count_high
    count_low = node.low
    body_range_low = 0
    if count_high == 1 and low > 0:  # an optional part that must be there to reach the length
        count_low, body_range_low = 1, low
    if count_low > count_high:
        return None
    body = _fit(node.body, body_range_low, high)
    if body is None:
        return None
    return _Rep(count_low, count_high, body if isinstance(body, _Seq) else _Seq((body,)))


@dataclass(frozen=True)
class Plan:
    """A pattern made ready for generation within length bounds."""

    tree: _Seq
    exact: bool  # every string it generates has a length within the bounds


@cache
def plan(pattern: str, min_length: int = 0, max_length: int | None = None, xsd_version: str = "1.0") -> Plan | None:
    """The XSD `pattern` as a tree restricted towards min_length..max_length; None if no length fits."""
    try:
        python = translate_pattern(pattern, xsd_version=xsd_version, back_references=False, lazy_quantifiers=False,
                                   anchors=False)
        anchored = _ANCHORED.fullmatch(python)
        if anchored is None:
            raise UnsupportedPattern(f"pattern {pattern!r}: unexpected translation {python!r}")
        tree = _tree(sre_parse.parse(anchored.group(1)).data)
    except (re.error, ValueError) as exc:
        if isinstance(exc, UnsupportedPattern):
            raise
        raise UnsupportedPattern(f"pattern {pattern!r}: {exc}") from None
    high = INFINITE if max_length is None else max_length
    node = _fit(tree, min_length, high)
    if node is None:
        return None
    low_width, high_width = _width(node)
    exact = low_width >= min_length and (high == INFINITE or (high_width != INFINITE and high_width <= high))
    return Plan(node if isinstance(node, _Seq) else _Seq((node,)), exact)


@dataclass(frozen=True)
class Alphabet:
    """The characters values may use: every character XML 1.0 allows, or a given set; less `excluded`."""

    chars: frozenset[str] | None = None  # None: every XML 1.0 character
    excluded: str = ""

    def allows(self, char: str) -> bool:
        """Whether `char` may appear."""
        if char in self.excluded or char in NOT_XML or "\ud800" <= char <= "\udfff":
            return False
        return self.chars is None or char in self.chars

    def characters(self) -> st.SearchStrategy[str]:
        """One character of the alphabet."""
        if self.chars is None:
            return st.characters(exclude_categories=["Cs"], exclude_characters=NOT_XML + self.excluded)
        return st.sampled_from(sorted(c for c in self.chars if self.allows(c)))


NOT_XML = "".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r") + "\ufffe\uffff"  # XML 1.0 Char (2.2)


@cache
def _chars(atom: _Atom, alphabet: Alphabet) -> str | st.SearchStrategy[str] | None:
    """The alphabet st.text takes for a run of `atom` within `alphabet` (one draw per run); None: only a regex says."""
    if atom.chars is None:
        if alphabet.chars is None:
            return None
        matcher = re.compile(atom.regex)
        return "".join(sorted(c for c in alphabet.chars if alphabet.allows(c) and matcher.fullmatch(c)))
    if not atom.negated:
        return "".join(c for c in atom.chars if alphabet.allows(c))
    if alphabet.chars is None:
        return st.characters(exclude_categories=["Cs"], exclude_characters=atom.chars + NOT_XML + alphabet.excluded)
    excluded = set(atom.chars)
    return "".join(sorted(c for c in alphabet.chars if alphabet.allows(c) and c not in excluded))


def _run(atom: _Atom, alphabet: Alphabet, low: int, high: int | None) -> st.SearchStrategy[str]:
    """low..high characters of `atom`."""
    chars = _chars(atom, alphabet)
    if chars is None:
        one = st.from_regex(atom.regex, fullmatch=True, alphabet=alphabet.characters())
        return st.lists(one, min_size=low, max_size=high).map("".join)
    if chars == "":
        return st.just("") if low == 0 else st.nothing()
    return st.text(alphabet=chars, min_size=low, max_size=high)


def _strategy(node: _Node, alphabet: Alphabet) -> st.SearchStrategy[str]:
    """Strings `node` matches whole, from `alphabet`: a run of one class is one draw (st.text)."""
    if isinstance(node, _Atom):
        return _run(node, alphabet, 1, 1)
    if isinstance(node, _Alt):
        return st.one_of([_strategy(option, alphabet) for option in node.options])
    if isinstance(node, _Rep):
        high = None if node.high == INFINITE else node.high
        if len(node.body.items) == 1 and isinstance(node.body.items[0], _Atom):
            return _run(node.body.items[0], alphabet, node.low, high)
        return st.lists(_strategy(node.body, alphabet), min_size=node.low, max_size=high).map("".join)
    parts: list[st.SearchStrategy[str]] = []
    literal = ""
    for item in node.items:
        if isinstance(item, _Atom) and item.chars is not None and not item.negated and len(item.chars) == 1:
            literal += item.chars  # consecutive literal characters: one constant
            continue
        if literal:
            parts.append(st.just(literal))
            literal = ""
        parts.append(_strategy(item, alphabet))
    if literal:
        parts.append(st.just(literal))
    if len(parts) == 1:
        return parts[0]
    return st.tuples(*parts).map("".join)


def _sizable(node: _Node) -> bool:
    """Whether `_sized` meets any length bounds on `node` exactly (no repetition of a variable-width part)."""
    if isinstance(node, _Atom):
        return True
    if isinstance(node, _Rep):
        low, high = _width(node.body)
        return low == high
    items = node.options if isinstance(node, _Alt) else node.items
    return all(_sizable(item) for item in items)


def _sized(node: _Node, alphabet: Alphabet, low: int, high: int) -> st.SearchStrategy[str]:
    """Strings of `node` with low..high characters (high INFINITE: no bound), built to size where it can be.

    A sequence spends its length budget item by item: each takes a length the rest can still
    make up, so several variable repetitions meet one length facet without filtering.
    """
    node_low, node_high = _width(node)
    if (high != INFINITE and node_low > high) or (node_high != INFINITE and node_high < low):
        return st.nothing()
    if node_low >= low and (high == INFINITE or (node_high != INFINITE and node_high <= high)):
        return _strategy(node, alphabet)  # every string of it fits
    if isinstance(node, _Rep):
        fitted = _fit_repetition(node, low, high)
        return st.nothing() if fitted is None else _strategy(fitted, alphabet)
    if isinstance(node, _Alt):
        return st.one_of([_sized(option, alphabet, low, high) for option in node.options])
    if not isinstance(node, _Seq) or not node.items:
        return _strategy(node, alphabet)
    first, rest = node.items[0], _Seq(node.items[1:])
    first_low, first_high = _width(first)
    rest_low, rest_high = _width(rest)
    head_low = first_low if rest_high == INFINITE else max(first_low, low - rest_high)
    head_high = first_high if high == INFINITE else high - rest_low
    if first_high != INFINITE and head_high != INFINITE:
        head_high = min(head_high, first_high)

    def then(head: str) -> st.SearchStrategy[str]:
        tail_high = INFINITE if high == INFINITE else high - len(head)
        return _sized(rest, alphabet, max(low - len(head), 0), tail_high).map(lambda tail: head + tail)

    return _sized(first, alphabet, head_low, head_high).flatmap(then)


def width(pattern: str, xsd_version: str = "1.0") -> tuple[int, int | None]:
    """The shortest and longest (None: unbounded) string the XSD `pattern` matches."""
    ready = plan(pattern, 0, None, xsd_version)
    low, high = _width(ready.tree) if ready is not None else (0, INFINITE)
    return low, None if high == INFINITE else high


def pattern_strings(pattern: str, alphabet: Alphabet, min_length: int = 0, max_length: int | None = None,
                    xsd_version: str = "1.0") -> st.SearchStrategy[str]:
    """Strings the XSD `pattern` matches whole, with min_length..max_length characters, from `alphabet`."""
    ready = plan(pattern, min_length, max_length, xsd_version)
    if ready is None:
        return st.nothing()
    if ready.exact:
        return _strategy(ready.tree, alphabet)
    strings = _sized(ready.tree, alphabet, min_length, INFINITE if max_length is None else max_length)
    if _sizable(ready.tree):
        return strings
    return keep(strings, lambda s: min_length <= len(s) and (max_length is None or len(s) <= max_length))


def exact(pattern: str, min_length: int = 0, max_length: int | None = None, xsd_version: str = "1.0") -> bool:
    """Whether pattern_strings meets the length bounds by construction (no filter)."""
    ready = plan(pattern, min_length, max_length, xsd_version)
    return ready is None or ready.exact or _sizable(ready.tree)


class _Predicate:
    """A filter's predicate as an object without a name or source.

    hypothesis (6.170) re-validates a filtered text strategy on every draw and, to rewrite length
    bounds, reads the source of a named or lambda predicate each time (inspect.getsource): most of
    a document's generation time. An object it cannot read is left as a plain filter.
    """

    __slots__ = ("test",)

    def __init__(self, test: Callable[[Any], bool]) -> None:
        self.test = test

    def __call__(self, value: Any) -> bool:
        return self.test(value)


def keep(strategy: st.SearchStrategy[T], test: Callable[[T], bool]) -> st.SearchStrategy[T]:
    """`strategy.filter(test)`, without hypothesis re-reading the predicate's source on every draw."""
    return strategy.filter(_Predicate(test))
