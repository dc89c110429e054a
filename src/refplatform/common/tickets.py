"""Access tickets ("Säker åtkomst"): HS256-signed JWTs carrying the actor's role and attributes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

ISSUER = "rxverify-local"
ROLES = ("prescriber", "pharmacy")


class TicketError(Exception):
    """A ticket was missing, bad (401) or of the wrong role (403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Actor:
    """Who calls, as the ticket says."""

    role: str
    actor_id: str
    hsa_id: str | None = None
    forskrivarkod: str | None = None
    arbetsplatskod: str | None = None
    gln: str | None = None

    @property
    def identifier(self) -> str:
        """The actor's own identifier: GLN for a pharmacy, HSA-id otherwise."""
        return (self.gln if self.role == "pharmacy" else self.hsa_id) or self.actor_id

    def require(self, *roles: str) -> None:
        """Refuse (403) unless the actor has one of `roles`."""
        if self.role not in roles:
            raise TicketError(403, f"role {self.role!r} may not do this (needs {' or '.join(roles)})")


def verify_ticket(authorization: str | None, key: bytes) -> Actor:
    """Check an `Authorization: Bearer <ticket>` header value and return its actor."""
    if not authorization:
        raise TicketError(401, "access ticket missing")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TicketError(401, "access ticket must be sent as 'Authorization: Bearer <ticket>'")
    try:
        claims = jwt.decode(
            token.strip(),
            key,
            algorithms=["HS256"],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "iss", "sub", "role"]},
        )
    except jwt.PyJWTError as exc:
        raise TicketError(401, f"access ticket rejected: {exc}") from None
    role = claims.get("role")
    if role not in ROLES:
        raise TicketError(401, "access ticket has no known role")
    if role == "pharmacy" and not claims.get("gln"):
        raise TicketError(401, "pharmacy ticket without GLN")
    if role == "prescriber" and not (
        claims.get("hsaId") and claims.get("arbetsplatskod") and claims.get("forskrivarkod")
    ):
        raise TicketError(401, "prescriber ticket without HSA-id, prescriber code or workplace code")
    return Actor(
        role=role,
        actor_id=str(claims["sub"]),
        hsa_id=claims.get("hsaId"),
        forskrivarkod=claims.get("forskrivarkod"),
        arbetsplatskod=claims.get("arbetsplatskod"),
        gln=claims.get("gln"),
    )


def read_actor(http_headers: Mapping[str, str], soap_header: Any, key: bytes) -> Actor:
    """The caller of a legacy request, from whatever carries its ticket: the one reader both bindings use.

    Today the ticket is the HTTP `Authorization: Bearer` header on REST and SOAP alike; `soap_header`
    (the parsed envelope, refplatform.common.soap.Envelope, whose `header` holds the SOAP header
    entries; None on REST) is where a SAML assertion in wsse:Security will be read.
    """
    return verify_ticket(http_headers.get("authorization"), key)
