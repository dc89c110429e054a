"""SOAP 1.1 messages of the old interface: reading an envelope, XML <-> data by the XSD, answers and faults.

Tolerant where real SOAP stacks are (any prefix, an XML declaration or none, whitespace between
elements, a charset parameter in any spelling), strict where SOAP 1.1 and the Basic Profile are:
one body element, no DTD, the SOAP 1.1 envelope namespace (another one is a VersionMismatch).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import xmlschema
from lxml import etree
from xmlschema.validators import XsdElement

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
ENVELOPE, HEADER, BODY, FAULT = (f"{{{SOAP11}}}{n}" for n in ("Envelope", "Header", "Body", "Fault"))
MUST_UNDERSTAND = f"{{{SOAP11}}}mustUnderstand"
CONTENT_TYPE = "text/xml; charset=utf-8"
XML_MEDIA = frozenset({"text/xml", "application/xml"})
APPLICATION, SYSTEM = "ApplicationException", "SystemException"
SYSTEM_CODE = "TJANSTEFEL"  # the one code of a SystemException (common schema, SystemfelkodType)
MESSAGE_LIMIT = 300  # characters of a validation message carried in a fault
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
# No entity expansion, no DTD loading, no network: a SOAP message may not carry a DTD at all.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@dataclass(frozen=True)
class Detail:
    """The detail of a fault: which fault element, its kod and meddelande."""

    kind: str  # APPLICATION or SYSTEM
    kod: str
    meddelande: str


class SoapFault(Exception):
    """A SOAP 1.1 fault to answer with: faultcode (without prefix), faultstring, optional detail."""

    def __init__(self, code: str, string: str, detail: Detail | None = None, charset: str | None = None) -> None:
        super().__init__(string)
        self.code = code
        self.string = string
        self.detail = detail
        self.charset = charset  # the charset the answer declares (None: UTF-8, as the body is written)


def refusal(kod: str, meddelande: str) -> SoapFault:
    """A rule said no (ApplicationException, faultcode Client)."""
    return SoapFault("Client", meddelande, Detail(APPLICATION, kod, meddelande))


def failure(meddelande: str) -> SoapFault:
    """The platform failed (SystemException, faultcode Server)."""
    return SoapFault("Server", meddelande, Detail(SYSTEM, SYSTEM_CODE, meddelande))


@dataclass(frozen=True)
class Envelope:
    """A parsed request: its SOAP header entries and its one body element."""

    header: tuple[etree._Element, ...]
    body: etree._Element

    def header_entry(self, qname: str) -> etree._Element | None:
        """The header entry of that qualified name (a second one is a malformed request)."""
        found = [e for e in self.header if e.tag == qname]
        if len(found) > 1:
            raise refusal("FELAKTIG_BEGARAN", f"SOAP-headern har {qname} mer än en gång")
        return found[0] if found else None


def _media(content_type: str | None) -> tuple[str, str | None]:
    if not content_type:
        return "", None
    media, *params = (p.strip() for p in content_type.split(";"))
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').strip("'") or None
    return media.lower(), charset


def _document(data: bytes, charset: str | None) -> etree._Element:
    if charset is None:
        return etree.fromstring(data, _PARSER)  # the XML declaration or BOM decides, UTF-8 otherwise
    try:
        codec = codecs.lookup(charset).name
    except LookupError:
        raise SoapFault("Client", f"okänd teckenkodning {charset!r}") from None
    try:
        text = data.decode("utf-8-sig" if codec == "utf-8" else codec)
    except UnicodeDecodeError as exc:
        raise SoapFault("Client", f"meddelandet är inte {charset}: {exc.reason}") from None
    # The HTTP charset outranks the document's own declaration (RFC 7303), which lxml cannot take on a str.
    return etree.fromstring(_DECLARATION.sub("", text, count=1).encode("utf-8"), _PARSER)


def parse_envelope(data: bytes, content_type: str | None, understood: Iterable[str]) -> Envelope:
    """Read a SOAP 1.1 request; raise SoapFault (Client, VersionMismatch, MustUnderstand) when it is not one."""
    media, charset = _media(content_type)
    if media == "application/soap+xml":
        raise SoapFault("VersionMismatch", "SOAP 1.2 stöds inte: tjänsten talar SOAP 1.1 (text/xml)")
    if media and media not in XML_MEDIA:
        raise SoapFault("Client", f"Content-Type {media} stöds inte: en SOAP 1.1-begäran är text/xml")
    try:
        root = _document(data, charset)
    except etree.XMLSyntaxError as exc:
        raise SoapFault("Client", f"felaktig XML: {exc.msg}"[:MESSAGE_LIMIT]) from None
    tree = root.getroottree()
    if tree.docinfo.doctype:
        raise SoapFault("Client", "ett SOAP-meddelande får inte ha en DTD")
    if etree.QName(root).localname == "Envelope" and root.tag != ENVELOPE:
        raise SoapFault("VersionMismatch", f"okänd SOAP-version {etree.QName(root).namespace}: väntade {SOAP11}")
    if root.tag != ENVELOPE:
        raise SoapFault("Client", f"inte ett SOAP-kuvert: rotelementet är {root.tag}")
    parts = [c for c in root if isinstance(c.tag, str)]
    header: tuple[etree._Element, ...] = ()
    if parts and parts[0].tag == HEADER:
        header = tuple(c for c in parts.pop(0) if isinstance(c.tag, str))
    if len(parts) != 1 or parts[0].tag != BODY:
        raise SoapFault("Client", "kuvertet ska ha en valfri Header och därefter en Body")
    children = [c for c in parts[0] if isinstance(c.tag, str)]
    if len(children) != 1 or (parts[0].text or "").strip():
        raise SoapFault("Client", f"Body ska ha exakt ett element (har {len(children)})")
    known = set(understood)
    for entry in header:
        if entry.get(MUST_UNDERSTAND, "0").strip() in ("1", "true") and entry.tag not in known:
            raise SoapFault("MustUnderstand", f"SOAP-headern {entry.tag} förstås inte")
    return Envelope(header, children[0])


def _message(error: xmlschema.XMLSchemaValidationError, element: etree._Element) -> str:
    return f"{error.path or etree.QName(element).localname}: {error.reason}"[:MESSAGE_LIMIT]


def validation_error(schema: xmlschema.XMLSchema10, element: etree._Element) -> str | None:
    """The first way an element breaks its schema, as one line; None when it is valid."""
    # no location hints: a message never makes the platform load a schema it names
    error = next(iter(schema.iter_errors(element, use_location_hints=False)), None)
    return None if error is None else _message(error, element)


def read(schema: xmlschema.XMLSchema10, element: etree._Element) -> dict[str, Any]:
    """A body element as data (local names, ints, booleans; the extension left out), once it is valid.

    Raises the refusal FELAKTIG_BEGARAN naming the first way it breaks its schema.
    """
    problem = validation_error(schema, element)
    if problem:
        raise refusal("FELAKTIG_BEGARAN", problem)
    shape = _shape(schema.elements[etree.QName(element).localname].type)
    data = _read(element, shape) if shape is not None else {}
    data.pop("extension", None)
    return data


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class _Child:
    """One child element of a complex type."""

    local: str
    qname: str
    shape: _Shape | None  # None: a simple value
    kind: type  # int, bool or str: what a simple value is as data
    repeated: bool  # maxOccurs above 1: a list in data


@dataclass(frozen=True)
class _Shape:
    """A complex type's child elements in the order its sequence fixes, read once from the XSD."""

    children: tuple[_Child, ...]
    names: frozenset[str]
    by_qname: dict[str, _Child]


