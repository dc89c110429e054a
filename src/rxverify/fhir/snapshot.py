"""Snapshot generation: a profile's differential applied to its base definition, as the HL7 tools do.

profiling.html: "the snapshot ... is a fully expanded view of the structure"; "the differential
... describes the differences from the base". The generator starts from the base definition's
snapshot (every element, with its definition, cardinalities, types, bindings and invariants) and,
differential element by differential element, in order:

- finds the element by id; an element below a data type the snapshot does not spell out (e.g.
  `dispenseRequest.validityPeriod.start`) first gets its parent's type expanded in place: the
  children of the type's own definition (or of the type's profile) under the parent's path, so
  that each keeps its definition (sdf-3: "Each element definition in a snapshot must have a
  formal definition and cardinalities");
- a slice (`identifier:nllId`) is a copy of the base definition of the element it slices, placed
  after that element's children and the slices before it; a slice whose discriminator reads
  below it (an extension sliced by `url`) gets its children expanded from its type profile, so
  the fixed value the slices are told apart by is there to match on;
- merges the constraints: cardinality only narrower, types only a subset of the base's (with
  profiles and target profiles), bindings no weaker, invariants added to the base's (source: the
  profile), fixed[x]/pattern[x]/maxLength/minValue/maxValue/mustSupport/texts taken from the
  differential.

Anything a differential may not do (loosen a cardinality, add a type, weaken a required
binding, name an element the base does not have) is a UserError naming the element.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rxverify.errors import UserError
from rxverify.fhir.package import read_resource
from rxverify.fhir.structure import SYSTEM_PREFIX, type_code

Resolver = Callable[[str], dict[str, Any] | None]  # canonical url -> StructureDefinition with a snapshot
_STRENGTH = {"required": 4, "extensible": 3, "preferred": 2, "example": 1}
_MERGED_AS_IS = (
    "short", "definition", "comment", "requirements", "alias", "label", "mustSupport", "isSummary",
    "maxLength", "meaningWhenMissing", "orderMeaning", "isModifierReason", "example", "sliceIsConstraining",
)  # fmt: skip
_VALUE_PREFIXES = ("fixed", "pattern", "minValue", "maxValue", "defaultValue")


def _max_value(text: Any) -> float:
    return float("inf") if text in (None, "*") else float(text)


def _has_prefix(element: dict[str, Any], prefixes: tuple[str, ...]) -> list[str]:
    return [
        k for k in element if k.startswith(prefixes) and k not in prefixes and k[len(_prefix(k, prefixes))].isupper()
    ]


def _prefix(key: str, prefixes: tuple[str, ...]) -> str:
    return next(p for p in prefixes if key.startswith(p))


class _Snapshot:
    """The snapshot under construction: elements in order, found by id."""

    def __init__(self, profile: dict[str, Any], base: dict[str, Any], resolve: Resolver) -> None:
        self.url = str(profile.get("url"))
        self.resolve = resolve
        self.elements: list[dict[str, Any]] = copy.deepcopy(base["snapshot"]["element"])
        # the base's own elements, by id, for slices to start from
        self.original: dict[str, dict[str, Any]] = {e["id"]: copy.deepcopy(e) for e in self.elements}
        self.discriminators: dict[str, list[dict[str, Any]]] = {}
        self.stated: dict[str, set[str]] = {}  # element id -> the keys its differential states

    def error(self, element_id: str, text: str) -> UserError:
        return UserError(f"StructureDefinition {self.url}: differential {element_id}: {text}")

    def index(self, element_id: str) -> int | None:
        for i, element in enumerate(self.elements):
            if element["id"] == element_id:
                return i
        return None

    def subtree_end(self, position: int) -> int:
        """The index just after the element at `position`, its children and its slices."""
        prefix = self.elements[position]["id"]
        end = position + 1
        while end < len(self.elements):
            other = self.elements[end]["id"]
            if not (other.startswith(prefix + ".") or other.startswith(prefix + ":")):
                break
            end += 1
        return end

    def ensure(self, element_id: str) -> int:
        """The index of the element with `element_id`, expanding types and creating slices as needed."""
        found = self.index(element_id)
        if found is not None:
            return found
        parent_id, _, last = element_id.rpartition(".")
        if not parent_id:
            raise self.error(element_id, "no such element in the base")
        name, _, slice_name = last.partition(":")
        if slice_name:
            sliced = self.ensure(f"{parent_id}.{name}")
            return self._slice(sliced, slice_name, element_id)
        parent = self.ensure(parent_id)
        if not self._has_children(parent):
            self.expand(parent)
            found = self.index(element_id)
            if found is not None:
                return found
        raise self.error(element_id, "no such element in the base")

    def _has_children(self, position: int) -> bool:
        prefix = self.elements[position]["id"] + "."
        return position + 1 < len(self.elements) and self.elements[position + 1]["id"].startswith(prefix)

    def expand(self, position: int) -> None:
        """Insert the children of the element's type (or of its one type profile) right after it."""
        element = self.elements[position]
        types = element.get("type") or []
        if len(types) != 1:
            raise self.error(element["id"], "children of an element with other than one type cannot be constrained")
        raw = types[0]
        code = type_code(raw, str((element.get("base") or {}).get("path", "")))
        profiles = raw.get("profile") or []
        source = self.resolve(profiles[0]) if len(profiles) == 1 else None
        if source is None:
            source = self.resolve(f"http://hl7.org/fhir/StructureDefinition/{code}")
        if source is None or code.startswith(SYSTEM_PREFIX):
            raise self.error(element["id"], f"type {code} has no definition to take children from")
        children = copy.deepcopy(source["snapshot"]["element"][1:])
        root_id = source["snapshot"]["element"][0]["id"]
        for child in children:
            child["id"] = element["id"] + child["id"][len(root_id) :]
            child["path"] = element["path"] + child["path"][len(source["snapshot"]["element"][0]["path"]) :]
        self.elements[position + 1 : position + 1] = children

    def _slice(self, sliced: int, slice_name: str, element_id: str) -> int:
        owner = self.elements[sliced]
        if "slicing" not in owner:
            raise self.error(element_id, f"slice {slice_name} of {owner['id']}, which has no slicing")
        start = copy.deepcopy(self.original.get(owner["id"]) or owner)
        start.pop("slicing", None)
        start["id"], start["sliceName"] = element_id, slice_name
        start["min"] = 0  # a slice is optional unless the differential says otherwise
        end = self.subtree_end(sliced)
        self.elements.insert(end, start)
        return end

    def merge(self, position: int, diff: dict[str, Any]) -> None:
        """Apply one differential element to the snapshot element at `position`."""
        target = self.elements[position]
        where = str(diff["id"])
        self.stated.setdefault(where, set()).update(diff)
        if "min" in diff:
            if int(diff["min"]) < int(target.get("min", 0)) and "sliceName" not in diff:
                raise self.error(where, f"min {diff['min']} is below the base's {target.get('min')}")
            target["min"] = diff["min"]
        if "max" in diff:
            if _max_value(diff["max"]) > _max_value(target.get("max")):
                raise self.error(where, f"max {diff['max']} is above the base's {target.get('max')}")
            target["max"] = diff["max"]
        if "type" in diff:
            target["type"] = self._types(where, target.get("type") or [], diff["type"], target)
        if "binding" in diff:
            base_strength = (target.get("binding") or {}).get("strength")
            strength = diff["binding"].get("strength")
            if base_strength == "required" and strength != "required":
                raise self.error(where, f"binding {strength} weakens the base's required binding")
            target["binding"] = copy.deepcopy(diff["binding"])
        if "constraint" in diff:
            constraints = list(target.get("constraint") or [])
            keys = {c.get("key") for c in constraints}
            for constraint in diff["constraint"]:
                if constraint.get("key") in keys:
                    raise self.error(where, f"constraint {constraint.get('key')} is already defined")
                added = copy.deepcopy(constraint)
                added.setdefault("source", self.url)
                constraints.append(added)
            target["constraint"] = constraints
        if "slicing" in diff:
            target["slicing"] = copy.deepcopy(diff["slicing"])
            self.discriminators[where] = diff["slicing"].get("discriminator", [])
        for key in _MERGED_AS_IS:
            if key in diff:
                target[key] = copy.deepcopy(diff[key])
        for key in _has_prefix(diff, _VALUE_PREFIXES):
            for old in _has_prefix(target, (_prefix(key, _VALUE_PREFIXES),)):
                target.pop(old)
            target[key] = copy.deepcopy(diff[key])
        if "sliceName" in diff:
            target["sliceName"] = diff["sliceName"]

    def _types(
        self, where: str, base: list[dict[str, Any]], wanted: list[dict[str, Any]], target: dict[str, Any]
    ) -> list[dict[str, Any]]:
        base_path = str((target.get("base") or {}).get("path", ""))
        by_code = {type_code(t, base_path): t for t in base}
        open_types = {"Resource", "DomainResource"} & set(by_code)
        out = []
        for raw in wanted:
            code = str(raw.get("code"))
            original = by_code.get(code)
            if original is None and not open_types:
                raise self.error(where, f"type {code} is not among the base's ({', '.join(sorted(by_code))})")
            merged = copy.deepcopy(original) if original is not None else {"code": code}
            for key in ("profile", "targetProfile", "aggregation", "versioning"):
                if key in raw:
                    merged[key] = copy.deepcopy(raw[key])
            out.append(merged)
        return out

    def expand_discriminated_slices(self) -> None:
        """Slices told apart by a path below them (e.g. an extension's url) get their children."""
        for owner_id, discriminators in self.discriminators.items():
            if not any(d.get("path") not in ("$this", "", None) for d in discriminators):
                continue
            for element in list(self.elements):
                position = self.index(element["id"])
                if position is None or not element.get("sliceName"):
                    continue
                if element["id"] != f"{owner_id}:{element['sliceName']}":
                    continue
                if not self._has_children(position) and any(t.get("profile") for t in element.get("type") or []):
                    self.expand(position)
                    self._from_profile_root(position)

    def _from_profile_root(self, position: int) -> None:
        """A profiled slice takes its texts from the profile's root, as HL7's generator does."""
        element = self.elements[position]
        profiles = [p for t in element.get("type") or [] for p in t.get("profile") or []]
        source = self.resolve(profiles[0]) if profiles else None
        if source is None:
            return
        root = source["snapshot"]["element"][0]
        for key in ("short", "definition", "comment"):
            if key in root and key not in self.stated.get(element["id"], set()):
                element[key] = root[key]


