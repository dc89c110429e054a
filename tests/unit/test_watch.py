"""`rxverify watch`: rounds of the plan's read-only steps; exit 1 at the first breach (a platform failing mid-watch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rxverify.cli import main
from rxverify.report.evidence import COMPLETE, read_runs

from .conftest import CONTRACTS

PLAN = ["watch", "--plan", "release-21.0", "--every", "1s"]


def test_a_healthy_platform_passes_every_round(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*PLAN, "--rounds", "3", "--max-latency-ms", "1500", "--reports", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out[:3]] == ["round 1", "round 2", "round 3"]
    assert out[-1] == "watch: 3 rounds within the service levels"
    runs = read_runs(tmp_path)  # the rounds are one run, of its own suite (never taken for the verification)
    assert [(m.suite, m.status) for m in runs] == [("watch", COMPLETE)]
    names = [json.loads(p.read_text())["name"] for p in runs[0].results.glob("*-result.json")]
    assert len(names) == 12 and len(set(names)) == 4  # the same four results every round: Allure's trend


@pytest.mark.alone
def test_a_platform_that_starts_stalling_mid_watch_is_a_breach_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # new-periodic-stall: the server blocks 2 s every 10 s, the first time 8 s after its first request
    code = main([*PLAN, "--rounds", "15", "--max-latency-ms", "1500", "--fault", "new-periodic-stall",
                 "--reports", str(tmp_path)])
    out = capsys.readouterr().out.splitlines()
    assert code == 1, out
    assert out[0].startswith("round 1: 4 steps") and "within the service levels" in out[0]
    assert "BREACH" in out[-2] and "ms > 1500 ms" in out[-2] and out[-1].startswith("watch: breach in round")
    assert int(out[-1].split("round ")[1].split(":")[0]) > 1
    assert [(m.suite, m.status) for m in read_runs(tmp_path)] == [("watch", COMPLETE)]  # a breach is a finished run


@pytest.mark.parametrize(
    ("argv", "plan_text", "says"),
    [
        (["--rounds", "0"], None, "--rounds: '0' is not a whole number of at least 1"),
        ([], None, "the watch is bounded"),
        (["--rounds", "2", "--until", "tomorrow"], None, "is not an ISO 8601 time"),
        (["--rounds", "2", "--every", "soon"], None, "a duration like"),
        (["--rounds", "2"], 'steps = ["S3"]', "[watch] step S3 writes"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                           plan_text: str | None, says: str) -> None:
    plan = "release-21.0"
    if plan_text is not None:
        text = (CONTRACTS / "verification" / "release-21.0.toml").read_text(encoding="utf-8")
        (tmp_path / "p.toml").write_text(text.split("[watch]")[0] + "[watch]\n" + plan_text + "\n", encoding="utf-8")
        plan = str(tmp_path / "p.toml")
    try:
        code = main(["watch", "--plan", plan, "--reports", str(tmp_path), *argv])
    except SystemExit as stopped:  # argparse's own check of an option (values.positive_int) exits
        code = stopped.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err
