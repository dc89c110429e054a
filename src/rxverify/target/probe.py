"""Is every platform of a run there? One GET per interface, through the run's guard.

Every part of rxverify that talks to a target probes it before its first real request (the
contract suite, the load runtime, `verify`) and the contract suite probes again when a test
fails, so that a platform that is down is one line, "platform unreachable: NAME at URL",
instead of a wall of transport errors. Any HTTP answer counts as reachable (a base URL need
not serve anything itself); only a transport failure (no connection, no answer in time) does
not. A production-class target is never probed: nothing but the verification plan's own
steps is sent there, so its first step is the probe.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

from rxverify.errors import UserError

if TYPE_CHECKING:
    from rxverify.target.run import Run

PROBE_TIMEOUT_S = 5.0  # a platform that takes longer to answer a GET of its base is not usable for a run


@dataclass(frozen=True)
class Unreachable:
    """A platform interface that did not answer."""

    platform: str
    url: str
    reason: str

    @property
    def line(self) -> str:
        """What the user reads."""
        return f"platform unreachable: {self.platform} at {self.url} ({self.reason})"


def probe_urls(run: Run, platforms: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """(platform, base URL) of every interface of the run's target (or of `platforms` only)."""
    wanted = set(platforms) if platforms is not None else None
    out = []
    for name, endpoints in run.target.platforms.items():
        if wanted is not None and name not in wanted:
            continue
        out += [(name, url) for url in dict.fromkeys((endpoints.legacy, endpoints.fhir)) if url]
    return out


def unreachable(
    run: Run, platforms: Iterable[str] | None = None, timeout: float = PROBE_TIMEOUT_S
) -> list[Unreachable]:
    """The interfaces of the run's platforms that give no HTTP answer (none on a production target)."""
    if run.target.environment_class == "production":
        return []
    down = []
    with run.session() as session:
        for name, url in probe_urls(run, platforms):
            try:
                session.get(url, timeout=timeout, allow_redirects=False).close()
            except requests.Timeout:
                down.append(Unreachable(name, url, f"no answer within {timeout:g} s"))
            except requests.RequestException as exc:
                down.append(Unreachable(name, url, type(exc).__name__))
    return down


def require_reachable(run: Run, platforms: Iterable[str] | None = None) -> None:
    """Raise one UserError naming every platform of the run that does not answer."""
    down = unreachable(run, platforms)
    if down:
        raise UserError("; ".join(d.line for d in down))
