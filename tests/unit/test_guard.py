"""The guard refuses non-registered identities before a byte leaves, and lets test patients through."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from rxverify.safety.egress import guarded_session
from rxverify.safety.guard import Guard, RequestRefused
from rxverify.safety.identity import check_digit
from rxverify.safety.redaction import REDACTED, redact_headers, redact_text
from rxverify.safety.registry import Registry
from rxverify.strategies import person_ids

from .strategies import foreign_identities, written


class _Recorder(BaseHTTPRequestHandler):
    received: ClassVar[list[str]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.received.append(self.path + (self.rfile.read(length).decode() if length else ""))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


PLACES = ["path", "query", "header", "json", "nested-fhir", "form", "text"]


def _send(session: requests.Session, base: str, place: str, ident: str) -> requests.Response:
    if place == "path":
        return session.get(f"{base}/patienter/{ident}")
    if place == "query":
        return session.get(f"{base}/MedicationRequest", params={"patient-identifier": f"x|{ident}"})
    if place == "header":
        return session.get(f"{base}/x", headers={"x-patientref": ident})
    if place == "json":
        return session.post(f"{base}/x", json={"personId": ident})
    if place == "nested-fhir":
        body = {"resourceType": "Parameters", "parameter": [{"name": "p", "valueIdentifier": {"value": ident}}]}
        return session.post(f"{base}/x", json=body)
    if place == "form":
        return session.post(f"{base}/x", data={"pnr": ident})
    return session.post(f"{base}/x", data=f"patient {ident} says hi".encode())


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_foreign_identity_anywhere_is_refused_and_nothing_sent(
    registry: Registry, server: str, data: st.DataObject
) -> None:
    ident = written(data.draw(foreign_identities(registry)), data.draw(st.sampled_from(["12", "12-", "10sep"])))
    place = data.draw(st.sampled_from(PLACES))
    session = guarded_session(Guard(registry))
    before = len(_Recorder.received)
    with pytest.raises(RequestRefused) as refused:
        _send(session, server, place, ident)
    assert len(_Recorder.received) == before
    assert ident not in refused.value.message and "*" in refused.value.message


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_registered_identity_anywhere_is_sent(registry: Registry, server: str, data: st.DataObject) -> None:
    ident = written(data.draw(person_ids(registry)), data.draw(st.sampled_from(["12", "12-", "10sep"])))
    place = data.draw(st.sampled_from(PLACES))
    response = _send(guarded_session(Guard(registry)), server, place, ident)
    assert response.status_code == 200


def test_refusal_names_the_place(registry: Registry, server: str) -> None:
    guard = Guard(registry)
    base = registry.patients[0].id
    twelve = next(
        t
        for serial in range(1000)
        if (t := base[:8] + f"{serial:03d}" + check_digit(base[2:8] + f"{serial:03d}")) not in registry
    )
    with pytest.raises(RequestRefused, match="in the header x-patientref"):
        _send(guarded_session(guard), server, "header", twelve)
    assert guard.counts["identity"] == 1


def test_redaction_of_headers_and_text() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwcmVzY3JpYmVyLTEifQ.c2lnbmF0dXJlc2lnbmF0dXJl"
    headers = redact_headers({"Authorization": f"Bearer {token}", "Cookie": "s=1", "Accept": "x"})
    assert headers == {"Authorization": REDACTED, "Cookie": REDACTED, "Accept": "x"}
    text = redact_text(json.dumps({"msg": f"sent Bearer {token}", "api_key": "abcdef123456"}))
    assert token not in text and "abcdef123456" not in text


_SHARED: dict[str, Guard] = {}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_clean_text_cache_never_admits_a_foreign_identity(registry: Registry, data: st.DataObject) -> None:
    """One guard for every example: what it remembers as clean never hides a foreign number later."""
    guard = _SHARED.setdefault("guard", Guard(registry))
    registered = written(data.draw(person_ids(registry)), data.draw(st.sampled_from(["12", "12-", "10sep"])))
    foreign = written(data.draw(foreign_identities(registry)), data.draw(st.sampled_from(["12", "12-", "10sep"])))
    prefix = data.draw(st.sampled_from(["", "pnr ", "/patienter/", '{"personId": "']))
    guard.inspect("GET", f"http://127.0.0.1/patienter/{registered}", {"x-patientref": prefix + registered}, None)
    for _ in range(2):  # refused every time: a refused text is never remembered
        with pytest.raises(RequestRefused):
            guard.inspect("GET", "http://127.0.0.1/x", {"x-patientref": prefix + foreign}, None)
        with pytest.raises(RequestRefused):
            guard.inspect("POST", "http://127.0.0.1/x", {}, (prefix + registered + " " + foreign).encode())


def test_admission_names_the_patients_of_path_query_and_body_scanned_once(registry: Registry) -> None:
    """The ledger's patients come from the one scan: path, query and body (not headers), also on a cached path."""
    guard = Guard(registry)
    a, b, c, d = (p.id for p in registry.patients[:4])
    for _ in range(2):  # the second time every text but the body comes from the clean-text cache
        admission = guard.admit(
            "PUT",
            f"http://127.0.0.1/patienter/{a}/samtycke?ref={b}",
            {"x-patientref": d},
            json.dumps({"personId": c}).encode(),
        )
        assert admission.patients == tuple(sorted({a, b, c}))
    assert guard.admit("GET", "http://127.0.0.1/arbetsplatskoder/4000000", {}, None).patients == ()


def test_an_operator_key_never_reads_as_an_identity_where_random_hex_sometimes_does(registry: Registry) -> None:
    """The rehearsal's operator key goes to the platforms as a bearer token, through the guard.

    A 64-digit hex key holds a run of digits that reads as a Luhn-valid identity about once in
    seven hundred (the guard then refuses it, rightly): the key is letters only.
    """
    import secrets

    from rxverify.target.local import new_operator_key

    guard = Guard(registry)

    def refused(key: str) -> bool:
        headers = {"Authorization": f"Bearer {key}"}
        return guard.refusal("POST", "http://127.0.0.1:9/admin/window", headers, None) is not None

    assert sum(refused(secrets.token_hex(32)) for _ in range(20_000)) > 0  # expected about 30
    assert not any(refused(new_operator_key()) for _ in range(5_000))
