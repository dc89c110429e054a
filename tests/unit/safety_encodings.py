"""Ways of hiding an identity in a request: the encoding families of the guard's decoders, as request builders.

Each family takes an identity as written (`written`) and a place, and builds the request a
caller could send: method, URL, headers, body. Used by the guard's unit tests and its volume
test, with foreign identities made at run time (never written to a file) and with registered
test patients (which must pass in every legal form).
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote
from uuid import UUID

import brotli

from rxverify.safety.identity import check_digit, find_identities
from rxverify.safety.registry import Registry

BASE = "http://127.0.0.1:9/legacy"
# separators a caller could put between the date and the birth number (the guard reads them all)
SEPARATORS = ("", "-", " ", "\u00a0", "\u2013", "\u2014", ".", "/")
# digits a server could normalise to ASCII: fullwidth, Arabic-Indic, Devanagari, mathematical bold
DIGIT_FORMS = (0xFF10, 0x0660, 0x0966, 0x1D7CE)


@dataclass(frozen=True)
class Request:
    """What a caller sends."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None


def foreign_identity(rng: random.Random, registry: Registry) -> str:
    """A formally valid 12-digit identity outside the registry (personnummer or samordningsnummer)."""
    while True:
        born = date(rng.randint(1901, 2025), rng.randint(1, 12), rng.randint(1, 28))
        day = born.day + (60 if rng.random() < 0.3 else 0)
        nine = f"{born.year % 100:02d}{born.month:02d}{day:02d}{rng.randint(0, 999):03d}"
        twelve = f"{born.year // 100}{nine}{check_digit(nine)}"
        if twelve not in registry:
            return twelve


def written(rng: random.Random, twelve: str, today: date | None = None) -> str:
    """`twelve` as a caller might write it, in a form that means exactly this person.

    12 digits with any separator, or 10 digits: with `+` from the age of 100, else with any
    other separator (a 10-digit form with `-` or none names the person under 100).
    """
    today = today or date.today()
    if rng.random() < 0.5:
        return twelve[:8] + rng.choice(SEPARATORS) + twelve[8:]
    centenarian = today.year - int(twelve[:4]) >= 100
    if int(twelve[:4]) > today.year - 100 and not centenarian:
        return twelve[2:8] + rng.choice(SEPARATORS) + twelve[8:]
    return twelve[2:8] + "+" + twelve[8:]


def _other_digits(text: str, rng: random.Random) -> str:
    zero = rng.choice(DIGIT_FORMS)
    return "".join(chr(zero + int(ch)) if ch.isdigit() and rng.random() < 0.6 else ch for ch in text)


def _json_escaped(text: str) -> str:
    return "".join(f"\\u{ord(ch):04x}" for ch in text)


def _b64(data: bytes, url: bool = False) -> str:
    return (base64.urlsafe_b64encode(data).rstrip(b"=") if url else base64.b64encode(data)).decode()


def _jwt(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode(), url=True)
    return f"{header}.{_b64(json.dumps(claims).encode(), url=True)}.{_b64(b'signature-bytes', url=True)}"


def _json_doc(value: Any) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [{"name": "p", "part": [{"valueIdentifier": {"value": value}}]}]}


Family = Callable[[random.Random, str], Request]


def percent(rng: random.Random, ident: str) -> Request:
    """In the path or the query, percent-encoded once to three times (every character, or the needed ones)."""
    text = ident
    for _ in range(rng.randint(1, 3)):
        text = "".join(f"%{b:02X}" for b in text.encode()) if rng.random() < 0.5 else quote(text, safe="")
    if rng.random() < 0.5:
        return Request("GET", f"{BASE}/patienter/{text}/ordinationer/aktuella", {})
    return Request("GET", f"{BASE}/MedicationRequest?patient.identifier={text}", {})


def form(rng: random.Random, ident: str) -> Request:
    """An application/x-www-form-urlencoded body (the form's own encoding: + for space)."""
    value = quote(ident, safe="")  # a space as %20: `+` would read as a century sign unencoded
    body = f"antal=1&pnr={value}&note=hej" if rng.random() < 0.5 else f"pnr={value}"
    return Request("POST", f"{BASE}/x", {"Content-Type": "application/x-www-form-urlencoded"}, body.encode())


