"""`rxverify registry import`: Skatteverket's published test personal identity numbers as a registry file.

Skatteverket publishes the numbers reserved for testing as open data ("testpersonnummer"):
rows with one field, `testpersonnummer`, 12 digits each, as CSV or as JSON (a list of rows, or
the row store's `{"results": [...]}`). No rule recognises them (DOMAIN.md), so the suite may
send to a test environment only what such a list names. The import checks every row (12
digits, a real date, the Luhn check digit), derives the kind (a samordningsnummer has day +
60) and the birth date, and writes a registry in the format of
contracts/testdata/test-patients.json that records where it came from: the file's name, its
sha256 and the UTC time of the import. A refused row is reported by its row number only: a
number that fails the checks may still be someone's, so it is never printed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rxverify.errors import UserError
from rxverify.safety.identity import luhn_ok

FIELD = "testpersonnummer"  # the column of Skatteverket's list, exactly
CLASSES = ["local", "test", "production"]  # the published test numbers are for every kind of environment
ADULT_AT, OLD_AT = 18, 100  # the groups of the synthetic registry: child, adult, over 100
SHOWN_ROWS = 20  # refused row numbers listed by number; the rest counted


@dataclass
class Imported:
    """What an import read, kept and refused."""

    path: Path
    rows: int = 0
    patients: list[dict[str, str]] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)  # row numbers (the CSV header is row 1)
    duplicates: int = 0

    def refused_line(self) -> str:
        """The refused rows by number, never by value."""
        shown = ", ".join(map(str, self.refused[:SHOWN_ROWS]))
        more = f" and {len(self.refused) - SHOWN_ROWS} more" if len(self.refused) > SHOWN_ROWS else ""
        return (
            f"refused {len(self.refused)} of {self.rows} rows of {self.path} (row {shown}{more}): "
            "not a 12-digit personal identity number with a real date and a valid check digit"
        )


def _values(path: Path, text: str) -> list[tuple[int, Any]]:
    """(row number, value of `testpersonnummer`) of every row, from CSV or JSON."""
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise UserError(f"{path} is not valid JSON: {exc}") from None
        rows = document.get("results") if isinstance(document, dict) else document
        if not isinstance(rows, list):
            raise UserError(f"{path}: expected a JSON list of rows (or {{\"results\": [...]}})")
        if rows and not any(isinstance(r, dict) and FIELD in r for r in rows):
            raise UserError(f"{path}: no row has a {FIELD!r} field")
        return [(i, r.get(FIELD) if isinstance(r, dict) else None) for i, r in enumerate(rows, start=1)]
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # one column: no delimiter to find
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    names = [n.strip().lower() for n in reader.fieldnames or []]
    if FIELD not in names:
        raise UserError(f"{path}: no {FIELD!r} column (the header has {', '.join(names) or 'no columns'})")
    column = (reader.fieldnames or [])[names.index(FIELD)]
    return [(reader.line_num, row.get(column)) for row in reader]


def _patient(value: Any, today: date) -> dict[str, str] | None:
    """The registry row of one published number, or None when it is not a valid one."""
    pid = str(value).strip() if isinstance(value, str | int) else ""
    if len(pid) != 12 or not pid.isdigit() or not luhn_ok(pid[2:]):
        return None
    year, month, day = int(pid[:4]), int(pid[4:6]), int(pid[6:8])
    coordination = day > 60
    try:
        born = date(year, month, day - 60 if coordination else day)
    except ValueError:
        return None
    if born > today or year < 1800:
        return None
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    separator = "+" if age >= OLD_AT else "-"
    group = "samordningsnummer" if coordination else "over 100" if age >= OLD_AT else (
        "child" if age < ADULT_AT else "adult"
    )
    return {
        "id": pid,
        "display": f"{pid[:8]}-{pid[8:]}",
        "ten_digit": f"{pid[2:8]}{separator}{pid[8:]}",
        "kind": "samordningsnummer" if coordination else "personnummer",
        "birthDate": born.isoformat(),
        "group": group,
    }


def read_published_list(path: Path, today: date | None = None) -> tuple[Imported, bytes]:
    """Read and check every row of a published list; the raw bytes come back for the checksum."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text (Skatteverket publishes CSV or JSON)") from None
    today = today or date.today()
    result = Imported(path)
    seen: set[str] = set()
    for row, value in _values(path, text):
        result.rows += 1
        patient = _patient(value, today)
        if patient is None:
            result.refused.append(row)
        elif patient["id"] in seen:
            result.duplicates += 1
        else:
            seen.add(patient["id"])
            result.patients.append(patient)
    if not result.patients:
        raise UserError(
            result.refused_line() + "; nothing imported" if result.refused else f"{path} has no {FIELD} rows"
        )
    return result, raw


def registry_document(result: Imported, raw: bytes, now: datetime | None = None) -> dict[str, Any]:
    """The registry file's content: the published numbers and where they came from."""
    imported = (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {
        "registry": "rxverify test-patient registry",
        "synthetic": False,
        "source": {
            "description": "Skatteverket's published test personal identity numbers (open data, testpersonnummer)",
            "file": result.path.name,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "rows": result.rows,
        },
        "imported": imported,
        "allowed_environment_classes": CLASSES,
        "patients": result.patients,
    }


def import_registry(source: Path, output: Path) -> Imported:
    """Import `source` into the registry file `output` (written whole, or not at all)."""
    result, raw = read_published_list(source)
    document = registry_document(result, raw)
    partial = output.with_name(f".{output.name}.{os.getpid()}.part")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        partial.replace(output)  # an earlier registry is replaced only by a complete new one
    except OSError as exc:
        if partial.is_file():
            partial.unlink()
        raise UserError(f"cannot write the registry {output}: {exc.strerror}") from None
    return result
