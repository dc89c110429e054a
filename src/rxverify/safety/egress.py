"""The one guarded egress: the transports every request to a platform leaves through.

Two HTTP stacks carry the suite's traffic, and each is guarded at its lowest layer, where the
request is final (headers, body and URL as they go on the wire, every redirect hop and retry
on its own):

- requests (the contract suite, schemathesis and its checks' probes, verify, the CLI, zeep):
  `GuardedAdapter`, mounted on every session `guarded_session` makes. Its connections report
  each request that reached a socket back to the guard, so the run's count is what left, not
  what was passed.
- Locust's FastHttpUser (geventhttpclient): the user agent `guarded_user_agent()` makes.

A refused request raises RequestRefused before a byte leaves. Writes are ledgered: the
attempt before sending, the outcome after.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

from rxverify.safety.guard import Guard, RequestRefused

# (request) -> the (certificate, key) files it presents over mutual TLS
CertChooser = Callable[[requests.PreparedRequest], tuple[str, str]]

__all__ = ["GuardedAdapter", "RequestRefused", "guarded_session", "guarded_user_agent"]


def _body_bytes(body: Any) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    return None  # a stream: never sent (the guard refuses it), so never digested


# failures that prove no byte of the request left: the connection itself could not be made
NOT_CONNECTED = (ConnectionRefusedError, socket.gaierror, NewConnectionError, NameResolutionError)


def _counting_pools(guard: Guard) -> dict[str, type[HTTPConnectionPool]]:
    """Pool classes whose connections tell `guard` of every request they (may have) written to a socket."""

    def send(conn: Any, method: str, url: str, body: Any, headers: Any, kw: dict[str, Any], base: Any) -> None:
        data = _body_bytes(body)
        guard.sent(method, url, data)  # before the write: a request cut off mid-way may have arrived
        try:
            base.request(conn, method, url, body=body, headers=headers, **kw)
        except NOT_CONNECTED:
            guard.unsent(method, url, data)
            raise

    class Conn(HTTPConnection):
        def request(self, method: str, url: str, body: Any = None, headers: Any = None, **kw: Any) -> None:
            send(self, method, url, body, headers, kw, HTTPConnection)

    class SConn(HTTPSConnection):
        def request(self, method: str, url: str, body: Any = None, headers: Any = None, **kw: Any) -> None:
            send(self, method, url, body, headers, kw, HTTPSConnection)

    class Pool(HTTPConnectionPool):
        ConnectionCls = Conn

    class SPool(HTTPSConnectionPool):
        ConnectionCls = SConn

    return {"http": Pool, "https": SPool}


class GuardedAdapter(HTTPAdapter):
    """requests' transport with the guard in front: every hop of every request is inspected, then ledgered."""

    def __init__(self, guard: Guard, choose_cert: CertChooser | None = None, ca: str | None = None,
                 **kwargs: Any) -> None:
        self.guard = guard
        # Säker åtkomst: the client certificate of the caller whose credential a request carries
        # (rxverify.target.callers), for a request whose session names none itself
        self.choose_cert = choose_cert
        # the CA bundle of the run's servers, for a request that asks for verification without naming one
        # (schemathesis passes verify=True on each request, which would replace the session's bundle)
        self.ca = ca
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """The pool manager, with connections that count what reached a socket."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _counting_pools(self.guard)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Check (identities, plan, rate), ledger a write's attempt, send, ledger its outcome."""
        guard = self.guard
        if isinstance(request.body, str):
            # http.client would encode a str body as latin-1: send what the guard read, as UTF-8
            request.body = request.body.encode("utf-8")
            request.headers["Content-Length"] = str(len(request.body))
        method = request.method or "GET"
        url = request.url or ""
        if url.startswith("https:"):
            if self.choose_cert is not None and not kwargs.get("cert"):
                kwargs["cert"] = self.choose_cert(request)
            if self.ca is not None and kwargs.get("verify", True) is True:
                kwargs["verify"] = self.ca
        admission = guard.admit(method, url, request.headers, request.body)
        attempt = guard.record_attempt(method, url, admission)
        if attempt is None:
            return super().send(request, **kwargs)
        try:
            response = super().send(request, **kwargs)
        except requests.RequestException:
            guard.record_outcome(attempt, method, None, None)
            raise
        content = None if kwargs.get("stream") else response.content
        guard.record_outcome(attempt, method, response.status_code, content, response.headers.get("Location"))
        return response


def guarded_session(guard: Guard, choose_cert: CertChooser | None = None, ca: str | None = None) -> requests.Session:
    """A requests session whose only transports are guarded (http and https)."""
    session = requests.Session()
    adapter = GuardedAdapter(guard, choose_cert, ca)
    session.adapters.clear()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False  # no proxy from the environment: loopback means loopback
    return session


_AGENT: list[type[Any]] = []


def guarded_user_agent() -> type[Any]:
    """Locust's FastHttp user agent with the guard in front of every request (every hop, every retry).

    Made on first use: importing Locust patches the process for gevent, which only load runs want.
    The guard is the `guard` attribute of the instance (set by the guarded FastHttp session).
    """
    if _AGENT:
        return _AGENT[0]
    from locust.contrib.fasthttp import LocustUserAgent

    class GuardedUserAgent(LocustUserAgent):
        guard: Guard

        def _urlopen(self, request: Any) -> Any:
            guard = self.guard
            began = time.perf_counter()
            if isinstance(request.payload, str):  # send what the guard read, as UTF-8
                request.payload = request.payload.encode("utf-8")
                request.headers["content-length"] = str(len(request.payload))
            # the URL as it goes out: `request.url` is what the task passed, without its params=
            method, url, body = request.method, str(request.url_split), request.payload
            admission = guard.admit(method, url, request.headers, body)
            attempt = guard.record_attempt(method, url, admission)
            target = getattr(request.url_split, "quoted_uri", request.url_split.request_uri)
            guard.sent(method, target, _body_bytes(body))  # before the write: a cut-off request may have arrived
            guard.busy_s += time.perf_counter() - began  # greenlets share one thread: no lock needed
            try:
                response = super()._urlopen(request)
            except BaseException as exc:
                if isinstance(exc, NOT_CONNECTED):
                    guard.unsent(method, target, _body_bytes(body))
                if attempt is not None:
                    guard.record_outcome(attempt, method, None, None)
                raise
            if attempt is not None:
                began = time.perf_counter()
                guard.record_outcome(
                    attempt, method, response.status_code, response.content, response.headers.get("location")
                )
                guard.busy_s += time.perf_counter() - began
            return response

    _AGENT.append(GuardedUserAgent)
    return GuardedUserAgent
