"""The transformer's contract (contracts/mapping/legacy-fhir.yaml), read by the suite.

The new platform implements this mapping by hand; the suite reads it to check status
transitions, to normalise answers for the old-vs-new comparison, and to compare a legacy
prescription with its FHIR reading. The two sides share the data file, never code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from rxverify.errors import UserError

_STEP = re.compile(r"^(?P<name>[A-Za-z]+)(?:\[(?P<sel>[^\]]+)\])?$")


@dataclass(frozen=True)
class Mapping:
    """The parts of the mapping the suite uses."""

    raw: dict[str, Any]

    @property
    def status_to_fhir(self) -> dict[str, str]:
        """Agency prescription status -> FHIR MedicationRequest.status."""
        return dict(self.raw["status"]["prescription"])

    @property
    def transitions(self) -> dict[str, list[str]]:
        """Which status may follow which, as the legacy interface shows one prescription."""
        return {k: list(v) for k, v in self.raw["status"]["transitions"].items()}

    @property
    def default_validity_days(self) -> int:
        """Issue date + this many days without a given giltigTom."""
        return int(self.raw["rules"]["default_validity_days"])

    @property
    def default_validity_days_telephone(self) -> int:
        """The same for a phoned-in prescription."""
        return int(self.raw["rules"]["default_validity_days_telephone"])

    @property
    def time_zone(self) -> ZoneInfo:
        """The zone of legacy calendar dates."""
        return ZoneInfo(self.raw["time"]["legacy_time_zone"])

    @property
    def instant_fields(self) -> frozenset[str]:
        """Legacy fields holding instants (compared as moments, not text)."""
        return frozenset(self.raw["time"]["legacy_instant_fields"])

    def identity_system(self, person_id: str) -> str:
        """The FHIR identifier system of a 12-digit legacy personId."""
        ident = self.raw["identity"]
        day = int(person_id[6:8])
        return str(ident["samordningsnummer"] if day > ident["samordningsnummer_day_offset"] else ident["personnummer"])

    def system(self, name: str) -> str:
        """A named system or extension URL from the `systems` table."""
        return str(self.raw["systems"][name])

    def code(self, table: str, legacy_code: str) -> str:
        """FHIR code of a legacy code (forskrivningstyp, makuleringsorsak)."""
        return str(self.raw["codes"][table][legacy_code])

    def fields(self, section: str) -> dict[str, str]:
        """Legacy field -> FHIR element path of a section (prescription, dispensing, ...)."""
        return {k: str(v) for k, v in self.raw[section]["fields"].items()}

    def local_date(self, instant_or_date: str) -> str:
        """The legacy calendar date of a FHIR date or dateTime."""
        if len(instant_or_date) == 10:
            return instant_or_date
        moment = datetime.fromisoformat(instant_or_date.replace("Z", "+00:00"))
        return moment.astimezone(self.time_zone).date().isoformat()

    def resolve(self, resource: dict[str, Any], path: str) -> Any:
        """Evaluate a mapping path (`MedicationRequest.a.b[system=npl_pack_id].code`) on a resource.

        Returns None when any step is absent. `[system=NAME]` picks the element whose system is
        the named system; `[url=NAME]` likewise for extensions; `[Practitioner]` picks the
        contained resource of that type; `[0]` an index.
        """
        steps = path.split(".")[1:]
        node: Any = resource
        for step in steps:
            m = _STEP.match(step)
            if m is None or node is None:
                return None
            node = node.get(m.group("name")) if isinstance(node, dict) else None
            sel = m.group("sel")
            if sel is None or node is None:
                continue
            items = node if isinstance(node, list) else [node]
            if sel.isdigit():
                node = items[int(sel)] if int(sel) < len(items) else None
            elif "=" in sel:
                key, name = sel.split("=", 1)
                want = self.raw["systems"].get(name, name)
                node = next((i for i in items if isinstance(i, dict) and i.get(key) == want), None)
            else:
                node = next((i for i in items if isinstance(i, dict) and i.get("resourceType") == sel), None)
        return node


@cache
def load_mapping(path: Path) -> Mapping:
    """Read the mapping contract; a malformed file is one UserError."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        mapping = Mapping(raw)
        mapping.transitions, mapping.status_to_fhir, mapping.default_validity_days  # noqa: B018
        return mapping
    except OSError as exc:
        raise UserError(f"cannot read mapping contract {path}: {exc.strerror}") from None
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise UserError(f"mapping contract {path} is malformed: {exc}") from None


def days_between(first: str, last: str) -> int:
    """Calendar days from one ISO date to another."""
    return (date.fromisoformat(last) - date.fromisoformat(first)).days
