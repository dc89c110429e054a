"""pytest plugin: the suite's options (--target, --platform, --examples, --seed, ...), their checks, and fixtures.

Every option is checked before anything reads it (a bad one is one line, `Exit: rxverify: ...`,
and exit code 2, as is every mistake found before the first test); the target is resolved,
checked for its class and probed before collection (`prepare_target`, from the contract
suite's conftest); `platform` is parametrized where the target has what a test needs
(rxverify.conformance.applicability); a platform that stops answering ends the run
(rxverify.conformance.liveness); the run ends with a table per area (rxverify.conformance.areas).
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from rxverify.conformance import liveness
from rxverify.conformance.applicability import (
    drop_inapplicable,
    left_out_lines,
    planned_interfaces,
    platforms_for,
)
from rxverify.distinct_failures import FailureCollector, TestFailures
from rxverify.errors import UserError
from rxverify.paths import contracts_dir, reports_dir
from rxverify.report.pytest_evidence import record_platforms, writer_of
from rxverify.report.runs import write_run_record
from rxverify.safety.audit import egress_line
from rxverify.safety.guard import Guard, RequestRefused
from rxverify.safety.redaction import redact_text
from rxverify.safety.registry import Registry
from rxverify.target.credentials import EnvironmentTickets, TicketMinter, load_actors
from rxverify.target.local import SECONDARY, check_faults, new_ticket_key
from rxverify.target.probe import require_reachable
from rxverify.target.processes import raise_lost_stop, stop_on_signals
from rxverify.target.run import Run, check_class, open_run, registry_for, require_tickets, tickets_for
from rxverify.target.targets import Target, resolve_target
from rxverify.values import checked, one_of, positive_int, seed

# a platform that stops answering ends the run; the run's evidence (manifest, results folder, test ids)
pytest_plugins = ("rxverify.conformance.liveness", "rxverify.report.pytest_evidence")

DEFAULT_EXAMPLES = 20  # per operation and platform: keeps `tox -e contract` within its 5-minute budget
PLATFORM_CHOICES = ("old", "new", "both")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register rxverify's options (no argparse types: `checked_options` checks them, one line each)."""
    group = parser.getgroup("rxverify", "rxverify: target and generation")
    group.addoption("--target", default="local", help="target name from contracts/targets.toml (default: local)")
    group.addoption("--targets-file", default=None, help="targets file (default: contracts/targets.toml)")
    group.addoption("--contracts", default=None, help="contracts folder (default: ./contracts)")
    group.addoption("--old-url", default=None, help="base URL of an already running old platform")
    group.addoption(
        "--old-secondary-url", default=None, help="base URL of a second old instance (the differential's noise)"
    )
    group.addoption("--new-url", default=None, help="base URL of an already running new platform")
    group.addoption("--fhir-url", default=None, help="base URL of the new platform's FHIR API, if not <new-url>/fhir")
    group.addoption("--ticket-key-file", default=None, help="ticket key of running local platforms (rxverify serve)")
    group.addoption("--trust-dir", default=None, help="local trust domain of running local platforms on mutual TLS "
                    "(rxverify serve prints it)")
    group.addoption("--platform", default="both", help="platform(s) to verify: old, new or both (default both)")
    group.addoption("--examples", default=DEFAULT_EXAMPLES, help="generated examples per operation (default 20)")
    group.addoption("--seed", default=None, help="seed of the generated data (printed on every run)")
    group.addoption("--fault", action="append", default=[], help="start the local platforms with a seeded fault")
    group.addoption("--plain-http", action="store_true", default=False,
                    help="start the local platforms on plain HTTP with JWT tickets (the default is Säker åtkomst "
                         "17.1: mutual TLS, SAMBI assertions, bound access tokens)")


def checked_options(config: pytest.Config) -> None:
    """Turn the options into their values in place; a bad one is a UserError naming it."""
    option = config.option
    option.examples = checked("--examples", positive_int, option.examples)
    if option.seed is not None:
        option.seed = checked("--seed", seed, option.seed)
    option.platform = checked("--platform", one_of(PLATFORM_CHOICES), option.platform)
    if option.fault:
        check_faults(option.fault)


@pytest.hookimpl(tryfirst=True, specname="pytest_configure")
def pytest_configure_check_options(config: pytest.Config) -> None:
    """Check every option of ours before any other configure hook reads it: one line, exit 2."""
    try:
        checked_options(config)
    except UserError as exc:
        pytest.exit(f"rxverify: {exc}", returncode=2)


