"""Säker åtkomst in the platform tests: certificates from trustme, SAMBI assertions written with lxml and signxml.

Nothing here uses rxverify or refplatform's own security code: the CAs, the platforms' TLS
directories, the client certificates and the assertions are made independently, from
contracts/security/sambi.toml, so a platform bug cannot agree with itself.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import XMLSigner, methods
from signxml.algorithms import CanonicalizationMethod

from .conftest import CONTRACTS, ROOT, stop_process

PROFILE: dict[str, Any] = tomllib.loads((CONTRACTS / "security" / "sambi.toml").read_text(encoding="utf-8"))
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
ENTRIES = ("internet", "sjunet")


@dataclass
class Client:
    """A client certificate on disk, as requests takes it."""

    name: str
    cert_file: Path
    key_file: Path
    der: bytes

    @property
    def cert(self) -> tuple[str, str]:
        return str(self.cert_file), str(self.key_file)


@dataclass
class Trust:
    """Two entry points' CAs, a ticket issuer, and client certificates issued on demand."""

    root: Path
    cas: dict[str, trustme.CA] = field(default_factory=dict)
    clients: dict[tuple[str, str], Client] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for entry in ENTRIES:
            self.cas[entry] = trustme.CA(organization_name=f"test {entry} CA")
            self.cas[entry].cert_pem.write_to_path(str(self.ca_file(entry)))
        issuer_ca = trustme.CA(key_type=trustme.KeyType.RSA)
        issuer = issuer_ca.issue_cert(common_name="ticket issuer", key_type=trustme.KeyType.RSA)
        self.issuer_key = issuer.private_key_pem.bytes()
        self.issuer_cert = issuer.cert_chain_pems[0].bytes()
        self.issuer_cert_file = self.root / "issuer.pem"
        self.issuer_cert_file.write_bytes(self.issuer_cert)
        # a second issuer nobody trusts: a well-formed signature by the wrong key
        rogue = issuer_ca.issue_cert(common_name="rogue issuer", key_type=trustme.KeyType.RSA)
        self.rogue_key, self.rogue_cert = rogue.private_key_pem.bytes(), rogue.cert_chain_pems[0].bytes()

    def ca_file(self, entry: str) -> Path:
        return self.root / f"ca-{entry}.pem"

    def tls_dir(self, instance: str) -> Path:
        """The --tls-dir of a platform instance: a server certificate per entry point, its CA as client CA."""
        folder = self.root / "servers" / instance
        folder.mkdir(parents=True, exist_ok=True)
        for entry, ca in self.cas.items():
            server = ca.issue_cert("127.0.0.1", "localhost", common_name=f"{instance} {entry}")
            server.cert_chain_pems[0].write_to_path(str(folder / f"{entry}.pem"))
            server.private_key_pem.write_to_path(str(folder / f"{entry}.key"))
            ca.cert_pem.write_to_path(str(folder / f"{entry}-client-ca.pem"))
        return folder

    def client(self, name: str, entry: str = "internet") -> Client:
        """The client certificate `name` of an entry point's CA (made once)."""
        key = (name, entry)
        if key not in self.clients:
            leaf = self.cas[entry].issue_cert(f"{name}.clients.invalid", common_name=name)
            folder = self.root / "clients" / entry
            folder.mkdir(parents=True, exist_ok=True)
            cert_file, key_file = folder / f"{name}.pem", folder / f"{name}.key"
            leaf.cert_chain_pems[0].write_to_path(str(cert_file))
            leaf.private_key_pem.write_to_path(str(key_file))
            der = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).public_bytes(
                serialization.Encoding.DER)
            self.clients[key] = Client(name, cert_file, key_file, der)
        return self.clients[key]


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def attributes_of(actor: Mapping[str, Any], role: str) -> dict[str, str]:
    """The SAMBI attributes (by sambi.toml key) of a test actor."""
    if role == "prescriber":
        return {"license": "LK", "legitimationskod": actor["legitimationskod"], "hsa_id": actor["hsaId"],
                "forskrivarkod": actor["forskrivarkod"], "arbetsplatskod": actor["careUnit"]}
    return {"license": "AP", "legitimationskod": actor["legitimationskod"], "gln": actor["gln"]}


