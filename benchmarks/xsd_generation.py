"""Generated examples per CPU second: our XSD strategies against schemathesis over legacy.yaml, same run.

For each of the old interface's twelve services, the request: rxverify.legacy.xsdgen.documents
from the responder XSD (contracts/riv, serialised XML, identities from the registry, every value
and the whole document read as the guard reads it) against schemathesis 4's `as_strategy()` of the
REST operation it replaces in contracts/openapi/legacy.yaml, loaded as the contract suite loads it
(rxverify.contract.load_contract: identities from the registry, the guard's filter on every case).
Both are drawn through hypothesis's generate phase only, the same examples per operation, in
interleaved rounds, strategies built once before timing (both cache them). Nothing is sent.
Prints examples per CPU second of each and their ratio (xsd / schemathesis), and the CPU and wall
time of `--examples` per operation for the twelve.

    python benchmarks/xsd_generation.py [--examples 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tomllib
from pathlib import Path
from typing import Any

import xmlschema
from hypothesis import HealthCheck, Phase, given, settings

from rxverify.contract import ACTIVE, load_contract
from rxverify.legacy.xsdgen import documents
from rxverify.safety.registry import load_registry
from rxverify.target.credentials import TicketMinter, load_actors

ROOT = Path(__file__).resolve().parents[1]
RIV = ROOT / "contracts" / "riv"
CONTRACTS = ROOT / "contracts"


def _draw(strategy: Any, examples: int) -> tuple[int, float, float]:
    """(examples drawn, CPU seconds, wall seconds) of hypothesis's generate phase over `strategy`."""
    drawn = [0]

    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(_: Any) -> None:
        drawn[0] += 1

    cpu, wall = time.process_time(), time.perf_counter()
    draw()
    return drawn[0], time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    """Run the comparison and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20, help="examples per operation and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    registry = load_registry(CONTRACTS / "testdata" / "test-patients.json")
    ACTIVE.registry = registry  # what load_contract's formats and filter read before a run exists
    ACTIVE.tickets = TicketMinter(os.urandom(32), load_actors(CONTRACTS / "testdata" / "test-actors.json"))
    operations = tomllib.loads((RIV / "services.toml").read_text(encoding="utf-8"))["operations"]
    legacy = load_contract(CONTRACTS / "openapi" / "legacy.yaml")
    ours, theirs = {}, {}
    for name, spec in operations.items():
        schema = xmlschema.XMLSchema10(str(RIV / spec["responder_xsd"]), allow="local")
        ours[name] = documents(schema, name, registry=registry)
        theirs[name] = legacy.find_operation_by_id(spec["rest_operation"]).as_strategy()
        _draw(ours[name], 2)  # warm both: lazy strategy construction is not generation
        _draw(theirs[name], 2)

    rates: dict[str, list[float]] = {"xsd": [], "schemathesis": []}
    totals: dict[str, list[tuple[float, float]]] = {"xsd": [], "schemathesis": []}
    for _ in range(args.rounds):
        for label, strategies in (("xsd", ours), ("schemathesis", theirs)):
            count, cpu, wall = 0, 0.0, 0.0
            for strategy in strategies.values():
                n, c, w = _draw(strategy, args.examples)
                count, cpu, wall = count + n, cpu + c, wall + w
            rates[label].append(count / cpu)
            totals[label].append((cpu, wall))
    xsd, sch = statistics.median(rates["xsd"]), statistics.median(rates["schemathesis"])
    for label in ("xsd", "schemathesis"):
        cpu = statistics.median(c for c, _ in totals[label])
        wall = statistics.median(w for _, w in totals[label])
        print(f"{label:13s} {statistics.median(rates[label]):8.1f} examples/CPU s   "
              f"{args.examples} x {len(operations)} operations: {cpu:.2f} s CPU, {wall:.2f} s wall")
    print(f"ratio xsd / schemathesis: {xsd / sch:.2f}  (median of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
