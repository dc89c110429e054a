"""Links from the gate into the generated Allure report (`index.html#testresult/<uid>`).

Allure 2 gives each test its own uid when it generates the report; the single-file report
carries every test case as embedded `data/test-cases/<uid>.json`. The gate matches them to
the results by full name, name and parameters. Without a report the gate names the test and
its historyId instead.

`rxverify report` writes beside the report what it was made of (`provenance.json`: the release
run and a digest of each run's results). A report made of other results than the gate reads
(older than its results, of another release run, or without provenance) is stale: the gate
says so as a NO-GO reason and links into it nowhere.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import Path

from rxverify.report.results import TestResult

REPORT_INDEX = Path("allure-report") / "index.html"
PROVENANCE = Path("allure-report") / "provenance.json"
_TEST_CASE = re.compile(r"""\bd\('data/test-cases/([0-9A-Za-z_-]+)\.json','([A-Za-z0-9+/=]*)'\)""")

Key = tuple[str, str, tuple[str, ...]]


def _key(full_name: str, name: str, values: list[str]) -> Key:
    return full_name, name, tuple(sorted(values))


class ReportLinks:
    """Test result -> its page in the report, relative to the reports folder."""

    def __init__(self, reports: Path, release_run: str | None = None, digests: dict[str, str] | None = None) -> None:
        self.index = reports / REPORT_INDEX
        self._uids: dict[Key, str] = {}
        self._by_name: dict[tuple[str, str], str] = {}
        self.stale: str | None = None  # why the report is not of these results
        if self.index.is_file() and digests is not None:
            self.stale = _staleness(reports / PROVENANCE, release_run, digests)
        if self.index.is_file() and self.stale is None:
            text = self.index.read_text(encoding="utf-8", errors="replace")
            for uid, payload in _TEST_CASE.findall(text):
                try:
                    case = json.loads(base64.b64decode(payload, validate=True))
                except (binascii.Error, ValueError):
                    continue
                values = [str(p.get("value", "")) for p in case.get("parameters") or [] if isinstance(p, dict)]
                full_name, name = str(case.get("fullName") or ""), str(case.get("name") or "")
                self._uids[_key(full_name, name, values)] = uid
                self._by_name.setdefault((full_name, name), uid)

    @property
    def exists(self) -> bool:
        """Whether a report is there (fresh or stale)."""
        return self.index.is_file()

    @property
    def available(self) -> bool:
        """Whether a generated report is there to link into."""
        return bool(self._uids)

    def link(self, result: TestResult) -> str | None:
        """`allure-report/index.html#testresult/<uid>` for `result`, or None when the report does not have it."""
        values = [v for _, v in result.parameters]
        uid = self._uids.get(_key(result.full_name, result.name, values)) or self._by_name.get(
            (result.full_name, result.name)
        )
        return f"{REPORT_INDEX.as_posix()}#testresult/{uid}" if uid else None

    def categories(self) -> str | None:
        """The report's categories page (none of a stale report)."""
        return f"{REPORT_INDEX.as_posix()}#categories" if self.index.is_file() and self.stale is None else None


def _staleness(provenance: Path, release_run: str | None, digests: dict[str, str]) -> str | None:
    """None when the report was made of exactly these results; else what is wrong with it."""
    try:
        made_of = json.loads(provenance.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{provenance} is missing or unreadable: what the report was made of is not known"
    if not isinstance(made_of, dict) or made_of.get("releaseRun") != release_run:
        return f"it is a report of release run {made_of.get('releaseRun') if isinstance(made_of, dict) else '?'!r}"
    recorded = made_of.get("runs")
    runs: dict[str, str] = recorded if isinstance(recorded, dict) else {}
    changed = sorted(run for run in set(runs) | set(digests) if runs.get(run) != digests.get(run))
    if changed:
        return f"it was made before the results of {', '.join(changed)} were (re)written: it is older than its results"
    return None
