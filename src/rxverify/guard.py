"""The one guarded HTTP layer: every request the suite sends passes here before a byte leaves.

It refuses (fail-closed) any request that carries a valid personal identity number that is
not a registered test patient, wherever it hides: path, query, headers, body (JSON, form data,
text). On a production target it also refuses any request without an active verification
plan, any operation the plan does not cover and any request outside the plan's time window,
and it keeps to the plan's rate limit. Every write goes to the ledger: an attempt before it is
sent, its outcome after. Refusals are counted so a run can show them.

The checks beyond the identity scan cost nothing on a local read: the load-test hot path.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote, unquote_plus, urlsplit

import requests

from rxverify.identity import Found, find_identities, mask_identities
from rxverify.ledger import Ledger, returned_ids
from rxverify.operations import WRITES, OperationIndex
from rxverify.registry import Registry

if TYPE_CHECKING:
    from rxverify.plans import Plan

_DIGIT_RUN = re.compile(r"\d{6}")  # YYMMDD: no identity number, in any form, without it
CLEAN_CACHE_LIMIT = 65_536  # texts remembered as clean; the cache starts over when full
CLEAN_CACHE_TEXT = 4_096  # longer texts (bodies) are not remembered


Attempt = tuple[int, str, str | None, list[str]]  # a ledgered attempt: seq, path, operation, patients


class Admission(NamedTuple):
    """What the guard found of a request it let through."""

    operation: str | None  # the operationId, when the plan check resolved it
    patients: tuple[str, ...]  # the registered test patients its path, query and body name


class RequestRefused(Exception):
    """The guard refused to send a request; nothing was sent."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class RateLimiter:
    """A token bucket (in its GCRA form): at most `per_second` requests a second, bursts of `burst`.

    Thread-safe: each caller reserves its slot under the lock and sleeps outside it.
    """

    def __init__(
        self,
        per_second: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second
        self.tolerance = (burst - 1) * self.interval
        self._clock = clock
        self._sleep = sleep
        self._next = clock()  # the theoretical arrival time of the next request
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until a request may be sent; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            allowed_at = self._next - self.tolerance
            wait = max(0.0, allowed_at - now)
            self._next = max(self._next, now) + self.interval
        if wait:
            self._sleep(wait)
        return wait


class Guard:
    """Checks outgoing requests against the registry and, on production, the verification plan."""

    def __init__(
        self,
        registry: Registry,
        *,
        environment_class: str = "local",
        plan: Plan | None = None,
        ledger: Ledger | None = None,
        operations: OperationIndex | None = None,
        target_name: str = "",
    ) -> None:
        self.registry = registry
        self.environment_class = environment_class
        self.production = environment_class == "production"
        self.plan = plan
        self.ledger = ledger
        self.operations = operations
        self.target_name = target_name
        self.rate = RateLimiter(plan.rate_per_second, plan.burst) if plan is not None else None
        self.counts: Counter[str] = Counter()
        self.busy_s = 0.0  # seconds the load client spent here (scan, ledger): the generator's figures
        self._lock = threading.Lock()
        self._clean: dict[str, tuple[str, ...]] = {}  # text scanned today -> the registered patients it names
        self._clean_day = date.today()

    def inspect(self, method: str, url: str, headers: Mapping[str, Any], body: bytes | str | None) -> tuple[str, ...]:
        """Raise RequestRefused if the request carries an identity outside the registry.

        Returns the registered test patients the path, query and body name (for the ledger), so
        a write is scanned once.
        """
        parts = urlsplit(url)
        # '+' is literal in a path but a space in form-encoded text: scan both readings (fail closed)
        places: list[tuple[str, str]] = [("path", unquote(parts.path))]
        if parts.query:
            places += [("query", unquote(parts.query)), ("query", unquote_plus(parts.query))]
        if body:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            # form data and JSON escapes: scan both the raw and the decoded text
            places.append(("body", text))
            if "%" in text or "+" in text:
                places.append(("body", unquote_plus(text)))
        named = len(places)  # headers name no patient for the ledger, but are scanned all the same
        places += [(f"header {name}", str(value)) for name, value in headers.items()]
        # Every identity starts with at least six digits in a row, so places without such a run
        # are clean; so are texts already scanned today (tickets and read paths repeat on the
        # load path): the cache keeps the registered patients each one names.
        today = date.today()  # a 10-digit number's century depends on the day: so does the cache
        if today != self._clean_day:
            self._clean, self._clean_day = {}, today
        clean, ids = self._clean, self.registry.ids
        patients: set[str] = set()
        for i, (where, text) in enumerate(places):
            known = clean.get(text)
            if known is None:
                if _DIGIT_RUN.search(text):
                    found = find_identities(text, today)
                    stray = next((f for f in found if f.twelve not in ids), None)
                    if stray is not None:
                        self._refuse_identity(method, parts.path, where, stray)
                    known = tuple(sorted({f.twelve for f in found}))
                else:
                    known = ()
                if len(text) <= CLEAN_CACHE_TEXT:
                    if len(clean) >= CLEAN_CACHE_LIMIT:
                        clean.clear()
                    clean[text] = known
            if i < named:
                patients.update(known)
        with self._lock:
            self.counts["passed"] += 1
        return tuple(sorted(patients))

    def _refuse_identity(self, method: str, path: str, where: str, hit: Found) -> None:
        with self._lock:
            self.counts["identity"] += 1
        shown = mask_identities(unquote(path))
        raise RequestRefused(
            "identity",
            f"refused {method} {shown}: {hit.kind} {hit.masked} in the {where} is not a registered test patient",
        )

    def _refuse(self, reason: str, message: str) -> RequestRefused:
        with self._lock:
            self.counts[reason] += 1
        return RequestRefused(reason, message)

    def operation_of(self, method: str, url: str) -> str | None:
        """The request's operationId, when an operation index is configured and one matches."""
        return self.operations.operation_of(method, url) if self.operations is not None else None

    def admit(self, method: str, url: str, headers: Mapping[str, Any], body: bytes | str | None) -> Admission:
        """Every check before sending (RequestRefused if one fails): what the ledger needs of the request.

        Identities first; on a production target the plan (one active, the operation covered,
        inside the window); then the plan's rate limit, which blocks rather than refuses.
        """
        patients = self.inspect(method, url, headers, body)
        operation = None
        if self.production:
            operation = self._check_plan(method, url)
        if self.rate is not None:
            self.rate.acquire()
        return Admission(operation, patients)

    def _check_plan(self, method: str, url: str) -> str | None:
        plan = self.plan
        shown = f"{method} {mask_identities(unquote(urlsplit(url).path))}"
        if plan is None:
            raise self._refuse(
                "plan",
                f"refused {shown}: target {self.target_name!r} is class production and no verification plan "
                "is active (rxverify verify --plan)",
            )
        operation = self.operation_of(method, url)
        if operation not in plan.allowed_operations:
            name = operation or "an operation outside the contracts"
            raise self._refuse(
                "plan", f"refused {name} ({shown}): not allowed by verification plan {plan.name!r} ({plan.path})"
            )
        now = datetime.now(UTC)
        if not plan.in_window(now):
            raise self._refuse(
                "window",
                f"refused {operation} ({shown}): {now.isoformat(timespec='seconds')} is outside the window of "
                f"verification plan {plan.name!r} ({plan.window_start.isoformat()} to {plan.window_end.isoformat()})",
            )
        return operation

    def _patients(self, *texts: str) -> list[str]:
        ids = self.registry.ids
        return sorted({f.twelve for text in texts for f in find_identities(text) if f.twelve in ids})

    def record_attempt(self, method: str, url: str, admission: Admission) -> Attempt | None:
        """Ledger the attempt of a write before it is sent (None when not a write or no ledger)."""
        if self.ledger is None or method not in WRITES:
            return None
        operation = admission.operation or self.operation_of(method, url)
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        patients = list(admission.patients)
        seq = self.ledger.attempt(method, operation, path, patients)
        return seq, path, operation, patients

    def record_outcome(
        self,
        attempt: Attempt,
        method: str,
        response: requests.Response | None,
        read_body: bool = True,
    ) -> None:
        """Ledger what came of a write: its status and returned ids, or a transport error."""
        assert self.ledger is not None
        seq, path, operation, patients = attempt
        if response is None:
            self.ledger.outcome(seq, method, operation, path, patients, None, {}, "transport-error")
            return
        document: Any = None
        if read_body and response.content:
            text = response.content.decode("utf-8", "replace")
            patients = sorted(set(patients) | set(self._patients(text)))
            try:
                document = json.loads(text)
            except ValueError:
                document = None
        ids = returned_ids(document, response.headers.get("Location"))
        outcome = "ok" if response.status_code < 400 else "error"
        self.ledger.outcome(seq, method, operation, path, patients, response.status_code, ids, outcome)


class GuardedSession(requests.Session):
    """A requests session whose every request is inspected by a Guard before it is sent."""

    def __init__(self, guard: Guard) -> None:
        super().__init__()
        self.guard = guard

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Check (identities, plan, rate), ledger a write's attempt, send, ledger its outcome."""
        guard = self.guard
        method = request.method or "GET"
        url = request.url or ""
        admission = guard.admit(method, url, request.headers, request.body)
        attempt = guard.record_attempt(method, url, admission)
        if attempt is None:
            return super().send(request, **kwargs)
        try:
            response = super().send(request, **kwargs)
        except requests.RequestException:
            guard.record_outcome(attempt, method, None)
            raise
        guard.record_outcome(attempt, method, response, read_body=not kwargs.get("stream", False))
        return response
