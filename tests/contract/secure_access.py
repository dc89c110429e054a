"""Säker åtkomst in the contract suite: the run over mutual TLS, SOAP calls with an assertion, certificates made now.

A target that configures callers' credentials (targets.toml clients and assertions) is used as it
is. The local target starts its own pair of platforms on mutual TLS with SAMBI assertions (the
default contract run's platforms keep their JWT tickets until every suite speaks 17.1), with the
run's seeded faults, so the power matrix catches the security faults here.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree

from rxverify.target.credentials import Caller, wsse_security
from rxverify.target.run import Run, open_run
from rxverify.target.targets import Target

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"


@contextmanager
def secure_run(pytestconfig: pytest.Config, rx_run: Run, rx_contracts: Path) -> Iterator[Run]:
    """The run whose sessions present callers' certificates and whose assertions the platforms verify."""
    if rx_run.credentials is not None:
        yield rx_run
        return
    # a target other than the embedded platforms has no such tests (conformance.applicability leaves them out)
    local = (rx_run.target.name, rx_run.target.environment_class) == ("local", "local")
    assert local, f"target {rx_run.target.name!r}: the secure-access tests need the local trust domain"
    chosen = pytestconfig.getoption("--platform")
    platforms = ("old", "new") if chosen == "both" else (chosen,)
    with open_run(Target("local", "local"), rx_contracts, suite="contract", tls=True, platforms=platforms,
                  faults=tuple(pytestconfig.getoption("--fault")), audit=True) as run:
        yield run
    assert run.audit_problems == [], run.audit_problems  # every request received was one the guard sent


def services(contracts: Path) -> dict[str, Any]:
    """contracts/riv/services.toml: each service's endpoint, namespace and soapAction."""
    return dict(tomllib.loads((contracts / "riv" / "services.toml").read_text(encoding="utf-8"))["operations"])


def soap_call(run: Run, contracts: Path, platform: str, caller: Caller, service: str, fields: dict[str, str], *,
              assertion: bytes | None = None, session: requests.Session | None = None) -> tuple[int, etree._Element]:
    """One SOAP request as `caller` over its own certificate (or `session`), an assertion in wsse:Security."""
    spec = services(contracts)[service]
    legacy = run.target.platforms[platform].legacy
    assert legacy is not None, f"{platform} has no legacy interface"
    http = session or run.session(actor=caller)
    signed = assertion if assertion is not None else run.credentials_or_fail().assertion(caller, None, http)
    body = "".join(f"<r:{k}>{v}</r:{k}>" for k, v in fields.items())
    envelope = (f'<s:Envelope xmlns:s="{SOAP11}"><s:Header>{wsse_security(signed).decode()}</s:Header>'
                f'<s:Body><r:{service} xmlns:r="{spec["namespace"]}">{body}</r:{service}></s:Body></s:Envelope>')
    r = http.post(legacy + spec["endpoint"], data=envelope.encode(), timeout=30,
                  headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{spec["soap_action"]}"'})
    found = etree.fromstring(r.content).find(f"{{{SOAP11}}}Body")
    assert found is not None and len(found), f"{service}: no SOAP body in {r.content[:200]!r}"
    return r.status_code, found[0]


def fault_code(answer: etree._Element) -> str | None:
    """The ApplicationException's `kod` of a SOAP fault (None: not a fault)."""
    return answer.findtext(".//{*}kod")


def client_certificate(folder: Path, name: str, *, ca: tuple[bytes, bytes] | None = None,
                       expired: bool = False) -> tuple[Path, Path]:
    """A client certificate made now: issued by `ca` (PEM cert, key), or by a CA of its own; optionally expired."""
    key = ec.generate_private_key(ec.SECP256R1())
    if ca is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"foreign CA of {name}")])
    else:
        ca_cert = x509.load_pem_x509_certificate(ca[0])
        loaded = serialization.load_pem_private_key(ca[1], password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        ca_key, ca_name = loaded, ca_cert.subject
    now = datetime.now(UTC)
    start, end = (now - timedelta(days=3), now - timedelta(days=1)) if expired else (now - timedelta(minutes=5),
                                                                                      now + timedelta(days=1))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = folder / f"{name}.pem", folder / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file
