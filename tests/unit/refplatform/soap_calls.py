"""SOAP in the platform tests: envelopes written by hand, answers read and checked against the contract files.

Nothing here uses refplatform's SOAP code: requests are XML text, answers are validated with
xmlschema straight from contracts/riv, so a platform bug cannot agree with itself.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any
from xml.sax.saxutils import escape

import requests
import xmlschema
from lxml import etree

from .conftest import CONTRACTS, RunningPlatform

RIV = CONTRACTS / "riv"
INDEX: dict[str, Any] = tomllib.loads((RIV / "services.toml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = INDEX["operations"]
NS = INDEX["namespaces"]
SOAP11 = NS["envelope"]
COMMON = NS["common"]
LOGICAL_ADDRESS = f'<itr:LogicalAddress xmlns:itr="{NS["logical_address"]}">ehalsomyndigheten-test</itr:LogicalAddress>'
NPL = "19990101100001"
ALVEDON = {"nplPackId": NPL, "namn": "Alvedon 500 mg tablett"}
DOSAGE = "1 tablett 3 gånger dagligen vid behov"


@cache
def schema(service: str) -> xmlschema.XMLSchema10:
    """The responder schema of a service, compiled from the contract files."""
    return xmlschema.XMLSchema10(str(RIV / SERVICES[service]["responder_xsd"]))


@lru_cache(maxsize=1)
def common_schema() -> xmlschema.XMLSchema10:
    """The shared schema of the fault elements."""
    return xmlschema.XMLSchema10(str(RIV / "core_components" / "se.apotekensservice_common_1.0.xsd"))


def _value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else escape(str(value))


def body(service: str, fields: Mapping[str, Any], prefix: str = "r", namespace: str | None = None) -> str:
    """The body element of a request: children in the order given; a nested mapping's children in common."""
    parts = []
    for name, value in fields.items():
        if isinstance(value, Mapping):
            inner = "".join(f"<c:{k}>{_value(v)}</c:{k}>" for k, v in value.items())
            parts.append(f"<{prefix}:{name}>{inner}</{prefix}:{name}>")
        else:
            parts.append(f"<{prefix}:{name}>{_value(value)}</{prefix}:{name}>")
    ns = namespace or SERVICES[service]["namespace"]
    return (f'<{prefix}:{service} xmlns:{prefix}="{ns}" xmlns:c="{COMMON}">{"".join(parts)}'
            f"</{prefix}:{service}>")


def envelope(body_xml: str, header_xml: str = LOGICAL_ADDRESS, prefix: str = "soapenv",
             declaration: bool = True) -> bytes:
    """A SOAP 1.1 envelope around one body element."""
    head = '<?xml version="1.0" encoding="UTF-8"?>' if declaration else ""
    header = f"<{prefix}:Header>{header_xml}</{prefix}:Header>" if header_xml is not None else ""
    return (f'{head}<{prefix}:Envelope xmlns:{prefix}="{SOAP11}">{header}'
            f"<{prefix}:Body>{body_xml}</{prefix}:Body></{prefix}:Envelope>").encode()


def url(platform: RunningPlatform, service: str) -> str:
    """The endpoint of a service on a started platform."""
    return platform.base_url + INDEX["legacy_base"] + SERVICES[service]["endpoint"]


@dataclass
class Answer:
    """What came back, read as SOAP."""

    service: str
    response: requests.Response
    root: etree._Element

    @property
    def element(self) -> etree._Element:
        """The one element of the Body."""
        [child] = self.root.find(f"{{{SOAP11}}}Body")
        return child

    @property
    def is_fault(self) -> bool:
        return self.element.tag == f"{{{SOAP11}}}Fault"

    def fault(self) -> tuple[str, str, etree._Element | None]:
        """faultcode, faultstring, and the detail's one element (None without detail)."""
        assert self.is_fault, self.response.text
        detail = self.element.find("detail")
        entries = list(detail) if detail is not None else []
        assert len(entries) <= 1, self.response.text
        return self.element.findtext("faultcode") or "", self.element.findtext("faultstring") or "", (
            entries[0] if entries else None)


def post(http: requests.Session, platform: RunningPlatform, service: str, payload: bytes,
         headers: Mapping[str, str] | None = None, action: str | None = "quoted",
         content_type: str = "text/xml; charset=utf-8") -> Answer:
    """POST a payload to a service's endpoint and read the answer as a SOAP envelope."""
    sent = {"Content-Type": content_type, **(headers or {})}
    if action == "quoted":
        sent["SOAPAction"] = f'"{SERVICES[service]["soap_action"]}"'
    elif action is not None:
        sent["SOAPAction"] = action
    r = http.post(url(platform, service), data=payload, headers=sent, timeout=30)
    assert r.headers["content-type"].startswith("text/xml"), (r.status_code, r.headers, r.text[:300])
    root = etree.fromstring(r.content)
    assert root.tag == f"{{{SOAP11}}}Envelope", r.text[:300]
    assert root.find(f"{{{SOAP11}}}Header") is None, "answers carry no SOAP header"
    return Answer(service, r, root)


def call(http: requests.Session, platform: RunningPlatform, service: str, ticket: Mapping[str, str],
         **fields: Any) -> Answer:
    """A well-formed request of a service with these fields (in XSD order)."""
    return post(http, platform, service, envelope(body(service, fields)), ticket)


def ok(answer: Answer) -> dict[str, Any]:
    """Assert a valid answer of the contract; its data (local names, lists for repeated elements)."""
    assert answer.response.status_code == 200, answer.response.text
    assert not answer.is_fault, answer.response.text
    ns = SERVICES[answer.service]["namespace"]
    assert answer.element.tag == f"{{{ns}}}{answer.service}Response", answer.element.tag
    xsd = schema(answer.service)
    xsd.validate(answer.element)
    data = xsd.decode(answer.element, strip_namespaces=True)
    assert isinstance(data, dict)
    return data


def refused(answer: Answer, kod: str, kind: str = "ApplicationException", code: str = "soap:Client",
            status: int = 500) -> str:
    """Assert a fault of the contract with this detail; its meddelande."""
    assert answer.response.status_code == status, answer.response.text
    faultcode, faultstring, detail = answer.fault()
    assert faultcode == code, answer.response.text
    assert detail is not None and detail.tag == f"{{{COMMON}}}{kind}", answer.response.text
    common_schema().validate(detail)
    assert detail.findtext(f"{{{COMMON}}}kod") == kod, answer.response.text
    message = detail.findtext(f"{{{COMMON}}}meddelande") or ""
    assert message and faultstring, answer.response.text
    return message


def bare_fault(answer: Answer, code: str = "soap:Client", status: int = 500) -> str:
    """Assert a fault without detail (the envelope itself could not be read); its faultstring."""
    assert answer.response.status_code == status, answer.response.text
    faultcode, faultstring, detail = answer.fault()
    assert faultcode == code and faultstring and detail is None, answer.response.text
    return faultstring


def prescription(person_id: str, **override: Any) -> dict[str, Any]:
    """The fields of a SkapaOrdinationVard request, in XSD order."""
    fields: dict[str, Any] = {"personnummer": person_id, "lakemedel": ALVEDON, "doseringstext": DOSAGE,
                              "antalForpackningar": 1, "antalUttag": 3, "forskrivningstyp": "ELEKTRONISK"}
    fields.update(override)
    return fields
