"""The run a target becomes: the one builder of everything a part of rxverify needs to talk to a target.

`open_run` is the only place a guard is made. From the target's class it decides, before any
connection is opened, what may run at all (the contract and load suites never touch a
production-class target; a production verification needs its plan), and it fixes the guard's
registry, plan, window, rate limit, ledger and operation index for the whole run. The contract
suite, the load runtime, `verify`, `serve`, `report` and the CLI all take their run from here.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from rxverify.errors import UserError
from rxverify.operations import OperationIndex
from rxverify.safety.audit import compare_egress
from rxverify.safety.egress import guarded_session
from rxverify.safety.guard import Guard
from rxverify.safety.ledger import Ledger
from rxverify.safety.registry import Registry, load_registry
from rxverify.target.credentials import EnvironmentTickets, TestActors, TicketMinter, load_actors
from rxverify.target.local import LocalPlatforms, local_platforms, new_ticket_key
from rxverify.target.targets import Target

if TYPE_CHECKING:
    from rxverify.plans import Plan

# What each part of rxverify may do with a target of each class.
SUITES = ("contract", "load", "verification", "reconcile", "rehearse", "serve", "report", "cli")
NEVER_ON_PRODUCTION = frozenset({"contract", "load", "serve", "rehearse"})
# what runs on production only within a verification plan (the guard then allows only its operations)
PLAN_ON_PRODUCTION = frozenset({"verification", "reconcile"})


@dataclass
class Run:
    """A target made ready: where it answers, who may be sent, as whom, through which guard."""

    target: Target
    registry: Registry
    actors: TestActors
    tickets: TicketMinter | EnvironmentTickets
    guard: Guard
    suite: str = "cli"
    run_id: str = ""
    local: LocalPlatforms | None = None
    # the egress audit's findings, known once the local platforms have stopped (None: no audit ran)
    audit_problems: list[str] | None = None
    # called with every response any session of this run receives (the contract run's per-area counts)
    observers: list[Callable[[requests.Response], None]] = field(default_factory=list)
    _sessions: list[requests.Session] = field(default_factory=list)

    def session(self) -> requests.Session:
        """A new guarded HTTP session for this run (the target's TLS settings applied)."""
        tls = self.target.tls
        missing = [f"tls.{name} {path}" for name, path in sorted(tls.items()) if not Path(path).is_file()]
        if missing:
            raise UserError(f"target {self.target.name!r}: {', '.join(missing)}: no such file (targets.toml)")
        session = guarded_session(self.guard)
        if tls.get("cert"):
            session.cert = (tls["cert"], tls["key"]) if tls.get("key") else tls["cert"]
        if tls.get("ca"):
            session.verify = tls["ca"]
        session.hooks["response"].append(self._observe)
        self._sessions.append(session)
        return session

    def _observe(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        for observer in self.observers:
            observer(response)  # returns nothing: a response hook that returns a value replaces the response

    def auth_headers(self, role: str, index: int = 0) -> dict[str, str]:
        """`Authorization` header for a test actor of `role`."""
        return {"Authorization": f"Bearer {self.tickets.ticket(role, index)}"}

    def close_sessions(self) -> None:
        """Close every session this run made."""
        for session in self._sessions:
            session.close()
        self._sessions.clear()


def registry_for(target: Target, contracts: Path) -> Registry:
    """The test-patient registry `target` uses, checked as usable for its class."""
    registry_path = Path(target.registry) if target.registry else contracts / "testdata" / "test-patients.json"
    if target.registry and not registry_path.exists():
        raise UserError(
            f"target {target.name!r} names the test-patient registry {registry_path}, which does not exist: import "
            "Skatteverket's published test numbers into it first: "
            f"rxverify registry import FILE --output {registry_path}"
        )
    registry = load_registry(registry_path)
    registry.check_usable_for(target.environment_class, target.name)
    return registry


def check_class(target: Target, suite: str, plan: Plan | None = None) -> None:
    """Refuse, before anything is opened, what `suite` may not do on a target of this class."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}")
    cls = target.environment_class
    if cls != "production":
        return
    if suite in NEVER_ON_PRODUCTION:
        raise UserError(
            f"target {target.name!r} is class production: the {suite} suite never runs against production; "
            "a production verification runs only as `rxverify verify --plan PLAN --target "
            f"{target.name} --production`; nothing was sent"
        )
    if suite in PLAN_ON_PRODUCTION and plan is None:
        raise UserError(
            f"target {target.name!r} is class production: a {suite} run needs its verification plan (--plan)"
        )


def new_run_id(suite: str) -> str:
    """A run id: the suite, the UTC start and a random part (unique across processes and machines)."""
    return f"{suite}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


@contextmanager
def open_run(
    target: Target,
    contracts: Path,
    *,
    suite: str,
    reports: Path | None = None,
    plan: Plan | None = None,
    faults: tuple[str, ...] = (),
    ticket_key_file: Path | None = None,
    platforms: tuple[str, ...] = ("old", "new"),
    key: bytes | None = None,
    audit: bool = False,
    run_id: str | None = None,
    data_dir: Path | None = None,
    ports: dict[str, int] | None = None,
    start_local: bool = True,
) -> Iterator[Run]:
    """Prepare `target` for the `with` block: class checked, guard built, local platforms started (`start_local`).

    Every write goes to the ledger under `reports/ledger/` (when `reports` is given), on every
    class of target: on production and test targets because the release needs it, on local ones
    so that a rehearsal reads the same. With `audit`, the local platforms record every request
    they receive and, once they have stopped, `Run.audit_problems` says whether each was one the
    guard let through (the egress audit).
    """
    check_class(target, suite, plan)
    registry = registry_for(target, contracts)
    actors = load_actors(contracts / "testdata" / "test-actors.json")
    run_id = run_id or os.environ.get("RXVERIFY_RUN_ID") or new_run_id(suite)
    with ExitStack() as stack:
        ledger = None
        if reports is not None:
            ledger = Ledger(
                reports / "ledger",
                target=target.name,
                environment_class=target.environment_class,
                run_id=run_id,
                kind=suite,
            )
            stack.callback(ledger.close)
        running = None
        audit_dir = None
        if target.is_local and start_local:
            key = key or new_ticket_key()
            running = stack.enter_context(local_platforms(data_dir, platforms, faults, ports, key=key, audit=audit))
            audit_dir = running.audit_dir
            started = running.target()
            tickets: TicketMinter | EnvironmentTickets = TicketMinter(running.key, actors)
        else:
            started = target
            tickets = tickets_for(target, actors, ticket_key_file, key)
        guard = Guard(
            registry,
            environment_class=target.environment_class,
            plan=plan,
            ledger=ledger,
            operations=OperationIndex.for_endpoints(contracts, started.platforms.values()),
            target_name=target.name,
            audit=audit_dir is not None,
        )
        run = Run(started, registry, actors, tickets, guard, suite, run_id, running)
        stack.callback(run.close_sessions)
        try:
            yield run
        finally:
            if running is not None and audit_dir is not None:
                running.stop()  # every answer is given and every received request written down
                run.audit_problems = compare_egress(guard, audit_dir)


def tickets_for(
    target: Target, actors: TestActors, ticket_key_file: Path | None = None, key: bytes | None = None
) -> TicketMinter | EnvironmentTickets:
    """Where the tickets of `target` come from: a local key (minted), or the environment."""
    if key is not None:
        return TicketMinter(key, actors)
    if ticket_key_file is not None:
        try:
            return TicketMinter(ticket_key_file.read_bytes().strip(), actors)
        except OSError as exc:
            raise UserError(f"cannot read ticket key {ticket_key_file}: {exc.strerror}") from None
    return EnvironmentTickets(target.tickets, target.name)


def require_tickets(
    target: Target, tickets: TicketMinter | EnvironmentTickets, roles: tuple[str, ...] = ("prescriber", "pharmacy")
) -> None:
    """Refuse, before anything is sent, a run whose tickets are not there (one line naming what is missing).

    Platforms given by URL have no ticket variables: they need the key they sign with
    (`--ticket-key-file`, which `rxverify serve` prints); a named target needs each variable
    its `tickets.<role>` names to be set.
    """
    if not isinstance(tickets, EnvironmentTickets):
        return
    if not target.tickets:
        raise UserError(
            f"target {target.name!r} has no tickets: give the platforms' ticket key with --ticket-key-file "
            "(rxverify serve prints it), or name a target whose tickets.<role> name environment variables"
        )
    for role in roles:
        tickets.ticket(role)
