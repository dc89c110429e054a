"""pytest plugin: the suite's options (--target, --platform, --examples, --seed) and fixtures."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from rxverify.distinct_failures import FailureCollector, TestFailures
from rxverify.errors import UserError
from rxverify.guard import Guard
from rxverify.local import SECONDARY, new_ticket_key
from rxverify.paths import contracts_dir, reports_dir
from rxverify.redact import redact_text
from rxverify.report.pytest_evidence import record_platforms, writer_of
from rxverify.report.runs import write_run_record
from rxverify.session import Run, open_run
from rxverify.targets import Target, resolve_target

# the run's evidence (manifest, results folder, test ids): rxverify.report.pytest_evidence
pytest_plugins = ["rxverify.report.pytest_evidence"]

DEFAULT_EXAMPLES = 20  # per operation and platform: keeps `tox -e contract` within its 5-minute budget


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register rxverify's options."""
    group = parser.getgroup("rxverify", "rxverify: target and generation")
    group.addoption("--target", default="local", help="target name from contracts/targets.toml (default: local)")
    group.addoption("--targets-file", default=None, help="targets file (default: contracts/targets.toml)")
    group.addoption("--contracts", default=None, help="contracts folder (default: ./contracts)")
    group.addoption("--old-url", default=None, help="base URL of an already running old platform")
    group.addoption("--new-url", default=None, help="base URL of an already running new platform")
    group.addoption("--fhir-url", default=None, help="base URL of the new platform's FHIR API, if not <new-url>/fhir")
    group.addoption("--ticket-key-file", default=None, help="ticket key of running local platforms (rxverify serve)")
    group.addoption("--platform", default="both", choices=("old", "new", "both"), help="platform(s) to verify")
    group.addoption("--examples", type=int, default=DEFAULT_EXAMPLES, help="generated examples per operation")
    group.addoption("--seed", type=int, default=None, help="seed of the generated data (printed on every run)")
    group.addoption("--fault", action="append", default=[], help="start the local platforms with a seeded fault")


LOCAL_KEY = pytest.StashKey[bytes]()
RUN_GUARD = pytest.StashKey[Guard]()


def local_key(config: pytest.Config) -> bytes:
    """The ticket key of this session's local platforms (made on first use)."""
    return config.stash.setdefault(LOCAL_KEY, new_ticket_key())


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Fix the seed so every run can be reproduced; make the local target's ticket key."""
    from hypothesis import core, settings

    local_key(config)
    seed = config.getoption("--seed", default=None)
    if seed is None:
        import random

        seed = random.SystemRandom().randrange(1, 2**31)
        config.option.seed = seed
    if getattr(config.option, "hypothesis_seed", None) is None:
        # hypothesis's own plugin reads --hypothesis-seed in its pytest_configure, which may run
        # before this one: set its global seed directly, so every property and stateful run (not
        # only schemathesis's) draws from this seed and a failing run can be reproduced.
        config.option.hypothesis_seed = seed
        core.global_force_seed = seed
    if settings.default is not None and settings.default.derandomize:
        # hypothesis loads its "ci" profile (derandomize=True) when it sees a CI variable, and
        # derandomize outranks the global seed: every seed would then draw the same examples, and
        # the "reproduce with --seed" line would not reproduce anything. The seed rules instead.
        settings.register_profile("rxverify-seeded", parent=settings.default, derandomize=False)
        settings.load_profile("rxverify-seeded")


