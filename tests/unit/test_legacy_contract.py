"""The legacy contract itself: valid OpenAPI 3.1, every operation named and guarded."""

from __future__ import annotations

import yaml
from openapi_spec_validator import validate

from .conftest import CONTRACTS

SERVICES = {
    "SkapaOrdinationVard",
    "HamtaAktuellaOrdinationer",
    "HamtaOrdinationshistorik",
    "MakuleraOrdination",
    "HamtaExpeditionsId",
    "GodkannUttag",
    "RapporteraExpeditionLF",
    "UppdateraSamtycke",
    "HamtaLakemedelsforteckning",
    "KontrolleraArbetsplatskod",
    "HamtaPatientInfo",
}


def _doc() -> dict:
    return yaml.safe_load((CONTRACTS / "openapi" / "legacy.yaml").read_text(encoding="utf-8"))


def test_legacy_contract_is_valid_openapi() -> None:
    validate(_doc())


def test_every_service_is_an_operation_with_roles_and_faults() -> None:
    doc = _doc()
    ops = {op["operationId"]: op for item in doc["paths"].values() for op in item.values()}
    assert set(ops) == SERVICES
    for name, op in ops.items():
        assert set(op["x-roles"]) <= {"prescriber", "pharmacy"}, name
        errors = [code for code in op["responses"] if code.startswith(("4", "5"))]
        assert "401" in errors, name  # the ticket is checked everywhere
        for code in errors:
            ref = op["responses"][code]["$ref"].split("/")[-1]
            schema = doc["components"]["responses"][ref]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Fault"}, (name, code)


def test_lifecycle_links_are_declared() -> None:
    doc = _doc()
    create = doc["paths"]["/ordinationer"]["post"]["responses"]["201"]["links"]
    assert {"HamtaAktuellaOrdinationer", "GodkannUttag", "MakuleraOrdination"} <= set(create)
    cancel = doc["paths"]["/ordinationer/{ordinationId}/makulering"]["post"]["responses"]["200"]["links"]
    assert cancel["GodkannUttagEfterMakulering"]["operationId"] == "GodkannUttag"
