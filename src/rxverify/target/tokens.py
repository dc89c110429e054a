"""Access tokens of the new platform's FHIR API: a caller's SAMBI assertion exchanged at the token endpoint, refreshed.

RFC 7522 (the SAML 2.0 bearer assertion grant) out, RFC 6749 §6 (refresh) back, every request
through the run's guarded sessions (`Run.session(actor=..., entry=...)`), over the caller's own
client certificate: the token is bound to it (RFC 8705), so a token is held per caller, entry
point and certificate, and is only ever presented over that certificate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from rxverify.errors import UserError
from rxverify.target.credentials import Caller, as_caller, base64url

if TYPE_CHECKING:
    from rxverify.target.run import Run

REFRESH_GRANT = "refresh_token"
EXPIRY_MARGIN_S = 5.0  # renew this long before expiry (a quarter of the lifetime when it is shorter)
TIMEOUT_S = 30


class TokenError(Exception):
    """The token endpoint said no: its RFC 6749 error, description and HTTP status."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"token endpoint: {status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description


@dataclass
class Grant:
    """What the token endpoint gave one caller over one certificate."""

    access_token: str
    refresh_token: str | None
    expires_at: float  # time.monotonic() when it must be renewed
    thumbprint: str  # x5t#S256 of the certificate it is bound to


def _grant(response: requests.Response, thumbprint: str) -> Grant:
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body.get("access_token"), str):
        raise TokenError(response.status_code, str(body.get("error", "no token")),
                         str(body.get("error_description", response.text[:200])))
    lifetime = float(body.get("expires_in") or 0)
    margin = min(EXPIRY_MARGIN_S, lifetime / 4)
    return Grant(body["access_token"], body.get("refresh_token"), time.monotonic() + lifetime - margin, thumbprint)


class TokenClient:
    """Access tokens for callers of one run's target, exchanged and refreshed through its guarded sessions."""

    def __init__(self, run: Run, platform: str = "new") -> None:
        self.run = run
        self.platform = platform
        self._grants: dict[tuple[str, str, Caller], Grant] = {}
        self._sessions: dict[tuple[str, str], requests.Session] = {}

    def token_url(self, entry: str | None = None) -> str:
        """The token endpoint of the platform on an entry point (targets.toml `token`)."""
        endpoints = self.run.target.platforms.get(self.platform)
        point = endpoints.entry(entry) if endpoints is not None else None
        if point is None or not point.token:
            raise UserError(f"target {self.run.target.name!r} names no token endpoint for the {self.platform} "
                            f"platform on entry point {entry or 'the default'} (token)")
        return point.token

    def _session(self, caller: Caller, entry: str) -> requests.Session:
        key = (self.run.credentials_or_fail().client(caller, entry).holder, entry)
        if key not in self._sessions:  # one per certificate holder and entry point: connections are reused
            self._sessions[key] = self.run.session(actor=caller, entry=entry)
        return self._sessions[key]

    # ---- the two grants, as they are (for tests of refusals) ----

    def exchange(self, actor: Caller | str, entry: str | None = None, assertion: bytes | None = None,
                 **extra: str) -> requests.Response:
        """POST the SAML 2.0 bearer grant for `actor` (its own fresh assertion unless one is given)."""
        caller, credentials = as_caller(actor), self.run.credentials_or_fail()
        name = credentials.entry(entry)
        session = self._session(caller, name)
        xml = assertion if assertion is not None else credentials.assertion(caller, name, session)
        form = {"grant_type": credentials.profile_grant_type, "assertion": base64url(xml), **extra}
        return session.post(self.token_url(name), data=form, timeout=TIMEOUT_S)

    def refresh_grant(self, actor: Caller | str, refresh_token: str, entry: str | None = None) -> requests.Response:
        """POST the refresh-token grant over `actor`'s certificate."""
        caller, name = as_caller(actor), self.run.credentials_or_fail().entry(entry)
        form = {"grant_type": REFRESH_GRANT, "refresh_token": refresh_token}
        return self._session(caller, name).post(self.token_url(name), data=form, timeout=TIMEOUT_S)

    # ---- what a suite calls ----

    def token(self, actor: Caller | str, entry: str | None = None) -> str:
        """A valid access token for `actor` on an entry point: held, refreshed before expiry, or exchanged anew."""
        caller, credentials = as_caller(actor), self.run.credentials_or_fail()
        name = credentials.entry(entry)
        thumbprint = credentials.client(caller, name).thumbprint
        key = (name, thumbprint, caller)
        held = self._grants.get(key)
        if held is not None and time.monotonic() < held.expires_at:
            return held.access_token
        grant = None
        if held is not None and held.refresh_token:
            try:
                grant = _grant(self.refresh_grant(caller, held.refresh_token, name), thumbprint)
            except TokenError:
                grant = None  # the refresh token expired too: exchange a new assertion
        if grant is None:
            grant = _grant(self.exchange(caller, name), thumbprint)
        self._grants[key] = grant
        return grant.access_token

    def headers(self, actor: Caller | str, entry: str | None = None) -> dict[str, str]:
        """`Authorization` for a FHIR request of `actor` (to be sent over `Run.session(actor=...)` only)."""
        return {"Authorization": f"Bearer {self.token(actor, entry)}"}
