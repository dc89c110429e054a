"""Secrets (tickets, Authorization, cookies, keys) never reach a report or a log."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"
SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "x-access", "x-api-key", "proxy-authorization"})
# A JWT (header.payload.signature, base64url) or a bearer credential anywhere in text.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_KEYLIKE = re.compile(r"(?i)((?:ticket|token|secret|api[_-]?key|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&]{6,}")


def redact_text(text: str) -> str:
    """`text` with every ticket, bearer credential and key-like assignment replaced."""
    text = _JWT.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    return _KEYLIKE.sub(lambda m: m.group(1) + REDACTED, text)


def redact_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """A copy of `headers` with secret headers replaced and the rest scrubbed."""
    return {
        name: (REDACTED if name.lower() in SECRET_HEADERS else redact_text(str(value)))
        for name, value in headers.items()
    }
