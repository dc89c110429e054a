"""The old interface under requests generated from its XSDs: every answer of both platforms is one the contract allows.

For every service interaction of contracts/riv, hypothesis draws request elements from the
responder XSD (rxverify.legacy.xsdgen: every element and occurrence, every facet, choices and
sequences in order, identities only from the run's test-patient registry) and sends them through
the one legacy client over the run's guarded session:

- a valid request is answered by the service's response element in its responder namespace,
  valid against the responder XSD (HTTP 200), or by a soap:Client fault whose detail is an
  ApplicationException with a code the service declares (services.toml `faults`), valid against
  the shared schema (HTTP 500, as WS-I Basic Profile has it);
- a request that breaks exactly one rule of the XSD (xsdgen.violations, labelled `path: rule`) is
  refused as contracts/riv/README.md says: a soap:Client fault with an ApplicationException
  FELAKTIG_BEGARAN; never a SystemException, HTML or a stack trace.

Requests are drawn from the XSD alone, or (once a platform has answered them) with the values the
contract's links feed from earlier answers (services.toml `links`: a created prescription's
ordinationsId into GodkannUttag and the cancellations, reserved dispensing ids into
RapporteraExpeditionLF, ...), so the response elements behind an existing prescription are checked
too and not only ORDINATION_SAKNAS; the valid-request tests run in the links' order for that.
A failing example shrinks to the smallest request that shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import allure
import pytest
import requests
from hypothesis import assume, event, given, note, reject
from hypothesis import strategies as st
from lxml import etree

from rxverify.contracts.riv import RivContracts, Service, load_riv
from rxverify.legacy.client import LegacyAnswer, LegacyClient
from rxverify.legacy.envelope import APPLICATION
from rxverify.legacy.xsdgen import Violation, elements, named, violations
from rxverify.paths import contracts_dir
from rxverify.safety.guard import RequestRefused
from rxverify.safety.registry import Registry
from rxverify.target.run import Run

INVALID_REQUEST = "FELAKTIG_BEGARAN"  # contracts/riv/README.md: a body invalid against the XSD
SOAP_FAULT_STATUS = 500  # WS-I Basic Profile: every SOAP fault (contracts/riv/README.md, Faults)
XML_MEDIA_TYPES = ("text/xml", "application/xml")


def link_order(riv: RivContracts) -> list[str]:
    """Operation ids with every link's source before its target (by name among equals; a cycle keeps name order)."""
    left = sorted(riv.services)
    feeds = {op: {s.operation_id for s in riv.services.values() for link in riv.services[op].semantics.links
                  if s.name == link.operation and s.operation_id != op} for op in left}
    order: list[str] = []
    while left:
        ready = [op for op in left if not any(op in feeds[other] for other in left)] or left[:1]
        order.append(ready[0])
        left.remove(ready[0])
    return order


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per service interaction of the run's contracts (another major dropped in is one more)."""
    if "service_id" in metafunc.fixturenames:
        riv = load_riv(contracts_dir(metafunc.config.getoption("--contracts")))
        metafunc.parametrize("service_id", link_order(riv))


def _found(element: etree._Element, path: str) -> list[str]:
    """The texts at a services.toml link path below `element` (local names joined by "/", "[n]" the n-th, 1-based)."""
    nodes = [element]
    for step in path.split("/"):
        name, _, index = step.partition("[")
        below = [[c for c in node if isinstance(c.tag, str) and etree.QName(c).localname == name] for node in nodes]
        nodes = [found[int(index[:-1]) - 1] for found in below if len(found) >= int(index[:-1])] if index \
            else [c for found in below for c in found]
    return [node.text for node in nodes if node.text]


