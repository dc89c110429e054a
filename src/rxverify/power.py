"""Suite power: how often the suite catches each seeded fault, over fresh seeds, and how often it cries wolf.

The matrix (tests/power/matrix.toml) names, per fault of the reference platforms, the smallest
run that must catch it and a pattern of what only that fault's failure says. Each fault runs
with K seeds drawn at run time, and so does every distinct run without a fault. A fault is
caught in a run only when the run fails (exit 1) and a failed test's own Allure result (its
name, parameters, message and trace; a load run writes one per SLO) matches the pattern: what
the run printed is never read, and no other exit code is a catch. Runs go two at a time (the
machine's cores), each a fresh process with its own seed and its own results folder. The fault
catalogue comes from the reference platforms' own command line: the suite never imports them.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from rxverify.errors import UserError
from rxverify.safety.identity import mask_identities
from rxverify.safety.redaction import redact_text

KINDS = ("contract", "load", "reconcile", "rehearse")
# reconcile: the old platform seeded, snapshot, migrated with the fault, new compared (`rxverify reconcile local`)
# rehearse: the service window of a plan (`rxverify rehearse`), its `trigger` faults always on: a NO-GO whose
# rollback the run rehearses, so its clean run ends NO-GO with a verified rollback (exit 1) and a fault is
# caught only when the rollback could not be verified (exit 3)
PLATFORMS = {"contract": ("old", "new", "both"), "load": ("old", "new", "fhir"), "reconcile": ("both",),
             "rehearse": ("both",)}
RUN_KEYS = {"run", "tests", "k", "platform", "examples", "profile", "duration", "timeout", "patients", "plan",
            "trigger"}
FAULT_KEYS = {"run", "expect", "tests", "overlaps"}
DEFAULT_KEYS = {"examples", "timeout", "companions"}
DEFAULT_EXAMPLES = 20  # `tox -e contract`'s default (pytest_plugin.DEFAULT_EXAMPLES)
DEFAULT_TIMEOUT_S = 300  # per run: a contract run takes seconds, a load run its profile's duration
LOAD_LANES = 1  # load runs at a time (see run_jobs)
SEED_RANGE = (1, 2**31)  # the seeds the pytest plugin itself draws
FAILED = ("failed", "broken")  # Allure: an assertion failed / the test raised
EXCERPT_CHARS = 240
CORPUS_CHARS = 4000  # of each failure kept by --corpus: the head, message and the start of the trace
CORPUS_PER_TEST = 2  # failures kept per fault and failed test: two seeds' worth, small enough to commit


@dataclass(frozen=True)
class Run:
    """One run of the suite: a pytest selection or a Locust profile, on a platform."""

    name: str
    kind: str
    platform: str
    tests: tuple[str, ...] = ()
    k: str = ""  # a pytest -k expression narrowing `tests`
    examples: int = DEFAULT_EXAMPLES
    profile: str = ""
    duration: float | None = None  # load: seconds, when shorter than the profile's
    timeout: float | None = None  # seconds, when this run needs another bound than [defaults] timeout
    patients: int | None = None  # reconcile: the first N test patients read (every one is seeded and migrated)
    plan: str = ""  # rehearse: the verification plan whose window is rehearsed
    trigger: tuple[str, ...] = ()  # rehearse: faults on in every run of it (clean too): the NO-GO rolled back

    @property
    def clean_exit(self) -> int:
        """The exit code of its run without a fault: 0, or 1 for a rehearsal of a triggered NO-GO."""
        return 1 if self.trigger else 0

    @property
    def caught_exit(self) -> int:
        """The exit code a run that catches its fault ends with: 1, or 3 (rollback not verified) after a trigger."""
        return 3 if self.trigger else 1


@dataclass(frozen=True)
class Fault:
    """A seeded fault, the run that must catch it and what its failure must say."""

    name: str
    run: str
    expect: re.Pattern[str]
    tests: tuple[str, ...] = ()  # the designated tests, when narrower than the run's selection
    # faults whose failures may also say `expect`, by their nature (a stall of the whole server
    # also slows the one operation another fault slows): the tightness test allows these only
    overlaps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Matrix:
    """The power matrix."""

    path: Path
    runs: dict[str, Run]
    faults: dict[str, Fault]
    timeout_s: float = DEFAULT_TIMEOUT_S
    # faults whose rows live in a companion matrix ([defaults] companions): covered, not run here
    elsewhere: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Job:
    """One run to execute: a run of the matrix with a seed, with a fault or clean."""

    run: Run
    seed: int
    fault: Fault | None = None

    @property
    def tests(self) -> tuple[str, ...]:
        """The faulted run's designated tests, else the run's whole selection."""
        return (self.fault.tests if self.fault else ()) or self.run.tests


@dataclass
class Outcome:
    """What one run did and the verdict on it."""

    fault: str | None
    run: str
    seed: int
    exit_code: int  # -1: timed out
    seconds: float
    caught: bool = False
    by: list[str] = field(default_factory=list)  # tests whose failure matched `expect`
    excerpt: str = ""  # the matched line; for a miss or a failing clean run, the first failure
    failed_tests: list[str] = field(default_factory=list)
    reproduce: str = ""
    load_average: float = 0.0  # the machine's 1-minute load average when the run ended (a shared machine skews latency)
    texts: list[str] = field(default_factory=list, repr=False)  # failed tests' texts, for --corpus only
    clean_exit: int = 0  # what its run ends with when nothing is wrong (Run.clean_exit)

    @property
    def passed(self) -> bool:
        """A clean run passes when it exits as its run does without a fault (0, or 1 after a trigger)."""
        return self.exit_code == self.clean_exit


# ---- the matrix ----


def load_matrix(path: Path) -> Matrix:
    """The matrix at `path`; anything malformed is one UserError naming the entry."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read power matrix {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"power matrix {path} is not valid TOML: {exc}") from None
    where = f"power matrix {path}"
    _keys(raw, {"defaults", "runs", "faults"}, where)
    defaults = _table(raw, "defaults", where, required=False)
    _keys(defaults, DEFAULT_KEYS, f"{where} [defaults]")
    examples = _positive(defaults.get("examples", DEFAULT_EXAMPLES), f"{where} [defaults] examples", int)
    timeout = _positive(defaults.get("timeout", DEFAULT_TIMEOUT_S), f"{where} [defaults] timeout", float)
    runs = {name: _run(name, spec, examples, where) for name, spec in _table(raw, "runs", where).items()}
    faults = {name: _fault(name, spec, runs, where) for name, spec in _table(raw, "faults", where).items()}
    if not faults:
        raise UserError(f"{where} lists no faults")
    elsewhere = frozenset(_companion_faults(path, _strings(defaults, "companions", f"{where} [defaults]"), faults))
    return Matrix(path, runs, faults, timeout, elsewhere)


