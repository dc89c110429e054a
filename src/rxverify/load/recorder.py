"""Every response time of a run, exactly (1 % buckets), per request name, overall and per second.

Each Locust process records its own requests; a worker sends what it recorded since its last
report to the master (Locust's `report_to_master` / `worker_report` events), where the parts
merge by adding counts, so percentiles and dropped iterations combine across workers.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rxverify.load.histogram import Histogram

OVERALL = "Aggregated"  # Locust's name for all requests together


@dataclass
class Second:
    """What happened in one wall-clock second (by epoch second)."""

    latency: Histogram = field(default_factory=Histogram)
    failures: int = 0
    dropped: int = 0


class Recorder:
    """The exact figures of one process (or, on the master, of all workers merged)."""

    def __init__(self) -> None:
        self.service: dict[str, Histogram] = {}  # from the actual send
        self.intended: dict[str, Histogram] = {}  # from the intended start (open model)
        self.failures: Counter[str] = Counter()
        self.seconds: dict[int, Second] = {}
        self.scheduled: Counter[str] = Counter()  # iterations the open model planned, per caller
        self.dropped: Counter[str] = Counter()  # iterations that could not start (no idle VU)
        self.cpu_s = 0.0  # generator CPU seconds
        self.guard_s = 0.0  # of them, in the guard: identity scan, ledger of writes
        self.first: float | None = None  # epoch of the first request sent
        self.last: float | None = None  # epoch of the last answer

    def request(self, name: str, start: float, response_ms: float, failed: bool, delay_ms: float | None) -> None:
        """Record one request: its name, epoch start, response time and, in the open model, start delay."""
        hist = self.service.get(name)
        if hist is None:
            hist = self.service[name] = Histogram()
        hist.record(response_ms)
        if delay_ms is not None:
            ihist = self.intended.get(name)
            if ihist is None:
                ihist = self.intended[name] = Histogram()
            ihist.record(response_ms + delay_ms)
        if failed:
            self.failures[name] += 1
        end = start + response_ms / 1000.0
        sec = self.seconds.get(int(start))
        if sec is None:
            sec = self.seconds[int(start)] = Second()
        sec.latency.record(response_ms + (delay_ms or 0.0))
        if failed:
            sec.failures += 1
        if self.first is None or start < self.first:
            self.first = start
        if self.last is None or end > self.last:
            self.last = end

    def iteration(self, caller: str, started: bool, at: float | None = None) -> None:
        """Count one scheduled iteration of the open model; not started means dropped."""
        self.scheduled[caller] += 1
        if not started:
            self.dropped[caller] += 1
            second = int(at if at is not None else time.time())
            sec = self.seconds.get(second)
            if sec is None:
                sec = self.seconds[second] = Second()
            sec.dropped += 1

    # ---- combining ----

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form, for a worker's report to the master."""
        return {
            "service": {k: v.to_dict() for k, v in self.service.items()},
            "intended": {k: v.to_dict() for k, v in self.intended.items()},
            "failures": dict(self.failures),
            "seconds": {
                str(s): {"h": v.latency.to_dict(), "f": v.failures, "d": v.dropped} for s, v in self.seconds.items()
            },
            "scheduled": dict(self.scheduled),
            "dropped": dict(self.dropped),
            "cpu_s": self.cpu_s,
            "guard_s": self.guard_s,
            "first": self.first,
            "last": self.last,
        }

    def merge_dict(self, data: Mapping[str, Any]) -> None:
        """Add a report made by to_dict."""
        for target, key in ((self.service, "service"), (self.intended, "intended")):
            for name, raw in (data.get(key) or {}).items():
                target.setdefault(name, Histogram()).merge(Histogram.from_dict(raw))
        self.failures.update(data.get("failures") or {})
        for s, raw in (data.get("seconds") or {}).items():
            sec = self.seconds.setdefault(int(s), Second())
            sec.latency.merge(Histogram.from_dict(raw["h"]))
            sec.failures += int(raw.get("f", 0))
            sec.dropped += int(raw.get("d", 0))
        self.scheduled.update(data.get("scheduled") or {})
        self.dropped.update(data.get("dropped") or {})
        self.cpu_s += float(data.get("cpu_s") or 0.0)
        self.guard_s += float(data.get("guard_s") or 0.0)
        for attr, pick in (("first", min), ("last", max)):
            value = data.get(attr)
            if value is not None:
                mine = getattr(self, attr)
                setattr(self, attr, value if mine is None else pick(mine, value))

    def take(self) -> Recorder:
        """Hand over what was recorded so far and start afresh (a worker's periodic report)."""
        taken = Recorder()
        taken.__dict__.update(self.__dict__)
        self.__init__()  # type: ignore[misc]
        return taken

    # ---- reading ----

    def overall(self, kind: str = "service") -> Histogram:
        """All request names together."""
        total = Histogram()
        for h in (self.service if kind == "service" else self.intended).values():
            total.merge(h)
        return total

    @property
    def requests(self) -> int:
        """Requests recorded."""
        return sum(h.count for h in self.service.values())

    @property
    def duration_s(self) -> float:
        """Seconds from the first send to the last answer."""
        if self.first is None or self.last is None:
            return 0.0
        return max(self.last - self.first, 1e-9)

    def window(self, start: float, end: float) -> tuple[Histogram, int, int]:
        """Latency, failures and dropped iterations of the whole seconds in [start, end)."""
        hist, failures, dropped = Histogram(), 0, 0
        for s, sec in self.seconds.items():
            if start <= s < end:
                hist.merge(sec.latency)
                failures += sec.failures
                dropped += sec.dropped
        return hist, failures, dropped
