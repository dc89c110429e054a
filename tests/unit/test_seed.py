"""--seed fixes every hypothesis draw of a run, so a failing run can be reproduced from its seed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis._settings import _CI_VARS

PROPERTY = """
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

@settings(max_examples=15, database=None)
@given(st.integers())
def test_property(n):
    with open("draws.txt", "a") as out:
        out.write(f"p {n}\\n")

class Machine(RuleBasedStateMachine):
    @rule(n=st.integers())
    def step(self, n):
        with open("draws.txt", "a") as out:
            out.write(f"s {n}\\n")

def test_stateful():
    run_state_machine_as_test(Machine, settings=settings(max_examples=5, database=None))
"""


def _environment(ci: bool) -> dict[str, str]:
    """This environment without any variable by which hypothesis detects CI, or with CI=true."""
    env = {k: v for k, v in os.environ.items() if k not in _CI_VARS}
    if ci:
        env["CI"] = "true"  # hypothesis then loads its "ci" profile, which derandomizes
    return env


def _draws(tmp_path: Path, *args: str, ci: bool) -> list[str]:
    (tmp_path / "draws.txt").unlink(missing_ok=True)
    (tmp_path / "test_drawn.py").write_text(PROPERTY, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "test_drawn.py", "-q", "-p", "no:cacheprovider", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=_environment(ci),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return (tmp_path / "draws.txt").read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("ci", [False, True], ids=["local", "in-ci"])
def test_the_same_seed_draws_the_same_examples_in_properties_and_state_machines(tmp_path: Path, ci: bool) -> None:
    first = _draws(tmp_path, "--seed", "5", ci=ci)
    assert any(d.startswith("s ") for d in first) and any(d.startswith("p ") for d in first)
    assert _draws(tmp_path, "--seed", "5", ci=ci) == first
    assert _draws(tmp_path, "--seed", "6", ci=ci) != first
