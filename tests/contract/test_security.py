"""Security rules on every operation: the access ticket and its role.

Requirement: "Säker åtkomst" (security solution 17.1, DOMAIN.md): a missing or bad ticket is
refused on every operation (FHIR 401; the old interface a SOAP fault ApplicationException
EJ_AUTENTISERAD), a ticket whose role may not call an operation is refused (FHIR 403; SOAP
EJ_BEHORIG; contract `x-roles`), and a prescriber sees the medication list only with consent.
The old interface's calls are SOAP requests of the one legacy client, bodies drawn by
schemathesis from legacy.yaml.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import allure
import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, reject, settings
from lxml import etree

from rxverify.contract import legacy_client, roles_of
from rxverify.legacy.client import LegacyAnswer, LegacyClient
from rxverify.legacy.envelope import APPLICATION
from rxverify.legacy.media import service_of
from rxverify.safety.guard import RequestRefused
from rxverify.strategies import contract_patients
from rxverify.target.credentials import AssertionMinter, Caller, TicketMinter, wsse_security
from rxverify.target.local import new_ticket_key
from rxverify.target.run import Run

from .legacy_steps import refusal, shown
from .schemas import fhir, legacy
from .secure_access import client_certificate, fault_code, secure_run, soap_call

ROLES = ("prescriber", "pharmacy")
# The FHIR API is the new platform's: its cases are not collected for the old one (rxverify.conformance).
ON_ITS_PLATFORM = {"legacy": (), "fhir": (pytest.mark.platforms("new"),)}


def _operations(schema: Any, interface: str) -> list[Any]:
    # parametrized over `interface`: generated only for the platforms that have it (rxverify.conformance)
    ops = [r.ok() for r in schema.get_all_operations()]
    return [
        pytest.param(
            interface, op, id=f"{interface}:{op.definition.raw['operationId']}", marks=ON_ITS_PLATFORM[interface]
        )
        for op in ops
        if op.definition.raw.get("security") != []
    ]


OPERATIONS = _operations(legacy, "legacy") + _operations(fhir, "fhir")


def _minter(rx_run: Run) -> TicketMinter:
    assert isinstance(rx_run.tickets, TicketMinter), "forges_tickets: generated only where this run signs tickets"
    return rx_run.tickets


def _base(rx_run: Run, interface: str, platform: str) -> str:
    endpoints = rx_run.target.platforms[platform]
    url = endpoints.legacy if interface == "legacy" else endpoints.fhir
    assert url is not None, f"generated for {platform}, which has no {interface} interface"
    return url


class _Ticket:
    """Credentials that send one given ticket (forged, expired, another role's), or none.

    Under Säker åtkomst 17.1 the ticket of the old interface is a SAMBI assertion (bytes) in
    wsse:Security; on the platforms' `--auth jwt` it is a JWT in Authorization.
    """

    def __init__(self, ticket: str | bytes | None) -> None:
        self._ticket = ticket

    def ticket(self, role: str, index: int = 0) -> str | None:
        """The given JWT, whatever the role."""
        return self._ticket if isinstance(self._ticket, str) else None

    def security_header(self, role: str, index: int = 0) -> etree._Element | None:
        """The given assertion in wsse:Security (None: no header entry)."""
        return etree.fromstring(wsse_security(self._ticket)) if isinstance(self._ticket, bytes) else None


def _soap(session: requests.Session, base: str, operation: Any, case: Any, ticket: str | bytes | None,
          role: str | None = None) -> LegacyAnswer:
    client: LegacyClient = legacy_client(session, base).with_credentials(_Ticket(ticket))
    body = case.body if isinstance(case.body, dict) else {}
    return client.call(service_of(operation, client), body, role=role or roles_of(operation)[0])


def _foreign_issuer(run: Run) -> AssertionMinter:
    """A ticket issuer the platforms do not trust (its own key and certificate, made now), under the right name."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    minter = run.credentials_or_fail().source
    assert isinstance(minter, AssertionMinter), "forged assertions are made beside the local ticket issuer only"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a ticket issuer nobody trusts")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    return AssertionMinter(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()),
                           cert.public_bytes(serialization.Encoding.PEM), minter.actors, minter.profile)


def _token_claims(run: Run, caller: Caller) -> dict[str, Any]:
    """The claims of a real access token of `caller` (read, not verified: only to forge one like it)."""
    return dict(jwt.decode(run.tokens.token(caller), options={"verify_signature": False}))