def generate_snapshot(profile: dict[str, Any], resolve: Resolver) -> list[dict[str, Any]]:
    """The snapshot elements of `profile` (a StructureDefinition with a differential)."""
    url = str(profile.get("url"))
    base_url = profile.get("baseDefinition")
    if profile.get("derivation") != "constraint" or not isinstance(base_url, str):
        raise UserError(f"StructureDefinition {url}: only constraints on a base definition are generated")
    base = resolve(base_url)
    if base is None or not (base.get("snapshot") or {}).get("element"):
        raise UserError(f"StructureDefinition {url}: its base {base_url} has no snapshot here")
    snapshot = _Snapshot(profile, base, resolve)
    differential = (profile.get("differential") or {}).get("element") or []
    root = base["snapshot"]["element"][0]["path"]
    for diff in differential:
        element_id = str(diff.get("id") or "")
        if not element_id or (element_id != root and not element_id.startswith(root + ".")):
            raise UserError(f"StructureDefinition {url}: differential element {element_id!r} is not under {root}")
        if str(diff.get("path", "")) != _path_of(element_id):
            raise UserError(f"StructureDefinition {url}: differential {element_id} has path {diff.get('path')!r}")
        position = snapshot.ensure(element_id)
        snapshot.merge(position, diff)
    snapshot.expand_discriminated_slices()
    return snapshot.elements


