"""XSD regular expressions as JSON Schema (ECMA-262) patterns, with the same meaning.

The two dialects look alike and differ where it matters:
- an XSD pattern matches the whole value (implicitly anchored); ECMA's `pattern` searches, so the
  translation anchors it: `^(?:...)$`;
- `^` and `$` are ordinary characters in XSD and anchors in ECMA: they are escaped;
- `.` is any character but newline and carriage return in XSD; ECMA's also excludes U+2028 and
  U+2029, and Python's `re` (which schemathesis generates from) only newline: it is written as
  the explicit class;
- `\\s` is exactly space, tab, newline and carriage return in XSD, wider in ECMA and Python: written out;
- `\\d` is every Unicode decimal digit in XSD; JSON Schema tools disagree on it (ECMA: ASCII only,
  jsonschema-rs: Unicode), so it is written as [0-9]: a narrowing, on the side of caution;
- an XSD value is made of XML characters only: every negated class and `.` also exclude the C0
  controls XML 1.0 cannot carry, so no generated value is one XML cannot write;
- `(` opens a plain group in both; here a non-capturing one, so nothing reads as a back-reference.
What has no faithful ECMA form (class subtraction `[a-z-[aeiou]]`, `\\i`, `\\c`, `\\w`, `\\p{..}`)
is refused with a ValueError naming the construct: no pattern is silently widened or dropped.
"""

from __future__ import annotations

# characters XML 1.0 cannot carry (besides the surrogates, which no generated text holds)
NOT_XML = r"\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff"
DOT = rf"[^\n\r{NOT_XML}]"
SPACE = r" \t\n\r"
ANY_XML_TEXT = rf"^[^{NOT_XML}]*$"  # a string restricted by nothing but XML itself
_SINGLE = set("nrt\\|.-^?*+{}()[]")
_UNSUPPORTED = {"i", "I", "c", "C", "w", "W", "p", "P"}


def _escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    """The ECMA form of the escape at pattern[i] (a backslash), and the index after it."""
    if i + 1 >= len(pattern):
        raise ValueError(f"pattern {pattern!r} ends in a lone backslash")
    c = pattern[i + 1]
    if c in _SINGLE:
        return "\\" + c, i + 2
    if c == "d":
        return ("0-9" if in_class else "[0-9]"), i + 2
    if c == "s":
        return (SPACE if in_class else f"[{SPACE}]"), i + 2
    if not in_class and c == "D":
        return f"[^0-9{NOT_XML}]", i + 2
    if not in_class and c == "S":
        return f"[^{SPACE}{NOT_XML}]", i + 2
    if c in _UNSUPPORTED or c in "DS":
        raise ValueError(f"pattern {pattern!r}: \\{c} has no faithful JSON Schema form here")
    raise ValueError(f"pattern {pattern!r}: \\{c} is not an XSD escape")


def _class(pattern: str, i: int) -> tuple[str, int]:
    """The ECMA form of the character class opening at pattern[i], and the index after it."""
    out = ["["]
    i += 1
    negated = i < len(pattern) and pattern[i] == "^"
    if negated:
        out.append("^")
        i += 1
    first = True
    while i < len(pattern):
        c = pattern[i]
        if c == "]" and not first:
            if negated:
                out.append(NOT_XML)
            out.append("]")
            return "".join(out), i + 1
        if c == "\\":
            piece, i = _escape(pattern, i, in_class=True)
            out.append(piece)
        elif c == "-" and i + 1 < len(pattern) and pattern[i + 1] == "[":
            raise ValueError(f"pattern {pattern!r}: class subtraction has no JSON Schema form")
        elif c == "[":
            out.append("\\[")
            i += 1
        else:
            out.append(c)
            i += 1
        first = False
    raise ValueError(f"pattern {pattern!r}: a character class is not closed")


def to_ecma(pattern: str) -> str:
    """The JSON Schema pattern matching exactly the values the XSD pattern matches (anchored)."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            piece, i = _escape(pattern, i, in_class=False)
        elif c == "[":
            piece, i = _class(pattern, i)
        elif c == ".":
            piece, i = DOT, i + 1
        elif c in "^$":
            piece, i = "\\" + c, i + 1
        elif c == "(":
            piece, i = "(?:", i + 1
        else:
            piece, i = c, i + 1
        out.append(piece)
    return f"^(?:{''.join(out)})$"