def _bad_tickets(run: Run, interface: str, role: str) -> tuple[requests.Session | None, list[tuple[str, Any]]]:
    """(the session to send over, [(label, ticket)]): no ticket, a forged one, an expired one.

    Under 17.1 each is sent over the caller's own certificate, so that only the ticket is wrong:
    the old interface's are assertions (forged: signed by an issuer the platforms do not trust;
    expired: the local issuer's, valid until ten minutes ago); the FHIR API's are access tokens
    (forged: a real token's claims signed with another key; expired: signed with the platform's
    own token key, expired an hour ago). On `--auth jwt` they are JWT tickets.
    """
    if not run.secure:
        minter = _minter(run)
        forged = TicketMinter(new_ticket_key(), minter.actors).ticket(role)
        expired = minter.ticket(role, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
        return None, [("no ticket", None), ("forged ticket", forged), ("expired ticket", expired)]
    caller = run.callers.caller(role)
    session = run.session(actor=caller)
    credentials = run.credentials_or_fail()
    if interface == "legacy":
        der = credentials.client(caller).der
        minter = credentials.source
        assert isinstance(minter, AssertionMinter), "forges_tickets: generated only where this run mints assertions"
        return session, [("no ticket", None), ("forged ticket", _foreign_issuer(run).assertion(caller, der)),
                         ("expired ticket", minter.assertion(caller, der, lifetime_s=-600))]
    claims = _token_claims(run, caller)
    forged = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                        headers={"typ": "at+jwt"})
    tickets: list[tuple[str, Any]] = [("no ticket", None), ("forged ticket", forged)]
    key_file = run.local.token_key_file if run.local is not None else None
    if key_file is None:  # platforms started elsewhere (rxverify serve): their token key is not this run's
        allure.dynamic.description("The expired access token is forged only where the run made the platform's "
                                   "token key (the local target); here: no ticket and a forged token.")
        return session, tickets
    now = int(time.time())
    own_key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    expired = jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, own_key, algorithm="ES256",
                         headers={"typ": "at+jwt"})
    return session, [*tickets, ("expired ticket", expired)]


def _send(session: requests.Session, base: str, case: Any, headers: dict[str, str]) -> Any:
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    return case.call(base_url=base, session=session, headers=headers)


def _refused_as(interface: str, operation: Any, label: str, answer: Any, kod: str, status: int) -> str | None:
    """Why the answer is not the refusal the contract declares (None: it is)."""
    if interface == "legacy":
        if refusal(answer) == (500, APPLICATION, kod):
            return None
        service = operation.definition.raw["operationId"]
        return f"{service} {label}: received {shown(answer)}, the contract declares a fault ApplicationException {kod}"
    if answer.status_code == status:
        return None
    return f"{operation.label} {label}: received {answer.status_code}, the contract declares {status}"


@pytest.mark.acceptance
@pytest.mark.forges_tickets
@allure.epic("security")
@allure.story("a missing, forged or expired ticket is refused")
@allure.severity(allure.severity_level.BLOCKER)
@pytest.mark.parametrize(("interface", "operation"), OPERATIONS)
def test_bad_ticket_refused(
    interface: str,
    operation: Any,
    platform: str,
    rx_run: Run,
    rx_session: requests.Session,
    rx_refused: Callable[[str, RequestRefused], None],
) -> None:
    """No ticket, a ticket signed with another key, an expired ticket: refused (401, or EJ_AUTENTISERAD) everywhere."""
    allure.dynamic.feature(operation.definition.raw["operationId"])
    base = _base(rx_run, interface, platform)
    role = roles_of(operation)[0]
    own, tickets = _bad_tickets(rx_run, interface, role)
    session = own or rx_session

    @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy())
    def refused(case: Any) -> None:
        for label, ticket in tickets:
            try:
                if interface == "legacy":
                    response = _soap(session, base, operation, case, ticket)
                else:
                    response = _send(session, base, case, {"Authorization": f"Bearer {ticket}"} if ticket else {})
            except RequestRefused as refused:
                rx_refused(operation.label, refused)  # counted and shown: the gate bounds refusals
                reject()  # generated data held an identity outside the registry: nothing was sent
            problem = _refused_as(interface, operation, f"with {label}", response, "EJ_AUTENTISERAD", 401)
            assert problem is None, problem

    refused()


