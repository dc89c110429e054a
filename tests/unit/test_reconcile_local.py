"""`rxverify reconcile local`: a sample compared in full, every other test patient by census, one run of the release.

The census (reconcile.reads.CENSUS) is what keeps a sampled reconciliation from missing a lost or
doubled prescription, or a lost consent, outside its sample: with a sample of one patient, a
migration that loses one prescription or one consent, or migrates a prescription twice, is still
found, over a fresh seed each run.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from rxverify.cli import main

RECORD = re.compile(r"\[new legacy\] (?:HamtaOrdinationshistorik ordinationer\[ordinationId=[0-9a-f-]+\]|"
                    r"HamtaPatientInfo samtycke): old='?(present|absent|True)'? new='?(present|absent|False)'?")


def results(folder: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in (folder / "allure-results").glob("*-result.json")]


@pytest.mark.parametrize(("fault", "old", "new"), [("migration-record-lost", "present", "absent"),
                                                   ("migration-duplicates", "absent", "present"),
                                                   ("migration-consent-lost", "True", "False")])
def test_a_record_lost_or_doubled_outside_the_sample_is_found_by_the_census(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: str, old: str, new: str) -> None:
    seed = random.SystemRandom().randrange(1, 2**31)
    code = main(["reconcile", "local", "--seed", str(seed), "--patients", "1", "--fault", fault,
                 "--reports", str(tmp_path / "reports")])
    out = capsys.readouterr().out
    assert code == 1, f"seed {seed}: {out[-2000:]}"
    (folder,) = (tmp_path / "reports" / "runs").iterdir()
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    found = results(folder)
    assert manifest["suite"] == "reconcile" and manifest["status"] == "complete"
    assert manifest["selection"]["faults"] == [fault] and manifest["selection"]["census"] == len(found) - 1
    assert sorted(manifest["collected"]) == sorted(str(r["fullName"]) for r in found)
    failed = [r for r in found if r["status"] == "failed"]
    assert len(failed) == 1, f"seed {seed}"
    hit = RECORD.search(str(failed[0]["statusDetails"]["message"]))  # type: ignore[index]
    assert hit is not None and hit.groups() == (old, new), f"seed {seed}: {failed[0]['statusDetails']}"
    assert (folder / "run-record.json").is_file() and not (tmp_path / "reports" / "allure-results").exists()
