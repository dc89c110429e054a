"""What a load run leaves: a JSON summary, a latency-over-time chart (SVG), an HTML page and Allure results per SLO."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from rxverify.allure_results import AllureResult, write_result
from rxverify.load.histogram import ACCURACY, Histogram
from rxverify.load.recorder import OVERALL, Recorder
from rxverify.load.slo import Slo, Verdict

EPIC = "load"
PERCENTILES = (0.50, 0.95, 0.99)
ACCURACY_NOTE = (f"percentiles read from 1 % log buckets: within {ACCURACY:.2%} of the latency at that rank; "
                 "count, min and max exact; mean exact up to float rounding")  # fmt: skip
INTENDED_START = {
    "open": "the iteration's scheduled start (the arrival process): includes the wait for an idle virtual user "
            "and the time earlier requests of the iteration took",
    "closed": "the send (a closed-model user plans its next request only after the answer): equal to the latency "
              "from the send",
}  # fmt: skip


def figures(hist: Histogram | None) -> dict[str, float | int | None]:
    """Count, mean, p50/p95/p99 (within histogram.ACCURACY) and the exact max of a histogram."""
    if hist is None or not hist.count:
        return {"count": 0}
    out: dict[str, float | int | None] = {"count": hist.count, "mean_ms": _r(hist.mean)}
    for p in PERCENTILES:
        out[f"p{round(p * 100)}_ms"] = _r(hist.percentile(p))
    out["max_ms"] = _r(hist.max)
    return out


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def summary(
    recorder: Recorder, verdicts: list[Verdict], context: Mapping[str, Any], offered: float | None
) -> dict[str, Any]:
    """The JSON summary: rates, percentiles (within 0.5 %) from send and intended start, SLOs, iterations, CPU."""
    duration = recorder.duration_s
    names: dict[str, Any] = {}
    for name in sorted(recorder.service):
        service = recorder.service[name]
        names[name] = {
            "requests": service.count,
            "failures": recorder.failures.get(name, 0),
            "rate_per_s": round(service.count / duration, 3) if duration else None,
            "latency_from_send": figures(service),
            "latency_from_intended_start": figures(recorder.intended.get(name)),
        }
    total = recorder.requests
    failures = sum(recorder.failures.values())
    scheduled = sum(recorder.scheduled.values())
    started = sum(recorder.started.values())
    dropped = sum(recorder.dropped.values())
    return {
        **context,
        "passed": all(v.passed for v in verdicts),
        "percentiles": ACCURACY_NOTE,
        "intended_start": INTENDED_START.get(str(context.get("arrival")), ""),
        "duration_s": round(duration, 3),
        "requests": total,
        "failures": failures,
        "failure_ratio": round(failures / total, 6) if total else None,
        "rate_per_s": round(total / duration, 3) if duration else None,
        "offered_requests": round(offered, 1) if offered else None,
        "overall": {
            "latency_from_send": figures(recorder.overall()),
            "latency_from_intended_start": figures(recorder.overall("intended")),
        },
        "requests_by_name": names,
        "warmup": {"requests_not_judged": recorder.warmup},
        "iterations": {
            "scheduled": scheduled,
            "started": started,
            "dropped": dropped,
            "not_started_at_end": scheduled - started - dropped,
            "start_wait": figures(recorder.start_wait),
            "scheduled_by_caller": dict(recorder.scheduled),
            "dropped_by_caller": dict(recorder.dropped),
        },
        "generator": {
            "cpu_s": round(recorder.cpu_s, 3),
            "requests_per_cpu_s": round((total + recorder.warmup) / recorder.cpu_s, 1) if recorder.cpu_s else None,
            "guard_s": round(recorder.guard_s, 3),
            "guard_share": round(recorder.guard_s / recorder.cpu_s, 4) if recorder.cpu_s else None,
        },
        "slo": [
            {
                "slo": v.slo.title,
                "scope": v.slo.scope,
                "metric": v.slo.metric,
                "limit": v.slo.limit,
                "measured": _r(v.measured),
                "passed": v.passed,
                "assumption": v.slo.assumption,
            }
            for v in verdicts
        ],
    }


SERIES = (("intended", 0.50, "#2a7"), ("intended", 0.95, "#e80"), ("intended", 0.99, "#c22"),
          ("service", 0.95, "#e80"), ("service", 0.99, "#c22"))  # fmt: skip


def latency_chart(
    recorder: Recorder, title: str, stress: Mapping[str, Any] | None = None, width: int = 900, height: int = 380
) -> str:
    """An SVG of latency per second: p50/p95/p99 from the intended start (solid) and p95/p99 from the send
    (dashed), seconds with failures or drops shaded, and a stress run's steps with the one where an SLO broke."""
    seconds = sorted(recorder.seconds)
    pad_l, pad_r, pad_t, pad_b = 60, 20, 46, 40
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{pad_l}" y="16" font-size="13">{escape(title)}</text>',
    ]
    if not seconds:
        out.append(f'<text x="{pad_l}" y="{pad_t + 20}">no requests recorded</text></svg>')
        return "".join(out)
    t0, t1 = seconds[0], seconds[-1] + 1
    series = {
        (kind, p): [(s, getattr(recorder.seconds[s], kind).percentile(p)) for s in seconds] for kind, p, _ in SERIES
    }
    top = max((v for pts in series.values() for _, v in pts if v is not None), default=1.0) * 1.1 or 1.0
    span = max(t1 - t0, 1)

    def x(s: float) -> float:
        return pad_l + (min(max(s, t0), t1) - t0) / span * plot_w

    def y(v: float) -> float:
        return pad_t + plot_h - v / top * plot_h

    out.append(f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{pad_l + plot_w}" y2="{pad_t + plot_h}" stroke="#444"/>')
    out.append(f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + plot_h}" stroke="#444"/>')
    for i in range(5):
        v = top * i / 4
        out.append(f'<text x="{pad_l - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>')
        out.append(f'<line x1="{pad_l}" y1="{y(v):.1f}" x2="{pad_l + plot_w}" y2="{y(v):.1f}" stroke="#eee"/>')
    out.append(f'<text x="14" y="{pad_t + plot_h / 2}" transform="rotate(-90 14 {pad_t + plot_h / 2})">ms</text>')
    out.append(f'<text x="{pad_l + plot_w / 2}" y="{height - 8}" text-anchor="middle">seconds into the run '
               f"(0..{t1 - t0})</text>")  # fmt: skip
    for s in seconds:
        sec = recorder.seconds[s]
        if sec.failures or sec.dropped:
            out.append(f'<rect x="{x(s):.1f}" y="{pad_t}" width="{max(plot_w / span, 1):.1f}" '
                       f'height="{plot_h}" fill="#fdd" opacity="0.6"/>')  # fmt: skip
    out += _stress_steps(stress, x, pad_t, plot_h)
    for (kind, p), pts in series.items():
        colour = next(c for k, q, c in SERIES if (k, q) == (kind, p))
        dash = ' stroke-dasharray="5,3"' if kind == "service" else ""
        path = " ".join(f"{x(s + 0.5):.1f},{y(v):.1f}" for s, v in pts if v is not None)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5"{dash} points="{path}"/>')
    legend = [("p50", "#2a7"), ("p95", "#e80"), ("p99", "#c22")]
    for i, (label, colour) in enumerate(legend):
        out.append(f'<text x="{pad_l + 44 * i}" y="34" fill="{colour}">{label}</text>')
    out.append(f'<text x="{pad_l + 140}" y="34">solid: from the intended start; dashed: from the send; '
               "shaded: failures or dropped iterations</text>")  # fmt: skip
    out.append("</svg>")
    return "".join(out)


def slo_result_name(slo: Slo) -> str:
    """The full name (and test id) of an SLO's Allure result: what a load run's manifest lists it as."""
    return f"rxverify.load.slo.{slo.scope}.{slo.key}"


def _stress_steps(stress: Mapping[str, Any] | None, x: Any, top: float, height: float) -> list[str]:
    """A stress run's step boundaries, each step's multiple of the peak, and the step where an SLO broke."""
    if not stress or not stress.get("step_s") or not stress.get("start_epoch"):
        return []
    step_s, start = float(stress["step_s"]), float(stress["start_epoch"])
    broke = stress.get("broke_at_step")
    last = int(broke or stress.get("held_steps") or 0)
    out = []
    for k in range(1, last + 1):
        left, right = x(start + (k - 1) * step_s), x(start + k * step_s)
        if k == broke:
            out.append(f'<rect x="{left:.1f}" y="{top}" width="{max(right - left, 1):.1f}" height="{height}" '
                       'fill="#fc8" opacity="0.35"/>')  # fmt: skip
            out.append(f'<text x="{left + 3:.1f}" y="{top + 24}" fill="#a40">SLO broke at step {k}</text>')
        out.append(f'<line x1="{left:.1f}" y1="{top}" x2="{left:.1f}" y2="{top + height}" stroke="#99a" '
                   'stroke-dasharray="2,3"/>')  # fmt: skip
        out.append(f'<text x="{left + 3:.1f}" y="{top + 11}" fill="#667">step {k}</text>')
    return out


def html_page(data: Mapping[str, Any], chart_svg: str) -> str:
    """One self-contained HTML page of a run: verdict, figures from intended start and send, SLOs, the chart."""

    def cell(value: Any) -> str:
        return "<td>" + escape("-" if value is None else str(value)) + "</td>"

    def row(label: str, figs: Mapping[str, Any]) -> str:
        keys = ("count", "p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")
        return "<tr><th>" + escape(label) + "</th>" + "".join(cell(figs.get(k)) for k in keys) + "</tr>"

    head = "<tr><th></th>" + "".join(f"<th>{h}</th>" for h in ("count", "p50 ms", "p95 ms", "p99 ms", "max ms",
                                                                "mean ms")) + "</tr>"  # fmt: skip
    overall = data["overall"]
    latency = [row("overall, from intended start", overall["latency_from_intended_start"]),
               row("overall, from send", overall["latency_from_send"])]  # fmt: skip
    for name, figs in data["requests_by_name"].items():
        latency.append(row(f"{name}, from intended start", figs["latency_from_intended_start"]))
        latency.append(row(f"{name}, from send", figs["latency_from_send"]))
    slos = "".join(
        f'<tr class="{"ok" if v["passed"] else "bad"}"><td>{"ok" if v["passed"] else "BREACHED"}</td>'
        f"{cell(v['slo'])}{cell(v['measured'])}{cell(v['limit'])}</tr>"
        for v in data["slo"]
    )
    its = data["iterations"]
    facts = [
        ("verdict", "PASSED" if data["passed"] else "FAILED"),
        ("requests", f"{data['requests']} in {data['duration_s']} s ({data['rate_per_s']} /s), "
                     f"{data['failures']} failed"),
        ("iterations (open model)", f"{its['scheduled']} scheduled, {its['started']} started, "
                                    f"{its['dropped']} dropped, {its['not_started_at_end']} still waiting at the end"),
        ("intended start", data.get("intended_start", "")),
        ("percentiles", data.get("percentiles", "")),
        ("stress", (data.get("stress") or {}).get("verdict", "-")),
        ("SLO thresholds", data.get("slo_thresholds", "")),
    ]  # fmt: skip
    title = f"load {data['profile']} on {data['target']} ({data['platform']}, {data['arrival']} model)"
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin:.8em 0}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}tr.bad{background:#fdd}tr.ok{background:#efe}"
        "</style></head><body>"
        f"<h1>{escape(title)}</h1><table>"
        + "".join(f"<tr><th>{escape(k)}</th>{cell(v)}</tr>" for k, v in facts)
        + f"</table>{chart_svg}<h2>SLOs</h2><table><tr><th></th><th>SLO</th><th>measured</th><th>limit</th></tr>"
        + slos
        + f"</table><h2>Latency</h2><table>{head}{''.join(latency)}</table></body></html>"
    )


