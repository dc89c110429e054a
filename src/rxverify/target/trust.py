"""The local trust domain: what the `local` target needs for mutual TLS and signed assertions, made with cryptography.

Created (or reused) under one folder of the run:

    ca-<entry>.pem, ca-<entry>.key          one CA per entry point (internet, sjunet): it issues that
                                            entry point's server certificates and its clients' certificates
    servers/<instance>/                     a platform instance's --tls-dir (refplatform.common.tls):
        <entry>.pem, <entry>.key            its server certificate per entry point (SAN 127.0.0.1, ::1,
                                            localhost), signed by that entry point's CA
        <entry>-client-ca.pem               the CA whose client certificates that entry point accepts
    clients/<entry>/<holder>.pem, .key      a client certificate per certificate holder and entry point
    issuer.pem, issuer.key                  the local ticket issuer's signing certificate (RSA, self-signed)
    trust.json                              what was made, and until when

The holders are the calling systems, not the people (README, "Säker åtkomst"): each pharmacy system
(`pharmacy-<n>`, the test actor's id), each care unit's care system (`careunit-<arbetsplatskod>`:
every prescriber of that unit calls through it), and Förskrivningskollen (`forskrivningskollen`,
the agency's service through which any prescriber calls). A person's SAMBI assertion is bound to
the certificate of the system it comes through (holder of key).

Keys are written 0600 in a 0700 folder. Without a data directory the folder is the run's private
temporary directory and goes with it; `rxverify serve --data-dir DIR` keeps it in DIR/trust and
reuses it while every certificate is valid for another day.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rxverify.errors import UserError

ENTRY_POINTS = ("internet", "sjunet")
DEFAULT_ENTRY = "internet"
FORSKRIVNINGSKOLLEN = "forskrivningskollen"
GATEWAY = "gateway"  # the gateway of a rehearsal: its server certificates and its own client certificate
VALID_DAYS = 30  # long enough for a kept data directory; a run needs minutes
RENEW_BEFORE = timedelta(days=1)  # a kept domain is remade when a certificate has less left than this
ISSUER_KEY_BITS = 2048  # RSA-SHA256: what SAML issuers sign with
MANIFEST = "trust.json"
MANIFEST_VERSION = 1
ORGANISATION = "rxverify local trust domain (test only)"

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class ClientCertificate:
    """One holder's client certificate on one entry point, as a TLS client presents it."""

    holder: str
    entry: str
    cert: Path
    key: Path

    @property
    def der(self) -> bytes:
        """The certificate's DER encoding (what a holder-of-key assertion carries)."""
        return x509.load_pem_x509_certificate(self.cert.read_bytes()).public_bytes(serialization.Encoding.DER)

    @property
    def thumbprint(self) -> str:
        """RFC 8705 `x5t#S256` of the certificate."""
        return base64.urlsafe_b64encode(hashlib.sha256(self.der).digest()).rstrip(b"=").decode("ascii")


def holders(actors: Any) -> dict[str, dict[str, str]]:
    """Every certificate holder of the test actors, with the subject attributes of its certificate."""
    found: dict[str, dict[str, str]] = {}
    for ph in actors.pharmacies:
        found[ph["id"]] = {"organisation": ph.get("actor", ph["name"]), "unit": ph["name"], "serialNumber": ph["gln"]}
    for unit in actors.care_units:
        found[f"careunit-{unit['arbetsplatskod']}"] = {
            "organisation": unit.get("region", "care provider"), "unit": unit["name"], "serialNumber": unit["hsaId"]}
    found[FORSKRIVNINGSKOLLEN] = {"organisation": "E-hälsomyndigheten", "unit": "Förskrivningskollen"}
    return found


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    path.chmod(0o600)


def _key_pem(key: Key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, attributes: dict[str, str] | None = None) -> x509.Name:
    """C=SE, O=<the local domain>, OU=<organisation>, OU=<unit>, serialNumber=<GLN or HSA-id>, CN=<holder>."""
    parts = [x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION)]
    for oid, key in ((NameOID.ORGANIZATIONAL_UNIT_NAME, "organisation"), (NameOID.ORGANIZATIONAL_UNIT_NAME, "unit"),
                     (NameOID.SERIAL_NUMBER, "serialNumber")):
        if attributes and attributes.get(key):
            parts.append(x509.NameAttribute(oid, attributes[key]))
    parts.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(parts)


class _Issuer:
    """A CA's certificate and key, issuing leaf certificates."""

    def __init__(self, cert: x509.Certificate, key: Key) -> None:
        self.cert = cert
        self.key = key

    @classmethod
    def new_ca(cls, common_name: str, not_after: datetime) -> _Issuer:
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(common_name)
        now = datetime.now(UTC) - timedelta(minutes=5)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    def issue(self, subject: x509.Name, usage: x509.ObjectIdentifier, not_after: datetime,
              names: list[x509.GeneralName] | None = None) -> tuple[x509.Certificate, Key]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC) - timedelta(minutes=5)
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=True, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                           critical=False)
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(self.key, hashes.SHA256()), key


LOOPBACK_NAMES: list[x509.GeneralName] = [
    x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.IPAddress(ipaddress.ip_address("::1")),
]


