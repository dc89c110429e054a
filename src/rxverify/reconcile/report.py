"""What a reconciliation leaves behind: one Allure result per test patient, a JSON result and a page to read.

Patients are masked everywhere (rxverify.safety.identity.mask); values are the old and new
platform's data about registered test patients only, scrubbed of secrets before they are written.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rxverify.allure_results import AllureResult, write_result
from rxverify.reconcile.compare import KEYED, Difference
from rxverify.safety.identity import mask
from rxverify.safety.redaction import redact_text

EPIC = "migration"
MESSAGE_DIFFERENCES = 60  # differences in one Allure message; every one is in the attachment and the JSON


@dataclass
class PatientResult:
    """The reconciliation of one test patient."""

    person_id: str
    kind: str
    differences: list[Difference]
    start_ms: int
    stop_ms: int
    index: int = 0  # the patient's place in the registry: masks can coincide, this keeps each result its own
    reads: tuple[str, ...] | None = None  # the census reads only (outside the sample), None: every read

    @property
    def compared(self) -> str:
        """What was compared of this patient, as its result names it."""
        return "every read" if self.reads is None else f"census: {', '.join(self.reads)} on the legacy interface"

    @property
    def masked(self) -> str:
        """The patient as reports show them."""
        return mask(self.person_id)


@dataclass
class Reconciliation:
    """A whole reconciliation: every patient's result and where it was written."""

    target: str
    baseline: str
    lanes: tuple[str, ...]
    patients: list[PatientResult] = field(default_factory=list)
    written: dict[str, Path] = field(default_factory=dict)

    @property
    def differences(self) -> list[Difference]:
        """Every difference of every patient."""
        return [d for p in self.patients for d in p.differences]

    def summary_line(self) -> str:
        """The line the command prints last."""
        differing = sum(bool(p.differences) for p in self.patients)
        census = sum(p.reads is not None for p in self.patients)
        sample = len(self.patients) - census
        counted = (f" (and {census} more by census: their record and whole history on the legacy interface)"
                   if census else "")
        return (f"reconcile: {sample} test patients compared over {', '.join(self.lanes)}{counted}: "
                f"{len(self.differences)} differences in {differing} patients")


def _message(result: PatientResult) -> str:
    lines = [str(d) for d in result.differences[:MESSAGE_DIFFERENCES]]
    more = len(result.differences) - MESSAGE_DIFFERENCES
    if more > 0:
        lines.append(f"... and {more} more (attached)")
    return redact_text("\n".join(lines))


def write_allure(directory: Path, rec: Reconciliation) -> None:
    """One result per test patient: failed with every difference named, or passed."""
    for p in rec.patients:
        count = len(p.differences)
        write_result(
            directory,
            AllureResult(
                name=f"reconcile {p.masked} ({p.kind}), registry #{p.index}" + (
                    f" ({p.compared})" if p.reads is not None else ""),
                full_name=f"reconcile.patient.{p.index}",
                status="failed" if count else "passed",
                start_ms=p.start_ms,
                stop_ms=p.stop_ms,
                message=(f"old/new difference: {count} after the migration\n" + _message(p)) if count
                else "the new platform serves what the old one did",
                description="What the old platform served this test patient before the migration, against what the "
                            "new platform serves after it, through the legacy interface and through FHIR "
                            "(contracts/mapping/legacy-fhir.yaml).",
                labels={"epic": EPIC, "feature": "reconcile", "story": p.kind, "severity": "blocker",
                        "suite": "reconcile", "framework": "rxverify"},
                parameters={"target": rec.target, "patient": p.masked, "registry": str(p.index),
                            "compared": p.compared},
            ),
            {"differences": [d.as_dict() for d in p.differences]} if count else None,
        )


def counts(rec: Reconciliation) -> dict[str, Any]:
    """Totals by lane, operation and element (list positions generalised)."""
    by_element = Counter(f"[{d.lane}] {d.operation} {_general(d.element)}" for d in rec.differences)
    return {"patients": len(rec.patients), "patientsDiffering": sum(bool(p.differences) for p in rec.patients),
            "differences": len(rec.differences), "byElement": dict(by_element.most_common())}


def _general(element: str) -> str:
    return KEYED.sub("[]", element)


def write_json(path: Path, rec: Reconciliation) -> Path:
    """reports/reconcile/result.json: the counts and every difference of every patient."""
    document = {
        "target": rec.target, "baseline": rec.baseline, "lanes": list(rec.lanes), "counts": counts(rec),
        "patients": [{"patient": p.masked, "kind": p.kind, "differences": [d.as_dict() for d in p.differences]}
                     for p in rec.patients],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(redact_text(json.dumps(document, ensure_ascii=False, indent=1)), encoding="utf-8")
    return path


def _cell(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return html.escape(redact_text(text if len(text) <= limit else text[:limit] + "…"))


def write_html(path: Path, rec: Reconciliation) -> Path:
    """One page a person can read: the verdict, the counts by element, then every patient's differences."""
    c = counts(rec)
    verdict = "no differences" if not c["differences"] else f"{c['differences']} differences"
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in c["byElement"].items())
    patients = []
    for p in rec.patients:
        if not p.differences:
            continue
        lines = "".join(
            f"<tr><td>{html.escape(d.lane)}</td><td>{html.escape(d.operation)}</td><td>{html.escape(d.element)}</td>"
            f"<td>{_cell(d.old)}</td><td>{_cell(d.new)}</td><td>{html.escape(d.note)}</td></tr>"
            for d in p.differences)
        patients.append(f"<h3>{html.escape(p.masked)} ({html.escape(p.kind)}): {len(p.differences)}</h3>"
                        "<table><tr><th>lane</th><th>operation</th><th>element</th><th>old</th><th>new</th>"
                        f"<th></th></tr>{lines}</table>")
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Reconciliation: {verdict}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1em}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top;font-size:90%}}
.ok{{color:#060}}.bad{{color:#a00}}</style></head><body>
<h1 class="{'ok' if not c['differences'] else 'bad'}">Reconciliation: {verdict}</h1>
<p>Target {html.escape(rec.target)}; baseline {html.escape(rec.baseline)};
compared over {html.escape(', '.join(rec.lanes))}.
{c['patients']} test patients, {c['patientsDiffering']} with differences.</p>
<h2>Differences by element</h2><table><tr><th>lane, operation, element</th><th>count</th></tr>{rows}</table>
<h2>Per patient</h2>{''.join(patients) or '<p>none</p>'}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
