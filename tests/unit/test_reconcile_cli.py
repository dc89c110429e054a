"""`rxverify reconcile`: bad input is one line and exit 2; production only within a plan; rehearse never there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rxverify.cli import main
from rxverify.errors import UserError
from rxverify.reconcile import SNAPSHOT_KIND, read_snapshot
from rxverify.target.run import check_class
from rxverify.target.targets import Endpoints, Target

PRODUCTION = Target("prod", "production", platforms={"old": Endpoints(legacy="https://stp.example/legacy")})


def one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], says: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot read baseline"),
        ("{", "is not JSON"),
        (json.dumps({"kind": "something else"}), "is not a reconcile snapshot"),
        (json.dumps({"kind": SNAPSHOT_KIND, "version": 99, "patients": {}}), "unknown snapshot version"),
    ],
)
def test_a_bad_baseline_is_one_user_error(tmp_path: Path, content: str | None, says: str) -> None:
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=says):
        read_snapshot(path)


def test_compare_with_a_bad_baseline_is_exit_2_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "b.json").write_text("[]", encoding="utf-8")
    one_line_exit_2(["reconcile", "compare", "--baseline", str(tmp_path / "b.json"), "--new-url", "http://127.0.0.1:9",
                     "--reports", str(tmp_path)], capsys, "is not a reconcile snapshot")


def test_the_local_target_needs_the_local_round(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one_line_exit_2(["reconcile", "snapshot", "--out", str(tmp_path / "s.json"), "--reports", str(tmp_path)], capsys,
                    "rxverify reconcile local")


def test_the_local_round_takes_migration_faults_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one_line_exit_2(["reconcile", "local", "--fault", "transformer-mojibake", "--reports", str(tmp_path)], capsys,
                    "not a migration fault")
    one_line_exit_2(["reconcile", "local", "--lanes", "soap", "--reports", str(tmp_path)], capsys, "--lanes 'soap'")


def test_production_reconciles_only_within_a_plan_and_never_rehearses() -> None:
    with pytest.raises(UserError, match="a reconcile run needs its verification plan"):
        check_class(PRODUCTION, "reconcile")
    with pytest.raises(UserError, match="the rehearse suite never runs against production"):
        check_class(PRODUCTION, "rehearse", plan=object())
