"""The gate's verdict as the release board reads it: printed, reports/gate.json and a one-page reports/gate.html."""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rxverify.gate.evaluate import Verdict
from rxverify.gate.inputs import InputFile, sha256_of

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


def _platforms_line(run: dict[str, Any]) -> str:
    kind = (
        "the embedded reference platforms (stand-ins on loopback)" if run["embeddedReferencePlatforms"] else "platforms"
    )
    versions = "; ".join(f"{p}: {v}" for p, v in run["platformVersions"].items()) or "versions not recorded"
    return f"{kind} {', '.join(run['platforms']) or '-'} ({versions})"


def _run_line(run: dict[str, Any]) -> str:
    seeds = ", ".join(f"{k}={v}" for k, v in run["seeds"].items()) or "no seed"
    selection = f"; selection: {run['selection']}" if run["selection"] else ""
    results = ", ".join(f"{n} {s}" for s, n in run["results"].items()) or "no results"
    return (
        f"{run['suite']} run {run['run']} ({run['status']}): target {run['target']} (class "
        f"{run['environmentClass']}), {_platforms_line(run)}; {seeds}; {run['collected']} collected, {results}"
        f"{selection}; commit {run['commit'][:12]}"
    )


def print_verdict(verdict: Verdict, reports: Path, out: Out = print) -> None:
    """GO or NO-GO; what was verified and what not; every reason with its link; notes; the rollback checklist."""
    release = verdict.criteria.release or "?"
    total = sum(sum(s.values()) for s in verdict.tests.values())
    if verdict.go:
        out(f"GO: release {release}: every release criterion met ({total} tests; {verdict.criteria.path})")
    else:
        n = len(verdict.reasons)
        out(f"NO-GO: release {release}: {n} reason{'s' * (n != 1)} ({total} tests; {verdict.criteria.path})")
    out(f"release run {verdict.release_run}: {len(verdict.verified)} runs")
    for run in verdict.verified:
        out(f"  {_run_line(run)}")
    for applied in verdict.known_issues_applied:
        out(f"  applied: {applied}")
    if verdict.not_verified:
        out("not verified:")
        for item in verdict.not_verified:
            out(f"  - {item}")
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
    for stale in verdict.stale_known_issues:
        out(f"stale: {stale}")
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
    for window in verdict.rehearsals:
        for line in _window_lines(window):
            out(line)
        out(f"  -> {reports / (window['page'] or window['record'])}")
    if verdict.report:
        out(f"report: {reports / verdict.report}")


def _window_lines(window: dict[str, Any]) -> list[str]:
    """A rehearsal's decision record in lines: the verdict, each decision, what the rollback lost and failed."""
    ending = "" if window["verdict"] == "GO" else f", {window['ending']}"
    lines = [f"service window rehearsal {window['run']} ({window['plan']}): {window['verdict']}{ending}"]
    lines += [f"  decision {d['id']} after {d['after']}: {d['decision']} ({d['why']})" for d in window["decisions"]]
    if window["verdict"] != "GO":
        lines.append(f"  writes lost by the rollback: {window['lostWrites']}")
        lines += [f"  post-rollback check FAILED: {c}" for c in window["failedChecks"]]
    return lines


