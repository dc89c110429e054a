"""What QA sees of a contract run: platform in every test id, no test for a platform that cannot have it, the table.

Collected as the suite is (`pytest tests/contract --collect-only`, nothing is started or sent):
every test id ends with its platform, the FHIR tests exist for new only, the old/new
comparison exists only when old, its second instance and new are all in the run, and what was
left out is said once. `rxverify serve` starts what the whole suite needs and prints the
complete command; run as printed, the suite runs every test it selected, with nothing skipped,
and ends with the table per area and the seed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import ROOT

ID_ENDS_WITH_PLATFORM = re.compile(r"(\[(old|new|old-vs-new)\]|-(old|new)\])$")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RXVERIFY_")}
    return env | {"RXVERIFY_RUNTIME_DIR": str(tmp_path / "runtime"), "RXVERIFY_REPORTS": str(tmp_path / "reports"),
                  "PYTHONUNBUFFERED": "1"}  # fmt: skip


def _collect(tmp_path: Path, *args: str, quiet: bool = True) -> tuple[list[str], str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", *["-q"] * quiet, *args],
        cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode in (0, 5), done.stdout[-3000:] + done.stderr[-3000:]  # 5: nothing collected
    return [line for line in done.stdout.splitlines() if "::" in line], done.stdout


def test_every_test_id_names_its_platform_and_fhir_tests_exist_for_new_only(tmp_path: Path) -> None:
    ids, out = _collect(tmp_path, "tests/contract")
    assert len(ids) > 100
    unnamed = [i for i in ids if not ID_ENDS_WITH_PLATFORM.search(i)]
    assert not unnamed, f"test ids without their platform: {unnamed[:5]}"
    on_old = [i for i in ids if i.endswith(("-old]", "[old]"))]
    fhir_on_old = [i for i in on_old if "fhir" in i.lower() or "MedicationRequest" in i]
    assert not fhir_on_old, fhir_on_old[:5]
    assert all(i.endswith(("-new]", "[new]")) for i in ids if "test_fhir_" in i)
    assert "tests/contract/test_differential.py::test_old_and_new_answer_alike[old-vs-new]" in ids
    assert "rxverify: 14 tests deselected, not applicable: the old platform has no fhir interface" in out


def test_no_contract_test_skips_for_a_missing_platform_or_interface() -> None:
    """By construction: the suite holds no skip at all (what cannot apply is not generated)."""
    skips = [f"{p.name}:{n}" for p in (ROOT / "tests" / "contract").glob("*.py")
             for n, line in enumerate(p.read_text().splitlines(), 1) if "pytest.skip(" in line]  # fmt: skip
    assert not skips, skips


def test_the_comparison_exists_only_with_all_three_platforms_and_the_banner_says_adhoc(tmp_path: Path) -> None:
    key = tmp_path / "ticket.key"
    key.write_text("k" * 64)
    urls = ["--old-url", "http://127.0.0.1:1", "--new-url", "http://127.0.0.1:2", "--ticket-key-file", str(key)]
    without, out = _collect(tmp_path, "tests/contract/test_differential.py", *urls)
    assert without == []
    assert "rxverify: 1 test deselected, not applicable: a comparison needs old-secondary in the run" in out
    _, out = _collect(tmp_path, "tests/contract/test_differential.py", *urls, quiet=False)
    header = next(line for line in out.splitlines() if line.startswith("rxverify: target="))
    assert header.startswith("rxverify: target=adhoc (old http://127.0.0.1:1/legacy, new http://127.0.0.1:2/legacy)")

    with_secondary, _ = _collect(tmp_path, "tests/contract/test_differential.py", *urls,
                                 "--old-secondary-url", "http://127.0.0.1:3")  # fmt: skip
    assert with_secondary == ["tests/contract/test_differential.py::test_old_and_new_answer_alike[old-vs-new]"]

    only_new, out = _collect(tmp_path, "tests/contract/test_differential.py", "--platform", "new")
    assert only_new == [] and "a comparison needs old, old-secondary in the run" in out


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., str]]:
    started: list[subprocess.Popen[bytes]] = []

    def run(*args: str) -> str:
        out = tmp_path / f"serve-{len(started)}.txt"
        with out.open("wb") as handle:
            started.append(subprocess.Popen([sys.executable, "-m", "rxverify", "serve", *args], cwd=ROOT,
                                            env=_env(tmp_path), stdout=handle, stderr=subprocess.STDOUT))  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "Ctrl-C" not in out.read_text():
            assert started[-1].poll() is None, out.read_text()
            time.sleep(0.2)
        return out.read_text()

    yield run
    for proc in started:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def _command(printed: str) -> list[str]:
    lines = printed.splitlines()
    command = lines[lines.index("run the contract suite against them:") + 1].strip()
    assert command.startswith("tox -e contract -- ")
    return command.removeprefix("tox -e contract -- ").split()


def test_serve_starts_what_the_suite_needs_and_the_printed_command_runs_every_test(
    serve: Callable[..., str], tmp_path: Path
) -> None:
    options = _command(serve())
    assert [o for o in options if o.startswith("--")] == ["--old-url", "--old-secondary-url", "--new-url",
                                                          "--ticket-key-file", "--trust-dir"]  # fmt: skip
    assert all(o.startswith("https://127.0.0.1:") for o in options[1:6:2])  # mutual TLS, on loopback
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/contract/test_differential.py",
         "tests/contract/test_last_withdrawal.py", "tests/contract/test_withdrawal_rules.py", "--examples", "5",
         *options],
        cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out[-3000:]
    summary = out.strip().splitlines()[-1]
    assert re.fullmatch(r"=+ 11 passed in .*", summary), summary  # no skip, nothing deselected
    table = out[out.index("rxverify: what was verified, per area (Allure epic); seed "):]
    assert re.search(r"^old vs new +1 +\d+ +\d+ +1 +0 +0$", table, re.MULTILINE), table
    assert re.search(r"^dispensing +10 +\d+ +\d+ +10 +0 +0$", table, re.MULTILINE), table


def test_serve_with_one_platform_prints_that_platform_only(serve: Callable[..., str]) -> None:
    printed = serve("--platform", "new")
    options = _command(printed)
    assert "--old-url" not in options and "--old-secondary-url" not in options
    assert options[-2:] == ["--platform", "new"] and "--new-url" in options
