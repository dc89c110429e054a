"""`rxverify registry import`: Skatteverket's published test numbers become a registry a test target can use.

The published list is made here for the test, at run time, from the synthetic registry's
numbers relabelled as rows of a `testpersonnummer` column (never a number outside
contracts/testdata); the rows it must refuse are broken copies of them (a wrong check digit,
a cut number, a month 13), made at run time too and never printed.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from rxverify.errors import UserError
from rxverify.safety.identity import check_digit
from rxverify.safety.registry import load_registry
from rxverify.safety.registry_import import import_registry, read_published_list

from .conftest import CONTRACTS, ROOT

SYNTHETIC = json.loads((CONTRACTS / "testdata" / "test-patients.json").read_text(encoding="utf-8"))["patients"]


def _spoiled(pid: str) -> str:
    """The same number with a wrong check digit: not an identity."""
    good = check_digit(pid[2:11])
    return pid[:11] + next(d for d in "0123456789" if d != good)


def _month_13(pid: str) -> str:
    """A 12-digit number with a valid check digit but month 13: not a date, so not an identity."""
    nine = pid[2:4] + "13" + pid[6:11]
    return pid[:2] + nine + check_digit(nine)


def _rxverify(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "rxverify", *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, list[str], list[int]]:
    """A CSV as Skatteverket publishes it: the synthetic numbers, four broken rows and a repeated one."""
    ids = [p["id"] for p in SYNTHETIC]
    rows = ["testpersonnummer", *ids[:5], _spoiled(ids[5]), *ids[5:40], ids[0][:11], _month_13(ids[41]), "abc"]
    rows += [*ids[40:], ids[1]]
    path = tmp_path / "testpersonnummer.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    bad = [i + 1 for i, row in enumerate(rows) if i and (row not in ids)]  # row numbers, the header is row 1
    return path, rows, bad


def test_import_writes_a_registry_that_says_where_it_came_from(published: tuple[Path, list[str], list[int]],
                                                               tmp_path: Path) -> None:  # fmt: skip
    path, _, bad = published
    output = tmp_path / "registry.json"
    before = datetime.now(UTC).replace(microsecond=0)
    result = import_registry(path, output)
    document = json.loads(output.read_text(encoding="utf-8"))

    assert document["synthetic"] is False
    assert document["source"]["file"] == "testpersonnummer.csv"
    assert document["source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    imported = datetime.fromisoformat(document["imported"].replace("Z", "+00:00"))
    assert imported.tzinfo is not None and before <= imported <= datetime.now(UTC) + timedelta(seconds=1)
    assert document["allowed_environment_classes"] == ["local", "test", "production"]
    assert [p["id"] for p in document["patients"]] == [p["id"] for p in SYNTHETIC]
    assert result.refused == bad and len(bad) == 4 and result.duplicates == 1

    registry = load_registry(output)
    registry.check_usable_for("test", "acceptance")  # what the synthetic one refuses
    registry.check_usable_for("production", "production")
    assert not registry.synthetic and "sha256" in registry.source


def test_kind_and_birth_date_are_derived(tmp_path: Path) -> None:
    by_id = {p["id"]: p for p in SYNTHETIC}
    coordination = next(p for p in SYNTHETIC if p["kind"] == "samordningsnummer")
    old = next(p for p in SYNTHETIC if p["group"] == "over 100")
    for source in (coordination, old, SYNTHETIC[1]):
        path = tmp_path / "one.json"
        path.write_text(json.dumps([{"testpersonnummer": source["id"]}]), encoding="utf-8")
        result, _ = read_published_list(path)
        [patient] = result.patients
        expected = by_id[source["id"]]
        assert (patient["kind"], patient["birthDate"]) == (expected["kind"], expected["birthDate"])
        assert patient["ten_digit"] == expected["ten_digit"]  # `+` from the hundredth birthday
    day = int(coordination["id"][6:8])
    assert day > 60 and date.fromisoformat(by_id[coordination["id"]]["birthDate"]).day == day - 60


def test_json_rows_and_the_row_store_are_read(tmp_path: Path) -> None:
    ids = [p["id"] for p in SYNTHETIC[:6]]
    for document in ([{"testpersonnummer": i} for i in ids], {"results": [{"testpersonnummer": i} for i in ids]}):
        path = tmp_path / "list.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        result, _ = read_published_list(path)
        assert [p["id"] for p in result.patients] == ids and not result.refused


def test_refused_rows_are_named_by_number_never_by_value(published: tuple[Path, list[str], list[int]],
                                                         tmp_path: Path) -> None:  # fmt: skip
    path, rows, bad = published
    done = _rxverify("registry", "import", str(path), "--output", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stderr.splitlines() if line]
    assert f"refused 4 of {len(rows) - 1} rows" in line and ", ".join(map(str, bad)) in line
    for row in (rows[i - 1] for i in bad if rows[i - 1].isdigit() and len(rows[i - 1]) >= 10):
        assert row not in done.stdout + done.stderr and row[2:] not in done.stdout + done.stderr
    assert f"imported {len(SYNTHETIC)} test personal identity numbers" in done.stdout


def test_a_failed_import_leaves_the_earlier_registry(published: tuple[Path, list[str], list[int]],
                                                    tmp_path: Path) -> None:  # fmt: skip
    path, _, _ = published
    output = tmp_path / "registry.json"
    import_registry(path, output)
    earlier = output.read_bytes()
    broken = tmp_path / "broken.csv"
    broken.write_text("testpersonnummer\nabc\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"refused 1 of 1 rows.*nothing imported"):
        import_registry(broken, output)
    assert output.read_bytes() == earlier and not list(tmp_path.glob(".registry.json.*"))


def test_a_test_target_runs_on_the_imported_registry_and_not_on_the_synthetic_one(
    published: tuple[Path, list[str], list[int]], tmp_path: Path
) -> None:
    path, _, _ = published
    registry = tmp_path / "imported.json"
    assert _rxverify("registry", "import", str(path), "--output", str(registry)).returncode == 0
    targets = tmp_path / "targets.toml"
    target = '[at]\nclass = "test"\n{registry}[at.new]\nlegacy = "https://ecp-at.example.invalid/legacy"\n'
    targets.write_text(target.format(registry=f'registry = "{registry}"\n'), encoding="utf-8")
    done = _rxverify("verify", "--target", "at", "--targets-file", str(targets), "--plan", "release-21.0", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "target: at (class test)" in done.stdout and "sends nothing" not in done.stderr

    targets.write_text(target.format(registry=""), encoding="utf-8")
    refused = _rxverify("verify", "--target", "at", "--targets-file", str(targets), "--plan", "release-21.0",
                        "--dry-run")  # fmt: skip
    assert refused.returncode == 2 and "synthetic" in refused.stderr
    assert "rxverify registry import FILE --output PATH" in refused.stderr  # the command that exists
    assert _rxverify("registry", "import", "--help").returncode == 0
