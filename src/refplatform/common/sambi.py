"""SAMBI tickets as a platform verifies them: a signed SAML 2.0 assertion, bound to the caller's client certificate.

The old interface carries the assertion in the SOAP header's `wsse:Security`; the new platform's
token endpoint takes it base64url-encoded (RFC 7522). Either way one verifier decides, in this order:
exactly one assertion; its XML signature (signxml, trusting only the ticket issuer's certificate
given at start, and reading everything from what the signature covers, never from the rest of the
document); issuer; NotBefore/NotOnOrAfter (with the profile's clock skew); audience; level of
assurance; the holder-of-key binding (the certificate in SubjectConfirmation is the TLS client
certificate of this connection); then the attributes of contracts/security/sambi.toml as an Actor.
"""

from __future__ import annotations

import base64
import binascii
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.exceptions import SignXMLException

from refplatform.common.config import PlatformConfig
from refplatform.common.faults import FaultSet, register
from refplatform.common.tickets import Actor, TicketError
from refplatform.common.tls import thumbprint

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SECURITY = f"{{{WSSE}}}Security"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
ASSERTION = f"{{{SAML}}}Assertion"
MAX_ASSERTION_BYTES = 64 * 1024  # an assertion is a few kilobytes; anything far larger is not one
# No DTD, no entities, no network: an assertion is data from a caller.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)

FAULT_UNSIGNED = register(
    "sambi-accepts-unsigned", "both", "security",
    "an assertion without ds:Signature is accepted (one that has a signature is still verified), on the old "
    "interface's wsse:Security and at the token endpoint",
).name
FAULT_AUDIENCE = register(
    "sambi-ignores-audience", "both", "security",
    "the assertion's AudienceRestriction is not checked: an assertion issued for another service is accepted",
).name
FAULT_ANY_CERTIFICATE = register(
    "sambi-any-certificate", "both", "security",
    "the holder-of-key binding is not checked: any client certificate the CA issued may carry any actor's "
    "assertion (another actor's certificate with this actor's assertion is accepted)",
).name


@dataclass(frozen=True)
class SambiProfile:
    """contracts/security/sambi.toml: what a valid assertion says, and the token endpoint's names."""

    issuer: str
    audience: str
    level_of_assurance: str
    subject_confirmation: str
    clock_skew_s: int
    attributes: dict[str, str]  # our key -> SAML Attribute Name
    licenses: dict[str, str]  # healthcareProfessionalLicense -> role
    token_path: str
    grant_type: str
    token_audience: str


def load_profile(contracts: Path) -> SambiProfile:
    """Read contracts/security/sambi.toml (KeyError, OSError or ValueError when it cannot be used)."""
    raw = tomllib.loads((contracts / "security" / "sambi.toml").read_text(encoding="utf-8"))
    a, t = raw["assertion"], raw["token"]
    return SambiProfile(
        issuer=a["issuer"], audience=a["audience"], level_of_assurance=a["level_of_assurance"],
        subject_confirmation=a["subject_confirmation"], clock_skew_s=int(a["clock_skew_s"]),
        attributes=dict(raw["attributes"]), licenses=dict(raw["licenses"]),
        token_path=t["path"], grant_type=t["grant_type"], token_audience=t["audience"],
    )


def platform_verifier(config: PlatformConfig) -> SambiVerifier | None:
    """The verifier of a platform started with `--auth saml` (None with `--auth jwt`)."""
    if config.auth != "saml":
        return None
    if config.issuer_cert is None:
        raise ValueError("--auth saml needs the ticket issuer's certificate (--issuer-cert)")
    return SambiVerifier(load_profile(config.contracts), config.issuer_cert, config.faults)


def _refuse(message: str) -> TicketError:
    return TicketError(401, f"SAMBI-biljetten avvisas: {message}")


def _instant(value: str | None, what: str) -> datetime:
    if not value:
        raise _refuse(f"{what} saknas")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _refuse(f"{what} {value!r} är ingen tidpunkt") from None
    if moment.tzinfo is None:
        raise _refuse(f"{what} {value!r} saknar tidszon")
    return moment


def _certificate_der(text: str | None) -> bytes | None:
    if not text:
        return None
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


