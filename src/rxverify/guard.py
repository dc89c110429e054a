"""The one guarded HTTP layer: every request the suite sends passes here before a byte leaves.

It refuses (fail-closed) any request that carries a valid personal identity number that is
not a registered test patient, wherever it hides: path, query, headers, body (JSON, form data,
text). Refusals are counted so a run can show them.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

import requests

from rxverify.identity import Found, mask_identities
from rxverify.registry import Registry


class RequestRefused(Exception):
    """The guard refused to send a request; nothing was sent."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Guard:
    """Checks outgoing requests against the test-patient registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _scan(self, where: str, text: str) -> Found | None:
        found = self.registry.unregistered_in(text)
        if found:
            return found[0]
        return None

    def inspect(self, method: str, url: str, headers: Mapping[str, Any], body: bytes | str | None) -> None:
        """Raise RequestRefused if the request carries an identity outside the registry."""
        parts = urlsplit(url)
        # '+' is literal in a path but a space in form-encoded text: scan both readings (fail closed)
        places: list[tuple[str, str]] = [
            ("path", unquote(parts.path)),
            ("query", unquote(parts.query)),
            ("query", unquote_plus(parts.query)),
        ]
        places += [(f"header {name}", str(value)) for name, value in headers.items()]
        if body:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            # form data and JSON escapes: scan both the raw and the decoded text
            places.append(("body", text))
            if "%" in text or "+" in text:
                places.append(("body", unquote_plus(text)))
        for where, text in places:
            hit = self._scan(where, text)
            if hit is not None:
                with self._lock:
                    self.counts["identity"] += 1
                shown = mask_identities(unquote(parts.path))
                raise RequestRefused(
                    "identity",
                    f"refused {method} {shown}: {hit.kind} {hit.masked} in the {where} "
                    "is not a registered test patient",
                )
        with self._lock:
            self.counts["passed"] += 1


class GuardedSession(requests.Session):
    """A requests session whose every request is inspected by a Guard before it is sent."""

    def __init__(self, guard: Guard) -> None:
        super().__init__()
        self.guard = guard

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Inspect, then send."""
        self.guard.inspect(request.method or "GET", request.url or "", request.headers, request.body)
        return super().send(request, **kwargs)
