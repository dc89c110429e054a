"""`rxverify fhir validate` and `rxverify fhir snapshot`: validate resource files; regenerate the profiles' snapshots.

validate prints each file's issues like the HL7 validator's command line, a summary per file, and
exits 1 when any file has an error. A file may be any R4 resource, the package's own
conformance resources (StructureDefinition, ValueSet, CapabilityStatement, ...) included: they
are validated against the R4 base like any other resource.
"""

from __future__ import annotations

from pathlib import Path

from rxverify.errors import UserError
from rxverify.fhir.base import base_definitions
from rxverify.fhir.package import Package, default_package, load_package, read_resource
from rxverify.fhir.snapshot import FolderResolver, regenerate, stale
from rxverify.fhir.validator import Validator


def _expand(files: list[str]) -> list[Path]:
    """The files named, a folder standing for the JSON files in it (not below it: tox runs no shell to glob)."""
    out: list[Path] = []
    for name in files:
        path = Path(name)
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            if not found:
                raise UserError(f"no JSON files in the folder {path}")
            out += found
        else:
            out.append(path)
    return out


def validate_files(files: list[str], profile: str | None, package_path: str | None) -> int:
    """Print the issues of each file and a summary line; 1 when any file has an error."""
    package: Package = load_package(package_path) if package_path else default_package()
    validator = Validator(package)
    if profile:
        validator.plan(profile)  # an unknown profile is bad input, before any output
    documents = [(str(path), read_resource(path)) for path in _expand(files)]
    failed = False
    for name, document in documents:
        issues = validator.validate(document, [profile] if profile else None)
        counts = {s: sum(i.severity == s for i in issues) for s in ("error", "warning", "information")}
        print(f"-- {name}: {document.get('resourceType')} --")
        for issue in issues:
            print(f"  {issue}")
        verdict = "*FAILURE*" if counts["error"] else "Success"
        failed = failed or bool(counts["error"])
        print(f"{verdict}: {counts['error']} errors, {counts['warning']} warnings, {counts['information']} notes")
    return 1 if failed else 0


def snapshot_folder(folder: str | None, check: bool) -> int:
    """Regenerate the snapshots of the profiles in `folder` (default contracts/fhir); with check, only report."""
    from rxverify.paths import contracts_dir

    contracts = contracts_dir() / "fhir"
    where = Path(folder) if folder else contracts
    if not where.is_dir():
        raise UserError(f"no folder {where}")
    base = base_definitions()
    # another folder's profiles may build on the contract's (and these on the base)
    fallback = (
        base.full_structure
        if where.resolve() == contracts.resolve()
        else FolderResolver(contracts, base.full_structure)
    )
    if check:
        found = stale(where, fallback)
        for path in found:
            print(f"stale snapshot: {path} (regenerate it: rxverify fhir snapshot)")
        return 1 if found else 0
    for path in regenerate(where, fallback):
        print(f"snapshot written: {path}")
    return 0