def _companion_faults(path: Path, companions: tuple[str, ...], own: dict[str, Fault]) -> set[str]:
    """The fault names of the companion matrices (paths beside `path`); a fault has one row in all."""
    names: set[str] = set()
    for companion in companions:
        other = path.parent / companion
        try:
            raw = tomllib.loads(other.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UserError(f"power matrix {path}: companion {other}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"power matrix {path}: companion {other} is not valid TOML: {exc}") from None
        theirs = raw.get("faults")
        if not isinstance(theirs, dict):
            raise UserError(f"power matrix {path}: companion {other} has no [faults] table")
        twice = sorted(set(theirs) & set(own))
        if twice:
            raise UserError(f"power matrix {path}: fault(s) {', '.join(twice)} also have a row in {other}")
        names |= set(theirs)
    return names


def _table(raw: dict[str, Any], key: str, where: str, required: bool = True) -> dict[str, Any]:
    value = raw.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise UserError(f"{where}: [{key}] is missing or not a table")
    return value


def _keys(spec: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(allowed))})")


def _positive(value: Any, where: str, kind: type[int] | type[float]) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise UserError(f"{where}: {value!r} is not a {'whole ' if kind is int else ''}number")
    if value <= 0:
        raise UserError(f"{where}: {value!r} must be positive")
    return kind(value)


