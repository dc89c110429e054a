"""`rxverify reconcile`: does the new platform serve every test patient what the old one served before the migration?

Before the migration, `snapshot` reads what the old platform serves about every test patient
of the registry through the legacy interface only (the read services, as a pharmacy system
calls them), twice, and learns the noise from the two reads as the differential learns it from
two old instances. After it, `compare` reads the same from the new platform through the legacy
interface (the transformer) and through FHIR, and compares per patient under the mapping
contract. `local` does the whole round on the embedded platforms: the old store seeded, the
snapshot, `python -m refplatform migrate [--fault X]`, the comparison.

Reads only, through the run builder's guarded session; on a production-class target only with
a verification plan that covers every read (the guard then keeps its window and rate).
Exit codes: 0 no differences, 1 differences, 2 bad input.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from rxverify.contracts.riv import load_riv
from rxverify.errors import UserError
from rxverify.mapping import load_mapping
from rxverify.reconcile.compare import Comparison, learn_noise
from rxverify.reconcile.reads import CENSUS, READS, fhir_reads, legacy_reads
from rxverify.reconcile.report import PatientResult, Reconciliation, write_allure, write_html, write_json
from rxverify.report.evidence import COMPLETE, RunWriter, begin_run
from rxverify.report.runs import write_run_record
from rxverify.target.local import SECONDARY
from rxverify.target.run import Run, open_run
from rxverify.target.targets import Target

SNAPSHOT_KIND = "rxverify reconcile snapshot"
SNAPSHOT_VERSION = 1
FHIR_SEARCHES = ("MedicationRequest.search", "MedicationDispense.search", "Consent.search")
LANES = ("legacy", "fhir")
SUBPROCESS_TIMEOUT_S = 300  # seeding or migrating the embedded platforms' stores (seconds, not minutes)
Say = Callable[[str], None]


def _ms() -> int:
    return int(time.time() * 1000)


def check_plan_covers(run: Run, lanes: tuple[str, ...], snapshot: bool) -> None:
    """On a production-class target the plan must allow every read (refused here, before anything is sent)."""
    if run.target.environment_class != "production":
        return
    plan = run.guard.plan
    assert plan is not None  # open_run refuses production without one
    needed = set(READS) | (set(FHIR_SEARCHES) if "fhir" in lanes and not snapshot else set())
    missing = sorted(needed - plan.allowed_operations)
    if missing:
        raise UserError(f"verification plan {plan.path} does not allow {', '.join(missing)}: a reconciliation on "
                        f"production target {run.target.name!r} needs every read in the plan; nothing was sent")


def take_snapshot(run: Run, contracts: Path, path: Path, platform: str = "old", say: Say = print,
                  limit: int | None = None, spread: bool = False) -> dict[str, Any]:
    """Read every test patient (the first `limit`, or `limit` spread over the registry) from `platform` twice.

    The second read comes from old-secondary if the target has one.
    """
    if platform not in run.target.platforms or run.target.platforms[platform].legacy is None:
        raise UserError(f"target {run.target.name!r} has no {platform} platform with a legacy interface")
    check_plan_covers(run, ("legacy",), snapshot=True)
    riv = load_riv(contracts)
    everyone = run.registry.patients
    if spread and limit and limit < len(everyone):
        # evenly over the registry's order, so every group of it (personnummer, samordningsnummer) is read
        patients = tuple(everyone[i * len(everyone) // limit] for i in range(limit))
    else:
        patients = everyone[:limit]
    say(f"reconcile snapshot: reading {len(patients)} test patients from the {platform} platform "
        f"({', '.join(READS)})")
    again = SECONDARY if SECONDARY in run.target.platforms else platform
    with ThreadPoolExecutor(max_workers=2) as pool:  # two instances answer side by side
        reading = pool.submit(legacy_reads, run, platform, riv, patients)
        second = legacy_reads(run, again, riv, patients)
        first = reading.result()
    noise = learn_noise(first, second)
    rest = [p for p in everyone if p.id not in first]
    census = legacy_reads(run, platform, riv, rest, CENSUS) if rest else {}
    if rest:
        say(f"reconcile snapshot: the census of the other {len(rest)} test patients ({', '.join(CENSUS)})")
    document = {
        "kind": SNAPSHOT_KIND, "version": SNAPSHOT_VERSION, "target": run.target.name, "platform": platform,
        "taken": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "registry": str(run.registry.path),
        "noise": sorted(noise.learned), "noiseFrom": f"{platform} and {again}", "patients": first,
        "census": census, "censusReads": list(CENSUS),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    say(f"reconcile snapshot: {path} ({len(first)} patients, {len(census)} more by census; noise learned from "
        f"{platform} and {again}: {len(noise.learned)} places)")
    return document


def read_snapshot(path: Path) -> dict[str, Any]:
    """A snapshot file written by `take_snapshot`; anything else is one UserError."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read baseline {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UserError(f"baseline {path} is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("kind") != SNAPSHOT_KIND:
        raise UserError(f"baseline {path} is not a reconcile snapshot (rxverify reconcile snapshot --out FILE)")
    if document.get("version") != SNAPSHOT_VERSION or not isinstance(document.get("patients"), dict):
        raise UserError(f"baseline {path}: unknown snapshot version {document.get('version')!r} or no patients")
    if not isinstance(document.get("census", {}), dict) or not all(
            isinstance(v, dict) for v in document.get("census", {}).values()):
        raise UserError(f"baseline {path}: 'census' must map patients to their reads")
    return document


