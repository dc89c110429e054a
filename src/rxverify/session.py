"""Everything a run needs to talk to a target: registry, actors, tickets, guard, sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rxverify.errors import UserError
from rxverify.guard import Guard, GuardedSession
from rxverify.local import local_platforms, new_ticket_key
from rxverify.registry import Registry, load_registry
from rxverify.targets import Target
from rxverify.tickets import EnvironmentTickets, TestActors, TicketMinter, load_actors


@dataclass
class Run:
    """A target made ready: where it answers, who may be sent, and as whom."""

    target: Target
    registry: Registry
    actors: TestActors
    tickets: TicketMinter | EnvironmentTickets
    guard: Guard

    def session(self) -> GuardedSession:
        """A new guarded HTTP session for this run."""
        session = GuardedSession(self.guard)
        tls = self.target.tls
        if tls.get("cert"):
            session.cert = (tls["cert"], tls["key"]) if tls.get("key") else tls["cert"]
        if tls.get("ca"):
            session.verify = tls["ca"]
        return session

    def auth_headers(self, role: str, index: int = 0) -> dict[str, str]:
        """`Authorization` header for a test actor of `role`."""
        return {"Authorization": f"Bearer {self.tickets.ticket(role, index)}"}


def registry_for(target: Target, contracts: Path) -> Registry:
    """The test-patient registry `target` uses, checked as usable for its class."""
    registry_path = Path(target.registry) if target.registry else contracts / "testdata" / "test-patients.json"
    registry = load_registry(registry_path)
    registry.check_usable_for(target.environment_class, target.name)
    return registry


@contextmanager
def open_run(
    target: Target,
    contracts: Path,
    faults: tuple[str, ...] = (),
    ticket_key_file: Path | None = None,
    platforms: tuple[str, ...] = ("old", "new"),
    key: bytes | None = None,
) -> Iterator[Run]:
    """Prepare `target` (starting the local platforms if it is `local`) for the `with` block."""
    registry = registry_for(target, contracts)
    actors = load_actors(contracts / "testdata" / "test-actors.json")
    guard = Guard(registry)
    if target.is_local:
        key = key or new_ticket_key()
        with local_platforms(platforms=platforms, faults=faults, key=key) as running:
            yield Run(running.target(), registry, actors, TicketMinter(running.key, actors), guard)
        return
    yield Run(target, registry, actors, tickets_for(target, actors, ticket_key_file), guard)


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