LOCAL_KEY = pytest.StashKey[bytes]()
TARGET = pytest.StashKey[Target]()  # the target of a contract run, resolved and checked before collection
PLANNED = pytest.StashKey[dict[str, frozenset[str]]]()  # the interfaces each platform of the run will have
MINTS = pytest.StashKey[bool]()  # whether this run signs its own tickets (forged-ticket tests need it)
LOCAL = pytest.StashKey[bool]()  # whether the target is the embedded platforms (the local trust domain)
RUN_GUARD = pytest.StashKey[Guard]()
AUDIT = pytest.StashKey[list[str] | None]()  # the egress audit's problems once the platforms stopped
# generated cases the guard refused, per test and operation: results, not silent rejections
REFUSED = pytest.StashKey[dict[str, Counter[str]]]()
CURRENT = pytest.StashKey[str]()  # the node id of the test that is running


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
    """Show the seed and the target at the top of the run (platforms given by URL: `adhoc`, with the URLs)."""
    return (
        f"rxverify: target={target_banner(config)} platform={config.getoption('--platform')} "
        f"examples={config.getoption('--examples')} seed={config.getoption('--seed')}"
    )


def target_banner(config: pytest.Config) -> str:
    """The target as the run's banner names it."""
    target = config.stash.get(TARGET, None)
    if target is None or target.name != "adhoc":
        return str(config.getoption("--target"))
    urls = ", ".join(f"{name} {e.legacy or e.fhir}" for name, e in target.platforms.items())
    return f"adhoc ({urls})"


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    """After collection: what was not generated, and why (a platform without the interface a test needs)."""
    return left_out_lines(config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """Print what the guard let through and refused; on failure, the command that reproduces the run."""
    guard = config.stash.get(RUN_GUARD, None)
    if guard is not None:
        terminalreporter.write_line(egress_line(guard, config.stash.get(AUDIT, None)))
    refused = config.stash.get(REFUSED, {})
    for nodeid, per_operation in sorted(refused.items()):
        shown = ", ".join(f"{op} {n}" for op, n in sorted(per_operation.items()))
        terminalreporter.write_line(f"rxverify: generated cases refused by the guard in {nodeid}: {shown}")
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
        opt("--old-secondary-url"),
    )


def _wanted(config: pytest.Config) -> tuple[str, ...]:
    """The platforms the run starts or talks to: the chosen ones, and old's second instance beside old and new."""
    wanted = _platforms(config)
    return (*wanted, SECONDARY) if wanted == ("old", "new") else wanted


Tickets = TicketMinter | EnvironmentTickets


def prepare_target(config: pytest.Config, contracts: Path) -> tuple[Target, Registry, Tickets]:
    """The contract run's target, checked before collection; its registry and tickets.

    Refuses (UserError) a production-class target, a registry unfit for the target's class,
    platforms given by URL without their ticket key, a ticket variable that is not set, and,
    unless the run only collects, a platform of an already running target that does not
    answer (one probe each, through the guard). The embedded platforms are probed once
    started (`rx_run`).
    """
    opt = config.getoption
    target = target_of(config, contracts)
    config.stash[TARGET] = target
    check_class(target, "contract")  # a production-class target: one line, exit 2, nothing opened
    if opt("--fault") and not target.is_local:
        raise UserError("--fault applies to the embedded platforms only (--target local without URLs)")
    absent = [p for p in _platforms(config) if not target.is_local and p not in target.platforms]
    if absent:
        choice = "--platform " + next(p for p in ("old", "new") if p not in absent) if len(absent) == 1 else "a target"
        raise UserError(
            f"target {target.name!r} has no {' or '.join(absent)} platform: choose {choice} that has it, "
            f"or give it ({', '.join(f'--{p}-url' for p in absent)})"
        )
    registry = registry_for(target, contracts)
    key_file = Path(opt("--ticket-key-file")) if opt("--ticket-key-file") else None
    tickets = tickets_for(
        target,
        load_actors(contracts / "testdata" / "test-actors.json"),
        key_file,
        local_key(config) if target.is_local else None,
    )
    if not config.option.help:
        require_tickets(target, tickets)  # an unset variable is one line now, not an error inside collection
    config.stash[PLANNED] = planned_interfaces(target, _wanted(config))
    config.stash[MINTS] = isinstance(tickets, TicketMinter)
    config.stash[LOCAL] = target.is_local
    if not target.is_local and not (config.option.help or config.option.collectonly):
        trust = config.getoption("--trust-dir")
        with open_run(target, contracts, suite="contract", ticket_key_file=key_file, start_local=False,
                      trust_dir=Path(trust) if trust else None) as probe:
            require_reachable(probe, _wanted(config))
    _register_areas(config)
    return target, registry, tickets


def _register_areas(config: pytest.Config) -> None:
    import allure_commons

    from rxverify.conformance.areas import Areas

    if config.pluginmanager.get_plugin("rxverify-areas") is None:
        areas = Areas()
        config.pluginmanager.register(areas, "rxverify-areas")
        allure_commons.plugin_manager.register(areas)
        config.add_cleanup(lambda: allure_commons.plugin_manager.unregister(areas))


@pytest.hookimpl(trylast=True)
def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    """A test is over: a stop signal whose exception was swallowed ends the run now (processes.raise_lost_stop).

    When the signal's exception was raised as it should be, pytest is unwinding and never gets here.
    """
    raise_lost_stop()


