"""The old interface's service contracts as the suite reads them: contracts/riv.

The wire comes from the files: every WSDL under `interactions/` is one service interaction, and
its service name, operation, responder namespace, major version, soapAction, header parts and
responder schema are read from that WSDL (and the XSD it imports). The semantics come from
`services.toml`, by service name, shared by every major version of a service (a table
`[operations.<Service>.V<major>]` overrides them for one major). So another major version of a
service dropped in beside the first (its WSDL and XSD) is generated and checked without code.

Nothing is fetched from the network: schemas compile from local files only. A broken WSDL or XSD
is one UserError naming the file.
"""

from __future__ import annotations

import re
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import xmlschema
from lxml import etree
from xmlschema import XMLSchemaImportWarning
from xmlschema.validators import XsdElement

from rxverify.errors import UserError

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
# RIV-TA: the responder namespace names the domain, the service and its major version
RESPONDER = re.compile(
    r"urn:riv:(?:[^:\s]+:)*?(?P<domain>[^:\s]+):(?P<service>[A-Za-z][A-Za-z0-9]*)Responder:(?P<major>[0-9]+)"
)
SEMANTIC_KEYS = ("area", "roles", "writes", "faults", "lists", "links")
ROLES = ("prescriber", "pharmacy")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass(frozen=True)
class Link:
    """A lifecycle link: a response element feeds an element of a later request."""

    name: str
    operation: str  # the target service's name
    source: str  # path below the response element: local names joined by "/", "[n]" picks the n-th (1-based)
    target: str  # a child of the target's request element
    note: str = ""


@dataclass(frozen=True)
class Semantics:
    """What services.toml says of a service: its area, who may call it, whether it writes, faults, lists, links."""

    area: str  # the service area it is reported under (prescriptions, dispensing, medication-list, patients)
    roles: tuple[str, ...]
    writes: bool
    faults: tuple[str, ...]  # ApplicationException codes it may answer
    lists: Mapping[str, str]  # JSON array path -> XML path of its repeated element
    links: tuple[Link, ...]


@dataclass(eq=False)
class Service:
    """One service interaction: one WSDL, one major version, one endpoint."""

    name: str
    major: int
    domain: str
    namespace: str  # the responder namespace: body element and its direct children
    soap_action: str
    wsdl: Path
    responder_xsd: Path
    header_parts: tuple[str, ...]  # qualified names of the header elements the binding declares
    semantics: Semantics
    operation_id: str  # the service name; a second major of a service gets `<name>V<major>`
    documentation: str = ""  # the WSDL's wsdl:documentation

    @property
    def endpoint(self) -> str:
        """The path below the legacy base: /<Service>Responder/V<major>."""
        return f"/{self.name}Responder/V{self.major}"

    @property
    def request_element(self) -> str:
        """The qualified name of a request's body element."""
        return f"{{{self.namespace}}}{self.name}"

    @property
    def response_element(self) -> str:
        """The qualified name of an answer's body element."""
        return f"{{{self.namespace}}}{self.name}Response"

    @property
    def schema(self) -> xmlschema.XMLSchema10:
        """The responder schema, compiled from local files (once per file and version of it)."""
        return compile_schema(self.responder_xsd)

    def element(self, response: bool = False) -> XsdElement:
        """The XSD declaration of the request element (or of the response element)."""
        local = f"{self.name}Response" if response else self.name
        try:
            return self.schema.elements[local]
        except KeyError:
            raise UserError(f"contract {self.responder_xsd} declares no element {local} (its WSDL {self.wsdl.name} "
                            "names it)") from None

    @property
    def roles(self) -> tuple[str, ...]:
        """The access-ticket roles that may call it."""
        return self.semantics.roles

    @property
    def writes(self) -> bool:
        """Whether it changes state (the guard ledgers it)."""
        return self.semantics.writes


