"""Stateful lifecycles of a prescription through the links of the legacy contract (SOAP, from services.toml).

create -> look up -> reserve dispensing ids -> withdraw -> report -> history, and create ->
cancel -> withdrawal refused, in orders hypothesis generates: schemathesis's state machine over the
OpenAPI links of contracts/openapi/legacy.yaml, which read `$response.body#/...` from the answer
the legacy client's deserializer decodes; schemathesis's checks, the wire rules and the domain
rules after every step.

Hypothesis needs a scenario to draw the same way whenever it runs it again, so what decides
the next draw must come from the scenario itself. The state machine follows only the links the
contract declares (schemathesis.toml turns off the links schemathesis infers from the schema,
which took e.g. "the patient's first current prescription", made by whichever earlier scenario
or test: the same scenario then drew differently, and the run ended in FlakyStrategyDefinition,
`--examples 150 --seed 32` on the legacy conformance and lifecycle tests). And no check failure
is raised inside the state machine, so hypothesis never replays (shrinks) a scenario against
platforms whose state has moved on: every distinct failure is collected with the steps that led
to it, and the test fails once at its end with all of them (rxverify.distinct_failures).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import allure
import pytest
import requests
from hypothesis import HealthCheck, reject, settings

from rxverify.distinct_failures import TestFailures
from rxverify.legacy import media
from rxverify.safety.guard import RequestRefused

from .schemas import legacy

LegacyLinks = legacy.as_state_machine()
STEPS_PER_SCENARIO = 10


def _step(case: Any, response: Any) -> str:
    """A scenario's step as a failure report shows it: the service and its answer (a fault by kind and kod)."""
    fault = media.answer_of(case.operation, response).fault  # every fault is a 500: its kod says which
    said = f" {fault.kind} {fault.kod}" if fault is not None else ""
    return f"{case.operation.definition.raw.get('operationId', case.operation.label)} -> {response.status_code}{said}"


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
    rx_failures: TestFailures,
    pytestconfig: pytest.Config,
    rx_refused: Callable[[str, RequestRefused], None],
) -> None:
    """Generated lifecycles keep every rule after every step (requirement: the contract's links)."""

    class Lifecycle(LegacyLinks):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            self.steps: list[str] = []  # this scenario's steps so far, reported with a failure

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": legacy_url, "session": rx_session}

        def call(self, case: Any, **kwargs: Any) -> Any:
            try:
                response = case.call(**kwargs)
            except RequestRefused as refused:
                rx_refused(case.operation.label, refused)  # counted and shown: the gate bounds refusals
                reject()  # the guard kept a non-registered identity from leaving: nothing was sent
            self.steps.append(_step(case, response))
            return response

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            # the wire and domain rules are registered schemathesis checks (rxverify.checks.schemathesis_checks)
            with rx_failures.collect("scenario: " + " ; ".join(self.steps)):
                super().validate_response(response, case, additional_checks=additional_checks, **kwargs)

    Lifecycle.run(
        settings=settings(
            max_examples=pytestconfig.getoption("--examples"),
            stateful_step_count=STEPS_PER_SCENARIO,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
