"""The test-patient registry: the explicit list of identities the suite may ever send.

No rule recognises Skatteverket's test numbers (DOMAIN.md), so the registry is a list. The
one shipped for the embedded platforms is synthetic and says so; a non-local target refuses
to run on a synthetic registry and needs one imported from Skatteverket's published list
(`rxverify registry import`, rxverify.safety.registry_import).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from rxverify.errors import UserError
from rxverify.safety.identity import find_identities, luhn_ok

IMPORT_HINT = (
    "import Skatteverket's published test numbers first: rxverify registry import FILE --output PATH, "
    "and name PATH as the target's registry (targets.toml: registry = PATH)"
)


@dataclass(frozen=True)
class TestPatient:
    """One registered test patient."""

    __test__ = False  # not a pytest test class

    id: str  # 12 digits
    kind: str
    birth_date: str
    given_name: str
    family_name: str
    group: str


class Registry:
    """The registered test patients, by their 12-digit number."""

    def __init__(self, path: Path, document: dict[str, Any]) -> None:
        self.path = path
        self.synthetic = bool(document.get("synthetic"))
        source = document.get("source", "unknown")
        # an imported registry names its file and checksum (rxverify registry import)
        self.source = (
            f"{source.get('file', '?')} (sha256 {str(source.get('sha256', '?'))[:12]}…)"
            if isinstance(source, dict)
            else str(source)
        )
        self.created = str(document.get("imported") or document.get("created") or "unknown")
        self.allowed_classes = tuple(document.get("allowed_environment_classes", ("local",) if self.synthetic else ()))
        patients = []
        for row in document.get("patients", []):
            pid = str(row["id"])
            if len(pid) != 12 or not pid.isdigit() or not luhn_ok(pid[2:]):
                raise UserError(f"test-patient registry {path}: {pid[:2]}… is not a 12-digit Luhn-valid identity")
            patients.append(
                TestPatient(
                    pid,
                    row.get("kind", "personnummer"),
                    row.get("birthDate", ""),
                    row.get("givenName", ""),
                    row.get("familyName", ""),
                    row.get("group", ""),
                )
            )
        if not patients:
            raise UserError(f"test-patient registry {path} lists no patients")
        self.patients: tuple[TestPatient, ...] = tuple(patients)

    def subset(self, patients: tuple[TestPatient, ...] | list[TestPatient]) -> Registry:
        """A registry of some of these patients (same source and synthetic flag)."""
        chosen = object.__new__(Registry)
        chosen.path, chosen.synthetic, chosen.source = self.path, self.synthetic, self.source
        chosen.created, chosen.allowed_classes = self.created, self.allowed_classes
        chosen.patients = tuple(patients)
        return chosen

    @cached_property
    def ids(self) -> frozenset[str]:
        """The registered 12-digit numbers."""
        return frozenset(p.id for p in self.patients)

    def __contains__(self, twelve: object) -> bool:
        return twelve in self.ids

    def unregistered_in(self, text: str) -> list[Any]:
        """The valid identity numbers in `text` that are not registered test patients."""
        return [f for f in find_identities(text) if f.twelve not in self.ids]

    def check_usable_for(self, environment_class: str, target: str) -> None:
        """Refuse a synthetic registry for anything but the embedded local platforms (and any class it excludes)."""
        if self.synthetic and environment_class != "local":
            raise UserError(
                f"target {target!r} is class {environment_class!r} but the test-patient registry {self.path} is "
                f"synthetic: {IMPORT_HINT}"
            )
        if environment_class not in self.allowed_classes:
            allowed = ", ".join(self.allowed_classes) or "none"
            raise UserError(
                f"target {target!r} is class {environment_class!r} but the test-patient registry {self.path} allows "
                f"only {allowed} (allowed_environment_classes)"
            )


def load_registry(path: Path) -> Registry:
    """Read a registry file (JSON); bad input is a UserError naming the file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read test-patient registry {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UserError(f"test-patient registry {path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("patients"), list):
        raise UserError(f"test-patient registry {path} has no 'patients' list")
    try:
        return Registry(path, document)
    except (KeyError, TypeError) as exc:
        raise UserError(f"test-patient registry {path}: malformed patient row ({exc})") from None
