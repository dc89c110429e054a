"""The open model: iterations start on schedule, like k6's constant- and ramping-arrival-rate executors.

Locust's users wait for each answer before the next request (a closed model), so a platform
that stalls is sent less and its stall hides in the figures (coordinated omission, DOMAIN.md).
Here a scheduler greenlet starts iterations at the arrival rate whether or not earlier ones
finished. The caller's Locust users are the pool of virtual users (k6's VUs): an iteration is
handed to an idle one; when none is idle the iteration is dropped and counted. Each iteration
carries its intended start, so latency is measured from it as well as from the actual send.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gevent
from gevent.queue import Channel, Full

from rxverify.load.recorder import Recorder

IDLE_POLL_S = 0.05  # how often a caller with no arrivals (rate 0) looks again
MAX_CATCH_UP = 10_000  # iterations judged in one pass after the scheduler itself was late


class ArrivalSchedule:
    """Hands iterations to each caller's pool of VUs at `rate(caller, t)` per second, t from the start."""

    def __init__(self, callers: list[str], rate: Callable[[str, float], float], recorder: Recorder) -> None:
        self.rate = rate
        self.recorder = recorder
        self.channels: dict[str, Channel] = {c: Channel() for c in callers}
        self.start_epoch = 0.0
        self._greenlet: gevent.Greenlet | None = None
        self.started = False

    def start(self) -> None:
        """Start scheduling now."""
        self.start_epoch = time.time()
        self.started = True
        self._greenlet = gevent.spawn(self._run, time.monotonic())

    def stop(self) -> None:
        """Stop scheduling (VUs waiting for an iteration are stopped by Locust)."""
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def next_iteration(self, caller: str) -> float:
        """Block a VU of `caller` until an iteration is handed to it; returns the iteration's intended start (epoch)."""
        return float(self.channels[caller].get())

    def _run(self, start: float) -> None:
        due = dict.fromkeys(self.channels, 0.0)  # seconds from start of each caller's next arrival
        while True:
            now = time.monotonic() - start
            for caller, channel in self.channels.items():
                n = 0
                while due[caller] <= now and n < MAX_CATCH_UP:
                    rate = self.rate(caller, due[caller])
                    if rate <= 0:
                        due[caller] = now + IDLE_POLL_S
                        break
                    intended = self.start_epoch + due[caller]
                    try:
                        channel.put_nowait(intended)
                        self.recorder.iteration(caller, True)
                    except Full:
                        self.recorder.iteration(caller, False, intended)
                    due[caller] += 1.0 / rate
                    n += 1
            wait = min(due.values()) - (time.monotonic() - start)
            gevent.sleep(max(0.0, wait))
