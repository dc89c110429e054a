"""The transformer's SOAP wire: where its seeded wire faults change an answer after it is rendered.

Each fault is a regression a transformer's XML layer could really have; none changes the data the
transformer maps, only how the answer is written (so the REST rendering never shows them).
"""

from __future__ import annotations

from lxml import etree

from refplatform.common import soap
from refplatform.common.faults import FaultSet, register
from refplatform.common.riv import RivService
from refplatform.common.soap_binding import WireHooks

FAULT_UNRENAMED_ID = register(
    "transformer-wire-ordinationid-unrenamed", "new", "wire",
    "SOAP answers carry the element ordinationId (the REST/JSON name) instead of ordinationsId, wherever it occurs",
).name
FAULT_NAMESPACE_V4 = register(
    "transformer-wire-namespace-v4", "new", "wire",
    "HamtaAktuellaOrdinationerResponse (and its direct children) comes in the V4 responder namespace "
    "urn:riv:se.apotekensservice:or:HamtaAktuellaOrdinationerResponder:4 instead of V5",
).name
FAULT_ORDER = register(
    "transformer-wire-giltigtom-before-utfardandedatum", "new", "wire",
    "in every prescription of a SOAP answer giltigTom comes before utfardandedatum (the XSD's sequence fixes "
    "utfardandedatum first)",
).name
FAULT_DROPS_REASON = register(
    "transformer-wire-drops-makuleringsorsak", "new", "wire",
    "SOAP answers leave out makuleringsorsak: a cancelled prescription shows no reason (the element is optional, "
    "so the answer stays valid against the XSD)",
).name
FAULT_WRONG_KIND = register(
    "transformer-wire-systemexception-for-refusal", "new", "wire",
    "a business-rule refusal (MAKULERAD, EJ_MAKULERBAR, SAMTYCKE_SAKNAS, ...) comes as a SystemException "
    "(faultcode Server, kod TJANSTEFEL) instead of an ApplicationException",
).name
NAMESPACE_SERVICE = "HamtaAktuellaOrdinationer"  # the service whose answer fault transformer-wire-namespace-v4 hits
WRONG_MAJOR = 4  # the major version that fault writes instead of the contract's


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


class TransformerWire(WireHooks):
    """The transformer's wire: the contract's answers, unless a wire fault is switched on."""

    def __init__(self, faults: FaultSet) -> None:
        self.faults = faults

    def answer(self, service: RivService, element: etree._Element) -> etree._Element:
        """The rendered answer, with the switched-on wire faults applied."""
        if self.faults.on(FAULT_UNRENAMED_ID):
            for node in element.iter("{*}ordinationsId"):
                node.tag = f"{{{etree.QName(node).namespace}}}ordinationId"
        if self.faults.on(FAULT_DROPS_REASON):
            for node in list(element.iter("{*}makuleringsorsak")):
                parent = node.getparent()
                if parent is not None:
                    parent.remove(node)
        if self.faults.on(FAULT_ORDER):
            for issued in list(element.iter("{*}utfardandedatum")):
                valid_to = issued.getnext()
                if valid_to is not None and _local(valid_to) == "giltigTom":
                    issued.addprevious(valid_to)
        if self.faults.on(FAULT_NAMESPACE_V4) and service.name == NAMESPACE_SERVICE:
            wrong = f"{service.namespace.rsplit(':', 1)[0]}:{WRONG_MAJOR}"
            for node in (element, *element):
                if etree.QName(node).namespace == service.namespace:
                    node.tag = f"{{{wrong}}}{_local(node)}"
        return element

    def refusal(self, service: RivService, fault: soap.SoapFault) -> soap.SoapFault:
        """A business-rule refusal as it goes out."""
        if self.faults.on(FAULT_WRONG_KIND) and fault.detail is not None:
            return soap.failure(fault.detail.meddelande)
        return fault