def _disallowed() -> list[Any]:
    out = []
    for interface, schema in (("legacy", legacy), ("fhir", fhir)):
        for r in schema.get_all_operations():
            op = r.ok()
            allowed = op.definition.raw.get("x-roles")
            if allowed and set(allowed) != set(ROLES):
                for role in set(ROLES) - set(allowed):
                    out.append(
                        pytest.param(
                            interface,
                            op,
                            role,
                            id=f"{interface}:{op.definition.raw['operationId']}:{role}",
                            marks=ON_ITS_PLATFORM[interface],
                        )
                    )
    return out


@pytest.mark.acceptance
@allure.epic("security")
@allure.story("a ticket whose role may not call the operation is refused")
@allure.severity(allure.severity_level.BLOCKER)
@pytest.mark.parametrize(("interface", "operation", "role"), _disallowed())
def test_wrong_role_refused(
    interface: str,
    operation: Any,
    role: str,
    platform: str,
    rx_run: Run,
    rx_session: requests.Session,
    rx_refused: Callable[[str, RequestRefused], None],
) -> None:
    """E.g. a pharmacy ticket cannot create a care prescription: 403, or EJ_BEHORIG (contract x-roles)."""
    allure.dynamic.feature(operation.definition.raw["operationId"])
    base = _base(rx_run, interface, platform)

    @settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy())
    def refused(case: Any) -> None:
        try:
            if interface == "legacy":  # the caller's own credentials, of the role the operation does not allow
                client = legacy_client(rx_session, base)
                body = case.body if isinstance(case.body, dict) else {}
                response = client.call(service_of(operation, client), body, role=role)
            else:
                response = _send(rx_session, base, case, rx_run.auth_headers(role))
        except RequestRefused as refused:
            rx_refused(operation.label, refused)  # counted and shown: the gate bounds refusals
            reject()  # generated data held an identity outside the registry: nothing was sent
        allowed = ", ".join(roles_of(operation))
        if interface == "legacy":
            problem = _refused_as(interface, operation, f"as {role}", response, "EJ_BEHORIG", 403)
            assert problem is None, f"{problem}; the contract allows {allowed} only"
        else:
            assert response.status_code == 403, (
                f"{operation.label} as {role}: received {response.status_code}; the contract allows {allowed} only "
                "(403 for others)"
            )

    refused()


@pytest.mark.acceptance
@allure.epic("medication list")
@allure.feature("HamtaLakemedelsforteckning")
@allure.story("a prescriber sees the medication list only with consent")
@allure.severity(allure.severity_level.BLOCKER)
def test_prescriber_sees_medication_list_only_with_consent(platform: str, legacy: LegacyClient, rx_run: Run) -> None:
    """Consent withdrawn: the fault ApplicationException SAMTYCKE_SAKNAS; consent given: the list."""
    patient = {"personnummer": contract_patients(rx_run.registry)[3].id}
    withdrawn = legacy.call("UppdateraSamtycke", {**patient, "samtycke": False}, role="pharmacy")
    assert withdrawn.ok, f"UppdateraSamtycke: received {shown(withdrawn)}"
    refused = legacy.call("HamtaLakemedelsforteckning", patient, role="prescriber")
    assert refusal(refused) == (500, APPLICATION, "SAMTYCKE_SAKNAS"), (
        f"HamtaLakemedelsforteckning without consent: received {shown(refused)}; "
        "the contract declares a fault ApplicationException SAMTYCKE_SAKNAS"
    )
    given_ = legacy.call("UppdateraSamtycke", {**patient, "samtycke": True}, role="pharmacy")
    assert given_.ok, f"UppdateraSamtycke: received {shown(given_)}"
    served = legacy.call("HamtaLakemedelsforteckning", patient, role="prescriber")
    assert served.ok, f"HamtaLakemedelsforteckning with consent: received {shown(served)}"


# ---- Säker åtkomst 17.1 over mutual TLS: certificates, SAMBI assertions, bound access tokens ----

PHARMACY, OTHER_PHARMACY = Caller("pharmacy", 0), Caller("pharmacy", 1)


