"""The run a target becomes: the one builder of everything a part of rxverify needs to talk to a target.

`open_run` is the only place a guard is made. From the target's class it decides, before any
connection is opened, what may run at all (the contract and load suites never touch a
production-class target; a production verification needs its plan), and it fixes the guard's
registry, plan, window, rate limit, ledger and operation index for the whole run. The contract
suite, the load runtime, `verify`, `serve`, `report` and the CLI all take their run from here.

A run also carries the target's credentials ("Säker åtkomst"): `Run.session(actor=...)` presents
that caller's client certificate and trusts the entry point's CA, `Run.credentials` mints or
fetches its SAMBI assertions, `Run.tokens` exchanges them for access tokens. Locally, `tls=True`
starts the platforms on mutual TLS with the local trust domain.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from rxverify.errors import UserError
from rxverify.operations import OperationIndex
from rxverify.safety.audit import compare_egress
from rxverify.safety.egress import guarded_session
from rxverify.safety.guard import Guard
from rxverify.safety.ledger import Ledger
from rxverify.safety.registry import Registry, load_registry
from rxverify.target.callers import SecureCallers
from rxverify.target.credentials import (
    AssertionFiles,
    AssertionMinter,
    Caller,
    Credentials,
    EnvironmentTickets,
    TestActors,
    TicketMinter,
    TicketService,
    as_caller,
    load_actors,
    load_profile,
)
from rxverify.target.local import LocalPlatforms, local_platforms, new_ticket_key
from rxverify.target.targets import DEFAULT_ENTRY, Target, check_files
from rxverify.target.trust import ENTRY_POINTS, ClientCertificate, TrustDomain, kept_trust_domain

if TYPE_CHECKING:
    from rxverify.plans import Plan
    from rxverify.target.tokens import TokenClient

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
    credentials: Credentials | None = None  # client certificates, CAs and assertions ("Säker åtkomst")
    # called with every response any session of this run receives (the contract run's per-area counts)
    observers: list[Callable[[requests.Response], None]] = field(default_factory=list)
    _sessions: list[requests.Session] = field(default_factory=list)
    _tokens: TokenClient | None = None
    _callers: SecureCallers | None = None

    def session(self, actor: Caller | str | None = None, entry: str | None = None, *,
                present_certificate: bool = True) -> requests.Session:
        """A new guarded HTTP session for this run: `actor`'s client certificate, the entry point's CA.

        Without `actor`, under Säker åtkomst 17.1 each request presents the certificate of the caller
        whose assertion or token it carries (rxverify.target.callers; the default caller's when it
        carries none); otherwise the target-wide certificate of targets.toml `tls`, if any. With
        `present_certificate=False` it presents none (the security tests' handshake without one).
        """
        tls = self.target.tls
        missing = [f"tls.{name} {path}" for name, path in sorted(tls.items()) if not Path(path).is_file()]
        if missing:
            raise UserError(f"target {self.target.name!r}: {', '.join(missing)}: no such file (targets.toml)")
        chooser = None
        if self.secure and actor is None and present_certificate:
            callers = self.callers  # each request over the certificate of the caller whose credential it carries

            def chooser(request: requests.PreparedRequest) -> tuple[str, str]:
                return callers.certificate_for(request, entry)
        bundle = tls.get("ca") or None
        if self.credentials is not None:
            ca = self.credentials.ca(entry)
            if ca is not None:
                bundle = str(ca)
        session = guarded_session(self.guard, chooser, bundle)
        if tls.get("cert"):
            session.cert = (tls["cert"], tls["key"]) if tls.get("key") else tls["cert"]
        if bundle is not None:
            session.verify = bundle
        if self.credentials is not None:
            if actor is not None:
                client = self.credentials.client(as_caller(actor), entry)
                session.cert = (str(client.cert), str(client.key))
        elif actor is not None or entry is not None:
            raise UserError(f"target {self.target.name!r} has no credentials of callers (targets.toml clients; "
                            "locally, a run opened with tls=True)")
        session.hooks["response"].append(self._observe)
        self._sessions.append(session)
        return session

    def _observe(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        for observer in self.observers:
            observer(response)  # returns nothing: a response hook that returns a value replaces the response

    def ssl_context_factory(self, actor: Caller | str | None = None, entry: str | None = None) -> Any:
        """The `ssl_context_factory` of a FastHttpUser calling as `actor` (rxverify.target.tls)."""
        from rxverify.target.tls import fasthttp_ssl_context_factory

        credentials = self.credentials_or_fail()
        client = credentials.client(as_caller(actor), entry) if actor is not None else None
        return fasthttp_ssl_context_factory(client, credentials.ca(entry))

    def credentials_or_fail(self) -> Credentials:
        """The run's credentials (UserError when the target configures none)."""
        if self.credentials is None:
            raise UserError(f"target {self.target.name!r} has no credentials of callers (targets.toml clients and "
                            "assertions; locally, a run opened with tls=True)")
        return self.credentials

    @property
    def tokens(self) -> TokenClient:
        """The run's access tokens (the new platform's token endpoint), held per caller and certificate."""
        if self._tokens is None:
            from rxverify.target.tokens import TokenClient

            self._tokens = TokenClient(self)
        return self._tokens

    @property
    def secure(self) -> bool:
        """Whether the run speaks Säker åtkomst 17.1 (callers' certificates, assertions, tokens)."""
        return self.credentials is not None and self.credentials.source is not None

    @property
    def callers(self) -> SecureCallers:
        """The run's callers under 17.1: their assertions and tokens, and the certificate each request presents."""
        if self._callers is None:
            self._callers = SecureCallers(self)
        return self._callers

    def legacy_credentials(self, entry: str | None = None) -> Any:
        """What the legacy client puts on a request: the caller's assertion (17.1; bound to its certificate on
        `entry`), else its JWT ticket."""
        if not self.secure:
            return self.tickets
        return self.callers if entry is None else self.callers.at(entry)

    def auth_headers(self, role: str, index: int = 0, entry: str | None = None) -> dict[str, str]:
        """`Authorization` header of a test actor of `role` on the FHIR API: its access token (17.1), else its
        JWT ticket. Sent over a session of this run, the request presents that caller's certificate."""
        if self.secure:
            return {"Authorization": self.callers.bearer(role, index, entry)}
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
    tls: bool = False,
    trust_dir: Path | None = None,
) -> Iterator[Run]:
    """Prepare `target` for the `with` block: class checked, guard built, local platforms started (`start_local`).

    Every write goes to the ledger under `reports/ledger/` (when `reports` is given), on every
    class of target: on production and test targets because the release needs it, on local ones
    so that a rehearsal reads the same. With `audit`, the local platforms record every request
    they receive and, once they have stopped, `Run.audit_problems` says whether each was one the
    guard let through (the egress audit). With `tls`, the local platforms serve mutual TLS on both
    entry points and read SAMBI assertions, and the run carries the local trust domain's credentials.
    With `trust_dir`, platforms already running on loopback (given by URL: `rxverify serve`'s, a load
    master's) are called with the local trust domain kept there.
    """
    check_class(target, suite, plan)
    registry = registry_for(target, contracts)
    check_files(target)  # a missing certificate, key or CA is one line before anything is started or sent
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
            running = stack.enter_context(local_platforms(data_dir, platforms, faults, ports, key=key, audit=audit,
                                                                tls=tls))
            audit_dir = running.audit_dir
            started = running.target()
            tickets: TicketMinter | EnvironmentTickets = TicketMinter(running.key, actors)
            credentials = local_credentials(running.trust, actors, contracts) if running.trust else None
        else:
            started = target
            tickets = tickets_for(target, actors, ticket_key_file, key)
            credentials = None
            if trust_dir is not None:
                if target.environment_class != "local":
                    raise UserError(f"--trust-dir is the local trust domain: target {target.name!r} is class "
                                    f"{target.environment_class} (targets.toml names its certificates)")
                kept_trust_domain(trust_dir)  # one line when it is not one
                # the run's own copy (0700, gone with the run): the platforms' command may stop first
                own = Path(stack.enter_context(_private_dir())) / "trust"
                try:
                    shutil.copytree(trust_dir, own)
                except OSError as exc:
                    raise UserError(f"--trust-dir {trust_dir}: cannot read the local trust domain ({exc})") from None
                trust = kept_trust_domain(own)
                started = with_local_trust(target, trust, load_profile(contracts).token_path)
                credentials = local_credentials(trust, actors, contracts)
            elif target.clients or target.assertions:
                bundles = Path(stack.enter_context(_private_dir()))
                credentials = configured_credentials(target, actors, contracts, bundles)
        guard = Guard(
            registry,
            environment_class=target.environment_class,
            plan=plan,
            ledger=ledger,
            operations=OperationIndex.for_endpoints(
                contracts, [point for e in started.platforms.values() for point in e.entry_points()]
            ),
            target_name=target.name,
            audit=audit_dir is not None,
        )
        run = Run(started, registry, actors, tickets, guard, suite, run_id, running, credentials=credentials)
        stack.callback(run.close_sessions)
        try:
            yield run
        finally:
            if running is not None and audit_dir is not None:
                running.stop()  # every answer is given and every received request written down
                run.audit_problems = compare_egress(guard, audit_dir)