def compare_with(run: Run, contracts: Path, baseline: dict[str, Any], baseline_name: str, reports: Path,
                 platform: str = "new", lanes: tuple[str, ...] = LANES, say: Say = print,
                 evidence: RunWriter | None = None, faults: tuple[str, ...] = ()) -> Reconciliation:
    """Read every patient of the baseline from `platform` and compare; write the Allure results, JSON and page.

    The Allure results go to a run folder, reports/runs/<run id>/ with its manifest (suite
    `reconcile`, the run builder's id) and run record, so the gate judges them as one run of the
    release run; or into `evidence`, the run of a command that reconciles as one of its phases
    (`rxverify rehearse`), which then ends that run itself.
    """
    endpoints = run.target.platforms.get(platform)
    if endpoints is None:
        raise UserError(f"target {run.target.name!r} has no {platform} platform")
    if "fhir" in lanes and endpoints.fhir is None:
        raise UserError(f"the {platform} platform of target {run.target.name!r} has no FHIR API (--lanes legacy)")
    check_plan_covers(run, lanes, snapshot=False)
    by_id = {p.id: p for p in run.registry.patients}
    census_old: dict[str, Any] = baseline.get("census", {})
    stray = sorted((set(baseline["patients"]) | set(census_old)) - set(by_id))
    if stray:
        raise UserError(f"baseline {baseline_name} names {len(stray)} patients that are not in the test-patient "
                        f"registry {run.registry.path}: take the snapshot with the same registry")
    patients = [by_id[pid] for pid in baseline["patients"]]
    counted = [by_id[pid] for pid in census_old if pid not in baseline["patients"]]
    place = {p.id: n for n, p in enumerate(run.registry.patients, start=1)}
    names = [f"reconcile.patient.{place[p.id]}" for p in (*patients, *counted)]
    own = evidence is None
    if evidence is None:
        evidence = begin_run(
            reports, "reconcile", target=run.target.name, environment_class=run.target.environment_class,
            embedded=run.target.is_local, platforms=[platform], run_id=run.run_id, collected=names,
            selection={"baseline": baseline_name, "lanes": list(lanes), "patients": len(patients),
                       "census": len(counted),
                       **({"faults": list(faults)} if faults else {})})
    else:
        evidence.update(collected=[*evidence.document.get("collected", []), *names])
    with evidence.ended_by_errors() if own else nullcontext(evidence):  # else the command's run ends it
        rec = _compare(run, contracts, baseline, baseline_name, patients, place, platform, lanes, say)
        if counted and "legacy" in lanes:
            _census(run, contracts, rec, baseline, counted, place, platform, say)
    write_allure(evidence.results, rec)
    folder = reports / "reconcile"
    rec.written = {"result": write_json(folder / "result.json", rec), "page": write_html(folder / "index.html", rec)}
    if own:
        endpoints = run.target.platforms[platform]
        write_run_record(reports, run_id=evidence.run, suite="reconcile", target=run.target.name,
                         environment_class=run.target.environment_class, guard_counts=run.guard.counts,
                         platforms={platform: {"legacy": endpoints.legacy, "fhir": endpoints.fhir}})
        evidence.finish(COMPLETE)
    for d in rec.differences[:40]:
        say(f"  {d}"[:400])
    if len(rec.differences) > 40:
        say(f"  ... {len(rec.differences) - 40} more in {rec.written['result']}")
    say(f"written: {rec.written['result']}, {rec.written['page']}, Allure results in {evidence.results}")
    say(rec.summary_line())
    return rec


