"""Locust's FastHttpUser, with every request passing the guard before a byte leaves.

The guard refuses identities outside the test-patient registry and ledgers every write
(attempt before, outcome after), exactly as the contract suite's requests.Session does. On the
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

from rxverify.safety.egress import guarded_user_agent
from rxverify.safety.guard import Guard, RequestRefused

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


class GuardedFastHttpSession(FastHttpSession):
    """A FastHttpSession whose user agent is guarded: every request, in every argument form, passes the guard.

    The guard sits in the user agent (rxverify.safety.egress.guarded_user_agent), where the
    request is final whatever the task passed (`data=`, `json=`, `params=`, `files=`, headers,
    cookies) and where each redirect hop and retry is sent on its own. A refused request is
    shown as a failed request of its name, and the task stops: nothing was sent.
    """

    def __init__(self, guard: Guard, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Locust builds its user agent inside __init__ from a dozen of our arguments; the guarded
        # agent is that same agent with the guard in front of its _urlopen.
        self.client.__class__ = guarded_user_agent()
        self.client.guard = guard  # type: ignore[attr-defined]
        self.guard = guard

    def request(self, method: str, url: str, name: str | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        """Send through the guarded agent; a refusal is recorded as a failed request of `name`."""
        try:
            return super().request(method, url, name=name, **kwargs)
        except RequestRefused as exc:
            self.request_event.fire(
                request_type=method,
                name=name or url,
                response_time=0.0,
                response_length=0,
                exception=exc,
                context=kwargs.get("context") or {},
                response=None,
                start_time=time.time(),
                url=self._build_url(url),
            )
            raise


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