@dataclass(eq=False)
class RivContracts:
    """Every service interaction of contracts/riv, and what they share."""

    folder: Path
    legacy_base: str
    names: Mapping[str, str]  # JSON name -> XML name (personId -> personnummer, ...)
    namespaces: Mapping[str, str]
    rest_status: Mapping[str, int]  # fault code -> the REST rendering's HTTP status (for rules that speak of it)
    application_exception: str
    system_exception: str
    logical_address: str  # the LogicalAddress a caller sends (the producer's address)
    version: str = ""  # the release the contracts describe
    areas: Mapping[str, str] = field(default_factory=dict)  # service area -> what it holds
    services: dict[str, Service] = field(default_factory=dict)  # by operation id

    def service(self, name: str, major: int | None = None) -> Service:
        """A service by operation id or by name (its default major, or the one asked)."""
        if major is None and name in self.services:
            return self.services[name]
        for s in self.services.values():
            if s.name == name and (major is None or s.major == major) and (major is not None or s.operation_id == name):
                return s
        known = ", ".join(sorted(self.services))
        raise UserError(f"no service {name}{f' V{major}' if major else ''} in {self.folder} (services: {known})")

    def majors(self, name: str) -> list[Service]:
        """Every major version of a service, lowest first."""
        return sorted((s for s in self.services.values() if s.name == name), key=lambda s: s.major)

    def by_path(self, path: str) -> Service | None:
        """The service served at `path` (below the legacy base), if any."""
        for s in self.services.values():
            if s.endpoint == path:
                return s
        return None

    @property
    def common(self) -> xmlschema.XMLSchema10:
        """The shared schema: the fault elements and the shared types."""
        return compile_schema(self.folder / "core_components" / "se.apotekensservice_common_1.0.xsd")

    @cached_property
    def header_schemas(self) -> dict[str, xmlschema.XMLSchema10]:
        """The schemas of the SOAP header elements every binding declares, by qualified name."""
        out: dict[str, xmlschema.XMLSchema10] = {}
        for service in self.services.values():
            for qname in service.header_parts:
                if qname not in out:
                    out[qname] = _header_schema(service.wsdl, qname)
        return out


def _first_line(exc: BaseException) -> str:
    text = (getattr(exc, "message", None) or getattr(exc, "strerror", None) or str(exc)).strip()
    return text.splitlines()[0].rstrip(":") if text else type(exc).__name__


@lru_cache(maxsize=256)
def _compiled(path: Path, mtime_ns: int) -> xmlschema.XMLSchema10:
    try:
        with warnings.catch_warnings():
            # an import xmlschema cannot read (or may not: allow="local" keeps it off the network) is a broken
            # contract, not a warning
            warnings.simplefilter("error", XMLSchemaImportWarning)
            return xmlschema.XMLSchema10(str(path), allow="local")
    except (OSError, xmlschema.XMLSchemaException, etree.XMLSyntaxError, SyntaxError, XMLSchemaImportWarning) as exc:
        raise UserError(f"contract {path} does not compile: {_first_line(exc)}") from None


