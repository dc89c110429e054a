"""Suite power judges honestly: caught only on the fault's own failure, rates over fresh seeds, one score line."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from rxverify import power, power_plugin
from rxverify.cli import main
from rxverify.errors import UserError
from rxverify.power import (
    Fault,
    Job,
    Outcome,
    Run,
    catalogue,
    check_coverage,
    command,
    draw_seeds,
    execute,
    failures,
    judge,
    load_matrix,
    parse_seeds,
    plan,
    reproduce,
    score_line,
    table,
)

from .conftest import ROOT

MATRIX = ROOT / "tests" / "power" / "matrix.toml"
CORPUS = ROOT / "tests" / "power" / "failures.json"
SCORE = re.compile(
    r"score: (\d+)/(\d+) faults caught in every seed \((\d+) seeds\); false alarms: (\d+) of (\d+) clean runs"
)
RACE = re.compile(r"won the only withdrawal", re.MULTILINE)


@pytest.fixture(scope="module")
def matrix() -> power.Matrix:
    return load_matrix(MATRIX)


@pytest.fixture(scope="module")
def known() -> dict[str, str]:
    return catalogue()


def allure_result(folder: Path, name: str, status: str, message: str = "", **extra: Any) -> Path:
    """A result file as allure-pytest and the load run write them."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "uuid": str(uuid.uuid4()),
        "name": name,
        "fullName": extra.get("full_name", f"tests.contract.test_x#{name}"),
        "status": status,
        "statusDetails": {"message": message, "trace": extra.get("trace", "")},
        "parameters": [{"name": k, "value": v} for k, v in extra.get("parameters", {}).items()],
    }
    path = folder / f"{doc['uuid']}-result.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


# ---- the matrix and the catalogue ----


def test_every_fault_of_the_catalogue_has_a_row_and_every_row_a_fault(
    matrix: power.Matrix, known: dict[str, str]
) -> None:
    assert len(known) >= 24
    check_coverage(matrix, known)
    assert set(matrix.faults) | matrix.elsewhere == set(known)
    blind = load_matrix(MATRIX.parent / "blind.toml")
    check_coverage(blind, known)
    assert not set(blind.faults) & set(matrix.faults)


def test_a_fault_with_a_row_in_two_matrices_or_a_missing_companion_is_refused(tmp_path: Path) -> None:
    fault = '[faults]\nx = { run = "r", expect = "y" }\n'
    (tmp_path / "other.toml").write_text(fault, encoding="utf-8")
    one = tmp_path / "m.toml"
    one.write_text('[defaults]\ncompanions = ["other.toml"]\n' + GOOD_RUN + fault, encoding="utf-8")
    with pytest.raises(UserError, match=r"fault\(s\) x also have a row in .*other.toml"):
        load_matrix(one)
    one.write_text('[defaults]\ncompanions = ["gone.toml"]\n' + GOOD_RUN + fault, encoding="utf-8")
    with pytest.raises(UserError, match=r"companion .*gone.toml"):
        load_matrix(one)
    (tmp_path / "other.toml").write_text('[faults]\nz = { run = "r", expect = "y" }\n', encoding="utf-8")
    one.write_text('[defaults]\ncompanions = ["other.toml"]\n' + GOOD_RUN + fault, encoding="utf-8")
    both = load_matrix(one)
    check_coverage(both, ["x", "z"])
    with pytest.raises(UserError, match=r"no row for fault.*w"):
        check_coverage(both, ["x", "z", "w"])


def test_every_kind_of_regression_is_covered(known: dict[str, str]) -> None:
    assert set(known.values()) >= {"mapping", "fhir-conformance", "behaviour", "security", "performance",
                                   "migration", "wire"}


def test_a_fault_without_a_row_or_a_row_without_a_fault_is_refused(matrix: power.Matrix) -> None:
    with pytest.raises(UserError, match=r"no row for fault.*a-new-fault"):
        check_coverage(matrix, [*matrix.faults, *matrix.elsewhere, "a-new-fault"])
    with pytest.raises(UserError, match=r"platforms do not have: transformer-mojibake$"):
        check_coverage(matrix, [f for f in [*matrix.faults, *matrix.elsewhere] if f != "transformer-mojibake"])


