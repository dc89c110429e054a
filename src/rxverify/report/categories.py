"""The categories a release board acts on, for Allure's categories.json and for the gate.

Allure 2 puts a result in every category whose statuses and `messageRegex` match (Java's
`String.matches`: the whole message). Each category below is made exclusive of the ones
before it with a negative look-ahead, so a result lands in exactly one, the first that fits,
and the gate (`classify`) sorts it the same way. The markers are what the suites' failures
really say:

- safety refusal: the guard's `RequestRefused` ("refused GET ..."), `rxverify verify`'s
  "refused by the guard: ...";
- platform unreachable: requests' ConnectionError / timeouts ("Max retries exceeded",
  "Connection refused"), `rxverify verify`'s "transport error";
- SLO breach: the load suite's SLO results say "SLO breached" (see docs in the README);
- old/new difference: the differential comparison says "old/new difference" (or its
  schemathesis rule is named `differential`);
- FHIR profile violation: the profile validator's failures say "FHIR profile violation" (or
  their rule is named `fhir_profile`);
- contract violation: every other failed result (schemathesis's "Schemathesis found N distinct
  failures: Response violates schema / Undocumented status code ...", our rules' "Rule
  violated: ...", the properties' assertion errors);
- test defect: every other broken result (an error in the suite, not an answer of a platform).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rxverify.report.results import TestResult

SAFETY_REFUSAL = "safety refusal"
PLATFORM_UNREACHABLE = "platform unreachable"
SLO_BREACH = "SLO breach"
OLD_NEW_DIFFERENCE = "old/new difference"
FHIR_PROFILE_VIOLATION = "FHIR profile violation"
CONTRACT_VIOLATION = "contract violation"
TEST_DEFECT = "test defect"


@dataclass(frozen=True)
class Category:
    """One category: its name, the statuses it takes and the markers its messages carry."""

    name: str
    statuses: tuple[str, ...]
    markers: tuple[str, ...]  # regular expressions; empty: every message
    description: str


CATEGORIES: tuple[Category, ...] = (
    Category(
        SAFETY_REFUSAL,
        ("failed", "broken"),
        (r"RequestRefused", r"refused by the guard", r"safety refusal"),
        "the guard refused to send a request: an identity outside the registry, or outside the verification plan",
    ),
    Category(
        PLATFORM_UNREACHABLE,
        ("failed", "broken"),
        (
            r"ConnectionError",
            r"ConnectTimeout",
            r"ReadTimeout",
            r"Connection refused",
            r"Max retries exceeded",
            r"Failed to establish a new connection",
            r"RemoteDisconnected",
            r"transport error",
            r"platform unreachable",
        ),
        "no answer from a platform: connection refused, reset or timed out",
    ),
    Category(SLO_BREACH, ("failed", "broken"), (r"SLO breach",), "a load SLO was not met"),
    Category(
        OLD_NEW_DIFFERENCE,
        ("failed", "broken"),
        (r"old/new difference", r"Rule violated: differential"),
        "the old and the new platform answered differently under the mapping contract",
    ),
    Category(
        FHIR_PROFILE_VIOLATION,
        ("failed", "broken"),
        (r"FHIR profile violation", r"Rule violated: fhir_profile"),
        "a FHIR resource the new platform returned does not conform to its profile",
    ),
    Category(CONTRACT_VIOLATION, ("failed",), (), "an answer broke the OpenAPI contract or a domain rule"),
    Category(TEST_DEFECT, ("broken",), (), "the suite itself failed (an error, not a platform's answer)"),
)


def _any(markers: tuple[str, ...]) -> str:
    return "(?:" + "|".join(markers) + ")"


def message_regex(index: int) -> str:
    """Category `index`'s messageRegex: its markers, and none of the earlier categories' markers."""
    earlier = tuple(m for c in CATEGORIES[:index] for m in c.markers)
    exclude = f"(?!.*{_any(earlier)})" if earlier else ""
    own = f".*{_any(CATEGORIES[index].markers)}.*" if CATEGORIES[index].markers else ".*"
    return f"(?s){exclude}{own}"


def categories_json() -> list[dict[str, Any]]:
    """The content of categories.json for Allure 2."""
    return [
        {
            "name": category.name,
            "description": category.description,
            "matchedStatuses": list(category.statuses),
            "messageRegex": message_regex(i),
        }
        for i, category in enumerate(CATEGORIES)
    ]


_COMPILED = tuple(re.compile(message_regex(i)) for i in range(len(CATEGORIES)))


def classify(result: TestResult) -> str | None:
    """The category of a failed or broken result, as the report shows it (None for the others)."""
    for category, regex in zip(CATEGORIES, _COMPILED, strict=True):
        if result.status in category.statuses and regex.fullmatch(result.message):
            return category.name
    return None
