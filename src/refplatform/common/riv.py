"""The service contracts of the old interface as a platform reads them: contracts/riv/services.toml and its XSDs.

Each service interaction gets its responder schema compiled once (xmlschema, local imports only)
and the set of schema documents its WSDL reaches, for serving `?wsdl` and `?xsd=`.
"""

from __future__ import annotations

import posixpath
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xmlschema
from lxml import etree

XSD = "http://www.w3.org/2001/XMLSchema"
_IMPORTS = (f"{{{XSD}}}import", f"{{{XSD}}}include")


class ContractError(ValueError):
    """A service contract file is missing or malformed (the platform cannot start)."""


@dataclass(frozen=True)
class RivService:
    """One service interaction: where it is served, what it is called, its schema."""

    name: str
    domain: str
    major: int
    namespace: str  # the responder namespace
    soap_action: str
    endpoint: str  # path below the legacy base, e.g. /HamtaAktuellaOrdinationerResponder/V5
    roles: tuple[str, ...]
    writes: bool
    rest_operation: str
    lists: dict[str, str]  # JSON path of an array -> XML path of its repeated element
    wsdl: Path
    schema: xmlschema.XMLSchema10
    documents: dict[str, Path] = field(repr=False)  # path relative to the WSDL's folder -> file

    @property
    def request_element(self) -> str:
        """The qualified name of the body element of a request."""
        return f"{{{self.namespace}}}{self.name}"

    @property
    def response_element(self) -> str:
        """The qualified name of the body element of an answer."""
        return f"{{{self.namespace}}}{self.name}Response"


@dataclass(frozen=True)
class RivContracts:
    """Every service interaction of contracts/riv, and the rules they share."""

    folder: Path
    legacy_base: str
    names: dict[str, str]  # JSON name -> XML name (personId -> personnummer, ...)
    namespaces: dict[str, str]
    services: dict[str, RivService]
    logical_address: xmlschema.XMLSchema10
    argos: xmlschema.XMLSchema10


def _schema(path: Path) -> xmlschema.XMLSchema10:
    # The files import each other by relative schemaLocation; nothing is fetched from the network.
    try:
        return xmlschema.XMLSchema10(str(path), allow="local")
    except (OSError, xmlschema.XMLSchemaException) as exc:
        # xmlschema's messages run to many lines (the component, the path): the first one says it
        first = (getattr(exc, "message", None) or str(exc)).strip().splitlines()[0].rstrip(":")
        raise ContractError(f"cannot compile {path}: {first}") from None


def reachable_documents(wsdl: Path) -> dict[str, Path]:
    """Every schema a WSDL reaches through xs:import/xs:include, by path relative to the WSDL's folder."""
    root = wsdl.parent
    found: dict[str, Path] = {}
    pending = [("", wsdl)]
    while pending:
        rel_dir, path = pending.pop()
        try:
            tree = etree.parse(str(path))
        except (OSError, etree.XMLSyntaxError) as exc:
            raise ContractError(f"cannot read {path}: {exc}") from None
        for node in tree.iter(*_IMPORTS):
            location = node.get("schemaLocation")
            if not location:
                continue
            rel = posixpath.normpath(posixpath.join(rel_dir, location))
            if rel not in found:
                found[rel] = (root / rel).resolve()
                pending.append((posixpath.dirname(rel), found[rel]))
    return found


def load_riv(contracts: Path) -> RivContracts:
    """Read contracts/riv/services.toml and compile every responder schema it names."""
    folder = contracts / "riv"
    index = folder / "services.toml"
    try:
        data: dict[str, Any] = tomllib.loads(index.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ContractError(f"cannot read {index}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ContractError(f"{index} is not valid TOML: {exc}") from None
    services = {}
    try:
        for name, spec in data["operations"].items():
            wsdl = folder / spec["wsdl"]
            services[name] = RivService(
                name=name, domain=spec["domain"], major=int(spec["major"]), namespace=spec["namespace"],
                soap_action=spec["soap_action"], endpoint=spec["endpoint"], roles=tuple(spec["roles"]),
                writes=bool(spec["writes"]), rest_operation=spec["rest_operation"], lists=dict(spec["lists"]),
                wsdl=wsdl, schema=_schema(folder / spec["responder_xsd"]), documents=reachable_documents(wsdl),
            )
        namespaces = dict(data["namespaces"])
        return RivContracts(
            folder=folder, legacy_base=data["legacy_base"], names=dict(data["names"]), namespaces=namespaces,
            services=services,
            logical_address=_schema(folder / "core_components" / "itintegration_registry_1.0.xsd"),
            argos=_schema(folder / "core_components" / "ArgosHeader_1.0.xsd"),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ContractError(f"{index} is malformed: {type(exc).__name__} {exc}") from None
