"""The `local` target: start the embedded reference platforms on free loopback ports.

The suite never imports the reference platforms; it starts them as processes
(`python -m refplatform`) and reads the address each prints, as it would any vendor's server.
With `tls`, each platform serves mutual TLS on both entry points (internet, sjunet) with the
certificates of the local trust domain (rxverify.target.trust) and reads its callers from SAMBI
assertions (`--auth saml`, trusting the local ticket issuer); it prints one READY line per entry
point: `READY <platform> https://127.0.0.1:<port> (entry <name>)`.
"""

from __future__ import annotations

import secrets
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rxverify.errors import UserError
from rxverify.paths import contracts_dir
from rxverify.target.processes import RUN_DIR_PREFIX, RunProcesses, clean_orphans
from rxverify.target.targets import DEFAULT_ENTRY, Endpoints, Target
from rxverify.target.trust import ENTRY_POINTS, GATEWAY, TrustDomain

START_TIMEOUT_S = 60.0
SECONDARY = "old-secondary"  # a second instance of the old platform (Diffy's secondary)
# the interfaces each embedded platform serves: a test is generated only for a platform that has its interface
INTERFACES = {"old": frozenset({"legacy"}), "new": frozenset({"legacy", "fhir"}), SECONDARY: frozenset({"legacy"})}
_FAULTS: list[dict[str, str]] = []


def known_faults() -> dict[str, str]:
    """The reference platforms' fault catalogue (name -> platform), from `python -m refplatform --list-faults`."""
    if not _FAULTS:
        listed = subprocess.run(
            [sys.executable, "-m", "refplatform", "--list-faults"], capture_output=True, text=True, timeout=60
        )
        if listed.returncode != 0:
            raise UserError(f"cannot list the reference platforms' faults: {listed.stderr.strip()[-300:]}")
        _FAULTS.append({line.split("\t")[0]: line.split("\t")[1] for line in listed.stdout.splitlines() if line})
    return _FAULTS[0]


def check_faults(faults: tuple[str, ...] | list[str], option: str = "--fault") -> None:
    """Refuse an unknown fault name before anything is started (one line, naming it)."""
    if not faults:
        return
    catalogue = known_faults()
    unknown = [f for f in faults if f not in catalogue]
    if unknown:
        shown = ", ".join(map(repr, unknown))
        raise UserError(f"{option}: unknown fault {shown} (the catalogue: python -m refplatform --list-faults)")


