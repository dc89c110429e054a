"""The RIV-TA service contracts (contracts/riv) are sound, offline, and agree with services.toml and legacy.yaml.

- every XSD compiles with xmlschema and with lxml; every WSDL loads in zeep from local files only;
- services.toml says what each WSDL says: operation, soapAction, namespaces, headers, faults, endpoint;
- the XML keeps the REST/JSON rendering's fields, nesting, occurrences and facets under the renames
  of services.toml [names] and [operations.*.lists], so porting a check from JSON to XML is mechanical;
- roles, writes and lifecycle links are legacy.yaml's.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import xmlschema
import yaml
import zeep
from lxml import etree
from zeep.transports import Transport

ROOT = Path(__file__).resolve().parents[2]
RIV = ROOT / "contracts" / "riv"
INDEX: dict[str, Any] = tomllib.loads((RIV / "services.toml").read_text(encoding="utf-8"))
OPERATIONS: dict[str, dict[str, Any]] = INDEX["operations"]
NAMES: dict[str, str] = INDEX["names"]
LEGACY: dict[str, Any] = yaml.safe_load((ROOT / "contracts" / "openapi" / "legacy-rest.yaml").read_text(
    encoding="utf-8"))
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
XSD_FILES = sorted(RIV.rglob("*.xsd"))
WSDL_FILES = sorted(RIV.rglob("*.wsdl"))
# the public contracts' majors where they have the service; V5 of HamtaAktuellaOrdinationer as the
# migration's public test harness calls it; V1 where they have none (shared/DOMAIN.md)
MAJORS = {"SkapaOrdinationVard": 6, "HamtaAktuellaOrdinationer": 5, "HamtaOrdinationshistorik": 4,
          "MakuleraOrdinationVard": 4, "MakuleraOrdinationApotek": 1, "GodkannUttag": 1, "HamtaExpeditionsId": 1,
          "HamtaPatientInfo": 5, "UppdateraSamtycke": 4, "RapporteraExpeditionLF": 1,
          "HamtaLakemedelsforteckning": 1, "KontrolleraArbetsplatskod": 1}


class OfflineTransport(Transport):
    """A zeep transport that refuses every URL that is not a local file."""

    def load(self, url: str) -> bytes:
        if "://" in url and not url.startswith("file://"):
            raise AssertionError(f"zeep tried to fetch {url}")
        return super().load(url)  # type: ignore[no-any-return]


@pytest.mark.parametrize("path", XSD_FILES, ids=lambda p: p.name)
def test_every_xsd_compiles_with_xmlschema_and_lxml(path: Path) -> None:
    schema = xmlschema.XMLSchema10(str(path), allow="local")
    assert schema.validity == "valid"
    etree.XMLSchema(etree.parse(str(path)))
    root = etree.parse(str(path)).getroot()
    assert root.get("elementFormDefault") == "qualified"
    for node in root.iter("{http://www.w3.org/2001/XMLSchema}import"):
        location = node.get("schemaLocation", "")
        assert location and "://" not in location and (path.parent / location).is_file(), location


@pytest.mark.parametrize("path", WSDL_FILES, ids=lambda p: p.name)
def test_every_wsdl_loads_in_zeep_offline(path: Path) -> None:
    client = zeep.Client(str(path), transport=OfflineTransport())
    [service] = client.wsdl.services.values()
    [port] = service.ports.values()
    assert len(port.binding._operations) == 1


def test_the_twelve_services_and_their_majors() -> None:
    assert {name: spec["major"] for name, spec in OPERATIONS.items()} == MAJORS
    assert sorted(p.name for p in WSDL_FILES) == sorted(Path(s["wsdl"]).name for s in OPERATIONS.values())


def _wsdl(spec: dict[str, Any]) -> etree._Element:
    return etree.parse(str(RIV / spec["wsdl"])).getroot()


def _qname(element: etree._Element, value: str) -> str:
    prefix, _, local = value.rpartition(":")
    return f"{{{element.nsmap[prefix or None]}}}{local}"


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_services_toml_agrees_with_the_wsdl(name: str) -> None:
    spec = OPERATIONS[name]
    domain, major, ns = spec["domain"], spec["major"], spec["namespace"]
    assert ns == f"urn:riv:se.apotekensservice:{domain}:{name}Responder:{major}"
    assert spec["soap_action"] == f"{ns}:{name}"
    assert spec["endpoint"] == f"/{name}Responder/V{major}"
    assert spec["wsdl"] == f"interactions/{name}Interaction/{name}Interaction_{major}.0_rivtabp21.wsdl"
    assert spec["responder_xsd"] == f"interactions/{name}Interaction/{name}Responder_{major}.0.xsd"
    assert etree.parse(str(RIV / spec["responder_xsd"])).getroot().get("targetNamespace") == ns

    wsdl = _wsdl(spec)
    assert wsdl.get("targetNamespace") == f"urn:riv:se.apotekensservice:{domain}:{name}:{major}:rivtabp21"
    messages = {m.get("name"): m for m in wsdl.iter(f"{{{WSDL_NS}}}message")}
    [operation] = next(wsdl.iter(f"{{{WSDL_NS}}}portType")).iter(f"{{{WSDL_NS}}}operation")
    assert operation.get("name") == name

    def parts(message_ref: str) -> dict[str, str]:
        message = messages[message_ref.rpartition(":")[2]]
        return {p.get("name"): _qname(wsdl, p.get("element")) for p in message.iter(f"{{{WSDL_NS}}}part")}

    request = parts(operation.find(f"{{{WSDL_NS}}}input").get("message"))
    ns_of = INDEX["namespaces"]
    assert request == {"parameters": f"{{{ns}}}{name}",
                       "LogicalAddress": f"{{{ns_of['logical_address']}}}LogicalAddress",
                       "ArgosHeader": f"{{{ns_of['argos']}}}ArgosHeader"}
    assert parts(operation.find(f"{{{WSDL_NS}}}output").get("message")) == {"parameters": f"{{{ns}}}{name}Response"}
    faults = {f.get("name"): parts(f.get("message")) for f in operation.iter(f"{{{WSDL_NS}}}fault")}
    assert faults == {kind: {"fault": f"{{{ns_of['common']}}}{kind}"} for kind in
                      (INDEX["faults"]["application_exception"], INDEX["faults"]["system_exception"])}

    binding = next(wsdl.iter(f"{{{WSDL_NS}}}binding"))
    [bound] = binding.iter(f"{{{WSDL_NS}}}operation")
    assert bound.get("name") == name
    assert bound.find(f"{{{WSDL_SOAP}}}operation").get("soapAction") == spec["soap_action"]
    assert binding.find(f"{{{WSDL_SOAP}}}binding").get("style") == "document"
    headers = {h.get("part") for h in bound.find(f"{{{WSDL_NS}}}input").iter(f"{{{WSDL_SOAP}}}header")}
    assert headers == {"LogicalAddress", "ArgosHeader"}
    assert {f.get("name") for f in bound.iter(f"{{{WSDL_NS}}}fault")} == set(faults)
    [address] = wsdl.iter(f"{{{WSDL_SOAP}}}address")
    assert address.get("location", "").endswith(INDEX["legacy_base"] + spec["endpoint"])

    client = zeep.Client(str(RIV / spec["wsdl"]), transport=OfflineTransport())
    [port] = next(iter(client.wsdl.services.values())).ports.values()
    zeep_op = port.binding._operations[name]
    assert zeep_op.soapaction == spec["soap_action"]
    assert zeep_op.input.body.qname.text == f"{{{ns}}}{name}"


# ---- the XML is the REST/JSON rendering, renamed ----

def _deref(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = LEGACY
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _rest(operation_id: str) -> tuple[str, str, dict[str, Any]]:
    for path, item in LEGACY["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                return path, method, op
    raise KeyError(operation_id)


@cache
def _schema(name: str) -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(str(RIV / OPERATIONS[name]["responder_xsd"]))


def _pattern(json_pattern: str) -> str:
    # JSON Schema anchors and non-capturing groups; XSD patterns are anchored and have plain groups
    return json_pattern.removeprefix("^").removesuffix("$").replace("(?:", "(")


PRIMITIVE = {"integer": "decimal", "boolean": "boolean", "string": "string"}
FORMAT_PRIMITIVE = {"date": "date", "date-time": "dateTime"}


def _same_value(json_schema: dict[str, Any], xsd_type: Any, at: str) -> None:
    js = _deref(json_schema)
    assert xsd_type.is_simple(), f"{at}: JSON {js.get('type')} is a complex XSD type"
    primitive = FORMAT_PRIMITIVE.get(js.get("format", ""), PRIMITIVE[js["type"]])
    assert xsd_type.primitive_type.local_name == primitive, at
    assert (xsd_type.enumeration or None) == js.get("enum"), at
    patterns = xsd_type.patterns.regexps if getattr(xsd_type, "patterns", None) else []
    if "pattern" in js:
        assert patterns == [_pattern(js["pattern"])], at
    else:  # a format the XSD spells as a pattern (uuid, an instant's offset), or none at all
        assert not patterns or js.get("format") in ("uuid", "date-time"), (at, patterns)
    assert xsd_type.min_length == js.get("minLength") and xsd_type.max_length == js.get("maxLength"), at
    assert xsd_type.min_value == js.get("minimum") and xsd_type.max_value == js.get("maximum"), at


def _children(xsd_type: Any) -> list[Any]:
    return [c for c in xsd_type.content.iter_elements() if getattr(c, "local_name", None) not in (None, "extension")]


def _same_object(fields: list[tuple[str, bool, dict[str, Any]]], xsd_type: Any, lists: dict[str, str],
                 at: str) -> None:
    """JSON fields (name, required, schema) in order == the XSD type's children, renamed, with facets."""
    children = _children(xsd_type)
    expected = []
    for name, _, schema in fields:
        path = f"{at}/{name}" if at else name
        expected.append(lists[path].rsplit("/", 1)[-1] if _deref(schema).get("type") == "array" else NAMES.get(name,
                                                                                                            name))
    assert [c.local_name for c in children] == expected, at or "(top)"
    for (name, required, schema), child in zip(fields, children, strict=True):
        path = f"{at}/{name}" if at else name
        js = _deref(schema)
        if js.get("type") == "array":
            assert (child.min_occurs, child.max_occurs) == (js.get("minItems", 0), js.get("maxItems")), path
            js = _deref(js["items"])
        else:
            assert (child.min_occurs, child.max_occurs) == (1 if required else 0, 1), path
        if js.get("type") == "object":
            _same_object(_properties(js), child.type, lists, path)
        else:
            _same_value(js, child.type, path)


