"""What a new resource costs the FHIR core as its store grows, as a ratio to an empty store in the same run.

A create (and the migration's import) inserts the resource's identifiers. Before, it first ran
the update's DELETE of the old ones, which scans every identifier of the resource type (the
table's key starts with type, system): the cost of a create grew with the store. The script
times batches of inserts into a store holding 0 and then `--size` resources, once as the core
does it now and once with that DELETE put back (the former behaviour), and prints
microseconds per insert and the ratio full/empty of each. In process, no network.

    python benchmarks/core_insert.py [--size 20000] [--batch 500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from refplatform.common.config import PlatformConfig
from refplatform.common.faults import FaultSet
from refplatform.new.core import FhirCore

ROOT = Path(__file__).resolve().parents[1]


class FormerCore(FhirCore):
    """The core as it was: every insert deletes the resource's identifiers first (once `former` is set)."""

    former = False  # off while the store is filled, so filling it does not take the former time

    def _identifiers(self, conn: Any, res: dict[str, Any], replace: bool = True) -> None:
        super()._identifiers(conn, res, replace=replace or self.former)


def _dispensing() -> dict[str, Any]:
    rid = str(uuid.uuid4())
    return {"resourceType": "MedicationDispense", "id": rid, "meta": {"versionId": "1",
            "lastUpdated": "2026-01-01T10:00:00.000Z"}, "status": "completed",
            "identifier": [{"system": "http://electronichealth.se/identifier/nlldispensingid", "value": rid}],
            "subject": {"identifier": {"system": "http://electronichealth.se/identifier/personnummer",
                                       "value": "191212121212"}},
            "authorizingPrescription": [{"reference": f"MedicationRequest/{uuid.uuid4()}"}]}


def _per_insert_us(core: FhirCore, batch: int) -> float:
    resources = [_dispensing() for _ in range(batch)]
    start = time.perf_counter()
    with core.store.write() as conn:
        for resource in resources:
            core.import_resource(conn, resource)
    return (time.perf_counter() - start) / batch * 1e6


def measure(kind: type[FhirCore], size: int, batch: int) -> tuple[float, float]:
    """Microseconds per insert into an empty store and into one of `size` resources."""
    with tempfile.TemporaryDirectory() as tmp:
        core = kind(PlatformConfig(Path(tmp), b"", ROOT / "contracts", FaultSet()))
        core.former = True  # type: ignore[attr-defined]  # a plain FhirCore ignores it
        empty = _per_insert_us(core, batch)
        core.former = False  # type: ignore[attr-defined]
        with core.store.write() as conn:
            for _ in range(size):
                core.import_resource(conn, _dispensing())
        core.former = True  # type: ignore[attr-defined]
        return empty, _per_insert_us(core, batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    for name, kind in (("now", FhirCore), ("former (DELETE first)", FormerCore)):
        empty, full = measure(kind, args.size, args.batch)
        print(f"{name:<22} {empty:8.1f} us/insert empty, {full:8.1f} us/insert at {args.size} resources: "
              f"ratio {full / empty:5.2f}")


if __name__ == "__main__":
    main()
