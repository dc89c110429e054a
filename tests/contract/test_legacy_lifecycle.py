"""Stateful lifecycles of a prescription through the links of the legacy contract (SOAP, from services.toml).

create -> look up -> reserve dispensing ids -> withdraw -> report -> history, and create ->
cancel -> withdrawal refused, in orders hypothesis generates: schemathesis's state machine over the
OpenAPI links of contracts/openapi/legacy.yaml, which read `$response.body#/...` from the answer
the legacy client's deserializer decodes; schemathesis's checks, the wire rules and the domain
rules after every step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import allure
import pytest
import requests
from hypothesis import HealthCheck, reject, settings

from rxverify.safety.guard import RequestRefused

from .schemas import legacy

LegacyLinks = legacy.as_state_machine()
STEPS_PER_SCENARIO = 10


@pytest.mark.acceptance
@pytest.mark.integration
@allure.epic("prescriptions")
@allure.feature("prescription lifecycle (OpenAPI links)")
@allure.story("every rule holds after every step")
@allure.severity(allure.severity_level.CRITICAL)
def test_prescription_lifecycle(
    platform: str,
    legacy_url: str,
    rx_session: requests.Session,
    pytestconfig: pytest.Config,
    rx_refused: Callable[[str, RequestRefused], None],
) -> None:
    """Generated lifecycles keep every rule after every step (requirement: the contract's links)."""

    class Lifecycle(LegacyLinks):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": legacy_url, "session": rx_session}

        def call(self, case: Any, **kwargs: Any) -> Any:
            try:
                return case.call(**kwargs)
            except RequestRefused as refused:
                rx_refused(case.operation.label, refused)  # counted and shown: the gate bounds refusals
                reject()

    Lifecycle.run(
        settings=settings(
            max_examples=pytestconfig.getoption("--examples"),
            stateful_step_count=STEPS_PER_SCENARIO,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
