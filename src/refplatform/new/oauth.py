"""The new platform's OAuth 2.0 token endpoint and the access tokens its FHIR API accepts (`--auth saml`).

POST `/oauth2/api/oauth/token` (contracts/security/sambi.toml [token]), form-encoded:
- `grant_type=urn:ietf:params:oauth:grant-type:saml2-bearer&assertion=<base64url SAMBI assertion>`
  (RFC 7522): the assertion is verified as the old interface verifies it, bound to the TLS client
  certificate of this connection;
- `grant_type=refresh_token&refresh_token=...` (RFC 6749 §6), over the same client certificate.
Out: a signed JWT access token (ES256) whose `cnf` carries the `x5t#S256` of the client certificate
it was issued over (RFC 8705 §3), and an opaque refresh token, rotated on every use. Errors are
RFC 6749 §5.2 JSON: 400 invalid_request / invalid_grant / unsupported_grant_type, 401
invalid_client (a `client_id` that is not the certificate's). The FHIR API takes only an access
token of this platform, unexpired, of the FHIR audience, over the certificate it is bound to
(RFC 6750 §3: 401 with `WWW-Authenticate: Bearer ...` otherwise).
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from refplatform.common.config import PlatformConfig
from refplatform.common.faults import register
from refplatform.common.sambi import SambiProfile, SambiVerifier
from refplatform.common.tickets import ROLES, Actor, TicketError
from refplatform.common.tls import peer_certificate, peer_common_name, peer_thumbprint

FAULT_BINDING_UNCHECKED = register(
    "new-token-binding-unchecked", "new", "security",
    "the FHIR API does not check an access token's certificate binding (cnf x5t#S256): a token is accepted "
    "over any client certificate",
).name
TOKEN_ISSUER = "refplatform-ecp-oauth2"  # the `iss` of this platform's access tokens
ALGORITHM = "ES256"
REFRESH_GRANT = "refresh_token"
FORM = "application/x-www-form-urlencoded"
MAX_REFRESH_TOKENS = 200_000  # kept in memory; beyond this the expired ones are dropped first
REALM = 'realm="nll-fhir"'
# the actor's attributes as access-token claims
CLAIMS = {"hsa_id": "hsaId", "forskrivarkod": "forskrivarkod", "arbetsplatskod": "arbetsplatskod", "gln": "gln",
          "license": "license", "legitimationskod": "legitimationskod"}


class OAuthError(Exception):
    """An RFC 6749 §5.2 error answer."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def _oauth_error(exc: OAuthError) -> JSONResponse:
    return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=exc.status,
                        headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def signing_key(path: Path | None) -> ec.EllipticCurvePrivateKey:
    """The access tokens' signing key: a PEM EC P-256 key from `path` (--token-key-file), or a new one."""
    if path is None:
        return ec.generate_private_key(ec.SECP256R1())
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"token key {path} is not an EC P-256 private key (ES256)")
    return key


@dataclass(frozen=True)
class _Refresh:
    actor: Actor
    thumbprint: str
    expires: float