def multipart(rng: random.Random, ident: str) -> Request:
    """A multipart/form-data body; the identity in one part, that part base64 or quoted-printable or plain."""
    boundary = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(16))  # no digits to misread
    encoding = rng.choice(["base64", "quoted-printable", "8bit"])
    content = json.dumps({"personId": ident}, ensure_ascii=False).encode()
    if encoding == "base64":
        payload = base64.encodebytes(content)
    elif encoding == "quoted-printable":
        import quopri

        payload = quopri.encodestring(content, quotetabs=True)
    else:
        payload = content
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhej\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"b\"\r\nContent-Type: application/json\r\n"
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    ).encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    return Request("POST", f"{BASE}/x", {"Content-Type": f"multipart/form-data; boundary={boundary}"}, body)


def json_forms(rng: random.Random, ident: str) -> Request:
    """JSON: as a string (plain or \\u-escaped), or a 12-digit one as a number: integer, float, exponent."""
    choice = rng.randrange(4) if len(ident) == 12 and ident.isdigit() else rng.randrange(2)
    if choice == 0:
        text = json.dumps(_json_doc(ident), ensure_ascii=False)
    elif choice == 1:
        text = json.dumps(_json_doc("PLACEHOLDER")).replace("PLACEHOLDER", _json_escaped(ident))
    elif choice == 2:
        text = json.dumps(_json_doc(0)).replace(": 0}", f": {int(ident)}}}")
    else:
        mantissa = f"{ident[0]}.{ident[1:]}"
        text = json.dumps(_json_doc(0)).replace(": 0}", f": {mantissa}{rng.choice(['e', 'E', 'e+'])}11}}")
    return Request("POST", f"{BASE}/x", {"Content-Type": "application/fhir+json"}, text.encode())


SOAP = (
    '<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
    "<s:Body>{}</s:Body></s:Envelope>"
)


def xml_forms(rng: random.Random, ident: str) -> Request:
    """XML/SOAP: character references, an internal entity, CDATA, split by a comment, in an attribute, or in an
    envelope with a requestId."""
    choice = rng.randrange(6)
    if choice == 5:  # the load path's envelope: a requestId UUID, read from its template (decode.BodyTemplate)
        uuid = str(UUID(int=rng.getrandbits(128), version=4))
        place = rng.choice([f"<personnummer>{ident}</personnummer>", f'<patient id="{ident}"/>',
                            f"<a>{uuid}</a><b>{ident}</b>", f"<a>{ident}</a><b>{uuid}</b>"])
        text = SOAP.format(place).replace("<s:Body>", f"<s:Header><requestId>{uuid}</requestId></s:Header><s:Body>")
        return Request("POST", f"{BASE}/x", {"Content-Type": "text/xml; charset=utf-8"}, text.encode())
    if choice == 0:
        value = "".join(f"&#{ord(ch)};" if rng.random() < 0.5 else f"&#x{ord(ch):x};" for ch in ident)
        text = SOAP.format(f"<personnummer>{value}</personnummer>")
    elif choice == 1:  # a DOCTYPE precedes the root: no envelope around it
        text = f'<!DOCTYPE a [<!ENTITY p "{ident}">]><a><personnummer>&p;</personnummer></a>'
    elif choice == 2:
        text = SOAP.format(f"<personnummer><![CDATA[{ident}]]></personnummer>")
    elif choice == 3:  # split inside the birth number, where no shorter reading of the text is an identity
        cuts = [c for c in range(len(ident) - 3, len(ident)) if not find_identities(ident[:c])]
        # a 12-digit form's first 10 digits can be an identity by themselves: cut after none of those
        cut = rng.choice(cuts) if cuts else len(ident) - 1
        text = SOAP.format(f"<personnummer>{ident[:cut]}<!-- x -->{ident[cut:]}</personnummer>")
    else:
        text = SOAP.format(f'<patient id="{ident}"/>')
    return Request("POST", f"{BASE}/x", {"Content-Type": "text/xml; charset=utf-8"}, text.encode())


def compressed(rng: random.Random, ident: str) -> Request:
    """A JSON body sent gzip, deflate (zlib or raw), br, or two of them."""
    raw = json.dumps({"personId": ident}, ensure_ascii=False).encode()
    codings = rng.choice([["gzip"], ["deflate"], ["br"], ["deflate", "gzip"], ["br", "gzip"]])
    body = raw
    for coding in codings:
        if coding == "gzip":
            body = gzip.compress(body)
        elif coding == "deflate":
            body = zlib.compress(body) if rng.random() < 0.5 else zlib.compress(body)[2:-4]
        else:
            body = brotli.compress(body)
    headers = {"Content-Type": "application/json", "Content-Encoding": ", ".join(codings)}
    return Request("POST", f"{BASE}/x", headers, body)


