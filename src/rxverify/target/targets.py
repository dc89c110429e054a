"""Targets: named environments from contracts/targets.toml, or platforms given by base URL.

contracts/targets.toml documents every field. Per platform, the URLs of its default entry point
(and per other entry point, `[<target>.<platform>.<entry>]`, its own URLs and CA bundle); per
caller `[<target>.clients.<name>]` a client certificate and key; `[<target>.assertions]` where
SAMBI assertions come from. Files are checked when a target is used (`check_files`): a missing or
unreadable certificate, key or CA file is one UserError naming it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rxverify.errors import UserError

CLASSES = ("local", "test", "production")
PLATFORMS = ("old", "new", "old-secondary")  # old-secondary: a second old instance, for the differential
ENTRY_POINTS = ("internet", "sjunet")  # the callers' two ways in (DOMAIN.md: "over the Internet and Sjunet")
DEFAULT_ENTRY = "internet"
URL_FIELDS = ("legacy", "fhir", "token")


@dataclass(frozen=True)
class Endpoints:
    """Where one platform answers on one entry point, and (`others`) its other entry points."""

    legacy: str | None = None  # base URL of the old service interface
    fhir: str | None = None  # base URL of the FHIR API (new platform only)
    token: str | None = None  # URL of the token endpoint (new platform, `--auth saml`)
    ca: str | None = None  # CA bundle the servers of this entry point verify against
    name: str = DEFAULT_ENTRY  # the entry point these are
    others: dict[str, Endpoints] = field(default_factory=dict)

    def entry(self, name: str | None = None) -> Endpoints | None:
        """This platform on entry point `name` (None: the default one); None if it has no such entry point."""
        if name is None or name == self.name:
            return self
        return self.others.get(name)

    def entry_points(self) -> list[Endpoints]:
        """Every entry point of the platform, the default first."""
        return [self, *self.others.values()]


@dataclass(frozen=True)
class ClientConfig:
    """A caller's client certificate in targets.toml, and per entry point another one where it differs."""

    cert: str | None = None
    key: str | None = None
    entries: dict[str, tuple[str, str]] = field(default_factory=dict)

    def files(self, entry: str) -> tuple[str, str] | None:
        """(certificate, key) presented on an entry point."""
        if entry in self.entries:
            return self.entries[entry]
        return (self.cert, self.key) if self.cert and self.key else None


@dataclass(frozen=True)
class Target:
    """An environment to verify."""

    name: str
    environment_class: str
    description: str = ""
    platforms: dict[str, Endpoints] = field(default_factory=dict)
    tickets: dict[str, str] = field(default_factory=dict)  # role -> environment variable name
    registry: str | None = None  # path of the test-patient registry for this target
    tls: dict[str, str] = field(default_factory=dict)  # cert, key, ca of sessions that name no caller
    clients: dict[str, ClientConfig] = field(default_factory=dict)  # holder, calling system or role -> certificate
    assertions: dict[str, Any] = field(default_factory=dict)  # `service` (URL) or `files` (name -> path)

    @property
    def is_local(self) -> bool:
        """Whether the run starts the embedded reference platforms itself."""
        return self.environment_class == "local" and not self.platforms


