"""The power matrix covers the whole fault catalogue, and the runner judges outcomes honestly."""

from __future__ import annotations

from pathlib import Path

import pytest

from rxverify import power
from rxverify.errors import UserError
from rxverify.power import Outcome, Run, catalogue, command, load_matrix, run_matrix, table

from .conftest import ROOT

MATRIX = ROOT / "tests" / "power" / "matrix.toml"


def test_every_fault_of_the_catalogue_has_a_row_and_every_row_a_fault() -> None:
    _, faults, _ = load_matrix(MATRIX)
    known = catalogue()
    assert len(known) >= 24
    assert set(faults) == set(known)


def test_every_kind_of_regression_is_covered() -> None:
    assert set(catalogue().values()) == {"mapping", "fhir-conformance", "behaviour", "security", "performance",
                                         "migration", "wire"}


def test_malformed_matrix_is_one_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text('[runs.a]\nrun = "contract"\nplatform = "new"\n[faults]\nx = { run = "b", expect = "y" }\n')
    with pytest.raises(UserError, match="unknown run 'b'"):
        load_matrix(bad)


def test_commands_carry_the_fault_and_a_private_reports_folder(tmp_path: Path) -> None:
    contract = Run("r", "contract", ("tests/contract/test_differential.py",), "", "both")
    cmd = command(contract, "transformer-mojibake", {"examples": 5, "seed": 3}, tmp_path)
    assert cmd[-2:] == ["--fault", "transformer-mojibake"] and "--platform" in cmd
    load = Run("l", "load", (), "loadtests/profiles/smoke.conf", "old")
    cmd = command(load, None, {}, tmp_path)
    assert "--fault" not in cmd and str(tmp_path) in cmd


def test_table_scores_and_marks_misses() -> None:
    faulted = [Outcome("a", "r", 1, 2.0, True, "test_x"), Outcome("b", "r", 0, 3.0, False, "", "name")]
    text = table(faulted, [Outcome(None, "r", 0, 1.0, False, "")], {"a": "mapping", "b": "behaviour"})
    assert "score: 1/2 faults caught" in text and "MISSED" in text and "/name/" in text


def test_unknown_fault_is_one_user_error_before_anything_runs() -> None:
    with pytest.raises(UserError, match=r"unknown fault.*no-such-fault"):
        run_matrix(MATRIX, ["no-such-fault"])


def test_seed_given_on_the_command_line_reaches_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, object]] = []

    def fake_execute(run: Run, fault: str | None, expect: str, defaults: dict[str, object]) -> Outcome:
        seen.append(defaults)
        return Outcome(fault, run.name, 0, 0.0, False, "")

    monkeypatch.setattr(power, "execute", fake_execute)
    run_matrix(MATRIX, ["transformer-mojibake"], workers=1, seed=99)
    assert seen and all(d["seed"] == 99 for d in seen)
    seen.clear()
    run_matrix(MATRIX, ["transformer-mojibake"], workers=1)
    assert seen and all(d["seed"] == load_matrix(MATRIX)[2]["seed"] for d in seen)
