"""A platform that stops answering ends the contract run within seconds, with one line saying which.

Before the first test the plugin probes every platform of the run (rxverify.target.probe).
During the run, a failed test may be a failed platform: each failure is followed by a probe of
every platform, through the run's guard. When one does not answer, that test's failure becomes
the one line "platform unreachable: NAME at URL" (not the transport errors behind it), and
every test still to come is reported as not run, with that reason, instead of failing one
after another against a platform that is gone.
"""

from __future__ import annotations

from typing import Any

import pytest

from rxverify.target.probe import unreachable
from rxverify.target.run import Run

RUN = pytest.StashKey[Run]()  # the run of the session, once its platforms answer
DOWN = pytest.StashKey[str]()  # why the rest of the run is not run
DOWN_AT = pytest.StashKey[str]()  # the test that met the platform down
REPROBE_TIMEOUT_S = 3.0  # per interface; a failed test waits at most this long per platform


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Once a platform is down, the tests still to come are not run (reported as skipped, with why)."""
    down = item.config.stash.get(DOWN, None)
    if down is not None:
        pytest.skip(f"not run: {down}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """After a failure, probe the platforms: one that is down ends the run with one line."""
    outcome = yield
    report = outcome.get_result()
    config = item.config
    run = config.stash.get(RUN, None)
    if not report.failed or call.when == "teardown" or run is None or DOWN in config.stash:
        return
    down = unreachable(run, timeout=REPROBE_TIMEOUT_S)
    if not down:
        return
    line = "; ".join(d.line for d in down)
    config.stash[DOWN] = line
    config.stash[DOWN_AT] = report.nodeid
    report.longrepr = _one_line(line)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"rxverify: {line}: the remaining tests are not run")


def _one_line(line: str) -> str:
    return f"{line} (the rest of the run is not run)"


@pytest.hookimpl(trylast=True)
def pytest_exception_interact(node: Any, call: pytest.CallInfo[None], report: Any) -> None:
    """Keep the one line: schemathesis rewrites a failed test's report here, after it was made."""
    config = node.config
    if isinstance(report, pytest.TestReport) and config.stash.get(DOWN_AT, None) == report.nodeid:
        report.longrepr = _one_line(config.stash[DOWN])
