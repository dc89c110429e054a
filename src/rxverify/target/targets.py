"""Targets: named environments from contracts/targets.toml, or platforms given by base URL."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rxverify.errors import UserError

CLASSES = ("local", "test", "production")
PLATFORMS = ("old", "new", "old-secondary")  # old-secondary: a second old instance, for the differential


@dataclass(frozen=True)
class Endpoints:
    """Where one platform answers."""

    legacy: str | None = None  # base URL of the old service interface
    fhir: str | None = None  # base URL of the FHIR API (new platform only)


@dataclass(frozen=True)
class Target:
    """An environment to verify."""

    name: str
    environment_class: str
    description: str = ""
    platforms: dict[str, Endpoints] = field(default_factory=dict)
    tickets: dict[str, str] = field(default_factory=dict)  # role -> environment variable name
    registry: str | None = None  # path of the test-patient registry for this target
    tls: dict[str, str] = field(default_factory=dict)

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
        platforms[platform] = Endpoints(
            legacy=_check_url(section["legacy"], f"{name}.{platform}.legacy") if "legacy" in section else None,
            fhir=_check_url(section["fhir"], f"{name}.{platform}.fhir") if "fhir" in section else None,
        )
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
    )


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
