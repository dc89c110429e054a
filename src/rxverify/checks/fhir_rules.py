"""FHIR rules: every resource the new platform returns conforms to its profiles, errors are OperationOutcomes."""

from __future__ import annotations

import json
from typing import Any

from schemathesis import Case, CheckContext, Response

from rxverify.checks.failures import RuleViolation
from rxverify.fhir.validator import Issue, validator_for


def _resources(body: Any) -> list[dict[str, Any]]:
    """The resources of an answer: the resource itself, or a Bundle's entries."""
    if not isinstance(body, dict) or "resourceType" not in body:
        return []
    if body["resourceType"] == "Bundle":
        return [
            e["resource"] for e in body.get("entry", []) if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]
    return [body]


def profile_errors(resource: dict[str, Any]) -> list[Issue]:
    """The errors of one resource against its profiles (meta.profile or the CapabilityStatement's)."""
    return [i for i in validator_for().validate(resource) if i.severity == "error"]


def fhir_profile_conformance(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every resource a 2xx FHIR answer carries validates against its profile without errors."""
    if not 200 <= response.status_code < 300:
        return None
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        return None
    for resource in _resources(body):
        if resource.get("resourceType") in ("CapabilityStatement", "OperationOutcome"):
            continue
        errors = profile_errors(resource)
        if errors:
            shown = "\n".join(f"  {i.severity} {i.code} at {i.location}: {i.message}" for i in errors[:10])
            raise RuleViolation(
                rule="fhir_profile",
                operation=case.operation.label,
                message=f"{resource['resourceType']}/{resource.get('id', '?')} breaks its profile "
                f"({len(errors)} error{'s' if len(errors) != 1 else ''}):\n{shown}",
                context={"issues": [i.__dict__ for i in errors[:50]]},
            )
    return None


def errors_are_operation_outcomes(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every FHIR error answer is an OperationOutcome with an error issue, as application/fhir+json."""
    if response.status_code < 400:
        return None
    content_type = next((v for k, v in response.headers.items() if k.lower() == "content-type"), [""])
    ctype = (content_type[0] if isinstance(content_type, list) else str(content_type)).split(";")[0].strip()
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        body = None
    ok = (
        isinstance(body, dict)
        and body.get("resourceType") == "OperationOutcome"
        and any(isinstance(i, dict) and i.get("severity") in ("error", "fatal") for i in body.get("issue", []))
    )
    if not ok or ctype != "application/fhir+json":
        raise RuleViolation(
            rule="fhir_errors_are_operation_outcomes",
            operation=case.operation.label,
            message=f"Received status {response.status_code} as {ctype or 'no content type'} with body "
            f"{(response.content or b'')[:200]!r}; FHIR declares an OperationOutcome (application/fhir+json)",
        )
    return None


FHIR_CHECKS = [fhir_profile_conformance, errors_are_operation_outcomes]