def pytest_report_header(config: pytest.Config) -> str:
    """Show the seed and the target at the top of the run."""
    return (
        f"rxverify: target={config.getoption('--target')} platform={config.getoption('--platform')} "
        f"examples={config.getoption('--examples')} seed={config.getoption('--seed')}"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """Print what the guard let through and refused; on failure, the command that reproduces the run."""
    guard = config.stash.get(RUN_GUARD, None)
    if guard is not None:
        terminalreporter.write_line(
            f"rxverify guard: {guard.counts['passed']} requests sent, "
            f"{guard.counts['identity']} refused (identity outside the test-patient registry)"
        )
    if exitstatus not in (0, 5) and config.getoption("--seed", default=None) is not None:
        terminalreporter.write_line(f"rxverify: reproduce with: {reproduce_command(config)}")


# Options the reproducing run must not repeat: the seed is given anew, and the results go to
# the new run's own folder (a results folder of an earlier run is refused).
_NOT_REPEATED = ("--seed", "--alluredir")


def reproduce_command(config: pytest.Config) -> str:
    """The command that runs this session again with its seed (its own arguments, shell-quoted)."""
    args = [str(a) for a in config.invocation_params.args]
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _NOT_REPEATED:
            skip = True  # `--seed 78`: the value is the next argument
        elif not arg.startswith(tuple(f"{o}=" for o in _NOT_REPEATED)) and arg != "--clean-alluredir":
            kept.append(arg)
    return shlex.join(["pytest", *kept, "--seed", str(config.getoption("--seed"))])


def _platforms(config: pytest.Config) -> tuple[str, ...]:
    choice = config.getoption("--platform")
    return ("old", "new") if choice == "both" else (choice,)


selected_platforms = _platforms  # public: the evidence plugin records them in the run's manifest


@pytest.fixture(scope="session")
def rx_contracts(pytestconfig: pytest.Config) -> Path:
    """The contracts folder."""
    try:
        return contracts_dir(pytestconfig.getoption("--contracts"))
    except UserError as exc:
        pytest.exit(f"rxverify: {exc}", returncode=2)


def platform_status(run: Run) -> dict[str, dict[str, object]]:
    """Each platform's URLs and what its GET /status says (its version), for the report's environment."""
    out: dict[str, dict[str, object]] = {}
    with run.session() as session:
        for name, endpoints in run.target.platforms.items():
            entry: dict[str, object] = {"legacy": endpoints.legacy, "fhir": endpoints.fhir}
            root = (endpoints.legacy or endpoints.fhir or "").rsplit("/", 1)[0]
            try:
                answer = session.get(f"{root}/status", timeout=5)
                entry["status"] = answer.json() if answer.ok else None
            except (requests.RequestException, ValueError):
                entry["status"] = None
            out[name] = entry
    return out


def target_of(config: pytest.Config, contracts: Path) -> Target:
    """The target the options name (not yet started)."""
    opt = config.getoption
    return resolve_target(
        opt("--target"),
        Path(opt("--targets-file") or contracts / "targets.toml"),
        opt("--old-url"),
        opt("--new-url"),
        opt("--fhir-url"),
    )


@pytest.fixture(scope="session")
def rx_run(pytestconfig: pytest.Config, rx_contracts: Path) -> Iterator[Run]:
    """The target, made ready (local platforms started for the session, stopped after)."""
    opt = pytestconfig.getoption
    try:
        target = target_of(pytestconfig, rx_contracts)
        key = opt("--ticket-key-file")
        wanted = _platforms(pytestconfig)
        if wanted == ("old", "new"):
            wanted += (SECONDARY,)  # the differential's second old instance
        with open_run(
            target,
            rx_contracts,
            tuple(opt("--fault")),
            Path(key) if key else None,
            wanted,
            local_key(pytestconfig),
        ) as run:
            pytestconfig.stash[RUN_GUARD] = run.guard
            platforms = platform_status(run)
            record_platforms(pytestconfig, platforms)
            yield run
            writer = writer_of(pytestconfig)
            write_run_record(
                reports_dir(),
                run_id=writer.run if writer else None,
                suite="contract",
                target=run.target.name,
                environment_class=run.target.environment_class,
                guard_counts=run.guard.counts,
                seed=pytestconfig.getoption("--seed"),
                platforms=platforms,
            )
    except UserError as exc:
        pytest.exit(f"rxverify: {exc}", returncode=2)


@pytest.fixture(scope="session")
def rx_platforms(pytestconfig: pytest.Config) -> tuple[str, ...]:
    """The platforms chosen with --platform."""
    return _platforms(pytestconfig)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `platform` by --platform, so each result says which platform it is about."""
    if "platform" in metafunc.fixturenames:
        wanted = _platforms(metafunc.config)
        marker = metafunc.definition.get_closest_marker("platforms")
        allowed = tuple(marker.args) if marker else ("old", "new")
        metafunc.parametrize("platform", [p for p in wanted if p in allowed], scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out a test's parameter sets marked `platforms(...)` for other platforms than theirs.

    A test always skipped (a FHIR case on the old platform, which has no FHIR API) is not a
    test: it is not collected, so a skip in the results always means something was not verified.
    """
    kept: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        platform = callspec.params.get("platform") if callspec is not None else None
        marker = item.get_closest_marker("platforms")
        (left_out if platform and marker and platform not in marker.args else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


TEST_FAILURES = TestFailures()


@pytest.fixture(scope="session")
def rx_failures() -> TestFailures:
    """Keeps every distinct check failure of the running test's examples; the test fails at its end with all of them.

    Use `with rx_failures.collect(): case.call_and_validate(...)` (rxverify.distinct_failures).
    """
    return TEST_FAILURES


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    """Give the test a fresh failure collector; when all its examples have run, fail it with every one it kept."""
    TEST_FAILURES.current = collector = FailureCollector()
    try:
        result = yield
    finally:
        TEST_FAILURES.current = None
    collector.raise_collected(pyfuncitem.name)
    return result


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Redact every failure before any reporter (Allure included) reads it.

    A failure may quote what was generated and sent or refused: tickets are replaced, and an
    identity outside the test-patient registry is masked, so neither reaches a report.
    """
    outcome = yield
    report = outcome.get_result()
    if report.longrepr is None or report.passed:
        return
    guard = item.config.stash.get(RUN_GUARD, None)
    text = str(report.longrepr)
    cleaned = _scrub(text, guard.registry if guard is not None else None)
    if cleaned != text:
        report.longrepr = cleaned


_REGISTRY: list[Any] = []


def _default_registry() -> Any:
    """The shipped test-patient registry, when no run is active (None outside a checkout)."""
    if not _REGISTRY:
        try:
            from rxverify.registry import load_registry

            _REGISTRY.append(load_registry(contracts_dir() / "testdata" / "test-patients.json"))
        except UserError:
            _REGISTRY.append(None)
    return _REGISTRY[0]


def _scrub(text: str, registry: Any = None) -> str:
    """`text` with tickets replaced and identities outside the registry masked."""
    cleaned = redact_text(text)
    registry = registry or _default_registry()
    if registry is not None:
        for found in registry.unregistered_in(cleaned):
            cleaned = cleaned.replace(found.text, found.masked)
    return cleaned


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Scrub what Allure wrote (messages, traces, text attachments): no ticket, no foreign identity."""
    directory = getattr(session.config.option, "allure_report_dir", None)
    if not directory or not Path(directory).is_dir():
        return
    for path in Path(directory).iterdir():
        if path.suffix not in (".json", ".txt", ".properties") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        cleaned = _scrub(text)
        if cleaned != text:
            path.write_text(cleaned, encoding="utf-8")
