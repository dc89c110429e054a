"""Locust's FastHttp client over mutual TLS, in a process of its own (Locust patches the process with gevent).

`python tests/unit/target/fasthttp_probe.py '<json>'` with base, cert, key, ca: sends 20 requests as
the certificate's holder through the guarded FastHttp session, one as nobody, and prints what came
back as JSON. Importing locust inside pytest, once platforms' reader threads run, deadlocks on the
import lock; the load runs themselves run Locust as its own process too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from locust.env import Environment  # first: gevent's monkey patching

from rxverify.load.client import GuardedFastHttpSession
from rxverify.safety.guard import Guard
from rxverify.safety.registry import load_registry
from rxverify.target.tls import fasthttp_ssl_context_factory
from rxverify.target.trust import ClientCertificate

ROOT = Path(__file__).resolve().parents[3]


def main(argv: list[str]) -> int:
    """Run the probe; print {statuses, handshakes, anonymous, sent, sent_log}."""
    spec = json.loads(argv[0])
    guard = Guard(load_registry(ROOT / "contracts" / "testdata" / "test-patients.json"), audit=True)
    client = ClientCertificate("probe", "internet", Path(spec["cert"]), Path(spec["key"]))
    handshakes: list[int] = []

    def counting(factory: Any) -> Any:
        def make(*args: Any, **kwargs: Any) -> Any:
            context = factory(*args, **kwargs)
            wrap = context.wrap_socket

            def wrap_socket(*a: Any, **kw: Any) -> Any:
                handshakes.append(1)
                return wrap(*a, **kw)

            context.wrap_socket = wrap_socket
            return context

        return make

    env = Environment()
    ca = Path(spec["ca"])
    session = GuardedFastHttpSession(guard, base_url=spec["base"], request_event=env.events.request, user=None,
                                     insecure=False, concurrency=1,
                                     ssl_context_factory=counting(fasthttp_ssl_context_factory(client, ca)))
    statuses = []
    for _ in range(20):
        with session.get("/status", catch_response=True) as response:
            statuses.append(response.status_code)
            response.success()
    anonymous = GuardedFastHttpSession(guard, base_url=spec["base"], request_event=env.events.request, user=None,
                                       insecure=False, ssl_context_factory=fasthttp_ssl_context_factory(None, ca))
    with anonymous.get("/status", catch_response=True) as response:
        refused = {"status": response.status_code, "error": type(response.error).__name__ if response.error else None}
        response.success()
    print(json.dumps({"statuses": statuses, "handshakes": len(handshakes), "anonymous": refused,
                      "sent": guard.counts["sent"],
                      "sent_log": dict(guard.sent_log or {})}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