def _path_of(element_id: str) -> str:
    return ".".join(segment.partition(":")[0] for segment in element_id.split("."))


def with_snapshot(profile: dict[str, Any], resolve: Resolver) -> dict[str, Any]:
    """The profile with its snapshot (re)generated from its differential."""
    out = {k: v for k, v in profile.items() if k != "snapshot"}
    generated = {"element": generate_snapshot(profile, resolve)}
    ordered: dict[str, Any] = {}
    for key, value in out.items():
        if key == "differential":
            ordered["snapshot"] = generated
        ordered[key] = value
    ordered.setdefault("snapshot", generated)
    return ordered


def render(resource: dict[str, Any]) -> str:
    """A conformance resource as the contracts store it: two-space JSON, UTF-8 characters, final newline."""
    return json.dumps(resource, indent=2, ensure_ascii=False) + "\n"


class FolderResolver:
    """Canonical url -> StructureDefinition with a snapshot: a profile of the folder, generated from its
    differential (profiles may build on each other), else what `fallback` has (the R4 base)."""

    def __init__(self, folder: Path, fallback: Resolver) -> None:
        self.fallback = fallback
        self.files: dict[str, Path] = {}
        self.profiles: dict[str, dict[str, Any]] = {}
        for path in sorted(folder.glob("StructureDefinition-*.json")):
            definition = read_resource(path)
            if isinstance(definition.get("url"), str):
                self.files[definition["url"]] = path
                self.profiles[definition["url"]] = definition
        self._done: dict[str, dict[str, Any]] = {}
        self._busy: set[str] = set()

    def __call__(self, url: str) -> dict[str, Any] | None:
        key = url.split("|", 1)[0]
        if key in self._done:
            return self._done[key]
        profile = self.profiles.get(key)
        if profile is None:
            return self.fallback(key)
        if not (profile.get("differential") or {}).get("element"):
            return profile
        if key in self._busy:
            raise UserError(f"StructureDefinition {key}: its differential depends on itself")
        self._busy.add(key)
        try:
            self._done[key] = with_snapshot(profile, self)
        finally:
            self._busy.discard(key)
        return self._done[key]

    def generated(self) -> list[tuple[Path, str]]:
        """(file, its content with the generated snapshot) for every profile with a differential."""
        out = []
        for url, path in self.files.items():
            if (self.profiles[url].get("differential") or {}).get("element"):
                out.append((path, render(self(url) or {})))
        return out


def stale(folder: Path, fallback: Resolver) -> list[Path]:
    """The profiles in `folder` whose committed snapshot differs from the one generated now."""
    return [path for path, text in FolderResolver(folder, fallback).generated() if path.read_text("utf-8") != text]


def regenerate(folder: Path, fallback: Resolver) -> list[Path]:
    """Rewrite the snapshot of every profile in `folder` that has a differential; the files that changed."""
    changed = []
    for path, text in FolderResolver(folder, fallback).generated():
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed
