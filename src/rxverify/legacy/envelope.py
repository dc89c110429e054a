"""SOAP 1.1 messages of the old interface, by the XSD: envelopes written from dicts, answers read back to dicts.

Writing walks the XSD model of the body element: element order, namespaces and occurrences come
from the schema, so a dict in any key order gives valid XML. It is lenient on purpose, for
negative data: a key the model does not know becomes an extra element (at the end, in its
parent's namespace), a value of the wrong type is written as its text, a list repeats an element
whatever its maxOccurs. Reading an answer gives the fault (faultcode, faultstring, the detail's
kind, kod, meddelande) or the response element; decoding walks the model again: a dict of XML
local names, a list wherever the element may repeat (maxOccurs > 1), values typed by their
built-in XSD type (xs:int as int, xs:boolean as bool), any element the model does not know kept
by its local name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree
from xmlschema.validators import XsdElement

from rxverify.contracts.xsdmodel import builtin, by_name, is_simple, repeats

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
ENVELOPE, HEADER, BODY, FAULT = (f"{{{SOAP11}}}{n}" for n in ("Envelope", "Header", "Body", "Fault"))
CONTENT_TYPE = "text/xml; charset=utf-8"
APPLICATION, SYSTEM = "ApplicationException", "SystemException"
# No entity expansion, no DTD, no network: an answer is data, never instructions to the parser.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


# ---- writing ------------------------------------------------------------------------------------


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NAME_START = re.compile(r"[A-Za-z_\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff]")
_NAME_CHAR = re.compile(r"[-.0-9A-Za-z_\u00b7\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u037d\u037f-\u1fff]")


def text_of(value: Any) -> str:
    """A value as XML text: booleans as true/false, everything else as str(); characters XML cannot carry
    (negative data may hold them) become U+FFFD."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("\ufffd", str(value))


def xml_name(key: str) -> str:
    """A dict key as an element name: kept when it is an XML name, otherwise each character that may not
    stand there written as _xHHHH_ (negative data may hold any key)."""
    out = []
    for i, c in enumerate(key):
        ok = (_NAME_START if i == 0 else _NAME_CHAR).fullmatch(c)
        out.append(c if ok else f"_x{ord(c):04X}_")
    return "".join(out) or "_"


def _namespace(tag: str) -> str | None:
    return etree.QName(tag).namespace


def _append(parent: etree._Element, tag: str, decl: XsdElement | None, value: Any) -> None:
    if isinstance(value, etree._Element):
        parent.append(value)  # an element made elsewhere (generated from the XSD): taken as it is
        return
    node = etree.SubElement(parent, tag)
    fill(node, decl, value)


def fill(node: etree._Element, decl: XsdElement | None, value: Any) -> None:
    """Write `value` into `node` by the model of `decl` (None: no model, every key an element)."""
    xsd_type = decl.type if decl is not None else None
    if not isinstance(value, Mapping):
        if value is not None:
            node.text = text_of(value)
        return
    known = by_name(xsd_type) if xsd_type is not None and not is_simple(xsd_type) else {}
    ns = _namespace(node.tag)
    for child in (known.values() if known else ()):
        if child.local_name not in value:
            continue
        given = value[child.local_name]
        for item in given if isinstance(given, list) else [given]:
            if item is not None:
                _append(node, child.name or child.local_name, child, item)
    for key, given in value.items():
        if key in known:
            continue
        # not in the model: written anyway, as a caller with another idea of the contract would
        local = xml_name(str(key))
        tag = f"{{{ns}}}{local}" if ns else local
        for item in given if isinstance(given, list) else [given]:
            if item is not None:
                _append(node, tag, None, item)


def render(decl: XsdElement, value: Any, nsmap: Mapping[str | None, str] | None = None) -> etree._Element:
    """The element `decl` declares, holding `value` (a dict of XML local names, a text, or an element)."""
    if isinstance(value, etree._Element):
        return value
    node = etree.Element(decl.name, nsmap=dict(nsmap or {}))
    fill(node, decl, value)
    return node


def envelope(body: etree._Element, header: list[etree._Element] | None = None) -> bytes:
    """A SOAP 1.1 envelope (UTF-8, with an XML declaration) around one body element and its header entries."""
    root = etree.Element(ENVELOPE, nsmap={"soapenv": SOAP11})
    if header:
        head = etree.SubElement(root, HEADER)
        head.extend(header)
    etree.SubElement(root, BODY).append(body)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