@dataclass(frozen=True)
class TrustDomain:
    """The local trust domain in `root` (see the module's docstring for its files)."""

    root: Path
    instances: tuple[str, ...]
    holders: tuple[str, ...]

    def ca(self, entry: str) -> Path:
        """The CA bundle a client trusts for the servers of an entry point."""
        return self.root / f"ca-{entry}.pem"

    def server_dir(self, instance: str) -> Path:
        """The --tls-dir of one platform instance."""
        return self.root / "servers" / instance

    def client(self, holder: str, entry: str) -> ClientCertificate:
        """A holder's client certificate on an entry point."""
        if holder not in self.holders:
            raise UserError(f"the local trust domain has no certificate for {holder!r} "
                            f"(holders: {', '.join(self.holders)})")
        if entry not in ENTRY_POINTS:
            raise UserError(f"unknown entry point {entry!r} (the local target serves {', '.join(ENTRY_POINTS)})")
        folder = self.root / "clients" / entry
        return ClientCertificate(holder, entry, folder / f"{holder}.pem", folder / f"{holder}.key")

    @property
    def issuer_cert(self) -> Path:
        """The ticket issuer's certificate (what the platforms trust with --issuer-cert)."""
        return self.root / "issuer.pem"

    @property
    def issuer_key(self) -> Path:
        """The ticket issuer's signing key (only the suite's local minter reads it)."""
        return self.root / "issuer.key"


def _reusable(root: Path, instances: tuple[str, ...], names: tuple[str, ...]) -> bool:
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        expires = datetime.fromisoformat(manifest["expires"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return (manifest.get("version") == MANIFEST_VERSION and set(instances) <= set(manifest.get("instances", ()))
            and set(names) <= set(manifest.get("holders", ())) and expires - RENEW_BEFORE > datetime.now(UTC))


def kept_trust_domain(root: Path) -> TrustDomain:
    """The local trust domain another command made in `root` (`rxverify serve`, a load master), read, never remade."""
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        expires = datetime.fromisoformat(manifest["expires"])
        domain = TrustDomain(root, tuple(manifest["instances"]), tuple(manifest["holders"]))
    except OSError as exc:
        raise UserError(f"--trust-dir {root}: no local trust domain there ({exc.strerror}: {MANIFEST}); "
                        "rxverify serve prints the folder of the platforms it started") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"--trust-dir {root}: {MANIFEST} is malformed ({exc})") from None
    if expires <= datetime.now(UTC):
        raise UserError(f"--trust-dir {root}: the local trust domain expired on {expires.date()}")
    return domain


def trust_domain(root: Path, instances: Iterable[str], actors: Any, services: Iterable[str] = ()) -> TrustDomain:
    """The local trust domain in `root`: reused when it covers `instances` and every holder, else made anew.

    `services`: holders of a client certificate that are no test actor (GATEWAY: the gateway's own).
    """
    wanted = tuple(instances)
    subjects = holders(actors) | {name: {"organisation": "E-hälsomyndigheten", "unit": name} for name in services}
    names = tuple(subjects)
    if _reusable(root, wanted, names):
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        return TrustDomain(root, tuple(manifest["instances"]), tuple(manifest["holders"]))
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    not_after = datetime.now(UTC) + timedelta(days=VALID_DAYS)
    domain = TrustDomain(root, wanted, names)
    for entry in ENTRY_POINTS:
        ca = _Issuer.new_ca(f"rxverify local {entry} CA", not_after)
        (root / f"ca-{entry}.pem").write_bytes(_cert_pem(ca.cert))
        _write_private(root / f"ca-{entry}.key", _key_pem(ca.key))
        for instance in wanted:
            folder = domain.server_dir(instance)
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)
            cert, key = ca.issue(_name(f"{instance} {entry}"), ExtendedKeyUsageOID.SERVER_AUTH, not_after,
                                 LOOPBACK_NAMES)
            (folder / f"{entry}.pem").write_bytes(_cert_pem(cert))
            _write_private(folder / f"{entry}.key", _key_pem(key))
            (folder / f"{entry}-client-ca.pem").write_bytes(_cert_pem(ca.cert))
        clients = root / "clients" / entry
        clients.mkdir(parents=True, exist_ok=True)
        clients.chmod(0o700)
        for holder, attributes in subjects.items():
            cert, key = ca.issue(_name(holder, attributes), ExtendedKeyUsageOID.CLIENT_AUTH, not_after)
            (clients / f"{holder}.pem").write_bytes(_cert_pem(cert))
            _write_private(clients / f"{holder}.key", _key_pem(key))
    _write_issuer(root, not_after)
    manifest = {"version": MANIFEST_VERSION, "instances": list(wanted), "holders": list(names),
                "expires": not_after.isoformat()}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return domain


def _write_issuer(root: Path, not_after: datetime) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=ISSUER_KEY_BITS)
    name = _name("rxverify local ticket issuer")
    now = datetime.now(UTC) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_cert_sign=False,
                                     crl_sign=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    (root / "issuer.pem").write_bytes(_cert_pem(cert))
    _write_private(root / "issuer.key", _key_pem(key))