class Linked:
    """Values one platform answered that the contract's links feed into later requests, and the requests using them."""

    KEPT = 50  # values kept per request element: enough to vary, few enough that shrinking finds the first

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.values: dict[tuple[str, str], list[str]] = {}  # (service name, request element) -> values answered
        self.strategies: dict[tuple[str, frozenset[str]], st.SearchStrategy[Any]] = {}  # compiled once per shape

    def learn(self, answer: LegacyAnswer) -> None:
        """Keep what an answer's links feed (only from a response element: a fault feeds nothing)."""
        if not answer.ok or answer.element is None:
            return
        for link in answer.service.semantics.links:
            kept = self.values.setdefault((link.operation, link.target), [])
            kept += [v for v in _found(answer.element, link.source) if v not in kept][: self.KEPT - len(kept)]

    def requests(self, service: Service) -> st.SearchStrategy[Any]:
        """Request elements of `service`: from the XSD alone, or with the linked values answered so far."""
        plain = elements(service.schema, service.request_element, registry=self.registry)
        targets = frozenset(t for (name, t), kept in self.values.items() if name == service.name and kept)
        if not targets:
            return plain
        key = (service.operation_id, targets)
        if key not in self.strategies:
            overrides = {named(t): _one_of(self.values[(service.name, t)]) for t in sorted(targets)}
            linked = elements(service.schema, service.request_element, registry=self.registry,
                              overrides=overrides)
            self.strategies[key] = st.one_of(plain, linked)
        return self.strategies[key]


def _one_of(kept: list[str]) -> st.SearchStrategy[str]:
    # read at draw time: the list grows while the run goes on; shrinks towards the first value answered
    return st.integers(0, Linked.KEPT - 1).map(lambda i: kept[i % len(kept)])


@pytest.fixture(scope="session")
def linked(platform: str, rx_run: Run) -> Linked:
    """The linked values of `platform` (one pool per platform: ids of one are unknown to the other)."""
    return Linked(rx_run.registry)


@pytest.fixture(scope="session")
def riv(rx_contracts: Path) -> RivContracts:
    """The old interface's service contracts of this run."""
    return load_riv(rx_contracts)


def _trace(service: Service, platform: str, story: str) -> None:
    allure.dynamic.epic(service.semantics.area)
    allure.dynamic.feature(service.operation_id)
    allure.dynamic.story(story)
    allure.dynamic.severity(allure.severity_level.CRITICAL)
    allure.dynamic.parameter("platform", platform)


class Caller:
    """One platform's old interface, called through the one legacy client and the run's guarded session."""

    def __init__(self, client: LegacyClient, registry: Registry, refused: Callable[[str, RequestRefused], None]):
        self.client, self.registry, self.refused = client, registry, refused

    def send(self, service: Service, element: Any) -> LegacyAnswer:
        """POST the request element as the service's first role; a request the guard refuses is counted, not sent."""
        try:
            return self.client.call(service, element, role=service.roles[0])
        except RequestRefused as refused:
            self.refused(service.operation_id, refused)  # counted and shown: the gate bounds refusals
            reject()


@pytest.fixture(scope="session")
def caller(legacy_url: str, riv: RivContracts, rx_run: Run, rx_session: requests.Session,
           rx_refused: Callable[[str, RequestRefused], None]) -> Caller:
    """The old interface of the platform under test."""
    client = LegacyClient(rx_session, legacy_url, riv, rx_run.legacy_credentials(), rx_run.actors)
    return Caller(client, rx_run.registry, rx_refused)


def _what(answer: LegacyAnswer) -> str:
    """What came back, in a line: status, media type, and the body element or fault."""
    if answer.parsed.problem is not None:
        return f"HTTP {answer.status} {answer.content_type or 'no Content-Type'}: {answer.parsed.problem}"
    fault = answer.fault
    if fault is not None:
        return (f"HTTP {answer.status} fault {fault.code} {fault.kind or 'without detail'} "
                f"kod={fault.kod} ({fault.meddelande or fault.string})")
    assert answer.element is not None
    return f"HTTP {answer.status} {answer.element.tag}"


def check_soap(answer: LegacyAnswer) -> None:
    """Any answer of the old interface is a SOAP 1.1 envelope with one body element, as text/xml."""
    media = answer.content_type.split(";")[0].strip().lower()
    if media not in XML_MEDIA_TYPES or answer.parsed.problem is not None:
        raise AssertionError(f"{answer.service.operation_id}: received {_what(answer)}; the contract declares a SOAP "
                             f"1.1 envelope ({' or '.join(XML_MEDIA_TYPES)})")