def assertion(trust: Trust, actor: Mapping[str, Any], role: str, bound_to: Client | bytes, *,
              signed: bool = True, audience: str | None = None, issuer: str | None = None,
              not_before: datetime | None = None, not_on_or_after: datetime | None = None,
              loa: str | None = None, attributes: Mapping[str, str] | None = None,
              rogue: bool = False) -> etree._Element:
    """A SAMBI assertion for a test actor, bound (holder of key) to a client certificate."""
    a = PROFILE["assertion"]
    now = datetime.now(UTC)
    ident = "_" + uuid.uuid4().hex
    root = etree.Element(f"{{{SAML}}}Assertion", nsmap={"saml2": SAML, "ds": DS, "xsi": XSI},
                         ID=ident, Version="2.0", IssueInstant=_instant(now))
    etree.SubElement(root, f"{{{SAML}}}Issuer").text = issuer or a["issuer"]
    if signed:
        etree.SubElement(root, f"{{{DS}}}Signature", Id="placeholder")
    subject = etree.SubElement(root, f"{{{SAML}}}Subject")
    etree.SubElement(subject, f"{{{SAML}}}NameID", Format=a["name_id_format"]).text = actor["legitimationskod"]
    confirmation = etree.SubElement(subject, f"{{{SAML}}}SubjectConfirmation", Method=a["subject_confirmation"])
    data = etree.SubElement(confirmation, f"{{{SAML}}}SubjectConfirmationData",
                            {f"{{{XSI}}}type": "saml2:KeyInfoConfirmationDataType"})
    der = bound_to.der if isinstance(bound_to, Client) else bound_to
    x509_data = etree.SubElement(etree.SubElement(data, f"{{{DS}}}KeyInfo"), f"{{{DS}}}X509Data")
    etree.SubElement(x509_data, f"{{{DS}}}X509Certificate").text = base64.b64encode(der).decode()
    conditions = etree.SubElement(root, f"{{{SAML}}}Conditions",
                                  NotBefore=_instant(not_before or now - timedelta(minutes=1)),
                                  NotOnOrAfter=_instant(not_on_or_after or now + timedelta(minutes=10)))
    restriction = etree.SubElement(conditions, f"{{{SAML}}}AudienceRestriction")
    etree.SubElement(restriction, f"{{{SAML}}}Audience").text = audience or a["audience"]
    authn = etree.SubElement(root, f"{{{SAML}}}AuthnStatement", AuthnInstant=_instant(now))
    context = etree.SubElement(authn, f"{{{SAML}}}AuthnContext")
    etree.SubElement(context, f"{{{SAML}}}AuthnContextClassRef").text = loa or a["level_of_assurance"]
    statement = etree.SubElement(root, f"{{{SAML}}}AttributeStatement")
    values = {**attributes_of(actor, role), **(attributes or {})}
    for key, value in values.items():
        attribute = etree.SubElement(statement, f"{{{SAML}}}Attribute", Name=PROFILE["attributes"][key])
        etree.SubElement(attribute, f"{{{SAML}}}AttributeValue").text = value
    if not signed:
        return root
    key, cert = (trust.rogue_key, trust.rogue_cert) if rogue else (trust.issuer_key, trust.issuer_cert)
    signer = XMLSigner(method=methods.enveloped,
                       c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    return signer.sign(root, key=key, cert=cert.decode(), reference_uri=ident)


def tampered(signed: etree._Element, attribute: str, value: str) -> etree._Element:
    """A signed assertion with one attribute value changed after signing."""
    copy = etree.fromstring(etree.tostring(signed))
    name = PROFILE["attributes"][attribute]
    node = copy.find(f".//{{{SAML}}}Attribute[@Name='{name}']/{{{SAML}}}AttributeValue")
    assert node is not None
    node.text = value
    return copy


def security_header(element: etree._Element) -> str:
    """wsse:Security holding the assertion, and the LogicalAddress the platform tests send."""
    from .soap_calls import LOGICAL_ADDRESS

    xml = etree.tostring(element).decode()
    return (f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:soapenv="{SOAP11}" soapenv:mustUnderstand="1">{xml}'
            f"</wsse:Security>{LOGICAL_ADDRESS}")


def b64url(element: etree._Element) -> str:
    """An assertion as RFC 7522 sends it: base64url, no padding."""
    return base64.urlsafe_b64encode(etree.tostring(element)).rstrip(b"=").decode()


@dataclass
class SecurePlatform:
    """A platform started with --tls-dir, two entry points and --auth saml."""

    platform: str
    entries: dict[str, str]  # entry point -> base URL
    process: subprocess.Popen[str]
    trust: Trust
    entry: str = "internet"  # the entry point `base_url` (and soap_calls.url) names

    @property
    def base_url(self) -> str:
        return self.entries[self.entry]

    def at(self, entry: str) -> SecurePlatform:
        """The same platform, addressed at another entry point."""
        return replace(self, entry=entry)

    def url(self, path: str, entry: str = "internet") -> str:
        return self.entries[entry] + path

    def session(self, client: Client | None, entry: str = "internet") -> requests.Session:
        """A requests session presenting `client` and trusting the entry point's CA."""
        s = requests.Session()
        s.trust_env = False
        s.verify = str(self.trust.ca_file(entry))
        if client is not None:
            s.cert = client.cert
        return s

    def stop(self) -> None:
        stop_process(self.process)


def start_secure(platform: str, data_dir: Path, key_file: Path, trust: Trust, faults: list[str] | None = None,
                 extra: list[str] | None = None, instance: str | None = None) -> SecurePlatform:
    """Start a platform on two TLS entry points with SAMBI assertions; wait for both READY lines."""
    cmd = [sys.executable, "-m", "refplatform", "--platform", platform, "--data-dir", str(data_dir),
           "--ticket-key-file", str(key_file), "--tls-dir", str(trust.tls_dir(instance or platform)),
           "--entry", "internet=0", "--entry", "sjunet=0", "--auth", "saml",
           "--issuer-cert", str(trust.issuer_cert_file), "--contracts", str(CONTRACTS)]
    for fault in faults or []:
        cmd += ["--fault", fault]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(cmd + list(extra or []), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    return SecurePlatform(platform, ready_entries(proc, platform), proc, trust)


def ready_entries(proc: subprocess.Popen[str], name: str) -> dict[str, str]:
    """Each entry point's base URL, from the READY lines of a process serving both (killed if it does not)."""
    assert proc.stdout is not None
    entries: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while len(entries) < len(ENTRIES) and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("READY"):
            # READY <name> https://127.0.0.1:<port> (entry <entry>)
            parts = line.split()
            entries[parts[-1].rstrip(")")] = parts[2]
    if len(entries) < len(ENTRIES):
        proc.kill()
        raise RuntimeError(f"{name} did not start: {proc.stderr.read() if proc.stderr else ''}")
    return entries
