"""The gate's verdict as the release board reads it: printed, reports/gate.json and a one-page reports/gate.html."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rxverify.gate.evaluate import Verdict

Out = Callable[[str], None]


def _word(verdict: Verdict) -> str:
    return "GO" if verdict.go else "NO-GO"


def _ids(ids: dict[str, Any]) -> str:
    return " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in ids.items())


def _by_criterion(verdict: Verdict) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for reason in verdict.reasons:
        grouped.setdefault(reason.criterion, []).append(reason)
    return grouped


def print_verdict(verdict: Verdict, reports: Path, out: Out = print) -> None:
    """GO or NO-GO with every reason, links into the report, the notes and (production) the rollback checklist."""
    release = verdict.criteria.release or "?"
    total = sum(sum(s.values()) for s in verdict.tests.values())
    if verdict.go:
        out(f"GO: release {release}: every release criterion met ({total} tests; {verdict.criteria.path})")
    else:
        n = len(verdict.reasons)
        out(f"NO-GO: release {release}: {n} reason{'s' * (n != 1)} ({total} tests; {verdict.criteria.path})")
    for criterion, reasons in _by_criterion(verdict).items():
        out(f"  {criterion}:")
        for reason in reasons:
            where = f"\n      -> {reports / reason.link}" if reason.link else (f" ({reason.ref})" if reason.ref else "")
            out(f"    - {reason.text}{where}")
    out(
        "tests per area: "
        + "; ".join(
            f"{epic}: " + ", ".join(f"{n} {status}" for status, n in statuses.items())
            for epic, statuses in verdict.tests.items()
        )
        if verdict.tests
        else "tests per area: none"
    )
    for note in verdict.notes:
        out(f"note: {note}")
    if verdict.rollback is not None:
        out("ROLLBACK CHECKLIST (production verification: the ledger's writes per test patient, newest last):")
        if not verdict.rollback:
            out("  the ledger has no writes since the verification started")
        for patient, writes in verdict.rollback.items():
            out(f"  patient {patient}: {len(writes)} write{'s' * (len(writes) != 1)}")
            for w in writes:
                status = w.status if w.status is not None else "-"
                line = f"    [ ] {w.time}  {w.operation}  {w.method} {w.path}  {status} {w.outcome}  {_ids(w.ids)}"
                out(line.rstrip())
    if verdict.report:
        out(f"report: {reports / verdict.report}")


def as_json(verdict: Verdict) -> dict[str, Any]:
    """reports/gate.json: the verdict, the reasons (links relative to reports/), notes, counts, inputs."""
    return {
        "verdict": _word(verdict),
        "release": verdict.criteria.release,
        "generated": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "criteria": str(verdict.criteria.path),
        "reasons": [r.as_dict() for r in verdict.reasons],
        "notes": verdict.notes,
        "tests": verdict.tests,
        "inputs": verdict.inputs,
        "productionVerification": verdict.production,
        "rollback": (
            {p: [w.__dict__ for w in writes] for p, writes in verdict.rollback.items()}
            if verdict.rollback is not None
            else None
        ),
        "report": verdict.report,
    }


_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:60rem;
color:#1b1f24;padding:0 1rem}
h1{font-size:2.4rem;margin:.2rem 0;padding:.6rem 1rem;border-radius:.4rem;color:#fff}
h1.go{background:#1a7f37}h1.nogo{background:#cf222e}
h2{font-size:1.1rem;margin:1.6rem 0 .4rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:.2rem .5rem;border-bottom:1px solid #eaeef2;vertical-align:top}
li{margin:.3rem 0}.ref{color:#57606a;font-size:.9em}code{font-size:.9em}.check{font-family:monospace}
@media print{body{margin:0}}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def as_html(verdict: Verdict) -> str:
    """reports/gate.html: one self-contained page (inline CSS, no scripts, no external assets)."""
    data = as_json(verdict)
    word = data["verdict"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(word)}: release {_e(verdict.criteria.release)}</title><style>{_CSS}</style></head><body>",
        f"<h1 class='{'go' if verdict.go else 'nogo'}'>{_e(word)}</h1>",
        f"<p>Release {_e(verdict.criteria.release)}; criteria <code>{_e(verdict.criteria.path)}</code>; "
        f"generated {_e(data['generated'])}.</p>",
    ]
    if verdict.reasons:
        parts.append("<h2>Reasons</h2>")
        for criterion, reasons in _by_criterion(verdict).items():
            parts.append(f"<h3>{_e(criterion)}</h3><ul>")
            for r in reasons:
                where = (
                    f" <a href='{_e(r.link)}'>open in the report</a>"
                    if r.link
                    else (f" <span class='ref'>({_e(r.ref)})</span>" if r.ref else "")
                )
                parts.append(f"<li>{_e(r.text)}{where}</li>")
            parts.append("</ul>")
    else:
        parts.append("<p>Every release criterion is met.</p>")
    parts.append("<h2>Tests per area</h2><table><tr><th>area (epic)</th><th>results</th></tr>")
    for epic, statuses in verdict.tests.items():
        shown = ", ".join(f"{n} {s}" for s, n in statuses.items())
        parts.append(f"<tr><td>{_e(epic)}</td><td>{_e(shown)}</td></tr>")
    parts.append("</table>")
    if verdict.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in verdict.notes) + "</ul>")
    if verdict.rollback is not None:
        parts.append(
            "<h2>Rollback checklist</h2><p>The ledger's writes of the production verification, per test patient.</p>"
        )
        for patient, writes in verdict.rollback.items():
            parts.append(f"<h3>patient {_e(patient)}</h3><table>")
            for w in writes:
                status = w.status if w.status is not None else "-"
                parts.append(
                    f"<tr><td class='check'>[ ]</td><td>{_e(w.time)}</td><td>{_e(w.operation)}</td>"
                    f"<td><code>{_e(w.method)} {_e(w.path)}</code></td><td>{_e(status)} {_e(w.outcome)}</td>"
                    f"<td>{_e(_ids(w.ids))}</td></tr>"
                )
            parts.append("</table>")
    parts.append("<h2>Inputs</h2><table>")
    parts += [f"<tr><td>{_e(k)}</td><td><code>{_e(v)}</code></td></tr>" for k, v in verdict.inputs.items()]
    parts.append("</table>")
    if verdict.report:
        parts.append(f"<p><a href='{_e(verdict.report)}'>The Allure report</a> (categories).</p>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_outputs(verdict: Verdict, reports: Path) -> tuple[Path, Path]:
    """Write reports/gate.json and reports/gate.html."""
    reports.mkdir(parents=True, exist_ok=True)
    json_path, html_path = reports / "gate.json", reports / "gate.html"
    json_path.write_text(json.dumps(as_json(verdict), ensure_ascii=False, indent=1), encoding="utf-8")
    html_path.write_text(as_html(verdict), encoding="utf-8")
    return json_path, html_path
