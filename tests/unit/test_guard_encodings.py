"""The guard reads a request as a server would: every encoding family, foreign identities refused, test patients sent.

Each finding of issue 11's "encodings it cannot read" has its own test below; the properties
run every family (tests/unit/safety_encodings.py) with identities made at run time.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import io
import json
import random
import re
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxverify.safety.guard import Guard, RequestRefused, _Reading
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


# ---- the load path's envelopes, read from their template (decode.BodyTemplate) ----

CONTENT_TYPE = "text/xml; charset=utf-8"
SOAP_HEADERS = {"Content-Type": CONTENT_TYPE}
FULLWIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _piece(rng: random.Random, registry: Registry, uuids: list[str]) -> str:
    """A text node's content: a UUID, hex and digit runs that run into it, identities, base64 of either."""
    ident = enc.foreign_identity(rng, registry) if rng.random() < 0.5 else rng.choice(registry.patients).id
    uuid = rng.choice(uuids)
    return rng.choice([
        uuid,
        uuid,
        ident,
        enc.written(rng, ident),
        "1234-1234-1234-" + rng.choice("0123456789abcdef") * rng.randint(0, 12),
        "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12))),
        "".join(rng.choice("0123456789abcdef-") for _ in range(rng.randint(1, 20))),
        base64.b64encode(ident.encode()).decode(),
        base64.urlsafe_b64encode(ident.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(f"{uuid}{ident}".encode()).decode(),
        rng.choice(["f", "e", "-", "pharmacy", "0.1.0", "MTk", ""]),
        # runs of f (base64 of a signature holds "ff" in about a third of assertions), placeholder-like text
        rng.choice(["ff", "ffffffff", "ffffffff-ffff", "ffffffff-ffff-ffff-ffff-", "ffffffff-ffff-ffff-ffff-abcde",
                    "ffffffff-ffff-ffff-ffff-aaaaaaaaaaaa", "FFFFFFFF-FFFF-FFFF-FFFF-aaaaaaaaaaaa"]) + rng.choice(
            ["", uuid, ident[:7]]),
        # not ASCII (a SAMBI assertion names "E-hälsomyndigheten"): letters, and digits a server could fold
        rng.choice(["E-hälsomyndigheten", "Förskrivningskollen", "åäö", "é"]),
        ident.translate(FULLWIDTH) if rng.random() < 0.5 else ident.translate(ARABIC_INDIC),
        rng.choice(["１２", "٣٤٥", "\u00a0", "–"]) + rng.choice([uuid, ident[:6], ""]),
    ])


def _envelope(rng: random.Random, registry: Registry) -> bytes:
    uuids = [str(random.Random(rng.random()).randbytes(16).hex()) for _ in range(2)]
    uuids = [f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}" for u in uuids]

    def element(depth: int) -> str:
        if depth > 2 or rng.random() < 0.4:
            return f"<v>{_piece(rng, registry, uuids)}</v>"
        inner = "".join(
            element(depth + 1) + (_piece(rng, registry, uuids) if rng.random() < 0.2 else "")
            for _ in range(rng.randint(1, 3))
        )
        return f"<g>{inner}</g>"

    header = f"<s:Header><requestId>{uuids[0]}</requestId>{element(1)}</s:Header>"
    return (enc.SOAP.format(element(0)).replace("<s:Body>", header + "<s:Body>")).encode()


def _reading(places: list[tuple[str, str]]) -> tuple[set[tuple[str, str]], set[str]]:
    """What decides the guard: (where, identity) found, and every text a base64 token decoded to."""
    found = {(where, hit.twelve) for where, text in places for hit in find_identities(text)}
    return found, {text for where, text in places if where.endswith("(base64)")}


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_an_envelope_read_from_its_template_is_read_as_in_full(registry: Registry, seed: int) -> None:
    """The load path's envelopes differ in their UUIDs and their patients (12-digit text nodes), so their
    reading is made once per template, and once for all patients: it must be the full reading, whatever
    runs into the UUIDs and the digits (hex, digits, identities, base64 holding them, text that is not
    ASCII, Unicode digits), for the template's first body and for bodies like it with other UUIDs and
    other 12-digit values (registered patients, foreign identities, any digits)."""
    from rxverify.safety import decode

    rng = random.Random(seed)
    guard = Guard(registry)
    first = [_envelope(rng, registry) for _ in range(2)]
    bodies = first + [_respelled(rng, registry, b) for b in first for _ in range(3)] + [_envelope(rng, registry)]
    for body in bodies:  # templates' first bodies, then bodies read from them
        text = body.decode("latin-1")
        templated = guard._templated_places(body, SOAP_HEADERS, SOAP_HEADERS["Content-Type"], datetime.date.today())
        full = _reading(decode.body_places(body, SOAP_HEADERS))
        if isinstance(templated, _Reading):
            # what the guard decides on: the identities found once in the template's reading (where each
            # is), then the texts of this body alone; and the template's texts with them
            found = decode.uuid_template(text)
            assert found is not None
            template, _ = guard._templates[(SOAP_HEADERS["Content-Type"], found[0])]
            found_once, decoded = _reading(template.places + templated.rest)
            assert {(where, hit.twelve) for where, hit in templated.found} | _reading(templated.rest)[0] == full[0]
            assert (found_once, decoded) == full, body[:300]
            # text for text, the template's reading with this body's UUIDs written in is the body's reading
            written = set()
            for where, t in template.places + templated.rest:
                for marker, uuid in zip(template.markers, found[2], strict=True):
                    t = t.replace(marker, uuid)
                written.add((where, t))
            assert written == set(decode.body_places(body, SOAP_HEADERS)), body[:300]
        else:
            assert _reading(templated) == full, body[:300]


_UUID_OR_DIGITS_NODE = re.compile(
    rb">([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9]{12})<")


def _respelled(rng: random.Random, registry: Registry, body: bytes) -> bytes:
    """`body` with fresh UUIDs and other 12-digit values (a test patient, a foreign identity, any digits, the
    same) in its UUID and 12-digit text nodes: another request of the same template, another patient."""

    def other(m: re.Match[bytes]) -> bytes:
        if b"-" in m.group(1):
            value = _fresh_uuid(rng)
        else:
            value = rng.choice([
                rng.choice(registry.patients).id, enc.foreign_identity(rng, registry),
                "".join(rng.choice("0123456789") for _ in range(12)), m.group(1).decode(),
            ])
        return b">" + value.encode() + b"<"

    return _UUID_OR_DIGITS_NODE.sub(other, body)


def _fresh_uuid(rng: random.Random) -> str:
    u = rng.randbytes(16).hex()
    u = f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"
    return u.upper() if rng.random() < 0.2 else u


def _variants(rng: random.Random, body: bytes) -> list[tuple[str, bytes]]:
    """Bodies like `body`: fresh UUIDs in its UUID places, and near misses (a byte changed, bytes swapped, a
    UUID place holding what is not a UUID or the placeholder prefix), each tagged by kind."""
    slots = [m.span(1) for m in re.finditer(rb">([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                                             rb"[0-9a-fA-F]{12})<", body)]

    def with_slots(values: list[str]) -> bytes:
        out, done = b"", 0
        for (a, b), value in zip(slots, values, strict=True):
            out += body[done:a] + value.encode("latin-1")
            done = b
        return out + body[done:]

    variants = [("fresh", with_slots([_fresh_uuid(rng) for _ in slots])) for _ in range(3)]
    for _ in range(8):  # a byte changed: near a UUID place (its edges, its hyphens) or anywhere
        if slots and rng.random() < 0.6:
            a, b = rng.choice(slots)
            at = rng.randint(max(0, a - 2), min(len(body) - 1, b + 1))
        else:
            at = rng.randrange(len(body))
        new = rng.choice([b"<", b">", b"&", b"%", b"0", b"a", b"F", b"g", b"-", b"\x00", b"\xc3", "ä".encode()])
        variants.append(("changed", with_slots([_fresh_uuid(rng) for _ in slots])[:at] + new + body[at + 1 :]))
    if len(body) > 2:
        at = rng.randrange(len(body) - 1)
        variants.append(("swapped", body[:at] + body[at + 1 : at + 2] + body[at : at + 1] + body[at + 2 :]))
    if slots:
        values = [_fresh_uuid(rng) for _ in slots]
        k = rng.randrange(len(slots))
        values[k] = rng.choice([
            "ffffffff-ffff-ffff-ffff-" + _fresh_uuid(rng)[-12:],  # the placeholder prefix: never a template's
            _fresh_uuid(rng)[:-1] + rng.choice("gz<&%"),  # not a UUID
            _fresh_uuid(rng).replace("-", "0", 1),  # hyphens moved
        ])
        variants.append(("not-a-uuid", with_slots(values)))
    return variants


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_a_body_found_unread_by_its_template_is_the_body_its_reading_makes(registry: Registry, seed: int) -> None:
    """The guard finds a body of a template met before by comparing bytes, without reading it (the load
    path's envelopes): that must give exactly the template and the UUIDs reading it (uuid_template) gives,
    or nothing, for bodies that differ from a known one in a UUID, a byte, two bytes' order or a UUID place
    holding something else; and the saving must exist for bodies that differ in their UUIDs alone."""
    from rxverify.safety import decode

    rng = random.Random(seed)
    index: decode.TemplateIndex[str] = decode.TemplateIndex(64)
    known: list[bytes] = []
    for _ in range(2):
        body = _envelope(rng, registry)
        # room after the last UUID or not (a template with less than TAIL bytes after it is found by reading)
        body = body.replace(b"</s:Body>", b"<pad>" + b"p" * rng.randint(0, 200) + b"</pad></s:Body>")
        text = body.decode("latin-1")
        found = decode.uuid_template(text) if decode.utf8_xml(body, text) else None
        if found is not None:
            index.add(CONTENT_TYPE, found[0], found[1], found[0])
            known.append(body)
            if rng.random() < 0.5:  # a sibling of the same length and tail: another caller, another patient
                twin = _variants(rng, body)[3][1]
                t = twin.decode("latin-1")
                twin_found = decode.uuid_template(t) if decode.utf8_xml(twin, t) else None
                if twin_found is not None and len(twin) == len(body):
                    index.add(CONTENT_TYPE, twin_found[0], twin_found[1], twin_found[0])
    for body in known:
        for kind, variant in _variants(rng, body):
            text = variant.decode("latin-1")
            found = decode.uuid_template(text) if decode.utf8_xml(variant, text) else None
            expected = None
            if found is not None and index.get(CONTENT_TYPE, found[0]) is not None:
                expected = (found[0], found[2])
            fast = index.match(CONTENT_TYPE, variant)
            assert fast is None or fast == expected, (kind, variant[:300])
            if kind == "fresh" and index.match(CONTENT_TYPE, body) is not None:
                assert fast is not None and fast == expected, variant[:300]


def test_envelopes_that_differ_in_their_request_id_share_a_template(registry: Registry) -> None:
    """The load path's saving exists: a second envelope like the first is read from the first one's template."""
    guard = Guard(registry)
    patient = registry.patients[0].id
    for uuid in ("d5aaf7c6-21b8-42cf-ba0a-f3f07ea9d4d4", "0f1e2d3c-4b5a-4697-a8b9-cadbecfd0e1f"):
        body = enc.SOAP.format(f"<requestId>{uuid}</requestId><personnummer>{patient}</personnummer>").encode()
        assert guard.admit("POST", URL, SOAP_HEADERS, body).patients == (patient,)
    assert len(guard._templates) == 1
    foreign = _foreign(registry)
    body = enc.SOAP.format(f"<requestId>{uuid}</requestId><p>{foreign}</p>").encode()
    assert _refused(guard, SOAP_HEADERS, body)


def test_envelopes_with_text_that_is_not_ascii_share_a_template_when_utf_8(registry: Registry) -> None:
    """Säker åtkomst's envelopes carry an assertion naming "E-hälsomyndigheten": still one template (the
    guard read such envelopes in full, +21 % on the load path over mutual TLS); a body the bytes of which
    are not UTF-8, or whose XML declaration names another encoding, is read in full."""
    guard = Guard(registry)
    patient = registry.patients[0].id
    for uuid in ("d5aaf7c6-21b8-42cf-ba0a-f3f07ea9d4d4", "0f1e2d3c-4b5a-4697-a8b9-cadbecfd0e1f"):
        body = enc.SOAP.format(f"<o>E-hälsomyndigheten</o><requestId>{uuid}</requestId>"
                               f"<personnummer>{patient}</personnummer>").encode()
        assert guard.admit("POST", URL, SOAP_HEADERS, body).patients == (patient,)
    assert len(guard._templates) == 1
    foreign = _foreign(registry)
    assert _refused(guard, SOAP_HEADERS, enc.SOAP.format(
        f"<o>E-hälsomyndigheten</o><requestId>{uuid}</requestId><p>{foreign.translate(FULLWIDTH)}</p>").encode())
    declared = ('<?xml version="1.0" encoding="ISO-8859-1"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/'
                f'envelope/"><s:Body><o>h\xe4lsa</o><requestId>{uuid}</requestId></s:Body></s:Envelope>')
    from rxverify.safety import decode

    assert not decode.utf8_xml(declared.encode("latin-1"), declared)  # declared otherwise
    utf8 = declared.replace("ISO-8859-1", "UTF-8")
    assert not decode.utf8_xml(utf8.encode("latin-1"), utf8)  # declared UTF-8, the bytes are not
    assert decode.utf8_xml(utf8.encode(), utf8.encode().decode("latin-1"))


def test_a_uuid_run_into_hex_text_is_read_in_full(registry: Registry) -> None:
    """A UUID whose start another text's hex run takes (so the scanner does not mask it whole) can end in
    digits that join the next text into an identity: its template is not exact, the body is read in full."""
    foreign = _foreign(registry)
    uuid = f"d5aaf7c6-21b8-42cf-ba0a-aaaa{foreign[:8]}"
    body = enc.SOAP.format(f"<g><v>12345678-1234-1234-1234-1234</v><v>{uuid}</v><v>{foreign[8:]}</v></g>").encode()
    guard = Guard(registry)
    assert _refused(guard, SOAP_HEADERS, body)
    assert [t.exact for t, _ in guard._templates.values()] == [False]


def test_a_uuid_run_into_hex_text_is_read_in_full_for_any_patient(registry: Registry) -> None:
    """As above, in an envelope read from the one of another patient (its 12-digit text node replaced): the
    template made for this patient is judged again, not taken as exact from the one all patients share."""
    foreign = _foreign(registry)
    uuid = f"d5aaf7c6-21b8-42cf-ba0a-aaaa{foreign[:8]}"
    guard = Guard(registry)
    for patient in (registry.patients[0].id, registry.patients[1].id):
        body = enc.SOAP.format(f"<g><p>{patient}</p><v>12345678-1234-1234-1234-1234</v><v>{uuid}</v>"
                               f"<v>{foreign[8:]}</v></g>").encode()
        assert _refused(guard, SOAP_HEADERS, body)
    assert len(guard._general) == 1
    assert [t.exact for t, _ in guard._templates.values()] == [False, False]


def test_the_tokens_that_hold_a_uuid_are_read_for_each_body(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A base64 token that holds a UUID is not the template's: it is decoded afresh for every body."""
    from rxverify.safety import decode

    foreign = _foreign(registry)
    real_token_text = decode._token_text
    # no UUID-shaped token decoded to text in 10^5 random tries: stand in for one that does, as the
    # guard must read it (its decoding names a foreign identity)
    monkeypatch.setattr(
        decode, "_token_text", lambda token: foreign if "d5aaf7c6" in token else real_token_text(token)
    )
    guard = Guard(registry)
    patient = registry.patients[0].id
    uuids = ("0f1e2d3c-4b5a-4697-a8b9-cadbecfd0e1f", "d5aaf7c6-21b8-42cf-ba0a-f3f07ea9d4d4")
    for uuid, refused in zip(uuids, (False, True), strict=True):
        body = enc.SOAP.format(f"<requestId>{uuid}</requestId><p>{patient}</p>").encode()
        assert _refused(guard, SOAP_HEADERS, body) is refused
    assert len(guard._templates) == 1


@pytest.mark.parametrize("nodes", [
    # the placeholder itself in a text that is not a UUID: a template would read it as a UUID's place
    ("0f1e2d3c-4b5a-4697-a8b9-cadbecfd0e1f", "ffffffff-ffff-ffff-ffff-aaaaaaaaaaaaZ"),
    # a UUID that is the second placeholder: the first one's tokens would be read with the second UUID
    ("ffffffff-ffff-ffff-ffff-aaaaaaaaaaab", "0f1e2d3c-4b5a-4697-a8b9-cadbecfd0e1f"),
])
def test_a_body_holding_placeholder_text_is_read_in_full(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, nodes: tuple[str, str]
) -> None:
    """A body that holds the placeholders' prefix anywhere (a UUID that starts with it, too) has no template:
    it is read as the server reads it. Shown with a token that holds the prefix and decodes to a foreign
    identity (no random token does in 10^5 tries, so the decoding is stood in for)."""
    from rxverify.safety import decode

    foreign = _foreign(registry)
    real_token_text = decode._token_text
    def token_text(token: str) -> str | None:
        return foreign if token.startswith("ffffffff-ffff-ffff-ffff-") else real_token_text(token)

    monkeypatch.setattr(decode, "_token_text", token_text)  # as a template's UUID tokens are read
    monkeypatch.setattr(decode, "_remembered_token_text", token_text)  # as a body's tokens are
    body = enc.SOAP.format(f"<requestId>{nodes[0]}</requestId><p>{nodes[1]}</p>").encode()
    guard = Guard(registry)
    assert _refused(guard, SOAP_HEADERS, body)
    assert len(guard._templates) == 0


def _b64_as_the_library_decodes(token: str) -> bytes | None:
    stripped = token.rstrip("=")
    padded = stripped + "=" * (-len(stripped) % 4)
    alphabet = b"-_" if ("-" in token or "_" in token) else b"+/"
    try:
        return base64.b64decode(padded, altchars=alphabet, validate=True)
    except (ValueError, TypeError):  # binascii.Error is a ValueError; so is a str that is not ASCII
        return None


@settings(max_examples=3000, deadline=None)
@given(token=st.text(alphabet="ABCxyz0189+/-_=é%. \n", min_size=0, max_size=40))
def test_a_token_is_decoded_as_the_base64_library_decodes_it(token: str) -> None:
    """The guard's own base64 decoding (the load path decodes a token per fresh UUID) is the library's."""
    from rxverify.safety import decode

    assert decode._b64(token) == _b64_as_the_library_decodes(token)


def test_headers_read_before_do_not_hide_a_changed_one(registry: Registry) -> None:
    """A request's headers are remembered as a whole once read: a request whose headers differ in one value
    (a foreign identity in it, in any case of the name) is read again, and a value that cannot be
    remembered is read each time."""
    patient = registry.patients[0].id
    foreign = _foreign(registry)
    guard = Guard(registry)
    headers = {"Content-Type": CONTENT_TYPE, "X-Patient": patient, "User-Agent": "rxverify"}
    body = enc.SOAP.format(f"<p>{patient}</p>").encode()
    for _ in range(2):
        assert not _refused(guard, headers, body)
    assert _refused(guard, {**headers, "X-Patient": foreign}, body)
    assert _refused(guard, {**headers, "x-patient": foreign}, body)
    assert _refused(guard, {**headers, "User-Agent": base64.b64encode(foreign.encode()).decode()}, body)
    assert not _refused(guard, headers, body)

    class Unhashable(str):
        __hash__ = None  # type: ignore[assignment]

    for _ in range(2):
        assert _refused(guard, {**headers, "X-Patient": Unhashable(foreign)}, body)


def test_envelopes_for_other_patients_share_one_reading(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """The load path's envelopes for other patients (12-digit text nodes) are read once for all of them:
    the second patient's is not read in full, and a foreign identity in its place is still refused."""
    from rxverify.safety import decode

    reads: list[int] = []
    real_read = decode.BodyTemplate.read.__func__  # type: ignore[attr-defined]

    def counted(cls: type[decode.BodyTemplate], *args: object) -> decode.BodyTemplate:
        reads.append(1)
        return real_read(cls, *args)  # type: ignore[no-any-return]

    monkeypatch.setattr(decode.BodyTemplate, "read", classmethod(counted))
    guard = Guard(registry)
    uuid = "d5aaf7c6-21b8-42cf-ba0a-f3f07ea9d4d4"
    for patient in registry.patients[:3]:
        body = enc.SOAP.format(f"<requestId>{uuid}</requestId><personnummer>{patient.id}</personnummer>").encode()
        assert guard.admit("POST", URL, SOAP_HEADERS, body).patients == (patient.id,)
    assert len(reads) == 1 and len(guard._general) == 1 and len(guard._templates) == 3
    foreign = _foreign(registry)
    assert len(foreign) == 12
    body = enc.SOAP.format(f"<requestId>{uuid}</requestId><personnummer>{foreign}</personnummer>").encode()
    assert _refused(guard, SOAP_HEADERS, body)
    assert len(reads) == 1


def test_digits_that_join_a_base64_token_are_read_for_each_patient(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 12-digit text node joined to the text before it in its parent's whole text makes a base64 token:
    the envelope of a patient read from the reading all patients share decodes that token for that
    patient. Shown with a decoding that names a foreign identity (stood in for: no random token does)."""
    from rxverify.safety import decode

    foreign = _foreign(registry)
    digits = "170345271543"  # not an identity (no century)
    assert not find_identities(digits)
    real_token_text = decode._token_text

    def token_text(token: str) -> str | None:
        return foreign if token == "MTk" + digits else real_token_text(token)

    monkeypatch.setattr(decode, "_token_text", token_text)
    monkeypatch.setattr(decode, "_remembered_token_text", token_text)
    guard = Guard(registry)
    uuid = "d5aaf7c6-21b8-42cf-ba0a-f3f07ea9d4d4"
    for value, refused in ((registry.patients[0].id, False), (digits, True)):
        body = enc.SOAP.format(f"<requestId>{uuid}</requestId><g><c>MTk</c><personnummer>{value}</personnummer></g>")
        assert _refused(guard, SOAP_HEADERS, body.encode()) is refused
    assert len(guard._general) == 1
