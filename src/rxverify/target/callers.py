"""Callers under Säker åtkomst 17.1: what each test actor sends, and the certificate each request goes over.

Every suite calls as test actors (a role and an index). Over mutual TLS a caller's request carries
its SAMBI assertion (the old interface: `wsse:Security` in the SOAP header) or an access token
exchanged for it (the FHIR API: `Authorization: Bearer`), and both are bound to the caller's own
client certificate: the assertion as holder of key, the token by RFC 8705. So the certificate a
request presents follows from the credential it carries. `SecureCallers` mints (or fetches) each
caller's assertion once per half its lifetime, holds its tokens (rxverify.target.tokens), and
remembers which certificate each credential it gave out belongs to; a run's sessions ask it, per
request, which certificate to present (`certificate_for`). A request that carries none of them
(a probe, `?wsdl`, the security tests' caller without a ticket) presents the run's default caller's
certificate: every interface of 17.1 needs one for the handshake.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from lxml import etree

from rxverify.target.credentials import Caller, wsse_security

if TYPE_CHECKING:
    import requests

    from rxverify.target.run import Run

# renew an assertion when half its lifetime is gone: a request sent with it never arrives expired
RENEW_AT = 0.5
# the ID attribute of a saml2:Assertion in a SOAP body (the one the legacy client put there)
_ASSERTION_ID = re.compile(rb"<(?:\w+:)?Assertion\b[^>]*?\sID=\"([^\"]+)\"")
DEFAULT_CALLER = Caller("prescriber", 0)

CertPair = tuple[str, str]


class SecureCallers:
    """The callers of one run that speaks 17.1: assertions, tokens, and which certificate goes with which."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.credentials = run.credentials_or_fail()
        self.actors = run.actors
        self._lock = threading.Lock()  # load users share one run (greenlets, and the master's threads)
        self._headers: dict[tuple[str, Caller], tuple[float, etree._Element]] = {}
        self._by_assertion: dict[bytes, CertPair] = {}
        self._by_token: dict[str, CertPair] = {}

    # ---- who ----

    def caller(self, role: str, index: int = 0) -> Caller:
        """The caller test actor `index` of `role` is (the index taken within the role's pool)."""
        pool = self.actors.prescribers if role == "prescriber" else self.actors.pharmacies
        return Caller(role, index % len(pool)) if pool else Caller(role, 0)

    def certificate(self, caller: Caller, entry: str | None = None) -> CertPair:
        """The (certificate, key) files `caller` presents on an entry point."""
        client = self.credentials.client(caller, entry)
        return str(client.cert), str(client.key)

    def at(self, entry: str) -> AtEntry:
        """These callers' credentials on one entry point (what the legacy client takes)."""
        return AtEntry(self, entry)

    # ---- the old interface: an assertion in wsse:Security ----

    def ticket(self, role: str, index: int = 0) -> str | None:
        """No Authorization header on the old interface under 17.1 (rxverify.legacy.client.Credentials)."""
        return None

    def security_header(self, role: str, index: int = 0, entry: str | None = None) -> etree._Element:
        """The `wsse:Security` header entry of a caller: its assertion, minted anew when half its lifetime is gone."""
        caller = self.caller(role, index)
        name = self.credentials.entry(entry)
        now = time.monotonic()
        with self._lock:
            held = self._headers.get((name, caller))
        if held is None or now >= held[0]:
            session = self.run.session(actor=caller, entry=name)  # a ticket service is asked over the caller's own
            assertion = self.credentials.assertion(caller, name, session)
            element = etree.fromstring(wsse_security(assertion))
            ident = _ASSERTION_ID.search(assertion)
            lifetime = self._lifetime()
            held = (now + lifetime * RENEW_AT, element)
            with self._lock:
                self._headers[(name, caller)] = held
                if ident is not None:
                    self._by_assertion[ident.group(1)] = self.certificate(caller, name)
        return copy.deepcopy(held[1])  # an element has one parent: each envelope gets its own

    def _lifetime(self) -> float:
        source = self.credentials.source
        profile = getattr(source, "profile", None)
        return float(getattr(profile, "lifetime_s", 300))

    # ---- the FHIR API: an access token bound to the certificate ----

    def bearer(self, role: str, index: int = 0, entry: str | None = None) -> str:
        """`Bearer <access token>` of a caller (exchanged, held and refreshed by rxverify.target.tokens)."""
        caller = self.caller(role, index)
        name = self.credentials.entry(entry)
        token = self.run.tokens.token(caller, name)
        value = f"Bearer {token}"
        with self._lock:
            if value not in self._by_token:
                self._by_token[value] = self.certificate(caller, name)
        return value

    # ---- which certificate a request presents ----

    def certificate_for(self, request: requests.PreparedRequest, entry: str | None = None) -> CertPair:
        """The certificate of the caller whose credential `request` carries (the default caller's when none)."""
        authorization = request.headers.get("Authorization")
        if authorization:
            bound = self._by_token.get(authorization)
            if bound is not None:
                return bound
        body: Any = request.body
        if isinstance(body, bytes) and b"Assertion" in body:
            found = _ASSERTION_ID.search(body)
            if found is not None:
                bound = self._by_assertion.get(found.group(1))
                if bound is not None:
                    return bound
        return self.certificate(DEFAULT_CALLER, entry)


class AtEntry:
    """The legacy client's credentials of callers on one entry point: their assertions bound to its certificates."""

    def __init__(self, callers: SecureCallers, entry: str) -> None:
        self.callers = callers
        self.entry = entry

    def ticket(self, role: str, index: int = 0) -> str | None:
        """No Authorization header on the old interface under 17.1."""
        return None

    def security_header(self, role: str, index: int = 0) -> etree._Element:
        """The caller's wsse:Security on this entry point."""
        return self.callers.security_header(role, index, self.entry)
