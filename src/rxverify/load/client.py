"""Locust's FastHttpUser, with every request passing the guard before a byte leaves.

The guard refuses identities outside the test-patient registry and ledgers every write
(attempt before, outcome after), exactly as the contract suite's GuardedSession does. On the
hot path a read costs the guard's identity scan, which caches texts it found clean (ticket,
paths with registered patients), so the overhead stays small: benchmarks/generator_efficiency.py
measures it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from locust import FastHttpUser
from locust.contrib.fasthttp import FastHttpSession
from locust.user.users import User

from rxverify.guard import Attempt, Guard, RequestRefused
from rxverify.ledger import returned_ids

MISSING = object()


def document(response: Any) -> Any:
    """The response's JSON body, parsed once (the ledger and the scenario both read it); None if not JSON."""
    doc = getattr(response, "rx_document", MISSING)
    if doc is MISSING:
        try:
            doc = json.loads(response.content or b"null")
        except ValueError:
            doc = None
        response.rx_document = doc
    return doc


def _patient_of(doc: Any) -> str | None:
    """The test patient a write's answer names: legacy personId, FHIR subject or patient identifier."""
    if not isinstance(doc, dict):
        return None
    pid = doc.get("personId")
    if pid is None:
        ref = doc.get("subject") or doc.get("patient") or {}
        pid = (ref.get("identifier") or {}).get("value") if isinstance(ref, dict) else None
    return pid if isinstance(pid, str) else None


class GuardedFastHttpSession(FastHttpSession):
    """A FastHttpSession that asks the guard before sending and ledgers writes."""

    def __init__(self, guard: Guard, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        name: str | None = None,
        data: str | bytes | None = None,
        catch_response: bool = False,
        headers: dict[str, str] | None = None,
        context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Check (identities; on production the plan), ledger a write's attempt, send, ledger its outcome."""
        guard = self.guard
        full = self._build_url(url)
        began = time.perf_counter()
        try:
            admission = guard.admit(method, full, headers or {}, data)
        except RequestRefused as exc:
            # shown as a failed request of its name, and the task stops: nothing was sent
            self.request_event.fire(
                request_type=method,
                name=name or url,
                response_time=0.0,
                response_length=0,
                exception=exc,
                context=context or {},
                response=None,
                start_time=time.time(),
                url=full,
            )
            raise
        attempt = guard.record_attempt(method, full, admission)
        guard.busy_s += time.perf_counter() - began  # greenlets share one thread: no lock needed
        response = super().request(
            method,
            url,
            name=name,
            data=data,  # type: ignore[arg-type]  # bytes are sent as they are
            catch_response=catch_response,
            headers=headers,
            context=context or {},
            **kwargs,
        )
        if attempt is not None:
            began = time.perf_counter()
            self._outcome(attempt, method, response)
            guard.busy_s += time.perf_counter() - began
        return response

    def _outcome(self, attempt: Attempt, method: str, response: Any) -> None:
        """Ledger a write's outcome: status and returned ids, as Guard.record_outcome does, parsing the body once.

        The patients are the request's; when the request named none (a withdrawal names only the
        prescription), the one the answer names, if registered.
        """
        ledger = self.guard.ledger
        assert ledger is not None
        seq, path, operation, patients = attempt
        status = response.status_code
        if not status:
            ledger.outcome(seq, method, operation, path, patients, None, {}, "transport-error")
            return
        doc = document(response)
        if not patients:
            pid = _patient_of(doc)
            patients = [pid] if pid in self.guard.registry.ids else []
        ids = returned_ids(doc, response.headers.get("location") if response.headers else None)
        ledger.outcome(seq, method, operation, path, patients, status, ids, "ok" if status < 400 else "error")


class GuardedUser(FastHttpUser):
    """A FastHttpUser whose client is a GuardedFastHttpSession (abstract: the callers subclass it)."""

    abstract = True
    guard: Guard | None = None  # set by the run before any user starts

    def __init__(self, environment: Any) -> None:
        User.__init__(self, environment)
        if self.guard is None:
            raise RuntimeError("GuardedUser started before the run set its guard")
        self.client: GuardedFastHttpSession = GuardedFastHttpSession(
            self.guard,
            base_url=self.host,
            request_event=self.environment.events.request,
            network_timeout=self.network_timeout,
            connection_timeout=self.connection_timeout,
            max_redirects=self.max_redirects,
            max_retries=self.max_retries,
            insecure=self.insecure,
            concurrency=self.concurrency,
            user=self,
            client_pool=self.client_pool,
            ssl_context_factory=self.ssl_context_factory,
            headers=self.default_headers,
            proxy_host=self.proxy_host,
            proxy_port=self.proxy_port,
        )
