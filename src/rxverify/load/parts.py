"""A worker's last part of a run's figures, and the master's bounded wait for every one of them.

Locust's master gives its workers' last reports half a second after `quit`; on a busy machine
they arrive later, and the master's figures would miss the run's last seconds. So each worker
sends what it recorded since its last report as soon as its users have stopped (a message of
its own), and the master, once all its workers have stopped, waits for those before it judges.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import gevent

LAST_PART = "rxverify_last_part"  # the message a worker sends its last part in
WAIT_S = 10.0  # how long a master waits for every worker's last part
POLL_S = 0.1


def await_last_parts(workers: Iterable[str], arrived: set[str], wait_s: float = WAIT_S) -> list[str]:
    """Yield to the message loop until every worker's last part arrived (or `wait_s` passed); returns the missing."""
    expected = set(workers)
    deadline = time.monotonic() + wait_s
    while not expected <= arrived and time.monotonic() < deadline:
        gevent.sleep(POLL_S)
    return sorted(expected - arrived)
