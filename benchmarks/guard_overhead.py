"""The guard's cost per request, as a ratio to an unguarded request in the same run.

One local reference platform (new, legacy interface over RIV-TA SOAP), one request mix of the load
test's kind (mostly reads, a prescription written every tenth request), built by the one legacy
client (rxverify.legacy.client: envelope, RIV-TA headers, ticket) and sent by a plain
requests.Session and by the run's guarded session (operation index, ledger, every envelope scanned),
in rounds where each call is made by both, one right after the other, so drift in the platform hits
both alike. Prints microseconds per request of each, the overhead ratio (aim, issue 11: under 5 %),
the client CPU the guard adds, and the pure `Guard.inspect` cost per prepared envelope (each
prepared as the legacy client prepares it: its own requestId), once the templates of the envelopes
are known, and the first pass, which meets each template and reads it (in full for the first
patient of a kind of envelope, from that reading for the others). Loopback only.

Over mutual TLS with SAMBI assertions (the default, the suite's own path) both sessions present each
caller's certificate and carry its assertion; `--wire plain` measures plain HTTP with JWT tickets.

    python benchmarks/guard_overhead.py [--rounds 21] [--requests 200] [--wire tls|plain]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from rxverify.contracts.riv import load_riv
from rxverify.legacy.client import LegacyClient
from rxverify.safety.guard import Guard
from rxverify.safety.registry import load_registry
from rxverify.target.credentials import load_actors
from rxverify.target.run import Run, open_run
from rxverify.target.targets import Target

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / "contracts"
AIM = 0.05  # issue 11: guard cost under 5 % of a request on the load-test path
WRITE_EVERY = 10  # one write in ten requests: the load model's mix is read-heavy (lookups per dispensing)


Call = tuple[str, dict[str, Any], str]  # service, request data (XML names), role


def _mix(patients: list[str], units: list[str], count: int) -> list[Call]:
    """Reads of the pharmacy and care lookups, with a prescription created every WRITE_EVERY requests."""
    mix: list[Call] = []
    for i in range(count):
        pid = patients[i % len(patients)]
        if i % WRITE_EVERY == WRITE_EVERY - 1:
            mix.append(("SkapaOrdinationVard", {
                "personnummer": pid, "lakemedel": {"nplPackId": "19990101100001", "namn": "Alvedon 500 mg tablett"},
                "doseringstext": "1 tablett vid behov", "antalForpackningar": 1, "antalUttag": 1,
                "forskrivningstyp": "ELEKTRONISK",
            }, "prescriber"))  # as the load users write one (rxverify.load.interfaces, which imports Locust)
        elif i % 3 == 0:
            mix.append(("HamtaPatientInfo", {"personnummer": pid}, "pharmacy"))
        elif i % 7 == 0:
            mix.append(("KontrolleraArbetsplatskod", {"arbetsplatskod": units[i % len(units)]}, "pharmacy"))
        else:
            mix.append(("HamtaAktuellaOrdinationer", {"personnummer": pid}, "pharmacy"))
    return mix


def _timed(client: LegacyClient, mix: list[Call]) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) per request of one pass over `mix`."""
    start, cpu = time.perf_counter(), time.process_time()
    for service, data, role in mix:
        answer = client.call(service, data, role=role)
        if not answer.ok:
            raise SystemExit(f"guard_overhead: {service} answered {answer.status} {answer.kod}")
    return (time.perf_counter() - start) / len(mix), (time.process_time() - cpu) / len(mix)


def _round(plain: LegacyClient, guarded: LegacyClient, mix: list[Call], flip: int) -> list[tuple[float, float]]:
    """[(wall, CPU) per request of plain, of guarded]: each call of `mix` made by both, one right after the
    other (which one first alternates), so drift in the machine and the platform hits both alike."""
    totals = {id(plain): [0.0, 0.0], id(guarded): [0.0, 0.0]}
    for i, (service, data, role) in enumerate(mix):
        for client in (plain, guarded) if (i + flip) % 2 == 0 else (guarded, plain):
            start, cpu = time.perf_counter(), time.process_time()
            answer = client.call(service, data, role=role)
            total = totals[id(client)]
            total[0] += time.perf_counter() - start
            total[1] += time.process_time() - cpu
            if not answer.ok:
                raise SystemExit(f"guard_overhead: {service} answered {answer.status} {answer.kod}")
    return [(totals[id(c)][0] / len(mix), totals[id(c)][1] / len(mix)) for c in (plain, guarded)]


