"""Secrets (tickets, assertions, tokens, keys, certificates, Authorization, cookies) never reach a report or a log.

`redact_text` replaces, wherever they occur in text: JWTs (access tokens, tickets), bearer
credentials, key-like assignments (`token=`, `"refresh_token": ...`, `assertion=`), SAML
assertions as XML (raw or HTML-escaped; an unterminated one to the end of the text), base64 and
base64url SAML assertions (the RFC 7522 form), X.509 certificates in XML signatures, and PEM
blocks (keys, certificates, CSRs; an unterminated one to the end of its base64).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"
SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "x-access", "x-api-key", "proxy-authorization"})
# A JWT (header.payload.signature, base64url) or a bearer credential anywhere in text.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_KEYLIKE = re.compile(
    r"(?i)((?:ticket|token|secret|api[_-]?key|password|assertion)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&<]{6,}"
)
# SAML assertions: the element (any prefix; an assertion always carries ID), raw or HTML-escaped
_TAG = r"(?:[\w.-]+:)?Assertion\b"
_SAML_XML = re.compile(rf"<{_TAG}(?=[^>]*\bID\s*=)[\s\S]*?</{_TAG}\s*>")
_SAML_XML_OPEN = re.compile(rf"<{_TAG}(?=[^>]*\bID\s*=)[\s\S]*\Z")
_SAML_ESCAPED = re.compile(rf"&lt;{_TAG}(?=(?:(?!&gt;).)*\bID\s*=)[\s\S]*?&lt;/{_TAG}\s*&gt;")
_SAML_ESCAPED_OPEN = re.compile(rf"&lt;{_TAG}(?=(?:(?!&gt;).)*\bID\s*=)[\s\S]*\Z")
_X509_XML = re.compile(r"(<(?:[\w.-]+:)?X509Certificate\s*>)[^<]+")
# PEM blocks, complete or cut off
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]+-----[\s\S]*?-----END [A-Z0-9 ]+-----")
_PEM_OPEN = re.compile(r"-----BEGIN [A-Z0-9 ]+-----[A-Za-z0-9+/=\s\\n]*")
# base64 of XML starts with "P" ("<"); an assertion is hundreds of characters long
_B64_XML = re.compile(r"P[A-Za-z0-9+/_-]{199,}={0,2}")
_SAML_MARKERS = (b"urn:oasis:names:tc:SAML:2.0:assertion", b":Assertion ", b"<Assertion ")
_PEEK = 1200  # base64 characters decoded to recognise an assertion (its opening, namespaces included)


def _is_base64_assertion(token: str) -> bool:
    head = token[:_PEEK]
    head = head[: len(head) - len(head) % 4]
    alphabet = b"-_" if ("-" in head or "_" in head) else b"+/"
    try:
        decoded = base64.b64decode(head, altchars=alphabet, validate=True)
    except (binascii.Error, ValueError):
        return False
    return decoded.lstrip().startswith(b"<") and any(marker in decoded for marker in _SAML_MARKERS)


def redact_text(text: str) -> str:
    """`text` with every ticket, token, assertion, key, certificate and key-like assignment replaced."""
    if "Assertion" in text:
        text = _SAML_XML.sub(REDACTED, text)
        text = _SAML_XML_OPEN.sub(REDACTED, text)
    if "&lt;" in text:
        text = _SAML_ESCAPED.sub(REDACTED, text)
        text = _SAML_ESCAPED_OPEN.sub(REDACTED, text)
    if "X509Certificate" in text:
        text = _X509_XML.sub(lambda m: m.group(1) + REDACTED, text)
    if "-----BEGIN " in text:
        text = _PEM.sub(REDACTED, text)
        text = _PEM_OPEN.sub(REDACTED, text)
    text = _B64_XML.sub(lambda m: REDACTED if _is_base64_assertion(m.group(0)) else m.group(0), text)
    text = _JWT.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    return _KEYLIKE.sub(lambda m: m.group(1) + REDACTED, text)


def redact_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """A copy of `headers` with secret headers replaced and the rest scrubbed."""
    return {
        name: (REDACTED if name.lower() in SECRET_HEADERS else redact_text(str(value)))
        for name, value in headers.items()
    }