@dataclass
class StartedPlatform:
    """One reference-platform process."""

    platform: str
    base_url: str  # the default entry point's
    process: subprocess.Popen[str]
    stderr_tail: list[str] = field(default_factory=list)
    entries: dict[str, str] = field(default_factory=dict)  # entry point -> base URL (mutual TLS only)

    def stop(self) -> None:
        """Terminate the process and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _drain(stream: object, sink: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        sink.append(line.rstrip())
        del sink[:-20]


def start_platform(
    platform: str,
    data_dir: Path,
    key_file: Path,
    faults: tuple[str, ...] = (),
    port: int = 0,
    audit_log: Path | None = None,
    processes: RunProcesses | None = None,
    label: str | None = None,
    admin_key_file: Path | None = None,
    tls_dir: Path | None = None,
    issuer_cert: Path | None = None,
    token_key_file: Path | None = None,
    trusted_proxy_cert: Path | None = None,
) -> StartedPlatform:
    """Start one reference platform (with the window's operator key, if given); wait for its address.

    With `tls_dir` (its --tls-dir) and `issuer_cert`, it serves mutual TLS on every entry point of
    ENTRY_POINTS (the default entry point on `port`) and reads SAMBI assertions (`--auth saml`),
    printing one address per entry point. `trusted_proxy_cert`: the gateway in front, whose
    Client-Cert header names the caller (RFC 9440).
    """
    cmd = [
        sys.executable,
        "-m",
        "refplatform",
        "--platform",
        platform,
        "--data-dir",
        str(data_dir),
        "--ticket-key-file",
        str(key_file),
    ]
    if tls_dir is None:
        cmd += ["--port", str(port)]
    else:
        assert issuer_cert is not None
        cmd += ["--tls-dir", str(tls_dir), "--auth", "saml", "--issuer-cert", str(issuer_cert)]
        for entry in ENTRY_POINTS:
            cmd += ["--entry", f"{entry}={port if entry == DEFAULT_ENTRY else 0}"]
        if token_key_file is not None and platform == "new":
            cmd += ["--token-key-file", str(token_key_file)]
        if trusted_proxy_cert is not None:
            cmd += ["--trusted-proxy-cert", str(trusted_proxy_cert)]
    for fault in faults:
        cmd += ["--fault", fault]
    cmd += ["--contracts", str(contracts_dir().resolve())]
    if audit_log is not None:
        cmd += ["--audit-log", str(audit_log)]
    if admin_key_file is not None:
        cmd += ["--admin-key-file", str(admin_key_file)]
    return launch(cmd, platform, processes, label, len(ENTRY_POINTS) if tls_dir is not None else 1)


def start_gateway(
    upstreams: dict[str, str], route: str, admin_key_file: Path, processes: RunProcesses | None = None,
    faults: tuple[str, ...] = (),
    trust: TrustDomain | None = None,
) -> StartedPlatform:
    """Start the reference gateway (the callers' one address) in front of `upstreams`, routed to `route`.

    With `trust`, it serves mutual TLS on every entry point of ENTRY_POINTS with the trust domain's
    certificates of instance `gateway`, and calls its (https) upstreams over the default entry point
    with its own client certificate (holder GATEWAY), forwarding each caller's certificate.
    """
    cmd = [sys.executable, "-m", "refplatform", "gateway", "--route", route, "--admin-key-file", str(admin_key_file)]
    for name, url in upstreams.items():
        cmd += ["--upstream", f"{name}={url}"]
    for fault in faults:
        cmd += ["--fault", fault]
    if trust is not None:
        own = trust.client(GATEWAY, DEFAULT_ENTRY)
        cmd += ["--tls-dir", str(trust.server_dir(GATEWAY)), "--client-cert", str(own.cert), "--client-key",
                str(own.key), "--upstream-ca", str(trust.ca(DEFAULT_ENTRY))]
        for entry in ENTRY_POINTS:
            cmd += ["--entry", f"{entry}=0"]
    return launch(cmd, "gateway", processes, wanted=len(ENTRY_POINTS) if trust is not None else 1)


def launch(
    cmd: list[str], platform: str, processes: RunProcesses | None = None, label: str | None = None,
    wanted: int = 1,
) -> StartedPlatform:
    """Start a reference-platform process (written down in `processes`); wait for `READY <name> <url>`.

    `wanted` > 1: a platform on mutual TLS prints one READY line per entry point; all are waited for.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if processes is not None:
        processes.started(label or platform, proc.pid)
    assert proc.stdout is not None and proc.stderr is not None
    tail: list[str] = []
    threading.Thread(target=_drain, args=(proc.stderr, tail), daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    entries: dict[str, str] = {}
    while time.monotonic() < deadline and len(entries) < wanted:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("READY"):
            entries.update([_ready(line)])
    if len(entries) < wanted:
        proc.kill()
        proc.wait()
        time.sleep(0.1)
        reason = tail[-1] if tail else "no output"
        raise UserError(f"the {platform} reference platform did not start: {reason}")
    threading.Thread(target=_drain, args=(proc.stdout, []), daemon=True).start()
    default = entries.get(DEFAULT_ENTRY) or next(iter(entries.values()))
    return StartedPlatform(platform, default, proc, tail, entries if wanted > 1 else {})


def platform_endpoints(started: StartedPlatform, fhir: bool, trust: TrustDomain | None = None,
                       token_path: str = "") -> Endpoints:
    """Where a started platform (or gateway) answers: each entry point, with its CA and token endpoint under `trust`."""
    def at(base: str, entry: str) -> Endpoints:
        return Endpoints(
            legacy=base + "/legacy", fhir=base + "/fhir" if fhir else None,
            token=base + token_path if fhir and trust is not None else None,
            ca=str(trust.ca(entry)) if trust is not None else None, name=entry,
        )

    if not started.entries:
        return at(started.base_url, DEFAULT_ENTRY)
    points = {e: at(url, e) for e, url in started.entries.items()}
    first = points.pop(DEFAULT_ENTRY)
    return Endpoints(first.legacy, first.fhir, first.token, first.ca, first.name, points)


def _ready(line: str) -> tuple[str, str]:
    """(entry point, base URL) of a READY line: `READY <platform> <url>` or `... <url> (entry <name>)`."""
    parts = line.split()
    entry = parts[4].rstrip(")") if len(parts) >= 5 and parts[3] == "(entry" else DEFAULT_ENTRY
    return entry, parts[2]


@dataclass
class LocalPlatforms:
    """Both reference platforms, running, and what is needed to talk to them."""

    old: StartedPlatform | None
    new: StartedPlatform | None
    key: bytes
    data_dir: Path
    # a second old platform with its own store: the differential learns noise from old vs old
    secondary: StartedPlatform | None = None
    # the run's temporary folder holds the ticket key (0600) and the audit logs: both gone with the run
    key_file: Path | None = None
    audit_dir: Path | None = None
    trust: TrustDomain | None = None  # the local trust domain, when they serve mutual TLS
    token_path: str = ""  # the new platform's token endpoint below its base URL (with `trust`)
    # the key the new platform signs access tokens with (with `trust`; 0600, gone with the run): the
    # security tests forge an expired token with it, as they forge an expired JWT with the ticket key
    token_key_file: Path | None = None

    def _endpoints(self, started: StartedPlatform, fhir: bool) -> Endpoints:
        return platform_endpoints(started, fhir, self.trust, self.token_path)

    def target(self) -> Target:
        """A Target pointing at the started platforms (every entry point, with its CA, under mutual TLS)."""
        platforms = {}
        if self.old:
            platforms["old"] = self._endpoints(self.old, fhir=False)
        if self.new:
            platforms["new"] = self._endpoints(self.new, fhir=True)
        if self.secondary:
            platforms[SECONDARY] = self._endpoints(self.secondary, fhir=False)
        return Target(
            name="local", environment_class="local", description="embedded reference platforms", platforms=platforms
        )

    def stop(self) -> None:
        """Stop every started platform."""
        for p in (self.old, self.new, self.secondary):
            if p:
                p.stop()


def new_ticket_key() -> bytes:
    """A fresh ticket-signing key that only this run knows."""
    return secrets.token_hex(32).encode()


def new_token_key() -> bytes:
    """A fresh EC P-256 key (PEM) for the new platform's access tokens (ES256)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def new_operator_key() -> str:
    """A fresh operator key (sent as a bearer token to the window and route controls), of letters only.

    Every byte to a platform passes the guard, and random hex is digits more often than not: in
    about one 64-digit hex key in seven hundred a run of its digits reads as a Luhn-valid identity
    number, which the guard rightly refuses (a rehearsal failed so in CI). 48 letters (about 270
    bits) never hold one.
    """
    return "".join(secrets.choice(string.ascii_letters) for _ in range(48))


@contextmanager
def local_platforms(
    data_dir: Path | None = None,
    platforms: tuple[str, ...] = ("old", "new"),
    faults: tuple[str, ...] = (),
    ports: dict[str, int] | None = None,
    key: bytes | None = None,
    audit: bool = False,
    tls: bool = False,
) -> Iterator[LocalPlatforms]:
    """Start the reference platforms for the duration of a `with` block.

    Everything the run needs on disk lives in one temporary folder, removed at the end: the
    stores (unless `data_dir` keeps them), the ticket key and, with `audit`, the audit logs
    (each platform writes a digest of every request it receives to `<audit_dir>/<platform>.jsonl`,
    the egress audit of rxverify.safety.audit). Orphans of killed runs are cleaned up first
    (rxverify.target.processes). With `tls`, they serve mutual TLS on both entry points with the
    local trust domain, made in that temporary folder and gone with the run (`data_dir` keeps the
    stores, never a key).
    """
    clean_orphans()
    with tempfile.TemporaryDirectory(prefix=RUN_DIR_PREFIX) as tmp:
        run_dir = data_dir or Path(tmp)
        run_dir.mkdir(parents=True, exist_ok=True)
        key = key or new_ticket_key()
        key_file = Path(tmp) / "ticket.key"
        key_file.write_bytes(key)
        key_file.chmod(0o600)
        audit_dir = Path(tmp) / "audit" if audit else None
        if audit_dir is not None:
            audit_dir.mkdir(mode=0o700)
        processes = RunProcesses(Path(tmp))
        trust = None
        token_path = ""
        token_key_file = None
        if tls:
            from rxverify.target.credentials import load_actors, load_profile
            from rxverify.target.trust import trust_domain

            contracts = contracts_dir().resolve()
            actors = load_actors(contracts / "testdata" / "test-actors.json")
            # in the temporary folder even with data_dir: its keys (the ticket issuer's among them) are
            # secrets like the ticket key, never kept beyond the run
            trust = trust_domain(Path(tmp) / "trust", platforms, actors)
            token_path = load_profile(contracts).token_path
            token_key_file = Path(tmp) / "token.key"
            token_key_file.write_bytes(new_token_key())
            token_key_file.chmod(0o600)
        started: dict[str, StartedPlatform] = {}
        try:
            for platform in platforms:
                kind = "old" if platform == SECONDARY else platform
                audit_log = audit_dir / f"{platform}.jsonl" if audit_dir is not None else None
                started[platform] = start_platform(
                    kind, run_dir / platform, key_file, faults, (ports or {}).get(platform, 0), audit_log, processes,
                    label=platform, tls_dir=trust.server_dir(platform) if trust else None,
                    issuer_cert=trust.issuer_cert if trust else None, token_key_file=token_key_file,
                )
            running = LocalPlatforms(
                started.get("old"), started.get("new"), key, run_dir, started.get(SECONDARY), key_file, audit_dir,
                trust, token_path, token_key_file,
            )
            yield running
        finally:
            for p in started.values():
                p.stop()
            processes.done()