GOOD_RUN = '[runs.r]\nrun = "contract"\ntests = ["tests/contract/test_differential.py"]\nplatform = "both"\n'


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[runs\n", "not valid TOML"),
        (GOOD_RUN, r"\[faults\] is missing"),
        (GOOD_RUN + '[faults]\nx = { run = "b", expect = "y" }\n', "names unknown run 'b'"),
        (GOOD_RUN + '[faults]\nx = { run = "r" }\n', "expect must be a non-empty string"),
        (GOOD_RUN + '[faults]\nx = { run = "r", expect = "(" }\n', "expect is not a regular expression"),
        (GOOD_RUN + '[faults]\nx = { run = "r", expect = "y", expct = "z" }\n', r"unknown key\(s\) expct"),
        (GOOD_RUN.replace('"both"', '"all"') + '[faults]\nx = { run = "r", expect = "y" }\n', "platform 'all'"),
        (GOOD_RUN.replace('"contract"', '"unit"') + '[faults]\nx = { run = "r", expect = "y" }\n', "run = 'unit'"),
        (GOOD_RUN.replace("differential", "nosuch") + '[faults]\nx = { run = "r", expect = "y" }\n', "does not exist"),
        (GOOD_RUN + 'examples = 0\n[faults]\nx = { run = "r", expect = "y" }\n', "must be positive"),
        (GOOD_RUN + 'examples = "many"\n[faults]\nx = { run = "r", expect = "y" }\n', "is not a whole number"),
        ("[defaults]\nseed = 1\n" + GOOD_RUN + '[faults]\nx = { run = "r", expect = "y" }\n', "unknown key"),
        (
            GOOD_RUN + '[faults]\nx = { run = "r", expect = "y", tests = ["tests/contract/test_security.py"] }\n',
            "not in run r's selection",
        ),
        (GOOD_RUN + "[faults]\n", "lists no faults"),
    ],
)
def test_a_malformed_matrix_is_one_user_error(tmp_path: Path, text: str, says: str) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=says) as raised:
        load_matrix(bad)
    assert "\n" not in str(raised.value)


