"""The safety scan of what is reported: no ticket, bearer credential or key, no identity outside the registry.

It reads the Allure results (every text file and attachment) and the generated report. A
single-file report carries its data base64-encoded in `d('data/...', '...')` calls: those are
decoded and scanned; the report's own application code (Allure's JavaScript and CSS) is not
run data and is left out, as are images.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rxverify.safety.identity import mask
from rxverify.safety.redaction import redact_text
from rxverify.safety.registry import Registry

BINARY_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".ico", ".woff", ".woff2", ".ttf", ".zip"})
REPORT_DATA_DIRS = ("data", "widgets", "history", "export")
_EMBEDDED = re.compile(r"""\bd\('([^']+)','([A-Za-z0-9+/=]*)'\)""")
# Hex digests (historyId, uids) hold digit runs that can pass for an identity: blank them first.
_HEX_TOKEN = re.compile(r"(?<![0-9A-Za-z])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{16,}(?![0-9A-Za-z])")


@dataclass(frozen=True)
class Finding:
    """Something that must not be in a report: where it is and what it is (never the value itself)."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def scan_text(text: str, registry: Registry, where: str) -> list[Finding]:
    """What `text` leaks: secrets (as `redact_text` sees them) and identities outside the registry."""
    findings = []
    redacted = redact_text(text)
    if redacted != text:
        at = next((i for i, (a, b) in enumerate(zip(text, redacted, strict=False)) if a != b), len(text))
        line = text.count("\n", 0, at) + 1
        findings.append(Finding(where, f"a ticket, bearer credential or key (line {line}, offset {at})"))
    blanked = _HEX_TOKEN.sub(lambda m: "#" * len(m.group(0)), text)
    for found in registry.unregistered_in(blanked):
        findings.append(Finding(where, f"{found.kind} {mask(found.twelve)} is not a registered test patient"))
    return findings


def _texts_of_html(path: Path, shown: str) -> Iterator[tuple[str, str]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    for name, payload in _EMBEDDED.findall(text):
        if Path(name).suffix.lower() in BINARY_SUFFIXES:
            continue
        try:
            decoded = base64.b64decode(payload, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue  # an embedded binary attachment
        yield f"{shown} (embedded {name})", decoded


def _text_of(path: Path) -> str | None:
    if path.suffix.lower() in BINARY_SUFFIXES:
        return None
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def scan_results(directory: Path, registry: Registry) -> list[Finding]:
    """Scan every text file of an Allure results folder (results, containers, attachments, history)."""
    findings: list[Finding] = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        text = _text_of(path)
        if text is not None:
            findings += scan_text(text, registry, str(path))
    return findings


def scan_report(directory: Path, registry: Registry) -> list[Finding]:
    """Scan a generated report: the data embedded in its HTML files and its data/widgets/history/export files."""
    findings: list[Finding] = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory)
        if path.suffix.lower() == ".html":
            for where, text in _texts_of_html(path, str(path)):
                findings += scan_text(text, registry, where)
        if relative.parts[0] in REPORT_DATA_DIRS:
            content = _text_of(path)
            if content is not None:
                findings += scan_text(content, registry, str(path))
    return findings
