"""Service-level objectives from loadtests/slo.toml, checked against a run's recorded figures.

Every threshold is an assumption (DOMAIN.md: no response-time requirement is published); the
file says so and every verdict carries that mark and the file's source text.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rxverify.errors import UserError
from rxverify.load.recorder import OVERALL, Recorder, Window

# key in slo.toml -> (metric, comparison): "max" means the measured value must not exceed the limit.
# p*_ms are latencies from the actual send, intended_p*_ms from the intended send time (open model:
# the iteration's scheduled start, so the wait for an idle VU and a stall count; closed model: the send).
KEYS: dict[str, tuple[str, str]] = {
    "p50_ms": ("p50_ms", "max"),
    "p95_ms": ("p95_ms", "max"),
    "p99_ms": ("p99_ms", "max"),
    "intended_p50_ms": ("intended_p50_ms", "max"),
    "intended_p95_ms": ("intended_p95_ms", "max"),
    "intended_p99_ms": ("intended_p99_ms", "max"),
    "max_failure_ratio": ("failure_ratio", "max"),
    "min_throughput_ratio": ("throughput_ratio", "min"),
    "max_dropped_iterations": ("dropped_iterations", "max"),
    "max_dropped_ratio": ("dropped_ratio", "max"),
    "max_p95_drift_ratio": ("p95_drift_ratio", "max"),
    "max_failure_ratio_growth": ("failure_ratio_growth", "max"),
}
OVERALL_ONLY = {
    "min_throughput_ratio",
    "max_dropped_iterations",
    "max_dropped_ratio",
    "max_p95_drift_ratio",
    "max_failure_ratio_growth",
}
DRIFT_KEYS = {"max_p95_drift_ratio", "max_failure_ratio_growth"}  # judged on soak runs only
DRIFT_WINDOW = 0.1  # first and last tenth of a run are compared for drift
AT_RISK = 0.8  # a progress line names an upper-limit SLO whose value so far passed this share of its limit


@dataclass(frozen=True)
class Slo:
    """One objective: a metric of a scope (a request name or overall) and its limit."""

    scope: str
    key: str
    limit: float
    assumption: bool
    source: str

    @property
    def metric(self) -> str:
        """The measured figure this objective limits."""
        return KEYS[self.key][0]

    @property
    def comparison(self) -> str:
        """`max` (measured <= limit) or `min` (measured >= limit)."""
        return KEYS[self.key][1]

    @property
    def title(self) -> str:
        """How the objective reads in a report, e.g. `HamtaAktuellaOrdinationer p95_ms <= 200`."""
        op = "<=" if self.comparison == "max" else ">="
        scope = "overall" if self.scope == OVERALL else self.scope
        return f"{scope} {self.metric} {op} {self.limit:g}"


@dataclass(frozen=True)
class Verdict:
    """An objective and what the run measured."""

    slo: Slo
    measured: float | None  # None: nothing to measure (no such requests in this run)
    passed: bool

    @property
    def line(self) -> str:
        """One line for the console: which SLO, the measured value, the limit."""
        shown = "n/a" if self.measured is None else f"{self.measured:.4g}"
        state = "ok" if self.passed else "BREACHED"
        mark = " (assumption)" if self.slo.assumption else ""
        return f"SLO {state}: {self.slo.title}{mark}: measured {shown}, limit {self.slo.limit:g}"


@dataclass(frozen=True)
class SloSet:
    """Every objective of an SLO file."""

    path: Path
    slos: tuple[Slo, ...]
    source: str


def applicable(slos: SloSet, names: frozenset[str]) -> SloSet:
    """The objectives a run can measure: the overall ones, and those of the request names its interface sends.

    The SLO file holds objectives of the legacy and the FHIR request names; a run sends one
    interface's. Left in, the other's would have nothing to measure and read "passed (n/a)";
    left out, an objective of this run that measured nothing is a gap the gate names.
    """
    return replace(slos, slos=tuple(s for s in slos.slos if s.scope == OVERALL or s.scope in names))


def _objectives(scope: str, table: dict[str, Any], path: Path, assumption: bool, source: str) -> list[Slo]:
    found = []
    for key, value in table.items():
        if key in ("assumption", "source"):
            continue
        if key not in KEYS:
            raise UserError(f"SLO file {path} [{scope}]: unknown objective {key!r} (known: {', '.join(KEYS)})")
        if scope != OVERALL and key in OVERALL_ONLY:
            raise UserError(f"SLO file {path} [{scope}]: {key} applies to [overall] only")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise UserError(f"SLO file {path} [{scope}] {key}: expected a non-negative number, got {value!r}")
        found.append(Slo(scope, key, float(value), bool(table.get("assumption", assumption)), source))
    return found


def load_slos(path: Path) -> SloSet:
    """Read an SLO file; a malformed one is one UserError."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read SLO file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"SLO file {path} is not valid TOML: {exc}") from None
    assumption = raw.get("assumption")
    if assumption is not True:
        raise UserError(f"SLO file {path}: set `assumption = true`: no response-time requirement is published")
    source = str(raw.get("source", ""))
    overall = raw.get("overall", {})
    requests = raw.get("requests", {})
    if not isinstance(overall, dict) or not isinstance(requests, dict):
        raise UserError(f"SLO file {path}: [overall] and [requests.NAME] must be tables")
    slos = _objectives(OVERALL, overall, path, True, source)
    for name, table in requests.items():
        if not isinstance(table, dict):
            raise UserError(f"SLO file {path}: [requests.{name}] must be a table")
        slos += _objectives(name, table, path, True, source)
    if not slos:
        raise UserError(f"SLO file {path} defines no objectives")
    return SloSet(path, tuple(slos), source)


