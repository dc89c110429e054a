"""Swedish personal identity numbers: recognise, check and mask them wherever they appear.

Personnummer YYYYMMDD-NNNC (DOMAIN.md): the check digit C is Luhn (weights 2,1) over the
10-digit form; `+` instead of `-` from age 100; a samordningsnummer has day + 60. A number
with a wrong check digit is not an identity, so negative tests use such numbers.

What counts as "written" is wider than the agency's two forms, because a server may read more
than it documents (fail closed): 12 or 10 digits, the date and the birth number joined by
nothing, `-`, `+`, a space (also a non-breaking one), an en or em dash (any Unicode dash), `.`
or `/`; and any Unicode character a server could normalise to an ASCII digit or separator
(fullwidth, Arabic-Indic and other decimal digits, superscripts) counts as that character.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

SEPARATORS = "-+ ./"  # between the date and the birth number, after normalisation
# 12 digits (century first) or 10 digits, with one separator or none, not inside a longer run of
# digits.
CANDIDATE = re.compile(r"(?<!\d)(?:(1[89]|20)(\d{6})([-+ ./]?)(\d{4})|(\d{6})([-+ ./]?)(\d{4}))(?!\d)")
# Texts are scanned once normalised (every decimal digit folded to ASCII), so [0-9] is \\d there;
# spelled out, six classes in a row let the regex engine skip ahead (twice as fast as \\d{6,}).
_SIX_DIGITS = re.compile(r"[0-9][0-9][0-9][0-9][0-9][0-9]+")  # every candidate starts with one
# UUIDs are masked before scanning: their hex groups hold digit runs that look like numbers.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# the same UUIDs found from their first hyphen (a literal the engine searches for): a pass over a
# text without UUIDs costs a twentieth of _UUID's
_UUID_FROM_HYPHEN = re.compile(r"-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_UUID_MASK = "#" * 36  # same length, so positions in the scanned text are those of the original


@lru_cache(maxsize=4096)
def _fold(ch: str) -> str:
    """The ASCII digit or separator a server could read `ch` as, or `ch` itself (one character)."""
    digit = unicodedata.decimal(ch, None)
    if digit is not None:
        return str(digit)
    category = unicodedata.category(ch)
    if category == "Pd" or ch == "\u2212":  # every dash, and the minus sign
        return "-"
    if category == "Zs":  # every space: no-break, narrow, figure, ...
        return " "
    folded = unicodedata.normalize("NFKC", ch)
    if len(folded) == 1 and folded.isascii() and (folded.isdigit() or folded in SEPARATORS):
        return folded  # superscript and circled digits, fullwidth + . /
    return ch


class _FoldTable(dict[int, str]):
    """str.translate's table of _fold, filled in as characters are met."""

    def __missing__(self, code: int) -> str:
        folded = _fold(chr(code))
        self[code] = folded
        return folded


_FOLD = _FoldTable()


def normalise(text: str) -> str:
    """`text` with every character a server could read as an ASCII digit or separator replaced by it.

    One character for one, so positions in the result are positions in `text`.
    """
    if text.isascii():
        return text
    return text.translate(_FOLD)


def luhn_ok(ten: str) -> bool:
    """Whether the last of ten digits is the Luhn check digit of the first nine."""
    total = 0
    for i, ch in enumerate(ten):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def check_digit(nine: str) -> str:
    """The Luhn check digit for nine digits (YYMMDDNNN)."""
    total = 0
    for i, ch in enumerate(nine):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def _plausible(mmdd: str) -> bool:
    month, day = int(mmdd[:2]), int(mmdd[2:])
    return 1 <= month <= 12 and (1 <= day <= 31 or 61 <= day <= 91)


@dataclass(frozen=True)
class Found:
    """An identity number found in some text."""

    text: str  # as written (in the original text, before normalisation)
    twelve: str  # canonical 12 digits
    kind: str  # personnummer or samordningsnummer
    start: int = 0  # where it is written in the text scanned
    end: int = 0

    @property
    def masked(self) -> str:
        """Safe to print: century, year and the last two digits hidden."""
        return mask(self.twelve)


def mask(number: str) -> str:
    """Mask an identity for messages and reports: only the first two and last two digits remain."""
    digits = re.sub(r"\D", "", normalise(number))
    return digits[:2] + "*" * max(len(digits) - 4, 0) + digits[-2:] if len(digits) > 4 else "****"


def _century(yy: int, separator: str, today: date) -> int:
    # A 10-digit number without a century: the person is under 100 unless written with '+'.
    century = today.year // 100 * 100
    year = century + yy
    if year > today.year:
        year -= 100
    if separator == "+":
        year -= 100
    return year // 100


def candidates(text: str) -> Iterator[re.Match[str]]:
    """The matches of CANDIDATE in (normalised) `text`, as CANDIDATE.finditer gives them, at a fraction of its cost.

    A candidate starts where a run of six or more digits starts (its `(?<!\\d)`) and ends in a run
    of exactly four digits or with its own run, so one match attempt per such run finds them all.
    """
    for run in _SIX_DIGITS.finditer(text):
        found = CANDIDATE.match(text, run.start())
        if found is not None:
            yield found


def might_hold_identity(text: str) -> bool:
    """Cheap pre-check: False only when `text` cannot hold an identity in any written form."""
    return _SIX_DIGITS.search(text if text.isascii() else normalise(text)) is not None


def mask_uuids(text: str) -> str:
    """`text` with every UUID replaced by as many `#` (what `_UUID.sub(_UUID_MASK, text)` gives, faster)."""
    if "-" not in text:
        return text
    pieces: list[str] = []
    done = 0  # end of the last UUID masked: a UUID's first group starts at or after it
    for m in _UUID_FROM_HYPHEN.finditer(text):
        start = m.start() - 8
        if start < done or not _HEX8.fullmatch(text, start, m.start()):
            continue
        pieces += (text[done:start], _UUID_MASK)
        done = m.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def find_identities(text: str, today: date | None = None) -> list[Found]:
    """Every formally valid (plausible date, Luhn check digit) identity number in `text`, in any written form."""
    scanned = text if text.isascii() else text.translate(_FOLD)
    runs = _SIX_DIGITS.search(scanned)
    if runs is None:
        return []
    scanned = mask_uuids(scanned)  # a UUID is 36 characters, hyphens included
    found: list[Found] = []
    for m in candidates(scanned):
        if m.group(2) is not None:
            century, rest, tail = m.group(1), m.group(2), m.group(4)
            ten = rest + tail
        else:
            rest6, sep, tail = m.group(5), m.group(6), m.group(7)
            ten = rest6 + tail
            century = str(_century(int(rest6[:2]), sep, today or date.today()))
        if not _plausible(ten[2:6]) or not luhn_ok(ten):
            continue
        twelve = century + ten
        kind = "samordningsnummer" if int(ten[4:6]) > 60 else "personnummer"
        found.append(Found(text[m.start() : m.end()], twelve, kind, m.start(), m.end()))
    return found


def mask_identities(text: str) -> str:
    """`text` with every valid identity number in it masked (for messages and reports)."""
    found = find_identities(text)
    for hit in reversed(found):  # from the end, so earlier positions stay right
        text = text[: hit.start] + mask(hit.twelve) + text[hit.end :]
    return text