def charsets(rng: random.Random, ident: str) -> Request:
    """A text body in UTF-16 or UTF-32, with a BOM, or with a charset parameter, or neither."""
    encoding = rng.choice(["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
    text = f"patient {ident}"
    body = text.encode(encoding)
    how = rng.randrange(3)
    kind = "text/plain"
    if how == 0:
        body = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff", "utf-32-le": b"\xff\xfe\x00\x00",
                "utf-32-be": b"\x00\x00\xfe\xff"}[encoding] + body  # fmt: skip
    elif how == 1:
        kind += f"; charset={encoding}"
    return Request("POST", f"{BASE}/x", {"Content-Type": kind}, body)


def tokens(rng: random.Random, ident: str) -> Request:
    """In a token: Basic credentials, a JWT's payload, base64 in a header or a JSON body (a SAML assertion)."""
    choice = rng.randrange(4)
    if choice == 0:
        return Request("GET", f"{BASE}/x", {"Authorization": "Basic " + _b64(f"{ident}:secret".encode())})
    if choice == 1:
        return Request("GET", f"{BASE}/x", {"Authorization": "Bearer " + _jwt({"sub": ident, "role": "x"})})
    if choice == 2:
        assertion = f'<saml:Assertion><saml:NameID>{ident}</saml:NameID></saml:Assertion>'.encode()
        return Request("GET", f"{BASE}/x", {"x-access": _b64(assertion, url=rng.random() < 0.5)})
    body = json.dumps({"assertion": _b64(f"<a><pnr>{ident}</pnr></a>".encode())}).encode()
    return Request("POST", f"{BASE}/oauth2/api/oauth/token", {"Content-Type": "application/json"}, body)


def userinfo(rng: random.Random, ident: str) -> Request:
    """In the URL's userinfo (user or password), percent-encoded as a URL needs."""
    user = quote(ident, safe="")
    netloc = f"{user}:x@127.0.0.1:9" if rng.random() < 0.5 else f"u:{user}@127.0.0.1:9"
    return Request("GET", f"http://{netloc}/legacy/x", {})


def places(rng: random.Random, ident: str) -> Request:
    """Plain text in every place: the path, the query, each header, a body nested at any depth, text/plain."""
    choice = rng.randrange(5)
    if choice == 0:
        return Request("GET", f"{BASE}/patienter/{quote(ident, safe='')}", {})
    if choice == 1:
        return Request("GET", f"{BASE}/MedicationRequest?patient={quote(ident, safe='')}", {})
    if choice == 2:
        name = rng.choice(["x-patientref", "x-context-id", "x-provenance", "Cookie", "Referer"])
        latin1 = ident.encode("latin-1", "ignore").decode("latin-1") == ident
        value = ident if latin1 and name != "Cookie" else quote(ident, safe="")  # a header is latin-1
        return Request("GET", f"{BASE}/x", {name: value})
    if choice == 3:
        node: Any = ident
        for _ in range(rng.randint(1, 6)):
            node = [node] if rng.random() < 0.5 else {"d": node}
        return Request("POST", f"{BASE}/x", {"Content-Type": "application/json"}, json.dumps(node).encode())
    return Request("POST", f"{BASE}/x", {"Content-Type": "text/plain"}, f"enl. {ident} tack".encode())


def digit_forms(rng: random.Random, ident: str) -> Request:
    """Digits a server could normalise to ASCII (fullwidth, Arabic-Indic, ...), in a JSON body or a header."""
    other = _other_digits(ident, rng)
    if rng.random() < 0.5:
        body = json.dumps({"personId": other}, ensure_ascii=rng.random() < 0.5).encode()
        return Request("POST", f"{BASE}/x", {"Content-Type": "application/json"}, body)
    return Request("GET", f"{BASE}/x", {"x-patientref": quote(other, safe="")})


FAMILIES: dict[str, Family] = {
    "places and separators": places,
    "percent-encoding": percent,
    "form data": form,
    "multipart": multipart,
    "JSON": json_forms,
    "XML and SOAP": xml_forms,
    "content-encoding": compressed,
    "charsets": charsets,
    "base64 tokens": tokens,
    "URL userinfo": userinfo,
    "Unicode digits": digit_forms,
}