def _compare(run: Run, contracts: Path, baseline: dict[str, Any], baseline_name: str, patients: list[Any],
             place: dict[str, int], platform: str, lanes: tuple[str, ...], say: Say) -> Reconciliation:
    from rxverify.differential import Noise

    mapping = load_mapping(contracts / "mapping" / "legacy-fhir.yaml")
    comparison = Comparison(mapping, Noise(frozenset(), set(baseline.get("noise", []))))
    riv = load_riv(contracts)
    rec = Reconciliation(run.target.name, baseline_name, tuple(f"{platform} {lane}" for lane in lanes))
    say(f"reconcile compare: reading {len(patients)} test patients from the {platform} platform over "
        f"{', '.join(lanes)}")
    start = _ms()
    legacy = legacy_reads(run, platform, riv, patients) if "legacy" in lanes else {}
    fhir = fhir_reads(run, platform, mapping, patients) if "fhir" in lanes else {}
    stop = _ms()
    for patient in patients:
        diffs = comparison.patient(patient.id, patient.kind, baseline["patients"][patient.id],
                                   legacy.get(patient.id) if "legacy" in lanes else None,
                                   fhir.get(patient.id) if "fhir" in lanes else None)
        rec.patients.append(PatientResult(patient.id, patient.kind, diffs, start, stop, place[patient.id]))
    return rec


def _census(run: Run, contracts: Path, rec: Reconciliation, baseline: dict[str, Any], counted: list[Any],
            place: dict[str, int], platform: str, say: Say) -> None:
    """The census reads of every patient outside the sample, compared as the sample's are (legacy lane)."""
    from rxverify.differential import Noise

    census_old = baseline["census"]
    comparison = Comparison(load_mapping(contracts / "mapping" / "legacy-fhir.yaml"),
                            Noise(frozenset(), set(baseline.get("noise", []))))
    say(f"reconcile compare: the census of {len(counted)} more test patients ({', '.join(CENSUS)})")
    start = _ms()
    legacy = legacy_reads(run, platform, load_riv(contracts), counted, CENSUS)
    stop = _ms()
    for patient in counted:
        diffs = comparison.patient(patient.id, patient.kind, census_old[patient.id], legacy.get(patient.id), None)
        rec.patients.append(PatientResult(patient.id, patient.kind, diffs, start, stop, place[patient.id],
                                          reads=CENSUS))


# ---- the embedded platforms: one command around a migration ----


