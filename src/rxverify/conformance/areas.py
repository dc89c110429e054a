"""The table a contract run ends with: per area (Allure epic), what was verified and how it went.

    rxverify: what was verified, per area (Allure epic); seed 1234
    area                          tests  operations  requests  passed  failed  skipped
    prescriptions                    26          11      2903      26       0        0
    ...

An area is a test's Allure epic (its `allure.epic` marker, or the one it sets while it runs,
as the schemathesis tests do per operation); operations are the distinct contract operations
its requests hit and requests what it sent (both counted at the run's sessions, during the
test itself), and a skip is listed with its reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import allure_commons
import pytest
import requests

from rxverify.target.run import Run

UNLABELLED = "(no epic)"


@dataclass
class TestView:
    """One test as the table counts it."""

    __test__ = False

    epic: str = UNLABELLED
    outcome: str = ""  # passed | failed | skipped
    reason: str = ""  # of a skip
    requests: int = 0
    operations: set[str] = field(default_factory=set)


class Areas:
    """Collects each test's area, requests and outcome; prints the table."""

    def __init__(self) -> None:
        self.tests: dict[str, TestView] = {}
        self.current: TestView | None = None
        self.run: Run | None = None

    def view(self, item: pytest.Item) -> TestView:
        """The view of `item`, its epic from its markers until it sets one itself."""
        if item.nodeid not in self.tests:
            view = TestView()
            for mark in item.iter_markers("allure_label"):
                if mark.kwargs.get("label_type") == "epic" and mark.args:
                    view.epic = str(mark.args[0])
                    break
            self.tests[item.nodeid] = view
        return self.tests[item.nodeid]

    @allure_commons.hookimpl
    def add_label(self, label_type: Any, labels: Any) -> None:
        """allure.dynamic.epic(...) of the running test (allure-python's own extension point)."""
        if self.current is not None and str(getattr(label_type, "value", label_type)) == "epic" and labels:
            self.current.epic = str(labels[0])

    def observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """A response to one of the run's sessions: counted for the running test, with its operation."""
        view, run = self.current, self.run
        if view is None or run is None:
            return
        view.requests += 1
        request = response.request
        operation = run.guard.operation_of(request.method or "", request.url or "")
        if operation:
            view.operations.add(operation)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        """Count what the test itself sends (not its fixtures' set-up)."""
        self.current = self.view(item)
        try:
            yield
        finally:
            self.current = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """The test's outcome: failed if any phase failed, skipped with its reason, else passed."""
        view = self.tests.get(report.nodeid)
        if view is None:
            return
        if report.failed:
            view.outcome = "failed"
        elif report.skipped and view.outcome != "failed":
            view.outcome = "skipped"
            longrepr = report.longrepr
            view.reason = str(longrepr[2] if isinstance(longrepr, tuple) else longrepr).removeprefix("Skipped: ")
        elif report.when == "call" and report.passed and not view.outcome:
            view.outcome = "passed"

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Every test that starts gets a row, also one skipped before it runs."""
        self.view(item)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        """The table per area, and the seed."""
        for line in self.lines(config.getoption("--seed", default=None)):
            terminalreporter.write_line(line)

    def lines(self, seed: Any) -> list[str]:
        """The table's lines (none when no test ran)."""
        if not self.tests:
            return []
        per: dict[str, list[TestView]] = {}
        for view in self.tests.values():
            per.setdefault(view.epic, []).append(view)
        columns = ("tests", 6), ("operations", 11), ("requests", 9), ("passed", 7), ("failed", 7), ("skipped", 8)
        head = f"{'area':<30} " + " ".join(f"{name:>{width}}" for name, width in columns)
        out = [f"rxverify: what was verified, per area (Allure epic); seed {seed}", head]
        reasons: Counter[tuple[str, str]] = Counter()
        for epic, views in sorted([*per.items(), ("total", list(self.tests.values()))], key=_total_last):
            counts = Counter(v.outcome or "skipped" for v in views)
            operations = set().union(*(v.operations for v in views))
            out.append(
                f"{epic[:30]:<30} {len(views):>6} {len(operations):>11} {sum(v.requests for v in views):>9} "
                f"{counts['passed']:>7} {counts['failed']:>7} {counts['skipped']:>8}"
            )
            if epic != "total":
                reasons.update((epic, v.reason or "not run") for v in views if (v.outcome or "skipped") == "skipped")
        for (epic, reason), n in sorted(reasons.items()):
            out.append(f"  skipped in {epic}: {n} × {reason}")
        return out


def _total_last(item: tuple[str, list[TestView]]) -> tuple[bool, str]:
    return item[0] == "total", item[0]