class TokenService:
    """The token endpoint and the FHIR API's check of the tokens it issued."""

    def __init__(self, config: PlatformConfig, profile: SambiProfile, verifier: SambiVerifier,
                 key: ec.EllipticCurvePrivateKey) -> None:
        self.config = config
        self.profile = profile
        self.verifier = verifier
        self.key = key
        self.public_key = key.public_key()
        self.faults = config.faults
        self.refresh_tokens: dict[str, _Refresh] = {}

    # ---- the token endpoint ----

    async def token(self, request: Request) -> Response:
        """POST the token endpoint: an assertion or a refresh token in, an access and a refresh token out."""
        try:
            return self._grant(request, await self._form(request))
        except OAuthError as exc:
            return _oauth_error(exc)

    @staticmethod
    async def _form(request: Request) -> dict[str, str]:
        media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if media != FORM:
            raise OAuthError("invalid_request", f"the token request must be {FORM}, not {media or 'without a type'}")
        try:
            pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise OAuthError("invalid_request", "the token request is not UTF-8") from None
        form: dict[str, str] = {}
        for name, value in pairs:
            if name in form:  # RFC 6749 §3.2: a parameter must not be included more than once
                raise OAuthError("invalid_request", f"parameter {name} is given more than once")
            form[name] = value
        return form

    def _grant(self, request: Request, form: dict[str, str]) -> Response:
        grant = form.get("grant_type")
        if not grant:
            raise OAuthError("invalid_request", "grant_type is missing")
        thumb, der = peer_thumbprint(request.scope), peer_certificate(request.scope)
        if thumb is None or der is None:
            raise OAuthError("invalid_client", "no client certificate on this connection (mutual TLS)", 401)
        client_id = form.get("client_id")
        if client_id is not None and client_id != peer_common_name(request.scope):
            raise OAuthError("invalid_client", f"client_id {client_id!r} is not the client certificate's", 401)
        if grant == self.profile.grant_type:
            assertion = form.get("assertion")
            if not assertion:
                raise OAuthError("invalid_request", "assertion is missing")
            try:
                actor = self.verifier.from_base64(assertion, der)
            except TicketError as exc:  # RFC 7522 §3.1: an assertion that is not valid is invalid_grant
                raise OAuthError("invalid_grant", exc.message) from None
            # bound to the certificate of this connection (the assertion's, unless a fault skipped that check)
            return self._issue(replace(actor, certificate=thumb), thumb)
        if grant == REFRESH_GRANT:
            return self._refresh(form.get("refresh_token"), thumb)
        raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not served here "
                                                   f"({self.profile.grant_type} or {REFRESH_GRANT})")

    def _refresh(self, token: str | None, thumb: str) -> Response:
        if not token:
            raise OAuthError("invalid_request", "refresh_token is missing")
        held = self.refresh_tokens.get(token)
        if held is None:
            raise OAuthError("invalid_grant", "refresh token unknown or already used")
        if held.thumbprint != thumb:  # RFC 8705 §4: bound to the client certificate it was issued to
            raise OAuthError("invalid_grant", "refresh token was issued over another client certificate")
        del self.refresh_tokens[token]  # rotated: each refresh token is used once
        if time.time() >= held.expires:
            raise OAuthError("invalid_grant", "refresh token expired")
        return self._issue(held.actor, thumb)

    def _issue(self, actor: Actor, thumb: str) -> Response:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": TOKEN_ISSUER, "aud": self.profile.token_audience, "sub": actor.actor_id, "iat": now,
            "exp": now + self.config.token_lifetime_s, "jti": str(uuid.uuid4()), "role": actor.role,
            "cnf": {"x5t#S256": thumb},
        }
        claims.update({claim: getattr(actor, field) for field, claim in CLAIMS.items() if getattr(actor, field)})
        access = jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"typ": "at+jwt"})
        refresh = secrets.token_urlsafe(32)
        self._keep(refresh, _Refresh(actor, thumb, time.time() + self.config.refresh_lifetime_s))
        body = {"access_token": access, "token_type": "Bearer", "expires_in": self.config.token_lifetime_s,
                "refresh_token": refresh}
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _keep(self, token: str, held: _Refresh) -> None:
        if len(self.refresh_tokens) >= MAX_REFRESH_TOKENS:
            now = time.time()
            self.refresh_tokens = {k: v for k, v in self.refresh_tokens.items() if v.expires > now}
            while len(self.refresh_tokens) >= MAX_REFRESH_TOKENS:
                self.refresh_tokens.pop(next(iter(self.refresh_tokens)))
        self.refresh_tokens[token] = held

    # ---- the FHIR API's check ----

    def actor(self, request: Request) -> Actor:
        """The caller of a FHIR request: a bound, unexpired access token of this platform (TicketError 401)."""
        authorization = request.headers.get("authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TicketError(401, "access token missing (Authorization: Bearer <token> from the token endpoint)")
        try:
            claims = jwt.decode(
                token.strip(), self.public_key, algorithms=[ALGORITHM], audience=self.profile.token_audience,
                issuer=TOKEN_ISSUER, options={"require": ["exp", "iat", "iss", "aud", "sub", "cnf"]},
            )
        except jwt.PyJWTError as exc:
            raise TicketError(401, f"access token rejected: {exc}") from None
        bound = (claims.get("cnf") or {}).get("x5t#S256") if isinstance(claims.get("cnf"), dict) else None
        if not isinstance(bound, str):
            raise TicketError(401, "access token is not bound to a certificate (cnf x5t#S256)")
        if bound != peer_thumbprint(request.scope) and not self.faults.on(FAULT_BINDING_UNCHECKED):
            raise TicketError(401, "access token was issued over another client certificate (RFC 8705)")
        if claims.get("role") not in ROLES:
            raise TicketError(401, "access token has no known role")
        return Actor(role=claims["role"], actor_id=str(claims["sub"]), certificate=bound,
                     **{field: claims.get(claim) for field, claim in CLAIMS.items()})


def challenge(message: str, with_token: bool) -> str:
    """The RFC 6750 §3 WWW-Authenticate value: invalid_token when a token was presented, bare otherwise."""
    if not with_token:
        return f"Bearer {REALM}"
    safe = message.replace("\\", "").replace('"', "'")
    return f'Bearer {REALM}, error="invalid_token", error_description="{safe}"'
