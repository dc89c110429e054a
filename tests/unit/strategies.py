"""Strategies for the suite's own tests: identities that are NOT test patients, made, never written out."""

from __future__ import annotations

from datetime import date

from hypothesis import strategies as st

from rxverify.safety.identity import check_digit
from rxverify.safety.registry import Registry


@st.composite
def foreign_identities(draw: st.DrawFn, registry: Registry) -> str:
    """A formally valid 12-digit identity (personnummer or samordningsnummer) outside the registry."""
    born = draw(st.dates(min_value=date(1910, 1, 1), max_value=date(2025, 12, 31)))
    coordination = draw(st.booleans())
    day = born.day + (60 if coordination else 0)
    serial = draw(st.integers(0, 999))
    nine = f"{born.year % 100:02d}{born.month:02d}{day:02d}{serial:03d}"
    twelve = f"{born.year // 100}{nine}{check_digit(nine)}"
    if twelve in registry:
        from hypothesis import reject

        reject()
    return twelve


def written(twelve: str, style: str) -> str:
    """`twelve` as a caller might write it: 12 or 10 digits, with '-', '+' or no separator."""
    year = int(twelve[:4])
    if style == "12":
        return twelve
    if style == "12-":
        return f"{twelve[:8]}-{twelve[8:]}"
    sep = "+" if date.today().year - year >= 100 else "-"
    if style == "10sep":
        return f"{twelve[2:8]}{sep}{twelve[8:]}"
    return twelve[2:]  # "10": no separator (only unambiguous under 100)
