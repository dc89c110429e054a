"""Progress lines of a running load test: what a performance engineer watches while it runs.

Every interval one line on stderr: the rate offered and achieved, p95 from the intended start
(and from the send), dropped iterations and failed requests over the last interval, and the
SLOs at risk judged on the run so far. A master sees its workers' figures a report later, so
its lines are about the seconds before that lag.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

import gevent

from rxverify.load.recorder import Recorder
from rxverify.load.slo import SloSet, at_risk, check

SHOWN_AT_RISK = 4  # SLOs a line names (overall ones first, as slo.toml lists them); the rest are counted


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


class Progress:
    """Prints a progress line every `interval_s` seconds while the run lasts."""

    def __init__(
        self,
        recorder: Recorder,
        slos: SloSet,
        interval_s: float,
        lag_s: float,
        offered_total: Callable[[], float | None],
        offered_rate: Callable[[float], float] | None,
        out: TextIO | None = None,
    ) -> None:
        """`offered_total`: requests offered so far; `offered_rate(t)`: closed model, the profile's rate t s in
        (None: open model, where the scheduled iterations are the offer)."""
        self.recorder = recorder
        self.slos = slos
        self.interval_s = interval_s
        self.lag_s = lag_s
        self.offered_total = offered_total
        self.offered_rate = offered_rate
        self.out = out
        self.started = 0.0
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        """Start printing (the run starts now)."""
        self.started = time.time()
        self._greenlet = gevent.spawn(self._loop)

    def stop(self) -> None:
        """Stop printing."""
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _loop(self) -> None:
        while True:
            gevent.sleep(self.interval_s)
            print(self.line(time.time()), file=self.out or sys.stderr, flush=True)

    def line(self, now: float) -> str:
        """The progress line at epoch `now`: the last interval's whole seconds (before the lag) and the SLOs so far."""
        end = int(now - self.lag_s)
        span = max(1, round(self.interval_s))
        judged_from = self.recorder.judged_from
        if judged_from is not None and end <= judged_from:
            return (f"rxverify progress {now - self.started:4.0f} s: warm-up, {self.recorder.warmup} requests sent so "
                    f"far, not judged (judged from {judged_from - self.started:.0f} s)")
        window = self.recorder.window(end - span, end)
        if self.offered_rate is None:
            offered = window.scheduled / span
        else:
            offered = sum(self.offered_rate(s + 0.5 - self.started) for s in range(end - span, end)) / span
        risky = at_risk(check(self.slos, self.recorder, self.offered_total()))
        risk = "; ".join(f"{v.slo.title} at {v.measured:.4g}" for v in risky[:SHOWN_AT_RISK]) or "none"
        if len(risky) > SHOWN_AT_RISK:
            risk += f"; {len(risky) - SHOWN_AT_RISK} more"
        failed = f"{window.failures} ({window.failures / window.requests:.2%})" if window.requests else "0"
        return (
            f"rxverify progress {now - self.started:4.0f} s: offered {offered:.1f}/s, achieved "
            f"{window.requests / span:.1f}/s, p95 from intended start {_ms(window.intended.percentile(0.95))} "
            f"(from send {_ms(window.service.percentile(0.95))}), dropped {window.dropped}, errors {failed} "
            f"(last {span} s); SLOs at risk: {risk}"
        )