def test_a_malformed_matrix_is_exit_2_and_one_line_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text(GOOD_RUN + '[faults]\nx = { run = "b", expect = "y" }\n', encoding="utf-8")
    assert main(["power", "--matrix", str(bad), "--reports", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown run 'b'" in err
    assert main(["power", "--matrix", str(tmp_path / "absent.toml")]) == 2
    assert "cannot read power matrix" in capsys.readouterr().err


def test_unknown_fault_is_one_user_error_before_anything_runs(matrix: power.Matrix) -> None:
    with pytest.raises(UserError, match=r"unknown fault.*no-such-fault"):
        plan(matrix, ["no-such-fault"], 1)


# ---- caught: the fault's own failure, in the run's own Allure results ----


def test_a_failed_test_whose_result_says_the_fault_is_caught_and_named(tmp_path: Path) -> None:
    allure_result(
        tmp_path, "test_last_withdrawal_has_one_winner[old]", "failed", "round 1: 2 pharmacies won the only withdrawal"
    )
    allure_result(tmp_path, "test_other", "failed", "something else")
    caught, by, excerpt = judge(1, failures(tmp_path), RACE)
    assert caught and by == ["test_last_withdrawal_has_one_winner[old]"] and "won the only withdrawal" in excerpt


def test_a_matching_message_on_a_passed_test_is_not_caught(tmp_path: Path) -> None:
    allure_result(tmp_path, "test_a", "passed", "2 pharmacies won the only withdrawal")
    allure_result(tmp_path, "test_b", "failed", "an unrelated failure")
    assert judge(1, failures(tmp_path), RACE) == (False, [], "")


def test_a_broken_test_counts_as_failed_and_a_skipped_one_does_not(tmp_path: Path) -> None:
    allure_result(tmp_path, "test_skipped", "skipped", "won the only withdrawal")
    assert not judge(1, failures(tmp_path), RACE)[0]
    allure_result(tmp_path, "test_broken", "broken", "KeyError: won the only withdrawal")
    assert judge(1, failures(tmp_path), RACE)[1] == ["test_broken"]


@pytest.mark.parametrize("code", [0, 2, 3, 4, 5, -1, 137])
def test_no_exit_code_but_1_is_a_catch(tmp_path: Path, code: int) -> None:
    allure_result(tmp_path, "test_a", "failed", "won the only withdrawal")
    assert judge(code, failures(tmp_path), RACE) == (False, [], "")


def test_the_searched_text_is_name_parameters_message_and_trace(tmp_path: Path) -> None:
    allure_result(
        tmp_path, "SLO x", "failed", "SLO breached: x", full_name="rxverify.load.slo.x", parameters={"platform": "old"},
        trace="in trace",
    )  # fmt: skip
    ((name, text),) = failures(tmp_path)
    assert name == "SLO x" and text.splitlines() == [
        "rxverify.load.slo.x SLO x [platform=old]",
        "SLO breached: x",
        "in trace",
    ]
    (tmp_path / "junk-result.json").write_text("{not json", encoding="utf-8")
    assert len(failures(tmp_path)) == 1


def alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie waiting to be reaped does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def fake_run(monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """Make every job run `script` (given its private folder as argv[1]) instead of the suite."""
    monkeypatch.setattr(power, "command", lambda job, work: [sys.executable, "-c", script, str(work)])


WRITES_RESULT = """
import json, sys, uuid, pathlib
folder = pathlib.Path(sys.argv[1]) / "allure-results"
folder.mkdir(parents=True, exist_ok=True)
doc = {"name": "test_race", "fullName": "t#test_race", "status": "failed", "statusDetails": {"message": MESSAGE}}
(folder / f"{uuid.uuid4()}-result.json").write_text(json.dumps(doc))
print("round 1: 2 pharmacies won the only withdrawal", flush=True)  # on stdout whatever happens
print("won the only withdrawal", file=sys.stderr, flush=True)
sys.exit(CODE)
"""


def race_job() -> Job:
    run = Run("race-old", "contract", "old", ("tests/contract/test_last_withdrawal.py",))
    return Job(run, 42, Fault("old-last-withdrawal-race", "race-old", RACE))


def test_a_fault_named_only_in_what_the_run_printed_is_not_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_run(
        monkeypatch,
        WRITES_RESULT.replace("MESSAGE", repr("AssertionError: 500 from GodkannUttag")).replace("CODE", "1"),
    )
    outcome = execute(race_job(), timeout_s=60)
    assert outcome.exit_code == 1 and outcome.failed_tests == ["test_race"]
    assert not outcome.caught and outcome.by == []
    assert "500 from GodkannUttag" in outcome.excerpt and "--seed 42" in outcome.reproduce


def test_the_same_run_with_the_fault_in_its_allure_result_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_run(
        monkeypatch,
        WRITES_RESULT.replace("MESSAGE", repr("round 1: 2 pharmacies won the only withdrawal")).replace("CODE", "1"),
    )
    outcome = execute(race_job(), timeout_s=60)
    assert outcome.caught and outcome.by == ["test_race"] and outcome.reproduce == ""


def test_exit_2_with_the_fault_in_its_allure_result_is_not_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_run(
        monkeypatch, WRITES_RESULT.replace("MESSAGE", repr("2 pharmacies won the only withdrawal")).replace("CODE", "2")
    )
    outcome = execute(race_job(), timeout_s=60)
    assert outcome.exit_code == 2 and not outcome.caught


def test_a_run_outliving_its_timeout_is_ended_with_what_it_started_and_not_caught(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pid_file = tmp_path / "child.pid"
    fake_run(
        monkeypatch,
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n",
    )
    started = time.monotonic()
    outcome = execute(race_job(), timeout_s=2)
    assert outcome.exit_code == -1 and not outcome.caught and "timed out" in outcome.excerpt
    assert time.monotonic() - started < 30
    time.sleep(0.2)
    assert not alive(int(pid_file.read_text()))


STOPPED_POWER = """
import sys
from pathlib import Path
from rxverify import power
from rxverify.cli import main

SLEEPER = "import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
power.command = lambda job, work: [sys.executable, "-c", SLEEPER + f"open({PIDS!r} + str(c.pid), 'w'); time.sleep(60)"]
matrix = power.load_matrix(Path("tests/power/matrix.toml"))
power.catalogue = lambda: {f: "x" for f in [*matrix.faults, *matrix.elsewhere]}
sys.exit(main(["power", "--fault", "core-cancelled-withdrawable", "--seed", "1", "--reports", REPORTS]))
"""


def test_stopping_power_ends_the_runs_it_started(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    script = STOPPED_POWER.replace("PIDS", repr(str(pids) + "/")).replace("REPORTS", repr(str(tmp_path)))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:  # both workers' runs are under way
            time.sleep(0.1)
        started = [int(p.name) for p in pids.iterdir()]
        assert len(started) == 2
        proc.send_signal(15)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.3)
    assert [pid for pid in started if alive(pid)] == []


def test_load_runs_go_one_at_a_time_with_nothing_beside_them(monkeypatch: pytest.MonkeyPatch) -> None:
    running: list[str] = []
    seen: list[tuple[str, ...]] = []
    lock = threading.Lock()

    def fake_execute(job: Job, timeout_s: float, pycache: Path | None = None) -> Outcome:
        with lock:
            running.append(job.run.kind)
            seen.append(tuple(running))
        time.sleep(0.2)
        with lock:
            running.remove(job.run.kind)
        return Outcome(None, job.run.name, job.seed, 0, 0.2)

    monkeypatch.setattr(power, "execute", fake_execute)
    load = Run("l", "load", "new", profile="loadtests/profiles/smoke.conf")
    contract = Run("c", "contract", "new", ("tests/contract/test_security.py",))
    jobs = [Job(contract, 1), Job(load, 2), Job(contract, 3), Job(load, 4), Job(contract, 5), Job(contract, 6)]
    outcomes = power.run_jobs(jobs, 60, workers=2)
    assert [o.seed for o in outcomes[:2]] == [2, 4]  # the load phase first
    assert all(s == ("load",) for s in seen if "load" in s)
    assert ("contract", "contract") in seen  # the contract phase uses both lanes


# ---- rates: fresh seeds, the score line ----


def test_seeds_are_drawn_fresh_with_system_random(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[random.Random] = []

    class Recording(random.SystemRandom):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    monkeypatch.setattr(power.random, "SystemRandom", Recording)
    seeds = draw_seeds(5)
    assert made and len(set(seeds)) == 5 and all(power.SEED_RANGE[0] <= s < power.SEED_RANGE[1] for s in seeds)


def test_every_run_draws_its_own_seeds(matrix: power.Matrix) -> None:
    counter = iter(range(1, 1000))
    jobs = plan(
        matrix, ["transformer-mojibake", "old-slow-aktuella"], 2, draw=lambda k: [next(counter) for _ in range(k)]
    )
    assert len(jobs) == 8 and len({j.seed for j in jobs}) == 8
    assert jobs[0].run.kind == "load"  # the longest first
    per_fault = {j.fault.name: [] for j in jobs if j.fault}  # type: ignore[union-attr]
    for j in jobs:
        if j.fault:
            per_fault[j.fault.name].append(j.seed)
    assert all(len(s) == 2 for s in per_fault.values())
    assert {j.run.name for j in jobs if j.fault is None} == {"differential", "load-old"}


def test_given_seeds_run_for_every_fault_and_every_clean_run(matrix: power.Matrix) -> None:
    jobs = plan(matrix, ["transformer-mojibake"], [5, 7])
    assert sorted((j.fault is None, j.seed) for j in jobs) == [(False, 5), (False, 7), (True, 5), (True, 7)]


def test_seed_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_seeds(None, []) == 2
    assert parse_seeds(5, []) == 5
    assert parse_seeds(None, ["3,4", "9", "3"]) == [3, 4, 9]
    for count, given, says in [(2, ["3"], "not both"), (0, [], "at least 1"), (None, ["x"], "positive whole"),
                               (None, ["0"], "positive whole")]:  # fmt: skip
        with pytest.raises(UserError, match=says):
            parse_seeds(count, given)
    assert main(["power", "--seed", "-3"]) == 2 and capsys.readouterr().err.count("\n") == 1


def outcome(fault: str | None, seed: int, caught: bool = False, code: int = 1, run: str = "r") -> Outcome:
    return Outcome(fault, run, seed, code, 3.0, caught, ["test_x"] if caught else [])


MIXED = [
    outcome("a", 1, True),
    outcome("a", 2, True),
    outcome("b", 3, True),
    outcome("b", 4, False, code=0),
    outcome(None, 5, code=0),
    outcome(None, 6, code=1),
    outcome(None, 7, code=0, run="s"),
    outcome(None, 8, code=0, run="s"),
]


def test_the_score_line_counts_faults_caught_in_every_seed_and_failing_clean_runs() -> None:
    line = score_line(MIXED, 2)
    assert line == "score: 1/2 faults caught in every seed (2 seeds); false alarms: 1 of 4 clean runs"
    assert SCORE.fullmatch(line)


def test_the_table_gives_rates_tests_seconds_and_each_miss() -> None:
    text = table(MIXED, {"a": "mapping", "b": "behaviour"}, 2)
    assert re.search(r"^a\s+mapping\s+2/2\s+3\.0\s+test_x$", text, re.MULTILINE)
    assert re.search(r"^b\s+behaviour\s+1/2 .*MISSED", text, re.MULTILINE)
    assert "seed 5 pass 3.0 s; seed 6 FAIL 3.0 s" in text
    assert "b missed (run r, seed 4, exit 0, load average 0)" in text
    assert "clean run r failed (run r, seed 6, exit 1, load average 0)" in text


def test_power_prints_the_score_line_last_and_exits_0_only_on_a_full_score(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, matrix: power.Matrix
) -> None:
    monkeypatch.setattr(power, "catalogue", lambda: {f: "mapping" for f in [*matrix.faults, *matrix.elsewhere]})
    for missed, expected_code in ((False, 0), (True, 1)):

        def fake_jobs(
            jobs: list[Job], timeout_s: float, workers: int, on_done: Any, missed: bool = missed
        ) -> list[Outcome]:
            out = [
                outcome(
                    j.fault.name if j.fault else None,
                    j.seed,
                    bool(j.fault) and not missed,
                    1 if j.fault else 0,
                    j.run.name,
                )
                for j in jobs
            ]
            for o in out:
                on_done(o)
            return out

        monkeypatch.setattr(power, "run_jobs", fake_jobs)
        lines: list[str] = []
        code = power.run_power(MATRIX, ["transformer-mojibake"], [11, 12], 2, tmp_path, lines.append)
        assert code == expected_code
        assert SCORE.fullmatch(lines[-1]) and lines[-1].endswith("false alarms: 0 of 2 clean runs")
        assert any(line.startswith("wall time: ") for line in lines)
        report = json.loads((tmp_path / "power.json").read_text())
        assert report["score"] == lines[-1] and len(report["outcomes"]) == 4
        assert {"fault", "seed", "run", "exit_code", "caught", "by", "seconds", "excerpt"} <= set(report["outcomes"][0])


def test_excerpts_are_scrubbed_of_secrets() -> None:
    ticket = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJlc2lnbmF0dXJl"
    assert ticket not in power.scrub(f"Authorization: Bearer {ticket} refused")


# ---- the commands ----


def test_a_faulted_contract_run_runs_only_its_designated_tests_with_its_own_seed_and_results(
    matrix: power.Matrix, tmp_path: Path
) -> None:
    fault = matrix.faults["core-cancelled-withdrawable"]
    argv = command(Job(matrix.runs[fault.run], 77, fault), tmp_path)
    assert list(fault.tests) == [a for a in argv if a.startswith("tests/")]
    assert argv[argv.index("--seed") + 1] == "77" and argv[argv.index("--fault") + 1] == fault.name
    assert argv[argv.index("--alluredir") + 1] == str(tmp_path / "allure-results")
    assert "-x" in argv and argv[argv.index("rxverify.power_plugin") - 1] == "-p"
    clean = command(Job(matrix.runs[fault.run], 78), tmp_path)
    assert "--fault" not in clean and list(matrix.runs[fault.run].tests) == [a for a in clean if a.startswith("tests/")]


def test_a_load_run_carries_its_seed_reports_folder_and_duration(tmp_path: Path) -> None:
    run = Run("l", "load", "old", profile="loadtests/profiles/smoke.conf", duration=12)
    argv = command(Job(run, 5, Fault("old-slow-aktuella", "l", RACE)), tmp_path)
    assert argv[argv.index("--seed") + 1] == "5" and argv[argv.index("--reports") + 1] == str(tmp_path)
    assert argv[argv.index("--duration") + 1] == "12" and argv[-2:] == ["--fault", "old-slow-aktuella"]


def test_a_rehearsed_rollback_is_caught_only_unverified_and_its_clean_run_is_a_verified_rollback(
    tmp_path: Path, matrix: power.Matrix
) -> None:
    run, fault = matrix.runs["rollback"], matrix.faults["gateway-rollback-not-applied"]
    assert (run.kind, run.clean_exit, run.caught_exit) == ("rehearse", 1, 3)
    allure_result(tmp_path, "window: post-rollback checks on old", "failed",
                  "rollback NOT verified: through the gateway, the patients of the lost writes are served as old "
                  "serves them: 1 patients read through the gateway and on old; served otherwise: 19********12")
    failed = failures(tmp_path)
    assert judge(3, failed, fault.expect, run.caught_exit)[0]
    assert not judge(1, failed, fault.expect, run.caught_exit)[0]  # a verified rollback catches nothing
    argv = command(Job(run, 9, fault), tmp_path)
    assert argv[argv.index("rehearse") + 1 : argv.index("rehearse") + 3] == ["--plan", "release-21.0"]
    assert argv[argv.index("--seed") + 1] == "9" and argv[argv.index("--reports") + 1] == str(tmp_path)
    assert argv[-4:] == ["--fault", "core-cancelled-withdrawable", "--fault", "gateway-rollback-not-applied"]
    assert "gateway-rollback-not-applied" not in command(Job(run, 9), tmp_path)  # the clean run: trigger only
    assert Outcome(None, "rollback", 9, 1, 1.0, clean_exit=1).passed
    assert not Outcome(None, "rollback", 9, 0, 1.0, clean_exit=1).passed  # GO despite the trigger: a false pass


def test_the_reproduce_line_names_the_fault_and_the_seed(matrix: power.Matrix) -> None:
    fault = matrix.faults["transformer-mojibake"]
    line = reproduce(Job(matrix.runs[fault.run], 123, fault))
    assert line.startswith("rxverify power --fault transformer-mojibake --seed 123  # or: python -m pytest ")
    assert "--seed 123" in line.split("# or:")[1] and sys.executable not in line


def test_the_power_plugin_drops_shrinking_only() -> None:
    from hypothesis import Phase, settings

    before = settings.get_current_profile_name()
    try:
        power_plugin.pytest_configure(None)  # type: ignore[arg-type]
        phases = settings.default.phases  # type: ignore[union-attr]
        assert Phase.generate in phases and Phase.explicit in phases
        assert Phase.shrink not in phases and Phase.explain not in phases
    finally:
        settings.load_profile(before)


# ---- tightness: each expect says what only its own fault's failure says ----

GENERIC = [
    "status", "identifier", "SLO BREACHED", "SLO breached", "AssertionError", "assert 200 == 401", "failed",
    "404", "500", "Content-Type", "application/json", "application/fhir+json", "OperationOutcome",
    "HamtaOrdinationshistorik", "HamtaAktuellaOrdinationer", "GodkannUttag", "MedicationRequest", "doseringstext",
    "giltigTom", "platform=new", "platform=old", "[platform='new']", "Rule violated", "Received status 500",
    "SLO breached: overall p95_ms <= 250: measured 300, limit 250", "rxverify.load.slo.Aggregated.p95_ms",
    "tests.contract.test_differential#test_old_and_new_answer_alike test_old_and_new_answer_alike",
    "AssertionError: old/new differences for test patient 191212121212 (1):",
]  # fmt: skip


def corpus() -> dict[str, list[str]]:
    return json.loads(CORPUS.read_text(encoding="utf-8"))


def test_no_expect_matches_generic_words_alone(matrix: power.Matrix) -> None:
    loose = [(f.name, word) for f in matrix.faults.values() for word in GENERIC if f.expect.search(word)]
    assert loose == []


def test_the_corpus_holds_failures_of_every_fault(matrix: power.Matrix) -> None:
    assert set(corpus()) == set(matrix.faults)


def test_every_expect_matches_its_own_faults_failures(matrix: power.Matrix) -> None:
    texts = corpus()
    assert [f.name for f in matrix.faults.values() if not any(f.expect.search(t) for t in texts[f.name])] == []


def test_no_expect_matches_another_faults_failures(matrix: power.Matrix) -> None:
    texts = corpus()
    confused = [
        (f.name, other)
        for f in matrix.faults.values()
        for other, failed in texts.items()
        if other != f.name and other not in f.overlaps and any(f.expect.search(t) for t in failed)
    ]
    assert confused == []


def test_declared_overlaps_are_real(matrix: power.Matrix) -> None:
    texts = corpus()
    stale = [
        (f.name, o)
        for f in matrix.faults.values()
        for o in f.overlaps
        if not any(f.expect.search(t) for t in texts.get(o, []))
    ]
    assert stale == []


# ---- one real run: a fault and its clean run, one seed ----


def test_one_fault_caught_end_to_end(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rxverify", "power", "--fault", "core-cancelled-withdrawable", "--seeds", "1",
         "--reports", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    last = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert last == "score: 1/1 faults caught in every seed (1 seeds); false alarms: 0 of 1 clean runs"
    (caught,) = [o for o in json.loads((tmp_path / "power.json").read_text())["outcomes"] if o["fault"]]
    assert caught["by"] == ["test_cancelled_prescription_cannot_be_withdrawn[new]"] and "MAKULERAD" in caught["excerpt"]
