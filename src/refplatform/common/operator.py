"""The local operator key: who may use the /admin/... controls of a platform or the gateway.

The key is a file given at start (`--admin-key-file`), like the ticket key, and is sent as
`Authorization: Bearer <key>`. It is not a ticket: an access ticket of a test actor, however
valid, is refused on /admin/..., and the operator key opens nothing but /admin/....
"""

from __future__ import annotations

import hmac
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse

MIN_KEY_BYTES = 32


class OperatorKeyError(ValueError):
    """The operator key file cannot be used (the message is the one line to print)."""


def read_operator_key(path: Path, ticket_key: bytes | None = None) -> bytes:
    """The operator key in `path`: at least 32 bytes, and not the ticket key."""
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise OperatorKeyError(f"cannot read operator key {path}: {exc.strerror}") from None
    if len(key) < MIN_KEY_BYTES:
        raise OperatorKeyError(f"operator key in {path} is shorter than {MIN_KEY_BYTES} bytes")
    if ticket_key is not None and hmac.compare_digest(key, ticket_key):
        # one key for both would let whoever signs tickets also run the window
        raise OperatorKeyError(f"operator key in {path} is the ticket key: give the operator a key of its own")
    return key


def is_operator(request: Request, key: bytes) -> bool:
    """Whether the request carries the operator key (compared in constant time)."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(credential.strip().encode(), key)


def not_operator() -> JSONResponse:
    """401 for an /admin/... request without the operator key (a ticket is not one)."""
    return JSONResponse(
        {"error": "operator key required (Authorization: Bearer <operator key>); access tickets are not accepted"},
        status_code=401, headers={"WWW-Authenticate": 'Bearer realm="operator"'},
    )