@contextmanager
def _private_dir() -> Iterator[str]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rxverify-run-") as tmp:  # 0700, removed with the run
        yield tmp


def with_local_trust(target: Target, trust: TrustDomain, token_path: str) -> Target:
    """Platforms given by URL, as the local trust domain serves them: its CA, the new platform's token endpoint."""
    platforms = {}
    for name, endpoints in target.platforms.items():
        base = (endpoints.legacy or endpoints.fhir or "").removesuffix("/legacy").removesuffix("/fhir")
        token = base + token_path if endpoints.fhir and base else endpoints.token
        others = {entry: replace(point, ca=str(trust.ca(entry)), token=point.token or (
            (point.legacy or point.fhir or "").removesuffix("/legacy").removesuffix("/fhir") + token_path
            if point.fhir else None)) for entry, point in endpoints.others.items()}
        platforms[name] = replace(endpoints, token=token, ca=str(trust.ca(endpoints.name)), others=others)
    return replace(target, platforms=platforms)


def local_credentials(trust: TrustDomain, actors: TestActors, contracts: Path) -> Credentials:
    """The credentials of the local trust domain: its certificates, its CAs, the local ticket issuer."""
    profile = load_profile(contracts)
    minter = AssertionMinter(trust.issuer_key.read_bytes(), trust.issuer_cert.read_bytes(), actors, profile)
    cas: dict[str, Path | None] = {entry: trust.ca(entry) for entry in ENTRY_POINTS}
    return Credentials(
        actors,
        lambda caller, entry: trust.client(caller.holder(actors), entry),
        cas,
        minter,
        profile.grant_type,
    )


