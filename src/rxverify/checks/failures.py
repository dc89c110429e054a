"""The failure our checks raise: a schemathesis Failure with the rule and its context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from schemathesis.core.failures import Failure, Severity


class RuleViolation(Failure):
    """A domain, security or FHIR rule of the contracts was broken."""

    code: ClassVar[str] = "ST911"
    kind_title: ClassVar[str] = "Domain rule violated"
    __slots__ = ("context", "rule")

    def __init__(
        self,
        *,
        rule: str,
        operation: str | None,
        message: str,
        context: dict[str, Any] | None = None,
        severity: Severity = Severity.HIGH,
    ) -> None:
        super().__init__(operation=operation, title=f"Rule violated: {rule}", message=message, severity=severity)
        self.rule = rule
        self.context = context or {}

    @property
    def _unique_key(self) -> str:
        return f"{self.rule}:{self.message}"


@dataclass(frozen=True)
class Rule:
    """A rule's trace for the report: story, severity, requirement."""

    name: str
    story: str
    severity: str
    requirement: str