def as_json(verdict: Verdict) -> dict[str, Any]:
    """reports/gate.json: the verdict, every reason, what was (not) verified, every input with its sha256."""
    criteria = verdict.criteria.path
    return {
        "verdict": _word(verdict),
        "release": verdict.criteria.release,
        "releaseRun": verdict.release_run,
        "generated": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "criteria": {"path": str(criteria), "sha256": sha256_of(criteria)},
        "reasons": [r.as_dict() for r in verdict.reasons],
        "verified": verdict.verified,
        "notVerified": verdict.not_verified,
        "knownIssuesApplied": verdict.known_issues_applied,
        "staleKnownIssues": verdict.stale_known_issues,
        "notes": verdict.notes,
        "tests": verdict.tests,
        "inputs": [f.as_dict() for f in verdict.inputs],
        "productionVerification": verdict.production,
        "rollback": (
            {p: [w.__dict__ for w in writes] for p, writes in verdict.rollback.items()}
            if verdict.rollback is not None
            else None
        ),
        "report": verdict.report,
        "rehearsals": verdict.rehearsals,
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
        f"<p>Release {_e(verdict.criteria.release)}, release run <code>{_e(verdict.release_run)}</code>; criteria "
        f"<code>{_e(verdict.criteria.path)}</code> (sha256 {_e(data['criteria']['sha256'][:16])}…); "
        f"generated {_e(data['generated'])}.</p>",
        "<h2>What was not verified</h2>",
        "<ul>" + "".join(f"<li>{_e(n)}</li>" for n in verdict.not_verified) + "</ul>"
        if verdict.not_verified
        else "<p>Nothing the criteria ask for was left out.</p>",
        "<h2>What was verified</h2><table><tr><th>run</th><th>target</th><th>platforms</th><th>seeds</th>"
        "<th>tests</th></tr>",
    ]
    for run in verdict.verified:
        seeds = ", ".join(f"{k}={v}" for k, v in run["seeds"].items()) or "-"
        results = ", ".join(f"{n} {s}" for s, n in run["results"].items()) or "no results"
        parts.append(
            f"<tr><td>{_e(run['suite'])} <code>{_e(run['run'])}</code> ({_e(run['status'])})</td>"
            f"<td>{_e(run['target'])} (class {_e(run['environmentClass'])})</td><td>{_e(_platforms_line(run))}</td>"
            f"<td>{_e(seeds)}</td><td>{_e(run['collected'])} collected: {_e(results)}"
            f"{_e('; ' + run['selection']) if run['selection'] else ''}</td></tr>"
        )
    parts.append("</table>")
    parts.append(
        "<p>Known issues applied: "
        + (
            "</p><ul>" + "".join(f"<li>{_e(k)}</li>" for k in verdict.known_issues_applied) + "</ul>"
            if verdict.known_issues_applied
            else "none.</p>"
        )
    )
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
    if verdict.notes or verdict.stale_known_issues:
        notes = [*verdict.notes, *(f"stale: {s}" for s in verdict.stale_known_issues)]
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
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
    for window in verdict.rehearsals:
        ending = "" if window["verdict"] == "GO" else f", {window['ending']}"
        link = f" <a href='{_e(window['page'])}'>the decision record</a>" if window["page"] else ""
        parts.append(
            f"<h2>Service window rehearsal: {_e(window['verdict'])}{_e(ending)}</h2><p>Run "
            f"<code>{_e(window['run'])}</code>, plan {_e(window['plan'])};{link} "
            f"(<code>{_e(window['record'])}</code>).</p><ul>"
            + "".join(
                f"<li>decision {_e(d['id'])} after {_e(d['after'])}: <b>{_e(d['decision'])}</b> ({_e(d['why'])})</li>"
                for d in window["decisions"]
            )
            + "</ul><table><tr><th>phase</th><th>outcome</th><th></th></tr>"
            + "".join(
                f"<tr><td>{_e(p['phase'])}</td><td>{_e(p['outcome'])}</td><td>{_e(p['detail'])}</td></tr>"
                for p in window["phases"]
            )
            + "</table>"
        )
        if window["verdict"] != "GO":
            parts.append(
                f"<p>Writes lost by the rollback: {_e(window['lostWrites'])}.</p><ul>"
                + "".join(f"<li>post-rollback check FAILED: {_e(c)}</li>" for c in window["failedChecks"])
                + "</ul>"
            )
    parts.append("<h2>Inputs</h2><p>Every file read, with its sha256 (gate.json lists each result file too).</p>")
    parts.append("<table><tr><th>what</th><th>file</th><th>run</th><th>sha256</th></tr>")
    parts += [
        f"<tr><td>{_e(f.kind)}</td><td><code>{_e(f.path)}</code></td><td>{_e(f.run or '-')}</td>"
        f"<td><code>{_e(f.sha256)}</code></td></tr>"
        for f in _inputs_shown(verdict.inputs)
    ]
    parts.append("</table>")
    if verdict.report:
        parts.append(f"<p><a href='{_e(verdict.report)}'>The Allure report</a> (categories).</p>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _inputs_shown(files: list[InputFile]) -> list[InputFile]:
    """The inputs for the page: each run's result files as one line with one digest over them."""
    shown: list[InputFile] = []
    results: dict[str | None, list[InputFile]] = {}
    for f in files:
        (results.setdefault(f.run, []) if f.kind == "Allure result" else shown).append(f)
    for run, group in results.items():
        digest = hashlib.sha256("".join(f"{f.path.name}:{f.sha256}\n" for f in sorted(group, key=str)).encode())
        shown.append(InputFile(group[0].path.parent, digest.hexdigest(), run, f"{len(group)} Allure results"))
    return shown


def write_outputs(verdict: Verdict, reports: Path) -> tuple[Path, Path]:
    """Write reports/gate.json and reports/gate.html."""
    reports.mkdir(parents=True, exist_ok=True)
    json_path, html_path = reports / "gate.json", reports / "gate.html"
    json_path.write_text(json.dumps(as_json(verdict), ensure_ascii=False, indent=1), encoding="utf-8")
    html_path.write_text(as_html(verdict), encoding="utf-8")
    return json_path, html_path
