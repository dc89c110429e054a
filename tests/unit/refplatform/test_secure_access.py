"""Säker åtkomst on both platforms: mutual TLS on two entry points, SAMBI assertions, the token exchange.

Requirement: security solution 17.1 (DOMAIN.md): every interface requires a client certificate;
the old interface reads the caller from a signed SAML 2.0 assertion in wsse:Security, bound to
that certificate; the new platform exchanges the assertion for an access token bound to the
certificate (RFC 7522, RFC 8705) that its FHIR API requires. Each rule is shown refused on the
correct platform and let through by the seeded fault that breaks it.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .conftest import CONTRACTS, ROOT
from .secure_calls import PROFILE, SecurePlatform, Trust, assertion, b64url, security_header, start_secure, tampered
from .soap_calls import body, envelope, ok, post, prescription, refused, url
from .test_new_platform import fhir_prescription

TOKEN = PROFILE["token"]
FHIR_HEADERS = {"x-request-id": "6f1c1c8e-3b0a-4d3e-9d59-0c1b2c3d4e5f",
                "x-context-id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "x-user-agent": "secure-tests/1"}


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory) -> Trust:
    return Trust(tmp_path_factory.mktemp("trust"))


def _start(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path, trust: Trust, platform: str,
           faults: list[str] | None = None, extra: list[str] | None = None) -> Iterator[SecurePlatform]:
    p = start_secure(platform, tmp_path_factory.mktemp(platform), ticket_key_file, trust, faults, extra)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def token_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ec.EllipticCurvePrivateKey]:
    """The new platform's token signing key, known to the tests so that they can forge tokens."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path_factory.mktemp("token") / "token.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path, key


@pytest.fixture(scope="module")
def old(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path, trust: Trust) -> Iterator[SecurePlatform]:
    yield from _start(tmp_path_factory, ticket_key_file, trust, "old")


@pytest.fixture(scope="module")
def new(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path, trust: Trust,
        token_key: tuple[Path, Any]) -> Iterator[SecurePlatform]:
    yield from _start(tmp_path_factory, ticket_key_file, trust, "new",
                      extra=["--token-key-file", str(token_key[0]), "--token-lifetime", "2"])


@pytest.fixture(params=["old", "new"])
def either(request: pytest.FixtureRequest) -> SecurePlatform:
    """The old interface on either platform (the same rules on both)."""
    return request.getfixturevalue(request.param)


def _soap(p: SecurePlatform, client: Any, service: str, signed: Any, **fields: Any) -> Any:
    with p.session(client) as s:
        return post(s, p, service, envelope(body(service, fields), security_header(signed)))  # type: ignore[arg-type]


