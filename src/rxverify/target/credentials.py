"""Credentials of test actors: JWT tickets (minted from the local key, or from the environment) and SAMBI assertions.

SAMBI assertions (signed SAML 2.0, contracts/security/sambi.toml) are minted for local actors by
`AssertionMinter`, the local ticket issuer; for a test environment they come from a file the target
names (`AssertionFiles`, never from the repository) or from its ticket service (`TicketService`).
A `Caller` names who calls and through which system; `Credentials` holds, for one run, where each
caller's client certificate, the servers' CAs and the assertions come from.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
import tomllib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt

from rxverify.errors import UserError
from rxverify.target.trust import DEFAULT_ENTRY, FORSKRIVNINGSKOLLEN, ClientCertificate

if TYPE_CHECKING:
    import requests

ISSUER = "rxverify-local"
TICKET_LIFETIME_S = 3600  # one hour: longer than any bounded run of the suite


@dataclass(frozen=True)
class TestActors:
    """Prescribers, care units and pharmacies from contracts/testdata/test-actors.json."""

    __test__ = False

    prescribers: list[dict[str, Any]]
    care_units: list[dict[str, Any]]
    pharmacies: list[dict[str, Any]]


_LETTERS_FOR_DIGITS = str.maketrans("0123456789", "ghijklmnop")


def load_actors(path: Path) -> TestActors:
    """Read the test actors; bad input is one UserError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return TestActors(data["prescribers"], data["careUnits"], data["pharmacies"])
    except OSError as exc:
        raise UserError(f"cannot read test actors {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"test actors file {path} is malformed: {exc}") from None


class TicketMinter:
    """Signs tickets for test actors with the key only the local target knows."""

    def __init__(self, key: bytes, actors: TestActors) -> None:
        self._key = key
        self.actors = actors

    def claims(self, role: str, index: int = 0) -> dict[str, Any]:
        """The claims of test actor `index` of `role` (prescriber or pharmacy)."""
        if role == "prescriber":
            p = self.actors.prescribers[index % len(self.actors.prescribers)]
            return {
                "sub": p["id"],
                "role": role,
                "hsaId": p["hsaId"],
                "forskrivarkod": p["forskrivarkod"],
                "arbetsplatskod": p["careUnit"],
            }
        if role == "pharmacy":
            ph = self.actors.pharmacies[index % len(self.actors.pharmacies)]
            return {"sub": ph["id"], "role": role, "gln": ph["gln"]}
        raise UserError(f"unknown actor role {role!r} (prescriber or pharmacy)")

    def ticket(self, role: str, index: int = 0, **override: Any) -> str:
        """A signed ticket for a test actor; `override` changes claims (for negative tests)."""
        now = int(time.time())
        claims = {**self.claims(role, index), "iss": ISSUER, "iat": now, "exp": now + TICKET_LIFETIME_S, **override}
        return jwt.encode(claims, self._key, algorithm="HS256")


class EnvironmentTickets:
    """Tickets of a real environment, read from the environment variables targets.toml names."""

    def __init__(self, variables: dict[str, str], target: str) -> None:
        self.variables = variables
        self.target = target

    def ticket(self, role: str, index: int = 0, **override: Any) -> str:
        """The configured ticket for `role` (one actor per role on real targets)."""
        if override:
            raise UserError("tickets of a real target cannot be altered; negative ticket tests run on local targets")
        variable = self.variables.get(role)
        if not variable:
            raise UserError(f"target {self.target!r} configures no ticket for role {role!r} (tickets.{role})")
        value = os.environ.get(variable)
        if not value:
            raise UserError(f"target {self.target!r}: environment variable {variable} (ticket for {role}) is not set")
        return value


# ---- SAMBI assertions ("Säker åtkomst") ----

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
VALIDITY_LEEWAY_S = 60  # NotBefore this far back: the platform's clock may run a little behind ours
ROLE_LICENSE = {"prescriber": "LK", "pharmacy": "AP"}  # sambi.toml [licenses], the other way


@dataclass(frozen=True)
class SambiProfile:
    """contracts/security/sambi.toml as the suite writes assertions and exchanges them."""

    issuer: str
    audience: str
    level_of_assurance: str
    subject_confirmation: str
    name_id_format: str
    lifetime_s: int
    attributes: dict[str, str]
    token_path: str
    grant_type: str


def load_profile(contracts: Path) -> SambiProfile:
    """Read contracts/security/sambi.toml; bad input is one UserError."""
    path = contracts / "security" / "sambi.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        a, t = raw["assertion"], raw["token"]
        return SambiProfile(a["issuer"], a["audience"], a["level_of_assurance"], a["subject_confirmation"],
                            a["name_id_format"], int(a["lifetime_s"]), dict(raw["attributes"]), t["path"],
                            t["grant_type"])
    except OSError as exc:
        raise UserError(f"cannot read the SAMBI profile {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"SAMBI profile {path} is malformed: {exc}") from None


@dataclass(frozen=True)
class Caller:
    """Who calls: a person (test actor `index` of `role`) through a system (the holder of the client certificate).

    A pharmacist calls through their pharmacy's system, a prescriber through the care system of
    their care unit, or (`via="forskrivningskollen"`) through Förskrivningskollen.
    """

    role: str
    index: int = 0
    via: str | None = None

    def person(self, actors: TestActors) -> dict[str, Any]:
        """The test actor this caller is."""
        if self.role not in ROLE_LICENSE:
            raise UserError(f"unknown actor role {self.role!r} (prescriber or pharmacy)")
        pool = actors.prescribers if self.role == "prescriber" else actors.pharmacies
        return pool[self.index % len(pool)]

    def holder(self, actors: TestActors) -> str:
        """The certificate holder it calls through (rxverify.target.trust names them)."""
        person = self.person(actors)
        if self.via == FORSKRIVNINGSKOLLEN:
            if self.role != "prescriber":
                raise UserError("only prescribers call through Förskrivningskollen")
            return FORSKRIVNINGSKOLLEN
        if self.via is not None:
            raise UserError(f"unknown calling system {self.via!r} (the role's own, or {FORSKRIVNINGSKOLLEN})")
        return f"careunit-{person['careUnit']}" if self.role == "prescriber" else str(person["id"])

    def names(self, actors: TestActors) -> tuple[str, ...]:
        """The names a target's configuration may file this caller's credentials under, most specific first."""
        return tuple(dict.fromkeys((self.holder(actors), self.via or self.role, self.role)))


def as_caller(actor: Caller | str) -> Caller:
    """A Caller, from a Caller or a role name (its first test actor)."""
    return actor if isinstance(actor, Caller) else Caller(actor)


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class AssertionMinter:
    """The local ticket issuer: SAMBI assertions for test actors, signed (signxml) with the local issuer's key."""

    def __init__(self, issuer_key: bytes, issuer_cert: bytes, actors: TestActors, profile: SambiProfile) -> None:
        self._key = issuer_key
        self._cert = issuer_cert.decode("ascii")
        self.actors = actors
        self.profile = profile

    def attributes(self, caller: Caller) -> dict[str, str]:
        """The SAMBI attributes of a caller, by the profile's keys."""
        p = caller.person(self.actors)
        values = {"license": ROLE_LICENSE[caller.role], "legitimationskod": p["legitimationskod"]}
        if caller.role == "prescriber":
            values.update(hsa_id=p["hsaId"], forskrivarkod=p["forskrivarkod"], arbetsplatskod=p["careUnit"])
        else:
            values["gln"] = p["gln"]
        return values

    def assertion(self, caller: Caller, certificate_der: bytes, *, now: datetime | None = None,
                  lifetime_s: int | None = None, audience: str | None = None, issuer: str | None = None,
                  name_id: str | None = None, attributes: Mapping[str, str | None] | None = None,
                  signed: bool = True) -> bytes:
        """An assertion for `caller`, bound (holder of key) to the client certificate `certificate_der`.

        The keyword arguments change what it says, for tests of refusals (a real issuer's are fixed).
        """
        from lxml import etree
        from signxml import XMLSigner, methods
        from signxml.algorithms import CanonicalizationMethod

        prof = self.profile
        start = now or datetime.now(UTC)
        # letters only (128 random bits): a hex id holds a run of digits that reads as a personal identity
        # number in about 1 of 6,000 assertions, which the guard then refuses (power, sambi-accepts-unsigned)
        ident = "_" + uuid.uuid4().hex.translate(_LETTERS_FOR_DIGITS)
        root = etree.Element(f"{{{SAML}}}Assertion", nsmap={"saml2": SAML, "ds": DS, "xsi": XSI},
                             ID=ident, Version="2.0", IssueInstant=_instant(start))
        etree.SubElement(root, f"{{{SAML}}}Issuer").text = issuer or prof.issuer
        if signed:
            etree.SubElement(root, f"{{{DS}}}Signature", Id="placeholder")  # signxml puts the signature here
        subject = etree.SubElement(root, f"{{{SAML}}}Subject")
        values = {**self.attributes(caller), **(attributes or {})}
        etree.SubElement(subject, f"{{{SAML}}}NameID", Format=prof.name_id_format).text = (
            name_id or values.get("legitimationskod") or caller.person(self.actors)["id"])
        confirmation = etree.SubElement(subject, f"{{{SAML}}}SubjectConfirmation", Method=prof.subject_confirmation)
        data = etree.SubElement(confirmation, f"{{{SAML}}}SubjectConfirmationData",
                                {f"{{{XSI}}}type": "saml2:KeyInfoConfirmationDataType"})
        x509_data = etree.SubElement(etree.SubElement(data, f"{{{DS}}}KeyInfo"), f"{{{DS}}}X509Data")
        etree.SubElement(x509_data, f"{{{DS}}}X509Certificate").text = base64.b64encode(certificate_der).decode()
        until = start + timedelta(seconds=prof.lifetime_s if lifetime_s is None else lifetime_s)
        conditions = etree.SubElement(root, f"{{{SAML}}}Conditions",
                                      NotBefore=_instant(start - timedelta(seconds=VALIDITY_LEEWAY_S)),
                                      NotOnOrAfter=_instant(until))
        restriction = etree.SubElement(conditions, f"{{{SAML}}}AudienceRestriction")
        etree.SubElement(restriction, f"{{{SAML}}}Audience").text = audience or prof.audience
        authn = etree.SubElement(root, f"{{{SAML}}}AuthnStatement", AuthnInstant=_instant(start))
        context = etree.SubElement(authn, f"{{{SAML}}}AuthnContext")
        etree.SubElement(context, f"{{{SAML}}}AuthnContextClassRef").text = prof.level_of_assurance
        statement = etree.SubElement(root, f"{{{SAML}}}AttributeStatement")
        for key, value in values.items():
            if value is None:
                continue
            attribute = etree.SubElement(statement, f"{{{SAML}}}Attribute", Name=prof.attributes[key])
            etree.SubElement(attribute, f"{{{SAML}}}AttributeValue").text = value
        if signed:
            signer = XMLSigner(method=methods.enveloped,
                               c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
            root = signer.sign(root, key=self._key, cert=self._cert, reference_uri=ident)
        return bytes(etree.tostring(root))


class AssertionFiles:
    """Assertions a test target's operators put in files (outside the repository), named in targets.toml."""

    def __init__(self, files: Mapping[str, str], target: str, repository: Path) -> None:
        self.files = dict(files)
        self.target = target
        for name, file in self.files.items():
            if Path(file).resolve().is_relative_to(repository.resolve()):
                raise UserError(f"target {target!r}: assertion file {file} ({name}) is inside the repository; "
                                "assertions never live there")

    def assertion(self, caller: Caller, actors: TestActors) -> bytes:
        """The assertion filed under the caller's holder, calling system or role (read anew each time)."""
        for name in caller.names(actors):
            if name in self.files:
                path = Path(self.files[name])
                try:
                    raw = path.read_bytes().strip()
                except OSError as exc:
                    raise UserError(f"target {self.target!r}: cannot read assertion file {path}: "
                                    f"{exc.strerror}") from None
                return _assertion_bytes(raw, f"assertion file {path}")
        raise UserError(f"target {self.target!r} names no assertion file for {' or '.join(caller.names(actors))} "
                        "(assertions.files)")


def _assertion_bytes(raw: bytes, where: str) -> bytes:
    """An assertion as XML: given as XML, or base64/base64url of it."""
    if raw.startswith(b"<"):
        return raw
    try:
        compact = b"".join(raw.split())
        decoded = base64.urlsafe_b64decode(compact.replace(b"+", b"-").replace(b"/", b"_") + b"=" * (-len(compact) % 4))
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded.lstrip().startswith(b"<"):
        raise UserError(f"{where} holds neither a SAML assertion nor base64 of one")
    return decoded


def wsse_security(assertion: bytes) -> bytes:
    """The SOAP header entry that carries an assertion: wsse:Security (mustUnderstand) around it."""
    return (f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:soapenv="{SOAP11}" soapenv:mustUnderstand="1">'.encode()
            + assertion + b"</wsse:Security>")


def base64url(assertion: bytes) -> str:
    """An assertion as the token endpoint takes it (RFC 7522 §2.1: base64url, no padding)."""
    return base64.urlsafe_b64encode(assertion).rstrip(b"=").decode("ascii")


class TicketService:
    """A test environment's ticket service (targets.toml `assertions.service`), asked through the guard.

    *Assumption*: the agency's test ticket generator has no public interface; rxverify POSTs the
    form `holder`, `role`, `entry` over the caller's own client certificate and takes the answer's
    body, the assertion as XML or base64, as it comes.
    """

    def __init__(self, url: str, target: str) -> None:
        self.url = url
        self.target = target

    def assertion(self, caller: Caller, actors: TestActors, entry: str, session: requests.Session) -> bytes:
        """An assertion for `caller`, fetched over `session` (a guarded session presenting its certificate)."""
        import requests

        form = {"holder": caller.holder(actors), "role": caller.role, "entry": entry}
        try:
            answer = session.post(self.url, data=form, timeout=30)
        except requests.RequestException as exc:
            raise UserError(f"target {self.target!r}: ticket service {self.url} unreachable: "
                            f"{type(exc).__name__}") from None
        if answer.status_code != 200:
            raise UserError(f"target {self.target!r}: ticket service {self.url} answered {answer.status_code} "
                            f"for {form['holder']}")
        return _assertion_bytes(answer.content.strip(), f"the answer of ticket service {self.url}")


AssertionSource = AssertionMinter | AssertionFiles | TicketService


@dataclass
class Credentials:
    """A run's credentials: each caller's client certificate, the servers' CAs per entry point, the assertions."""

    actors: TestActors
    certificate: Callable[[Caller, str], ClientCertificate]  # (caller, entry point) -> its client certificate
    cas: dict[str, Path | None]  # entry point -> the CA bundle of its servers (None: the system's CAs)
    source: AssertionSource | None  # None: the target names no source of assertions
    profile_grant_type: str  # the token endpoint's grant type for assertions (sambi.toml [token])
    default_entry: str = DEFAULT_ENTRY

    def entry(self, entry: str | None) -> str:
        """The entry point meant: `entry`, or the target's default."""
        name = entry or self.default_entry
        if name not in self.cas:
            raise UserError(f"no entry point {name!r} on this target (entry points: {', '.join(self.cas)})")
        return name

    def client(self, caller: Caller, entry: str | None = None) -> ClientCertificate:
        """The client certificate `caller` presents on an entry point."""
        return self.certificate(caller, self.entry(entry))

    def ca(self, entry: str | None = None) -> Path | None:
        """The CA bundle of an entry point's servers (None: the system's)."""
        return self.cas[self.entry(entry)]

    def assertion(self, caller: Caller, entry: str | None, session: requests.Session) -> bytes:
        """A SAMBI assertion for `caller`, bound to its client certificate on the entry point."""
        name = self.entry(entry)
        if self.source is None:
            raise UserError("this target names no source of SAMBI assertions (targets.toml assertions)")
        if isinstance(self.source, AssertionMinter):
            return self.source.assertion(caller, self.client(caller, name).der)
        if isinstance(self.source, AssertionFiles):
            return self.source.assertion(caller, self.actors)
        return self.source.assertion(caller, self.actors, name, session)
