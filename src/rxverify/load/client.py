"""Locust's FastHttpUser and HttpUser, with every request passing the guard before a byte leaves.

The guard refuses identities outside the test-patient registry and ledgers every write
(attempt before, outcome after), exactly as the contract suite's requests.Session does. On the
hot path a read costs the guard's identity scan, which caches texts it found clean (ticket,
paths with registered patients), so the overhead stays small: benchmarks/generator_efficiency.py
measures it.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from locust import FastHttpUser, HttpUser
from locust.contrib.fasthttp import FastHttpSession
from locust.user.users import User

from rxverify.safety.egress import CertChooser, GuardedAdapter, guarded_user_agent
from rxverify.safety.guard import Guard, RequestRefused

if TYPE_CHECKING:
    from rxverify.target.run import Run

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


class GuardedHttpUser(HttpUser):
    """Locust's HttpUser (requests), its only transports the guarded adapter (abstract: subclass it).

    Locust's HttpSession is a requests session: its adapters are replaced by the one guarded
    egress's (rxverify.safety.egress.GuardedAdapter), so every request, redirect hop and retry is
    inspected and ledgered as the contract suite's are. Under Säker åtkomst 17.1 (`choose_cert`, set
    by the run) each request presents the certificate of the caller whose assertion or token it
    carries, and trusts the run's CA; requests keeps each certificate's TLS connections alive.
    A refused request is a failed request of its name, and the task stops: nothing was sent.
    """

    abstract = True
    guard: Guard | None = None  # set by the run before any user starts
    choose_cert: CertChooser | None = None
    ca: str | None = None

    @classmethod
    def bind(cls, run: Run) -> None:
        """Call through `run`: its guard, and under 17.1 its callers' certificates and its CA."""
        cls.guard = run.guard
        if run.secure:
            cls.choose_cert = staticmethod(run.callers.certificate_for)
            cls.ca = str(run.credentials_or_fail().ca())
        else:
            cls.choose_cert = cls.ca = None

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        guard = type(self).guard
        if guard is None:
            raise RuntimeError("GuardedHttpUser started before the run set its guard")
        adapter = GuardedAdapter(guard, type(self).choose_cert, type(self).ca)
        self.client.adapters.clear()
        self.client.mount("http://", adapter)
        self.client.mount("https://", adapter)
        self.client.trust_env = False
        if type(self).ca is not None:
            self.client.verify = type(self).ca
        request = self.client.request

        def refused_as_failure(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            try:
                return request(method, url, *args, **kwargs)
            except RequestRefused as exc:
                self.environment.events.request.fire(
                    request_type=method, name=kwargs.get("name") or url, response_time=0.0, response_length=0,
                    exception=exc, context=kwargs.get("context") or {}, response=None, start_time=time.time(),
                    url=url,
                )
                raise

        self.client.request = refused_as_failure