def check_allowed_answer(answer: LegacyAnswer) -> None:
    """A valid request gets the response element (valid against the responder XSD) or an allowed ApplicationException.

    Contract: the service's WSDL (output message, fault messages), its responder XSD, and services.toml
    `faults` (the ApplicationException codes the operation may answer).
    """
    check_soap(answer)
    service, fault = answer.service, answer.fault
    if fault is None:
        if answer.element is None or answer.element.tag != service.response_element:
            raise AssertionError(f"{service.operation_id}: received {_what(answer)}; declared "
                                 f"{service.response_element}")
        if answer.problems:
            raise AssertionError(f"{service.operation_id}: the answer is invalid against {service.responder_xsd.name}: "
                                 + "; ".join(answer.problems))
        if answer.status != 200:
            raise AssertionError(f"{service.operation_id}: received {_what(answer)}; a response element comes with 200")
        return
    allowed = service.semantics.faults
    if fault.kind != APPLICATION or fault.code != "Client" or fault.kod not in allowed:
        raise AssertionError(f"{service.operation_id}: received {_what(answer)} for a request valid against its XSD; "
                             f"declared: a soap:Client ApplicationException with kod {', '.join(allowed)}")
    if answer.problems:
        raise AssertionError(f"{service.operation_id}: the fault's detail is invalid against the shared schema: "
                             + "; ".join(answer.problems))
    if answer.status != SOAP_FAULT_STATUS:
        raise AssertionError(f"{service.operation_id}: received {_what(answer)}; a SOAP fault comes with "
                             f"{SOAP_FAULT_STATUS}")


def check_refused(answer: LegacyAnswer, violation: Violation) -> None:
    """A request breaking one rule of the XSD gets a soap:Client ApplicationException FELAKTIG_BEGARAN (riv/README)."""
    check_soap(answer)
    fault = answer.fault
    operation = answer.service.operation_id
    if fault is None or fault.kind != APPLICATION or fault.code != "Client" or fault.kod != INVALID_REQUEST:
        raise AssertionError(f"{operation}: the request breaks {violation.label} ({violation.detail}); received "
                             f"{_what(answer)}; declared a soap:Client ApplicationException kod {INVALID_REQUEST}")
    if answer.problems or answer.status != SOAP_FAULT_STATUS:
        raise AssertionError(f"{operation}: refusal of {violation.label}: {_what(answer)} "
                             + "; ".join(answer.problems))


@pytest.mark.acceptance
@given(data=st.data())
def test_generated_valid_requests_get_answers_the_contract_allows(data: st.DataObject, service_id: str, platform: str,
                                                                  caller: Caller, linked: Linked) -> None:
    """Requests valid against the responder XSD are answered with a valid response element or an allowed fault."""
    service = caller.client.service(service_id)
    _trace(service, platform, "valid generated requests get valid answers (responder XSD)")
    request = data.draw(linked.requests(service), label="request")
    assume(service.schema.is_valid(request))  # a linked value is the answer's: valid there, checked here
    note(etree.tostring(request, encoding="unicode"))
    answer = caller.send(service, request)
    linked.learn(answer)
    event(f"fault {answer.kod}" if answer.fault is not None else "response element")  # --hypothesis-show-statistics
    check_allowed_answer(answer)


@pytest.mark.acceptance
@given(data=st.data())
def test_requests_breaking_one_xsd_rule_are_refused_as_application_exceptions(data: st.DataObject, service_id: str,
                                                                              platform: str, caller: Caller) -> None:
    """A request that breaks exactly one rule of its XSD gets ApplicationException FELAKTIG_BEGARAN, not a failure."""
    service = caller.client.service(service_id)
    _trace(service, platform, "a request breaking one XSD rule is refused as a business fault")
    violation = data.draw(violations(service.schema, service.request_element, registry=caller.registry),
                          label="violation")
    event(f"breaks {violation.rule}")
    note(violation.document().decode())
    answer = caller.send(service, violation.element)
    check_refused(answer, violation)
