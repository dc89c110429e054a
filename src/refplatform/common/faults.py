"""The fault catalogue: switchable regressions that `tests/power` uses to prove the suite's power.

A fault is switched on at start (`--fault NAME`, several allowed). Code asks `faults.on(NAME)`
at the exact place the regression lives.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    """One seeded regression."""

    name: str
    platform: str  # "old", "new" or "both"
    kind: str  # mapping, fhir-conformance, behaviour, security, performance, wire
    description: str


CATALOGUE: dict[str, Fault] = {}


def register(name: str, platform: str, kind: str, description: str) -> Fault:
    """Add a fault to the catalogue (at import of the module that implements it)."""
    fault = Fault(name, platform, kind, description)
    CATALOGUE[name] = fault
    return fault


class UnknownFault(ValueError):
    """A fault name that is not in the catalogue."""


class FaultSet:
    """The faults switched on for one running platform."""

    def __init__(self, names: list[str] | tuple[str, ...] = ()) -> None:
        unknown = [n for n in names if n not in CATALOGUE]
        if unknown:
            known = ", ".join(sorted(CATALOGUE)) or "none"
            raise UnknownFault(f"unknown fault {unknown[0]!r} (known: {known})")
        self.names = frozenset(names)

    def on(self, name: str) -> bool:
        """Whether fault `name` is switched on."""
        if name not in CATALOGUE:  # a typo in platform code must not silently disable a fault
            raise UnknownFault(f"fault {name!r} is checked but not registered")
        return name in self.names
