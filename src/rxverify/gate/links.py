"""Links from the gate into the generated Allure report (`index.html#testresult/<uid>`).

Allure 2 gives each test its own uid when it generates the report; the single-file report
carries every test case as embedded `data/test-cases/<uid>.json`. The gate matches them to
the results by full name, name and parameters. Without a report the gate names the test and
its historyId instead.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import Path

from rxverify.report.results import TestResult

REPORT_INDEX = Path("allure-report") / "index.html"
_TEST_CASE = re.compile(r"""\bd\('data/test-cases/([0-9A-Za-z_-]+)\.json','([A-Za-z0-9+/=]*)'\)""")

Key = tuple[str, str, tuple[str, ...]]


def _key(full_name: str, name: str, values: list[str]) -> Key:
    return full_name, name, tuple(sorted(values))


class ReportLinks:
    """Test result -> its page in the report, relative to the reports folder."""

    def __init__(self, reports: Path) -> None:
        self.index = reports / REPORT_INDEX
        self._uids: dict[Key, str] = {}
        self._by_name: dict[tuple[str, str], str] = {}
        if self.index.is_file():
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
        """The report's categories page."""
        return f"{REPORT_INDEX.as_posix()}#categories" if self.index.is_file() else None
