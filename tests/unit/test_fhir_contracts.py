"""The FHIR contracts agree with themselves: contracts/fhir (profiles, terminology, search parameters,
CapabilityStatement, examples) and contracts/openapi/fhir.yaml (what schemathesis runs against the new platform).

Every check is a function returning the problems it found, so each test can also show that the check
reports a contract broken on purpose.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fhir.resources.R4B import get_fhir_model_class
from fhirpathpy import evaluate as fhirpath
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parents[2]
FHIR_DIR = ROOT / "contracts" / "fhir"
EXAMPLES_DIR = FHIR_DIR / "examples"
OPENAPI_PATH = ROOT / "contracts" / "openapi" / "fhir.yaml"
TESTDATA_DIR = ROOT / "contracts" / "testdata"
MAPPING_PATH = ROOT / "contracts" / "mapping" / "legacy-fhir.yaml"

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# FHIR interaction -> (HTTP method, path template relative to the resource type)
INTERACTIONS = {
    "create": ("post", "/{type}"),
    "read": ("get", "/{type}/{{id}}"),
    "search-type": ("get", "/{type}"),
}
HEADER_EXTENSION = "http://electronichealth.se/fhir/StructureDefinition/nll-request-header"
SPEC_URI = "urn:rxverify:openapi:fhir"


# ----------------------------------------------------------------------------- loading


def _load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def load_resources() -> dict[str, dict[str, Any]]:
    """contracts/fhir/*.json (not the examples), by file name."""
    return {p.name: _load_json(p) for p in sorted(FHIR_DIR.glob("*.json"))}


def load_examples() -> dict[str, dict[str, Any]]:
    return {p.name: _load_json(p) for p in sorted(EXAMPLES_DIR.glob("*.json"))}


def load_spec() -> dict[str, Any]:
    return yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))


def by_type(resources: dict[str, dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in resources.values() if r["resourceType"] == resource_type]


def capability_statement(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (cs,) = by_type(resources, "CapabilityStatement")
    return cs


def resolve(spec: dict[str, Any], node: Any) -> Any:
    """Follow a local $ref (#/components/...) in the OpenAPI document."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def operations(spec: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (method, path, operation)."""
    found = {}
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                op = item[method]
                found[op["operationId"]] = (method, path, op)
    return found


def parameters(spec: dict[str, Any], op: dict[str, Any], location: str) -> dict[str, dict[str, Any]]:
    params = [resolve(spec, p) for p in op.get("parameters", [])]
    return {p["name"]: p for p in params if p["in"] == location}


# ----------------------------------------------------------------------------- (1) OpenAPI


def test_fhir_openapi_is_a_valid_openapi_document() -> None:
    validate_openapi(load_spec())


def test_openapi_validation_rejects_a_broken_document() -> None:
    broken = load_spec()
    broken["paths"]["/MedicationRequest/{id}"]["get"]["parameters"][0] = {"name": "id", "in": "path"}
    with pytest.raises(OpenAPIValidationError):
        validate_openapi(broken)


def test_openapi_declares_servers_security_and_fhir_json() -> None:
    spec = load_spec()
    assert spec["openapi"].startswith("3.1")
    assert spec["servers"] == [{"url": "/fhir"}]
    scheme = spec["components"]["securitySchemes"]["accessTicket"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    for op_id, (_method, path, op) in operations(spec).items():
        for status, response in op["responses"].items():
            response = resolve(spec, response)
            assert list(response.get("content", {})) == ["application/fhir+json"], (op_id, status)
            if status.startswith("4"):
                assert response["content"]["application/fhir+json"]["schema"] == {
                    "$ref": "#/components/schemas/OperationOutcome"
                }, (op_id, status)
        if "requestBody" in op:
            assert set(op["requestBody"]["content"]) == {"application/fhir+json", "application/json"}, op_id
        if path == "/metadata":
            assert op.get("security") == [], "GET /metadata needs no ticket"
        else:
            assert "security" not in op, f"{op_id} must use the global accessTicket security"


# ----------------------------------------------------------------------------- (2) FHIR parsing


ALL_FHIR_FILES = sorted(FHIR_DIR.glob("*.json")) + sorted(EXAMPLES_DIR.glob("*.json"))


def parse_problems(data: dict[str, Any]) -> list[str]:
    try:
        get_fhir_model_class(data["resourceType"]).model_validate(data)
    except Exception as exc:  # any parse failure is the finding
        return [str(exc)]
    return []


@pytest.mark.parametrize("path", ALL_FHIR_FILES, ids=lambda p: str(p.relative_to(FHIR_DIR)))
def test_every_fhir_file_parses_with_the_r4b_models(path: Path) -> None:
    data = _load_json(path)
    assert parse_problems(data) == []
    if "id" in data:
        assert path.name == f"{data['resourceType']}-{data['id']}.json"


def test_fhir_parsing_reports_a_broken_resource() -> None:
    sd = copy.deepcopy(load_resources()["StructureDefinition-NLLMedicationRequest.json"])
    sd["snapshot"]["element"][1]["min"] = "one"
    assert parse_problems(sd)
    assert parse_problems({"resourceType": "MedicationRequest", "status": "active", "unknownElement": 1})


def test_contract_contains_the_required_resources() -> None:
    resources = load_resources()
    urls = {r.get("url") for r in resources.values()}
    base = "http://electronichealth.se/fhir/StructureDefinition/"
    for name in ("NLLMedicationRequest", "NLLMedicationDispense", "NLLConsent", "NLLPrescriber", "nll-workplace-code"):
        assert base + name in urls
    # HL7's code systems are HL7's (the R4 base package has them): the contract republishes none under HL7's urls
    assert not [
        r["url"] for r in by_type(resources, "CodeSystem") if not r["url"].startswith("http://electronichealth.se/")
    ]
    assert len(by_type(resources, "CapabilityStatement")) == 1
    assert len(by_type(resources, "OperationDefinition")) == 1


# ----------------------------------------------------------------------------- profiles


def profile_problems(sd: dict[str, Any]) -> list[str]:
    """A profile has a differential and a snapshot; the snapshot covers the root and every constrained element."""
    problems = []
    snapshot = {e["id"]: e for e in sd.get("snapshot", {}).get("element", [])}
    differential = sd.get("differential", {}).get("element", [])
    if not differential:
        problems.append(f"{sd['id']}: no differential")
    root = sd["type"]
    if root not in snapshot:
        problems.append(f"{sd['id']}: snapshot lacks the root element {root}")
    for element in differential:
        snap = snapshot.get(element["id"])
        if snap is None:
            problems.append(f"{sd['id']}: snapshot lacks {element['id']}")
            continue
        for key, value in element.items():
            if key == "constraint":  # the snapshot adds the profile's invariants to the base's
                missing = [c for c in value if c not in snap.get(key, [])]
                if missing:
                    problems.append(f"{sd['id']}: snapshot {element['id']} lacks constraints of the differential")
            elif key != "type" and snap.get(key) != value:  # types: the snapshot keeps the base's own type codes
                problems.append(f"{sd['id']}: snapshot {element['id']}.{key} differs from the differential")
        for key in ("min", "max", "base"):
            if key not in snap:
                problems.append(f"{sd['id']}: snapshot {element['id']} has no {key}")
        if snap["id"] != root and "type" not in snap and snap.get("max") != "0":
            problems.append(f"{sd['id']}: snapshot {element['id']} has no type")
    return problems


def test_profiles_have_differential_and_covering_snapshot() -> None:
    for sd in by_type(load_resources(), "StructureDefinition"):
        assert profile_problems(sd) == []


def test_profile_check_reports_a_snapshot_gap() -> None:
    sd = copy.deepcopy(load_resources()["StructureDefinition-NLLMedicationRequest.json"])
    sd["snapshot"]["element"] = [e for e in sd["snapshot"]["element"] if e["id"] != "MedicationRequest.status"]
    assert "NLLMedicationRequest: snapshot lacks MedicationRequest.status" in profile_problems(sd)


def test_profiles_use_the_mapping_systems() -> None:
    mapping = yaml.safe_load(MAPPING_PATH.read_text(encoding="utf-8"))
    resources = load_resources()
    text = json.dumps([by_type(resources, "StructureDefinition")])
    for key in (
        "prescription_id",
        "prescription_chain_id",
        "dispensing_id",
        "npl_pack_id",
        "hsa_id",
        "prescriber_code",
        "gln",
        "workplace_code_extension",
        "prescription_format",
        "cancellation_reason",
    ):
        assert mapping["systems"][key] in text, key
    formats = by_url(resources)[mapping["systems"]["prescription_format"]]
    assert {c["code"] for c in formats["concept"]} == set(mapping["codes"]["forskrivningstyp"].values())
    reasons = by_url(resources)[mapping["systems"]["cancellation_reason"]]
    assert {c["code"] for c in reasons["concept"]} == set(mapping["codes"]["makuleringsorsak"].values())


# ----------------------------------------------------------------------------- (3) CapabilityStatement <-> OpenAPI


def capability_mismatches(cs: dict[str, Any], spec: dict[str, Any], resources: dict[str, dict[str, Any]]) -> list[str]:
    """Every interaction, search parameter, operation and header of the CapabilityStatement is in the
    OpenAPI document, and the OpenAPI document has nothing the CapabilityStatement does not declare."""
    problems: list[str] = []
    search_params = {sp["url"]: sp for sp in by_type(resources, "SearchParameter")}
    op_defs = {od["url"]: od for od in by_type(resources, "OperationDefinition")}

    expected: dict[tuple[str, str], set[str]] = {("get", "/metadata"): set()}
    for rest in cs["rest"]:
        for res in rest["resource"]:
            rtype = res["type"]
            codes = {i["code"] for i in res.get("interaction", [])}
            for code in codes:
                if code not in INTERACTIONS:
                    problems.append(f"{rtype}: interaction {code} has no HTTP rendering here")
                    continue
                method, template = INTERACTIONS[code]
                expected.setdefault((method, template.format(type=rtype)), set())
            names = set()
            for param in res.get("searchParam", []):
                sp = search_params.get(param.get("definition", ""))
                if sp is None:
                    problems.append(
                        f"{rtype}: searchParam {param['name']} has no SearchParameter {param.get('definition')}"
                    )
                    continue
                if sp["code"] != param["name"] or rtype not in sp["base"] or sp["type"] != param["type"]:
                    problems.append(f"{rtype}: searchParam {param['name']} disagrees with SearchParameter {sp['id']}")
                names.add(sp["code"])
            if names and "search-type" not in codes:
                problems.append(f"{rtype}: search parameters without the search-type interaction")
            if "search-type" in codes:
                expected[("get", f"/{rtype}")] = names
            for operation in res.get("operation", []):
                od = op_defs.get(operation["definition"])
                if od is None or od["code"] != operation["name"] or rtype not in od.get("resource", []):
                    problems.append(f"{rtype}: operation {operation['name']} has no matching OperationDefinition")
                expected.setdefault(("post", f"/{rtype}/${operation['name']}"), set())

    actual: dict[tuple[str, str], set[str]] = {}
    for _, (method, path, op) in operations(spec).items():
        actual[(method, path)] = set(parameters(spec, op, "query"))
    for key in sorted(set(expected) - set(actual)):
        problems.append(f"{key[0].upper()} {key[1]} is in the CapabilityStatement but not in fhir.yaml")
    for key in sorted(set(actual) - set(expected)):
        problems.append(f"{key[0].upper()} {key[1]} is in fhir.yaml but not in the CapabilityStatement")
    for key in sorted(set(expected) & set(actual)):
        for name in sorted(expected[key] - actual[key]):
            problems.append(f"{key[0].upper()} {key[1]}: search parameter {name} missing in fhir.yaml")
        for name in sorted(actual[key] - expected[key]):
            problems.append(
                f"{key[0].upper()} {key[1]}: query parameter {name} not declared in the CapabilityStatement"
            )

    # headers: the CapabilityStatement lists them (extension nll-request-header); fhir.yaml has them on every
    # operation but GET /metadata; authorization is the security scheme.
    declared: dict[str, bool] = {}
    for rest in cs["rest"]:
        for ext in rest.get("extension", []):
            if ext["url"] == HEADER_EXTENSION:
                parts = {e["url"]: e for e in ext["extension"]}
                declared[parts["name"]["valueString"].lower()] = parts["required"]["valueBoolean"]
    if not declared.pop("authorization", False):
        problems.append("the CapabilityStatement does not require the authorization header")
    for op_id, (_method, path, op) in operations(spec).items():
        headers = {name.lower(): p.get("required", False) for name, p in parameters(spec, op, "header").items()}
        if path == "/metadata":
            if any(headers.values()):
                problems.append("GET /metadata must not require headers")
            continue
        if headers != declared:
            problems.append(
                f"{op_id}: headers {sorted(headers.items())} differ from "
                f"the CapabilityStatement {sorted(declared.items())}"
            )
    return problems


def test_capability_statement_and_openapi_agree() -> None:
    resources = load_resources()
    assert capability_mismatches(capability_statement(resources), load_spec(), resources) == []


def test_agreement_check_reports_a_search_parameter_missing_from_the_capability_statement() -> None:
    resources = load_resources()
    cs = copy.deepcopy(capability_statement(resources))
    mr = next(r for r in cs["rest"][0]["resource"] if r["type"] == "MedicationRequest")
    mr["searchParam"] = [p for p in mr["searchParam"] if p["name"] != "authoredon"]
    problems = capability_mismatches(cs, load_spec(), resources)
    assert "GET /MedicationRequest: query parameter authoredon not declared in the CapabilityStatement" in problems


def test_agreement_check_reports_what_fhir_yaml_lacks() -> None:
    resources = load_resources()
    cs = capability_statement(resources)
    spec = load_spec()
    get = spec["paths"]["/MedicationDispense"]["get"]
    get["parameters"] = [p for p in get["parameters"] if p != {"$ref": "#/components/parameters/prescription"}]
    del spec["paths"]["/MedicationRequest/$monitoring"]
    del spec["paths"]["/Consent/{id}"]
    provenance = spec["paths"]["/Provenance"]["get"]
    provenance["parameters"] = [
        p for p in provenance["parameters"] if p != {"$ref": "#/components/parameters/XRequestId"}
    ]
    problems = capability_mismatches(cs, spec, resources)
    assert "GET /MedicationDispense: search parameter prescription missing in fhir.yaml" in problems
    assert "POST /MedicationRequest/$monitoring is in the CapabilityStatement but not in fhir.yaml" in problems
    assert "GET /Consent/{id} is in the CapabilityStatement but not in fhir.yaml" in problems
    assert any(p.startswith("Provenance.search: headers") for p in problems)


def test_agreement_check_reports_undeclared_interactions_and_bad_definitions() -> None:
    resources = load_resources()
    cs = copy.deepcopy(capability_statement(resources))
    provenance = next(r for r in cs["rest"][0]["resource"] if r["type"] == "Provenance")
    provenance["interaction"] = [i for i in provenance["interaction"] if i["code"] != "read"]
    consent = next(r for r in cs["rest"][0]["resource"] if r["type"] == "Consent")
    consent["searchParam"][0]["definition"] = "http://electronichealth.se/fhir/SearchParameter/nope"
    problems = capability_mismatches(cs, load_spec(), resources)
    assert "GET /Provenance/{id} is in fhir.yaml but not in the CapabilityStatement" in problems
    assert any("has no SearchParameter" in p for p in problems)


def test_operation_ids_and_monitoring_limits() -> None:
    spec = load_spec()
    ops = operations(spec)
    assert set(ops) == {
        "CapabilityStatement.read",
        "MedicationRequest.create",
        "MedicationRequest.read",
        "MedicationRequest.search",
        "MedicationRequest.monitoring",
        "MedicationDispense.create",
        "MedicationDispense.read",
        "MedicationDispense.search",
        "Provenance.read",
        "Provenance.search",
        "Consent.create",
        "Consent.read",
        "Consent.search",
    }
    body = resolve(
        spec, ops["MedicationRequest.monitoring"][2]["requestBody"]["content"]["application/fhir+json"]["schema"]
    )
    parameter = body["properties"]["parameter"]
    assert (parameter["minItems"], parameter["maxItems"]) == (1, 50)
    bundle = resolve(
        spec, ops["MedicationRequest.monitoring"][2]["responses"]["200"]["content"]["application/fhir+json"]["schema"]
    )
    assert bundle["properties"]["entry"]["maxItems"] == 1000
    (od,) = by_type(load_resources(), "OperationDefinition")
    assert [(p["name"], p["min"], p["max"]) for p in od["parameter"] if p["use"] == "in"] == [
        ("personalIdentityNumber", 1, "50")
    ]
    for op_id, (_, _path, op) in ops.items():
        if op_id.endswith(".create"):
            assert "Location" in op["responses"]["201"]["headers"]
            assert {"400", "401", "403", "422"} <= set(op["responses"]), op_id
            assert op["responses"]["201"]["links"][op_id.replace(".create", ".read")]["parameters"] == {
                "id": "$response.body#/id"
            }


# ----------------------------------------------------------------------------- (4) examples <-> JSON Schemas


def schema_validator(spec: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    registry: Registry = Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    if "$ref" in schema:
        schema = {"$ref": SPEC_URI + schema["$ref"]}
    return Draft202012Validator(schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)


def request_schema(spec: dict[str, Any], op_id: str) -> dict[str, Any]:
    return operations(spec)[op_id][2]["requestBody"]["content"]["application/fhir+json"]["schema"]


def response_schema(spec: dict[str, Any], op_id: str, status: str = "200") -> dict[str, Any]:
    return resolve(spec, operations(spec)[op_id][2]["responses"][status])["content"]["application/fhir+json"]["schema"]


def example_schema_problems(spec: dict[str, Any], example: dict[str, Any]) -> list[str]:
    """Validate an example against the response schema of its read and, for creatable types, the create request."""
    rtype = example["resourceType"]
    ops = operations(spec)
    targets = []
    if rtype == "Parameters":
        targets.append(request_schema(spec, "MedicationRequest.monitoring"))
    else:
        targets.append(response_schema(spec, f"{rtype}.read"))
        if f"{rtype}.create" in ops:
            targets.append(request_schema(spec, f"{rtype}.create"))
            targets.append(response_schema(spec, f"{rtype}.create", "201"))
    problems = []
    for schema in targets:
        for error in schema_validator(spec, schema).iter_errors(example):
            problems.append(
                f"{rtype} vs {schema.get('$ref')}: {'/'.join(map(str, error.absolute_path))}: {error.message}"
            )
    return problems


@pytest.mark.parametrize("path", sorted(EXAMPLES_DIR.glob("*.json")), ids=lambda p: p.name)
def test_every_example_validates_against_its_openapi_schemas(path: Path) -> None:
    assert example_schema_problems(load_spec(), _load_json(path)) == []


def test_examples_cover_what_the_contract_promises() -> None:
    examples = list(load_examples().values())
    requests = [e for e in examples if e["resourceType"] == "MedicationRequest"]
    formats = {e["category"][0]["coding"][0]["code"]: e["subject"]["identifier"]["system"] for e in requests}
    assert formats == {
        "electronic": "http://electronichealth.se/identifier/personnummer",
        "telephone": "http://electronichealth.se/identifier/samordningsnummer",
    }
    assert any(e["status"] == "cancelled" and "statusReason" in e for e in requests)
    counts = {
        t: sum(e["resourceType"] == t for e in examples)
        for t in ("MedicationDispense", "Provenance", "Consent", "Parameters")
    }
    assert (
        counts["MedicationDispense"] >= 2
        and counts["Provenance"] >= 1
        and counts["Consent"] >= 1
        and counts["Parameters"] >= 1
    )


def test_search_bundles_of_the_examples_validate() -> None:
    spec = load_spec()
    examples = list(load_examples().values())
    for rtype in ("MedicationRequest", "MedicationDispense", "Provenance", "Consent"):
        entries = [
            {"fullUrl": f"urn:uuid:{e['id']}", "resource": e, "search": {"mode": "match"}}
            for e in examples
            if e["resourceType"] == rtype
        ]
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(entries),
            "link": [
                {"relation": "self", "url": f"/fhir/{rtype}?_count=20"},
                {"relation": "next", "url": f"/fhir/{rtype}?_count=20&_offset=20"},
            ],
            "entry": entries,
        }
        assert parse_problems(bundle) == []
        assert list(schema_validator(spec, response_schema(spec, f"{rtype}.search")).iter_errors(bundle)) == []
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "not-found", "diagnostics": "No such resource"}],
    }
    assert parse_problems(outcome) == []
    assert (
        list(schema_validator(spec, response_schema(spec, "MedicationRequest.read", "404")).iter_errors(outcome)) == []
    )


def _example(name_prefix: str, predicate: Any = lambda e: True) -> dict[str, Any]:
    return copy.deepcopy(next(e for n, e in load_examples().items() if n.startswith(name_prefix) and predicate(e)))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda e: e.update(status="bogus"), "status"),
        (lambda e: e.pop("statusReason"), "statusReason"),
        (lambda e: e.update(note=[{"text": "x"}]), "note"),
        (lambda e: e["subject"]["identifier"].update(value="19121212121"), "subject/identifier/value"),
        (lambda e: e["medicationCodeableConcept"].update(text="x" * 201), "medicationCodeableConcept/text"),
        (lambda e: e["dispenseRequest"].update(numberOfRepeatsAllowed=12), "dispenseRequest/numberOfRepeatsAllowed"),
        (lambda e: e["dispenseRequest"]["quantity"].update(value=1.5), "dispenseRequest/quantity/value"),
        (
            lambda e: e["dispenseRequest"]["validityPeriod"].update(end="2021-02-31"),
            "dispenseRequest/validityPeriod/end",
        ),
        (lambda e: e["identifier"].pop(0), "identifier"),
        (lambda e: e["contained"][0]["identifier"][0].update(value="SE123-x"), "contained/0/identifier"),
        (lambda e: e.update(authoredOn="2021-11-29T09:15:00"), "authoredOn"),
    ],
)
def test_schema_check_reports_a_broken_medication_request(mutate: Any, expected: str) -> None:
    example = _example("MedicationRequest", lambda e: e["status"] == "cancelled")
    mutate(example)
    problems = example_schema_problems(load_spec(), example)
    assert any(expected in p for p in problems), problems


def test_schema_check_reports_broken_dispense_consent_and_parameters() -> None:
    spec = load_spec()
    dispense = _example("MedicationDispense")
    dispense["performer"][0]["actor"]["identifier"]["value"] = "735000100000"
    assert example_schema_problems(spec, dispense)
    consent = _example("Consent")
    consent["status"] = "proposed"
    assert example_schema_problems(spec, consent)
    parameters = _example("Parameters")
    parameters["parameter"] = parameters["parameter"] * 17
    assert len(parameters["parameter"]) > 50
    assert example_schema_problems(spec, parameters)
    parameters["parameter"] = []
    assert example_schema_problems(spec, parameters)


def test_examples_use_only_registered_test_patients_and_actors() -> None:
    registry = _load_json(TESTDATA_DIR / "test-patients.json")
    kinds = {p["id"]: p["kind"] for p in registry["patients"]}
    actors = _load_json(TESTDATA_DIR / "test-actors.json")
    hsa = {a["hsaId"] for a in actors["prescribers"]}
    codes = {a["forskrivarkod"] for a in actors["prescribers"]}
    workplaces = {u["arbetsplatskod"] for u in actors["careUnits"]}
    glns = {p["gln"] for p in actors["pharmacies"]}
    text = json.dumps(list(load_examples().values()))
    for number in set(re.findall(r'"value": "([0-9]{12})"', text)):
        assert number in kinds, f"{number} is not a registered test patient"
    for example in load_examples().values():
        for ident in fhirpath(example, "subject.identifier | patient.identifier | parameter.valueIdentifier", []):
            assert ident["value"] in kinds
            assert ident["system"].endswith(kinds[ident["value"]]), ident
        assert (
            set(
                fhirpath(
                    example,
                    "contained.identifier.where(system='urn:oid:1.2.752.29.4.19').value | agent.who.identifier.value",
                    [],
                )
            )
            <= hsa
        )
        assert (
            set(fhirpath(example, "contained.identifier.where(system='urn:oid:1.2.752.116.3.1.2').value", [])) <= codes
        )
        assert set(fhirpath(example, "extension.valueString", [])) <= workplaces
        assert set(fhirpath(example, "performer.actor.identifier.value", [])) <= glns


# ----------------------------------------------------------------------------- profile invariants on the examples


def invariant_failures(resource: dict[str, Any], resources: dict[str, dict[str, Any]]) -> list[str]:
    """Evaluate the root-level FHIRPath constraints of the profile the resource claims in meta.profile."""
    failures = []
    profiles = by_url(resources)
    for url in resource.get("meta", {}).get("profile", []):
        sd = profiles[url]
        root = next(e for e in sd["snapshot"]["element"] if e["id"] == sd["type"])
        for constraint in [c for c in root.get("constraint", []) if c.get("source") == sd["url"]]:
            if fhirpath(resource, constraint["expression"], []) != [True]:
                failures.append(constraint["key"])
    return failures


def by_url(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["url"]: r for r in resources.values() if "url" in r}


def test_examples_meet_their_profile_invariants() -> None:
    resources = load_resources()
    for name, example in load_examples().items():
        assert invariant_failures(example, resources) == [], name


def test_invariant_check_reports_broken_examples() -> None:
    resources = load_resources()
    cancelled = _example("MedicationRequest", lambda e: e["status"] == "cancelled")
    cancelled.pop("statusReason")
    cancelled["dispenseRequest"]["validityPeriod"]["end"] = "2021-11-01"
    cancelled["subject"]["identifier"]["system"] = "urn:oid:1.2.752.129.2.1.3.1"
    assert set(invariant_failures(cancelled, resources)) >= {"nll-1", "nll-2", "nll-3"}


# ----------------------------------------------------------------------------- (5) bindings and terminology


def terminology_problems(resources: dict[str, dict[str, Any]]) -> list[str]:
    """Every binding's ValueSet, every CodeSystem it includes and every code it lists exist in contracts/fhir;
    every profile a StructureDefinition or the CapabilityStatement names in our namespace exists."""
    problems = []
    urls = by_url(resources)
    value_sets = {r["url"]: r for r in by_type(resources, "ValueSet")}
    code_systems = {r["url"]: r for r in by_type(resources, "CodeSystem")}
    code_systems.update(_r4_code_systems())
    for sd in by_type(resources, "StructureDefinition"):
        for element in sd["differential"]["element"]:  # the profiles' own bindings; the base's are HL7's
            binding = element.get("binding")
            if binding:
                vs = value_sets.get(binding.get("valueSet", "").split("|")[0])
                if vs is None:
                    problems.append(
                        f"{sd['id']} {element['id']}: ValueSet {binding.get('valueSet')} not in contracts/fhir"
                    )
            for t in element.get("type", []):
                for url in t.get("profile", []) + t.get("targetProfile", []):
                    if url.startswith("http://electronichealth.se/") and url not in urls:
                        problems.append(f"{sd['id']} {element['id']}: profile {url} not in contracts/fhir")
    for vs in value_sets.values():
        for include in vs["compose"]["include"]:
            cs = code_systems.get(include["system"])
            if cs is None:
                problems.append(f"ValueSet {vs['id']}: CodeSystem {include['system']} not in contracts/fhir")
                continue
            known = {c["code"] for c in cs["concept"]}
            for concept in include.get("concept", []):
                if concept["code"] not in known:
                    problems.append(f"ValueSet {vs['id']}: code {concept['code']} not in CodeSystem {cs['id']}")
    for rest in capability_statement(resources)["rest"]:
        for res in rest["resource"]:
            for url in [res.get("profile"), *res.get("supportedProfile", [])]:
                if url and url not in urls:
                    problems.append(f"CapabilityStatement {res['type']}: profile {url} not in contracts/fhir")
    return problems


def _r4_code_systems() -> dict[str, dict[str, Any]]:
    """HL7's code systems the contract's ValueSets draw on, as the R4 base package has them."""
    from rxverify.fhir.base import base_definitions

    out = {}
    for url in ("http://hl7.org/fhir/CodeSystem/medicationrequest-status",
                "http://terminology.hl7.org/CodeSystem/medicationdispense-status",
                "http://hl7.org/fhir/consent-state-codes"):  # fmt: skip
        index = base_definitions().index.code_systems[url]
        out[url] = {"id": url.rsplit("/", 1)[-1], "concept": [{"code": c} for c in index.parents]}
    return out


def test_every_binding_resolves_to_local_terminology() -> None:
    assert terminology_problems(load_resources()) == []


def test_terminology_check_reports_missing_value_sets_code_systems_and_codes() -> None:
    resources = load_resources()
    broken = {n: r for n, r in resources.items() if n != "ValueSet-nll-cancellation-reason.json"}
    assert any(
        "ValueSet http://electronichealth.se/fhir/ValueSet/nll-cancellation-reason" in p
        for p in terminology_problems(broken)
    )
    broken = copy.deepcopy(resources)
    broken["ValueSet-nll-medicationrequest-status.json"]["compose"]["include"][0]["system"] = "http://example.org/cs"
    assert any("CodeSystem http://example.org/cs" in p for p in terminology_problems(broken))
    broken = copy.deepcopy(resources)
    broken["CodeSystem-nll-prescription-format.json"]["concept"].pop()
    assert any("code telephone" in p for p in terminology_problems(broken))


def test_status_code_systems_are_the_r4_codes_and_match_the_schemas() -> None:
    resources = load_resources()
    spec = load_spec()
    urls = by_url(resources) | _r4_code_systems()
    mr_codes = [c["code"] for c in urls["http://hl7.org/fhir/CodeSystem/medicationrequest-status"]["concept"]]
    assert mr_codes == [
        "active",
        "on-hold",
        "cancelled",
        "completed",
        "entered-in-error",
        "stopped",
        "draft",
        "unknown",
    ]
    md_codes = [c["code"] for c in urls["http://terminology.hl7.org/CodeSystem/medicationdispense-status"]["concept"]]
    assert md_codes == [
        "preparation",
        "in-progress",
        "cancelled",
        "on-hold",
        "completed",
        "entered-in-error",
        "stopped",
        "declined",
        "unknown",
    ]
    schemas = spec["components"]["schemas"]
    assert schemas["NLLMedicationRequest"]["properties"]["status"]["enum"] == mr_codes
    assert schemas["NLLMedicationDispense"]["properties"]["status"]["enum"] == md_codes
    assert spec["components"]["parameters"]["MedicationRequest-status"]["schema"]["enum"] == mr_codes
    assert spec["components"]["parameters"]["MedicationDispense-status"]["schema"]["enum"] == md_codes


# ----------------------------------------------------------------------------- parameter schemas


PNR_SYSTEM = "http://electronichealth.se/identifier/personnummer"


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        (
            "patient-identifier",
            [f"{PNR_SYSTEM}|191212121212"],
            [
                "191212121212",
                "http://electronichealth\x04se/identifier/personnummer|191212121212",
                f"{PNR_SYSTEM}|1912121212",
            ],
        ),
        (
            "identifier",
            ["abc", "http://electronichealth.se/identifier/nllmedicationrequestid|abc"],
            ["", "a|b|c", "|a"],
        ),
        (
            "authoredon",
            ["2021", "ge2021-11", "lt2021-11-29", "2024-02-29", "le2021-11-29T10:00:00+01:00"],
            ["2021-02-29", "2021-02-31", "ne2021-11-29", "2021-11-29T10:00:00", "2021-13"],
        ),
        (
            "prescription",
            ["MedicationRequest/3f2504e0-4f89-41d3-9a0c-0305e82c3301", "3f2504e0-4f89-41d3-9a0c-0305e82c3301"],
            ["MedicationDispense/abc", "Medication Request/abc"],
        ),
        ("target", ["MedicationRequest/3f2504e0-4f89-41d3-9a0c-0305e82c3301"], ["3f2504e0", "Consent/abc"]),
        ("_count", [1, 20, 100], [0, 101]),
        ("_offset", [0, 40], [-1]),
        ("_id", ["3f2504e0-4f89-41d3-9a0c-0305e82c3301"], ["a_b", "x" * 65]),
    ],
)
def test_query_parameter_schemas(name: str, good: list[Any], bad: list[Any]) -> None:
    spec = load_spec()
    schema = next(p["schema"] for p in spec["components"]["parameters"].values() if p["name"] == name)
    validator = schema_validator(spec, schema)
    assert [v for v in good if not validator.is_valid(v)] == []
    assert [v for v in bad if validator.is_valid(v)] == []


def test_header_parameter_schemas() -> None:
    spec = load_spec()
    headers = {p["name"]: p for p in spec["components"]["parameters"].values() if p["in"] == "header"}
    assert {n for n, p in headers.items() if p["required"]} == {"x-request-id", "x-context-id", "x-user-agent"}
    agent = schema_validator(spec, headers["x-user-agent"]["schema"])
    assert agent.is_valid("apotekssystem/2.1 build-7") and agent.is_valid("x" * 100)
    assert not agent.is_valid("") and not agent.is_valid("x" * 101) and not agent.is_valid("a;b")
    request_id = schema_validator(spec, headers["x-request-id"]["schema"])
    assert request_id.is_valid("3f2504e0-4f89-41d3-9a0c-0305e82c3301") and not request_id.is_valid("not-a-uuid")
    assert headers["prefer"]["schema"]["enum"] == ["return=minimal", "return=representation"]
