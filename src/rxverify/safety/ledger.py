"""The write ledger: every write the suite sends, append-only, so a rollback can be reconciled.

One JSON-lines file per run under reports/ledger/. A write is recorded twice: an `attempt`
before a byte leaves and an `outcome` after the answer (or the transport error), each line
flushed at once, so a run killed between send and answer still shows the attempt. Entries
hold masked paths, registered test patients and returned ids; never headers or bodies.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from rxverify.errors import UserError
from rxverify.safety.identity import mask_identities

UNKNOWN = "unknown: may have reached the platform"
# ids a platform returns for what a write created (the old interface's elements, the REST rendering's fields,
# FHIR `id`)
RETURNED_ID_FIELDS = ("ordinationsId", "ordinationId", "uttagId", "rapportId", "expeditionsId", "expeditionsIdn", "id")
_ID_TAGS = tuple("{*}" + name for name in RETURNED_ID_FIELDS)  # in any namespace or none
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_ID_TOKEN = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{7,}")
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # made once, not per entry


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def returned_ids(document: Any, location: str | None = None) -> dict[str, Any]:
    """The ids a write's JSON answer names (and its Location header)."""
    ids: dict[str, Any] = {}
    if isinstance(document, Mapping):
        for name in RETURNED_ID_FIELDS:
            value = document.get(name)
            if isinstance(value, str | list):
                ids[name] = value
    if location:
        ids["location"] = mask_identities(location)
    return ids


