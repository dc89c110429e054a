"""What a load run leaves: a JSON summary, a latency-over-time chart (SVG) and Allure results per SLO."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from rxverify.allure_results import AllureResult, write_result
from rxverify.load.histogram import Histogram
from rxverify.load.recorder import OVERALL, Recorder
from rxverify.load.slo import Slo, Verdict

EPIC = "load"
PERCENTILES = (0.50, 0.95, 0.99)


def figures(hist: Histogram | None) -> dict[str, float | int | None]:
    """Count, exact mean, p50/p95/p99 (1 % buckets) and the exact max of a histogram."""
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
    """The JSON summary: rates, exact percentiles, SLO verdicts, dropped iterations, generator CPU."""
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
    dropped = sum(recorder.dropped.values())
    return {
        **context,
        "passed": all(v.passed for v in verdicts),
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
        "iterations": {
            "scheduled": scheduled,
            "dropped": dropped,
            "scheduled_by_caller": dict(recorder.scheduled),
            "dropped_by_caller": dict(recorder.dropped),
        },
        "generator": {
            "cpu_s": round(recorder.cpu_s, 3),
            "requests_per_cpu_s": round(total / recorder.cpu_s, 1) if recorder.cpu_s else None,
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


def latency_chart(recorder: Recorder, title: str, width: int = 900, height: int = 360) -> str:
    """An SVG of p50/p95/p99 per second (from the intended start in the open model) with failures and drops."""
    seconds = sorted(recorder.seconds)
    pad_l, pad_r, pad_t, pad_b = 60, 20, 30, 40
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{pad_l}" y="18" font-size="13">{escape(title)}</text>',
    ]
    if not seconds:
        out.append(f'<text x="{pad_l}" y="{pad_t + 20}">no requests recorded</text></svg>')
        return "".join(out)
    t0, t1 = seconds[0], seconds[-1] + 1
    series = {p: [(s, recorder.seconds[s].latency.percentile(p)) for s in seconds] for p in PERCENTILES}
    top = max((v for pts in series.values() for _, v in pts if v is not None), default=1.0) * 1.1 or 1.0

    def x(s: float) -> float:
        return pad_l + (s - t0) / max(t1 - t0, 1) * plot_w

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
            out.append(f'<rect x="{x(s):.1f}" y="{pad_t}" width="{max(plot_w / max(t1 - t0, 1), 1):.1f}" '
                       f'height="{plot_h}" fill="#fdd" opacity="0.6"/>')  # fmt: skip
    colours = {0.50: "#2a7", 0.95: "#e80", 0.99: "#c22"}
    for p, pts in series.items():
        path = " ".join(f"{x(s + 0.5):.1f},{y(v):.1f}" for s, v in pts if v is not None)
        out.append(f'<polyline fill="none" stroke="{colours[p]}" stroke-width="1.5" points="{path}"/>')
        lx = pad_l + plot_w - 200 + 65 * PERCENTILES.index(p)
        out.append(f'<text x="{lx}" y="18" fill="{colours[p]}">p{round(p * 100)}</text>')
    out.append(f'<text x="{pad_l + plot_w - 200 + 195}" y="18" fill="#c66" text-anchor="end">'
               "shaded: failures or drops</text>")  # fmt: skip
    out.append("</svg>")
    return "".join(out)


def slo_result_name(slo: Slo) -> str:
    """The full name (and test id) of an SLO's Allure result: what a load run's manifest lists it as."""
    return f"rxverify.load.slo.{slo.scope}.{slo.key}"


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