def configured_credentials(target: Target, actors: TestActors, contracts: Path, bundles: Path) -> Credentials:
    """The credentials targets.toml names for a target (files checked already): certificates, CAs, assertions."""
    profile = load_profile(contracts)
    cas: dict[str, Path | None] = {}
    for entry in ENTRY_POINTS:
        files = [p.ca for e in target.platforms.values() for p in e.entry_points() if p.name == entry and p.ca]
        if not any(p.name == entry for e in target.platforms.values() for p in e.entry_points()):
            continue
        if len(set(files)) > 1:  # one session talks to every platform of an entry point: one bundle of their CAs
            bundle = bundles / f"ca-{entry}.pem"
            bundle.write_bytes(b"\n".join(Path(f).read_bytes().strip() for f in dict.fromkeys(files)) + b"\n")
            cas[entry] = bundle
        else:
            cas[entry] = Path(files[0]) if files else (Path(target.tls["ca"]) if target.tls.get("ca") else None)

    def certificate(caller: Caller, entry: str) -> ClientCertificate:
        for name in caller.names(actors):
            client = target.clients.get(name)
            files = client.files(entry) if client is not None else None
            if files is not None:
                return ClientCertificate(name, entry, Path(files[0]), Path(files[1]))
        raise UserError(f"target {target.name!r} names no client certificate for {' or '.join(caller.names(actors))}"
                        f" on entry point {entry} (clients)")

    source: AssertionFiles | TicketService | None = None
    if "files" in target.assertions:
        source = AssertionFiles(target.assertions["files"], target.name, contracts.resolve().parent)
    elif "service" in target.assertions:
        source = TicketService(target.assertions["service"], target.name)
    default = DEFAULT_ENTRY if DEFAULT_ENTRY in cas else next(iter(cas), DEFAULT_ENTRY)
    return Credentials(actors, certificate, cas, source, profile.grant_type, default)


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
