"""Our rules as schemathesis checks: registered with `@schemathesis.check`, so every run that loads them applies them.

The contract suite's conformance and stateful runs get them by default, and so does the
`schemathesis run` command line that loads this module as its hooks. Each one answers only for
the old interface's operations (those legacy.yaml marks with `x-service`) and passes over any
other; it reads the answer with the one legacy client (rxverify.legacy.media) and applies one
rule of rxverify.checks.riv_rules, or the domain rules of rxverify.checks.legacy_rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, Response

from rxverify.checks import riv_rules
from rxverify.checks.legacy_rules import Exchange, legacy_rules
from rxverify.legacy import media, shape
from rxverify.legacy.client import LegacyAnswer


def _exchange(case: Case, response: Response) -> tuple[LegacyAnswer, riv_rules.Sent] | None:
    if "x-service" not in case.operation.definition.raw:
        return None  # not the old interface (the FHIR API)
    answer = media.answer_of(case.operation, response)
    request = response.request
    body = request.body if isinstance(request.body, bytes) else None
    content_type = request.headers.get("Content-Type")
    return answer, riv_rules.sent(answer.service, media.client().contracts, body, request.method or "POST",
                                  content_type)


def _answer(case: Case, response: Response) -> LegacyAnswer | None:
    """The answer to a SOAP request (None for another API, or when what was sent was no SOAP envelope: the
    answer rules judge answers to envelopes; riv_invalid_request_refused judges the rest)."""
    found = _exchange(case, response)
    return found[0] if found is not None and found[1].soap else None


def _on_answers(rule: Callable[[LegacyAnswer], None]) -> Callable[[CheckContext, Response, Case], bool | None]:
    """A schemathesis check applying an answer rule of riv_rules (named riv_<rule>, documented as the rule)."""

    def check(ctx: CheckContext, response: Response, case: Case) -> bool | None:
        answer = _answer(case, response)
        if answer is not None:
            rule(answer)
        return None

    check.__name__ = check.__qualname__ = f"riv_{rule.__name__}"
    check.__doc__ = rule.__doc__
    return schemathesis.check(check)


def _on_requests(rule: Callable[[LegacyAnswer, riv_rules.Sent], None]) -> Callable[[CheckContext, Response, Case],
                                                                                     bool | None]:
    """A schemathesis check applying a request rule of riv_rules to the answer and what was sent."""

    def check(ctx: CheckContext, response: Response, case: Case) -> bool | None:
        found = _exchange(case, response)
        if found is not None:
            rule(*found)
        return None

    check.__name__ = check.__qualname__ = f"riv_{rule.__name__}"
    check.__doc__ = rule.__doc__
    return schemathesis.check(check)


riv_valid_against_xsd = _on_answers(riv_rules.valid_against_xsd)
riv_response_element = _on_answers(riv_rules.response_element)
riv_fault_allowed = _on_answers(riv_rules.fault_allowed)
riv_fault_kind = _on_answers(riv_rules.fault_kind)
riv_content_type = _on_answers(riv_rules.content_type)
riv_answer_without_header = _on_answers(riv_rules.answer_without_header)
riv_valid_request_accepted = _on_requests(riv_rules.valid_request_accepted)
riv_invalid_request_refused = _on_requests(riv_rules.invalid_request_refused)


def _probe(base: str, service: str, data: dict[str, Any], headers: Any) -> LegacyAnswer | None:
    """A follow-up call some rules need, sent as the same caller through the run's guarded session."""
    return media.probe(base, service, data, headers)


@schemathesis.check
def legacy_domain_rules(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """The old interface's domain rules (rxverify.checks.legacy_rules) on the answer in today's JSON shape."""
    found = _exchange(case, response)
    if found is None or not found[1].soap:
        return None
    answer, request = found
    contracts = media.client().contracts
    # what was sent, as the platform read it (negative data may differ from the dict it was written from)
    sent = shape.to_json(request.data if isinstance(request.data, dict) else {}, contracts.names, {})
    url = response.request.url or ""
    base = url[: -len(answer.service.endpoint)] if url.endswith(answer.service.endpoint) else url
    headers = {"Authorization": str(response.request.headers.get("Authorization", ""))}
    legacy_rules(_probe).check(Exchange(answer, sent, base, headers))
    return None


LEGACY_CHECKS = [
    riv_valid_against_xsd,
    riv_response_element,
    riv_fault_allowed,
    riv_fault_kind,
    riv_content_type,
    riv_answer_without_header,
    riv_valid_request_accepted,
    riv_invalid_request_refused,
    legacy_domain_rules,
]
