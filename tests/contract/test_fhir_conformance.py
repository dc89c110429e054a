"""FHIR conformance of the new platform: schemathesis over contracts/openapi/fhir.yaml."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
import schemathesis
from hypothesis import reject

from rxverify.checks.fhir_rules import FHIR_CHECKS
from rxverify.contract import label_case
from rxverify.distinct_failures import TestFailures
from rxverify.safety.guard import RequestRefused

from .schemas import fhir


@pytest.mark.acceptance
@pytest.mark.platforms("new")
@fhir.parametrize()
def test_fhir_operation_conforms(
    case: schemathesis.Case,
    platform: str,
    fhir_url: str,
    rx_session: requests.Session,
    rx_refused: Callable[[str, RequestRefused], None],
    rx_failures: TestFailures,
) -> None:
    """Every FHIR interaction answers as the contract declares (schemathesis's checks)."""
    label_case(case, platform)
    try:
        with rx_failures.collect():  # every distinct failure of every example is reported, not only the first
            case.call_and_validate(base_url=fhir_url, session=rx_session, additional_checks=FHIR_CHECKS)
    except RequestRefused as refused:
        rx_refused(case.operation.label, refused)  # counted and shown: the gate bounds refusals
        reject()
