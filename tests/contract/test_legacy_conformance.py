"""Legacy conformance: schemathesis over the SOAP endpoints of contracts/openapi/legacy.yaml, old and new platform.

The bodies are SOAP envelopes written by the legacy client from what schemathesis draws; the
answers are read back by it. Besides schemathesis's own checks, the wire rules and the domain
rules of rxverify.checks run on every answer (registered as schemathesis checks).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
import schemathesis
from hypothesis import reject

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
    """Every legacy operation answers as the contract declares: schemathesis's checks, the wire and domain rules."""
    label_case(case, platform)
    try:
        with rx_failures.collect():  # every distinct failure of every example is reported, not only the first
            case.call_and_validate(base_url=legacy_url, session=rx_session)
    except RequestRefused as refused:
        rx_refused(case.operation.label, refused)  # counted and shown: the gate bounds refusals
        reject()  # the guard kept a non-registered identity from leaving: nothing was sent
