"""The suite's reader of contracts/riv: the wire from the WSDLs, the semantics from services.toml, user contracts."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from rxverify.contracts.riv import load_riv
from rxverify.errors import UserError

from .conftest import CONTRACTS
from .riv_copies import add_major, copy_contracts

INDEX = tomllib.loads((CONTRACTS / "riv" / "services.toml").read_text(encoding="utf-8"))


def test_every_service_is_read_from_its_wsdl_as_services_toml_says() -> None:
    riv = load_riv(CONTRACTS)
    assert sorted(riv.services) == sorted(INDEX["operations"])
    for name, spec in INDEX["operations"].items():
        service = riv.service(name)
        assert (service.major, service.domain, service.namespace) == (spec["major"], spec["domain"], spec["namespace"])
        assert service.soap_action == spec["soap_action"] and service.endpoint == spec["endpoint"]
        assert service.responder_xsd == (CONTRACTS / "riv" / spec["responder_xsd"]).resolve()
        assert service.roles == tuple(spec["roles"]) and service.writes == spec["writes"]
        assert service.semantics.faults == tuple(spec["faults"])
        assert [link.name for link in service.semantics.links] == [k["name"] for k in spec["links"]]
        assert service.element().name == service.request_element
        assert service.element(response=True).name == service.response_element


def test_the_reader_does_not_import_the_platforms() -> None:
    source = (Path(__file__).parents[2] / "src" / "rxverify" / "contracts" / "riv.py").read_text(encoding="utf-8")
    assert "refplatform" not in source


def test_another_major_dropped_in_is_read_without_code(tmp_path: Path) -> None:
    contracts = copy_contracts(tmp_path)
    add_major(contracts, "HamtaAktuellaOrdinationer", 5, 4)
    riv = load_riv(contracts)
    v5, v4 = riv.service("HamtaAktuellaOrdinationer"), riv.service("HamtaAktuellaOrdinationerV4")
    assert (v5.major, v4.major) == (5, 4)
    assert v4.endpoint == "/HamtaAktuellaOrdinationerResponder/V4"
    assert v4.namespace == "urn:riv:se.apotekensservice:or:HamtaAktuellaOrdinationerResponder:4"
    assert v4.soap_action == f"{v4.namespace}:HamtaAktuellaOrdinationer"
    assert v4.semantics == v5.semantics  # shared by service name
    assert v4.element(response=True).name == f"{{{v4.namespace}}}HamtaAktuellaOrdinationerResponse"
    assert [s.major for s in riv.majors("HamtaAktuellaOrdinationer")] == [4, 5]
    assert riv.service("HamtaAktuellaOrdinationer", 4) is v4


def test_a_major_may_override_the_semantics(tmp_path: Path) -> None:
    contracts = copy_contracts(tmp_path)
    add_major(contracts, "HamtaAktuellaOrdinationer", 5, 4)
    index = contracts / "riv" / "services.toml"
    index.write_text(index.read_text(encoding="utf-8")
                     + '\n[operations.HamtaAktuellaOrdinationer.V4]\nroles = ["pharmacy"]\n', encoding="utf-8")
    riv = load_riv(contracts)
    assert riv.service("HamtaAktuellaOrdinationerV4").roles == ("pharmacy",)
    assert riv.service("HamtaAktuellaOrdinationer").roles == ("prescriber", "pharmacy")


def test_a_broken_wsdl_is_one_line_naming_it(tmp_path: Path) -> None:
    contracts = copy_contracts(tmp_path)
    wsdl = next((contracts / "riv" / "interactions").glob("GodkannUttag*/*.wsdl"))
    wsdl.write_text(wsdl.read_text(encoding="utf-8")[:900], encoding="utf-8")
    with pytest.raises(UserError) as caught:
        load_riv(contracts)
    assert str(wsdl.resolve()) in str(caught.value) and "\n" not in str(caught.value)


def test_a_broken_xsd_is_one_line_naming_it(tmp_path: Path) -> None:
    contracts = copy_contracts(tmp_path)
    xsd = next((contracts / "riv" / "interactions").glob("GodkannUttag*/*.xsd"))
    xsd.write_text(xsd.read_text(encoding="utf-8").replace('type="common:GlnType"', 'type="common:NoSuchType"')
                   .replace('type="common:OrdinationsIdType"', 'type="common:NoSuchType"'), encoding="utf-8")
    with pytest.raises(UserError) as caught:
        _ = load_riv(contracts).service("GodkannUttag").schema
    assert str(xsd.resolve()) in str(caught.value) and "\n" not in str(caught.value)


def test_schemas_are_never_fetched_from_the_network(tmp_path: Path) -> None:
    contracts = copy_contracts(tmp_path)
    xsd = next((contracts / "riv" / "interactions").glob("GodkannUttag*/*.xsd"))
    xsd.write_text(xsd.read_text(encoding="utf-8").replace(
        'schemaLocation="../../core_components/se.apotekensservice_common_1.0.xsd"',
        'schemaLocation="http://127.0.0.1:9/se.apotekensservice_common_1.0.xsd"'), encoding="utf-8")
    with pytest.raises(UserError, match="does not compile"):
        _ = load_riv(contracts).service("GodkannUttag").schema


def test_a_wsdl_outside_the_riv_naming_is_refused(tmp_path: Path) -> None:
    contracts = copy_contracts(tmp_path)
    wsdl = next((contracts / "riv" / "interactions").glob("GodkannUttag*/*.wsdl"))
    wsdl.write_text(wsdl.read_text(encoding="utf-8").replace("GodkannUttagResponder:1", "GodkannUttag:1"),
                    encoding="utf-8")
    with pytest.raises(UserError, match="responder namespace"):
        load_riv(contracts)


def test_a_service_without_semantics_is_refused(tmp_path: Path) -> None:
    contracts = copy_contracts(tmp_path)
    index = contracts / "riv" / "services.toml"
    text = index.read_text(encoding="utf-8")
    start = text.index("[operations.KontrolleraArbetsplatskod]")
    index.write_text(text[:start], encoding="utf-8")
    with pytest.raises(UserError, match=r"no \[operations.KontrolleraArbetsplatskod\]"):
        load_riv(contracts)
