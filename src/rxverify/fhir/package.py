"""Conformance resources of an implementation guide, loaded offline and indexed by canonical URL.

A package is a folder of JSON resources (read recursively), an NPM-style FHIR package folder
(`package/package.json` beside the resources) or such a package as a `.tgz`, as implementation
guides are distributed. Conformance resources (StructureDefinition, ValueSet, CodeSystem, ...)
are indexed by `url` and by `url|version`; every other resource (the examples) is kept aside,
in file order. A broken file or a missing referenced resource is a UserError naming it.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rxverify.errors import UserError

# The canonical resource types a validator or generator may need to resolve.
CONFORMANCE_TYPES = frozenset(
    {
        "StructureDefinition",
        "ValueSet",
        "CodeSystem",
        "SearchParameter",
        "CapabilityStatement",
        "OperationDefinition",
        "ImplementationGuide",
        "NamingSystem",
        "ConceptMap",
        "CompartmentDefinition",
    }
)
# NPM package bookkeeping, not resources.
_NOT_RESOURCES = frozenset({"package.json", ".index.json", "package-lock.json"})
# Canonical URLs of the base specification: the R4 base definitions (base.py) hold them, not the package.
BASE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"


@dataclass
class Package:
    """The conformance resources of one package, by canonical URL, and its examples."""

    source: str
    canonical: dict[str, dict[str, Any]] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # canonical url -> file it came from
    examples: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    name: str | None = None
    version: str | None = None

    def add(self, where: str, resource: dict[str, Any]) -> None:
        """Index one resource read from `where`."""
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            raise UserError(f"FHIR package {self.source}: {where} is not a FHIR resource (no resourceType)")
        url = resource.get("url")
        if rtype in CONFORMANCE_TYPES and isinstance(url, str):
            version = resource.get("version")
            keys = [url, f"{url}|{version}"] if isinstance(version, str) else [url]
            for key in keys:
                self.canonical[key] = resource
                self.origin[key] = where
        else:
            self.examples.append((where, resource))

    def find(self, url: str) -> dict[str, Any] | None:
        """The resource with canonical `url` (`url|version` allowed), or None."""
        return self.canonical.get(url)

    def resolve(self, url: str, rtype: str, referrer: str = "") -> dict[str, Any]:
        """The resource of type `rtype` with canonical `url`; missing is a UserError naming both ends."""
        found = self.canonical.get(url)
        if found is None or found.get("resourceType") != rtype:
            by = f" (referenced by {referrer})" if referrer else ""
            raise UserError(f"FHIR package {self.source} has no {rtype} {url}{by}")
        return found

    def of_type(self, rtype: str) -> list[dict[str, Any]]:
        """The distinct conformance resources of one type, in load order."""
        seen: dict[int, dict[str, Any]] = {}
        for resource in self.canonical.values():
            if resource.get("resourceType") == rtype:
                seen.setdefault(id(resource), resource)
        return list(seen.values())

    def supported_profiles(self, resource_type: str) -> list[str]:
        """The CapabilityStatements' profile and supportedProfile for a resource type."""
        urls: list[str] = []
        for statement in self.of_type("CapabilityStatement"):
            for rest in statement.get("rest", []):
                for entry in rest.get("resource", []):
                    if entry.get("type") != resource_type:
                        continue
                    for url in [entry.get("profile"), *entry.get("supportedProfile", [])]:
                        if isinstance(url, str) and url not in urls:
                            urls.append(url)
        return urls


def _parse(source: str, where: str, data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"FHIR package {source}: {where} is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise UserError(f"FHIR package {source}: {where} is not a FHIR resource (not a JSON object)")
    return document


def read_resource(path: Path) -> dict[str, Any]:
    """One FHIR resource from a JSON file; an unreadable or malformed file is a UserError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise UserError(f"{path} is not a FHIR resource (not a JSON object)")
    return document


def _read_manifest(package: Package, manifest: dict[str, Any]) -> None:
    package.name = str(manifest.get("name")) if manifest.get("name") else None
    package.version = str(manifest.get("version")) if manifest.get("version") else None


def _load_folder(path: Path) -> Package:
    package = Package(str(path))
    root = path / "package" if (path / "package" / "package.json").is_file() else path
    manifest = root / "package.json"
    if manifest.is_file():
        _read_manifest(package, _parse(str(path), str(manifest), manifest.read_bytes()))
    for file in sorted(root.rglob("*.json")):
        if file.name in _NOT_RESOURCES or not file.is_file():
            continue
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise UserError(f"FHIR package {path}: cannot read {file} ({exc.strerror})") from None
        package.add(str(file), _parse(str(path), str(file), data))
    return package


def _load_tgz(path: Path) -> Package:
    package = Package(str(path))
    try:
        with tarfile.open(path, "r:gz") as archive:
            members = sorted((m for m in archive.getmembers() if m.isfile()), key=lambda m: m.name)
            for member in members:
                name = member.name.lstrip("./")
                base = name.rsplit("/", 1)[-1]
                if not base.endswith(".json"):
                    continue
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                document = _parse(str(path), name, handle.read())
                if name == "package/package.json":
                    _read_manifest(package, document)
                elif base not in _NOT_RESOURCES:
                    package.add(name, document)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UserError(f"FHIR package {path} is not a readable .tgz package ({exc})") from None
    return package


def load_package(path: str | Path) -> Package:
    """Load a folder of JSON resources, an NPM-style package folder or a package .tgz."""
    where = Path(path)
    if where.is_dir():
        package = _load_folder(where)
    elif where.is_file() and where.name.endswith((".tgz", ".tar.gz")):
        package = _load_tgz(where)
    elif where.exists():
        raise UserError(f"FHIR package {where} is neither a folder nor a .tgz package")
    else:
        raise UserError(f"no FHIR package at {where}")
    if not package.canonical:
        raise UserError(f"FHIR package {where} holds no conformance resources")
    return package


_DEFAULT: dict[str, Package] = {}


def default_package() -> Package:
    """contracts/fhir of the project (loaded once)."""
    from rxverify.paths import contracts_dir

    key = str(contracts_dir().resolve() / "fhir")
    if key not in _DEFAULT:
        _DEFAULT[key] = load_package(key)
    return _DEFAULT[key]