def _properties(schema: dict[str, Any]) -> list[tuple[str, bool, dict[str, Any]]]:
    js = _deref(schema)
    required = set(js.get("required", []))
    return [(name, name in required, sub) for name, sub in js["properties"].items()]


def _request_fields(op: dict[str, Any]) -> list[tuple[str, bool, dict[str, Any]]]:
    # path parameters first, then the body's properties (services.toml says so)
    fields = [(p["name"], True, p["schema"]) for p in map(_deref, op.get("parameters", [])) if p["in"] == "path"]
    body = op.get("requestBody")
    if body:
        fields += _properties(_deref(body)["content"]["application/json"]["schema"])
    return fields


def _response_fields(op: dict[str, Any]) -> list[tuple[str, bool, dict[str, Any]]]:
    success = next(v for k, v in op["responses"].items() if k.startswith("2"))
    return _properties(success["content"]["application/json"]["schema"])


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_requests_and_answers_are_the_rest_rendering_renamed(name: str) -> None:
    spec = OPERATIONS[name]
    _, _, op = _rest(spec["rest_operation"])
    schema = _schema(name)
    _same_object(_request_fields(op), schema.elements[name].type, {}, "")
    _same_object(_response_fields(op), schema.elements[f"{name}Response"].type, spec["lists"], "")
    for kind in ("", "Response"):
        [*_, last] = schema.elements[f"{name}{kind}"].type.content.iter_elements()
        assert last.local_name == "extension" and last.min_occurs == 0, f"{name}{kind} ends with extension"


