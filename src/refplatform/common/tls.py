"""Mutual TLS of the reference platforms: one server context per entry point, and the client's certificate in scope.

A platform started with `--tls-dir DIR` serves HTTPS on every entry point and requires a client
certificate on the handshake (ssl.CERT_REQUIRED): a client without one never gets a byte of HTTP.
DIR holds, per entry point NAME (internet, sjunet, ...):

    NAME.pem             the server certificate (chain) of that entry point
    NAME.key             its private key
    NAME-client-ca.pem   the CA certificate(s) whose client certificates that entry point accepts

uvicorn 0.54 puts nothing of the TLS session into the ASGI scope, so `client_certificate_protocol`
makes its HTTP/1.1 protocol (h11) put the ASGI TLS extension there (`scope["extensions"]["tls"]`,
as the ASGI spec defines it: the client certificate chain as PEM) plus the DER form, its SHA-256
thumbprint and the entry point under `scope["extensions"]["refplatform.tls"]`, read once per
connection when the handshake is done.

Behind the gateway (refplatform.gateway, the callers' one address) the TLS peer is the gateway, not
the caller: the gateway terminates the caller's mutual TLS and forwards the caller's certificate in
the `Client-Cert` header of RFC 9440. A platform started with `--trusted-proxy-cert FILE` reads
that header on connections whose client certificate is exactly FILE's, and takes the forwarded
certificate as the caller's (no header: the request has no caller certificate); from any other
peer the header is ignored, and it is never passed on to the application.
"""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

ENTRY_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
DEFAULT_ENTRY = "internet"
EXTENSION = "refplatform.tls"
# ASGI TLS extension: tls_version as the TLS protocol number
_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
# RFC 9440: the client certificate (and chain) a TLS-terminating proxy forwards
FORWARDED_CERT = b"client-cert"
FORWARDED = frozenset({FORWARDED_CERT, b"client-cert-chain"})


class TlsSetupError(ValueError):
    """A TLS file of an entry point is missing or unusable (the message is the one line to print)."""


@dataclass(frozen=True)
class EntryPoint:
    """One listening entry point of a platform: its name and port."""

    name: str
    port: int


def parse_entry(text: str) -> EntryPoint:
    """`NAME=PORT` (the --entry option) as an EntryPoint; ValueError naming what is wrong."""
    name, sep, port = text.partition("=")
    if not sep or not ENTRY_NAME.match(name):
        raise ValueError(f"--entry {text!r}: expected NAME=PORT with a lower-case name (internet=0, sjunet=8443)")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"--entry {text!r}: port {port!r} is not a number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"--entry {text!r}: port {number} is out of range")
    return EntryPoint(name, number)


def entry_files(tls_dir: Path, entry: str) -> tuple[Path, Path, Path]:
    """The server certificate, key and client CA bundle of an entry point in a TLS directory."""
    return tls_dir / f"{entry}.pem", tls_dir / f"{entry}.key", tls_dir / f"{entry}-client-ca.pem"


def server_context(tls_dir: Path, entry: str) -> ssl.SSLContext:
    """The TLS server context of one entry point: its certificate, and client certificates required."""
    cert, key, client_ca = entry_files(tls_dir, entry)
    for path, what in ((cert, "server certificate"), (key, "server key"), (client_ca, "client CA bundle")):
        try:
            path.read_bytes()
        except OSError as exc:
            raise TlsSetupError(f"entry point {entry}: cannot read {what} {path}: {exc.strerror}") from None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError) as exc:
        raise TlsSetupError(f"entry point {entry}: {cert} and {key} are not a certificate and its key: {exc}") from None
    try:
        ctx.load_verify_locations(cafile=client_ca)
    except (ssl.SSLError, ValueError) as exc:
        raise TlsSetupError(f"entry point {entry}: {client_ca} is not a PEM CA bundle: {exc}") from None
    return ctx


def thumbprint(der: bytes) -> str:
    """RFC 8705 `x5t#S256`: the base64url (unpadded) SHA-256 of a certificate's DER encoding."""
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")


