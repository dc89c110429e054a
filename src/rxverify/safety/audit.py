"""The egress audit: every request a platform received must be one the guard let through.

The local reference platforms, started with an audit log, write down a digest of every request
they receive (method, request target, sha256 of the body: `refplatform --audit-log`); the
guard's transports digest every request they wrote to a socket the same way
(`Guard.sent_log`). After the platforms stop, the two must be the same multiset: a request
the platforms received that the guard did not send went around the guard.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rxverify.safety.guard import Guard
from rxverify.safety.identity import mask_identities

SHOWN = 5  # problems listed by name; the rest counted


def received(audit_dir: Path) -> Counter[str]:
    """The digests of every request the platforms wrote to their audit logs in `audit_dir`."""
    seen: Counter[str] = Counter()
    for path in sorted(audit_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                seen[line.strip()] += 1
    return seen


def compare_egress(guard: Guard, audit_dir: Path) -> list[str]:
    """Every request the platforms received that the guard did not send: each one a failure.

    The other way round is no safety matter and is not listed: a request the guard counted as
    sent can fail to arrive (a load run's users are stopped with requests in flight).
    """
    sent = guard.sent_log if guard.sent_log is not None else Counter()
    got = received(audit_dir)
    around = got - sent
    problems = []
    listed = list(around.items())[:SHOWN]
    for digest, n in listed:
        method, target, _ = [*digest.split(" ", 2), "", ""][:3]
        problems.append(f"the platforms received {n} × {method} {mask_identities(target)} that the guard never sent")
    if len(around) > SHOWN:
        more = sum(around.values()) - sum(n for _, n in listed)
        problems.append(f"… and {more} more requests around the guard")
    return problems


def egress_line(guard: Guard, problems: list[str] | None) -> str:
    """One line for a run's end: what left through the guard, and the audit's verdict."""
    counts = guard.counts
    refused = sum(n for reason, n in counts.items() if reason not in ("passed", "sent"))
    line = f"rxverify guard: {counts['sent']} requests sent, {refused} refused"
    if problems is None:
        return line
    verdict = "egress audit passed: every request the platforms received was sent by the guard"
    return f"{line}; {verdict}" if not problems else f"{line}; EGRESS AUDIT FAILED: {'; '.join(problems)}"