def latency_metric(metric: str) -> tuple[str, float] | None:
    """For a latency metric, which latency (`service` from the send, `intended`) and the percentile (0.95)."""
    kind = "intended" if metric.startswith("intended_") else "service"
    core = metric.removeprefix("intended_")
    if core.startswith("p") and core.endswith("_ms") and core[1:-3].isdigit():
        return kind, int(core[1:-3]) / 100
    return None


def measure(recorder: Recorder, scope: str, metric: str, offered: float | None) -> float | None:
    """The value of `metric` for `scope` (a request name or OVERALL), or None when not measurable."""
    service = recorder.overall() if scope == OVERALL else recorder.service.get(scope)
    if service is None or not service.count:
        return None
    latency = latency_metric(metric)
    if latency is not None:
        kind, fraction = latency
        hist = service if kind == "service" else (
            recorder.overall("intended") if scope == OVERALL else recorder.intended.get(scope))  # fmt: skip
        return hist.percentile(fraction) if hist is not None else None
    if metric == "failure_ratio":
        failed = sum(recorder.failures.values()) if scope == OVERALL else recorder.failures.get(scope, 0)
        return failed / service.count
    if metric == "throughput_ratio":
        return recorder.requests / offered if offered else None
    if metric == "dropped_iterations":
        return float(sum(recorder.dropped.values()))
    if metric == "dropped_ratio":
        scheduled = sum(recorder.scheduled.values())
        return sum(recorder.dropped.values()) / scheduled if scheduled else None
    if metric in ("p95_drift_ratio", "failure_ratio_growth"):
        return drift(recorder)[metric]
    raise ValueError(metric)


def window_value(slo: Slo, window: Window) -> float | None:
    """The value of an overall objective's metric over a window of seconds, or None when not judged there."""
    if not window.requests:
        return None
    latency = latency_metric(slo.metric)
    if latency is not None:
        kind, fraction = latency
        return (window.service if kind == "service" else window.intended).percentile(fraction)
    if slo.metric == "failure_ratio":
        return window.failures / window.requests
    if slo.metric == "dropped_ratio":
        return window.dropped / window.scheduled if window.scheduled else None
    if slo.metric == "dropped_iterations":
        return float(window.dropped)
    return None  # throughput and drift concern the whole run


def check_window(slos: SloSet, window: Window) -> list[Verdict]:
    """The overall objectives judged on a window only (a stress step); those not judged there are left out."""
    verdicts = []
    for slo in slos.slos:
        if slo.scope != OVERALL:
            continue
        value = window_value(slo, window)
        if value is not None:
            verdicts.append(Verdict(slo, value, _holds(slo, value)))
    return verdicts


def at_risk(verdicts: list[Verdict]) -> list[Verdict]:
    """The verdicts breached, or (upper limits) past AT_RISK of their limit: what a progress line names."""
    return [v for v in verdicts if v.measured is not None and
            (not v.passed or (v.slo.comparison == "max" and v.measured > AT_RISK * v.slo.limit))]  # fmt: skip


def _holds(slo: Slo, value: float) -> bool:
    return value <= slo.limit if slo.comparison == "max" else value >= slo.limit


def drift(recorder: Recorder) -> dict[str, float | None]:
    """p95 from the intended start of the last tenth of the run over the first, and the growth of the failure ratio."""
    if not recorder.seconds:
        return {"p95_drift_ratio": None, "failure_ratio_growth": None}
    first, last = min(recorder.seconds), max(recorder.seconds) + 1
    width = max(1.0, (last - first) * DRIFT_WINDOW)
    early, late = recorder.window(first, first + width), recorder.window(last - width, last)
    p_early, p_late = early.intended.percentile(0.95), late.intended.percentile(0.95)
    ratio = p_late / p_early if p_early and p_late else None
    growth = (
        late.failures / late.requests - early.failures / early.requests if early.requests and late.requests else None
    )
    return {"p95_drift_ratio": ratio, "failure_ratio_growth": growth}


def check(slos: SloSet, recorder: Recorder, offered: float | None, soak: bool = False) -> list[Verdict]:
    """Every objective judged; one with nothing to measure passes (and shows n/a)."""
    verdicts = []
    for slo in slos.slos:
        if slo.key in DRIFT_KEYS and not soak:
            continue
        value = measure(recorder, slo.scope, slo.metric, offered)
        if value is None:
            verdicts.append(Verdict(slo, None, True))
            continue
        verdicts.append(Verdict(slo, value, _holds(slo, value)))
    return verdicts