def _kind(xsd_type: Any) -> type:
    primitive = xsd_type.primitive_type.local_name if xsd_type.is_simple() else "string"
    if primitive == "boolean":
        return bool
    if primitive == "decimal" and xsd_type.is_derived(xsd_type.maps.types[f"{{{XSD_NS}}}integer"]):
        return int
    return str


@cache
def _shape(xsd_type: Any) -> _Shape | None:
    # Walking xmlschema's model on every message costs more than the message: once per type is enough.
    if xsd_type.is_simple() or xsd_type.has_simple_content():
        return None
    children = tuple(
        _Child(c.local_name, c.name, _shape(c.type), _kind(c.type), c.max_occurs is None or c.max_occurs > 1)
        for c in xsd_type.content.iter_elements() if isinstance(c, XsdElement)  # a wildcard takes nothing of ours
    )
    return _Shape(children, frozenset(c.local for c in children), {c.qname: c for c in children})


def _value(text: str, kind: type) -> Any:
    if kind is int:
        return int(text)
    if kind is bool:
        return text.strip() in ("true", "1")
    return text


def _read(element: etree._Element, shape: _Shape) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for node in element:
        child = shape.by_qname.get(node.tag) if isinstance(node.tag, str) else None
        if child is None:
            continue  # a comment, or what a wildcard admitted
        value = _read(node, child.shape) if child.shape is not None else _value(node.text or "", child.kind)
        if child.repeated:
            data.setdefault(child.local, []).append(value)
        else:
            data[child.local] = value
    return data


def _fill(parent: etree._Element, shape: _Shape | None, data: Any) -> None:
    if shape is None:
        parent.text = _text(data)
        return
    if not isinstance(data, Mapping):
        raise TypeError(f"{parent.tag} needs a mapping, got {type(data).__name__}")
    extra = set(data) - shape.names
    if extra:
        raise TypeError(f"{parent.tag} has no element for {', '.join(sorted(extra))}")
    for child in shape.children:
        value = data.get(child.local)
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                _fill(etree.SubElement(parent, child.qname), child.shape, item)


def render(decl: XsdElement, data: Mapping[str, Any], nsmap: Mapping[str | None, str]) -> etree._Element:
    """Data as the element `decl`, children in the order its type fixes; values are not validated.

    An absent (None) value leaves its element out, so what a handler got wrong stays visible on the wire.
    """
    element = etree.Element(decl.name, nsmap=dict(nsmap))
    _fill(element, _shape(decl.type), data)
    return element


def _envelope(body_child: etree._Element) -> bytes:
    envelope = etree.Element(ENVELOPE, nsmap={"soap": SOAP11})
    etree.SubElement(envelope, BODY).append(body_child)
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))


def answer_envelope(element: etree._Element) -> bytes:
    """The answer envelope around a response element (no SOAP header: the WSDLs declare none on output)."""
    return _envelope(element)


def fault_envelope(fault: SoapFault, common_namespace: str) -> bytes:
    """A SOAP 1.1 fault; its detail, if any, is common:ApplicationException or common:SystemException."""
    element = etree.Element(FAULT, nsmap={"soap": SOAP11})
    etree.SubElement(element, "faultcode").text = f"soap:{fault.code}"
    etree.SubElement(element, "faultstring").text = fault.string
    if fault.detail is not None:
        detail = etree.SubElement(element, "detail")
        exception = etree.SubElement(detail, f"{{{common_namespace}}}{fault.detail.kind}",
                                     nsmap={"common": common_namespace})
        etree.SubElement(exception, f"{{{common_namespace}}}kod").text = fault.detail.kod
        etree.SubElement(exception, f"{{{common_namespace}}}meddelande").text = fault.detail.meddelande
    return _envelope(element)
