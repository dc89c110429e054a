"""A server's CapabilityStatement against the contract's: what the contract declares and the server does not.

http.html#capabilities: GET [base]/metadata "retrieve[s] a server's Capability Statement that
defines how it supports resources". capabilitystatement-kind: `instance`: "The
CapabilityStatement instance represents the present capabilities of a specific system instance.
This is the kind returned by /metadata for a FHIR server end-point." The contract's statement
(kind `requirements`) says what the server must do; each thing it declares is one Requirement,
and the server's statement must declare it too (it may declare more).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INSTANCE_KIND = "instance"


@dataclass(frozen=True)
class Requirement:
    """One thing the contract's CapabilityStatement declares: a resource, an interaction, a search parameter, ..."""

    kind: str  # resource | interaction | search-param | operation | profile | format | fhir-version
    resource: str | None
    name: str
    detail: str = ""  # a search parameter's type, an operation's definition

    @property
    def id(self) -> str:
        """A readable id (a test's parametrize id)."""
        where = f"{self.resource}:" if self.resource else ""
        return f"{where}{self.kind}:{self.name}"

    def missing(self) -> str:
        """The failure when the server does not declare it."""
        on = f" on {self.resource}" if self.resource else ""
        what = {
            "resource": f"the resource type {self.name}",
            "interaction": f"the interaction {self.name}",
            "search-param": f"search parameter {self.name} ({self.detail})",
            "operation": f"the operation ${self.name} ({self.detail})",
            "profile": f"the supported profile {self.name}",
            "format": f"the format {self.name}",
            "fhir-version": f"fhirVersion {self.name}",
        }[self.kind]
        return f"the server's CapabilityStatement does not declare {what}{on} (the contract's does)"


def _server_rest(statement: dict[str, Any]) -> dict[str, Any]:
    for rest in statement.get("rest") or []:
        if isinstance(rest, dict) and rest.get("mode") == "server":
            return rest
    return {}


def _resources(rest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["type"]: r for r in rest.get("resource") or [] if isinstance(r, dict) and isinstance(r.get("type"), str)}


def requirements(contract: dict[str, Any]) -> list[Requirement]:
    """Everything the contract's CapabilityStatement declares, one Requirement each."""
    out = [Requirement("fhir-version", None, str(contract.get("fhirVersion")))]
    out += [Requirement("format", None, str(f)) for f in contract.get("format") or []]
    rest = _server_rest(contract)
    for interaction in rest.get("interaction") or []:
        out.append(Requirement("interaction", None, str(interaction.get("code"))))
    for operation in rest.get("operation") or []:
        out.append(Requirement("operation", None, str(operation.get("name")), str(operation.get("definition", ""))))
    for rtype, resource in _resources(rest).items():
        out.append(Requirement("resource", rtype, rtype))
        out += [Requirement("interaction", rtype, str(i.get("code"))) for i in resource.get("interaction") or []]
        for param in resource.get("searchParam") or []:
            out.append(Requirement("search-param", rtype, str(param.get("name")), str(param.get("type", ""))))
        for op in resource.get("operation") or []:
            out.append(Requirement("operation", rtype, str(op.get("name")), str(op.get("definition", ""))))
        profiles = [resource.get("profile"), *(resource.get("supportedProfile") or [])]
        for url in dict.fromkeys(p for p in profiles if isinstance(p, str)):
            out.append(Requirement("profile", rtype, url))
    return out


def declares(server: dict[str, Any], requirement: Requirement) -> bool:
    """Whether the server's CapabilityStatement declares the requirement."""
    if requirement.kind == "fhir-version":
        return server.get("fhirVersion") == requirement.name
    if requirement.kind == "format":
        return requirement.name in (server.get("format") or [])
    rest = _server_rest(server)
    if requirement.resource is None:
        key = "interaction" if requirement.kind == "interaction" else "operation"
        field = "code" if key == "interaction" else "name"
        return any(isinstance(x, dict) and x.get(field) == requirement.name for x in rest.get(key) or [])
    resource = _resources(rest).get(requirement.resource)
    if resource is None:
        return False
    if requirement.kind == "resource":
        return True
    if requirement.kind == "interaction":
        return any(isinstance(i, dict) and i.get("code") == requirement.name for i in resource.get("interaction") or [])
    if requirement.kind == "search-param":
        return any(
            isinstance(p, dict) and p.get("name") == requirement.name and p.get("type") == requirement.detail
            for p in resource.get("searchParam") or []
        )
    if requirement.kind == "operation":
        return any(isinstance(o, dict) and o.get("name") == requirement.name for o in resource.get("operation") or [])
    profiles = [resource.get("profile"), *(resource.get("supportedProfile") or [])]
    return requirement.name in profiles


def statement_problems(answer: Any) -> list[str]:
    """Why an answer to GET [base]/metadata is not a server's CapabilityStatement (empty when it is one)."""
    if not isinstance(answer, dict):
        return ["GET [base]/metadata answered no JSON object, not a CapabilityStatement"]
    rtype = answer.get("resourceType")
    if rtype != "CapabilityStatement":
        what = f"a {rtype}" + (f" ({answer['type']})" if isinstance(answer.get("type"), str) else "")
        return [f"GET [base]/metadata answered {what}, not a CapabilityStatement (http.html#capabilities)"]
    problems = []
    if answer.get("kind") != INSTANCE_KIND:
        problems.append(
            f"GET [base]/metadata answered a CapabilityStatement of kind {answer.get('kind')!r}: /metadata answers "
            "kind 'instance' (capabilitystatement-kind: 'This is the kind returned by /metadata for a FHIR server "
            "end-point')"
        )
    if not _server_rest(answer):
        problems.append("the server's CapabilityStatement has no rest entry of mode server")
    return problems


def gaps(server: dict[str, Any], contract: dict[str, Any]) -> list[str]:
    """Every failure of the server's statement against the contract's: what it is, then what it lacks."""
    problems = statement_problems(server)
    if problems and server.get("resourceType") != "CapabilityStatement":
        return problems
    return problems + [r.missing() for r in requirements(contract) if not declares(server, r)]
