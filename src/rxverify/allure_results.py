"""A small writer of Allure 2 result files, for results that do not come from pytest.

Verification steps (and later load SLOs) are written here in the format allure-pytest uses:
`<uuid>-result.json` with its attachments beside it as `<uuid>-attachment.json`. Whatever is
attached must already be redacted; this module writes what it is given.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("passed", "failed", "broken", "skipped")


@dataclass
class AllureResult:
    """One test result as Allure 2 reads it."""

    name: str
    full_name: str
    status: str
    start_ms: int
    stop_ms: int
    message: str = ""
    trace: str = ""
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)


def write_result(directory: Path, result: AllureResult, attachment: Mapping[str, Any] | None = None) -> Path:
    """Write `result` (and a JSON attachment, already redacted) into `directory`; returns the result file."""
    if result.status not in STATUSES:
        raise ValueError(f"Allure status {result.status!r} is not one of {', '.join(STATUSES)}")
    directory.mkdir(parents=True, exist_ok=True)
    result_id = str(uuid.uuid4())
    # the same test with the same parameters keeps its history across runs
    history = hashlib.md5(
        (result.full_name + json.dumps(result.parameters, sort_keys=True)).encode(), usedforsecurity=False
    ).hexdigest()
    document: dict[str, Any] = {
        "uuid": result_id,
        "historyId": history,
        "testCaseId": hashlib.md5(result.full_name.encode(), usedforsecurity=False).hexdigest(),
        "name": result.name,
        "fullName": result.full_name,
        "status": result.status,
        "stage": "finished",
        "statusDetails": {"message": result.message, "trace": result.trace},
        "description": result.description,
        "start": result.start_ms,
        "stop": result.stop_ms,
        "labels": [{"name": k, "value": v} for k, v in result.labels.items()],
        "parameters": [{"name": k, "value": v} for k, v in result.parameters.items()],
        "attachments": [],
        "steps": [],
    }
    if attachment is not None:
        source = f"{uuid.uuid4()}-attachment.json"
        (directory / source).write_text(json.dumps(attachment, ensure_ascii=False, indent=1), encoding="utf-8")
        document["attachments"].append(
            {"name": "request and response (redacted)", "source": source, "type": "application/json"}
        )
    path = directory / f"{result_id}-result.json"
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    return path
