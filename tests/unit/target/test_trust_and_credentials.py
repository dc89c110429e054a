"""The local trust domain, the local ticket issuer's assertions, and the credentials a target names.

Requirement: Säker åtkomst 17.1 (DOMAIN.md) as the suite holds it: a CA per entry point, server
certificates for loopback, a client certificate per calling system, keys 0600; SAMBI assertions
signed by the local issuer with the attributes of contracts/security/sambi.toml and bound to the
caller's certificate; assertions of a test target never from the repository; a missing or
unreadable certificate, key or CA file is one line naming it, exit 2.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier

from rxverify.errors import UserError
from rxverify.report.scan import scan_text
from rxverify.safety.redaction import REDACTED, redact_text
from rxverify.safety.registry import Registry
from rxverify.target.credentials import (
    SAML,
    AssertionFiles,
    AssertionMinter,
    Caller,
    base64url,
    load_actors,
    load_profile,
    wsse_security,
)
from rxverify.target.run import configured_credentials, open_run
from rxverify.target.targets import check_files, load_targets
from rxverify.target.trust import ENTRY_POINTS, MANIFEST, holders, trust_domain

from ..conftest import CONTRACTS, ROOT

ACTORS = load_actors(CONTRACTS / "testdata" / "test-actors.json")
PROFILE = load_profile(CONTRACTS)


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> object:
    return trust_domain(tmp_path_factory.mktemp("trust") / "trust", ("old", "new"), ACTORS)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


# ---- the trust domain ----


def test_the_trust_domain_has_what_mutual_tls_needs(domain: object) -> None:
    from rxverify.target.trust import TrustDomain

    assert isinstance(domain, TrustDomain)
    cas = {e: _cert(domain.ca(e)) for e in ENTRY_POINTS}
    assert cas["internet"].subject != cas["sjunet"].subject
    for entry, ca in cas.items():
        for instance in ("old", "new"):
            folder = domain.server_dir(instance)
            server = _cert(folder / f"{entry}.pem")
            server.verify_directly_issued_by(ca)
            sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1"}
            assert "localhost" in sans.get_values_for_type(x509.DNSName)
            assert (folder / f"{entry}-client-ca.pem").read_bytes() == domain.ca(entry).read_bytes()
            usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            assert ExtendedKeyUsageOID.SERVER_AUTH in usage
        for holder in domain.holders:
            client = domain.client(holder, entry)
            cert = _cert(client.cert)
            cert.verify_directly_issued_by(ca)
            assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == holder
            assert ExtendedKeyUsageOID.CLIENT_AUTH in cert.extensions.get_extension_for_class(
                x509.ExtendedKeyUsage).value
    # one certificate per holder and entry point, all different
    thumbs = {domain.client(h, e).thumbprint for h in domain.holders for e in ENTRY_POINTS}
    assert len(thumbs) == 2 * len(domain.holders)
    keys = list(domain.root.rglob("*.key"))
    assert keys and all(k.stat().st_mode & 0o777 == 0o600 for k in keys)
    assert domain.root.stat().st_mode & 0o777 == 0o700


def test_which_system_a_caller_calls_through() -> None:
    """Pharmacist -> the pharmacy's system; prescriber -> the care unit's system, or Förskrivningskollen."""
    assert Caller("pharmacy", 1).holder(ACTORS) == "pharmacy-2"
    assert Caller("prescriber", 0).holder(ACTORS) == "careunit-4000000"
    assert Caller("prescriber", 7).holder(ACTORS) == "careunit-4000000"  # same unit, same system
    assert Caller("prescriber", 1).holder(ACTORS) == "careunit-4001111"
    assert Caller("prescriber", 3, via="forskrivningskollen").holder(ACTORS) == "forskrivningskollen"
    assert set(holders(ACTORS)) >= {"pharmacy-1", "careunit-4007777", "forskrivningskollen"}
    with pytest.raises(UserError):
        Caller("pharmacy", 0, via="forskrivningskollen").holder(ACTORS)
    with pytest.raises(UserError):
        Caller("dentist").holder(ACTORS)


def test_a_kept_trust_domain_is_reused_until_it_nears_expiry(tmp_path: Path) -> None:
    root = tmp_path / "trust"
    first = trust_domain(root, ("new",), ACTORS)
    ca = first.ca("internet").read_bytes()
    assert trust_domain(root, ("new",), ACTORS).ca("internet").read_bytes() == ca
    # an instance it does not have: made anew
    second = trust_domain(root, ("old", "new"), ACTORS)
    assert second.ca("internet").read_bytes() != ca and second.server_dir("old").is_dir()
    manifest = json.loads((root / MANIFEST).read_text())
    manifest["expires"] = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    (root / MANIFEST).write_text(json.dumps(manifest))
    kept = second.ca("internet").read_bytes()
    assert trust_domain(root, ("new",), ACTORS).ca("internet").read_bytes() != kept


# ---- the local ticket issuer ----


def _minter(domain: object) -> AssertionMinter:
    from rxverify.target.trust import TrustDomain

    assert isinstance(domain, TrustDomain)
    return AssertionMinter(domain.issuer_key.read_bytes(), domain.issuer_cert.read_bytes(), ACTORS, PROFILE)


def test_a_minted_assertion_is_signed_bound_and_carries_the_sambi_attributes(domain: object) -> None:
    from rxverify.target.trust import TrustDomain

    assert isinstance(domain, TrustDomain)
    caller = Caller("prescriber", 1)
    client = domain.client(caller.holder(ACTORS), "internet")
    xml = _minter(domain).assertion(caller, client.der)
    root = etree.fromstring(xml)
    signed = XMLVerifier().verify(root, x509_cert=domain.issuer_cert.read_text(),
                                  expect_config=SignatureConfiguration(location="./")).signed_xml  # type: ignore[union-attr]
    ns = {"s": SAML, "ds": "http://www.w3.org/2000/09/xmldsig#"}
    values = {a.get("Name"): a.findtext("s:AttributeValue", namespaces=ns)
              for a in signed.iterfind("s:AttributeStatement/s:Attribute", ns)}
    p = ACTORS.prescribers[1]
    attrs = PROFILE.attributes
    assert values == {attrs["license"]: "LK", attrs["legitimationskod"]: p["legitimationskod"],
                      attrs["hsa_id"]: p["hsaId"], attrs["forskrivarkod"]: p["forskrivarkod"],
                      attrs["arbetsplatskod"]: p["careUnit"]}
    assert signed.findtext("s:Issuer", namespaces=ns) == PROFILE.issuer
    assert signed.findtext("s:Conditions/s:AudienceRestriction/s:Audience", namespaces=ns) == PROFILE.audience
    assert signed.findtext("s:AuthnStatement/s:AuthnContext/s:AuthnContextClassRef",
                           namespaces=ns) == "http://id.sambi.se/loa/loa3"
    confirmation = signed.find("s:Subject/s:SubjectConfirmation", ns)
    assert confirmation is not None and confirmation.get("Method") == PROFILE.subject_confirmation
    bound = confirmation.findtext(".//ds:X509Certificate", namespaces=ns)
    assert bound is not None and base64.b64decode(bound) == client.der
    # a pharmacist: AP and the GLN, no prescriber attributes
    pharmacy = etree.fromstring(_minter(domain).assertion(Caller("pharmacy", 2), client.der))
    names = {a.get("Name") for a in pharmacy.iterfind(".//s:Attribute", ns)}
    assert attrs["gln"] in names and attrs["forskrivarkod"] not in names
    assert wsse_security(xml).startswith(b"<wsse:Security") and base64.urlsafe_b64decode(
        base64url(xml) + "=" * (-len(base64url(xml)) % 4)) == xml


# ---- what a test target names ----


def _write_pem(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _targets_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(body)
    return path


def test_the_documented_examples_of_targets_toml_parse(tmp_path: Path) -> None:
    """Every commented example of contracts/targets.toml (`# [table]`, `# key = value`), uncommented, is valid."""
    example = re.compile(r"^# (\[[^\]]+\]|[A-Za-z0-9_.\"-]+ = .*)$")
    lines = [m.group(1) if (m := example.match(line)) else line
             for line in (CONTRACTS / "targets.toml").read_text(encoding="utf-8").splitlines()]
    targets = load_targets(_targets_file(tmp_path, "\n".join(lines) + "\n"))
    acceptance = targets["acceptance"]
    new = acceptance.platforms["new"]
    sjunet = new.entry("sjunet")
    assert new.token and new.ca and sjunet is not None and sjunet.legacy and sjunet.ca != new.ca
    assert {"pharmacy", "prescriber", "forskrivningskollen"} <= set(acceptance.clients)
    assert acceptance.clients["prescriber"].files("sjunet") != acceptance.clients["prescriber"].files("internet")
    assert acceptance.assertions and targets["production"].assertions
    assert all(urlsplit(u).hostname.endswith(".invalid")  # type: ignore[union-attr]
               for t in targets.values() for e in t.platforms.values() for p in e.entry_points()
               for u in (p.legacy, p.fhir, p.token) if u)


def test_missing_unreadable_or_non_pem_files_are_one_user_error(tmp_path: Path) -> None:
    cert = _write_pem(tmp_path / "c.pem", "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n")
    key = _write_pem(tmp_path / "k.pem", "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n")
    locked = _write_pem(tmp_path / "locked.pem", "-----BEGIN PRIVATE KEY-----\n")
    os.chmod(locked, 0)
    base = f'[t]\nclass = "test"\n[t.new]\nlegacy = "https://ecp.invalid/legacy"\nca = "{cert}"\n'
    cases = {
        "cannot read CA bundle": base.replace(cert, str(tmp_path / "missing.pem")),
        "is not PEM": base.replace(cert, key),
        "clients.pharmacy.key": base + f'[t.clients.pharmacy]\ncert = "{cert}"\nkey = "{tmp_path / "nokey"}"\n',
        "clients.pharmacy.sjunet.cert": base + f'[t.clients.pharmacy.sjunet]\ncert = "{key}"\nkey = "{key}"\n',
    }
    if os.geteuid() != 0:  # root reads any file
        cases["cannot read key"] = base + f'[t.clients.pharmacy]\ncert = "{cert}"\nkey = "{locked}"\n'
    for expected, body in cases.items():
        target = load_targets(_targets_file(tmp_path, body))["t"]
        with pytest.raises(UserError, match=re.escape(expected)) as caught:
            check_files(target)
        assert "\n" not in str(caught.value)
    check_files(load_targets(_targets_file(tmp_path, base + f'[t.clients.pharmacy]\ncert = "{cert}"\n'
                                                          f'key = "{key}"\n'))["t"])


def test_malformed_credentials_in_targets_toml_are_one_user_error(tmp_path: Path) -> None:
    base = '[t]\nclass = "test"\n[t.new]\nlegacy = "https://ecp.invalid/legacy"\n'
    for body, expected in (
        (base + "[t.new.intranet]\nlegacy = \"https://x.invalid/legacy\"\n", "is not an entry point"),
        (base + "[t.new.internet]\nlegacy = \"https://x.invalid/legacy\"\n", "both directly and in"),
        (base + "[t.new.sjunet]\nlegcy = \"https://x.invalid/legacy\"\n", "unknown field 'legcy'"),
        (base + "[t.clients.pharmacy]\ncert = \"/c\"\n", "needs cert and key"),
        (base + "[t.assertions]\nservice = \"https://a.invalid\"\nfiles = { a = \"/b\" }\n", "exactly one"),
        (base + "[t.assertions]\nservice = \"ftp://a.invalid\"\n", "not an http(s) base URL"),
    ):
        with pytest.raises(UserError, match=re.escape(expected)):
            load_targets(_targets_file(tmp_path, body))


def test_a_missing_certificate_stops_a_command_with_one_line_and_exit_2(tmp_path: Path) -> None:
    path = _targets_file(tmp_path, '[t]\nclass = "local"\n[t.new]\nlegacy = "https://127.0.0.1:9/legacy"\n'
                                   f'ca = "{tmp_path / "gone.pem"}"\n')
    out = subprocess.run([sys.executable, "-m", "rxverify", "verify", "--target", "t", "--targets", str(path),
                          "--plan", "release-21.0", "--platform", "new"], capture_output=True, text=True, cwd=ROOT,
                         timeout=120, env={**os.environ, "RXVERIFY_REPORTS": str(tmp_path / "reports")})
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot read CA bundle" in lines[0] and "gone.pem" in lines[0], lines
    # and nothing was opened towards the platform: open_run refused before the guard existed
    with pytest.raises(UserError, match=r"gone\.pem"), open_run(load_targets(path)["t"], CONTRACTS, suite="cli"):
        pass


def test_assertions_of_a_test_target_never_come_from_the_repository(tmp_path: Path, domain: object) -> None:
    with pytest.raises(UserError, match="inside the repository"):
        AssertionFiles({"pharmacy": str(ROOT / "contracts" / "x.xml")}, "t", ROOT)
    minted = _minter(domain).assertion(Caller("pharmacy"), b"\x30\x00")
    as_xml, as_b64 = tmp_path / "a.xml", tmp_path / "a.b64"
    as_xml.write_bytes(minted)
    as_b64.write_text(base64url(minted))
    files = AssertionFiles({"pharmacy-1": str(as_xml), "pharmacy": str(as_b64)}, "t", ROOT)
    assert files.assertion(Caller("pharmacy", 0), ACTORS) == minted  # by holder
    assert files.assertion(Caller("pharmacy", 3), ACTORS) == minted  # by role, decoded from base64url
    with pytest.raises(UserError, match="no assertion file for careunit-4000000 or prescriber"):
        files.assertion(Caller("prescriber"), ACTORS)
    (tmp_path / "junk").write_text("not an assertion")
    with pytest.raises(UserError, match="neither a SAML assertion"):
        AssertionFiles({"pharmacy": str(tmp_path / "junk")}, "t", ROOT).assertion(Caller("pharmacy"), ACTORS)


def test_configured_credentials_pick_the_callers_certificate_and_bundle_the_cas(tmp_path: Path,
                                                                              domain: object) -> None:
    from rxverify.target.trust import TrustDomain

    assert isinstance(domain, TrustDomain)
    ph, care = domain.client("pharmacy-1", "internet"), domain.client("careunit-4000000", "sjunet")
    body = (f'[t]\nclass = "test"\n[t.old]\nlegacy = "https://stp.invalid/legacy"\nca = "{domain.ca("internet")}"\n'
            f'[t.new]\nlegacy = "https://ecp.invalid/legacy"\nca = "{domain.ca("sjunet")}"\n'
            f'[t.new.sjunet]\nlegacy = "https://ecp.sjunet.invalid/legacy"\nca = "{domain.ca("sjunet")}"\n'
            f'[t.clients.pharmacy]\ncert = "{ph.cert}"\nkey = "{ph.key}"\n'
            f'[t.clients.prescriber.sjunet]\ncert = "{care.cert}"\nkey = "{care.key}"\n'
            f'[t.assertions]\nservice = "https://biljett.invalid/ticket"\n')
    target = load_targets(_targets_file(tmp_path, body))["t"]
    check_files(target)
    credentials = configured_credentials(target, ACTORS, CONTRACTS, tmp_path)
    assert credentials.client(Caller("pharmacy", 4)).cert == ph.cert
    assert credentials.client(Caller("prescriber"), "sjunet").cert == care.cert
    with pytest.raises(UserError, match="no client certificate for careunit-4000000 or prescriber"):
        credentials.client(Caller("prescriber"), "internet")
    bundle = credentials.ca("internet")
    assert bundle is not None and bundle.read_bytes().count(b"BEGIN CERTIFICATE") == 2  # old's and new's CAs
    assert credentials.ca("sjunet") == domain.ca("sjunet")


# ---- secrets never reach a report ----


def test_assertions_keys_certificates_and_tokens_are_redacted(domain: object, registry: Registry) -> None:
    from rxverify.target.trust import TrustDomain

    assert isinstance(domain, TrustDomain)
    minted = _minter(domain).assertion(Caller("pharmacy"), domain.client("pharmacy-1", "internet").der).decode()
    secrets_in = {
        "xml": f"request body: <s:Header>{wsse_security(minted.encode()).decode()}</s:Header> sent",
        "escaped": "shown as " + minted.replace("<", "&lt;").replace(">", "&gt;"),
        "cut off": "body (first 300 characters): " + minted[:300],
        "base64url": f"grant_type=saml2-bearer&assertion={base64url(minted.encode())}",
        "base64 in json": json.dumps({"saml": base64.b64encode(minted.encode()).decode()}),
        "key": "key file: " + domain.issuer_key.read_text(),
        "certificate": "cert: " + domain.client("pharmacy-1", "internet").cert.read_text(),
        "token json": json.dumps({"access_token": "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlIQ",
                                  "refresh_token": "Zk9vQmFyQmF6UXV4MTIzNDU2Nzg5MA"}),
    }
    for name, text in secrets_in.items():
        cleaned = redact_text(text)
        assert REDACTED in cleaned, name
        for needle in ("SignatureValue", "X509Certificate>MI", "PRIVATE KEY-----\nMI", "MIIB", "Zk9vQmFyQmF6",
                       base64url(minted.encode())[:80]):
            assert needle not in cleaned, (name, needle)
        assert scan_text(text, registry, name), name  # the report's scan refuses it
    assert redact_text("AssertionError: <Assertion> of a test") == "AssertionError: <Assertion> of a test"