def _check_url(url: str, where: str) -> str:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (urlsplit checks the port only when it is read)
    except ValueError:
        raise UserError(f"{where}: {url!r} has no valid port (1-65535)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"{where}: {url!r} is not an http(s) base URL")
    return url.rstrip("/")


def _legacy_base(url: str, option: str) -> str:
    """The legacy interface's base of a platform given by its root URL (or by that base itself)."""
    base = _check_url(url, option)
    return base if base.endswith("/legacy") else base + "/legacy"


def load_targets(path: Path) -> dict[str, Target]:
    """Read targets.toml; a malformed file is one UserError naming the problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read targets file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"targets file {path} is not valid TOML: {exc}") from None
    targets = {}
    for name, raw in data.items():
        if not isinstance(raw, dict):
            raise UserError(f"targets file {path}: [{name}] must be a table")
        targets[name] = _target(name, raw, path)
    return targets


def _entry(fields: dict[str, Any], where: str, entry: str, path: Path) -> Endpoints:
    unknown = sorted(set(fields) - {*URL_FIELDS, "ca"})
    if unknown:
        raise UserError(f"targets file {path}: [{where}] has unknown field {unknown[0]!r} "
                        f"(known: {', '.join((*URL_FIELDS, 'ca'))}, or an entry point {', '.join(ENTRY_POINTS)})")
    legacy, fhir, token = (_check_url(str(fields[f]), f"{where}.{f}") if f in fields else None for f in URL_FIELDS)
    return Endpoints(legacy, fhir, token, ca=str(fields["ca"]) if "ca" in fields else None, name=entry)


def _platform(section: dict[str, Any], where: str, path: Path) -> Endpoints:
    """A platform's entry points: its own fields are the default one (internet); tables name the others."""
    tables = {k: v for k, v in section.items() if isinstance(v, dict)}
    for key in tables:
        if key not in ENTRY_POINTS:
            raise UserError(f"targets file {path}: [{where}.{key}] is not an entry point ({', '.join(ENTRY_POINTS)})")
    own = {k: v for k, v in section.items() if not isinstance(v, dict)}
    points = {e: _entry(t, f"{where}.{e}", e, path) for e, t in tables.items()}
    if own:
        if DEFAULT_ENTRY in points:
            raise UserError(f"targets file {path}: [{where}] gives URLs both directly and in [{where}.{DEFAULT_ENTRY}]")
        points = {DEFAULT_ENTRY: _entry(own, where, DEFAULT_ENTRY, path), **points}
    if not points:
        raise UserError(f"targets file {path}: [{where}] names no URL")
    default = DEFAULT_ENTRY if DEFAULT_ENTRY in points else next(iter(points))
    first = points.pop(default)
    return Endpoints(first.legacy, first.fhir, first.token, first.ca, first.name, points)


def _clients(raw: Any, where: str, path: Path) -> dict[str, ClientConfig]:
    if not isinstance(raw, dict):
        raise UserError(f"targets file {path}: [{where}.clients] must be a table of callers")
    clients = {}
    for holder, spec in raw.items():
        if not isinstance(spec, dict):
            raise UserError(f"targets file {path}: [{where}.clients.{holder}] must be a table (cert, key)")
        entries = {}
        for entry, files in spec.items():
            if not isinstance(files, dict):
                continue
            if entry not in ENTRY_POINTS or not {"cert", "key"} <= set(files):
                raise UserError(f"targets file {path}: [{where}.clients.{holder}.{entry}] must be an entry point "
                                "with cert and key")
            entries[entry] = (str(files["cert"]), str(files["key"]))
        cert, key = spec.get("cert"), spec.get("key")
        if (cert is None) != (key is None) or (cert is None and not entries):
            raise UserError(f"targets file {path}: [{where}.clients.{holder}] needs cert and key")
        clients[str(holder)] = ClientConfig(None if cert is None else str(cert), None if key is None else str(key),
                                            entries)
    return clients


def _assertions(raw: Any, where: str, path: Path) -> dict[str, Any]:
    if not isinstance(raw, dict) or not set(raw) <= {"service", "files"} or len(raw) != 1:
        raise UserError(f"targets file {path}: [{where}.assertions] takes exactly one of service (a URL) "
                        "or files (caller -> file)")
    if "service" in raw:
        return {"service": _check_url(str(raw["service"]), f"{where}.assertions.service")}
    if not isinstance(raw["files"], dict) or not raw["files"]:
        raise UserError(f"targets file {path}: {where}.assertions.files must map callers to files")
    return {"files": {str(k): str(v) for k, v in raw["files"].items()}}


def _target(name: str, raw: dict[str, Any], path: Path) -> Target:
    cls = raw.get("class")
    if cls not in CLASSES:
        raise UserError(f"targets file {path}: target {name!r} has class {cls!r}, expected one of {', '.join(CLASSES)}")
    platforms = {}
    for platform in PLATFORMS:
        section = raw.get(platform)
        if section is None:
            continue
        if not isinstance(section, dict):
            raise UserError(f"targets file {path}: [{name}.{platform}] must be a table")
        platforms[platform] = _platform(section, f"{name}.{platform}", path)
    if cls != "local" and not platforms:
        raise UserError(f"targets file {path}: target {name!r} of class {cls!r} names no platform URLs")
    return Target(
        name=name,
        environment_class=cls,
        description=str(raw.get("description", "")),
        platforms=platforms,
        tickets={str(k): str(v) for k, v in raw.get("tickets", {}).items()},
        registry=raw.get("registry"),
        tls={str(k): str(v) for k, v in raw.get("tls", {}).items()},
        clients=_clients(raw["clients"], name, path) if "clients" in raw else {},
        assertions=_assertions(raw["assertions"], name, path) if "assertions" in raw else {},
    )


PEM_MARKERS = {"certificate": b"-----BEGIN CERTIFICATE-----", "CA bundle": b"-----BEGIN CERTIFICATE-----",
               "key": b"PRIVATE KEY-----"}


def _check_file(file: str, what: str, where: str) -> None:
    try:
        data = Path(file).read_bytes()
    except OSError as exc:
        raise UserError(f"{where}: cannot read {what} {file}: {exc.strerror}") from None
    if PEM_MARKERS[what] not in data:
        raise UserError(f"{where}: {what} {file} is not PEM ({PEM_MARKERS[what].decode().strip('-')} expected)")


def check_files(target: Target) -> None:
    """Every certificate, key and CA file the target names exists, is readable and is PEM (UserError naming it)."""
    where = f"target {target.name!r}"
    if target.tls.get("cert"):
        _check_file(target.tls["cert"], "certificate", f"{where} tls.cert")
    if target.tls.get("key"):
        _check_file(target.tls["key"], "key", f"{where} tls.key")
    if target.tls.get("ca"):
        _check_file(target.tls["ca"], "CA bundle", f"{where} tls.ca")
    for platform, endpoints in target.platforms.items():
        for point in endpoints.entry_points():
            if point.ca:
                _check_file(point.ca, "CA bundle", f"{where} {platform}.{point.name}.ca")
    for holder, client in target.clients.items():
        pairs = ([("", (client.cert, client.key))] if client.cert and client.key else []) + [
            (f".{e}", files) for e, files in client.entries.items()]
        for suffix, (cert, key) in pairs:
            _check_file(cert, "certificate", f"{where} clients.{holder}{suffix}.cert")
            _check_file(key, "key", f"{where} clients.{holder}{suffix}.key")


def resolve_target(
    name: str,
    targets_file: Path,
    old_url: str | None = None,
    new_url: str | None = None,
    fhir_url: str | None = None,
    old_secondary_url: str | None = None,
) -> Target:
    """The target to run against: a name from targets.toml, or running platforms given by URL.

    An ad-hoc target (`--old-url`, `--old-secondary-url`, `--new-url`, `--fhir-url`, as
    `rxverify serve` prints them) is of class `test` unless it is on loopback, where it counts
    as `local`.
    """
    if old_secondary_url and not old_url:
        raise UserError("--old-secondary-url is a second old instance: give the first with --old-url")
    if old_url or new_url or fhir_url:
        platforms = {}
        if old_url:
            platforms["old"] = Endpoints(legacy=_legacy_base(old_url, "--old-url"))
        if old_secondary_url:
            platforms[PLATFORMS[2]] = Endpoints(legacy=_legacy_base(old_secondary_url, "--old-secondary-url"))
        if new_url or fhir_url:
            legacy = None
            if new_url:
                base = _check_url(new_url, "--new-url")
                legacy = base if base.endswith("/legacy") else base + "/legacy"
                fhir_url = fhir_url or (base.removesuffix("/legacy") + "/fhir")
            platforms["new"] = Endpoints(legacy=legacy, fhir=_check_url(fhir_url, "--fhir-url") if fhir_url else None)
        hosts = {urlsplit(u).hostname for e in platforms.values() for u in (e.legacy, e.fhir) if u}
        loopback = hosts <= {"127.0.0.1", "localhost", "::1"}
        return Target(
            name="adhoc",
            environment_class="local" if loopback else "test",
            description="platforms given on the command line",
            platforms=platforms,
        )
    targets = load_targets(targets_file)
    if name not in targets:
        known = ", ".join(sorted(targets)) or "none"
        raise UserError(f"unknown target {name!r} (targets in {targets_file}: {known})")
    return targets[name]