# ---- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """A SOAP 1.1 fault as it was answered."""

    code: str  # faultcode's local name: Client, Server, VersionMismatch, MustUnderstand
    code_namespace: str | None  # the namespace of faultcode's prefix (SOAP 1.1's, for a proper fault)
    string: str
    kind: str | None  # ApplicationException, SystemException, another detail element's local name, or None
    kind_namespace: str | None
    kod: str | None
    meddelande: str | None
    detail: etree._Element | None  # the detail's one element

    def as_dict(self) -> dict[str, Any]:
        """The fault as data (local names), as the deserializer hands it to schemathesis."""
        out: dict[str, Any] = {"faultcode": self.code, "faultstring": self.string}
        if self.kind is not None:
            entry = {k: v for k, v in (("kod", self.kod), ("meddelande", self.meddelande)) if v is not None}
            out["detail"] = {self.kind: entry}
        return out


@dataclass(frozen=True)
class Parsed:
    """An answer read as SOAP: the envelope's header entries and its body element, or why it is not SOAP."""

    root: etree._Element | None
    header: tuple[etree._Element, ...]
    element: etree._Element | None  # the one body element (the response element or soap:Fault)
    fault: Fault | None
    problem: str | None  # why the answer is not a SOAP 1.1 envelope with one body element


def _local(node: etree._Element) -> str:
    return etree.QName(node).localname


def _fault(node: etree._Element) -> Fault:
    # SOAP 1.1 fault children are unqualified; read them by local name (a lenient platform may qualify them)
    found = {_local(c): c for c in node if isinstance(c.tag, str)}
    raw_code = (found["faultcode"].text or "").strip() if "faultcode" in found else ""
    prefix, _, code = raw_code.rpartition(":")
    code_namespace = found["faultcode"].nsmap.get(prefix or None) if "faultcode" in found else None
    string = (found["faultstring"].text or "") if "faultstring" in found else ""
    detail = found.get("detail")
    entries = [c for c in detail if isinstance(c.tag, str)] if detail is not None else []
    entry = entries[0] if entries else None
    kind = kind_ns = kod = meddelande = None
    if entry is not None:
        kind, kind_ns = _local(entry), etree.QName(entry).namespace
        parts = {_local(c): (c.text or "") for c in entry if isinstance(c.tag, str)}
        kod, meddelande = parts.get("kod"), parts.get("meddelande")
    return Fault(code, code_namespace, string, kind, kind_ns, kod, meddelande, entry)


def parse(content: bytes) -> Parsed:
    """Read an answer as a SOAP 1.1 envelope (never raises: what is wrong is `problem`)."""
    try:
        root = etree.fromstring(content, _PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        return Parsed(None, (), None, None, f"not XML: {exc}")
    if root.tag != ENVELOPE:
        return Parsed(root, (), None, None, f"not a SOAP 1.1 envelope: the root element is {root.tag}")
    header_node = root.find(HEADER)
    header = tuple(c for c in header_node if isinstance(c.tag, str)) if header_node is not None else ()
    body = root.find(BODY)
    entries = [c for c in body if isinstance(c.tag, str)] if body is not None else []
    if len(entries) != 1:
        return Parsed(root, header, None, None, f"the SOAP Body holds {len(entries)} elements, not one")
    [element] = entries
    fault = _fault(element) if element.tag == FAULT else None
    return Parsed(root, header, element, fault, None)


def _value(text: str | None, xsd_type: Any) -> Any:
    raw = text or ""
    base = builtin(xsd_type) if xsd_type is not None else None
    kind = getattr(base, "python_type", str) if base is not None else str
    stripped = raw.strip()
    if kind is bool:
        return {"true": True, "1": True, "false": False, "0": False}.get(stripped, raw)
    if kind is int:
        try:
            return int(stripped)
        except ValueError:
            return raw
    if kind is float:
        try:
            return float(stripped)
        except ValueError:
            return raw
    return raw


def decode(node: etree._Element, decl: XsdElement | None) -> Any:
    """An element as data by its declaration's model (None: no model, kept by local names)."""
    xsd_type = decl.type if decl is not None else None
    elements = [c for c in node if isinstance(c.tag, str)]
    if xsd_type is not None and is_simple(xsd_type) and not elements:
        return _value(node.text, xsd_type)
    if not elements:
        return node.text or ("" if xsd_type is None or is_simple(xsd_type) else {})
    known = by_name(xsd_type) if xsd_type is not None else {}
    out: dict[str, Any] = {}
    for child in elements:
        name = _local(child)
        child_decl = known.get(name)
        value = decode(child, child_decl)
        if child_decl is not None and repeats(child_decl):
            out.setdefault(name, []).append(value)
        elif name in out:  # a second occurrence where the model allows one: kept, as a list
            previous = out[name]
            out[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[name] = value
    return out
