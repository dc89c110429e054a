"""Allure 2 results read back from a results folder, as the report and the gate see them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rxverify.errors import UserError

FAILING = ("failed", "broken")


@dataclass
class TestResult:
    """One Allure result (`*-result.json`): status, failure text, labels and parameters."""

    __test__ = False  # not a pytest test class

    path: Path
    uuid: str
    history_id: str
    name: str
    full_name: str
    status: str
    message: str = ""
    trace: str = ""
    start: int = 0
    stop: int = 0
    labels: dict[str, list[str]] = field(default_factory=dict)
    parameters: list[tuple[str, str]] = field(default_factory=list)

    def label(self, name: str, default: str = "") -> str:
        """The first value of label `name` (Allure shows the first too)."""
        values = self.labels.get(name)
        return values[0] if values else default

    @property
    def severity(self) -> str:
        """Allure's severity; allure-pytest leaves it out for `normal`."""
        return self.label("severity", "normal")

    @property
    def epic(self) -> str:
        """The area (service area) the test belongs to, or '' when it has no epic label."""
        return self.label("epic")

    @property
    def failing(self) -> bool:
        """Whether the result is failed or broken."""
        return self.status in FAILING

    @property
    def title(self) -> str:
        """The name shown in messages, with the parameters that tell runs apart."""
        shown = ", ".join(f"{k}={v}" for k, v in self.parameters)
        return f"{self.name} ({shown})" if shown and shown not in self.name else self.name


def _result(path: Path, document: Any) -> TestResult:
    if not isinstance(document, dict) or "status" not in document or "name" not in document:
        raise UserError(f"{path} is not an Allure result (no name or status)")
    labels: dict[str, list[str]] = {}
    for label in document.get("labels") or []:
        if isinstance(label, dict) and "name" in label:
            labels.setdefault(str(label["name"]), []).append(str(label.get("value", "")))
    details = document.get("statusDetails") or {}
    parameters = [
        (str(p.get("name", "")), str(p.get("value", "")))
        for p in document.get("parameters") or []
        if isinstance(p, dict) and p.get("mode") != "hidden"
    ]
    name = str(document["name"])
    full_name = str(document.get("fullName") or name)
    return TestResult(
        path=path,
        uuid=str(document.get("uuid", path.stem)),
        history_id=str(document.get("historyId") or full_name),
        name=name,
        full_name=full_name,
        status=str(document["status"]),
        message=str(details.get("message") or ""),
        trace=str(details.get("trace") or ""),
        start=int(document.get("start") or 0),
        stop=int(document.get("stop") or 0),
        labels=labels,
        parameters=parameters,
    )


def read_results(directory: Path) -> list[TestResult]:
    """The latest result of every test in `directory` (retries and reruns collapse on historyId, as in Allure).

    A missing folder or a result file that is not JSON is a UserError naming it.
    """
    if not directory.is_dir():
        raise UserError(f"no Allure results at {directory} (run the suites first: tox -e contract,load)")
    latest: dict[str, TestResult] = {}
    for path in sorted(directory.glob("*-result.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"Allure result {path} cannot be read: {exc}") from None
        result = _result(path, document)
        known = latest.get(result.history_id)
        if known is None or (result.stop, result.start) >= (known.stop, known.start):
            latest[result.history_id] = result
    return sorted(latest.values(), key=lambda r: (r.epic, r.full_name, r.name))