def _refplatform(args: list[str], what: str, say: Say) -> None:
    """Run one of the reference platforms' window tools (a process of theirs: the suite never imports them)."""
    try:
        done = subprocess.run([sys.executable, "-m", "refplatform", *args], capture_output=True, text=True,
                              timeout=SUBPROCESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UserError(f"{what} did not finish in {SUBPROCESS_TIMEOUT_S} s") from None
    lines = (done.stdout.strip() or done.stderr.strip()).splitlines()
    if done.returncode != 0:
        raise UserError(f"{what} failed: {(done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]}")
    if lines:
        say(lines[-1])


def fault_platforms() -> dict[str, str]:
    """Fault name -> the platform it belongs to (old, new, migration), from the platforms' own catalogue."""
    out = subprocess.run([sys.executable, "-m", "refplatform", "--list-faults"], capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:
        raise UserError(f"cannot list the reference platforms' faults: {out.stderr.strip()[:200]}")
    return {line.split("\t")[0]: line.split("\t")[1] for line in out.stdout.splitlines() if line.count("\t") >= 2}


def seed_old(data_dir: Path, contracts: Path, seed: int, say: Say = print, secondary: bool = True) -> None:
    """Seed the old store in `data_dir/old` (and a copy for a second old instance, to learn noise from)."""
    _refplatform(["seed", "--platform", "old", "--data-dir", str(data_dir / "old"), "--contracts", str(contracts),
                  "--seed", str(seed)], "seeding the old platform", say)
    if secondary:
        (data_dir / SECONDARY).mkdir(parents=True, exist_ok=True)
        shutil.copy2(data_dir / "old" / "old.sqlite", data_dir / SECONDARY / "old.sqlite")


def migrate(data_dir: Path, contracts: Path, faults: tuple[str, ...] = (), say: Say = print) -> None:
    """`python -m refplatform migrate` from `data_dir/old` into `data_dir/new`, with the given migration faults."""
    args = ["migrate", "--from", str(data_dir / "old"), "--to", str(data_dir / "new"), "--contracts", str(contracts)]
    for fault in faults:
        args += ["--fault", fault]
    _refplatform(args, "the migration", say)


@contextmanager
def _data_dir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        if given.exists() and not given.is_dir():
            raise UserError(f"--data-dir {given} is not a folder")
        if given.exists() and any(given.iterdir()):
            raise UserError(f"--data-dir {given} is not empty: the round seeds fresh stores")
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rxverify-reconcile-") as tmp:
        yield Path(tmp)


def run_local(contracts: Path, reports: Path, seed: int, faults: tuple[str, ...] = (), lanes: tuple[str, ...] = LANES,
              data_dir: Path | None = None, say: Say = print, patients: int | None = None) -> Reconciliation:
    """The whole round on the embedded platforms: seed old, snapshot (`patients` spread), migrate, compare."""
    local = Target("local", "local", "embedded reference platforms")
    contracts = contracts.resolve()
    known = fault_platforms()
    wrong = [f for f in faults if known.get(f) != "migration"]
    if wrong:
        raise UserError(f"--fault {wrong[0]}: not a migration fault (known: "
                        f"{', '.join(sorted(f for f, p in known.items() if p == 'migration'))})")
    with _data_dir(data_dir) as work:
        say(f"reconcile: seeding the old platform (seed {seed}) in {work}")
        seed_old(work, contracts, seed, say)
        snapshot = reports / "reconcile" / "snapshot.json"
        with open_run(local, contracts, suite="reconcile", reports=reports, platforms=("old", SECONDARY),
                      data_dir=work, tls=True) as run:
            baseline = take_snapshot(run, contracts, snapshot, "old", say, patients, spread=True)
        say(f"reconcile: migrating old -> new (faults: {', '.join(faults) or 'none'})")
        migrate(work, contracts, faults, say)
        with open_run(local, contracts, suite="reconcile", reports=reports, platforms=("new",), data_dir=work,
                      tls=True) as run:
            return compare_with(run, contracts, baseline, str(snapshot), reports, "new", lanes, say, faults=faults)
