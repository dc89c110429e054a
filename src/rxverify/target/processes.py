"""The reference-platform processes a run starts, written down so that no killed run leaves any behind.

A run that starts local platforms writes one file into the runtime folder (owner-only, see
`runtime_dir`): who started them (pid and start time of the owning process), each platform's
pid and start time, and the run's temporary folder (stores, ticket key, audit logs). It removes
the file when it has stopped them. A run killed with SIGKILL cannot: the next run that starts
local platforms (`clean_orphans`, from `local_platforms`) finds the file of an owner that is no
longer alive, stops the platforms still running under the recorded pid and start time (a
recycled pid is never touched) and removes the temporary folder, ticket key included.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STOP_WAIT_S = 5.0  # an orphan gets this long after SIGTERM before SIGKILL
RUN_DIR_PREFIX = "rxverify-"  # the temporary folder of a run, under the system's temporary folder


def runtime_dir() -> Path:
    """Where runs write down their platforms: $RXVERIFY_RUNTIME_DIR, else $XDG_RUNTIME_DIR/rxverify, else /tmp."""
    explicit = os.environ.get("RXVERIFY_RUNTIME_DIR")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if explicit:
        path = Path(explicit)
    elif xdg:
        path = Path(xdg) / "rxverify"
    else:
        path = Path(tempfile.gettempdir()) / f"rxverify-runtime-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def start_time(pid: int) -> int | None:
    """The start time of process `pid` in clock ticks since boot (None when it does not exist)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: count fields after it
    return int(stat.rsplit(")", 1)[1].split()[19])


def _alive(pid: int, started: int | None) -> bool:
    """Whether `pid` is still the process that started at `started`."""
    now = start_time(pid)
    return now is not None and now == started


def _is_platform(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"refplatform" in cmdline


@dataclass
class RunProcesses:
    """The file one run keeps in the runtime folder while its platforms run."""

    tmp: Path
    path: Path = field(init=False)
    platforms: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path = runtime_dir() / f"run-{os.getpid()}-{self.tmp.name}.json"
        self._write()

    def _write(self) -> None:
        document = {
            "owner": os.getpid(),
            "ownerStart": start_time(os.getpid()),
            "tmp": str(self.tmp),
            "platforms": self.platforms,
        }
        partial = self.path.with_suffix(".part")
        partial.write_text(json.dumps(document), encoding="utf-8")
        partial.replace(self.path)

    def started(self, platform: str, pid: int) -> None:
        """Write down a platform process this run started."""
        self.platforms.append({"platform": platform, "pid": pid, "start": start_time(pid)})
        self._write()

    def done(self) -> None:
        """Every platform stopped and the temporary folder removed: forget the run."""
        self.path.unlink(missing_ok=True)


def _stop(pid: int, started: int | None) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline and _alive(pid, started):
        time.sleep(0.05)
    if _alive(pid, started):
        os.kill(pid, signal.SIGKILL)


def _removable(tmp: Path) -> bool:
    """Only a run folder of ours: named with our prefix and owned by this user."""
    try:
        return tmp.name.startswith(RUN_DIR_PREFIX) and tmp.is_dir() and tmp.stat().st_uid == os.getuid()
    except OSError:
        return False


def clean_orphans() -> list[str]:
    """Stop the platforms of runs whose owner died and remove their folders; returns what was done, one line each."""
    done = []
    for path in sorted(runtime_dir().glob("run-*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            owner, owner_start = int(record["owner"]), record.get("ownerStart")
            platforms = list(record.get("platforms", []))
            tmp = Path(record["tmp"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours to judge
        if _alive(owner, owner_start):
            continue
        stopped = []
        for entry in platforms:
            pid, started = int(entry["pid"]), entry.get("start")
            if _alive(pid, started) and _is_platform(pid):
                _stop(pid, started)
                stopped.append(f"{entry.get('platform', '?')} (pid {pid})")
        removed = _removable(tmp)
        if removed:
            shutil.rmtree(tmp, ignore_errors=True)
        path.unlink(missing_ok=True)
        what = ", ".join(stopped) or "no platform still running"
        done.append(
            f"rxverify: cleaned up after a killed run (pid {owner}): stopped {what}"
            + (f"; removed {tmp} (its stores and ticket key)" if removed else "")
        )
    for line in done:
        print(line, file=sys.stderr, flush=True)
    return done


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so every `with` block unwinds and the platforms it started stop."""


_REQUESTED: list[int] = []  # the stop signals received (their exceptions may have been swallowed)


def note_stop(signum: int) -> None:
    """Record a stop signal, from any handler that raises its exception (raise_lost_stop reads it)."""
    _REQUESTED.append(signum)


def raise_lost_stop() -> None:
    """Raise a stop whose exception Python swallowed: received, yet the program goes on.

    A signal handler's exception is raised wherever the main thread is; inside a garbage
    collector callback or a `__del__` (hypothesis keeps one on gc) Python only prints it as
    "Exception ignored" and carries on (CI once saw a SIGINT'd contract run finish its tests and
    exit 0). Called between tests, this raises it again; once per signal.
    """
    if _REQUESTED:
        signum = _REQUESTED.pop()
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def stop_on_signals() -> Callable[[], None]:
    """Make SIGTERM and SIGINT unwind the program (as Ctrl-C does) instead of ending it on the spot.

    Python's default for SIGTERM ends the process without running a single `finally`: the
    platforms it started would be left running with their ticket key. Here both signals raise
    (`Terminated` for SIGTERM, KeyboardInterrupt for SIGINT), and a second signal while the
    program unwinds is ignored so the clean-up is not cut short (SIGKILL still ends it; the
    next start cleans up after it). A handler someone else installed is kept; only in the main
    thread. Returns what restores the previous handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def unwind(signum: int, frame: Any) -> None:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        note_stop(signum)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    for sig, handler in previous.items():
        if handler in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(sig, unwind)

    def restore() -> None:
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)

    return restore