def test_fault_codes_are_the_rest_renderings() -> None:
    common = xmlschema.XMLSchema10(str(RIV / "core_components" / "se.apotekensservice_common_1.0.xsd"))
    codes = common.types["FelkodType"].enumeration
    assert codes == _deref({"$ref": "#/components/schemas/Fault"})["properties"]["kod"]["enum"]
    assert sorted(INDEX["faults"]["rest_status"]) == sorted(codes)
    for name, spec in OPERATIONS.items():
        assert set(spec["faults"]) <= set(codes), name
        _, _, op = _rest(spec["rest_operation"])
        statuses = {int(s) for s in op["responses"] if not s.startswith("2")}
        assert {INDEX["faults"]["rest_status"][k] for k in spec["faults"]} <= statuses, name


def test_roles_writes_and_links_are_legacy_yamls() -> None:
    by_rest: dict[str, set[str]] = {}
    for name, spec in OPERATIONS.items():
        _, method, op = _rest(spec["rest_operation"])
        assert spec["writes"] == (method in ("post", "put")), name
        by_rest.setdefault(spec["rest_operation"], set()).update(spec["roles"])
    for rest_id, roles in by_rest.items():
        assert roles == set(_rest(rest_id)[2]["x-roles"]), rest_id
    # the cancellation split by caller: prescribers through -Vard, pharmacies through -Apotek
    assert OPERATIONS["MakuleraOrdinationVard"]["roles"] == ["prescriber"]
    assert OPERATIONS["MakuleraOrdinationApotek"]["roles"] == ["pharmacy"]

    expected, found = set(), set()
    for name, spec in OPERATIONS.items():
        _, _, op = _rest(spec["rest_operation"])
        for response in op["responses"].values():
            for link in (response.get("links") or {}).values():
                pairs = {**link.get("parameters", {}), **link.get("requestBody", {})}
                for to, source in pairs.items():
                    pointer = source.removeprefix("$response.body#/").split("/")
                    expected.add((spec["rest_operation"], link["operationId"], pointer[0], to))
        for link in spec["links"]:
            target = OPERATIONS[link["operation"]]
            back = {xml: json for json, xml in NAMES.items()}
            source = re.sub(r"\[\d+\]$", "", link["from"])
            json_source = next((j for j, x in spec["lists"].items() if x == source), back.get(source, source))
            found.add((spec["rest_operation"], target["rest_operation"], json_source, back.get(link["to"], link["to"])))
            _path_exists(_schema(name).elements[f"{name}Response"], link["from"])
            _path_exists(_schema(link["operation"]).elements[link["operation"]], link["to"])
    assert found == expected


def _path_exists(element: Any, path: str) -> None:
    for step in path.split("/"):
        local = re.sub(r"\[\d+\]$", "", step)
        [element] = [c for c in _children(element.type) if c.local_name == local]
        if step != local:
            assert element.max_occurs is None or element.max_occurs > 1, path