def write_allure(
    directory: Path,
    verdicts: list[Verdict],
    chart_svg: str,
    figures_of: Mapping[str, Any],
    parameters: Mapping[str, str],
    start_ms: int,
    stop_ms: int,
) -> list[Path]:
    """One Allure result per SLO (epic load, feature = request name or overall), figures and chart attached."""
    written = []
    for v in verdicts:
        slo = v.slo
        feature = "overall" if slo.scope == OVERALL else slo.scope
        shown = "n/a" if v.measured is None else f"{v.measured:.4g}"
        result = AllureResult(
            name=f"SLO {slo.title}",
            full_name=slo_result_name(slo),
            status="passed" if v.passed else "failed",
            start_ms=start_ms,
            stop_ms=stop_ms,
            message="" if v.passed else f"SLO breached: {slo.title}: measured {shown}, limit {slo.limit:g}",
            description=f"measured {shown}, limit {slo.limit:g}; the threshold is an assumption ({slo.source})",
            labels={"epic": EPIC, "feature": feature, "story": slo.metric, "severity": "critical"},
            parameters=dict(parameters),
        )
        attachment = {"slo": slo.title, "measured": v.measured, "limit": slo.limit, "figures": figures_of}
        path = write_result(directory, result, attachment)
        _attach_chart(path, chart_svg)
        written.append(path)
    return written


def _attach_chart(result_path: Path, chart_svg: str) -> None:
    """Name the figures attachment and add the chart beside it (allure_results writes one JSON attachment)."""
    document = json.loads(result_path.read_text(encoding="utf-8"))
    for att in document["attachments"]:
        att["name"] = "figures"
    source = f"{uuid.uuid4()}-attachment.svg"
    (result_path.parent / source).write_text(chart_svg, encoding="utf-8")
    document["attachments"].append({"name": "latency over time", "source": source, "type": "image/svg+xml"})
    result_path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
