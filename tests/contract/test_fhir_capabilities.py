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
$monitoring honours its limits; every change of a prescription is a new version with its
Provenance. Resources come from the profile generators
(rxverify.fhir.generate), never from hand-written examples.
"""

from __future__ import annotations

import calendar
import json
import uuid
from datetime import date, timedelta
from typing import Any

import allure
import pytest
import requests
from fhirpathpy import evaluate as fhirpath
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rxverify.checks.fhir_rules import profile_errors
from rxverify.contract import legacy_client
from rxverify.fhir import capability
from rxverify.fhir.generate import FIRST_DATE, LAST_DATE, PATIENT_SYSTEMS, resources, violations
from rxverify.fhir.package import load_package
from rxverify.fhir.validator import errors, validator_for
from rxverify.paths import contracts_dir
from rxverify.strategies import contract_patients
from rxverify.target.run import Run

from .legacy_steps import cancel, prescribe, shown

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
    """(type, parameter, identity kind): patient-identifier once per kind of identity, as each is its own system."""
    out = []
    for rtype in _with("create"):
        for p in DECLARED[rtype].get("searchParam", []):
            if p["name"] == "patient-identifier":
                out += [pytest.param(rtype, p, kind, id=f"{rtype}?{p['name']}[{kind}]") for kind in PATIENT_SYSTEMS]
            elif p["name"] not in CONTROL:
                out.append(pytest.param(rtype, p, None, id=f"{rtype}?{p['name']}"))
    return out


def _patient_key(resource: dict[str, Any]) -> str:
    return "subject" if "subject" in resource else "patient"


def _query(params: dict[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in params.items())


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

    def search_all(self, rtype: str, params: dict[str, str], count: int = 100,
                   totals: list[int | None] | None = None) -> list[dict[str, Any]]:
        """Every entry of a search, following next links (each page's Bundle.total into `totals`, if given)."""
        found: list[dict[str, Any]] = []
        answer = self.get(rtype, {**params, "_count": str(count)})
        for _ in range(1000):
            assert answer.status_code == 200, f"search {rtype} {params}: {answer.status_code} {answer.text[:300]}"
            bundle = answer.json()
            if totals is not None:
                totals.append(bundle.get("total"))
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
@pytest.mark.parametrize(("rtype", "param", "kind"), _search_params())
def test_search_by_declared_parameter(
    rtype: str, param: dict[str, Any], kind: str | None, api: Fhir, registry: Any, server_statement: Any
) -> None:
    """Create, then search by the parameter's value (from its SearchParameter expression).

    A search by patient-identifier runs for patients of each kind of identity (a samordningsnummer
    is its own identifier system, and a tenth of the registry: drawn by chance it is often missed).
    """
    allure.dynamic.feature(f"{rtype}?{param['name']}")
    _require(server_statement, rtype, "interaction", "search-type")
    _require(server_statement, rtype, "search-param", param["name"])
    of_kind = [p for p in registry.patients if p.kind == kind]
    assert kind is None or of_kind, f"the registry holds no {kind} test patient for {rtype}?{param['name']}"

    @SLOW
    @given(resource=resources(DECLARED[rtype]["profile"], registry=registry),
           patient=st.sampled_from(of_kind) if kind else st.none())
    def prop(resource: dict[str, Any], patient: Any) -> None:
        if patient is not None:
            identifier = resource[_patient_key(resource)]["identifier"]
            identifier.update(system=PATIENT_SYSTEMS[patient.kind], value=patient.id)
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
        query = {param["name"]: value, **{k: v for k, v in scope.items() if v}}
        found = api.search_all(rtype, query)
        assert stored["id"] in [r.get("id") for r in found], (  # named by the contract's operationId
            f"{rtype}.search {_query(query)}: did not find {stored['id']}, created just before"
        )
        wrong = [r.get("id") for r in found if not _matches(param, value, r)]
        assert not wrong, f"{rtype}.search {_query(query)}: returned {len(wrong)} that do not match: {wrong[:5]}"
        other = _other_code(rtype, value) if param["type"] == "token" and "|" not in value else None
        if other is not None:  # a search for another code of the same code system must not find it
            query = {param["name"]: other, **{k: v for k, v in scope.items() if v}}
            found = api.search_all(rtype, query)
            assert stored["id"] not in [r.get("id") for r in found], (
                f"{rtype}.search {_query(query)}: found {stored['id']}, whose {param['name']} is {value}"
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
    """Pages of 2 hold every entry exactly once and the same entries as one page of 100; every page's
    Bundle.total (where given) is the number of matches of the whole search."""
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
        totals: list[int | None] = []
        paged = [r["id"] for r in api.search_all(rtype, params, count=2, totals=totals)]
        whole = [r["id"] for r in api.search_all(rtype, params, count=100)]
        assert len(paged) == len(set(paged)), f"paging repeats entries: {len(paged) - len(set(paged))} repeated"
        assert set(paged) == set(whole), f"paging lost {len(set(whole) - set(paged))} entries"
        # Bundle.total is the number of matches of the whole search, on every page (bundle.html#searchset)
        wrong = [(page, total) for page, total in enumerate(totals, 1) if total is not None and total != len(whole)]
        assert not wrong, (
            f"{rtype}.search {_query(params)}&_count=2: Bundle.total {', '.join(f'{t} on page {p}' for p, t in wrong)} "
            f"of {len(totals)}; the search matches {len(whole)}"
        )

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


def _provenance_activities(api: Fhir, target: str) -> list[str]:
    """The activity codes of every Provenance whose target is `target` (Provenance.search target=...)."""
    return sorted(
        coding.get("code", "")
        for prov in api.search_all("Provenance", {"target": target})
        for coding in (prov.get("activity") or {}).get("coding", [])
    )


@allure.feature("MedicationRequest")
@allure.story("every change of a prescription is a new version with its Provenance")
@allure.severity(allure.severity_level.CRITICAL)
def test_every_change_is_a_new_version_with_its_provenance(
    api: Fhir, registry: Any, server_statement: Any
) -> None:
    """A prescription created, withdrawn from through MedicationDispense.create, then cancelled.

    After each change, MedicationRequest.read: meta.versionId and meta.lastUpdated are new (R4 Meta:
    the version "changes when the resource is created, updated, or deleted"), and Provenance.search
    target=MedicationRequest/[id] holds one more Provenance, activity UPDATE (the contract's
    CapabilityStatement: "every create or change of a MedicationRequest or MedicationDispense records
    a Provenance (activity CREATE/UPDATE)"). A refused dispensing changes nothing.
    """
    _require(server_statement, "MedicationRequest", "interaction", "read")
    _require(server_statement, "MedicationDispense", "interaction", "create")
    _require(server_statement, "Provenance", "search-param", "target")
    legacy = api.run.target.platforms["new"].legacy
    assert legacy is not None

    @settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(patient=st.sampled_from(registry.patients),
           dispensings=st.lists(resources(DECLARED["MedicationDispense"]["profile"], registry=registry),
                                min_size=1, max_size=2))
    def prop(patient: Any, dispensings: list[dict[str, Any]]) -> None:
        client = legacy_client(api.session, legacy)
        oid = prescribe(client, patient.id, packages=99, withdrawals=12)
        target = f"MedicationRequest/{oid}"

        def state(after: str) -> tuple[tuple[str, str], list[str]]:
            read = api.get(target)
            assert read.status_code == 200, f"MedicationRequest.read {oid} after {after}: {read.status_code}"
            meta = read.json().get("meta") or {}
            return (str(meta.get("versionId")), str(meta.get("lastUpdated"))), _provenance_activities(api, target)

        version, activities = state("its create")
        assert activities == ["CREATE"], (
            f"Provenance.search target={target} after its create: activities {activities}, expected one CREATE"
        )
        changes: list[tuple[str, Any]] = [("a withdrawal (MedicationDispense.create)", d) for d in dispensings]
        changes.append(("its cancellation (MakuleraOrdinationVard)", None))
        for what, dispensing in changes:
            if dispensing is None:
                answer = cancel(client, oid, "FEL_DOSERING")
                assert answer.ok, f"MakuleraOrdinationVard of {oid}: received {shown(answer)}"
                changed = True
            else:
                dispensing = _born(dispensing)
                dispensing[_patient_key(dispensing)]["identifier"] = {"system": PATIENT_SYSTEMS[patient.kind],
                                                                    "value": patient.id}
                dispensing["authorizingPrescription"] = [{"reference": target}]
                created = api.create(dispensing)
                assert created.status_code in (201, 422), (
                    f"MedicationDispense.create for {target}: {created.status_code} {created.text[:300]}"
                )
                changed = created.status_code == 201
            before, before_activities = version, activities
            version, activities = state(what)
            if not changed:
                assert (version, activities) == (before, before_activities), (
                    f"MedicationRequest.read {oid} after a refused dispensing: meta (versionId, lastUpdated) "
                    f"{before} -> {version}, Provenance activities {before_activities} -> {activities}"
                )
                continue
            assert version[0] != before[0] and version[1] != before[1], (
                f"MedicationRequest.read {oid} after {what}: meta.versionId {before[0]} -> {version[0]}, "
                f"meta.lastUpdated {before[1]} -> {version[1]}; a change makes a new version"
            )
            assert activities == sorted([*before_activities, "UPDATE"]), (
                f"Provenance.search target={target} after {what}: activities {before_activities} -> {activities}, "
                "expected one more UPDATE"
            )

    prop()


def _date_params() -> list[Any]:
    return [pytest.param(rtype, p, id=f"{rtype}?{p['name']}") for rtype in _with("create")
            for p in DECLARED[rtype].get("searchParam", []) if p["type"] == "date"]


def _calendar_days() -> st.SearchStrategy[date]:
    """Any day of the generator's era, and as often the days date arithmetic gets wrong: the first and
    last day of a month, and 29 February of a leap year."""
    years = st.integers(FIRST_DATE.year, LAST_DATE.year)
    first = st.builds(lambda y, m: date(y, m, 1), years, st.integers(1, 12))
    last = st.builds(lambda y, m: date(y, m, calendar.monthrange(y, m)[1]), years, st.integers(1, 12))
    leap = st.sampled_from([date(y, 2, 29) for y in range(FIRST_DATE.year, LAST_DATE.year + 1) if calendar.isleap(y)])
    return st.one_of(st.dates(FIRST_DATE, LAST_DATE), first, last, leap)


def _period(day: date, precision: str, shift: int) -> tuple[str, date, date]:
    """The year, month or day `shift` periods from the one holding `day`: its text and [start, end) days."""
    if precision == "year":
        y = day.year + shift
        return f"{y:04d}", date(y, 1, 1), date(y + 1, 1, 1)
    if precision == "month":
        index = day.year * 12 + day.month - 1 + shift
        y, m = divmod(index, 12)
        start = date(y, m + 1, 1)
        return start.isoformat()[:7], start, start + timedelta(days=calendar.monthrange(y, m + 1)[1])
    start = day + timedelta(days=shift)
    return start.isoformat(), start, start + timedelta(days=1)


def _date_matches(comparator: str, day: date, start: date, end: date) -> bool:
    """search.html#prefix for a value of one day against a search range [start, end): eq, the day is
    inside; gt, the range above the search value meets the day; lt, the range below; ge and le, either."""
    return {"eq": start <= day < end, "ne": not start <= day < end, "gt": day >= end, "lt": day < start,
            "ge": day >= start, "le": day < end, "sa": day >= end, "eb": day < start}[comparator]


@allure.story("a date search at every precision and comparator finds exactly the matches")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.parametrize(("rtype", "param"), _date_params())
def test_date_search_by_precision_and_comparator(
    rtype: str, param: dict[str, Any], api: Fhir, registry: Any, server_statement: Any
) -> None:
    """A resource dated on one day (often a month's first or last day, or 29 February) is searched at
    year, month and day precision, for its own period and the ones either side, with every comparator the
    SearchParameter declares: found exactly when FHIR's range rules say (search.html#date)."""
    allure.dynamic.feature(f"{rtype}?{param['name']}")
    _require(server_statement, rtype, "interaction", "search-type")
    _require(server_statement, rtype, "search-param", param["name"])
    definition = PACKAGE.find(param["definition"]) or {}
    element = str(definition.get("expression", "")).removeprefix(f"{rtype}.")
    assert element.isidentifier(), f"{param['definition']}: {definition.get('expression')!r} is not one element"
    comparators = definition.get("comparator") or ["eq"]

    # twice the run's examples (each is one create and 45 searches, milliseconds apiece): a boundary day
    # is a quarter of the draws, 29 February of a leap year among them
    @settings(max_examples=2 * settings.default.max_examples, deadline=None,
              suppress_health_check=list(HealthCheck), database=None)
    @given(resource=resources(DECLARED[rtype]["profile"], registry=registry), day=_calendar_days())
    def prop(resource: dict[str, Any], day: date) -> None:
        resource = _born(resource)
        resource[element] = day.isoformat()
        created = api.create(_prepare(api, resource))
        assume(created.status_code != 422)  # a business rule (the validity against the new date)
        assert created.status_code == 201, f"{rtype}.create: {created.status_code} {created.text[:300]}"
        rid = created.json()["id"]
        wrong = []
        for precision in ("year", "month", "day"):
            for shift in (-1, 0, 1):
                text, start, end = _period(day, precision, shift)
                for comparator in comparators:
                    query = {"_id": rid, param["name"]: f"{comparator}{text}"}
                    found = rid in [r.get("id") for r in api.search_all(rtype, query)]
                    if found != _date_matches(comparator, day, start, end):
                        wrong.append(f"{rtype}.search {_query(query)}: {'found' if found else 'did not find'} "
                                     f"{rid}, whose {element} is {day.isoformat()}")
        assert not wrong, f"{len(wrong)} date searches answered against FHIR's range rules:\n" + "\n".join(wrong)

    prop()
