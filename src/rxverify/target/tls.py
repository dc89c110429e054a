"""TLS of Locust's FastHttp clients: the SSL context a caller's FastHttpUser presents its certificate with.

requests takes a caller's certificate as `cert=`/`verify=` (`Run.session(actor=...)` sets them);
geventhttpclient, under Locust's FastHttpUser, takes an `ssl_context_factory`. The factory here
gives it one context per caller: that caller's client certificate, the entry point's CA and
nothing else (the CA bundle geventhttpclient offers is ignored), TLS 1.2 at least. Each of the
user's pooled connections makes one handshake and is kept alive, so a load run pays the TLS
handshake once per connection, not per request.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rxverify.target.trust import ClientCertificate


def fasthttp_ssl_context_factory(client: ClientCertificate | None, ca: Path | None) -> Callable[..., Any]:
    """An `ssl_context_factory` for FastHttpUser / FastHttpSession presenting `client` and trusting only `ca`."""
    import gevent.ssl

    def factory(*_: Any, **__: Any) -> Any:
        context = gevent.ssl.create_default_context(cafile=str(ca) if ca is not None else None)
        context.minimum_version = gevent.ssl.TLSVersion.TLSv1_2
        if client is not None:
            context.load_cert_chain(str(client.cert), str(client.key))
        return context

    return factory
