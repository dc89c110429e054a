"""The one guarded HTTP layer: every request the suite sends passes here before a byte leaves.

It refuses (fail-closed) any request that carries a valid personal identity number that is
not a registered test patient, wherever and however it hides: every part of the request is
first decoded as a receiving server would decode it (rxverify.safety.decode), and a part it
cannot read is refused, never sent unread. On a production target it also refuses any request
without an active verification plan, any operation the plan does not cover and any request
outside the plan's time window, and it keeps to the plan's rate limit. Every write goes to the
ledger: an attempt before it is sent, its outcome after. Refusals are counted so a run can show them.

The checks beyond the identity scan cost nothing on a local read: the load-test hot path.
The transports that call it live in rxverify.safety.egress.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote, urlsplit

from rxverify.operations import WRITES, OperationIndex
from rxverify.safety import decode
from rxverify.safety.identity import Found, find_identities, mask_identities, might_hold_identity
from rxverify.safety.ledger import Ledger, returned_ids, xml_ids
from rxverify.safety.registry import Registry

if TYPE_CHECKING:
    from rxverify.plans import Plan

# what can hide six digits from a plain reading: percent-encoding, base64 (12+ characters), non-ASCII digits
_MAY_HIDE = re.compile(r"%|[A-Za-z0-9+/_-]{12,}|[^\x00-\x7f]")
CLEAN_CACHE_LIMIT = 65_536  # texts remembered as clean; the cache starts over when full
CLEAN_CACHE_TEXT = 4_096  # longer texts (bodies) are not remembered
TEMPLATE_LIMIT = 4_096  # body templates remembered; the memory starts over when full
# longer texts' identities remembered, up to TEMPLATE_TEXT characters: a template's body text recurs
# with every body read from it (Säker åtkomst's envelopes, an assertion in each, are about 6 KB)
LONG_CACHE_LIMIT = 256
HEADERS_LIMIT = 4_096  # requests' header sets remembered as read
# XML bodies up to this long are read by template: a SOAP request under 17.1 carries the caller's
# signed assertion (its certificate and signature in base64), about 4 KB alike request after request
TEMPLATE_TEXT = 16_384


Attempt = tuple[int, str, str | None, list[str]]  # a ledgered attempt: seq, path, operation, patients


class Admission(NamedTuple):
    """What the guard found of a request it let through."""

    operation: str | None  # the operationId, when the plan check resolved it
    patients: tuple[str, ...]  # the registered test patients its path, query and body name


class _Reading(NamedTuple):
    """A body's reading in two halves: what was found in its template's reading, and the texts still to scan."""

    found: tuple[tuple[str, Found], ...]  # (where, identity) of the template's own texts
    rest: decode.Places  # the texts of this body alone (the base64 tokens that hold its UUIDs)


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
    """Checks outgoing requests against the registry and, on production, the verification plan.

    Built for a run by `rxverify.target.run.open_run` only: the target's class, plan, window,
    rate limit, ledger and operation index are fixed when it is made.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        environment_class: str = "local",
        plan: Plan | None = None,
        ledger: Ledger | None = None,
        operations: OperationIndex | None = None,
        target_name: str = "",
        audit: bool = False,
    ) -> None:
        self.registry = registry
        self.environment_class = environment_class
        self.production = environment_class == "production"
        self.plan = plan
        self.ledger = ledger
        self.operations = operations
        self.target_name = target_name
        self.rate = RateLimiter(plan.rate_per_second, plan.burst) if plan is not None else None
        # passed: admitted by the guard; sent: reached a socket (counted by the transport);
        # every other key is a reason of refusal
        self.counts: Counter[str] = Counter()
        # what reached a socket, as digests (method, request target, body): the egress audit's evidence
        self.sent_log: Counter[str] | None = Counter() if audit else None
        self.busy_s = 0.0  # seconds the load client spent here (scan, ledger): the generator's figures
        self._lock = threading.Lock()
        self._clean: dict[tuple[str, str], tuple[str, ...]] = {}  # text read today -> the registered patients in it
        self._clean_day = date.today()
        # each text a part was read into -> the identities in it (recurring texts: element values, tokens)
        self._found: dict[str, tuple[Found, ...]] = {}
        # a request's headers, all of them, read today and found clean -> its Content-Type and Content-Encoding
        self._writes: dict[tuple[str, str], bool] = {}  # (method, URL) -> whether the request writes
        self._headers_read: dict[tuple[tuple[Any, Any], ...], tuple[str | None, str | None]] = {}
        self._found_long: dict[str, tuple[Found, ...]] = {}
        # an XML body with its UUIDs replaced by placeholders -> its reading (decode.BodyTemplate) and the
        # identities found in that reading
        # the same with its 12-digit text nodes replaced too -> its reading, for every patient's body
        self._general: dict[tuple[str | None, str], decode.BodyTemplate] = {}
        self._templates: decode.TemplateIndex[tuple[decode.BodyTemplate, tuple[tuple[str, Found], ...]]] = (
            decode.TemplateIndex(TEMPLATE_LIMIT)
        )

    def inspect(self, method: str, url: str, headers: Mapping[str, Any], body: Any) -> tuple[str, ...]:
        """Raise RequestRefused if the request carries an identity outside the registry, in any encoding.

        Every text a server could read out of the request (rxverify.safety.decode) is scanned; a
        part the guard cannot read is refused. Returns the registered test patients the URL and
        body name (for the ledger), so a write is scanned once.
        """
        patients = self._scan(method, url, headers, body)
        with self._lock:
            self.counts["passed"] += 1
        return patients

    def refusal(self, method: str, url: str, headers: Mapping[str, Any], body: Any) -> str | None:
        """Why the guard would refuse this request (identities, readability), or None; nothing is counted.

        Generated data is filtered with this while it is generated, so it never carries what the
        guard would refuse, by the very reading the guard applies.
        """
        try:
            self._scan(method, url, headers, body, count=False)
        except RequestRefused as exc:
            return exc.message
        return None

    def _scan(
        self, method: str, url: str, headers: Mapping[str, Any], body: Any, count: bool = True
    ) -> tuple[str, ...]:
        today = date.today()  # a 10-digit number's century depends on the day: so does the cache
        if today != self._clean_day:
            self._clean, self._found, self._found_long, self._headers_read, self._clean_day = {}, {}, {}, {}, today
            self._templates, self._general = decode.TemplateIndex(TEMPLATE_LIMIT), {}
        clean = self._clean  # texts read before: the URL and headers of the load path recur
        patients: set[str] = set()
        known = clean.get(("url", url))
        patients.update(
            known
            if known is not None
            else self._read(method, url, "url", url, partial(decode.url_places, url), today, count)
        )
        items = tuple(headers.items())  # a request's headers recur as a whole (the load path's are few and fixed)
        try:
            read = self._headers_read.get(items)
        except TypeError:  # a header value that is not hashable: read, not remembered
            read = None
        if read is None:
            read = self._read_headers(method, url, items, today, count)
        content_type, coding = read
        if body is not None and body not in (b"", ""):
            key = None
            places: Callable[[], decode.Places | _Reading] = partial(decode.body_places, body, headers)
            if not coding and isinstance(body, bytes) and len(body) <= TEMPLATE_TEXT and b">" in body:
                # an XML body: the bodies alike but for their UUIDs share one reading, and a body with
                # a fresh requestId is not worth remembering by itself
                places = partial(self._templated_places, body, headers, content_type, today)
            elif isinstance(body, bytes | str):
                # the same bytes read under another media type or encoding are another reading
                text = body.decode("latin-1") if isinstance(body, bytes) else body
                key = f"{content_type}|{coding or ''}|" + text
            patients.update(self._read(method, url, "body", key, places, today, count))
        return tuple(sorted(patients))

    def _read(
        self,
        method: str,
        url: str,
        part: str,
        key: str | None,
        places: Callable[[], decode.Places | _Reading],
        today: date,
        count: bool = True,
    ) -> tuple[str, ...]:
        """The registered patients one part of a request names; refuses a foreign identity or an unreadable part.

        Parts already read today are remembered by their text (tickets, read paths and repeated
        bodies recur on the load path); long texts are not remembered.
        """
        if key is not None and len(key) <= CLEAN_CACHE_TEXT:
            known = self._clean.get((part, key))
            if known is not None:
                return known
            if part != "body" and not might_hold_identity(key) and not _MAY_HIDE.search(key):
                # no six digits in any reading (nothing percent-encoded, no base64, no other digit forms)
                self._remember(part, key, ())
                return ()
        else:
            key = None
        try:
            found_places = places()
        except decode.Unreadable as exc:
            message = (
                f"refused {method} {mask_identities(unquote(urlsplit(url).path))}: the {part} holds {exc.reason}, "
                "which the guard cannot read (nothing unread is sent)"
            )
            raise (self._refuse("unreadable", message) if count else RequestRefused("unreadable", message)) from None
        registered: set[str] = set()
        ids = self.registry.ids
        if isinstance(found_places, _Reading):  # a template's identities, found once for all its bodies
            for where, hit in found_places.found:
                if hit.twelve not in ids:
                    self._refuse_identity(method, urlsplit(url).path, where, hit, count)
                registered.add(hit.twelve)
            found_places = found_places.rest
        for where, text in found_places:
            for hit in self._identities(text, today):
                if hit.twelve not in ids:
                    self._refuse_identity(method, urlsplit(url).path, where, hit, count)
                registered.add(hit.twelve)
        known = tuple(sorted(registered))
        if key is not None:
            self._remember(part, key, known)
        return known

    def _identities(self, text: str, today: date) -> tuple[Found, ...]:
        """The identities in one text a part was read into; recurring texts are remembered (long ones fewer)."""
        short = len(text) <= CLEAN_CACHE_TEXT
        memo = self._found if short else self._found_long
        hits = memo.get(text)
        if hits is None:
            hits = tuple(find_identities(text, today))
            if short or len(text) <= TEMPLATE_TEXT:
                if len(memo) >= (CLEAN_CACHE_LIMIT if short else LONG_CACHE_LIMIT):
                    memo.clear()
                memo[text] = hits
        return hits

    def _read_headers(
        self, method: str, url: str, items: tuple[tuple[Any, Any], ...], today: date, count: bool
    ) -> tuple[str | None, str | None]:
        """Scan each header (refusing as _read does); (Content-Type, Content-Encoding) of the request."""
        clean = self._clean
        content_type = coding = None
        for name, value in items:
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            if ("header", text) not in clean:
                self._read(method, url, "header", text, partial(decode.header_places, {name: text}), today, count)
            lower = str(name).lower()
            if lower == "content-type" and content_type is None:
                content_type = text
            elif lower == "content-encoding" and coding is None:
                coding = text
        if all(isinstance(n, str | bytes) and isinstance(v, str | bytes) for n, v in items):
            if len(self._headers_read) >= HEADERS_LIMIT:
                self._headers_read.clear()
            self._headers_read[items] = (content_type, coding)
        return content_type, coding

    def _templated_places(
        self, body: bytes, headers: Mapping[str, Any], content_type: str | None, today: date
    ) -> decode.Places | _Reading:
        """The body's reading, from the template of the bodies that differ from it only in their UUIDs when it has one.

        The load path's envelopes differ in their requestId alone: their reading (the XML parsed,
        each text decoded) is made once per template (decode.BodyTemplate), and only what holds a
        UUID is read for each body. Any other body is read in full.
        """
        known_body = self._templates.match(content_type, body)  # a body of a template met before: found unread
        if known_body is not None:
            (template, hits), uuids = known_body
            return _Reading(hits, template.extra_places(uuids)) if template.exact else decode.body_places(body, headers)
        text = body.decode("latin-1")
        kind, params = decode.media_type(content_type)
        plain_xml = (kind in decode.XML_TYPES or kind.endswith("+xml")) and params.get("charset", "utf-8").lower() in (
            "utf-8",
            "utf8",
        )
        # `text` is the body's bytes one character each (latin-1): the template's bytes are the body's
        # but for the UUIDs, whatever else it holds (Säker åtkomst's assertions name "E-hälsomyndigheten"),
        # when the bytes are UTF-8 and the XML declaration says nothing else
        found = decode.uuid_template(text) if plain_xml and decode.utf8_xml(body, text) else None
        if found is None:
            return decode.body_places(body, headers)
        canonical, markers, uuids = found
        known = self._templates.get(content_type, canonical)
        if known is None:
            template = self._new_template(headers, content_type, canonical, markers)
            # the identities of the template's own reading, where each was found: the same for every body
            # read from it (only the texts that hold a UUID are read afresh)
            hits = tuple((where, hit) for where, t in template.places for hit in self._identities(t, today))
            known = (template, hits)
            self._templates.add(content_type, canonical, markers, known)
        template, hits = known
        if not template.exact:
            return decode.body_places(body, headers)
        return _Reading(hits, template.extra_places(uuids))

    def _new_template(
        self, headers: Mapping[str, Any], content_type: str | None, canonical: str, markers: tuple[str, ...]
    ) -> decode.BodyTemplate:
        """The template `canonical` (UUID placeholders), read from the one of its bodies alike but for their
        12-digit text nodes when there is one (the load path's envelopes for another patient), else in full."""
        general = decode.digit_template(canonical)
        if general is None:
            return decode.BodyTemplate.read(canonical.encode("latin-1"), headers, markers)
        text, digit_markers, digits = general
        shared = self._general.get((content_type, text))
        if shared is None:
            shared = decode.BodyTemplate.read(text.encode("latin-1"), headers, markers + digit_markers)
            if len(self._general) >= TEMPLATE_LIMIT:
                self._general.clear()
            self._general[(content_type, text)] = shared
        return shared.specialise(digit_markers, digits)

    def _remember(self, part: str, key: str, known: tuple[str, ...]) -> None:
        if len(self._clean) >= CLEAN_CACHE_LIMIT:
            self._clean.clear()
        self._clean[(part, key)] = known

    def _refuse_identity(self, method: str, path: str, where: str, hit: Found, count: bool = True) -> None:
        if count:
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

    def sent(self, method: str, target: str, body: bytes | None) -> None:
        """The transport reports a request that reached (or may have reached) a socket: counted and digested."""
        with self._lock:
            self.counts["sent"] += 1
            if self.sent_log is not None:
                self.sent_log[request_digest(method, target, body)] += 1

    def unsent(self, method: str, target: str, body: bytes | None) -> None:
        """The transport takes back a `sent`: the connection was never made, so nothing left."""
        with self._lock:
            self.counts["sent"] -= 1
            if self.sent_log is not None:
                self.sent_log[request_digest(method, target, body)] -= 1

    def operation_of(self, method: str, url: str) -> str | None:
        """The request's operationId, when an operation index is configured and one matches."""
        return self.operations.operation_of(method, url) if self.operations is not None else None

    def _is_write(self, method: str, url: str) -> bool:
        # the old interface is all POST: whether a SOAP call writes is the contract's (services.toml) to say;
        # the answer is the same for every request to the URL (the load path's are few)
        known = self._writes.get((method, url))
        if known is None:
            known = self.operations.is_write(method, url) if self.operations is not None else method in WRITES
            if len(self._writes) >= CLEAN_CACHE_LIMIT:
                self._writes.clear()
            self._writes[(method, url)] = known
        return known

    def admit(self, method: str, url: str, headers: Mapping[str, Any], body: Any) -> Admission:
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
        if self.ledger is None or not self._is_write(method, url):
            return None
        operation = admission.operation or self.operation_of(method, url)
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        patients = list(admission.patients)
        seq = self.ledger.attempt(method, operation, path, patients)
        return seq, path, operation, patients

    def record_outcome(
        self, attempt: Attempt, method: str, status: int | None, content: bytes | None, location: str | None = None
    ) -> None:
        """Ledger what came of a write: its status and returned ids, or (status None) a transport error."""
        assert self.ledger is not None
        seq, path, operation, patients = attempt
        if status is None:
            self.ledger.outcome(seq, method, operation, path, patients, None, {}, "transport-error")
            return
        document: Any = None
        if content:
            text = content.decode("utf-8", "replace")
            patients = sorted(set(patients) | set(self._patients(text)))
            if text.lstrip()[:1] in ("{", "["):
                try:
                    document = json.loads(text)
                except ValueError:
                    document = xml_ids(content)
            else:
                document = xml_ids(content)  # the old interface answers SOAP
        ids = returned_ids(document, location)
        outcome = "ok" if status < 400 else "error"
        self.ledger.outcome(seq, method, operation, path, patients, status, ids, outcome)


def request_digest(method: str, target: str, body: bytes | None) -> str:
    """One request as the egress audit compares it: method, request target and the body's sha256."""
    return f"{method.upper()} {target} {hashlib.sha256(body or b'').hexdigest()}"


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if str(key).lower() == name:
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None
