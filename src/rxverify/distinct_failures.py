"""Every distinct check failure of a test, across all its examples, reported together: one never hides another.

Schemathesis raises the failures of one example as a `FailureGroup`, and hypothesis reports
the example it kept: it stops at the first failing explicit example (schemathesis's examples
and coverage cases) before any generated one runs, and it shrinks to the example of one
failure. A check that fails on another example than that one was never reported: against a
third-party FHIR server, "TRACE returned 404" hid that the GET answered a searchset Bundle
where a CapabilityStatement is declared.

A conformance test instead sends each example through `FailureCollector.collect`: each distinct
failure is kept with the first example that showed it (distinct as schemathesis tells failures
apart: their class, operation and key, the check's title, numbers and ids blanked; a schema
violation also by the schema keyword it broke), and hypothesis goes on to the next example.
When the test has run every example, `FailureCollector.raise_collected` fails it once,
listing every distinct failure (a line each, `- <code> <title> [<operation>]: <message>`,
which the gate turns into a reason each) and attaching each to the test's Allure result with
the example that showed it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from schemathesis.core.failures import Failure, FailureGroup

from rxverify.safety.redaction import redact_text

MAX_DISTINCT = 50  # per test: beyond this the failures are counted, not kept
_ID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_NUMBER = re.compile(r"\d+")


def message_shape(message: str) -> str:
    """The first line of a failure's message with its ids and numbers blanked: what stays the same across examples."""
    first = next((line.strip() for line in message.splitlines() if line.strip()), "")
    return _NUMBER.sub("0", _ID.sub("<id>", first))


@dataclass
class Found:
    """One distinct failure: the first example's failure and report, and how many examples showed it."""

    failure: Failure
    report: str
    examples: int = 1

    @property
    def line(self) -> str:
        """`<code> <title> [<operation>]: <first line of the message>`."""
        f = self.failure
        first = next((line.strip() for line in f.message.splitlines() if line.strip()), "")
        return f"{f.code} {f.title} [{f.operation}]" + (f": {first}" if first else "")


class DistinctFailures(AssertionError):
    """A test's failure: every distinct check failure of its examples, one listed per line."""


@dataclass
class FailureCollector:
    """The distinct check failures of one test, across every example it runs."""

    found: list[Found] = field(default_factory=list)
    examples: int = 0
    dropped: int = 0  # distinct failures beyond MAX_DISTINCT

    def _key(self, failure: Failure) -> tuple[Any, ...]:
        # schemathesis's own identity of a failure within its class (what its __eq__ compares: the rule and
        # message of a rule violation, the status of a server error, wrong status or missing Allow of an
        # undeclared method); of a schema violation, also which keyword of the schema it broke
        unique = message_shape(str(getattr(failure, "_unique_key", "")))
        keyword = tuple(str(p) for p in getattr(failure, "schema_path", None) or ())
        return (type(failure), failure.operation, failure.title, unique, keyword)

    def add(self, failure: Failure, report: str = "") -> None:
        """Keep `failure` unless an earlier example showed the same one (then count it)."""
        key = self._key(failure)
        for found in self.found:
            if self._key(found.failure) == key:
                found.examples += 1
                return
        if len(self.found) >= MAX_DISTINCT:
            self.dropped += 1
            return
        self.found.append(Found(failure, redact_text(report)))

    @contextmanager
    def collect(self, context: str = "") -> Iterator[None]:
        """Around one example's call and checks: its failures are kept, and the example counts as passed.

        `context`: what led to the example (a state machine's steps so far), kept with its report.
        """
        self.examples += 1
        after = f"\n\n{context}" if context else ""
        try:
            yield
        except FailureGroup as group:
            for failure in group.exceptions:
                self.add(failure, str(group.message) + after)
        except Failure as failure:
            self.add(failure, str(failure) + after)

    def message(self, what: str) -> str:
        """The test's failure message: a title line, then one line per distinct failure, its report indented."""
        n = len(self.found)
        lines = [f"{n} distinct check failure{'s' * (n != 1)} of {what} in {self.examples} examples"]
        if self.dropped:
            lines[0] += f" ({self.dropped} more distinct failures not kept)"
        lines.append("")
        for found in self.found:
            lines.append(f"- {found.line} ({found.examples} example{'s' * (found.examples != 1)})")
        for i, found in enumerate(self.found, 1):
            lines += ["", f"failure {i} of {n}, first shown by:"]
            lines += [f"    {line}" for line in found.report.strip().splitlines()]
        return "\n".join(lines)

    def raise_collected(self, what: str) -> None:
        """Fail the test once with every distinct failure, each attached to its Allure result; nothing if none."""
        if not self.found:
            return
        import allure

        n = len(self.found)
        for i, found in enumerate(self.found, 1):
            allure.attach(
                f"{found.line}\n\n{found.report}",
                name=f"failure {i} of {n}: {found.failure.title}",
                attachment_type=allure.attachment_type.TEXT,
            )
        raise DistinctFailures(self.message(what))


class TestFailures:
    """The collector of the test running now (session-wide, so hypothesis sees no per-test fixture)."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.current: FailureCollector | None = None

    def collect(self, context: str = "") -> Any:
        """`FailureCollector.collect` of the running test."""
        if self.current is None:
            raise RuntimeError("no test is running: rx_failures.collect() belongs inside a test")
        return self.current.collect(context)
