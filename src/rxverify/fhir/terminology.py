"""ValueSet expansion, offline: the package's terminology first, then the R4 base's.

compose.include of concept lists, of whole CodeSystems, of other ValueSets, with the `is-a`,
`descendent-of`, `is-not-a` and `=` on `concept` filters over a CodeSystem's hierarchy;
compose.exclude likewise. A ValueSet that needs a code system no package ships (UCUM, BCP-47,
BCP-13 mime types, ISO 4217, SNOMED CT, LOINC, ...) or a filter on another property cannot be
expanded here: its expansion is None with the reason, and the validator says so instead of
pretending (HL7's validator, without a terminology server, does the same).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rxverify.errors import UserError
from rxverify.fhir.base import BaseIndex, CodeSystemIndex, code_system_index
from rxverify.fhir.package import Package

Codes = frozenset[tuple[str, str]]


class NotExpandable(Exception):
    """The ValueSet needs content no package here has."""


@dataclass(frozen=True)
class Expansion:
    """The (system, code) pairs of a ValueSet, or why it has none here."""

    url: str
    codes: Codes | None
    reason: str = ""
    case_insensitive: frozenset[str] = frozenset()  # systems whose codes compare without case

    def contains(self, system: str | None, code: str) -> bool:
        """Whether (system, code) is in the expansion (system None: any system)."""
        assert self.codes is not None
        if system is None:
            return any(c == code for _, c in self.codes)
        if (system, code) in self.codes:
            return True
        if system in self.case_insensitive:
            folded = code.lower()
            return any(s == system and c.lower() == folded for s, c in self.codes)
        return False


class Terminology:
    """Expands ValueSets of a package over its CodeSystems and the base's; results are cached."""

    def __init__(self, package: Package, base: BaseIndex) -> None:
        self.package = package
        self.base = base
        self._expansions: dict[str, Expansion] = {}

    def code_system(self, url: str) -> CodeSystemIndex | None:
        """A CodeSystem by canonical url (the package's own, else the base's)."""
        local = self.package.find(url)
        if local is not None and local.get("resourceType") == "CodeSystem":
            return code_system_index(local)
        return self.base.code_systems.get(url.split("|", 1)[0])

    def value_set(self, url: str) -> dict[str, Any] | None:
        """A ValueSet by canonical url (the package's, else the base's)."""
        local = self.package.find(url)
        if local is not None and local.get("resourceType") == "ValueSet":
            return local
        return self.base.value_sets.get(url.split("|", 1)[0])

    def expand(self, url: str, referrer: str = "") -> Expansion:
        """The expansion of a ValueSet; a UserError when no package has the ValueSet at all."""
        found = self._expansions.get(url)
        if found is not None:
            return found
        value_set = self.value_set(url)
        if value_set is None:
            by = f" (referenced by {referrer})" if referrer else ""
            raise UserError(f"FHIR package {self.package.source} and the R4 base have no ValueSet {url}{by}")
        self._expansions[url] = Expansion(url, None, "expansion in progress (a ValueSet including itself)")
        insensitive: set[str] = set()
        try:
            codes = self._codes(value_set, url, insensitive, (url,))
            result = Expansion(url, frozenset(codes), case_insensitive=frozenset(insensitive))
        except NotExpandable as exc:
            result = Expansion(url, None, str(exc))
        self._expansions[url] = result
        return result

    def _codes(
        self, value_set: dict[str, Any], url: str, insensitive: set[str], trail: tuple[str, ...]
    ) -> set[tuple[str, str]]:
        compose = value_set.get("compose")
        contains = (value_set.get("expansion") or {}).get("contains")
        if not compose and contains:
            return set(_flatten(contains))
        if not compose:
            raise NotExpandable(f"ValueSet {url} has neither compose nor expansion")
        codes: set[tuple[str, str]] = set()
        for include in compose.get("include", []):
            codes |= self._include(include, url, insensitive, trail)
        for exclude in compose.get("exclude", []):
            codes -= self._include(exclude, url, insensitive, trail)
        return codes

    def _include(
        self, include: dict[str, Any], url: str, insensitive: set[str], trail: tuple[str, ...]
    ) -> set[tuple[str, str]]:
        system = include.get("system")
        codes: set[tuple[str, str]] | None = None
        if system:
            if include.get("concept"):
                codes = {(system, str(c["code"])) for c in include["concept"] if "code" in c}
            else:
                version = include.get("version")
                code_system = self.code_system(f"{system}|{version}" if version else system)
                if code_system is None:
                    raise NotExpandable(f"code system {system} is not in any package here")
                if code_system.content not in ("complete", "supplement") and code_system.parents == {}:
                    raise NotExpandable(f"code system {system} is published without its codes")
                if not code_system.case_sensitive:
                    insensitive.add(system)
                selected = set(code_system.parents)
                for rule in include.get("filter", []):
                    selected &= _filter(code_system, rule, url)
                codes = {(system, code) for code in selected}
        for other in include.get("valueSet", []):
            if other in trail:
                raise NotExpandable(f"ValueSet {url} includes itself through {other}")
            target = self.value_set(other)
            if target is None:
                raise NotExpandable(f"ValueSet {other} (included by {url}) is not in any package here")
            imported = self._codes(target, other, insensitive, (*trail, other))
            codes = imported if codes is None else codes & imported
        return codes or set()


def _descendants(code_system: CodeSystemIndex, code: str) -> set[str]:
    children: dict[str, list[str]] = {}
    for child, parents in code_system.parents.items():
        for parent in parents:
            children.setdefault(parent, []).append(child)
    found, stack = set(), [code]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _filter(code_system: CodeSystemIndex, rule: dict[str, Any], url: str) -> set[str]:
    prop, op, value = rule.get("property"), rule.get("op"), str(rule.get("value", ""))
    if prop != "concept" and not (prop == "code" and op == "="):
        raise NotExpandable(f"ValueSet {url} filters on {prop} {op}: not evaluated offline")
    if op == "is-a":
        return {value} & set(code_system.parents) | _descendants(code_system, value)
    if op == "descendent-of":
        return _descendants(code_system, value)
    if op == "is-not-a":
        return set(code_system.parents) - {value} - _descendants(code_system, value)
    if op == "=":
        return {value} & set(code_system.parents)
    raise NotExpandable(f"ValueSet {url} uses the filter op {op}: not evaluated offline")


def _flatten(contains: list[dict[str, Any]]) -> Iterable[tuple[str, str]]:
    for entry in contains:
        if "code" in entry:
            yield str(entry.get("system", "")), str(entry["code"])
        yield from _flatten(entry.get("contains", []))
