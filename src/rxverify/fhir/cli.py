"""`rxverify fhir validate`: validate resource files, printed like the HL7 validator's command line."""

from __future__ import annotations

import json
from pathlib import Path

from rxverify.errors import UserError
from rxverify.fhir.package import Package, default_package, load_package
from rxverify.fhir.validator import Validator


def _read(path: Path) -> dict[str, object]:
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


def validate_files(files: list[str], profile: str | None, package_path: str | None) -> int:
    """Print the issues of each file and a summary line; 1 when any file has an error."""
    package: Package = load_package(package_path) if package_path else default_package()
    validator = Validator(package)
    if profile:
        validator.plan(profile)  # an unknown profile is bad input, before any output
    documents = [(name, _read(Path(name))) for name in files]
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
