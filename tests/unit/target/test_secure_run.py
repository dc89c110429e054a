"""The suite's Säker åtkomst primitives against the local platforms over mutual TLS, through the guard.

Requirement: security solution 17.1 (DOMAIN.md), for the suite: `Run.session(actor=...)` presents
the caller's client certificate and trusts the entry point's CA on both entry points; the local
ticket issuer's assertions are accepted by both platforms' old interface; the token client
exchanges and refreshes through the guarded session, a token held per caller and certificate;
Locust's FastHttp client presents the certificate and keeps its TLS connection; the guard reads
a base64 SAML assertion; every request counted is one a platform received (the egress audit).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree

from rxverify.safety.guard import RequestRefused
from rxverify.safety.registry import Registry
from rxverify.target.credentials import AssertionMinter, Caller, wsse_security
from rxverify.target.run import Run, open_run
from rxverify.target.targets import Target

from ..conftest import CONTRACTS
from ..safety_encodings import foreign_identity

SERVICES: dict[str, Any] = tomllib.loads((CONTRACTS / "riv" / "services.toml").read_text(encoding="utf-8"))
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
FHIR_HEADERS = {"x-request-id": "6f1c1c8e-3b0a-4d3e-9d59-0c1b2c3d4e5f",
                "x-context-id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "x-user-agent": "rxverify-unit/1"}
PHARMACY, OTHER_PHARMACY = Caller("pharmacy", 0), Caller("pharmacy", 1)
PRESCRIBER, VIA_FK = Caller("prescriber", 0), Caller("prescriber", 0, via="forskrivningskollen")


def _patient(registry: Registry, n: int = 0) -> str:
    return registry.patients[n].id


def _soap(run: Run, platform: str, caller: Caller, service: str, fields: dict[str, str], *,
          entry: str | None = None, assertion: bytes | None = None,
          session: requests.Session | None = None) -> tuple[int, etree._Element]:
    """One SOAP request of `service` as `caller` over its certificate, its assertion in wsse:Security."""
    spec = SERVICES["operations"][service]
    endpoints = run.target.platforms[platform].entry(entry)
    assert endpoints is not None and endpoints.legacy
    http = session or run.session(actor=caller, entry=entry)
    credentials = run.credentials_or_fail()
    signed = assertion if assertion is not None else credentials.assertion(caller, entry, http)
    body = "".join(f"<r:{k}>{v}</r:{k}>" for k, v in fields.items())
    envelope = (f'<s:Envelope xmlns:s="{SOAP11}"><s:Header>{wsse_security(signed).decode()}</s:Header>'
                f'<s:Body><r:{service} xmlns:r="{spec["namespace"]}">{body}</r:{service}></s:Body></s:Envelope>')
    r = http.post(endpoints.legacy + spec["endpoint"], data=envelope.encode(), timeout=30,
                  headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{spec["soap_action"]}"'})
    root = etree.fromstring(r.content)
    return r.status_code, root.find(f"{{{SOAP11}}}Body")[0]  # type: ignore[index]


def _kod(element: etree._Element) -> str | None:
    return element.findtext(".//{*}kod")


# ---- the old interface, both platforms, both entry points ----


@pytest.mark.parametrize("which", ["old", "new"])
@pytest.mark.parametrize("entry", ["internet", "sjunet"])
def test_a_minted_assertion_over_the_callers_certificate_is_served(tls_run: Run, registry: Registry,
                                                                   which: str, entry: str) -> None:
    pid = _patient(registry)
    status, answer = _soap(tls_run, which, PHARMACY, "HamtaPatientInfo", {"personnummer": pid}, entry=entry)
    assert status == 200 and answer.tag.endswith("HamtaPatientInfoResponse"), etree.tostring(answer)
    status, answer = _soap(tls_run, which, VIA_FK, "KontrolleraArbetsplatskod", {"arbetsplatskod": "4000000"},
                           entry=entry)
    assert status == 200 and answer.findtext(".//{*}giltig") == "true", etree.tostring(answer)


def test_another_callers_certificate_with_this_callers_assertion_is_refused(tls_run: Run,
                                                                            registry: Registry) -> None:
    credentials = tls_run.credentials_or_fail()
    mine = tls_run.session(actor=PHARMACY)
    signed = credentials.assertion(PHARMACY, None, mine)
    status, answer = _soap(tls_run, "new", OTHER_PHARMACY, "HamtaPatientInfo", {"personnummer": _patient(registry)},
                           assertion=signed)
    assert (status, _kod(answer)) == (500, "EJ_AUTENTISERAD")


def test_a_session_presenting_no_certificate_gets_no_answer(tls_run: Run) -> None:
    base = tls_run.target.platforms["old"].legacy
    assert base is not None
    with pytest.raises(requests.exceptions.ConnectionError):
        tls_run.session(present_certificate=False).get(base.removesuffix("/legacy") + "/status", timeout=10)
    assert tls_run.session(actor=PHARMACY).get(base.removesuffix("/legacy") + "/status", timeout=10).ok


def test_a_run_session_presents_the_certificate_of_the_credential_each_request_carries(
        tls_run: Run, registry: Registry) -> None:
    """One session, three callers: each request over the certificate its assertion or token is bound to."""
    from rxverify.contracts.riv import load_riv
    from rxverify.legacy.client import LegacyClient

    session = tls_run.session()
    for which in ("old", "new"):
        legacy = tls_run.target.platforms[which].legacy
        assert legacy is not None
        client = LegacyClient(session, legacy, load_riv(CONTRACTS), tls_run.legacy_credentials(), tls_run.actors)
        for index in (0, 1):  # two pharmacies, two certificates: a fixed certificate would fail one of them
            answer = client.call("HamtaPatientInfo", {"personnummer": _patient(registry)}, role="pharmacy",
                                 actor=index)
            assert answer.ok, (which, index, answer.kod, answer.raw[:300])
        assert "Authorization" not in (answer.request.headers if answer.request else {})
    fhir = tls_run.target.platforms["new"].fhir
    for index in (0, 1):
        r = session.get(f"{fhir}/Consent?_count=1", headers={**FHIR_HEADERS, **tls_run.auth_headers("pharmacy", index)},
                        timeout=30)
        assert r.status_code == 200, (index, r.status_code, r.text[:200])
    base = (tls_run.target.platforms["old"].legacy or "").removesuffix("/legacy")
    assert session.get(base + "/status", timeout=10).ok  # no credential: the default caller's certificate


def test_each_entry_point_has_its_own_ca(tls_run: Run) -> None:
    """A session of one entry point does not verify the servers of the other."""
    sjunet = tls_run.target.platforms["new"].entry("sjunet")
    assert sjunet is not None and sjunet.legacy
    with pytest.raises(requests.exceptions.SSLError):
        tls_run.session(actor=PHARMACY, entry="internet").get(sjunet.legacy.removesuffix("/legacy") + "/status",
                                                              timeout=10)


# ---- the token client ----


def _fhir(run: Run, caller: Caller, token: str | None = None, session: requests.Session | None = None) -> int:
    fhir = run.target.platforms["new"].fhir
    auth = {"Authorization": f"Bearer {token}"} if token else run.tokens.headers(caller)
    http = session or run.session(actor=caller)
    return http.get(f"{fhir}/Consent?_count=1", headers={**FHIR_HEADERS, **auth}, timeout=30).status_code


def test_the_token_client_exchanges_holds_and_refreshes(tls_run: Run) -> None:
    tokens = tls_run.tokens
    first = tokens.token(PHARMACY)
    sent = tls_run.guard.counts["sent"]
    assert tokens.token(PHARMACY) == first and tls_run.guard.counts["sent"] == sent  # held, nothing sent
    assert _fhir(tls_run, PHARMACY) == 200
    # held per caller and certificate: another caller, another token
    assert tokens.token(OTHER_PHARMACY) != first
    # due for renewal: refreshed with the refresh token (one request), a new token
    for key, grant in tokens._grants.items():
        if key[2] == PHARMACY:
            grant.expires_at = time.monotonic() - 1
    sent = tls_run.guard.counts["sent"]
    renewed = tokens.token(PHARMACY)
    assert renewed != first and tls_run.guard.counts["sent"] == sent + 1
    assert _fhir(tls_run, PHARMACY, renewed) == 200


def test_a_token_is_refused_over_another_callers_certificate(tls_run: Run) -> None:
    token = tls_run.tokens.token(PHARMACY)
    assert _fhir(tls_run, PHARMACY, token) == 200
    assert _fhir(tls_run, OTHER_PHARMACY, token, session=tls_run.session(actor=OTHER_PHARMACY)) == 401


def test_refusals_of_the_token_endpoint_come_back_as_they_are(tls_run: Run) -> None:
    credentials = tls_run.credentials_or_fail()
    minter = credentials.source
    assert isinstance(minter, AssertionMinter)
    der = credentials.client(PHARMACY).der
    expired = minter.assertion(PHARMACY, der, lifetime_s=-600)
    other = minter.assertion(PHARMACY, credentials.client(OTHER_PHARMACY).der)
    for bad in (expired, minter.assertion(PHARMACY, der, audience="urn:x"), other,
                minter.assertion(PHARMACY, der, signed=False)):
        r = tls_run.tokens.exchange(PHARMACY, assertion=bad)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    ok = tls_run.tokens.exchange(PRESCRIBER)
    assert ok.status_code == 200, ok.text
    refreshed = tls_run.tokens.refresh_grant(PRESCRIBER, ok.json()["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    stolen = tls_run.tokens.refresh_grant(PHARMACY, refreshed.json()["refresh_token"])
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"


# ---- the guard reads assertions, base64 or XML ----


def test_the_guard_reads_a_base64_assertion_with_a_foreign_identity(tls_run: Run, registry: Registry) -> None:
    import random

    seed = random.SystemRandom().randrange(2**32)
    foreign = foreign_identity(random.Random(seed), registry)  # made now, never written to a file
    credentials = tls_run.credentials_or_fail()
    minter = credentials.source
    assert isinstance(minter, AssertionMinter)
    der = credentials.client(PHARMACY).der
    refused_before = tls_run.guard.counts["identity"]
    sent_before = tls_run.guard.counts["sent"]
    for assertion in (minter.assertion(PHARMACY, der, name_id=foreign),
                      minter.assertion(PHARMACY, der, attributes={"legitimationskod": foreign})):
        with pytest.raises(RequestRefused, match="is not a registered test patient"):
            tls_run.tokens.exchange(PHARMACY, assertion=assertion)  # form body: assertion=<base64url>
        with pytest.raises(RequestRefused, match="is not a registered test patient"):
            _soap(tls_run, "old", PHARMACY, "HamtaPatientInfo", {"personnummer": _patient(registry)},
                  assertion=assertion)
    assert tls_run.guard.counts["identity"] == refused_before + 4, f"seed {seed}"
    assert tls_run.guard.counts["sent"] == sent_before, "a refused request reached a socket"


# ---- Locust's FastHttp client ----


def test_fasthttp_presents_the_certificate_and_reuses_its_connection(tls_run: Run) -> None:
    """FastHttpUser's session (in a process of its own, as Locust runs) over one kept TLS connection."""
    base = (tls_run.target.platforms["new"].legacy or "").removesuffix("/legacy")
    client = tls_run.credentials_or_fail().client(PHARMACY)
    spec = {"base": base, "cert": str(client.cert), "key": str(client.key),
            "ca": str(tls_run.credentials_or_fail().ca())}
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("fasthttp_probe.py")), json.dumps(spec)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # the probe's own guard sent these: its digests join the run's, so the egress audit still holds
    # every request the platforms received against one that a guard let through
    assert tls_run.guard.sent_log is not None
    tls_run.guard.sent_log.update(seen["sent_log"])
    assert seen["statuses"] == [200] * 20 and seen["sent"] >= 20  # the refused handshake may count too
    assert seen["handshakes"] == 1  # one TLS connection, kept alive
    assert seen["anonymous"]["status"] == 0 and seen["anonymous"]["error"]  # no certificate: no answer


