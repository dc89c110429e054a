"""legacy.yaml is generated from contracts/riv: the committed file is the generated one; it says what the XSD says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import xmlschema
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from rxverify.cli import main
from rxverify.contracts import patterns
from rxverify.contracts.jsonschema import SchemaWriter
from rxverify.contracts.openapi import generate, pointer, render
from rxverify.contracts.riv import load_riv

from .conftest import CONTRACTS
from .riv_copies import add_major, copy_contracts

COMMITTED = CONTRACTS / "openapi" / "legacy.yaml"
DOC: dict[str, Any] = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
RIV = load_riv(CONTRACTS)


def test_the_committed_file_is_the_generated_one() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(generate(CONTRACTS)), (
        "contracts/openapi/legacy.yaml is stale: run `rxverify contracts openapi`"
    )


def test_it_is_valid_openapi_3_1() -> None:
    validate(DOC)


def test_every_service_is_its_soap_endpoint() -> None:
    posts = {p: item["post"] for p, item in DOC["paths"].items()}
    assert set(posts) == {s.endpoint for s in RIV.services.values()}
    for service in RIV.services.values():
        op = posts[service.endpoint]
        assert op["operationId"] == service.operation_id
        assert op["x-roles"] == list(service.roles) and op["x-writes"] == service.writes
        assert op["x-faults"] == list(service.semantics.faults) and op["tags"] == [service.semantics.area]
        assert op["x-service"]["namespace"] == service.namespace
        assert op["x-service"]["soapAction"] == service.soap_action and op["x-service"]["major"] == service.major
        assert list(op["requestBody"]["content"]) == ["text/xml"]
        assert set(op["responses"]) == {"200", "500"}
        get = DOC["paths"][service.endpoint]["get"]
        assert get["operationId"] == f"{service.operation_id}.wsdl" and get["security"] == []


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = DOC["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_the_schemas_are_the_xsds() -> None:
    create = _resolve(DOC["components"]["schemas"]["SkapaOrdinationVard"])
    assert list(create["properties"]) == ["personnummer", "lakemedel", "doseringstext", "antalForpackningar",
                                          "antalUttag", "forskrivningstyp", "giltigTom", "extension"]
    assert create["required"] == ["personnummer", "lakemedel", "doseringstext", "antalForpackningar", "antalUttag",
                                  "forskrivningstyp"]
    assert create["additionalProperties"] is False
    person = _resolve(create["properties"]["personnummer"])
    assert person["format"] == "personid"  # the identity slot: registered test patients only
    assert _resolve(create["properties"]["antalUttag"]) == {"type": "integer", "minimum": 1, "maximum": 12}
    text = _resolve(create["properties"]["doseringstext"])
    assert (text["minLength"], text["maxLength"]) == (1, 500)
    ids = _resolve(DOC["components"]["schemas"]["HamtaExpeditionsIdResponse"])["properties"]["expeditionsId"]
    assert (ids["type"], ids["minItems"], ids["maxItems"]) == ("array", 1, 99)
    status = _resolve(DOC["components"]["schemas"]["or.OrdinationType"]["properties"]["status"])
    assert status["enum"] == ["Aktiv", "Parkerad", "Makulerad", "Slutexpedierad", "Avslutad"]


def test_links_point_into_the_decoded_answer() -> None:
    links = DOC["paths"]["/SkapaOrdinationVardResponder/V6"]["post"]["responses"]["200"]["links"]
    assert links["GodkannUttag"] == {"operationId": "GodkannUttag",
                                     "requestBody": {"ordinationsId": "$response.body#/ordinationsId"}}
    reserve = DOC["paths"]["/HamtaExpeditionsIdResponder/V1"]["post"]["responses"]["200"]["links"]
    assert reserve["RapporteraExpeditionLF"]["requestBody"] == {"expeditionsId": "$response.body#/expeditionsId/0"}
    withdrawal = DOC["paths"]["/GodkannUttagResponder/V1"]["post"]["responses"]["200"]["links"]
    assert set(withdrawal["RapporteraExpeditionLF"]["requestBody"]) == {"expeditionsId", "personnummer",
                                                                        "ordinationsId", "antalForpackningar"}
    assert pointer("historikpost[2]/uttag[1]/personnummer") == "/historikpost/1/uttag/0/personnummer"


def test_another_major_dropped_in_is_generated(tmp_path: Path) -> None:
    contracts = copy_contracts(tmp_path)
    add_major(contracts, "HamtaAktuellaOrdinationer", 5, 4)
    doc = generate(contracts)
    v4 = doc["paths"]["/HamtaAktuellaOrdinationerResponder/V4"]["post"]
    assert v4["operationId"] == "HamtaAktuellaOrdinationerV4"
    assert v4["x-service"]["namespace"].endswith("HamtaAktuellaOrdinationerResponder:4")
    assert doc["paths"]["/HamtaAktuellaOrdinationerResponder/V5"]["post"]["operationId"] == "HamtaAktuellaOrdinationer"
    assert "HamtaAktuellaOrdinationerV4.HamtaAktuellaOrdinationerResponseType" in doc["components"]["schemas"]
    validate(doc)


def test_the_command_writes_checks_and_refuses_broken_contracts(tmp_path: Path, capsys: Any) -> None:
    contracts = copy_contracts(tmp_path)
    assert main(["--contracts", str(contracts), "contracts", "openapi", "--check"]) == 0
    add_major(contracts, "HamtaAktuellaOrdinationer", 5, 4)
    assert main(["--contracts", str(contracts), "contracts", "openapi", "--check"]) == 1
    assert main(["--contracts", str(contracts), "contracts", "openapi"]) == 0
    assert main(["--contracts", str(contracts), "contracts", "openapi", "--check"]) == 0
    xsd = next((contracts / "riv" / "interactions").glob("GodkannUttag*/*.xsd"))
    xsd.write_text(xsd.read_text(encoding="utf-8").replace("</xs:schema>", ""), encoding="utf-8")
    capsys.readouterr()
    assert main(["--contracts", str(contracts), "contracts", "openapi"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(xsd.resolve()) in err


# ---- XSD patterns as JSON Schema patterns ----

def _xsd_type(pattern: str) -> Any:
    escaped = pattern.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    schema = xmlschema.XMLSchema10(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:simpleType name="T">'
        f'<xs:restriction base="xs:string"><xs:pattern value="{escaped}"/></xs:restriction></xs:simpleType>'
        "</xs:schema>")
    return schema.types["T"]


SHIPPED = sorted({r for path in (CONTRACTS / "riv").rglob("*.xsd")
                  for r in re.findall(r'<xs:pattern value="([^"]*)"', path.read_text(encoding="utf-8"))})
EXTRA = ["a.b", r"x\sy", r"\d{2}", "^$", r"[^a]b", r"(ab|c)+", r"[\-+]?[0-9]+", r"\S+"]


@pytest.mark.parametrize("xsd", SHIPPED + EXTRA)
def test_a_translated_pattern_means_what_the_xsd_pattern_means(xsd: str) -> None:
    xsd_type = _xsd_type(xsd.replace("&quot;", '"'))
    ecma = patterns.to_ecma(xsd)
    validator = jsonschema_rs.validator_for({"type": "string", "pattern": ecma})
    python = re.compile(ecma)

    alphabet = st.sampled_from("aAbxy0129 -+.:T\t\n\r\u00e5\u2028\x01^$Z")
    @settings(max_examples=300, deadline=None)
    @given(st.one_of(st.text(alphabet, max_size=12), st.from_regex(python, fullmatch=True)))
    def agrees(value: str) -> None:
        if "\x01" in value:  # not an XML character: no XML value holds it, and the JSON side refuses it
            assert not validator.is_valid(value)
            return
        if "\\S" in xsd and any(c.isspace() and c not in " \t\n\r" for c in value):
            return  # xmlschema (elementpath) reads XSD's \S as Python's, which excludes every Unicode space; XSD's not
        expected = xsd_type.is_valid(value)
        assert validator.is_valid(value) == expected, (xsd, ecma, value)
        if not value.endswith("\n"):  # Python's `$` also matches before a final newline; ECMA's does not
            assert bool(python.search(value)) == expected, (xsd, ecma, value)

    agrees()


@pytest.mark.parametrize("xsd", [r"[a-z-[aeiou]]", r"\i\c*", r"\w+", r"\p{Lu}", "[a"])
def test_what_has_no_faithful_form_is_refused(xsd: str) -> None:
    with pytest.raises(ValueError):
        patterns.to_ecma(xsd)


def _writer_for(body: str) -> tuple[SchemaWriter, Any]:
    schema = xmlschema.XMLSchema10(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="urn:t" targetNamespace="urn:t" '
        f'elementFormDefault="qualified">{body}</xs:schema>')
    return SchemaWriter(lambda ns: {"urn:t": "t"}[ns]), schema


def test_every_facet_is_translated() -> None:
    writer, schema = _writer_for(
        '<xs:simpleType name="Amount"><xs:restriction base="xs:decimal"><xs:minExclusive value="0"/>'
        '<xs:maxInclusive value="999.99"/><xs:fractionDigits value="2"/></xs:restriction></xs:simpleType>'
        '<xs:simpleType name="Small"><xs:restriction base="xs:int"><xs:totalDigits value="3"/>'
        '<xs:enumeration value="7"/><xs:enumeration value="42"/></xs:restriction></xs:simpleType>'
        '<xs:simpleType name="Code"><xs:restriction base="xs:string"><xs:length value="4"/>'
        '<xs:pattern value="[A-Z]+"/></xs:restriction></xs:simpleType>'
        '<xs:simpleType name="Narrower"><xs:restriction base="Code"><xs:pattern value="A.*"/></xs:restriction>'
        "</xs:simpleType>"
        '<xs:simpleType name="Free"><xs:restriction base="xs:string"/></xs:simpleType>')
    assert writer.simple(schema.types["Amount"]) == {"type": "number", "exclusiveMinimum": 0, "maximum": 999.99,
                                                     "multipleOf": 0.01}
    assert writer.simple(schema.types["Small"]) == {"type": "integer", "minimum": -999, "maximum": 999,
                                                    "enum": [7, 42]}
    assert writer.simple(schema.types["Code"]) == {"type": "string", "minLength": 4, "maxLength": 4,
                                                   "pattern": "^(?:[A-Z]+)$"}
    narrower = writer.simple(schema.types["Narrower"])
    assert narrower["allOf"] == [{"pattern": patterns.to_ecma("A.*")}, {"pattern": "^(?:[A-Z]+)$"}]
    assert writer.simple(schema.types["Free"]) == {"type": "string", "pattern": patterns.ANY_XML_TEXT}


def test_constructs_without_a_rendering_are_refused() -> None:
    writer, schema = _writer_for(
        '<xs:complexType name="WithAttribute"><xs:sequence><xs:element name="a" type="xs:string"/></xs:sequence>'
        '<xs:attribute name="b" type="xs:string"/></xs:complexType>'
        '<xs:simpleType name="Many"><xs:list itemType="xs:int"/></xs:simpleType>')
    with pytest.raises(ValueError, match="attributes"):
        writer.complex(schema.types["WithAttribute"])
    with pytest.raises(ValueError, match="xs:list"):
        writer.simple(schema.types["Many"])
