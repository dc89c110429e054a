"""The contract suite's evidence, from inside pytest: its run folder, its manifest, the test id of each result.

A session is a contract run when the suite's conftest, which declares `RXVERIFY_SUITE =
"contract"` (tests/contract/conftest.py), is loaded with it. Before any other plugin is
configured the run's manifest is written `in-progress` (rxverify.report.evidence) and, unless
`--alluredir` names a folder, Allure's results are sent to the run's own folder; collection
records the test ids the run will report (each result carries its id as the label `test_id`),
the end of the session its status. A SIGTERM ends the session as an interruption, so the
manifest says so and the embedded platforms are stopped.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from rxverify.errors import UserError
from rxverify.report.evidence import COMPLETE, FAILED, INTERRUPTED, RunWriter, begin_run
from rxverify.target.processes import Terminated, note_stop

SUITE_ATTRIBUTE = "RXVERIFY_SUITE"
TEST_ID_LABEL = "test_id"
WRITER = pytest.StashKey[RunWriter]()
STOPPED = pytest.StashKey[str]()  # why the session was interrupted
EXITED = pytest.StashKey[str]()  # why the suite stopped itself (pytest.exit: bad input)
DESELECTED = pytest.StashKey[int]()


def writer_of(config: pytest.Config) -> RunWriter | None:
    """The manifest writer of this session's contract run, if it is one."""
    return config.stash.get(WRITER, None)


def _suite_folder(config: pytest.Config) -> Path | None:
    """The folder of the conftest that declares the contract suite, when it is loaded."""
    for plugin in config.pluginmanager.get_plugins():
        if getattr(plugin, SUITE_ATTRIBUTE, None) == "contract" and getattr(plugin, "__file__", None):
            return Path(plugin.__file__).resolve().parent
    return None


def _declares_contract_suite(config: pytest.Config) -> bool:
    return _suite_folder(config) is not None


def _whole_suite(config: pytest.Config) -> bool:
    """Whether the session runs the whole suite: its folder named, nothing selected or left out by the user."""
    opt = config.option
    folder = _suite_folder(config)
    here = config.invocation_params.dir
    named = bool(config.args) and all((here / str(a).split("::")[0]).resolve() == folder for a in config.args)
    narrowed = any(
        getattr(opt, name, None)
        for name in ("keyword", "markexpr", "lf", "stepwise", "maxfail", "deselect", "ignore", "ignore_glob")
    )
    return named and not narrowed


def _selection(config: pytest.Config) -> dict[str, Any]:
    opt = config.option
    return {
        "wholeSuite": _whole_suite(config),
        "args": [str(a) for a in config.args],
        "keyword": getattr(opt, "keyword", "") or "",
        "markers": getattr(opt, "markexpr", "") or "",
        "platform": config.getoption("--platform"),
        "examples": config.getoption("--examples"),
        "faults": list(config.getoption("--fault") or []),
        "lastFailed": bool(getattr(opt, "lf", False) or getattr(opt, "failedfirst", False)),
        "exitFirst": bool(getattr(opt, "maxfail", 0)),
    }


def _begin(config: pytest.Config) -> None:
    from rxverify.paths import contracts_dir, reports_dir
    from rxverify.pytest_plugin import checked_options, selected_platforms, target_of

    explicit = getattr(config.option, "allure_report_dir", None)
    try:
        checked_options(config)  # a mistyped option writes nothing, not even a manifest (this hook runs first)
        target = target_of(config, contracts_dir(config.getoption("--contracts")))
        writer = begin_run(
            reports_dir(),
            "contract",
            target=target.name,
            environment_class=target.environment_class,
            embedded=target.is_local,
            platforms=selected_platforms(config),
            selection=_selection(config),
            results=Path(explicit) if explicit else None,
        )
    except UserError as exc:
        pytest.exit(f"rxverify: {exc}", returncode=2)
    config.stash[WRITER] = writer
    config.pluginmanager.register(_Interruption(config), "rxverify-interruption")
    if not explicit and hasattr(config.option, "allure_report_dir"):
        config.option.allure_report_dir = str(writer.results)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the session as Ctrl-C does: the teardown runs and the manifest says `interrupted`.

    A second SIGTERM or Ctrl-C while it unwinds is ignored, so the platforms' clean-up is not cut short.
    """
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    note_stop(signum)  # raised inside a finaliser, Python swallows it: raised again after the test (CI)
    raise Terminated("SIGTERM")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """A contract run: its manifest first, and its results folder before Allure opens one."""
    if config.option.collectonly or config.option.help or hasattr(config, "workerinput"):
        return  # no run: nothing is written
    if not _declares_contract_suite(config):
        return
    _begin(config)


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Count what -k, -m and the platform markers left out (the manifest's selection)."""
    if items:
        config = items[0].config
        config.stash[DESELECTED] = config.stash.get(DESELECTED, 0) + len(items)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Record the test ids the run will report; label each result with its id."""
    config = session.config
    if config.option.collectonly:
        return
    import allure

    writer = writer_of(config)
    if writer is None:
        if not any("rx_run" in getattr(item, "fixturenames", ()) for item in session.items):
            return
        _begin(config)  # contract tests collected without the suite's own folder named: still evidence
        writer = writer_of(config)
        assert writer is not None
    for item in session.items:
        item.add_marker(allure.label(TEST_ID_LABEL, item.nodeid))
    selection = dict(writer.document["selection"], deselected=config.stash.get(DESELECTED, 0))
    writer.update(
        collected=[item.nodeid for item in session.items],
        selection=selection,
        seeds={"contract": config.getoption("--seed")},
    )


def record_platforms(config: pytest.Config, platforms: dict[str, dict[str, object]]) -> None:
    """The platforms' versions as their GET /status told the run."""
    writer = writer_of(config)
    if writer is None:
        return
    versions = {}
    for name, info in platforms.items():
        status = info.get("status")
        if isinstance(status, dict):
            versions[name] = " ".join(str(status[k]) for k in ("product", "version") if status.get(k))
        else:
            versions[name] = "unknown (no answer to GET /status)"
    writer.update(platformVersions=versions)


class _Interruption:
    """Remembers why a contract run stopped early: Ctrl-C, SIGTERM, or `pytest.exit` (bad input)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Interrupted (KeyboardInterrupt) or stopped by the suite itself (pytest.exit: a failed run)."""
        if isinstance(excinfo.value, KeyboardInterrupt):
            self.config.stash[STOPPED] = str(excinfo.value) or "KeyboardInterrupt"
        else:
            self.config.stash[EXITED] = str(getattr(excinfo.value, "msg", excinfo.value))


def _end(config: pytest.Config, exitstatus: int | None) -> None:
    writer = writer_of(config)
    if writer is None or writer.document["status"] != "in-progress":
        return
    stopped = config.stash.get(STOPPED, None)
    if stopped is not None or exitstatus is None:
        writer.finish(
            INTERRUPTED if stopped else FAILED,
            interruption=stopped,
            exitCode=exitstatus,
            error=None if stopped else "the session ended before its tests ran",
        )
    elif exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
        writer.finish(COMPLETE, exitCode=int(exitstatus))
    else:
        why = config.stash.get(EXITED, None) or f"pytest ended with exit code {int(exitstatus)}"
        writer.finish(FAILED, exitCode=int(exitstatus), error=why)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The run's status: complete, interrupted or failed."""
    _end(session.config, exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """A session that never started its tests (bad input at configure time) ends its manifest too."""
    _end(config, None)