class SambiVerifier:
    """Verifies SAMBI assertions for one platform: the issuer's certificate, the profile, the seeded faults."""

    def __init__(self, profile: SambiProfile, issuer_cert_pem: bytes, faults: FaultSet) -> None:
        self.profile = profile
        self.issuer_cert = issuer_cert_pem.decode("ascii")
        self.faults = faults
        self._names = {name: key for key, name in profile.attributes.items()}

    # ---- where the assertion comes from ----

    def from_security_header(self, header: tuple[etree._Element, ...], peer_cert: bytes | None) -> Actor:
        """The caller of a SOAP request: the one assertion in the one wsse:Security header entry."""
        entries = [e for e in header if e.tag == SECURITY]
        if not entries:
            raise _refuse("SOAP-headern saknar wsse:Security med en SAML-assertion")
        if len(entries) > 1:
            raise _refuse("SOAP-headern har wsse:Security mer än en gång")
        assertions = [c for c in entries[0] if c.tag == ASSERTION]
        if len(assertions) != 1:
            raise _refuse(f"wsse:Security ska ha exakt en saml2:Assertion (har {len(assertions)})")
        # verified as a document of its own: exclusive canonicalisation makes the envelope around it irrelevant
        standalone = etree.fromstring(etree.tostring(assertions[0]), _PARSER)
        return self.actor(standalone, peer_cert)

    def from_base64(self, text: str, peer_cert: bytes | None) -> Actor:
        """The caller of a token request: the base64url assertion of RFC 7522 (padding optional)."""
        compact = "".join(text.split())
        if not compact or len(compact) > MAX_ASSERTION_BYTES * 4 // 3 + 4:
            raise _refuse("assertion saknas eller är för stor")
        try:
            raw = base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
        except (binascii.Error, ValueError):
            raise _refuse("assertion är inte base64url") from None
        try:
            root = etree.fromstring(raw, _PARSER)
        except etree.XMLSyntaxError as exc:
            raise _refuse(f"assertion är inte XML: {exc.msg}") from None
        if root.getroottree().docinfo.doctype:
            raise _refuse("en assertion får inte ha en DTD")
        return self.actor(root, peer_cert)

    # ---- the checks ----

    def actor(self, assertion: etree._Element, peer_cert: bytes | None, now: datetime | None = None) -> Actor:
        """Verify one assertion (a document of its own) and return who it says calls."""
        if assertion.tag != ASSERTION:
            raise _refuse(f"väntade saml2:Assertion, fick {assertion.tag}")
        signed = self._signed(assertion)
        self._check_issuer(signed)
        self._check_validity(signed, now or datetime.now(UTC))
        if not self.faults.on(FAULT_AUDIENCE):
            self._check_audience(signed)
        self._check_assurance(signed)
        bound = self._check_binding(signed, peer_cert)
        return self._actor(signed, bound)

    def _signed(self, assertion: etree._Element) -> etree._Element:
        signature = assertion.find(f"{{{DS}}}Signature")
        if signature is None:
            if self.faults.on(FAULT_UNSIGNED):
                return assertion
            raise _refuse("assertion är inte signerad")
        try:
            result = XMLVerifier().verify(
                assertion, x509_cert=self.issuer_cert, expect_config=SignatureConfiguration(location="./")
            )
        except (SignXMLException, ValueError) as exc:
            raise _refuse(f"signaturen håller inte: {exc}") from None
        signed = result.signed_xml  # type: ignore[union-attr]
        # what the signature covers must be this assertion itself, not an element inside it
        if not isinstance(signed, etree._Element) or signed.tag != ASSERTION or signed.get("ID") != assertion.get("ID"):
            raise _refuse("signaturen omfattar inte assertion")
        return signed

    def _check_issuer(self, signed: etree._Element) -> None:
        issuer = (signed.findtext(f"{{{SAML}}}Issuer") or "").strip()
        if issuer != self.profile.issuer:
            raise _refuse(f"utfärdaren {issuer or '(ingen)'} är inte {self.profile.issuer}")

    def _check_validity(self, signed: etree._Element, now: datetime) -> None:
        conditions = signed.find(f"{{{SAML}}}Conditions")
        if conditions is None:
            raise _refuse("Conditions saknas")
        skew = timedelta(seconds=self.profile.clock_skew_s)
        not_before = conditions.get("NotBefore")
        if not_before is not None and now + skew < _instant(not_before, "NotBefore"):
            raise _refuse(f"giltig först från {not_before}")
        not_after = _instant(conditions.get("NotOnOrAfter"), "NotOnOrAfter")
        if now - skew >= not_after:
            raise _refuse(f"giltig till {conditions.get('NotOnOrAfter')}: utgången")

    def _check_audience(self, signed: etree._Element) -> None:
        audiences = [(a.text or "").strip() for a in signed.iterfind(
            f"{{{SAML}}}Conditions/{{{SAML}}}AudienceRestriction/{{{SAML}}}Audience")]
        if self.profile.audience not in audiences:
            raise _refuse(f"utfärdad för {', '.join(audiences) or '(ingen mottagare)'}, inte {self.profile.audience}")

    def _check_assurance(self, signed: etree._Element) -> None:
        levels = [(c.text or "").strip() for c in signed.iterfind(
            f"{{{SAML}}}AuthnStatement/{{{SAML}}}AuthnContext/{{{SAML}}}AuthnContextClassRef")]
        if self.profile.level_of_assurance not in levels:
            raise _refuse(f"tillitsnivå {', '.join(levels) or '(ingen)'} är inte {self.profile.level_of_assurance}")

    def _check_binding(self, signed: etree._Element, peer_cert: bytes | None) -> bytes | None:
        """The certificate the assertion is bound to, checked against the connection's (holder of key)."""
        confirmations = [c for c in signed.iterfind(f"{{{SAML}}}Subject/{{{SAML}}}SubjectConfirmation")
                         if c.get("Method") == self.profile.subject_confirmation]
        if len(confirmations) != 1:
            raise _refuse(f"assertion ska ha en SubjectConfirmation med metoden {self.profile.subject_confirmation}")
        data = confirmations[0].find(f"{{{SAML}}}SubjectConfirmationData")
        certs = [] if data is None else [_certificate_der(c.text) for c in data.iterfind(
            f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate")]
        if len(certs) != 1 or certs[0] is None:
            raise _refuse("SubjectConfirmation ska bära exakt ett X.509-certifikat (holder of key)")
        if self.faults.on(FAULT_ANY_CERTIFICATE):
            return certs[0]
        if peer_cert is None:
            raise _refuse("ingen klientcertifikat i anslutningen: assertion kan inte knytas till anroparen")
        if certs[0] != peer_cert:
            raise _refuse("assertion är utfärdad för ett annat klientcertifikat än anslutningens")
        return certs[0]

    def _attributes(self, signed: etree._Element) -> dict[str, str]:
        values: dict[str, str] = {}
        for attribute in signed.iterfind(f"{{{SAML}}}AttributeStatement/{{{SAML}}}Attribute"):
            key = self._names.get(attribute.get("Name", ""))
            if key is None:
                continue  # an attribute of the profile we do not use
            found = [(v.text or "").strip() for v in attribute.iterfind(f"{{{SAML}}}AttributeValue")]
            if len(found) != 1 or not found[0]:
                raise _refuse(f"attributet {attribute.get('Name')} ska ha exakt ett värde")
            if key in values:
                raise _refuse(f"attributet {attribute.get('Name')} förekommer mer än en gång")
            values[key] = found[0]
        return values

    def _actor(self, signed: etree._Element, bound: bytes | None) -> Actor:
        name_id = (signed.findtext(f"{{{SAML}}}Subject/{{{SAML}}}NameID") or "").strip()
        if not name_id:
            raise _refuse("Subject saknar NameID")
        values = self._attributes(signed)
        license_code = values.get("license")
        role = self.profile.licenses.get(license_code or "")
        if role is None:
            raise _refuse(f"yrkeslegitimation {license_code or '(ingen)'} ger ingen roll här "
                          f"(känner {', '.join(sorted(self.profile.licenses))})")
        if role == "pharmacy" and not values.get("gln"):
            raise _refuse("en farmaceuts assertion saknar pharmacyIdentifier (GLN)")
        if role == "prescriber" and not (values.get("hsa_id") and values.get("forskrivarkod")
                                         and values.get("arbetsplatskod")):
            raise _refuse("en förskrivares assertion saknar HSA-id, förskrivarkod eller arbetsplatskod")
        return Actor(
            role=role, actor_id=name_id, hsa_id=values.get("hsa_id"), forskrivarkod=values.get("forskrivarkod"),
            arbetsplatskod=values.get("arbetsplatskod"), gln=values.get("gln"), license=license_code,
            legitimationskod=values.get("legitimationskod"),
            certificate=thumbprint(bound) if bound is not None else None,
        )
