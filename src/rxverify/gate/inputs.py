"""What the gate reads besides the Allure results: the load summaries and the verification summary.

The load suite writes one summary per profile run, reports/load/<profile>-summary.json
(src/rxverify/load/report.py). The gate reads every `reports/load/*summary.json` and needs
only these keys of each (the rest is the load suite's own):

    {
      "profile": "smoke", "target": "local",
      "slo": [
        {"slo": "p95 HamtaAktuellaOrdinationer", "metric": "p95", "measured": 182.0, "limit": 500.0,
         "passed": true, ...}
      ],
      "guard": {"passed": 5310, "identity": 0}      # the guard's counts during the run
    }

Each SLO needs its name (`slo`, or `name`) and `passed`; `metric`, `measured`, `limit` and
`unit` are shown when present. The list may also be called `slos`. The verification summary
is the one `rxverify verify` writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rxverify.errors import UserError

LOAD_SUMMARIES = "load/*summary.json"
VERIFICATION_SUMMARY = Path("verification") / "summary.json"


@dataclass(frozen=True)
class Slo:
    """One SLO verdict of the load run."""

    name: str
    passed: bool
    metric: str = ""
    measured: Any = None
    limit: Any = None
    unit: str = ""

    def figures(self) -> str:
        """'measured X, limit Y' as far as the summary says."""
        unit = f" {self.unit}" if self.unit else ""
        parts = [f"{self.metric}" if self.metric else ""]
        if self.measured is not None:
            parts.append(f"measured {self.measured}{unit}")
        if self.limit is not None:
            parts.append(f"limit {self.limit}{unit}")
        return ", ".join(p for p in parts if p)


@dataclass
class LoadSummary:
    """The load runs' SLO verdicts and guard counts, from every summary under reports/load/."""

    paths: list[Path] = field(default_factory=list)
    slos: list[Slo] = field(default_factory=list)
    guard: dict[Path, dict[str, int]] = field(default_factory=dict)  # summary -> the guard's counts

    @property
    def where(self) -> str:
        """The summaries read, for messages."""
        return ", ".join(map(str, self.paths))


@dataclass
class VerificationStep:
    """One verification step as the summary reports it."""

    id: str
    operation: str
    status: str
    message: str
    blocking: bool
    patient: str | None


@dataclass
class VerificationSummary:
    """The verification run: its target class, verdict and steps."""

    path: Path
    plan: str
    release: str
    target: str
    environment_class: str
    verdict: str
    started: str
    steps: list[VerificationStep] = field(default_factory=list)

    @property
    def production(self) -> bool:
        """Whether this was a production verification."""
        return self.environment_class == "production"


def _json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read the {what} {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UserError(f"the {what} {path} is not valid JSON: {exc}") from None


def read_load_summary(reports: Path) -> LoadSummary | None:
    """Every load summary, or None when no load run wrote one; a malformed one is a UserError naming it."""
    paths = sorted(reports.glob(LOAD_SUMMARIES))
    if not paths:
        return None
    summary = LoadSummary(paths=paths)
    for path in paths:
        document = _json(path, "load summary")
        slos = document.get("slos", document.get("slo")) if isinstance(document, dict) else None
        if not isinstance(slos, list):
            raise UserError(f"the load summary {path} has no 'slo' list")
        for i, item in enumerate(slos):
            name = item.get("slo", item.get("name")) if isinstance(item, dict) else None
            if not isinstance(name, str) or not isinstance(item.get("passed"), bool):
                raise UserError(
                    f"the load summary {path}: slo[{i}] needs a name ('slo', text) and 'passed' (true/false)"
                )
            summary.slos.append(
                Slo(
                    name=name,
                    passed=item["passed"],
                    metric=str(item.get("metric") or ""),
                    measured=item.get("measured"),
                    limit=item.get("limit"),
                    unit=str(item.get("unit") or ""),
                )
            )
        guard = document.get("guard")
        if isinstance(guard, dict) and guard:
            try:
                summary.guard[path] = {str(k): int(v) for k, v in guard.items()}
            except (TypeError, ValueError):
                raise UserError(f"the load summary {path}: 'guard' must map reasons to counts") from None
    return summary


def read_verification_summary(reports: Path) -> VerificationSummary | None:
    """The verification summary, or None when no verification ran; malformed is a UserError naming it."""
    path = reports / VERIFICATION_SUMMARY
    if not path.is_file():
        return None
    document = _json(path, "verification summary")
    try:
        steps = [
            VerificationStep(
                id=str(s["id"]),
                operation=str(s.get("operation", "")),
                status=str(s["status"]),
                message=str(s.get("message") or ""),
                blocking=bool(s.get("blocking", True)),
                patient=s.get("patient"),
            )
            for s in document["steps"]
        ]
        return VerificationSummary(
            path=path,
            plan=str(document.get("plan", "")),
            release=str(document.get("release", "")),
            target=str(document.get("target", "")),
            environment_class=str(document["environmentClass"]),
            verdict=str(document["verdict"]),
            started=str(document.get("started", "")),
            steps=steps,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"the verification summary {path} is malformed (missing {exc})") from None