def _connection_info(transport: Any, entry: str) -> dict[str, Any]:
    """What a connection's handshake established, as the ASGI TLS extension and our own extension."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return {}
    der = ssl_object.getpeercert(binary_form=True)
    peer = ssl_object.getpeercert() or {}
    subject = ",".join(f"{k}={v}" for rdn in peer.get("subject", ()) for k, v in rdn)
    tls = {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": subject or None,
        "client_cert_error": None,
        "tls_version": _VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }
    common_names = [v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"]
    ours = {"entry": entry, "client_cert_der": der, "x5t#S256": thumbprint(der) if der else None,
            "client_cn": common_names[0] if len(common_names) == 1 else None}
    return {"tls": tls, EXTENSION: ours}


def forwarded_certificate(der: bytes) -> bytes:
    """The `Client-Cert` header value of RFC 9440 for a DER certificate: a structured-field byte sequence."""
    return b":" + base64.b64encode(der) + b":"


def _read_forwarded(value: bytes) -> bytes | None:
    """The DER certificate of a `Client-Cert` value (None when it is not one)."""
    text = value.strip()
    if len(text) < 3 or text[:1] != b":" or text[-1:] != b":":
        return None
    try:
        der = base64.b64decode(text[1:-1], validate=True)
        x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    return der


def _caller_facts(info: dict[str, Any], der: bytes | None) -> dict[str, Any]:
    """A connection's TLS facts with the caller's certificate the proxy forwarded (`der`) in place of the proxy's."""
    names = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME) if der else []
    ours = {**info[EXTENSION], "client_cert_der": der, "x5t#S256": thumbprint(der) if der else None,
            "client_cn": str(names[0].value) if len(names) == 1 else None, "forwarded_by_proxy": True}
    tls = {**info["tls"], "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else []}
    return {"tls": tls, EXTENSION: ours}


class _WithConnection:
    """The application, with one connection's TLS facts added to each request's scope.

    With `proxy_der` (the trusted gateway's certificate), a request on a connection of that
    certificate carries the caller's certificate of its `Client-Cert` header instead.
    """

    def __init__(self, app: ASGIApp, extensions: dict[str, Any], proxy_der: bytes | None = None) -> None:
        self.app = app
        self.extensions = extensions
        self.from_proxy = proxy_der is not None and extensions[EXTENSION]["client_cert_der"] == proxy_der

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = scope.get("headers") or []
        extensions = self.extensions
        if self.from_proxy:
            values = [v for k, v in headers if k.lower() == FORWARDED_CERT]
            extensions = _caller_facts(extensions, _read_forwarded(values[0]) if len(values) == 1 else None)
        if any(k.lower() in FORWARDED for k, _ in headers):  # read above or ignored: never the application's
            scope["headers"] = [(k, v) for k, v in headers if k.lower() not in FORWARDED]
        scope["extensions"] = {**(scope.get("extensions") or {}), **extensions}
        await self.app(scope, receive, send)


def client_certificate_protocol(entry: str, proxy_der: bytes | None = None) -> type[H11Protocol]:
    """uvicorn's h11 protocol, reading the client certificate once per connection (for entry point `entry`).

    `proxy_der`: the certificate of the trusted gateway, whose `Client-Cert` header names the caller.
    """

    class ClientCertificateProtocol(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            # asyncio calls this once the TLS handshake is complete, so the peer's certificate is known
            info = _connection_info(transport, entry)
            if info:
                self.app = _WithConnection(self.app, info, proxy_der)

        def shutdown(self) -> None:
            # An idle keep-alive connection is dropped at once. uvicorn closes it, and an asyncio TLS
            # transport then waits for the peer's close_notify, which a client holding the connection
            # idle in its pool never sends: every stop waited out timeout_graceful_shutdown (measured:
            # 1.2 s per platform, 2.5 s of a 7 s contract run). A request in flight still completes.
            if self.cycle is None or self.cycle.response_complete:
                self.transport.abort()
            else:
                super().shutdown()

    ClientCertificateProtocol.__name__ = f"ClientCertificateProtocol[{entry}]"
    return ClientCertificateProtocol


def _ours(scope: Scope) -> dict[str, Any]:
    found = (scope.get("extensions") or {}).get(EXTENSION)
    return found if isinstance(found, dict) else {}


def peer_certificate(scope: Scope) -> bytes | None:
    """The DER client certificate of the connection a request came over (None on plain HTTP)."""
    der = _ours(scope).get("client_cert_der")
    return der if isinstance(der, bytes) and der else None


def peer_thumbprint(scope: Scope) -> str | None:
    """The `x5t#S256` of the connection's client certificate (None on plain HTTP)."""
    value = _ours(scope).get("x5t#S256")
    return value if isinstance(value, str) else None


def peer_common_name(scope: Scope) -> str | None:
    """The one commonName of the connection's client certificate (None on plain HTTP or without one)."""
    value = _ours(scope).get("client_cn")
    return value if isinstance(value, str) else None