def xml_ids(content: bytes) -> dict[str, Any]:
    """The id elements of an XML (SOAP) answer by local name, as a document returned_ids reads ({} if not XML)."""
    try:
        root = etree.fromstring(content, _XML_PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return {}
    found: dict[str, list[str]] = {}
    for node in root.iter(*_ID_TAGS):  # lxml matches the local names itself, in document order
        if node.text:
            found.setdefault(node.tag.rpartition("}")[2], []).append(node.text.strip())
    return {k: v[0] if len(v) == 1 else v for k, v in found.items()}


class Ledger:
    """Appends the writes of one run to reports/ledger/ledger-<UTC timestamp>-<pid>.jsonl."""

    def __init__(
        self, directory: Path, *, target: str = "", environment_class: str = "", run_id: str = "", kind: str = ""
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        self.run_id = run_id or f"{stamp}-{os.getpid()}"
        # what the writes are part of: contract, load, load seeding, verification, ... (a run may change it)
        self.run_kind = kind
        self.path = directory / f"ledger-{stamp}-{os.getpid()}.jsonl"
        self.target = target
        self.environment_class = environment_class
        self._lock = threading.Lock()
        self._seq = 0
        self._shown: dict[int, str] = {}  # attempts awaiting their outcome: seq -> masked path
        # unbuffered, opened for appending: each entry is one write(2) of a whole line, so it is
        # with the operating system as soon as it is written and a killed run loses nothing. The
        # file is made with the first write: a run refused before it sends anything leaves none.
        self._fd: int | None = None
        self._closed = False

    def _write(self, entry: dict[str, Any]) -> None:
        line = (_ENCODE(entry) + "\n").encode("utf-8")
        with self._lock:
            if self._closed:
                raise UserError(f"the ledger {self.path} is closed")
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            written = os.write(self._fd, line)
            while written < len(line):  # a regular file takes it whole; a short write is finished, not lost
                written += os.write(self._fd, line[written:])

    def _entry(
        self, kind: str, seq: int, method: str, operation: str | None, shown: str, patients: Iterable[str]
    ) -> dict[str, Any]:
        return {
            "time": _now(),
            "run": self.run_id,
            "runKind": self.run_kind,
            "seq": seq,
            "kind": kind,
            "target": self.target,
            "environmentClass": self.environment_class,
            "method": method,
            "operation": operation,
            "path": shown,
            "patients": sorted(set(patients)),
        }

    def attempt(self, method: str, operation: str | None, path: str, patients: Iterable[str]) -> int:
        """Record a write about to be sent; returns its number for the outcome."""
        shown = mask_identities(path)
        with self._lock:
            self._seq += 1
            seq = self._seq
            self._shown[seq] = shown  # the outcome's path, masked once
        self._write(self._entry("attempt", seq, method, operation, shown, patients))
        return seq

    def outcome(
        self,
        seq: int,
        method: str,
        operation: str | None,
        path: str,
        patients: Iterable[str],
        status: int | None,
        ids: Mapping[str, Any],
        outcome: str,
    ) -> None:
        """Record what came of attempt `seq`: ok, error (an HTTP error status) or transport-error."""
        with self._lock:
            shown = self._shown.pop(seq, None)
        entry = self._entry("outcome", seq, method, operation, shown or mask_identities(path), patients)
        entry.update({"status": status, "ids": dict(ids), "outcome": outcome})
        self._write(entry)

    def close(self) -> None:
        """Close the file (entries are already on disk)."""
        with self._lock:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


@dataclass
class LedgerRecord:
    """One write as the ledger knows it: its attempt merged with its outcome, if any."""

    time: str
    run: str
    seq: int
    target: str
    environment_class: str
    method: str
    operation: str | None
    path: str
    patients: list[str]
    status: int | None = None
    ids: dict[str, Any] = field(default_factory=dict)
    outcome: str = UNKNOWN
    finished: str | None = None
    run_kind: str = ""  # what the write was part of: contract, load, load seeding, verification, ...

    def id_values(self) -> list[str]:
        """Every returned id as a flat list (the Location header excluded)."""
        values: list[str] = []
        for name, value in self.ids.items():
            if name != "location":
                values += value if isinstance(value, list) else [value]
        return values


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def parse_instant(text: str, what: str = "--since") -> datetime:
    """An ISO 8601 date or time as an aware UTC datetime (naive means UTC); bad input is a UserError."""
    try:
        return _as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise UserError(f"{what} {text!r} is not an ISO 8601 date or time") from None


def read_ledger(
    directory: Path,
    since: str | datetime | None = None,
    patient: str | None = None,
    run: str | None = None,
    problems: list[str] | None = None,
) -> list[LedgerRecord]:
    """Every write in the ledger files of `directory`, oldest first, attempts merged with outcomes.

    An attempt without an outcome is `UNKNOWN`: the run stopped (or was killed) after sending.
    A write whose request named no patient (a cancellation by prescription id) is attributed
    to the patients of the earlier write that returned the id its path names. `run` keeps one
    run's writes. A line or file that cannot be read is skipped and, when `problems` is given,
    named there (file and line number), so a reader can say what it could not show.
    """
    records: dict[tuple[str, int], LedgerRecord] = {}
    for path in sorted(directory.glob("ledger-*.jsonl")) if directory.is_dir() else []:
        for number, entry in _entries(path, problems if problems is not None else []):
            key = (str(entry.get("run")), int(entry.get("seq", 0)))
            if entry.get("kind") == "attempt":
                records[key] = LedgerRecord(
                    entry["time"],
                    key[0],
                    key[1],
                    entry.get("target", ""),
                    entry.get("environmentClass", ""),
                    entry.get("method", ""),
                    entry.get("operation"),
                    entry.get("path", ""),
                    list(entry.get("patients", [])),
                    run_kind=str(entry.get("runKind") or ""),
                )
            elif entry.get("kind") == "outcome" and key in records:
                record = records[key]
                record.status = entry.get("status")
                record.ids = dict(entry.get("ids") or {})
                record.outcome = entry.get("outcome", UNKNOWN)
                record.finished = entry.get("time")
                record.patients = sorted(set(record.patients) | set(entry.get("patients", [])))
            elif entry.get("kind") == "outcome" and problems is not None:
                problems.append(f"{path} line {number}: an outcome whose attempt is not in the ledger")
    ordered = sorted(records.values(), key=lambda r: (r.time, r.run, r.seq))
    _attribute(ordered)
    if run is not None:
        ordered = [r for r in ordered if r.run == run]
    if since is not None:
        start = _as_utc(since) if isinstance(since, datetime) else parse_instant(since)
        ordered = [r for r in ordered if parse_instant(r.time, "ledger time") >= start]
    if patient is not None:
        wanted = re.sub(r"\D", "", patient)
        ordered = [r for r in ordered if any(p == wanted or p.endswith(wanted) for p in r.patients)]
    return ordered


def _entries(path: Path, problems: list[str]) -> Iterable[tuple[int, dict[str, Any]]]:
    """(line number, entry) of every readable entry of one ledger file; what cannot be read goes to `problems`."""
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as exc:
        problems.append(f"{path}: unreadable ({exc.strerror})")
        return
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last entry
    for number, raw in enumerate(lines, start=1):
        try:
            entry = json.loads(raw.decode("utf-8"))
            if not isinstance(entry, dict) or entry.get("kind") not in ("attempt", "outcome") or "time" not in entry:
                raise ValueError("not a ledger entry")
            int(entry.get("seq", 0))
        except (ValueError, TypeError):
            # a line torn by a kill mid-write, or not written by a ledger at all
            problems.append(f"{path} line {number}: torn or unreadable (skipped)")
            continue
        yield number, entry


def run_ids(directory: Path) -> list[str]:
    """The ids of the runs that wrote to the ledger, oldest first."""
    return list(dict.fromkeys(r.run for r in read_ledger(directory)))


def _attribute(records: list[LedgerRecord]) -> None:
    owners: dict[str, list[str]] = {}
    for record in records:
        if not record.patients:
            for token in _ID_TOKEN.findall(record.path):
                if token in owners:
                    record.patients = owners[token]
                    break
        for value in record.id_values():
            if record.patients:
                owners.setdefault(value, record.patients)
