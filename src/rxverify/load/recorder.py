"""Every response time of a run in 1 % log buckets, per request name, overall and per second.

Each latency is recorded twice: from the actual send, and from the request's intended send
time (the open model's schedule; in the closed model a request is intended when it is sent).
Percentiles read back are within histogram.ACCURACY (0.5 %) of the recorded latencies; counts
are exact. Each Locust process records its own requests and iterations; a worker sends what it
recorded since its last report to the master (Locust's `report_to_master` / `worker_report`
events), where the parts merge by adding counts, so the merged percentiles, dropped and
scheduled iterations are exactly those one process recording everything would have.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rxverify.load.histogram import Histogram

OVERALL = "Aggregated"  # Locust's name for all requests together


@dataclass
class Second:
    """What happened in one wall-clock second (by epoch second)."""

    service: Histogram = field(default_factory=Histogram)  # latency from the send, of requests sent in it
    intended: Histogram = field(default_factory=Histogram)  # the same requests, from their intended send
    failures: int = 0
    scheduled: int = 0  # open model: iterations whose scheduled start fell in this second
    dropped: int = 0  # of them, those that could not start within the start timeout

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return {"s": self.service.to_dict(), "i": self.intended.to_dict(), "f": self.failures,
                "n": self.scheduled, "d": self.dropped}  # fmt: skip

    def merge_dict(self, raw: Mapping[str, Any]) -> None:
        """Add a second made by to_dict."""
        self.service.merge(Histogram.from_dict(raw["s"]))
        self.intended.merge(Histogram.from_dict(raw["i"]))
        self.failures += int(raw.get("f", 0))
        self.scheduled += int(raw.get("n", 0))
        self.dropped += int(raw.get("d", 0))


@dataclass
class Window:
    """The figures of a span of whole seconds (a stress step, a progress interval, a tenth of a soak)."""

    service: Histogram
    intended: Histogram
    failures: int
    scheduled: int
    dropped: int

    @property
    def requests(self) -> int:
        """Requests sent in the window."""
        return self.service.count


class Recorder:
    """The figures of one process (or, on the master, of all workers merged)."""

    def __init__(self) -> None:
        self.service: dict[str, Histogram] = {}  # latency from the actual send
        self.intended: dict[str, Histogram] = {}  # latency from the intended send time
        self.failures: Counter[str] = Counter()
        self.seconds: dict[int, Second] = {}
        self.scheduled: Counter[str] = Counter()  # iterations the open model scheduled, per caller
        self.started: Counter[str] = Counter()  # of them, started by a VU within the start timeout
        self.dropped: Counter[str] = Counter()  # of them, not started within the start timeout
        self.start_wait = Histogram()  # how long each started iteration waited for an idle VU
        self.cpu_s = 0.0  # generator CPU seconds
        self.guard_s = 0.0  # of them, in the guard: identity scan, ledger of writes
        self.first: float | None = None  # epoch of the first request sent
        self.last: float | None = None  # epoch of the last answer
        # the warm-up: what was due before this epoch (connections opened, the platform's first calls
        # of each service) is counted here, never judged (--warm-up)
        self.judged_from: float | None = None
        self.warmup = 0  # requests due before judged_from, left out

    def _second(self, epoch: float) -> Second:
        sec = self.seconds.get(int(epoch))
        if sec is None:
            sec = self.seconds[int(epoch)] = Second()
        return sec

    def request(self, name: str, start: float, response_ms: float, failed: bool, delay_ms: float | None) -> None:
        """Record one request: name, epoch of the send, response time and how late it was sent (None: not late)."""
        if self._warming(start - (delay_ms or 0.0) / 1000.0):
            self.warmup += 1
            return
        from_intended = response_ms + (delay_ms or 0.0)
        hist = self.service.get(name)
        if hist is None:
            hist = self.service[name] = Histogram()
            self.intended[name] = Histogram()
        hist.record(response_ms)
        self.intended[name].record(from_intended)
        sec = self._second(start)
        sec.service.record(response_ms)
        sec.intended.record(from_intended)
        if failed:
            self.failures[name] += 1
            sec.failures += 1
        end = start + response_ms / 1000.0
        if self.first is None or start < self.first:
            self.first = start
        if self.last is None or end > self.last:
            self.last = end

    def _warming(self, due: float) -> bool:
        return self.judged_from is not None and due < self.judged_from

    def iteration_scheduled(self, caller: str, at: float) -> None:
        """The open model scheduled an iteration of `caller` to start at epoch `at`."""
        if self._warming(at):
            return
        self.scheduled[caller] += 1
        self._second(at).scheduled += 1

    def iteration_started(self, caller: str, waited_ms: float, at: float | None = None) -> None:
        """A VU started an iteration (scheduled at epoch `at`) `waited_ms` after its scheduled start."""
        if at is not None and self._warming(at):
            return
        self.started[caller] += 1
        self.start_wait.record(waited_ms)

    def iteration_dropped(self, caller: str, at: float) -> None:
        """An iteration scheduled at epoch `at` found no idle VU within the start timeout."""
        if self._warming(at):
            return
        self.dropped[caller] += 1
        self._second(at).dropped += 1

    # ---- combining ----

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form, for a worker's report to the master."""
        return {
            "service": {k: v.to_dict() for k, v in self.service.items()},
            "intended": {k: v.to_dict() for k, v in self.intended.items()},
            "failures": dict(self.failures),
            "seconds": {str(s): v.to_dict() for s, v in self.seconds.items()},
            "scheduled": dict(self.scheduled),
            "started": dict(self.started),
            "dropped": dict(self.dropped),
            "start_wait": self.start_wait.to_dict(),
            "cpu_s": self.cpu_s,
            "guard_s": self.guard_s,
            "first": self.first,
            "last": self.last,
            "warmup": self.warmup,
        }

    def merge_dict(self, data: Mapping[str, Any]) -> None:
        """Add a report made by to_dict."""
        for target, key in ((self.service, "service"), (self.intended, "intended")):
            for name, raw in (data.get(key) or {}).items():
                target.setdefault(name, Histogram()).merge(Histogram.from_dict(raw))
        self.failures.update(data.get("failures") or {})
        for s, raw in (data.get("seconds") or {}).items():
            self.seconds.setdefault(int(s), Second()).merge_dict(raw)
        self.scheduled.update(data.get("scheduled") or {})
        self.started.update(data.get("started") or {})
        self.dropped.update(data.get("dropped") or {})
        if data.get("start_wait"):
            self.start_wait.merge(Histogram.from_dict(data["start_wait"]))
        self.cpu_s += float(data.get("cpu_s") or 0.0)
        self.guard_s += float(data.get("guard_s") or 0.0)
        self.warmup += int(data.get("warmup") or 0)
        for attr, pick in (("first", min), ("last", max)):
            value = data.get(attr)
            if value is not None:
                mine = getattr(self, attr)
                setattr(self, attr, value if mine is None else pick(mine, value))

    def merge(self, other: Recorder) -> None:
        """Add another recorder's figures."""
        self.merge_dict(other.to_dict())

    def write(self, path: Path) -> None:
        """Leave these figures in a JSON file (a worker's whole part, which the master's merge must equal)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict()), encoding="utf-8")

    def take(self) -> Recorder:
        """Hand over what was recorded so far and start afresh (a worker's periodic report)."""
        taken = Recorder()
        taken.__dict__.update(self.__dict__)
        judged_from = self.judged_from
        self.__init__()  # type: ignore[misc]
        self.judged_from = judged_from  # the warm-up's end is the run's, not the part's
        return taken

    # ---- reading ----

    def overall(self, kind: str = "service") -> Histogram:
        """All request names together, from the send (`service`) or from the intended send (`intended`)."""
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

    def window(self, start: float, end: float) -> Window:
        """The figures of the whole seconds in [start, end)."""
        found = Window(Histogram(), Histogram(), 0, 0, 0)
        for s, sec in self.seconds.items():
            if start <= s < end:
                found.service.merge(sec.service)
                found.intended.merge(sec.intended)
                found.failures += sec.failures
                found.scheduled += sec.scheduled
                found.dropped += sec.dropped
        return found