def compile_schema(path: Path) -> xmlschema.XMLSchema10:
    """An XSD compiled from local files (cached per file and modification time); a broken one is a UserError."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise UserError(f"cannot read contract {path}: {exc.strerror}") from None
    return _compiled(_resolved(path), mtime)


@lru_cache(maxsize=1024)
def _resolved(path: Path) -> Path:
    """`path` made absolute, symlinks resolved (once per path: a request's schema lookup stats its file, no more)."""
    return path.resolve()


def _parse(path: Path) -> etree._Element:
    try:
        return etree.parse(str(path), _PARSER).getroot()
    except OSError as exc:
        raise UserError(f"cannot read contract {path}: {exc.strerror or exc}") from None
    except etree.XMLSyntaxError as exc:
        raise UserError(f"contract {path} is not well-formed XML: {exc}") from None


def _qname(node: etree._Element, value: str | None, path: Path) -> str:
    prefix, _, local = (value or "").rpartition(":")
    namespace = node.nsmap.get(prefix or None)
    if not local or namespace is None:
        raise UserError(f"contract {path}: {value!r} is not a qualified name the document declares")
    return f"{{{namespace}}}{local}"


@dataclass(frozen=True)
class _Wire:
    name: str
    major: int
    domain: str
    namespace: str
    soap_action: str
    responder_xsd: Path
    header_parts: tuple[str, ...]
    documentation: str


def _read_wsdl(path: Path) -> _Wire:
    """The wire of one interaction, as its WSDL says it."""
    root = _parse(path)
    if root.tag != f"{{{WSDL_NS}}}definitions":
        raise UserError(f"contract {path} is not a WSDL 1.1 document (its root is {root.tag})")
    w = f"{{{WSDL_NS}}}"
    messages = {m.get("name"): m for m in root.iter(f"{w}message")}
    operations = [op for pt in root.iter(f"{w}portType") for op in pt.iter(f"{w}operation")]
    if len(operations) != 1:
        raise UserError(f"contract {path}: a RIV-TA interaction has one operation, this WSDL has {len(operations)}")
    [operation] = operations

    def parts(io: str) -> dict[str, str]:
        node = operation.find(f"{w}{io}")
        message = messages.get((node.get("message") or "").rpartition(":")[2]) if node is not None else None
        if message is None:
            raise UserError(f"contract {path}: the {io} of operation {operation.get('name')} names no message")
        return {str(p.get("name")): _qname(p, p.get("element"), path) for p in message.iter(f"{w}part")}

    inputs, outputs = parts("input"), parts("output")
    bound = [op for b in root.iter(f"{w}binding") for op in b.iter(f"{w}operation")]
    if len(bound) != 1:
        raise UserError(f"contract {path}: the binding must bind the one operation")
    soap_op = bound[0].find(f"{{{WSDL_SOAP}}}operation")
    soap_action = soap_op.get("soapAction") if soap_op is not None else None
    if soap_action is None:
        raise UserError(f"contract {path}: the binding gives no soap:operation soapAction")
    input_binding = bound[0].find(f"{w}input")
    headers = [h.get("part") for h in input_binding.iter(f"{{{WSDL_SOAP}}}header")] if input_binding is not None else []
    header_parts = tuple(inputs[str(h)] for h in headers if h in inputs)
    body_parts = [name for name in inputs if inputs[name] not in header_parts]
    if len(body_parts) != 1 or len(outputs) != 1:
        raise UserError(f"contract {path}: document/literal takes one body part in and one out")
    body = etree.QName(inputs[body_parts[0]])
    match = RESPONDER.fullmatch(body.namespace or "")
    name = operation.get("name") or ""
    if match is None or match["service"] != name or body.localname != name:
        raise UserError(f"contract {path}: the body element {body.text} is not {name} in a responder namespace "
                        "urn:riv:<domain>:<Service>Responder:<major>")
    [answer] = outputs.values()
    if answer != f"{{{body.namespace}}}{name}Response":
        raise UserError(f"contract {path}: the answer element {answer} is not {name}Response in {body.namespace}")
    imports = {i.get("namespace"): i.get("schemaLocation") for i in root.iter(f"{{{XSD_NS}}}import")}
    location = imports.get(body.namespace)
    if not location or "://" in location:
        raise UserError(f"contract {path}: no local xs:import of the responder schema {body.namespace}")
    doc = root.find(f"{w}documentation")
    documentation = " ".join((doc.text or "").split()) if doc is not None else ""
    return _Wire(name, int(match["major"]), match["domain"], body.namespace, soap_action,
                 (path.parent / location).resolve(), header_parts, documentation)


def _header_schema(wsdl: Path, qname: str) -> xmlschema.XMLSchema10:
    namespace = etree.QName(qname).namespace
    root = _parse(wsdl)
    for node in root.iter(f"{{{XSD_NS}}}import"):
        if node.get("namespace") == namespace and node.get("schemaLocation"):
            return compile_schema((wsdl.parent / str(node.get("schemaLocation"))).resolve())
    raise UserError(f"contract {wsdl}: the header element {qname} has no xs:import of its schema")


def _semantics(name: str, spec: Mapping[str, Any], index: Path) -> Semantics:
    try:
        roles = tuple(str(r) for r in spec["roles"])
        unknown = [r for r in roles if r not in ROLES]
        if unknown or not roles:
            raise ValueError(f"roles {list(roles)} (each one of {', '.join(ROLES)})")
        links = tuple(
            Link(str(k["name"]), str(k["operation"]), str(k["from"]), str(k["to"]), str(k.get("note", "")))
            for k in spec.get("links", [])
        )
        faults = tuple(str(f) for f in spec.get("faults", []))
        lists = {str(k): str(v) for k, v in dict(spec.get("lists", {})).items()}
        return Semantics(str(spec.get("area", "legacy")), roles, bool(spec["writes"]), faults, lists, links)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{index}: [operations.{name}] is malformed: {type(exc).__name__} {exc}") from None


def _services(folder: Path, operations: Mapping[str, Any], index: Path) -> dict[str, Service]:
    wires = [(_read_wsdl(p), p) for p in sorted((folder / "interactions").glob("**/*.wsdl"))]
    if not wires:
        raise UserError(f"no WSDL under {folder / 'interactions'}")
    by_name: dict[str, list[tuple[_Wire, Path]]] = {}
    for wire, path in wires:
        by_name.setdefault(wire.name, []).append((wire, path))
    services: dict[str, Service] = {}
    for name, versions in sorted(by_name.items()):
        spec = operations.get(name)
        if not isinstance(spec, Mapping):
            raise UserError(f"{index} has no [operations.{name}]: the semantics of {versions[0][1]} (roles, writes, "
                            "faults, lists, links)")
        majors = sorted(w.major for w, _ in versions)
        if len(set(majors)) != len(majors):
            raise UserError(f"{folder}: two WSDLs of {name} have major version {max(majors, key=majors.count)}")
        default = int(spec.get("major", majors[-1])) if int(spec.get("major", 0)) in majors else majors[-1]
        for wire, path in versions:
            merged = dict(spec)
            override = spec.get(f"V{wire.major}")
            if isinstance(override, Mapping):
                merged.update({k: v for k, v in override.items() if k in SEMANTIC_KEYS})
            operation_id = name if wire.major == default else f"{name}V{wire.major}"
            services[operation_id] = Service(
                wire.name, wire.major, wire.domain, wire.namespace, wire.soap_action, path, wire.responder_xsd,
                wire.header_parts, _semantics(name, merged, index), operation_id, wire.documentation,
            )
    return services


def load_riv(contracts: Path) -> RivContracts:
    """contracts/riv: the services found in its WSDLs, with services.toml's semantics (schemas compile on use)."""
    folder = (contracts / "riv").resolve()
    index = folder / "services.toml"
    try:
        stamp = max(p.stat().st_mtime_ns for p in (index, *folder.glob("interactions/**/*.wsdl")))
    except OSError as exc:
        raise UserError(f"cannot read {index}: {exc.strerror}") from None
    return _load(folder, stamp)


@lru_cache(maxsize=8)
def _load(folder: Path, _stamp: int) -> RivContracts:
    index = folder / "services.toml"
    try:
        data: dict[str, Any] = tomllib.loads(index.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {index}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{index} is not valid TOML: {exc}") from None
    try:
        faults = data["faults"]
        contracts = RivContracts(
            folder=folder,
            legacy_base=str(data["legacy_base"]),
            names={str(k): str(v) for k, v in data["names"].items()},
            namespaces={str(k): str(v) for k, v in data["namespaces"].items()},
            rest_status={str(k): int(v) for k, v in faults["rest_status"].items()},
            application_exception=str(faults["application_exception"]),
            system_exception=str(faults["system_exception"]),
            logical_address=str(data.get("headers", {}).get("logical_address", "")),
            version=str(data.get("version", "")),
            areas={str(k): str(v) for k, v in data.get("areas", {}).items()},
        )
        operations = data["operations"]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{index} is malformed: {type(exc).__name__} {exc}") from None
    contracts.services = _services(folder, operations, index)
    for service in contracts.services.values():
        if contracts.areas and service.semantics.area not in contracts.areas:
            raise UserError(f"{index}: [operations.{service.name}] area {service.semantics.area!r} is not one of "
                            f"[areas] ({', '.join(contracts.areas)})")
        for link in service.semantics.links:
            if not contracts.majors(link.operation):
                raise UserError(f"{index}: link {link.name} of {service.name} names an unknown service "
                                f"{link.operation}")
    return contracts
