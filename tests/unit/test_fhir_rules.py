"""The FHIR checks fail on a broken answer and pass on a correct one."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import Response

from rxverify.checks.failures import RuleViolation
from rxverify.checks.fhir_rules import errors_are_operation_outcomes, fhir_profile_conformance

from .conftest import CONTRACTS

SCHEMA = schemathesis.openapi.from_path(CONTRACTS / "openapi" / "fhir.yaml")
EXAMPLE = json.loads(
    (CONTRACTS / "fhir" / "examples" / "MedicationRequest-3f2504e0-4f89-41d3-9a0c-0305e82c3301.json").read_text(
        encoding="utf-8"
    )
)


def _response(status: int, body: Any, content_type: str = "application/fhir+json") -> Response:
    raw = requests.Response()
    raw.status_code = status
    raw._content = json.dumps(body).encode()
    raw.headers["Content-Type"] = content_type
    raw.request = requests.Request("GET", "http://127.0.0.1:9/fhir/MedicationRequest/x").prepare()
    response = Response.from_any(raw)
    response.headers = {"content-type": [content_type]}  # as schemathesis keeps them: lowercase, lists
    return response


def _case() -> Any:
    return SCHEMA["/MedicationRequest/{id}"]["GET"].Case(path_parameters={"id": "x"})


def test_profile_check_passes_a_conforming_prescription_and_a_bundle_of_them() -> None:
    fhir_profile_conformance(None, _response(200, EXAMPLE), _case())  # type: ignore[arg-type]
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": EXAMPLE}]}
    fhir_profile_conformance(None, _response(200, bundle), _case())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("break_it", "where"),
    [
        (lambda r: r["dispenseRequest"].pop("validityPeriod"), "validityPeriod"),
        (
            lambda r: r.__setitem__(
                "category", [{"coding": [{"system": r["category"][0]["coding"][0]["system"], "code": "ELEKTRONISK"}]}]
            ),
            "category",
        ),
        (lambda r: r.__setitem__("status", "aktiv"), "status"),
    ],
)
def test_profile_check_fails_a_broken_prescription(break_it: Any, where: str) -> None:
    broken = copy.deepcopy(EXAMPLE)
    break_it(broken)
    with pytest.raises(RuleViolation) as caught:
        fhir_profile_conformance(None, _response(200, broken), _case())  # type: ignore[arg-type]
    assert caught.value.rule == "fhir_profile" and where in caught.value.message


def test_errors_must_be_operation_outcomes() -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}
    errors_are_operation_outcomes(None, _response(404, outcome), _case())  # type: ignore[arg-type]
    with pytest.raises(RuleViolation, match="OperationOutcome"):
        errors_are_operation_outcomes(None, _response(404, {"error": "not found"}, "application/json"), _case())  # type: ignore[arg-type]
    with pytest.raises(RuleViolation, match="application/json"):
        errors_are_operation_outcomes(None, _response(404, outcome, "application/json"), _case())  # type: ignore[arg-type]
    errors_are_operation_outcomes(None, _response(200, EXAMPLE), _case())  # type: ignore[arg-type]