class _CallerCertificates(HTTPAdapter):
    """requests' own transport, unguarded, presenting each request's caller's certificate as the run's sessions
    do (rxverify.target.callers): the baseline does the same TLS work as the guarded session."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.callers = run.callers
        self.ca = str(run.credentials_or_fail().ca())

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["cert"] = self.callers.certificate_for(request)
        kwargs["verify"] = self.ca
        return super().send(request, **kwargs)


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--requests", type=int, default=200, help="calls per round, each made by both sessions")
    parser.add_argument("--wire", choices=("tls", "plain"), default="tls",
                        help="mutual TLS with SAMBI assertions (the suite's default path) or plain HTTP with JWT "
                             "tickets (default tls)")
    args = parser.parse_args()

    registry = load_registry(CONTRACTS / "testdata" / "test-patients.json")
    actors = load_actors(CONTRACTS / "testdata" / "test-actors.json")
    patients = [p.id for p in registry.patients[:40]]
    units = [u["arbetsplatskod"] for u in actors.care_units]
    local = Target("local", "local")
    with tempfile.TemporaryDirectory(prefix="rxverify-bench-") as tmp, open_run(
        local, CONTRACTS, suite="load", reports=Path(tmp), platforms=("new",), tls=args.wire == "tls"
    ) as run:
        legacy = run.target.platforms["new"].legacy or ""
        riv = load_riv(CONTRACTS)
        mix = _mix(patients, units, args.requests)
        # the baseline: the same envelopes with no guard at all (requests' own transport)
        plain_session = requests.Session()
        plain_session.trust_env = False  # as the guarded session: no proxy lookup from the environment per request
        if run.secure:
            plain_session.mount("https://", _CallerCertificates(run))
        credentials = run.legacy_credentials()  # the callers' assertions (17.1), or their JWT tickets
        plain = LegacyClient(plain_session, legacy, riv, credentials, run.actors)
        guarded = LegacyClient(run.session(), legacy, riv, credentials, run.actors)
        _timed(plain, mix)  # warm-up: connections, caches, the platform's first queries
        _timed(guarded, mix)
        plain_us: list[tuple[float, float]] = []
        guarded_us: list[tuple[float, float]] = []
        for r in range(args.rounds):
            (pw, pc), (gw, gc) = _round(plain, guarded, mix, r)
            plain_us.append((pw * 1e6, pc * 1e6))
            guarded_us.append((gw * 1e6, gc * 1e6))

        prepared = [plain.prepare(service, data, role=role) for service, data, role in mix]
        inspect_guard = Guard(registry)
        start = time.perf_counter()
        for req in prepared:  # each template met for the first time: read in full
            inspect_guard.inspect("POST", req.url, req.headers, req.body)
        first_us = (time.perf_counter() - start) / len(prepared) * 1e6
        templates = len(inspect_guard._templates)
        loops = 5
        again = [[plain.prepare(service, data, role=role) for service, data, role in mix] for _ in range(loops)]
        start = time.perf_counter()
        for envelopes in again:  # their own requestIds, the templates known
            for req in envelopes:
                inspect_guard.inspect("POST", req.url, req.headers, req.body)
        inspect_us = (time.perf_counter() - start) / (loops * len(prepared)) * 1e6

    p = statistics.median(w for w, _ in plain_us)
    g = statistics.median(w for w, _ in guarded_us)
    # within a round the two sessions made each call one right after the other: the round's ratio
    # cancels the drift of the machine
    paired = sorted(gw / pw - 1 for (pw, _), (gw, _) in zip(plain_us, guarded_us, strict=True))
    ratio = statistics.median(paired)
    q1, q3 = paired[len(paired) // 4], paired[(3 * len(paired)) // 4]
    # what the guard adds in this process (the platform runs in its own), as a share of a plain request
    cpu = statistics.median(gc for _, gc in guarded_us) - statistics.median(pc for _, pc in plain_us)
    writes = sum(1 for service, _, _ in mix if service == "SkapaOrdinationVard")
    wire = "mutual TLS, SAMBI assertions" if args.wire == "tls" else "plain HTTP, JWT tickets"
    print(f"guard overhead: {args.rounds} rounds of {len(mix)} SOAP calls ({writes} writes) over {wire}, each made "
          "unguarded and guarded one right after the other")
    print(f"  plain requests.Session      {p:8.1f} µs/request (median of rounds)")
    print(f"  guarded session (+ledger)   {g:8.1f} µs/request")
    print(f"  overhead ratio              {ratio:+8.1%}  (median of the rounds' paired ratios; quartiles "
          f"{q1:+.1%} to {q3:+.1%}; aim: under {AIM:.0%})")
    print(f"  client CPU added            {cpu:8.1f} µs/request ({cpu / p:+.1%} of a plain request)")
    print(f"  Guard.inspect alone         {inspect_us:8.1f} µs/request ({inspect_us / p:.1%} of a plain request; an "
          f"envelope of a known template, each with its own requestId)")
    print(f"  first envelopes             {first_us:8.1f} µs/request (the first {len(prepared)}: {templates} templates "
          "met, each read, or made from the reading all patients share)")


if __name__ == "__main__":
    main()
