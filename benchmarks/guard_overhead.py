"""The guard's cost per request, as a ratio to an unguarded request in the same run.

One local reference platform (new, legacy interface), one request mix of the load test's kind
(mostly reads, a few writes), sent by a plain requests.Session and by a requests.Session with the
operation index and the ledger on, in interleaved rounds so drift in the platform hits both
alike. Prints microseconds per request of each, the overhead ratio (aim, issue 3: under 5 %),
and the pure `Guard.inspect` cost per request (the mix repeated, so with the guard's cache of
texts already found clean warm, as on a load test's repeated URLs and tickets). Loopback only.

    python benchmarks/guard_overhead.py [--rounds 15] [--requests 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import requests

from rxverify.safety.guard import Guard
from rxverify.safety.registry import load_registry
from rxverify.target.credentials import load_actors
from rxverify.target.run import open_run
from rxverify.target.targets import Target

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / "contracts"
AIM = 0.05  # issue 3: guard cost under 5 % of a request on the load-test path
WRITE_EVERY = 10  # one write in ten requests: the load model's mix is read-heavy (lookups per dispensing)


def _mix(legacy: str, patients: list[str], units: list[str], count: int) -> list[tuple[str, str, dict | None]]:
    """Reads of the pharmacy and care lookups, with a prescription created every WRITE_EVERY requests."""
    mix: list[tuple[str, str, dict | None]] = []
    for i in range(count):
        pid = patients[i % len(patients)]
        if i % WRITE_EVERY == WRITE_EVERY - 1:
            body = {
                "personId": pid,
                "lakemedel": {"nplPackId": "19990101100001", "namn": "Alvedon 500 mg"},
                "doseringstext": "1 tablett vid behov",
                "antalForpackningar": 1,
                "antalUttag": 1,
                "forskrivningstyp": "ELEKTRONISK",
            }
            mix.append(("POST", f"{legacy}/ordinationer", body))
        elif i % 3 == 0:
            mix.append(("GET", f"{legacy}/patienter/{pid}", None))
        elif i % 7 == 0:
            mix.append(("GET", f"{legacy}/arbetsplatskoder/{units[i % len(units)]}", None))
        else:
            mix.append(("GET", f"{legacy}/patienter/{pid}/ordinationer/aktuella", None))
    return mix


def _timed(
    session: requests.Session, mix: list[tuple[str, str, dict | None]], auth: dict[str, dict[str, str]]
) -> float:
    start = time.perf_counter()
    for method, url, body in mix:
        headers = auth["prescriber" if method == "POST" else "pharmacy"]
        session.request(method, url, json=body, headers=headers, timeout=10).raise_for_status()
    return (time.perf_counter() - start) / len(mix)


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=200, help="requests per round and session")
    args = parser.parse_args()

    registry = load_registry(CONTRACTS / "testdata" / "test-patients.json")
    actors = load_actors(CONTRACTS / "testdata" / "test-actors.json")
    patients = [p.id for p in registry.patients[:40]]
    units = [u["arbetsplatskod"] for u in actors.care_units]
    local = Target("local", "local")
    with tempfile.TemporaryDirectory(prefix="rxverify-bench-") as tmp, open_run(
        local, CONTRACTS, suite="load", reports=Path(tmp), platforms=("new",)
    ) as run:
        legacy = run.target.platforms["new"].legacy or ""
        auth = {role: run.auth_headers(role) for role in ("prescriber", "pharmacy")}
        mix = _mix(legacy, patients, units, args.requests)
        # the baseline: the same requests with no guard at all (requests' own transport)
        plain, guarded = requests.Session(), run.session()
        plain.trust_env = False  # as the guarded session: no proxy lookup from the environment per request
        _timed(plain, mix, auth)  # warm-up: connections, caches, the platform's first queries
        _timed(guarded, mix, auth)
        plain_us: list[float] = []
        guarded_us: list[float] = []
        for r in range(args.rounds):
            order = [(plain, plain_us), (guarded, guarded_us)]
            for session, sink in order if r % 2 == 0 else reversed(order):
                sink.append(_timed(session, mix, auth) * 1e6)

        prepared = [requests.Request(m, u, json=b, headers=auth["pharmacy"]).prepare() for m, u, b in mix]
        inspect_guard = Guard(registry)
        loops = 20
        start = time.perf_counter()
        for _ in range(loops):
            for req in prepared:
                inspect_guard.inspect(req.method or "GET", req.url or "", req.headers, req.body)
        inspect_us = (time.perf_counter() - start) / (loops * len(prepared)) * 1e6

    p, g = statistics.median(plain_us), statistics.median(guarded_us)
    ratio = g / p - 1
    writes = sum(1 for m, _, _ in mix if m == "POST")
    print(f"guard overhead: {args.rounds} interleaved rounds of {len(mix)} requests ({writes} writes) per session")
    print(f"  plain requests.Session      {p:8.1f} µs/request (median of rounds)")
    print(f"  guarded session (+ledger)   {g:8.1f} µs/request")
    print(f"  overhead ratio              {ratio:+8.1%}  (aim: under {AIM:.0%})")
    print(f"  Guard.inspect alone         {inspect_us:8.1f} µs/request ({inspect_us / p:.1%} of a plain request)")


if __name__ == "__main__":
    main()
