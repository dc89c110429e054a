"""A generated case the guard refuses is a result: counted per test and operation, shown in that test's result."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from rxverify.report.runs import read_run_records, write_run_record

MODULE = textwrap.dedent(
    """
    from rxverify.safety.guard import RequestRefused

    def test_generated_cases(rx_refused):
        for _ in range(3):
            rx_refused("SkapaOrdinationVard", RequestRefused("identity", "refused POST /x: a foreign identity"))
        rx_refused("HamtaPatientInfo", RequestRefused("unreadable", "refused GET /y: a streamed body"))

    def test_clean():
        pass
    """
)


def test_refusals_are_counted_per_test_and_shown_in_its_allure_result(tmp_path: Path) -> None:
    (tmp_path / "test_refusing.py").write_text(MODULE)
    results = tmp_path / "allure"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "test_refusing.py", "-p", "no:cacheprovider", "--alluredir", str(results)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    assert (
        "generated cases refused by the guard in test_refusing.py::test_generated_cases: "
        "HamtaPatientInfo 1, SkapaOrdinationVard 3" in done.stdout
    )
    by_name = {}
    for path in results.glob("*-result.json"):
        result = json.loads(path.read_text())
        by_name[result["name"]] = [a["name"] for a in result.get("attachments", [])]
    assert by_name["test_generated_cases"].count("guard refused a generated case of SkapaOrdinationVard") == 3
    assert by_name["test_clean"] == []


def test_the_run_record_carries_refused_cases_and_the_egress_audit(tmp_path: Path) -> None:
    write_run_record(
        tmp_path,
        suite="contract",
        target="local",
        environment_class="local",
        guard_counts={"passed": 10, "sent": 9, "identity": 2},
        egress_audit=[],
        refused_cases={"t::a": {"SkapaOrdinationVard": 2}},
    )
    (record,) = read_run_records(tmp_path)
    assert record.sent == 9 and record.refused == {"identity": 2}
    assert record.refused_cases == {"t::a": {"SkapaOrdinationVard": 2}} and record.egress_problems == []
