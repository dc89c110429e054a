"""Targets, the command line's bad-input handling, and the load model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rxverify.errors import UserError
from rxverify.loadmodel import load_model
from rxverify.target.targets import load_targets, resolve_target

from .conftest import CONTRACTS, ROOT


def test_shipped_targets_have_local_default() -> None:
    targets = load_targets(CONTRACTS / "targets.toml")
    assert targets["local"].is_local
    assert targets["local"].environment_class == "local"


def test_commented_examples_use_invalid_hosts_only() -> None:
    text = (CONTRACTS / "targets.toml").read_text()
    hosts = [line.split("//")[1].split("/")[0] for line in text.splitlines() if "https://" in line]
    assert hosts and all(h.endswith(".invalid") for h in hosts)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[x]\nclass = 'staging'\n", "has class 'staging'"),
        ("[x]\nclass = 'test'\n", "names no platform URLs"),
        ("[x]\nclass = 'test'\n[x.new]\nlegacy = 'ftp://a'\n", r"not an http\(s\) base URL"),
        ("[x\n", "not valid TOML"),
    ],
)
def test_malformed_targets_are_one_user_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "targets.toml"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        load_targets(path)


def test_unknown_target_names_the_known_ones() -> None:
    with pytest.raises(UserError, match=r"unknown target 'nope' .*local"):
        resolve_target("nope", CONTRACTS / "targets.toml")


def test_adhoc_target_from_urls() -> None:
    target = resolve_target("local", CONTRACTS / "targets.toml", "http://127.0.0.1:8001", "http://127.0.0.1:8002")
    assert target.platforms["old"].legacy == "http://127.0.0.1:8001/legacy"
    assert target.platforms["new"].fhir == "http://127.0.0.1:8002/fhir"
    assert target.environment_class == "local" and not target.is_local


def _rxverify(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rxverify", *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "targets.toml"
    bad.write_text("[x]\nclass = 'nope'\n")
    result = _rxverify("targets", "--targets", str(bad))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "class 'nope'" in result.stderr


def test_cli_outside_the_repository_says_where_contracts_are_missing(tmp_path: Path) -> None:
    result = _rxverify("targets", cwd=tmp_path)
    assert result.returncode == 2 and "no contracts found" in result.stderr and "Traceback" not in result.stderr


def test_serve_with_unknown_fault_is_exit_2() -> None:
    result = _rxverify("serve", "--fault", "no-such-fault")
    assert result.returncode == 2
    assert "unknown fault 'no-such-fault'" in result.stderr and "Traceback" not in result.stderr


def test_load_model_derives_a_peak_rate_with_sources() -> None:
    model = load_model(ROOT / "loadtests" / "model.toml")
    assert 20 < model.total_per_second < 200
    assert all(r.source for r in model.rates)
    assert any(r.assumption for r in model.rates)


def test_malformed_load_model_is_one_user_error(tmp_path: Path) -> None:
    path = tmp_path / "model.toml"
    path.write_text("[volumes]\n")
    with pytest.raises(UserError, match="load model"):
        load_model(path)
