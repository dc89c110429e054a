"""The guard reads a request as a server would: every encoding family, foreign identities refused, test patients sent.

Each finding of issue 11's "encodings it cannot read" has its own test below; the properties
run every family (tests/unit/safety_encodings.py) with identities made at run time.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import random
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxverify.safety.guard import Guard, RequestRefused
from rxverify.safety.identity import find_identities, mask_identities, normalise
from rxverify.safety.registry import Registry

from . import safety_encodings as enc

URL = "http://127.0.0.1:9/legacy/x"


def _foreign(registry: Registry, seed: int = 7) -> str:
    return enc.foreign_identity(random.Random(seed), registry)


def _refused(guard: Guard, headers: dict[str, str], body: object, url: str = URL) -> bool:
    try:
        guard.admit("POST", url, headers, body)
    except RequestRefused:
        return True
    return False


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), family=st.sampled_from(sorted(enc.FAMILIES)))
def test_every_family_refuses_a_foreign_identity_and_sends_a_test_patient(
    registry: Registry, seed: int, family: str
) -> None:
    rng = random.Random(seed)
    build = enc.FAMILIES[family]
    guard = Guard(registry)
    hidden = build(rng, enc.written(rng, enc.foreign_identity(rng, registry)))
    with pytest.raises(RequestRefused):
        guard.admit(hidden.method, hidden.url, hidden.headers, hidden.body)
    patient = rng.choice(registry.patients).id
    legal = build(rng, enc.written(rng, patient))
    guard.admit(legal.method, legal.url, legal.headers, legal.body)  # no refusal


# ---- each finding of the issue, on its own ----


def test_json_unicode_escapes(registry: Registry) -> None:
    ident = _foreign(registry)
    body = '{"personId": "' + "".join(f"\\u{ord(c):04x}" for c in ident) + '"}'
    assert _refused(Guard(registry), {"Content-Type": "application/json"}, body.encode())


@pytest.mark.parametrize("separator", [" ", "\u00a0", "\u2013", "\u2014", ".", "/"])
@pytest.mark.parametrize("digits", [12, 10])
def test_separators_in_12_and_10_digit_forms(registry: Registry, separator: str, digits: int) -> None:
    ident = next(i for s in range(50) if int((i := _foreign(registry, s))[:4]) > 1930)  # under 100: no '+'
    written = (ident[:8] if digits == 12 else ident[2:8]) + separator + ident[8:]
    assert [f.twelve for f in find_identities(written)] == [ident]
    assert _refused(Guard(registry), {"Content-Type": "text/plain; charset=utf-8"}, f"pnr {written}".encode())


def test_json_float_with_an_exponent(registry: Registry) -> None:
    ident = _foreign(registry)
    body = f'{{"value": {ident[0]}.{ident[1:]}e11}}'
    assert _refused(Guard(registry), {"Content-Type": "application/json"}, body.encode())


def test_basic_credentials_and_a_bearer_tokens_payload(registry: Registry) -> None:
    ident = _foreign(registry)
    guard = Guard(registry)
    basic = "Basic " + base64.b64encode(f"{ident}:pw".encode()).decode()
    assert _refused(guard, {"Authorization": basic}, None)
    payload = base64.urlsafe_b64encode(json.dumps({"sub": ident}).encode()).rstrip(b"=").decode()
    assert _refused(guard, {"Authorization": f"Bearer eyJhbGciOiJub25lIn0.{payload}.c2ln"}, None)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_gzip_and_deflate_bodies(registry: Registry, coding: str) -> None:
    raw = json.dumps({"personId": _foreign(registry)}).encode()
    body = gzip.compress(raw) if coding == "gzip" else zlib.compress(raw)
    assert _refused(Guard(registry), {"Content-Type": "application/json", "Content-Encoding": coding}, body)


def test_an_unknown_content_encoding_is_refused_unread(registry: Registry) -> None:
    guard = Guard(registry)
    assert _refused(guard, {"Content-Type": "application/json", "Content-Encoding": "compress"}, b"\x1f\x9dxx")
    assert guard.counts["unreadable"] == 1


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_utf16_and_utf32_bodies(registry: Registry, encoding: str) -> None:
    body = f"patient {_foreign(registry)}".encode(encoding)
    assert _refused(Guard(registry), {"Content-Type": "text/plain"}, body)


def test_a_base64_part_of_a_multipart_body(registry: Registry) -> None:
    part = base64.b64encode(json.dumps({"personId": _foreign(registry)}).encode()).decode()
    body = (
        "--xyz\r\nContent-Type: application/json\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{part}\r\n--xyz--\r\n"
    ).encode()
    assert _refused(Guard(registry), {"Content-Type": "multipart/mixed; boundary=xyz"}, body)


def test_a_streamed_body_is_refused_not_a_crash(registry: Registry) -> None:
    guard = Guard(registry)
    for stream in (io.BytesIO(b"hello"), (chunk for chunk in [b"a", b"b"])):
        with pytest.raises(RequestRefused, match="streamed or file body"):
            guard.admit("POST", URL, {"Content-Type": "text/plain"}, stream)
    assert guard.counts["unreadable"] == 2 and guard.counts["passed"] == 0


def test_bytes_of_an_unknown_media_type_are_refused_unread(registry: Registry) -> None:
    with pytest.raises(RequestRefused, match="media type 'application/octet-stream'"):
        Guard(registry).admit("POST", URL, {"Content-Type": "application/octet-stream"}, b"\x00\x01\x02")


def test_percent_encoding_applied_more_than_once(registry: Registry) -> None:
    ident = _foreign(registry)
    once = "".join(f"%{b:02X}" for b in ident.encode())
    thrice = once.replace("%", "%25").replace("%", "%25")
    assert _refused(Guard(registry), {}, None, url=f"http://127.0.0.1:9/legacy/patienter/{thrice}")


def test_unicode_digits_count_as_digits(registry: Registry) -> None:
    ident = _foreign(registry)
    fullwidth = "".join(chr(0xFF10 + int(c)) for c in ident)
    arabic = "".join(chr(0x0660 + int(c)) for c in ident)
    assert normalise(fullwidth) == ident == normalise(arabic)
    guard = Guard(registry)
    for text in (fullwidth, arabic):
        assert _refused(guard, {"Content-Type": "application/json"}, json.dumps({"p": text}).encode())


def test_xml_entities_character_references_and_cdata(registry: Registry) -> None:
    ident = _foreign(registry)
    guard = Guard(registry)
    refs = "".join(f"&#{ord(c)};" for c in ident)
    for body in (
        f"<a><p>{refs}</p></a>",
        f"<a><p><![CDATA[{ident}]]></p></a>",
        f'<!DOCTYPE a [<!ENTITY x "{ident}">]><a><p>&x;</p></a>',
        f"<a><p>{ident[:-2]}<!-- c -->{ident[-2:]}</p></a>",
    ):
        assert _refused(guard, {"Content-Type": "text/xml"}, body.encode()), body[:20]


def test_userinfo_in_a_url(registry: Registry) -> None:
    ident = _foreign(registry)
    with pytest.raises(RequestRefused, match="userinfo"):
        Guard(registry).admit("GET", f"http://{ident}:pw@127.0.0.1:9/x", {}, None)


def test_a_refusal_never_shows_the_identity(registry: Registry) -> None:
    ident = _foreign(registry)
    with pytest.raises(RequestRefused) as refused:
        Guard(registry).admit("GET", f"http://127.0.0.1:9/legacy/patienter/{ident}", {}, None)
    assert ident not in refused.value.message and ident[2:] not in refused.value.message
    assert mask_identities(f"x {ident} y") != f"x {ident} y"