@pytest.fixture(scope="session")
def rx_secure_run(pytestconfig: pytest.Config, rx_run: Run, rx_contracts: Path) -> Iterator[Run]:
    """The run over mutual TLS with SAMBI assertions (tests/contract/secure_access.py)."""
    with secure_run(pytestconfig, rx_run, rx_contracts) as run:
        yield run

SECURE_FHIR_HEADERS = {"x-request-id": "6f1c1c8e-3b0a-4d3e-9d59-0c1b2c3d4e5f",
                       "x-context-id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "x-user-agent": "rxverify-contract/1"}


def _status_url(run: Run, platform: str) -> str:
    legacy = run.target.platforms[platform].legacy
    assert legacy is not None
    return legacy + "/HamtaPatientInfoResponder/V5"


def _handshake_refused(session: requests.Session, url: str) -> str | None:
    """None when the server refused the TLS handshake; otherwise what it answered."""
    try:
        answer = session.post(url, data=b"<x/>", headers={"Content-Type": "text/xml"}, timeout=15)
    except (requests.exceptions.SSLError, requests.exceptions.ConnectionError):
        return None
    return f"HTTP {answer.status_code}"


@pytest.mark.acceptance
@allure.epic("security")
@allure.feature("mutual TLS")
@allure.story("a caller without a valid client certificate of the platform's CA gets no connection")
@allure.severity(allure.severity_level.BLOCKER)
@pytest.mark.parametrize("certificate", ["none", "foreign-ca", "expired"])
def test_without_a_valid_client_certificate_the_handshake_is_refused(
    certificate: str, platform: str, rx_secure_run: Run, tmp_path: Path
) -> None:
    """No client certificate, one of another CA, an expired one of the right CA: the TLS handshake fails."""
    run = rx_secure_run
    session = run.session(present_certificate=False)  # the entry point's CA, no client certificate
    if certificate != "none":
        trust = run.local.trust if run.local else None
        assert trust is not None or certificate != "expired", "an expired certificate is made by the local CA only"
        ca = (trust.ca("internet").read_bytes(), (trust.root / "ca-internet.key").read_bytes()) if (
            certificate == "expired" and trust is not None) else None
        session.cert = tuple(str(p) for p in client_certificate(tmp_path, "pharmacy-1", ca=ca,
                                                                 expired=certificate == "expired"))
    answered = _handshake_refused(session, _status_url(run, platform))
    assert answered is None, (
        f"{platform} legacy with client certificate {certificate}: {answered}; mutual TLS refuses it")


@pytest.mark.acceptance
@allure.epic("security")
@allure.feature("SAMBI assertion")
@allure.story("an assertion is accepted only over the certificate it is bound to")
@allure.severity(allure.severity_level.BLOCKER)
def test_another_callers_certificate_with_this_callers_assertion_is_refused(
    platform: str, rx_secure_run: Run, rx_contracts: Path
) -> None:
    """Pharmacy 1's assertion over pharmacy 2's certificate: SOAP fault EJ_AUTENTISERAD (holder of key)."""
    run = rx_secure_run
    patient = contract_patients(run.registry)[0].id
    status, answer = soap_call(run, rx_contracts, platform, PHARMACY, "HamtaPatientInfo", {"personnummer": patient})
    assert status == 200, f"HamtaPatientInfo with a valid assertion: received {status} {etree.tostring(answer)[:300]!r}"
    mine = run.credentials_or_fail().assertion(PHARMACY, None, run.session(actor=PHARMACY))
    status, answer = soap_call(run, rx_contracts, platform, OTHER_PHARMACY, "HamtaPatientInfo",
                               {"personnummer": patient}, assertion=mine)
    assert (status, fault_code(answer)) == (500, "EJ_AUTENTISERAD"), (
        f"HamtaPatientInfo with another caller's certificate: received {status} {fault_code(answer)}; "
        "the assertion is bound to its own certificate (SOAP fault EJ_AUTENTISERAD)")


BAD_ASSERTIONS: dict[str, dict[str, Any]] = {
    "unsigned": {"signed": False},
    "expired": {"lifetime_s": -600},
    "wrong-audience": {"audience": "urn:se:another:service"},
    "wrong-issuer": {"issuer": "https://biljett.another.invalid/sambi"},
}


def _bad_assertion(run: Run, kind: str) -> bytes:
    credentials = run.credentials_or_fail()
    minter = credentials.source
    assert isinstance(minter, AssertionMinter), "bad assertions are made by the local ticket issuer only"
    der = credentials.client(PHARMACY).der
    if kind == "tampered":  # signed, then a bound attribute changed: the signature no longer holds
        signed = minter.assertion(PHARMACY, der)
        gln = str(PHARMACY.person(run.actors)["gln"])
        other = str(OTHER_PHARMACY.person(run.actors)["gln"])
        assert signed.count(gln.encode()) == 1
        return signed.replace(gln.encode(), other.encode())
    return minter.assertion(PHARMACY, der, **BAD_ASSERTIONS[kind])


@pytest.mark.acceptance
@allure.epic("security")
@allure.feature("SAMBI assertion")
@allure.story("an unsigned, tampered, expired, foreign or wrong-audience assertion is refused")
@allure.severity(allure.severity_level.BLOCKER)
@pytest.mark.parametrize("kind", [*BAD_ASSERTIONS, "tampered"])
def test_a_bad_assertion_is_refused_on_the_old_interface(
    kind: str, platform: str, rx_secure_run: Run, rx_contracts: Path
) -> None:
    """wsse:Security with a bad assertion: SOAP fault EJ_AUTENTISERAD on both platforms."""
    run = rx_secure_run
    status, answer = soap_call(run, rx_contracts, platform, PHARMACY, "HamtaPatientInfo",
                               {"personnummer": contract_patients(run.registry)[0].id},
                               assertion=_bad_assertion(run, kind))
    assert (status, fault_code(answer)) == (500, "EJ_AUTENTISERAD"), (
        f"HamtaPatientInfo with assertion {kind!r}: received {status} {fault_code(answer)}; "
        "the platform refuses it (SOAP fault EJ_AUTENTISERAD)")


@pytest.mark.acceptance
@pytest.mark.platforms("new")
@allure.epic("security")
@allure.feature("token endpoint")
@allure.story("the token endpoint exchanges only a valid assertion, bound to the connection's certificate")
@allure.severity(allure.severity_level.BLOCKER)
@pytest.mark.parametrize("kind", [*BAD_ASSERTIONS, "tampered", "another-certificate"])
def test_a_bad_assertion_is_refused_at_the_token_endpoint(kind: str, platform: str, rx_secure_run: Run) -> None:
    """RFC 7522 grant with a bad assertion, or over another caller's certificate: 400 invalid_grant."""
    run = rx_secure_run
    if kind == "another-certificate":
        r = run.tokens.exchange(OTHER_PHARMACY, assertion=run.credentials_or_fail().assertion(
            PHARMACY, None, run.session(actor=PHARMACY)))
    else:
        r = run.tokens.exchange(PHARMACY, assertion=_bad_assertion(run, kind))
    error = r.json().get("error") if r.headers.get("content-type", "").startswith("application/json") else None
    assert (r.status_code, error) == (400, "invalid_grant"), (
        f"token endpoint with assertion {kind!r}: received {r.status_code} {error}; "
        "RFC 7522 declares 400 invalid_grant")


def _fhir_read(run: Run, caller: Caller, token: str, session: requests.Session) -> requests.Response:
    fhir = run.target.platforms["new"].fhir
    headers = {**SECURE_FHIR_HEADERS, "Authorization": f"Bearer {token}"}
    return session.get(f"{fhir}/Consent?_count=1", headers=headers, timeout=30)


@pytest.mark.acceptance
@pytest.mark.platforms("new")
@allure.epic("security")
@allure.feature("access token")
@allure.story("an access token is accepted only over the certificate it was issued over (RFC 8705)")
@allure.severity(allure.severity_level.BLOCKER)
def test_a_token_over_another_certificate_is_refused(platform: str, rx_secure_run: Run) -> None:
    """Pharmacy 1's token over its own certificate: 200; over pharmacy 2's: 401."""
    run = rx_secure_run
    token = run.tokens.token(PHARMACY)
    own = _fhir_read(run, PHARMACY, token, run.session(actor=PHARMACY))
    assert own.status_code == 200, (
        f"FHIR Consent search with a bound token: received {own.status_code} {own.text[:200]}")
    other = _fhir_read(run, OTHER_PHARMACY, token, run.session(actor=OTHER_PHARMACY))
    assert other.status_code == 401, (
        f"FHIR Consent search with a token over another certificate: received {other.status_code}; "
        "a token bound to a certificate (cnf x5t#S256) is refused over any other (401)")
