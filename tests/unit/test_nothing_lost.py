"""Nothing already written is lost: a command given bad input leaves every earlier output as it was.

For each command that writes (the load tests' CSV, HTML and summary; `rxverify report`,
`gate`, `verify`, `power`, `registry import`; the ledger every suite writes), earlier output
is put in place, the command is run with a mistake, and every byte of the earlier output
must still be there. A mistake is caught before the command opens, truncates or removes
anything (Locust opens its CSV files before its init event: our options are checked as
soon as Locust has parsed them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

CLOSED = "http://127.0.0.1:1"


def _earlier(paths: list[Path]) -> dict[Path, bytes]:
    """Earlier output in place: each file with some content of its own."""
    written = {}
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"earlier output of {path.name}\n".encode())
        written[path] = path.read_bytes()
    return written


def _unchanged(written: dict[Path, bytes]) -> None:
    for path, content in written.items():
        assert path.is_file(), f"{path} was removed"
        assert path.read_bytes() == content, f"{path} was changed ({path.stat().st_size} bytes now)"


def _run(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RXVERIFY_")}
    env |= {"RXVERIFY_RUNTIME_DIR": str(tmp_path / "runtime"), "RXVERIFY_REPORTS": str(tmp_path / "reports")}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 2, f"exit {done.returncode}:\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
    return done


@pytest.mark.parametrize(
    "mistake",
    [["--target", "nosuch"], ["--scale", "nan"], ["--shape", "weekend"], ["--platform", "old", "--old-url", CLOSED,
                                                                            "--ticket-key-file", "pyproject.toml"]],
    ids=["unknown target", "NaN scale", "unknown profile", "unreachable platform"],
)  # fmt: skip
def test_load_run_keeps_the_previous_csv_html_and_summary(tmp_path: Path, mistake: list[str]) -> None:
    reports = tmp_path / "reports"
    load = reports / "load"
    names = ["smoke_stats.csv", "smoke_stats_history.csv", "smoke_failures.csv", "smoke_exceptions.csv",
             "smoke.html", "smoke-summary.json", "smoke-latency.svg"]  # fmt: skip
    written = _earlier([load / name for name in names])
    _run(
        [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless", "--config",
         "loadtests/profiles/smoke.conf", "--reports", str(reports), "--csv", str(load / "smoke"), "--html",
         str(load / "smoke.html"), *mistake],
        tmp_path,
    )  # fmt: skip
    _unchanged(written)
    assert sorted(p.name for p in load.iterdir()) == sorted(names), "a mistaken run added files"
    assert not (reports / "ledger").exists() and not (reports / "runs").exists()


def test_report_keeps_the_previous_report(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    written = _earlier([reports / "allure-report" / "index.html", reports / "allure-report" / "history" / "h.json"])
    (reports / "empty-results").mkdir()
    for mistake in (["--results", str(reports / "empty-results")], ["--target", "nosuch"]):
        _run([sys.executable, "-m", "rxverify", "report", "--reports", str(reports), *mistake], tmp_path)
        _unchanged(written)


def test_gate_keeps_the_previous_verdict_on_a_mistaken_option(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    written = _earlier([reports / "gate.json", reports / "gate.html"])
    for mistake in (["--today", "2021-13-01"], ["--criteria", "/nosuch"], ["--criteria", "pyproject.toml"]):
        _run([sys.executable, "-m", "rxverify", "gate", "--reports", str(reports), *mistake], tmp_path)
        _unchanged(written)


def test_verify_keeps_the_previous_summary_and_ledger(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    earlier_ledger = reports / "ledger" / "ledger-20211120T210000.000000Z-1.jsonl"
    written = _earlier([reports / "verification" / "summary.json", earlier_ledger])
    key = tmp_path / "ticket.key"
    key.write_text("k" * 64)
    for mistake in (
        ["--plan", "no-such-plan"],
        ["--plan", "release-21.0", "--target", "nosuch"],
        ["--plan", "release-21.0", "--new-url", CLOSED, "--ticket-key-file", str(key)],
        ["--plan", "release-21.0", "--target", "production"],  # not confirmed with --production
    ):
        _run([sys.executable, "-m", "rxverify", "verify", "--reports", str(reports), *mistake], tmp_path)
        _unchanged(written)
        assert list((reports / "ledger").iterdir()) == [earlier_ledger], "a refused run left a ledger file"


def test_contract_run_keeps_earlier_results_records_and_ledger(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    written = _earlier([reports / "allure-results" / "a-result.json", reports / "runs" / "contract-1.json",
                        reports / "ledger" / "ledger-1.jsonl"])  # fmt: skip
    key = tmp_path / "ticket.key"
    key.write_text("k" * 64)
    for mistake in (["--examples", "0"], ["--old-url", CLOSED, "--platform", "old", "--ticket-key-file", str(key)]):
        _run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/contract/test_last_withdrawal.py",
              "--alluredir", str(reports / "allure-results"), *mistake], tmp_path)  # fmt: skip
        _unchanged(written)
        assert len(list(reports.rglob("*.json*"))) == 3


def test_power_keeps_the_previous_power_report(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    written = _earlier([reports / "power.json"])
    for mistake in (["--fault", "no-such-fault"], ["--workers", "0"], ["--matrix", "/nosuch"]):
        _run([sys.executable, "-m", "rxverify", "power", "--reports", str(reports), *mistake], tmp_path)
        _unchanged(written)


def test_registry_import_keeps_the_previous_registry(tmp_path: Path) -> None:
    registry = tmp_path / "registry.json"
    written = _earlier([registry])
    broken = tmp_path / "list.csv"
    broken.write_text("nummer\n1\n")
    for mistake in ([str(broken)], [str(tmp_path / "nosuch.csv")]):
        _run([sys.executable, "-m", "rxverify", "registry", "import", *mistake, "--output", str(registry)], tmp_path)
        _unchanged(written)
