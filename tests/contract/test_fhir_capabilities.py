"""FHIR conformance of the new platform, driven by its CapabilityStatement.

First, as Inferno's test kits begin: GET [base]/metadata through the guarded session is a valid
R4 CapabilityStatement of kind instance, and it declares every resource, interaction, search
parameter, operation, profile and format the contract's CapabilityStatement
(contracts/fhir/CapabilityStatement-nll-server.json) declares: each missing piece is its own
failure naming it. The tests that follow depend on it: each first requires the server to declare
what it exercises, and fails naming it when it does not (never a skip: the contract requires it).

Then, for every declared resource, interaction and search parameter: create-then-read returns what
was sent; a search by each declared parameter finds the resource and returns only matches;
paging with _count is consistent; an invalid resource gets 4xx with an OperationOutcome; a
missing required header is refused; an unknown id gives 404 with an OperationOutcome;
$monitoring honours its limits. Resources come from the profile generators
(rxverify.fhir.generate), never from hand-written examples.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import allure
import pytest
import requests
from fhirpathpy import evaluate as fhirpath
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxverify.checks.fhir_rules import profile_errors
from rxverify.contract import legacy_client
from rxverify.fhir import capability
from rxverify.fhir.generate import resources, violations
from rxverify.fhir.package import load_package
from rxverify.fhir.validator import errors, validator_for
from rxverify.paths import contracts_dir
from rxverify.strategies import contract_patients
from rxverify.target.run import Run

from .legacy_steps import prescribe

pytestmark = [pytest.mark.acceptance, pytest.mark.platforms("new"), allure.epic("FHIR")]

PACKAGE = load_package(contracts_dir() / "fhir")
CAPABILITY = PACKAGE.of_type("CapabilityStatement")[0]
DECLARED = {r["type"]: r for r in CAPABILITY["rest"][0]["resource"]}
REQUIRED_HEADERS = ("x-request-id", "x-context-id", "x-user-agent")
CONTROL = {"_count", "_offset"}
SLOW = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)


REQUIREMENTS = capability.requirements(CAPABILITY)


def _with(interaction: str) -> list[str]:
    return [t for t, r in DECLARED.items() if r.get("profile") and interaction in {i["code"] for i in r["interaction"]}]


def _search_params() -> list[Any]:
    out = []
    for rtype in _with("create"):
        for p in DECLARED[rtype].get("searchParam", []):
            if p["name"] not in CONTROL:
                out.append(pytest.param(rtype, p, id=f"{rtype}?{p['name']}"))
    return out


class Fhir:
    """The new platform's FHIR API as one actor sees it."""

    def __init__(self, run: Run, session: requests.Session, base: str) -> None:
        self.run, self.session, self.base = run, session, base

    def headers(self, role: str, drop: str | None = None) -> dict[str, str]:
        h = self.run.auth_headers(role) | {
            "x-request-id": str(uuid.uuid4()),
            "x-context-id": str(uuid.uuid4()),
            "x-user-agent": "rxverify-contract/1",
            "Accept": "application/fhir+json",
            "Content-Type": "application/fhir+json",
        }
        return {k: v for k, v in h.items() if k != drop}

    def role_for(self, rtype: str) -> str:
        return {"MedicationRequest": "prescriber", "MedicationDispense": "pharmacy"}.get(rtype, "pharmacy")

    def create(self, resource: dict[str, Any]) -> Any:
        rtype = resource["resourceType"]
        return self.session.post(
            f"{self.base}/{rtype}", data=json.dumps(resource), headers=self.headers(self.role_for(rtype)), timeout=30
        )

    def get(self, path: str, params: Any = None) -> Any:
        return self.session.get(f"{self.base}/{path}", params=params, headers=self.headers("pharmacy"), timeout=30)

    def search_all(self, rtype: str, params: dict[str, str], count: int = 100) -> list[dict[str, Any]]:
        """Every entry of a search, following next links."""
        found: list[dict[str, Any]] = []
        answer = self.get(rtype, {**params, "_count": str(count)})
        for _ in range(1000):
            assert answer.status_code == 200, f"search {rtype} {params}: {answer.status_code} {answer.text[:300]}"
            bundle = answer.json()
            found += [e["resource"] for e in bundle.get("entry", [])]
            nxt = next((link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None)
            if not nxt:
                return found
            answer = self.session.get(nxt, headers=self.headers("pharmacy"), timeout=30)
        raise AssertionError(f"search {rtype} {params}: more than 1000 pages")


@pytest.fixture(scope="session")
def api(rx_run: Run, rx_session: requests.Session, fhir_url: str) -> Fhir:
    """The FHIR API of the platform under test (through `fhir_url`: every test id names the platform)."""
    return Fhir(rx_run, rx_session, fhir_url)


@pytest.fixture(scope="session")
def server_statement(rx_session: requests.Session, fhir_url: str) -> Any:
    """What GET [base]/metadata answers (its JSON body, None when it is none), fetched once."""
    answer = rx_session.get(f"{fhir_url}/metadata", headers={"Accept": "application/fhir+json"}, timeout=30)
    try:
        return answer.json()
    except ValueError:
        return None


def _require(statement: Any, rtype: str, kind: str, name: str) -> None:
    """The server must declare what a test is about to exercise (the contract requires it): fail naming it."""
    problems = capability.statement_problems(statement)
    assert not problems or statement.get("resourceType") == "CapabilityStatement", problems[0]
    wanted = next(r for r in REQUIREMENTS if r.resource == rtype and r.kind == kind and r.name == name)
    assert capability.declares(statement, wanted), wanted.missing()


@allure.feature("CapabilityStatement")
@allure.story("GET [base]/metadata is the server's CapabilityStatement, valid R4")
@allure.severity(allure.severity_level.BLOCKER)
def test_metadata_is_a_valid_capability_statement(server_statement: Any) -> None:
    """http.html#capabilities: /metadata answers a CapabilityStatement of kind instance, valid against R4."""
    problems = capability.statement_problems(server_statement)
    assert not problems, "\n".join(problems)
    found = errors(validator_for().validate(server_statement))
    assert not found, "the server's CapabilityStatement is not valid R4:\n" + "\n".join(map(str, found))


@allure.feature("CapabilityStatement")
@allure.story("the server declares everything the contract's CapabilityStatement declares")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.parametrize("requirement", REQUIREMENTS, ids=lambda r: r.id)
def test_metadata_declares_what_the_contract_declares(
    requirement: capability.Requirement, server_statement: Any
) -> None:
    """One resource, interaction, search parameter, operation, profile or format of the contract's statement."""
    problems = capability.statement_problems(server_statement)
    assert not problems or server_statement.get("resourceType") == "CapabilityStatement", problems[0]
    assert capability.declares(server_statement, requirement), requirement.missing()


@pytest.fixture(scope="session")
def registry(rx_run: Run) -> Any:
    """Only the conformance patients: FHIR writes must not touch the differential's patients."""
    return rx_run.registry.subset(contract_patients(rx_run.registry))


def _prescription_for_dispense(api: Fhir, patient: dict[str, Any]) -> str:
    """An active prescription, as a care system creates it, for a dispense to refer to."""
    legacy = api.run.target.platforms["new"].legacy
    assert legacy is not None
    return prescribe(legacy_client(api.session, legacy), patient["value"], packages=99, withdrawals=12)


BORN_AS = {"MedicationRequest": "active", "MedicationDispense": "completed"}  # the platform's create rules (422)


def _born(resource: dict[str, Any]) -> dict[str, Any]:
    """A generated resource in the status a create must have (a prescription is born active, ...)."""
    if resource["resourceType"] in BORN_AS:
        resource["status"] = BORN_AS[resource["resourceType"]]
        if resource["resourceType"] == "MedicationRequest":
            resource.pop("statusReason", None)
    return resource


def _prepare(api: Fhir, resource: dict[str, Any]) -> dict[str, Any]:
    """Tie a generated dispense to an existing prescription of its patient (the server checks both)."""
    patient = (resource.get("subject") or {}).get("identifier") or {}
    if resource["resourceType"] == "MedicationDispense" and patient.get("value") in api.run.registry.ids:
        oid = _prescription_for_dispense(api, patient)
        for reference in resource.get("authorizingPrescription") or []:  # keep their number: it may be the violation
            if isinstance(reference, dict) and isinstance(reference.get("reference"), str):
                reference["reference"] = f"MedicationRequest/{oid}"
    return resource


def _subset(sent: Any, read: Any, path: str = "") -> list[str]:
    """Where `read` lacks or changes what was `sent` (the server may add, never drop or change)."""
    if isinstance(sent, dict):
        if not isinstance(read, dict):
            return [f"{path}: sent an object, read {read!r}"]
        return [p for k, v in sent.items() if k not in ("id", "meta") for p in _subset(v, read.get(k), f"{path}.{k}")]
    if isinstance(sent, list):
        if not isinstance(read, list) or len(read) < len(sent):
            return [f"{path}: sent {len(sent)} items, read {read!r}"[:300]]
        return [p for i, v in enumerate(sent) for p in _subset(v, read[i], f"{path}[{i}]")]
    return [] if sent == read else [f"{path}: sent {sent!r}, read {read!r}"]


@allure.story("create then read returns what was sent")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.parametrize("rtype", _with("create"))
def test_create_then_read(rtype: str, api: Fhir, registry: Any, server_statement: Any) -> None:
    """POST a generated resource, GET it back: everything sent is there, and it conforms to its profile."""
    allure.dynamic.feature(rtype)
    for interaction in ("create", "read"):
        _require(server_statement, rtype, "interaction", interaction)

    @SLOW
    @given(resource=resources(DECLARED[rtype]["profile"], registry=registry))
    def prop(resource: dict[str, Any]) -> None:
        created = api.create(_prepare(api, _born(resource)))
        if created.status_code == 422:
            return  # a business rule (e.g. validity end before start); the conformance tests judge 4xx
        assert created.status_code == 201, f"create {rtype}: {created.status_code} {created.text[:500]}"
        read = api.get(f"{rtype}/{created.json()['id']}")
        assert read.status_code == 200, read.text[:300]
        content_type = read.headers.get("content-type", "").split(";")[0]
        assert content_type == "application/fhir+json", (
            f"read {rtype}: content type {content_type!r}, FHIR declares application/fhir+json"
        )
        problems = _subset(resource, read.json(), rtype)
        assert not problems, f"{rtype} read back differs from what was sent:\n" + "\n".join(problems[:20])
        errors = profile_errors(read.json())
        assert not errors, "\n".join(f"{i.code} {i.location}: {i.message}" for i in errors)

    prop()


def _search_value(param: dict[str, Any], resource: dict[str, Any]) -> str | None:
    definition = PACKAGE.find(param["definition"]) or {}
    if param["name"] == "_id":
        return str(resource["id"])
    values = fhirpath(resource, definition.get("expression", ""))
    if not values:
        return None
    v = values[0]
    if param["type"] == "token":
        return f"{v['system']}|{v['value']}" if isinstance(v, dict) else str(v)
    if param["type"] == "reference":
        return str(v["reference"]) if isinstance(v, dict) else str(v)
    if param["type"] == "date":
        return str(v)  # full precision: a bare date would be read in the server's zone, not the value's offset
    return str(v)


def _matches(param: dict[str, Any], value: str, resource: dict[str, Any]) -> bool:
    if param["name"] == "_id":
        return resource.get("id") == value
    again = _search_value(param, resource)
    definition = PACKAGE.find(param["definition"]) or {}
    if param["type"] == "token" and "|" in value:
        return any(
            isinstance(v, dict) and f"{v.get('system')}|{v.get('value')}" == value
            for v in fhirpath(resource, definition.get("expression", ""))
        )
    if param["type"] == "token":
        return value in [str(v) for v in fhirpath(resource, definition.get("expression", ""))]
    return again == value


@allure.story("a search by each declared parameter finds it and only matches")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.parametrize(("rtype", "param"), _search_params())
def test_search_by_declared_parameter(
    rtype: str, param: dict[str, Any], api: Fhir, registry: Any, server_statement: Any
) -> None:
    """Create, then search by the parameter's value (from its SearchParameter expression)."""
    allure.dynamic.feature(f"{rtype}?{param['name']}")
    _require(server_statement, rtype, "interaction", "search-type")
    _require(server_statement, rtype, "search-param", param["name"])

    @SLOW
    @given(resource=resources(DECLARED[rtype]["profile"], registry=registry))
    def prop(resource: dict[str, Any]) -> None:
        created = api.create(_prepare(api, _born(resource)))
        if created.status_code == 422:
            return
        assert created.status_code == 201, created.text[:300]
        stored = created.json()
        value = _search_value(param, stored)
        if value is None:
            return
        scope = (
            {}
            if param["name"] == "patient-identifier"
            else {
                "patient-identifier": _search_value(
                    {
                        "name": "patient-identifier",
                        "type": "token",
                        "definition": _definition(rtype, "patient-identifier"),
                    },
                    stored,
                )
                or ""
            }
        )
        found = api.search_all(rtype, {param["name"]: value, **{k: v for k, v in scope.items() if v}})
        assert stored["id"] in [r.get("id") for r in found], (
            f"{rtype}?{param['name']}={value} did not find {stored['id']}"
        )
        wrong = [r.get("id") for r in found if not _matches(param, value, r)]
        assert not wrong, f"{rtype}?{param['name']}={value} returned {len(wrong)} that do not match: {wrong[:5]}"
        other = _other_code(rtype, value) if param["type"] == "token" and "|" not in value else None
        if other is not None:  # a search for another code of the same code system must not find it
            found = api.search_all(rtype, {param["name"]: other, **{k: v for k, v in scope.items() if v}})
            assert stored["id"] not in [r.get("id") for r in found], (
                f"{rtype}?{param['name']}={other} found {stored['id']}, whose {param['name']} is {value}"
            )

    prop()


def _other_code(rtype: str, code: str) -> str | None:
    """Another code of a ValueSet the resource's profile binds and that holds `code` (None when none)."""
    systems = {cs["url"]: [c["code"] for c in cs.get("concept", [])] for cs in PACKAGE.of_type("CodeSystem")}
    profile = PACKAGE.find(DECLARED[rtype]["profile"]) or {}
    for element in profile.get("snapshot", {}).get("element", []):
        valueset = PACKAGE.find((element.get("binding") or {}).get("valueSet", "")) or {}
        codes: list[str] = []
        for include in valueset.get("compose", {}).get("include", []):
            codes += [c["code"] for c in include.get("concept", [])] or systems.get(include.get("system", ""), [])
        if code in codes and len(codes) > 1:
            return next(c for c in codes if c != code)
    return None


def _definition(rtype: str, name: str) -> str:
    return next(p["definition"] for p in DECLARED[rtype]["searchParam"] if p["name"] == name)


@allure.story("paging with _count is consistent")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.parametrize("rtype", [t for t in _with("search-type") if t in _with("create")])  # entries are created
def test_paging_is_consistent(rtype: str, api: Fhir, registry: Any, server_statement: Any) -> None:
    """Pages of 2 hold every entry exactly once and the same entries as one page of 100."""
    allure.dynamic.feature(rtype)
    _require(server_statement, rtype, "search-param", "_count")

    @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(batch=st.lists(resources(DECLARED[rtype]["profile"], registry=registry), min_size=5, max_size=7))
    def prop(batch: list[dict[str, Any]]) -> None:
        patient = batch[0]["subject" if "subject" in batch[0] else "patient"]["identifier"]
        for resource in batch:
            resource["subject" if "subject" in resource else "patient"]["identifier"] = dict(patient)
            api.create(_prepare(api, _born(resource)))
        params = {"patient-identifier": f"{patient['system']}|{patient['value']}"}
        paged = [r["id"] for r in api.search_all(rtype, params, count=2)]
        whole = [r["id"] for r in api.search_all(rtype, params, count=100)]
        assert len(paged) == len(set(paged)), f"paging repeats entries: {len(paged) - len(set(paged))} repeated"
        assert set(paged) == set(whole), f"paging lost {len(set(whole) - set(paged))} entries"

    prop()


@allure.story("an invalid resource is refused with an OperationOutcome")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.parametrize("rtype", _with("create"))
def test_invalid_resource_refused(rtype: str, api: Fhir, registry: Any, server_statement: Any) -> None:
    """A valid instance with one profile constraint broken: 4xx with an OperationOutcome, never stored."""
    allure.dynamic.feature(rtype)
    _require(server_statement, rtype, "interaction", "create")
    _require(server_statement, rtype, "profile", DECLARED[rtype]["profile"])

    @SLOW
    @given(broken=violations(DECLARED[rtype]["profile"], registry=registry))
    def prop(broken: tuple[dict[str, Any], Any]) -> None:
        resource, violation = broken
        answer = api.create(_prepare(api, resource) if violation.kind != "contained-reference" else resource)
        assert 400 <= answer.status_code < 500, (
            f"{rtype} breaking {violation.kind} at {violation.location} ({violation.detail}) was accepted: "
            f"{answer.status_code}"
        )
        body = answer.json() if answer.headers.get("content-type", "").startswith("application/fhir+json") else None
        assert isinstance(body, dict) and body.get("resourceType") == "OperationOutcome", answer.text[:300]

    prop()


@allure.story("a missing required header is refused")
@allure.severity(allure.severity_level.NORMAL)
@pytest.mark.parametrize("header", REQUIRED_HEADERS)
@pytest.mark.parametrize("rtype", _with("search-type"))
def test_missing_required_header_refused(rtype: str, header: str, api: Fhir, server_statement: Any) -> None:
    """Every required request header of the agency (x-request-id, ...) is enforced: 400 OperationOutcome."""
    allure.dynamic.feature(rtype)
    _require(server_statement, rtype, "interaction", "search-type")
    answer = api.session.get(f"{api.base}/{rtype}", headers=api.headers("pharmacy", drop=header), timeout=30)
    assert answer.status_code == 400, f"{rtype} search without {header}: {answer.status_code}"
    assert answer.json().get("resourceType") == "OperationOutcome"


@allure.story("an unknown id gives 404 with an OperationOutcome")
@allure.severity(allure.severity_level.NORMAL)
@pytest.mark.parametrize("rtype", [t for t, r in DECLARED.items() if "read" in {i["code"] for i in r["interaction"]}])
def test_unknown_id_is_404(rtype: str, api: Fhir, server_statement: Any) -> None:
    """GET [type]/[unknown id]: 404, application/fhir+json, an OperationOutcome."""
    allure.dynamic.feature(rtype)
    _require(server_statement, rtype, "interaction", "read")
    answer = api.get(f"{rtype}/{uuid.uuid4()}")
    assert answer.status_code == 404, f"GET {rtype}/<unknown id>: received {answer.status_code}, FHIR declares 404"
    kind = answer.headers.get("content-type", "")
    assert kind.startswith("application/fhir+json"), (
        f"GET {rtype}/<unknown id>: 404 as {kind!r}; FHIR declares an OperationOutcome as application/fhir+json"
    )
    assert answer.json().get("resourceType") == "OperationOutcome", (
        f"GET {rtype}/<unknown id>: 404 without an OperationOutcome: {answer.text[:300]}"
    )


@allure.feature("MedicationRequest/$monitoring")
@allure.story("$monitoring honours its limits (1-50 identities, at most 1000 results)")
@allure.severity(allure.severity_level.CRITICAL)
def test_monitoring_limits(api: Fhir, registry: Any, server_statement: Any) -> None:
    """0 and 51 identities are refused (400 OperationOutcome); 50 are answered with at most 1000 prescriptions."""
    from rxverify.mapping import load_mapping

    _require(server_statement, "MedicationRequest", "operation", "monitoring")
    mapping = load_mapping(contracts_dir() / "mapping" / "legacy-fhir.yaml")

    def params(n: int) -> dict[str, Any]:
        ids = [p.id for p in registry.patients[:n]]
        return {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "personalIdentityNumber",
                    "valueIdentifier": {"system": mapping.identity_system(i), "value": i},
                }
                for i in ids
            ],
        }

    url = f"{api.base}/MedicationRequest/$monitoring"
    for n in (0, 51):
        body = params(n) if n else {"resourceType": "Parameters"}
        answer = api.session.post(url, data=json.dumps(body), headers=api.headers("prescriber"), timeout=30)
        assert answer.status_code == 400, f"$monitoring with {n} identities: {answer.status_code}"
        assert answer.json().get("resourceType") == "OperationOutcome"
    answer = api.session.post(url, data=json.dumps(params(50)), headers=api.headers("prescriber"), timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    bundle = answer.json()
    assert bundle.get("resourceType") == "Bundle" and len(bundle.get("entry", [])) <= 1000
