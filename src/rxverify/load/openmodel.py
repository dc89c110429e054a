"""The open model: iterations start on schedule, like k6's constant- and ramping-arrival-rate executors.

Locust's users wait for each answer before the next request (a closed model), so a platform
that stalls is sent less and its stall hides in the figures (coordinated omission, DOMAIN.md;
wrk2 and HdrHistogram measure from the intended start for this reason). Here a scheduler
greenlet schedules iterations at the arrival rate whether or not earlier ones finished. The
caller's Locust users are the pool of virtual users (k6's maxVUs). A scheduled iteration waits
in its caller's backlog until a VU is idle; the wait counts in the latency from the intended
start of its requests, so a stall that holds every VU shows in full. An iteration that no VU
took up within the start timeout is dropped and counted (only then: waiting is not dropping).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gevent
from gevent.queue import SimpleQueue

from rxverify.load.recorder import Recorder

IDLE_POLL_S = 0.05  # how often a caller with no arrivals (rate 0) looks again
MAX_CATCH_UP = 10_000  # iterations scheduled in one pass after the scheduler itself was late
REAP_SLACK_S = 0.001  # wake just past an expiry, so the expired iteration is strictly past the timeout


class ArrivalSchedule:
    """Schedules each caller's iterations at `rate(caller, t)` per second, t from the start, for its VUs."""

    def __init__(
        self, callers: list[str], rate: Callable[[str, float], float], recorder: Recorder, start_timeout_s: float
    ) -> None:
        self.rate = rate
        self.recorder = recorder
        self.start_timeout_s = start_timeout_s
        # scheduled starts (epoch) not yet taken up by a VU, oldest first
        self.backlog: dict[str, SimpleQueue[float]] = {c: SimpleQueue() for c in callers}
        self.start_epoch = 0.0
        self._start_mono = 0.0
        self._greenlet: gevent.Greenlet | None = None
        self.started = False

    def start(self) -> None:
        """Start scheduling now."""
        self._start_mono = time.monotonic()
        self.start_epoch = time.time()
        self.started = True
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        """Stop scheduling; iterations already past the start timeout count as dropped (VUs are stopped by Locust)."""
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None
            self._reap(self.now())

    def now(self) -> float:
        """The schedule's clock (epoch seconds, advancing monotonically)."""
        return self.start_epoch + (time.monotonic() - self._start_mono)

    def next_iteration(self, caller: str) -> float:
        """Block an idle VU of `caller` until a scheduled iteration is there; returns its scheduled start (epoch).

        Iterations that waited longer than the start timeout are dropped on the way.
        """
        backlog = self.backlog[caller]
        while True:
            intended = backlog.get()
            waited = self.now() - intended
            if waited <= self.start_timeout_s:
                self.recorder.iteration_started(caller, max(0.0, waited) * 1000.0, intended)
                return intended
            self.recorder.iteration_dropped(caller, intended)

    def _reap(self, now: float) -> float | None:
        """Drop what waited past the start timeout while every VU was busy; returns the next expiry (epoch)."""
        soonest: float | None = None
        for caller, backlog in self.backlog.items():
            while backlog.qsize():
                head = backlog.peek_nowait()
                if now - head <= self.start_timeout_s:
                    expiry = head + self.start_timeout_s
                    soonest = expiry if soonest is None else min(soonest, expiry)
                    break
                backlog.get_nowait()
                self.recorder.iteration_dropped(caller, head)
        return soonest

    def _run(self) -> None:
        due = dict.fromkeys(self.backlog, 0.0)  # seconds from start of each caller's next arrival
        while True:
            now = time.monotonic() - self._start_mono
            for caller, backlog in self.backlog.items():
                n = 0
                while due[caller] <= now and n < MAX_CATCH_UP:
                    rate = self.rate(caller, due[caller])
                    if rate <= 0:
                        due[caller] = now + IDLE_POLL_S
                        break
                    intended = self.start_epoch + due[caller]
                    self.recorder.iteration_scheduled(caller, intended)
                    backlog.put_nowait(intended)
                    due[caller] += 1.0 / rate
                    n += 1
            expiry = self._reap(self.start_epoch + now)
            wake = min(due.values())
            if expiry is not None:
                wake = min(wake, expiry - self.start_epoch + REAP_SLACK_S)
            gevent.sleep(max(0.0, wake - (time.monotonic() - self._start_mono)))
