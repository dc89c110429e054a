"""Latency histograms of 1 % log buckets (HDR-like): percentiles within 0.5 %, mergeable exactly.

Locust rounds response times to about two significant digits before its percentiles (DOMAIN.md).
Here every latency is counted in a logarithmic bucket of ratio 1.01 and read back as the bucket's
geometric middle, so a percentile is within ACCURACY (sqrt(1.01) - 1, just under 0.5 %) of the
latency at that rank, at any magnitude from 1 µs up (the first bucket holds anything faster);
count, minimum and maximum are exact, the mean exact up to float rounding. Two histograms merge
by adding counts, so merged percentiles are exactly those of one histogram of all the latencies.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping

PRECISION = 0.01  # relative width of a bucket
_LOG_STEP = math.log1p(PRECISION)
ACCURACY = math.sqrt(1 + PRECISION) - 1  # worst relative error of a percentile read back (about 0.499 %)
_FLOOR_MS = 0.001  # 1 µs: anything faster lands in the first bucket


def bucket_of(ms: float) -> int:
    """The bucket index of a value in milliseconds (floor: below 1 ms the logarithm is negative)."""
    return math.floor(math.log(ms if ms > _FLOOR_MS else _FLOOR_MS) / _LOG_STEP)


def value_of(bucket: int) -> float:
    """The value (ms) a bucket stands for: its geometric middle."""
    return math.exp((bucket + 0.5) * _LOG_STEP)


class Histogram:
    """Counts of latencies per 1 % bucket, with the exact minimum, maximum and sum."""

    __slots__ = ("buckets", "count", "max", "min", "total")

    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0

    def record(self, ms: float) -> None:
        """Add one latency (milliseconds)."""
        self.buckets[bucket_of(ms)] += 1
        self.count += 1
        self.total += ms
        if ms < self.min:
            self.min = ms
        if ms > self.max:
            self.max = ms

    def merge(self, other: Histogram) -> None:
        """Add `other`'s counts to this one."""
        self.buckets.update(other.buckets)
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def percentile(self, fraction: float) -> float | None:
        """The latency (ms) at `fraction` (0.95 for p95) within ACCURACY, or None when empty; p100 is the exact max."""
        if not self.count:
            return None
        if fraction >= 1.0:
            return self.max
        rank = max(1, math.ceil(fraction * self.count))
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return min(max(value_of(bucket), self.min), self.max)
        return self.max

    @property
    def mean(self) -> float | None:
        """The mean (ms; exact up to float rounding), or None when empty."""
        return self.total / self.count if self.count else None

    def to_dict(self) -> dict[str, object]:
        """A JSON-able form (for Locust's worker reports and the summary)."""
        return {
            "b": {str(k): v for k, v in self.buckets.items()},
            "n": self.count,
            "sum": self.total,
            "min": self.min if self.count else None,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Histogram:
        """The inverse of to_dict."""
        h = cls()
        raw = data.get("b") or {}
        assert isinstance(raw, Mapping)
        h.buckets = Counter({int(k): int(v) for k, v in raw.items()})
        h.count = int(data.get("n") or 0)  # type: ignore[call-overload]
        h.total = float(data.get("sum") or 0.0)  # type: ignore[arg-type]
        low = data.get("min")
        h.min = float(low) if low is not None else math.inf  # type: ignore[arg-type]
        h.max = float(data.get("max") or 0.0)  # type: ignore[arg-type]
        return h

    @classmethod
    def of(cls, values: Iterable[float]) -> Histogram:
        """A histogram of the given latencies."""
        h = cls()
        for v in values:
            h.record(v)
        return h