@pytest.fixture(scope="session")
def rx_run(pytestconfig: pytest.Config, rx_contracts: Path) -> Iterator[Run]:
    """The target, made ready (local platforms started for the session, stopped after); every platform answers."""
    opt = pytestconfig.getoption
    restore = stop_on_signals()  # SIGTERM ends the run like Ctrl-C: the platforms are stopped, not orphaned
    try:
        target = pytestconfig.stash.get(TARGET, None) or target_of(pytestconfig, rx_contracts)
        key = opt("--ticket-key-file")
        reports = reports_dir()
        with open_run(
            target,
            rx_contracts,
            suite="contract",
            reports=reports,
            faults=tuple(opt("--fault")),
            ticket_key_file=Path(key) if key else None,
            platforms=_wanted(pytestconfig),
            key=local_key(pytestconfig) if target.is_local else None,  # else the platforms' key (--ticket-key-file)
            audit=target.is_local,
            tls=target.is_local and not opt("--plain-http"),
            trust_dir=Path(opt("--trust-dir")) if opt("--trust-dir") else None,
            run_id=writer.run if (writer := writer_of(pytestconfig)) else None,  # the manifest's: ledger entries too
        ) as run:
            if target.is_local:
                require_reachable(run)  # once, through the guard, before the first test
            pytestconfig.stash[RUN_GUARD] = run.guard
            pytestconfig.stash[liveness.RUN] = run
            areas = pytestconfig.pluginmanager.get_plugin("rxverify-areas")
            if areas is not None:
                areas.run = run
                run.observers.append(areas.observe)
            platforms = platform_status(run)
            record_platforms(pytestconfig, platforms)
            yield run
        pytestconfig.stash[AUDIT] = run.audit_problems
        write_run_record(
            reports,
            run_id=writer.run if writer else None,
            suite="contract",
            target=run.target.name,
            environment_class=run.target.environment_class,
            guard_counts=run.guard.counts,
            seed=pytestconfig.getoption("--seed"),
            platforms=platforms,
            egress_audit=run.audit_problems,
            refused_cases={k: dict(v) for k, v in pytestconfig.stash.get(REFUSED, {}).items()},
        )
    except UserError as exc:
        pytest.exit(f"rxverify: {exc}", returncode=2)
    finally:
        if liveness.RUN in pytestconfig.stash:
            del pytestconfig.stash[liveness.RUN]  # the platforms are gone: no probe after this
        restore()


@pytest.fixture(scope="session")
def rx_refused(pytestconfig: pytest.Config) -> Callable[[str, RequestRefused], None]:
    """Record a generated case the guard refused: counted per test and operation, shown in the test's result.

    Session-scoped (hypothesis runs many inputs through one test function): the test it counts
    for is the one running.
    """

    def record(operation: str, refused: RequestRefused) -> None:
        import allure

        per_test = pytestconfig.stash.setdefault(REFUSED, {})
        per_test.setdefault(pytestconfig.stash.get(CURRENT, "?"), Counter())[operation] += 1
        allure.attach(
            _scrub(refused.message), name=f"guard refused a generated case of {operation}", attachment_type="text/plain"
        )

    return record


@pytest.fixture(scope="session")
def rx_platforms(pytestconfig: pytest.Config) -> tuple[str, ...]:
    """The platforms chosen with --platform."""
    return _platforms(pytestconfig)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Remember which test runs (refusals are counted per test)."""
    item.config.stash[CURRENT] = item.nodeid


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `platform` by --platform, last, so every test id ends with the platform it is about."""
    if "platform" in metafunc.fixturenames:
        metafunc.parametrize("platform", platforms_for(metafunc, _platforms(metafunc.config)), scope="session")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Only tests that apply: a platform without the interface a test needs has no such test."""
    planned = config.stash.get(PLANNED, None)
    if planned is not None:
        drop_inapplicable(items, config, planned, config.stash.get(MINTS, True), config.stash.get(LOCAL, True))


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


@pytest.hookimpl(trylast=True)
def pytest_exception_interact(node: Any, call: pytest.CallInfo[None], report: Any) -> None:
    """Redact again what schemathesis writes into a failed test's report here, after it was made and redacted."""
    if isinstance(report, pytest.TestReport) and isinstance(report.longrepr, str):
        guard = node.config.stash.get(RUN_GUARD, None)
        report.longrepr = _scrub(report.longrepr, guard.registry if guard is not None else None)


_REGISTRY: list[Any] = []


def _default_registry() -> Any:
    """The shipped test-patient registry, when no run is active (None outside a checkout)."""
    if not _REGISTRY:
        try:
            from rxverify.safety.registry import load_registry

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
    """Fail the run on a failed egress audit; scrub what Allure wrote (no ticket, no foreign identity)."""
    if session.config.stash.get(AUDIT, None):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
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
