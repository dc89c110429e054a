"""Which contract operation a request is: (method, URL) -> operationId, from the contracts.

The old interface's operations are its SOAP endpoints, read from contracts/riv (every one a POST;
whether it writes is services.toml's to say); the FHIR API's come from contracts/openapi/fhir.yaml.

The guard asks this on every write and, on a production target, on every request, so the path
templates are compiled once per method into one alternation and answers are cached by
(method, path).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

import yaml

from rxverify.contracts.riv import Service, load_riv
from rxverify.errors import UserError
from rxverify.target.targets import Endpoints

METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FHIR_CONTRACT = "fhir.yaml"  # contracts/openapi/: the FHIR API of the new platform (Endpoints.fhir)
CACHE_LIMIT = 65_536  # distinct (method, path) answers kept; cleared when full (ids make URLs unbounded)
_PARAM = re.compile(r"\{([^}/]+)\}")


@dataclass(frozen=True)
class Operation:
    """One operation of a contract."""

    operation_id: str
    method: str  # upper case
    template: str  # path template relative to the API's base URL, e.g. /patienter/{personId}
    api: str  # legacy | fhir
    roles: tuple[str, ...]  # x-roles: ticket roles that may call it
    writes: bool | None = None  # whether it changes state, where the contract says (services.toml); else by method
    service: Service | None = field(default=None, compare=False, repr=False)  # the old interface's: its WSDL/XSD

    @property
    def is_write(self) -> bool:
        """Whether it changes state (and so goes to the ledger)."""
        return self.writes if self.writes is not None else self.method in WRITES

    @property
    def path_params(self) -> tuple[str, ...]:
        """The names of the template's path parameters."""
        return tuple(_PARAM.findall(self.template))


def _read_contract(path: Path, api: str) -> list[Operation]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read contract {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"contract {path} is not valid YAML: {exc}") from None
    operations = []
    for template, item in (document.get("paths") or {}).items():
        for method in METHODS:
            op = (item or {}).get(method)
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            roles = tuple(op.get("x-roles") or ("prescriber", "pharmacy"))
            operations.append(Operation(str(op["operationId"]), method.upper(), str(template), api, roles))
    return operations


def _legacy_operations(contracts: Path) -> list[Operation]:
    riv = load_riv(contracts)
    return [Operation(s.operation_id, "POST", s.endpoint, "legacy", s.roles, s.writes, s)
            for s in riv.services.values()]


@lru_cache(maxsize=8)
def load_operations(contracts: Path) -> Mapping[str, Operation]:
    """Every operation of the old interface (contracts/riv) and (if present) of fhir.yaml, by operationId."""
    found: dict[str, Operation] = {op.operation_id: op for op in _legacy_operations(contracts)}
    path = contracts / "openapi" / FHIR_CONTRACT
    if path.is_file():
        for op in _read_contract(path, "fhir"):
            found[op.operation_id] = op
    return found


def _template_regex(template: str) -> str:
    pieces = _PARAM.split(template)
    # even pieces are literal text, odd ones parameter names: a parameter is one path segment
    return "".join(re.escape(p) if i % 2 == 0 else "[^/]+" for i, p in enumerate(pieces))


def _specificity(op: Operation) -> tuple[int, int]:
    # literal segments win over parameters: /MedicationRequest/$monitoring before /MedicationRequest/{id}
    return (-len(_PARAM.sub("", op.template)), len(op.path_params))


class OperationIndex:
    """Maps a request's (method, URL) to its operationId for the base URLs of one target."""

    def __init__(self, operations: Iterable[Operation], bases: Mapping[str, Iterable[str]]) -> None:
        operations = list(operations)
        self._ids: dict[str, str] = {}
        self._writes = {op.operation_id: op.is_write for op in operations}
        self._by_method: dict[str, re.Pattern[str]] = {}
        alternatives: dict[str, list[str]] = {}
        for op in sorted(operations, key=_specificity):
            for base in bases.get(op.api, ()):
                group = f"_{len(self._ids)}"
                self._ids[group] = op.operation_id
                regex = re.escape(base.rstrip("/")) + _template_regex(op.template)
                alternatives.setdefault(op.method, []).append(f"(?P<{group}>{regex})")
        for method, alts in alternatives.items():
            self._by_method[method] = re.compile("|".join(alts) + r"\Z")
        self._cache: dict[tuple[str, str], str | None] = {}

    @classmethod
    def for_endpoints(cls, contracts: Path, endpoints: Iterable[Endpoints]) -> OperationIndex:
        """The index of the contracts for the given platforms' base URLs."""
        bases: dict[str, list[str]] = {"legacy": [], "fhir": []}
        for e in endpoints:
            if e.legacy:
                bases["legacy"].append(e.legacy)
            if e.fhir:
                bases["fhir"].append(e.fhir)
        return cls(load_operations(contracts).values(), bases)

    def is_write(self, method: str, url: str) -> bool:
        """Whether a request changes state: its operation's say (services.toml), or outside the contracts its method."""
        operation = self.operation_of(method, url)
        return self._writes.get(operation, method.upper() in WRITES) if operation else method.upper() in WRITES

    def operation_of(self, method: str, url: str) -> str | None:
        """The operationId of a request, or None when no contract operation matches."""
        path = url.split("?", 1)[0].split("#", 1)[0]
        key = (method, path)
        try:
            return self._cache[key]
        except KeyError:
            pass
        pattern = self._by_method.get(method.upper())
        match = pattern.match(unquote(path) if "%" in path else path) if pattern else None
        found = self._ids[match.lastgroup] if match and match.lastgroup else None
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = found
        return found
