"""Legacy conformance: schemathesis over contracts/openapi/legacy.yaml, old and new platform."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
import schemathesis
from hypothesis import reject

from rxverify.checks.schemathesis_checks import LEGACY_CHECKS
from rxverify.contract import label_case
from rxverify.distinct_failures import TestFailures
from rxverify.safety.guard import RequestRefused

from .schemas import legacy


@pytest.mark.acceptance
@legacy.parametrize()
def test_legacy_operation_conforms(
    case: schemathesis.Case,
    platform: str,
    legacy_url: str,
    rx_session: requests.Session,
    rx_refused: Callable[[str, RequestRefused], None],
    rx_failures: TestFailures,
) -> None:
    """Every legacy operation answers as the contract declares: schemathesis's checks and our domain rules."""
    label_case(case, platform)
    try:
        with rx_failures.collect():  # every distinct failure of every example is reported, not only the first
            case.call_and_validate(base_url=legacy_url, session=rx_session, additional_checks=LEGACY_CHECKS)
    except RequestRefused as refused:
        rx_refused(case.operation.label, refused)  # counted and shown: the gate bounds refusals
        reject()  # the guard kept a non-registered identity from leaving: nothing was sent