def _string(spec: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = spec.get(key, default)
    if not isinstance(value, str) or (default is None and not value):
        raise UserError(f"{where}: {key} must be a non-empty string")
    return value


def _entry(spec: Any, allowed: set[str], at: str) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise UserError(f"{at}: not a table")
    _keys(spec, allowed, at)
    return spec


def _run(name: str, spec: Any, examples: int, where: str) -> Run:
    at = f"{where} run {name}"
    spec = _entry(spec, RUN_KEYS, at)
    kind = _string(spec, "run", at)
    if kind not in KINDS:
        raise UserError(f"{at}: run = {kind!r}: expected {' or '.join(KINDS)}")
    platform = _string(spec, "platform", at)
    if platform not in PLATFORMS[kind]:
        raise UserError(f"{at}: platform {platform!r}: expected {', '.join(PLATFORMS[kind])}")
    if kind == "load":
        profile = _string(spec, "profile", at)
        if not Path(profile).is_file():
            raise UserError(f"{at}: profile {profile} does not exist")
        duration = _positive(spec["duration"], f"{at} duration", float) if "duration" in spec else None
        return Run(name, kind, platform, profile=profile, duration=duration)
    if kind == "reconcile":
        extra = sorted(set(spec) - {"run", "platform", "timeout", "patients"})
        if extra:
            raise UserError(f"{at}: a reconcile run takes no {', '.join(extra)} (its seed seeds the old platform)")
        timeout = _positive(spec["timeout"], f"{at} timeout", float) if "timeout" in spec else None
        patients = _positive(spec["patients"], f"{at} patients", int) if "patients" in spec else None
        return Run(name, kind, platform, timeout=timeout, patients=patients)
    if kind == "rehearse":
        extra = sorted(set(spec) - {"run", "platform", "timeout", "patients", "plan", "trigger"})
        if extra:
            raise UserError(f"{at}: a rehearse run takes no {', '.join(extra)} (its seed seeds the old platform)")
        timeout = _positive(spec["timeout"], f"{at} timeout", float) if "timeout" in spec else None
        patients = _positive(spec["patients"], f"{at} patients", int) if "patients" in spec else None
        return Run(name, kind, platform, timeout=timeout, patients=patients, plan=_string(spec, "plan", at),
                   trigger=_strings(spec, "trigger", at))
    tests = _strings(spec, "tests", at)
    if not tests:
        raise UserError(f"{at}: tests must list the pytest node ids (or files) the run selects")
    for test in tests:
        if not Path(test.split("::")[0]).exists():
            raise UserError(f"{at}: {test.split('::')[0]} does not exist")
    run_examples = _positive(spec.get("examples", examples), f"{at} examples", int)
    return Run(name, kind, platform, tests, _string(spec, "k", at, ""), run_examples)


def _fault(name: str, spec: Any, runs: dict[str, Run], where: str) -> Fault:
    at = f"{where} fault {name}"
    spec = _entry(spec, FAULT_KEYS, at)
    run = _string(spec, "run", at)
    if run not in runs:
        raise UserError(f"{at} names unknown run {run!r}")
    try:
        expect = re.compile(_string(spec, "expect", at), re.MULTILINE)
    except re.error as exc:
        raise UserError(f"{at}: expect is not a regular expression: {exc}") from None
    tests = _strings(spec, "tests", at)
    if tests and runs[run].kind != "contract":
        raise UserError(f"{at}: tests narrow a contract run only")
    for test in tests:
        if not any(_within(test, selected) for selected in runs[run].tests):
            raise UserError(f"{at}: test {test} is not in run {run}'s selection (its clean run would not cover it)")
    return Fault(name, run, expect, tests, _strings(spec, "overlaps", at))


def _strings(spec: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = spec.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise UserError(f"{where}: {key} must be a list of non-empty strings")
    return tuple(value)


def _within(test: str, selected: str) -> bool:
    """Whether node id `test` is `selected` or inside it (a file, a function, a parametrized id)."""
    return test == selected or test.startswith(selected + "::") or test.startswith(selected + "[")


def catalogue() -> dict[str, str]:
    """The platforms' fault catalogue (name -> kind), from `python -m refplatform --list-faults`."""
    out = subprocess.run(
        [sys.executable, "-m", "refplatform", "--list-faults"], capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0:
        raise UserError(f"cannot list the reference platforms' faults: {out.stderr.strip()[:200]}")
    return {line.split("\t")[0]: line.split("\t")[2] for line in out.stdout.splitlines() if line.count("\t") >= 3}


def check_coverage(matrix: Matrix, known: Iterable[str]) -> None:
    """Every fault of the catalogue has a row (here or in a companion) and every row a fault of the catalogue."""
    known = set(known)
    missing = sorted(known - set(matrix.faults) - matrix.elsewhere)
    if missing:
        raise UserError(
            f"power matrix {matrix.path} has no row for fault(s) {', '.join(missing)}: every fault needs one"
        )
    stray = sorted((set(matrix.faults) | matrix.elsewhere) - known)
    if stray:
        raise UserError(f"power matrix {matrix.path} names fault(s) the platforms do not have: {', '.join(stray)}")


# ---- seeds and jobs ----


def draw_seeds(count: int, rng: random.Random | None = None) -> list[int]:
    """`count` distinct fresh seeds (random.SystemRandom unless given another generator)."""
    rng = rng or random.SystemRandom()
    seeds: list[int] = []
    while len(seeds) < count:
        seed = rng.randrange(*SEED_RANGE)
        if seed not in seeds:
            seeds.append(seed)
    return seeds


def plan(
    matrix: Matrix, only: list[str] | None, seeds: int | list[int], draw: Callable[[int], list[int]] = draw_seeds
) -> list[Job]:
    """Every chosen fault and every distinct run they name (clean), each with its seeds.

    `seeds` is a count (each run draws that many fresh seeds) or the seeds to use for every run.
    Load runs come first (their own phase, see run_jobs).
    """
    unknown = sorted(set(only or []) - set(matrix.faults))
    if unknown:
        raise UserError(f"unknown fault(s) {', '.join(unknown)} (python -m refplatform --list-faults)")
    faults = [matrix.faults[f] for f in (only or sorted(matrix.faults))]
    clean = sorted({f.run for f in faults})

    def seeds_of() -> list[int]:
        return draw(seeds) if isinstance(seeds, int) else list(seeds)

    jobs = [Job(matrix.runs[r], s) for r in clean for s in seeds_of()]
    jobs += [Job(matrix.runs[f.run], s, f) for f in faults for s in seeds_of()]
    return sorted(jobs, key=lambda j: j.run.kind != "load")


# ---- one run ----


def command(job: Job, work: Path) -> list[str]:
    """The command line of one job; everything it writes goes under `work`."""
    run, seed = job.run, job.seed
    faults = ["--fault", job.fault.name] if job.fault else []
    if run.kind == "contract":
        k = ["-k", run.k] if run.k else []
        return [
            sys.executable, "-m", "pytest", *job.tests, *k, "-q", "-x", "-p", "no:cacheprovider",
            "-p", "rxverify.power_plugin", "--platform", run.platform, "--examples", str(run.examples),
            "--seed", str(seed), "--alluredir", str(work / "allure-results"), *faults,
        ]  # fmt: skip
    if run.kind == "reconcile":  # the seed draws the old platform's data; the fault goes to the migration job
        patients = ["--patients", str(run.patients)] if run.patients else []
        return [sys.executable, "-m", "rxverify", "reconcile", "local", "--seed", str(seed),
                "--reports", str(work), *patients, *faults]  # fmt: skip
    if run.kind == "rehearse":
        patients = ["--patients", str(run.patients)] if run.patients else []
        trigger = [a for t in run.trigger for a in ("--fault", t)]
        return [sys.executable, "-m", "rxverify", "rehearse", "--plan", run.plan, "--seed", str(seed),
                "--reports", str(work), *patients, *trigger, *faults]  # fmt: skip
    duration = ["--duration", f"{run.duration:g}"] if run.duration else []
    return [
        sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless", "--config", run.profile,
        "--platform", run.platform, *duration, "--seed", str(seed), "--reports", str(work),
        "--csv", str(work / "load" / "run"), "--html", str(work / "load" / "run.html"), *faults,
    ]  # fmt: skip


def reproduce(job: Job) -> str:
    """How to run one job again: through power (same judgement) and the run itself."""
    fault = job.fault.name if job.fault else None
    argv = command(job, Path("reports") / "power-reproduce")
    shown = ["python" if argv[0] == sys.executable else argv[0], *argv[1:]]
    again = f"rxverify power --fault {fault} --seed {job.seed}" if fault else ""
    return (f"{again}  # or: " if again else "") + shlex.join(shown)


def failures(results: Path) -> list[tuple[str, str]]:
    """(test, searchable text) of every failed or broken Allure result under `results`.

    The text is the test's full name, name and parameters on one line, then its message and
    trace, as the result file holds them.
    """
    found = []
    for path in sorted(results.rglob("*-result.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or doc.get("status") not in FAILED:
            continue
        params = ", ".join(f"{p.get('name')}={p.get('value')}" for p in doc.get("parameters") or [])
        name = str(doc.get("name") or "")
        head = f"{doc.get('fullName') or ''} {name}" + (f" [{params}]" if params else "")
        details = doc.get("statusDetails") or {}
        found.append((name, "\n".join([head, str(details.get("message") or ""), str(details.get("trace") or "")])))
    return found


def judge(
    exit_code: int, failed: list[tuple[str, str]], expect: re.Pattern[str], caught_exit: int = 1
) -> tuple[bool, list[str], str]:
    """(caught, by which tests, the matched line): only a failing run (exit 1; 3 for a rehearsed rollback that
    could not be verified, Run.caught_exit) whose failed test says `expect`."""
    if exit_code != caught_exit:
        return False, [], ""
    by, excerpt = [], ""
    for test, text in failed:
        hit = expect.search(text)
        if hit:
            by.append(test)
            excerpt = excerpt or _line_of(text, hit.start())
    return bool(by), sorted(set(by)), excerpt


def _line_of(text: str, at: int) -> str:
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    return text[start : end if end >= 0 else len(text)].strip()


def scrub(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` cut to `limit`, with secrets and every identity number masked."""
    return redact_text(mask_identities(text[:limit]))


def execute(job: Job, timeout_s: float, pycache: Path | None = None) -> Outcome:
    """Run one job in a fresh process and private folder; judge it from its Allure results."""
    fault = job.fault.name if job.fault else None
    with tempfile.TemporaryDirectory(prefix="rxpower-") as tmp:
        work = Path(tmp)
        (work / "load").mkdir()
        env = dict(os.environ, RXVERIFY_REPORTS=str(work))
        if pycache is not None:
            # bytecode (and pytest's rewritten test modules) cached once for every run, out of the
            # checkout: with PYTHONDONTWRITEBYTECODE each run would compile ~370 modules again
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(pycache)
        start = time.monotonic()
        code = _run_bounded(command(job, work), env, timeout_s)
        seconds = time.monotonic() - start
        failed = failures(work)
    outcome = Outcome(fault, job.run.name, job.seed, code, round(seconds, 2), failed_tests=[t for t, _ in failed],
                      clean_exit=job.run.clean_exit)
    outcome.load_average = round(os.getloadavg()[0], 2)
    outcome.texts = [scrub(text, CORPUS_CHARS) for _, text in failed]
    if job.fault is not None:
        outcome.caught, outcome.by, excerpt = judge(code, failed, job.fault.expect, job.run.caught_exit)
        outcome.excerpt = scrub(excerpt)
    if not outcome.caught and (job.fault is not None or code != job.run.clean_exit):
        outcome.excerpt = outcome.excerpt or _what_happened(code, failed, timeout_s)
        outcome.reproduce = reproduce(job)
    return outcome


_RUNNING: set[subprocess.Popen[bytes]] = set()  # the runs under way, ended if power itself is stopped
_RUNNING_LOCK = threading.Lock()


def _run_bounded(argv: list[str], env: dict[str, str], timeout_s: float) -> int:
    """Exit code of `argv`; -1 when it outlived `timeout_s` (its whole process group is ended)."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    with _RUNNING_LOCK:
        _RUNNING.add(proc)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _end(proc)
        return -1
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(proc)


def _end(proc: subprocess.Popen[bytes]) -> None:
    """End a run and the platforms it started (its process group, nothing else): TERM, then KILL."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _end_all() -> None:
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for proc in running:
        _end(proc)


def _what_happened(code: int, failed: list[tuple[str, str]], timeout_s: float) -> str:
    if code == -1:
        return f"timed out after {timeout_s:g} s"
    if not failed:
        return f"exit {code}, no failed test in its Allure results"
    test, text = failed[0]
    message = next((line for line in text.splitlines()[1:] if line.strip()), "")
    return scrub(f"exit {code}; {test}: {message.strip()}")


def run_jobs(
    jobs: list[Job], timeout_s: float, workers: int = 2, on_done: Callable[[Outcome], None] | None = None
) -> list[Outcome]:
    """Execute `jobs`, `workers` at a time, sharing one bytecode cache; `on_done` hears each outcome.

    Load runs go in a phase of their own, one at a time: their verdict is latency, and any run
    beside one slows the platform it measures. On this 2-core machine two clean load runs side
    by side both breached a p95 SLO (267 and 371 ms against 250) where the same two one after
    the other passed, at the same machine load: a false alarm, and for a latency fault a false
    catch.
    """
    lock = threading.Lock()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="rxpower-pycache-") as cache:

        def one(job: Job) -> Outcome:
            outcome = execute(job, job.run.timeout or timeout_s, Path(cache))
            if on_done is not None:
                with lock:
                    on_done(outcome)
            return outcome

        for kind, lanes in (("load", LOAD_LANES), ("contract", workers), ("reconcile", workers),
                            ("rehearse", workers)):
            phase = [j for j in jobs if j.run.kind == kind]
            with ThreadPoolExecutor(max_workers=max(1, min(lanes, workers))) as pool:
                try:
                    outcomes += pool.map(one, phase)
                except BaseException:  # interrupted (Ctrl-C, SIGTERM): end the runs rather than wait for them
                    pool.shutdown(cancel_futures=True, wait=False)
                    _end_all()
                    raise
    return outcomes


# ---- the verdict ----


def progress_line(o: Outcome, done: int, total: int) -> str:
    """One line per finished run, printed as it ends."""
    if o.fault is None:
        verdict, what = ("pass" if o.passed else "FAIL"), f"(clean) {o.run}"
    else:
        verdict, what = ("caught" if o.caught else "MISSED"), o.fault
    detail = ", ".join(o.by) if o.caught else o.excerpt
    return f"[{done}/{total}] {verdict:<6} {what:<46} seed {o.seed:<10} {o.seconds:6.1f} s  {detail}"[:220]


def score_line(outcomes: list[Outcome], k: int) -> str:
    """The line the release board and CI read: faults caught in every seed, false alarms of the clean runs."""
    faults = _by_fault(outcomes)
    caught = sum(all(o.caught for o in runs) for runs in faults.values())
    clean = [o for o in outcomes if o.fault is None]
    alarms = sum(not o.passed for o in clean)
    return (
        f"score: {caught}/{len(faults)} faults caught in every seed ({k} seeds); "
        f"false alarms: {alarms} of {len(clean)} clean runs"
    )


def passed(outcomes: list[Outcome]) -> bool:
    """Every fault caught in every seed and no clean run failing."""
    return all(o.caught if o.fault else o.passed for o in outcomes)


def _by_fault(outcomes: list[Outcome]) -> dict[str, list[Outcome]]:
    out: dict[str, list[Outcome]] = {}
    for o in outcomes:
        if o.fault is not None:
            out.setdefault(o.fault, []).append(o)
    return out


def table(outcomes: list[Outcome], kinds: dict[str, str], k: int) -> str:
    """Per fault caught k/K, by which tests, mean seconds to detection; clean runs per seed; the misses."""
    lines = [f"{'fault':<46} {'kind':<17} {'caught':>7} {'mean s':>7}  by", "-" * 120]
    misses = []
    for fault, runs in sorted(_by_fault(outcomes).items()):
        hits = [o for o in runs if o.caught]
        by = sorted({t for o in hits for t in o.by})
        seconds = f"{mean(o.seconds for o in hits):7.1f}" if hits else f"{'-':>7}"
        mark = "" if len(hits) == len(runs) else "  << MISSED"
        lines.append(
            f"{fault:<46} {kinds.get(fault, ''):<17} {len(hits):>3}/{len(runs):<3} {seconds}  {', '.join(by)}{mark}"
        )
        misses += [o for o in runs if not o.caught]
    lines.append("-" * 120)
    clean: dict[str, list[Outcome]] = {}
    for o in outcomes:
        if o.fault is None:
            clean.setdefault(o.run, []).append(o)
    for run, runs in sorted(clean.items()):
        per_seed = "; ".join(f"seed {o.seed} {'pass' if o.passed else 'FAIL'} {o.seconds:.1f} s" for o in runs)
        lines.append(f"{'(no fault) ' + run:<46} {per_seed}")
        misses += [o for o in runs if not o.passed]
    for o in misses:
        what = f"{o.fault} missed" if o.fault else f"clean run {o.run} failed"
        lines.append(
            f"{what} (run {o.run}, seed {o.seed}, exit {o.exit_code}, load average {o.load_average:g}): {o.excerpt}"
        )
        lines.append(f"  reproduce: {o.reproduce}")
    return "\n".join(lines)


def write_report(reports: Path, outcomes: list[Outcome], k: int, wall_s: float) -> Path:
    """reports/power.json: every outcome, the score line and the wall time."""
    reports.mkdir(parents=True, exist_ok=True)
    path = reports / "power.json"
    document = {
        "seeds_per_run": k,
        "wall_s": round(wall_s, 1),
        "score": score_line(outcomes, k),
        "passed": passed(outcomes),
        "outcomes": [{k: v for k, v in asdict(o).items() if k != "texts"} for o in outcomes],
    }
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


# ---- the command ----


def parse_seeds(count: int | None, given: list[str]) -> int | list[int]:
    """`--seeds K` (a count to draw) or `--seed S` (repeatable, or comma lists): one of them, seeds positive."""
    if given and count is not None:
        raise UserError("give either --seeds K (fresh seeds) or --seed S (these seeds), not both")
    if not given:
        count = 2 if count is None else count
        if count < 1:
            raise UserError(f"--seeds {count}: at least 1")
        return count
    seeds: list[int] = []
    for part in (p.strip() for item in given for p in item.split(",")):
        if not part.isdigit() or int(part) < 1:
            raise UserError(f"--seed {part!r}: a seed is a positive whole number")
        if int(part) not in seeds:
            seeds.append(int(part))
    return seeds


def write_corpus(path: Path, outcomes: list[Outcome]) -> None:
    """The failure texts of every faulted run, by fault (merged into `path` if it exists).

    tests/unit/test_power.py checks every `expect` against the other faults' texts: the
    evidence that a pattern says what only its own fault's failure says.
    """
    corpus: dict[str, list[str]] = {}
    if path.is_file():
        try:
            corpus = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise UserError(f"--corpus {path} is not a JSON corpus") from None
    for o in outcomes:
        if o.fault is None:
            continue
        kept = corpus.setdefault(o.fault, [])
        for text in o.texts:
            head = text.split("\n", 1)[0]
            if text not in kept and sum(k.split("\n", 1)[0] == head for k in kept) < CORPUS_PER_TEST:
                kept.append(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(corpus.items())), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # the command's handling of Ctrl-C (exit 130) ends the runs first


def run_power(
    matrix_path: Path, only: list[str] | None, seeds: int | list[int], workers: int, reports: Path,
    say: Callable[[str], None], corpus: Path | None = None,
) -> int:  # fmt: skip
    """`rxverify power`: plan, run, print progress, the table, the wall time and the score line last."""
    if workers < 1:
        raise UserError(f"--workers {workers}: at least 1")
    matrix = load_matrix(matrix_path)
    kinds = catalogue()
    check_coverage(matrix, kinds)
    jobs = plan(matrix, only, seeds)
    k = seeds if isinstance(seeds, int) else len(seeds)
    faults = len({j.fault.name for j in jobs if j.fault})
    clean = len({j.run.name for j in jobs if j.fault is None})
    source = (
        "drawn at run time with random.SystemRandom, fresh for every run"
        if isinstance(seeds, int)
        else f"given: {', '.join(map(str, seeds))}"
    )
    say(f"rxverify power: {faults} faults and {clean} clean runs x {k} seeds = {len(jobs)} runs, {workers} at a time")
    say(f"rxverify power: seeds {source} (each run's seed is on its line)")
    started = time.monotonic()
    done = [0]

    def heard(outcome: Outcome) -> None:
        done[0] += 1
        say(progress_line(outcome, done[0], len(jobs)))

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        outcomes = run_jobs(jobs, matrix.timeout_s, workers, heard)
    finally:
        signal.signal(signal.SIGTERM, previous)
    wall = time.monotonic() - started
    say(table(outcomes, kinds, k))
    say(f"wall time: {wall:.0f} s for {len(jobs)} runs ({workers} at a time)")
    say(f"written: {write_report(reports, outcomes, k, wall)}")
    if corpus is not None:
        write_corpus(corpus, outcomes)
        say(f"written: {corpus} (failure texts by fault)")
    say(score_line(outcomes, k))
    return 0 if passed(outcomes) else 1