def _pharmacist(actors: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return actors["pharmacies"][index]


# ---- mutual TLS ----


def _raw_exchange(host: str, port: int, context: ssl.SSLContext) -> str:
    """Send one HTTP request over TLS; "answered" if any HTTP came back, "refused" if the server ended the session."""
    try:
        with socket.create_connection((host, port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            # TLS 1.3: the client's handshake ends before the server has checked the client's certificate,
            # so the server's refusal (an alert, or the connection closed) shows at the first read
            tls.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
            return "answered" if tls.recv(100) else "refused"
    except (ssl.SSLError, ConnectionError):
        return "refused"


def test_without_a_client_certificate_the_handshake_is_refused(either: SecurePlatform, trust: Trust) -> None:
    """Every entry point requires a client certificate: no HTTP request gets through without one."""
    for entry in ("internet", "sjunet"):
        host, port = either.url("", entry).removeprefix("https://").split(":")
        context = ssl.create_default_context(cafile=str(trust.ca_file(entry)))
        assert _raw_exchange(host, int(port), context) == "refused", entry
        context.load_cert_chain(*trust.client("pharmacy-1", entry).cert)
        assert _raw_exchange(host, int(port), context) == "answered", entry  # the same, with a certificate
        with either.session(None, entry) as s, pytest.raises(requests.exceptions.ConnectionError):
            s.get(either.url("/status", entry), timeout=10)
    # plain HTTP on the TLS port gets no HTTP answer either
    with requests.Session() as s, pytest.raises(requests.exceptions.ConnectionError):
        s.get(either.url("/status").replace("https://", "http://"), timeout=10)


def test_each_entry_point_has_its_own_certificates_and_client_cas(either: SecurePlatform, trust: Trust) -> None:
    """Internet and Sjunet: different server certificates, each trusting only its own clients' CA."""
    for entry, other in (("internet", "sjunet"), ("sjunet", "internet")):
        with either.session(trust.client("pharmacy-1", entry), entry) as s:
            assert s.get(either.url("/status", entry), timeout=10).status_code == 200
        # a client certificate of the other entry point's CA is refused in the handshake
        with either.session(trust.client("pharmacy-1", other), entry) as s, \
                pytest.raises(requests.exceptions.ConnectionError):
            s.get(either.url("/status", entry), timeout=10)
        # and the server certificate does not verify against the other entry point's CA
        with either.session(trust.client("pharmacy-1", entry), other) as s, \
                pytest.raises(requests.exceptions.SSLError):
            s.get(either.url("/status", entry), timeout=10)


# ---- SAMBI assertions on the old interface (both platforms) ----


def test_a_valid_assertion_over_its_certificate_is_served(either: SecurePlatform, trust: Trust,
                                                           actors: dict[str, Any],
                                                           patients: list[dict[str, Any]]) -> None:
    """On each entry point, with that entry point's certificate and an assertion bound to it."""
    for entry in ("internet", "sjunet"):
        client = trust.client("pharmacy-1", entry)
        signed = assertion(trust, _pharmacist(actors), "pharmacy", client)
        with either.session(client, entry) as s:
            payload = envelope(body("HamtaPatientInfo", {"personnummer": patients[0]["id"]}), security_header(signed))
            answer = post(s, either.at(entry), "HamtaPatientInfo", payload)  # type: ignore[arg-type]
        assert ok(answer)["personnummer"] == patients[0]["id"]


def test_the_ticket_in_authorization_is_not_enough_with_saml(either: SecurePlatform, trust: Trust,
                                                             mint: Any, patients: list[dict[str, Any]]) -> None:
    with either.session(trust.client("pharmacy-1")) as s:
        answer = post(s, either, "HamtaPatientInfo",  # type: ignore[arg-type]
                      envelope(body("HamtaPatientInfo", {"personnummer": patients[0]["id"]})), mint("pharmacy"))
    assert "wsse:Security" in refused(answer, "EJ_AUTENTISERAD")


def test_another_actors_certificate_with_this_actors_assertion_is_refused(
        either: SecurePlatform, trust: Trust, actors: dict[str, Any], patients: list[dict[str, Any]]) -> None:
    signed = assertion(trust, _pharmacist(actors, 0), "pharmacy", trust.client("pharmacy-1"))
    answer = _soap(either, trust.client("pharmacy-2"), "HamtaPatientInfo", signed, personnummer=patients[0]["id"])
    assert "annat klientcertifikat" in refused(answer, "EJ_AUTENTISERAD")


@pytest.mark.parametrize("case", ["expired", "not-yet-valid", "unsigned", "tampered", "wrong-audience",
                                  "wrong-issuer", "rogue-signer", "loa2"])
def test_a_bad_assertion_is_a_soap_fault(either: SecurePlatform, trust: Trust, actors: dict[str, Any],
                                         patients: list[dict[str, Any]], case: str) -> None:
    client = trust.client("pharmacy-1")
    now = datetime.now(UTC)
    made = {
        "expired": lambda: assertion(trust, _pharmacist(actors), "pharmacy", client,
                                     not_before=now - timedelta(hours=2), not_on_or_after=now - timedelta(hours=1)),
        "not-yet-valid": lambda: assertion(trust, _pharmacist(actors), "pharmacy", client,
                                           not_before=now + timedelta(hours=1)),
        "unsigned": lambda: assertion(trust, _pharmacist(actors), "pharmacy", client, signed=False),
        "tampered": lambda: tampered(assertion(trust, _pharmacist(actors), "pharmacy", client),
                                     "gln", actors["pharmacies"][1]["gln"]),
        "wrong-audience": lambda: assertion(trust, _pharmacist(actors), "pharmacy", client,
                                            audience="urn:some:other:service"),
        "wrong-issuer": lambda: assertion(trust, _pharmacist(actors), "pharmacy", client, issuer="https://idp.invalid"),
        "rogue-signer": lambda: assertion(trust, _pharmacist(actors), "pharmacy", client, rogue=True),
        "loa2": lambda: assertion(trust, _pharmacist(actors), "pharmacy", client, loa="http://id.sambi.se/loa/loa2"),
    }[case]()
    answer = _soap(either, client, "HamtaPatientInfo", made, personnummer=patients[0]["id"])
    reason = {"expired": "utgången", "not-yet-valid": "giltig först", "unsigned": "inte signerad",
              "tampered": "signaturen håller inte", "wrong-audience": "utfärdad för urn:some:other:service",
              "wrong-issuer": "utfärdaren https://idp.invalid", "rogue-signer": "signaturen håller inte",
              "loa2": "tillitsnivå"}[case]
    assert reason in refused(answer, "EJ_AUTENTISERAD")


def test_a_pharmacy_assertion_cannot_prescribe(either: SecurePlatform, trust: Trust, actors: dict[str, Any],
                                               patients: list[dict[str, Any]]) -> None:
    client = trust.client("pharmacy-1")
    signed = assertion(trust, _pharmacist(actors), "pharmacy", client)
    answer = _soap(either, client, "SkapaOrdinationVard", signed, **prescription(patients[1]["id"]))
    refused(answer, "EJ_BEHORIG")


def test_a_prescribers_medication_list_read_without_consent_is_refused(
        either: SecurePlatform, trust: Trust, actors: dict[str, Any], patients: list[dict[str, Any]]) -> None:
    care = trust.client("careunit-4000000")
    prescriber = assertion(trust, actors["prescribers"][0], "prescriber", care)
    pharmacy_client = trust.client("pharmacy-1")
    pid = patients[2]["id"]
    withdrawn = _soap(either, pharmacy_client, "UppdateraSamtycke",
                      assertion(trust, _pharmacist(actors), "pharmacy", pharmacy_client),
                      personnummer=pid, samtycke=False)
    ok(withdrawn)
    refused(_soap(either, care, "HamtaLakemedelsforteckning", prescriber, personnummer=pid), "SAMTYCKE_SAKNAS")
    ok(_soap(either, pharmacy_client, "UppdateraSamtycke",
             assertion(trust, _pharmacist(actors), "pharmacy", pharmacy_client), personnummer=pid, samtycke=True))
    ok(_soap(either, care, "HamtaLakemedelsforteckning", prescriber, personnummer=pid))


def test_the_prescriber_of_the_assertion_is_recorded(either: SecurePlatform, trust: Trust, actors: dict[str, Any],
                                                     patients: list[dict[str, Any]]) -> None:
    """Förskrivarkod, HSA-id and workplace code come from the assertion's attributes, as from the JWT's claims."""
    p = actors["prescribers"][1]
    care = trust.client("careunit-4001111")
    created = ok(_soap(either, care, "SkapaOrdinationVard", assertion(trust, p, "prescriber", care),
                       **prescription(patients[3]["id"])))
    forskrivare = created["forskrivare"]
    assert (forskrivare["hsaId"], forskrivare["forskrivarkod"], forskrivare["arbetsplatskod"]) == (
        p["hsaId"], p["forskrivarkod"], p["careUnit"])


# ---- the token endpoint and the FHIR API (new platform) ----


def _exchange(p: SecurePlatform, client: Any, signed: Any, **extra: str) -> requests.Response:
    with p.session(client) as s:
        return s.post(p.url(TOKEN["path"]), data={"grant_type": TOKEN["grant_type"], "assertion": b64url(signed),
                                                  **extra}, timeout=10)


def _refresh(p: SecurePlatform, client: Any, refresh_token: str) -> requests.Response:
    with p.session(client) as s:
        return s.post(p.url(TOKEN["path"]), data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                      timeout=10)


def _fhir(p: SecurePlatform, client: Any, token: str, path: str = "/fhir/Consent?_count=1",
          method: str = "GET", payload: Any = None) -> requests.Response:
    with p.session(client) as s:
        return s.request(method, p.url(path), json=payload, timeout=10,
                         headers={**FHIR_HEADERS, "Authorization": f"Bearer {token}"})


def _invalid_grant(r: requests.Response, error: str = "invalid_grant", status: int = 400) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json") and r.headers["cache-control"] == "no-store"
    assert r.json()["error"] == error, r.text
    return str(r.json()["error_description"])


def test_the_exchange_gives_a_token_bound_to_the_certificate(new: SecurePlatform, trust: Trust,
                                                            actors: dict[str, Any]) -> None:
    client = trust.client("pharmacy-1")
    r = _exchange(new, client, assertion(trust, _pharmacist(actors), "pharmacy", client))
    assert r.status_code == 200, r.text
    grant = r.json()
    assert grant["token_type"] == "Bearer" and grant["expires_in"] == 2 and grant["refresh_token"]
    assert r.headers["cache-control"] == "no-store"
    claims = jwt.decode(grant["access_token"], options={"verify_signature": False})
    assert claims["cnf"] == {"x5t#S256": _thumb(client.der)}
    assert claims["aud"] == TOKEN["audience"] and claims["gln"] == _pharmacist(actors)["gln"]
    assert _fhir(new, client, grant["access_token"]).status_code == 200


def test_a_token_over_another_certificate_is_401(new: SecurePlatform, trust: Trust, actors: dict[str, Any]) -> None:
    client = trust.client("pharmacy-1")
    token = _exchange(new, client, assertion(trust, _pharmacist(actors), "pharmacy", client)).json()["access_token"]
    r = _fhir(new, trust.client("pharmacy-2"), token)
    assert r.status_code == 401, r.text
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert r.json()["resourceType"] == "OperationOutcome"


def test_no_token_and_foreign_tokens_are_401(new: SecurePlatform, trust: Trust, mint: Any,
                                             token_key: tuple[Path, Any]) -> None:
    client = trust.client("pharmacy-1")
    with new.session(client) as s:
        bare = s.get(new.url("/fhir/Consent?_count=1"), headers=FHIR_HEADERS, timeout=10)
    assert bare.status_code == 401 and bare.headers["www-authenticate"] == 'Bearer realm="nll-fhir"'
    # the JWT ticket of --auth jwt is not an access token of this platform
    ticket = mint("pharmacy")["Authorization"].split()[1]
    assert _fhir(new, client, ticket).status_code == 401
    # a token of the right key but for another audience, or expired, or unbound
    now = int(time.time())
    claims = {"iss": "refplatform-ecp-oauth2", "aud": TOKEN["audience"], "sub": "x", "iat": now, "exp": now + 60,
              "role": "pharmacy", "gln": "7350001000008", "cnf": {"x5t#S256": _thumb(client.der)}}
    forged = {
        "right": claims,
        "audience": {**claims, "aud": "urn:some:other:api"},
        "expired": {**claims, "iat": now - 120, "exp": now - 61},
        "unbound": {k: v for k, v in claims.items() if k != "cnf"},
    }
    codes = {name: _fhir(new, client, jwt.encode(c, token_key[1], algorithm="ES256")).status_code
             for name, c in forged.items()}
    assert codes == {"right": 200, "audience": 401, "expired": 401, "unbound": 401}


def _thumb(der: bytes) -> str:
    """RFC 8705 §3.1: base64url of the SHA-256 of the certificate's DER, computed here on its own."""
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


@pytest.mark.parametrize("case", ["expired", "unsigned", "tampered", "wrong-audience", "other-certificate"])
def test_a_bad_assertion_at_the_token_endpoint_is_invalid_grant(new: SecurePlatform, trust: Trust,
                                                                actors: dict[str, Any], case: str) -> None:
    """RFC 7522 §3.1: an assertion that is not valid, or whose subject confirmation fails, is invalid_grant (400)."""
    client = trust.client("pharmacy-1")
    now = datetime.now(UTC)
    made = {
        "expired": lambda: assertion(trust, _pharmacist(actors), "pharmacy", client,
                                     not_before=now - timedelta(hours=2), not_on_or_after=now - timedelta(hours=1)),
        "unsigned": lambda: assertion(trust, _pharmacist(actors), "pharmacy", client, signed=False),
        "tampered": lambda: tampered(assertion(trust, _pharmacist(actors), "pharmacy", client), "license", "LK"),
        "wrong-audience": lambda: assertion(trust, _pharmacist(actors), "pharmacy", client, audience="urn:x"),
        "other-certificate": lambda: assertion(trust, _pharmacist(actors), "pharmacy", trust.client("pharmacy-2")),
    }[case]()
    _invalid_grant(_exchange(new, client, made))


def test_malformed_token_requests(new: SecurePlatform, trust: Trust, actors: dict[str, Any]) -> None:
    client = trust.client("pharmacy-1")
    signed = assertion(trust, _pharmacist(actors), "pharmacy", client)
    with new.session(client) as s:
        as_json = s.post(new.url(TOKEN["path"]), json={"grant_type": TOKEN["grant_type"]}, timeout=10)
        _invalid_grant(as_json, "invalid_request")
        twice = s.post(new.url(TOKEN["path"]), timeout=10,
                       headers={"Content-Type": "application/x-www-form-urlencoded"},
                       data=f"grant_type=a&grant_type=b&assertion={b64url(signed)}")
        _invalid_grant(twice, "invalid_request")
        _invalid_grant(s.post(new.url(TOKEN["path"]), data={"grant_type": "password"}, timeout=10),
                       "unsupported_grant_type")
        _invalid_grant(s.post(new.url(TOKEN["path"]), data={"grant_type": TOKEN["grant_type"]}, timeout=10),
                       "invalid_request")
        _invalid_grant(s.post(new.url(TOKEN["path"]), data={"grant_type": TOKEN["grant_type"], "assertion": "%%"},
                              timeout=10))
    _invalid_grant(_exchange(new, client, signed, client_id="pharmacy-2"), "invalid_client", 401)
    assert _exchange(new, client, signed, client_id="pharmacy-1").status_code == 200


def test_refresh_over_the_same_certificate_until_it_expires(tmp_path_factory: pytest.TempPathFactory,
                                                            ticket_key_file: Path, trust: Trust,
                                                            actors: dict[str, Any]) -> None:
    for p in _start(tmp_path_factory, ticket_key_file, trust, "new",
                    extra=["--token-lifetime", "3", "--refresh-lifetime", "6"]):
        # an access token's exp is in whole seconds (iat rounded down + lifetime): a lifetime of 3 s is
        # at least 2 s of validity, so the renewed token below is used well inside it (CI, with a lifetime
        # of 1 s, once got a renewed token that had expired on its first use)
        client = trust.client("pharmacy-3")
        grant = _exchange(p, client, assertion(trust, _pharmacist(actors, 2), "pharmacy", client)).json()
        time.sleep(3.2)
        assert _fhir(p, client, grant["access_token"]).status_code == 401  # the access token expired
        # over another certificate: refused, and the refresh token stays usable by its holder
        _invalid_grant(_refresh(p, trust.client("pharmacy-4"), grant["refresh_token"]))
        again = _refresh(p, client, grant["refresh_token"])
        assert again.status_code == 200, again.text
        renewed = again.json()
        assert _fhir(p, client, renewed["access_token"]).status_code == 200
        # rotated: the used refresh token is gone
        _invalid_grant(_refresh(p, client, grant["refresh_token"]))
        time.sleep(6.2)
        assert "expired" in _invalid_grant(_refresh(p, client, renewed["refresh_token"]))


def test_a_pharmacy_token_cannot_prescribe_a_prescribers_can(new: SecurePlatform, trust: Trust,
                                                             actors: dict[str, Any],
                                                             patients: list[dict[str, Any]]) -> None:
    pharmacy, care = trust.client("pharmacy-1"), trust.client("careunit-4001111")
    tokens = {
        "pharmacy": _exchange(new, pharmacy, assertion(trust, _pharmacist(actors), "pharmacy", pharmacy)),
        "prescriber": _exchange(new, care, assertion(trust, actors["prescribers"][1], "prescriber", care)),
    }
    request = fhir_prescription(patients[5]["id"])
    refused_ = _fhir(new, pharmacy, tokens["pharmacy"].json()["access_token"], "/fhir/MedicationRequest", "POST",
                     request)
    assert refused_.status_code == 403, refused_.text
    created = _fhir(new, care, tokens["prescriber"].json()["access_token"], "/fhir/MedicationRequest", "POST",
                    request)
    assert created.status_code == 201, created.text
    # the prescriber recorded is the token's, from the assertion's attributes
    practitioner = created.json()["contained"][0]
    p = actors["prescribers"][1]
    assert {i["value"] for i in practitioner["identifier"]} >= {p["hsaId"], p["forskrivarkod"]}


# ---- zeep, an independent SOAP client, over mutual TLS ----


def test_zeep_calls_over_mutual_tls_with_an_assertion(either: SecurePlatform, trust: Trust,
                                                      actors: dict[str, Any],
                                                      patients: list[dict[str, Any]]) -> None:
    """zeep sends wsse:Security (an element of ours, the signed assertion in it) over the client certificate."""
    import zeep
    from lxml import etree

    from .secure_calls import WSSE
    from .soap_calls import NS, SERVICES
    from .test_soap_zeep import LocalTransport

    client = trust.client("pharmacy-1")
    security = etree.Element(f"{{{WSSE}}}Security", nsmap={"wsse": WSSE})
    security.append(assertion(trust, _pharmacist(actors), "pharmacy", client))
    logical = etree.Element(f"{{{NS['logical_address']}}}LogicalAddress")
    logical.text = "ehalsomyndigheten-test"
    transport = LocalTransport()
    zc = zeep.Client(str(CONTRACTS / "riv" / SERVICES["HamtaPatientInfo"]["wsdl"]), transport=transport)
    with either.session(client) as session:
        transport.session = session
        [port] = next(iter(zc.wsdl.services.values())).ports.values()
        proxy = zc.create_service(port.binding.name, url(either, "HamtaPatientInfo"))  # type: ignore[arg-type]
        answer = proxy.HamtaPatientInfo(personnummer=patients[4]["id"], _soapheaders=[security, logical])
    assert answer.personnummer == patients[4]["id"]


# ---- seeded security faults: each switches its refusal off ----


def test_fault_sambi_any_certificate(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path, trust: Trust,
                                     actors: dict[str, Any], patients: list[dict[str, Any]]) -> None:
    for platform_name in ("old", "new"):
        for p in _start(tmp_path_factory, ticket_key_file, trust, platform_name, ["sambi-any-certificate"]):
            signed = assertion(trust, _pharmacist(actors), "pharmacy", trust.client("pharmacy-1"))
            answer = _soap(p, trust.client("pharmacy-2"), "HamtaPatientInfo", signed, personnummer=patients[0]["id"])
            ok(answer)
            if platform_name == "new":
                r = _exchange(p, trust.client("pharmacy-2"), signed)
                assert r.status_code == 200, r.text


def test_fault_sambi_accepts_unsigned(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path, trust: Trust,
                                      actors: dict[str, Any], patients: list[dict[str, Any]]) -> None:
    for platform_name in ("old", "new"):
        for p in _start(tmp_path_factory, ticket_key_file, trust, platform_name, ["sambi-accepts-unsigned"]):
            client = trust.client("pharmacy-1")
            unsigned = assertion(trust, _pharmacist(actors), "pharmacy", client, signed=False)
            ok(_soap(p, client, "HamtaPatientInfo", unsigned, personnummer=patients[0]["id"]))
            # a signature that is there is still checked
            bad = tampered(assertion(trust, _pharmacist(actors), "pharmacy", client), "gln", "7350001043210")
            refused(_soap(p, client, "HamtaPatientInfo", bad, personnummer=patients[0]["id"]), "EJ_AUTENTISERAD")
            if platform_name == "new":
                assert _exchange(p, client, unsigned).status_code == 200


def test_fault_sambi_ignores_audience(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path, trust: Trust,
                                      actors: dict[str, Any], patients: list[dict[str, Any]]) -> None:
    for platform_name in ("old", "new"):
        for p in _start(tmp_path_factory, ticket_key_file, trust, platform_name, ["sambi-ignores-audience"]):
            client = trust.client("pharmacy-1")
            other = assertion(trust, _pharmacist(actors), "pharmacy", client, audience="urn:some:other:service")
            ok(_soap(p, client, "HamtaPatientInfo", other, personnummer=patients[0]["id"]))
            if platform_name == "new":
                assert _exchange(p, client, other).status_code == 200


def test_fault_new_token_binding_unchecked(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path,
                                           trust: Trust, actors: dict[str, Any]) -> None:
    for p in _start(tmp_path_factory, ticket_key_file, trust, "new", ["new-token-binding-unchecked"]):
        client = trust.client("pharmacy-1")
        token = _exchange(p, client, assertion(trust, _pharmacist(actors), "pharmacy", client)).json()["access_token"]
        assert _fhir(p, trust.client("pharmacy-2"), token).status_code == 200


# ---- bad start-up input: one line, exit 2 ----


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "refplatform", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})


def test_bad_tls_input_is_one_line_and_exit_2(tmp_path: Path, ticket_key_file: Path, trust: Trust) -> None:
    base = ["--platform", "old", "--data-dir", str(tmp_path / "d"), "--ticket-key-file", str(ticket_key_file),
            "--contracts", str(CONTRACTS)]
    tls = trust.tls_dir("bad-input")
    missing = tmp_path / "nowhere"
    cases = {
        "needs --tls-dir": ["--auth", "saml", "--issuer-cert", str(trust.issuer_cert_file)],
        "needs --issuer-cert": ["--auth", "saml", "--tls-dir", str(tls)],
        "cannot read server certificate": ["--tls-dir", str(missing)],
        "cannot read issuer certificate": ["--auth", "saml", "--tls-dir", str(tls), "--issuer-cert", str(missing)],
        "is not a PEM certificate": ["--auth", "saml", "--tls-dir", str(tls), "--issuer-cert", str(ticket_key_file)],
        "--entry needs --tls-dir": ["--entry", "internet=0"],
        "expected NAME=PORT": ["--tls-dir", str(tls), "--entry", "internet"],
        "given twice": ["--tls-dir", str(tls), "--entry", "internet=0", "--entry", "internet=0"],
    }
    for expected, extra in cases.items():
        out = _run_cli(*base, *extra)
        assert out.returncode == 2, (expected, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("refplatform: ") and expected in lines[0], (expected, lines)
    (tls / "sjunet.key").write_text("not a key")
    out = _run_cli(*base, "--tls-dir", str(tls), "--entry", "internet=0", "--entry", "sjunet=0")
    assert out.returncode == 2 and "sjunet" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