# ---- the egress audit over TLS, and what is left behind ----


def test_the_egress_audit_holds_over_tls_and_the_trust_domain_goes_with_the_run(registry: Registry) -> None:
    with open_run(Target("local", "local"), CONTRACTS, suite="cli", tls=True, platforms=("new",), audit=True) as run:
        trust = run.local.trust if run.local else None
        assert trust is not None
        keys = list(trust.root.rglob("*.key"))
        assert keys and all(k.stat().st_mode & 0o777 == 0o600 for k in keys)
        assert _soap(run, "new", PRESCRIBER, "HamtaPatientInfo", {"personnummer": _patient(registry)})[0] == 200
        assert _fhir(run, PHARMACY) == 200
        assert run.guard.counts["sent"] >= 3
    assert run.audit_problems == []
    assert not trust.root.exists() and not any(Path(k).exists() for k in keys)


HTTPUSER_SCRIPT = """
import json, sys
from pathlib import Path
import locust  # patches the process for gevent, as a load run does
from locust.env import Environment
from rxverify.contracts.riv import load_riv
from rxverify.legacy.client import LegacyClient
from rxverify.load.client import GuardedHttpUser
from rxverify.safety.guard import RequestRefused
from rxverify.target.run import open_run
from rxverify.target.targets import Target

contracts, patient, foreign = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
out = {}
with open_run(Target("local", "local"), contracts, suite="load", tls=True, platforms=("new",), audit=True) as run:
    legacy = run.target.platforms["new"].legacy
    GuardedHttpUser.bind(run)

    class Pharmacy(GuardedHttpUser):
        host = legacy

    env = Environment(user_classes=[Pharmacy])
    failures = []
    env.events.request.add_listener(lambda exception=None, **kw: failures.append(type(exception).__name__)
                                    if exception else None)
    user = Pharmacy(env)
    prepare = LegacyClient(None, "", load_riv(contracts), run.legacy_credentials(), run.actors).prepare
    for index in (0, 1):  # two pharmacies: each request over its own caller's certificate
        req = prepare("HamtaPatientInfo", {"personnummer": patient}, role="pharmacy", actor=index)
        r = user.client.post(req.url, data=req.body, headers=req.headers, name="HamtaPatientInfo")
        out[f"status{index}"] = r.status_code
        out[f"fault{index}"] = b"Fault" in r.content
    req = prepare("HamtaPatientInfo", {"personnummer": foreign}, role="pharmacy")
    try:
        user.client.post(req.url, data=req.body, headers=req.headers, name="HamtaPatientInfo")
        out["refused"] = False
    except RequestRefused:
        out["refused"] = True
    out["failures"] = failures
print(json.dumps({**out, "audit": run.audit_problems}))
"""


def test_a_guarded_httpuser_calls_over_each_callers_certificate_and_is_guarded(registry: Registry) -> None:
    """Locust's HttpUser of the guarded kind: every request through the guard (a foreign identity refused,
    as a failed request), each over its caller's certificate (two pharmacies served), audited."""
    done = subprocess.run([sys.executable, "-c", HTTPUSER_SCRIPT, str(CONTRACTS), _patient(registry),
                           foreign_identity(random.Random(), registry)], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert (out["status0"], out["fault0"], out["status1"], out["fault1"]) == (200, False, 200, False), out
    assert out["refused"] and out["failures"] == ["RequestRefused"], out
    assert out["audit"] == [], out
