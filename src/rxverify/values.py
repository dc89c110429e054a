"""Checked option values: the numbers, ports, times and identities a user types.

One converter per kind of value, shared by the `rxverify` command, the pytest plugin and the
Locust options, so `--examples 0`, `--scale nan` or `--port-old 99999` is answered alike
everywhere: one line naming the option and what it expects, exit code 2. A converter takes
the text as typed and returns the value or raises `BadValue`; `checked` turns that into a
UserError naming the option, `argtype` into the error argparse prints for a `type=`.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from rxverify.errors import UserError
from rxverify.safety.identity import find_identities

T = TypeVar("T")
MAX_PORT = 65535
MAX_SEED = 2**63 - 1  # hypothesis takes any integer; a seed beyond 63 bits is a typing slip


class BadValue(ValueError):
    """A value that is not what its option expects (the message says what it expects)."""


def _whole(text: Any) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise BadValue(f"{text!r} is not a whole number") from None


def _finite(text: Any) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise BadValue(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise BadValue(f"{text!r} is not a finite number")
    return value


def _within(value: T, text: Any, fits: Callable[[T], bool], expected: str) -> T:
    if not fits(value):
        raise BadValue(f"{text!r} is not {expected}")
    return value


def positive_int(text: Any) -> int:
    """A whole number of at least 1 (counts: examples, workers, steps)."""
    return _within(_whole(text), text, lambda v: v >= 1, "a whole number of at least 1")


def non_negative_int(text: Any) -> int:
    """A whole number of at least 0 (a count where 0 means the default)."""
    return _within(_whole(text), text, lambda v: v >= 0, "a whole number of at least 0")


def seed(text: Any) -> int:
    """A seed: a whole number from 0 to 2**63 - 1."""
    return _within(_whole(text), text, lambda v: 0 <= v <= MAX_SEED, "a seed (a whole number from 0 to 2**63-1)")


def port(text: Any) -> int:
    """A TCP port, 0 (a free one) to 65535."""
    return _within(_whole(text), text, lambda v: 0 <= v <= MAX_PORT, f"a port (0 for a free one, up to {MAX_PORT})")


def positive_number(text: Any) -> float:
    """A finite number above 0 (scale factors, seconds per step)."""
    return _within(_finite(text), text, lambda v: v > 0, "a number above 0")


def non_negative_number(text: Any) -> float:
    """A finite number of at least 0 (a duration where 0 means the default)."""
    return _within(_finite(text), text, lambda v: v >= 0, "a number of at least 0")


def instant(text: Any) -> datetime:
    """An ISO 8601 date or time as an aware UTC datetime (naive means UTC)."""
    try:
        value = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadValue(f"{text!r} is not an ISO 8601 date or time") from None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def iso_date(text: Any) -> date:
    """An ISO 8601 date (YYYY-MM-DD)."""
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise BadValue(f"{text!r} is not an ISO 8601 date (YYYY-MM-DD)") from None


_WRITTEN_NUMBER = re.compile(r"\d{8}[-+]?\d{4}")


def personal_number(text: Any) -> str:
    """A personal identity or coordination number as 12 digits (YYYYMMDDNNNN or YYYYMMDD-NNNN), checked.

    Only the century-first forms: a 10-digit number leaves its century to a guess, and a filter
    that guessed wrong would silently show nothing.
    """
    written = str(text).strip()
    found = find_identities(written) if _WRITTEN_NUMBER.fullmatch(written) else []
    if len(found) != 1 or found[0].text != written:
        raise BadValue("is not a personal identity number (12 digits, YYYYMMDDNNNN or YYYYMMDD-NNNN, Luhn-valid)")
    return found[0].twelve


def one_of(names: Iterable[str]) -> Callable[[Any], str]:
    """A converter that accepts only `names` (and says which there are)."""
    known = tuple(names)

    def convert(text: Any) -> str:
        if text not in known:
            raise BadValue(f"{text!r} is not one of {', '.join(known)}")
        return str(text)

    convert.__name__ = "one_of"
    return convert


def checked(option: str, convert: Callable[[Any], T], text: Any) -> T:
    """`convert(text)`, or a UserError naming `option` and what it expects."""
    try:
        return convert(text)
    except BadValue as exc:
        shown = str(exc)
        # a message that does not start with the value quotes it (an identity is never repeated back)
        raise UserError(f"{option}: {shown}" if shown.startswith("'") else f"{option} {shown}") from None


def argtype(convert: Callable[[Any], T]) -> Callable[[Any], T]:
    """`convert` as an argparse `type=`: a bad value is argparse's one-line error with our message."""

    def parse(text: Any) -> T:
        try:
            return convert(text)
        except BadValue as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = convert.__name__
    return parse
