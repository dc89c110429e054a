"""Our rules as schemathesis check functions, bound to the active run."""

from __future__ import annotations

from typing import Any

from schemathesis import Case, CheckContext, Response

from rxverify.checks.legacy_rules import legacy_rules


def _probe(method: str, url: str, headers: dict[str, str]) -> Any:
    """A follow-up read some rules need, sent through the run's guarded session."""
    from rxverify.contract import ACTIVE

    response = ACTIVE.session().request(method, url, headers=headers, timeout=30)
    try:
        return response.json()
    except ValueError:
        return None


def legacy_domain_rules(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """The legacy interface's domain rules (rxverify.checks.legacy_rules)."""
    legacy_rules(_probe).check(ctx, response, case)
    return None


LEGACY_CHECKS = [legacy_domain_rules]
