"""Categories: every failure the suites produce lands in exactly one category, in the report as in the gate."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rxverify.report import categories as c
from rxverify.report.results import read_results

from . import builders as b

CASES = [
    ("failed", b.SCHEMATHESIS_FAILURE, c.CONTRACT_VIOLATION),
    (
        "failed",
        "schemathesis.core.failures.FailureGroup: Schemathesis found 1 distinct failure\n\n"
        "- ST911 Rule violated: default_validity\n\n    giltigTom 2027-01-01, expected 2027-01-02",
        c.CONTRACT_VIOLATION,
    ),
    ("failed", b.ASSERTION, c.CONTRACT_VIOLATION),
    ("broken", b.CONNECTION_REFUSED, c.PLATFORM_UNREACHABLE),
    ("broken", "HamtaPatientInfo: transport error ConnectTimeout: timed out", c.PLATFORM_UNREACHABLE),
    ("broken", b.GUARD_REFUSAL, c.SAFETY_REFUSAL),
    (
        "broken",
        "rxverify.safety.guard.RequestRefused: refused POST /legacy/x: outside the verification plan",
        c.SAFETY_REFUSAL,
    ),
    ("failed", b.SLO_BREACH, c.SLO_BREACH),
    ("failed", b.DIFFERENCE, c.OLD_NEW_DIFFERENCE),
    (
        "failed",
        "schemathesis.core.failures.FailureGroup: Schemathesis found 1 distinct failure\n\n"
        "- ST911 Rule violated: differential\n\n    $.status: old 'AKTIV', new 'MAKULERAD'",
        c.OLD_NEW_DIFFERENCE,
    ),
    # tests/contract/test_differential.py raises AssertionError(render(...))
    (
        "failed",
        "AssertionError: old/new differences for test patient 19****34 (1):\n  step 2 $.status: old 'AKTIV'",
        c.OLD_NEW_DIFFERENCE,
    ),
    ("failed", b.PROFILE, c.FHIR_PROFILE_VIOLATION),
    (
        "failed",
        "schemathesis.core.failures.FailureGroup: Schemathesis found 1 distinct failure\n\n"
        "- ST911 Rule violated: fhir_profile\n\n    MedicationRequest.status: not in the ValueSet",
        c.FHIR_PROFILE_VIOLATION,
    ),
    ("broken", b.TEST_DEFECT, c.TEST_DEFECT),
    ("passed", "", None),
    ("skipped", "reason: no FHIR API on the old platform", None),
]


@pytest.mark.parametrize(("status", "message", "expected"), CASES)
def test_each_failure_lands_in_exactly_one_category(
    tmp_path: Path, status: str, message: str, expected: str | None
) -> None:
    b.result(tmp_path, "test_x", status, message=message)
    [result] = read_results(tmp_path)
    assert c.classify(result) == expected
    # what Allure does with categories.json: every category whose statuses and messageRegex match
    matching = [
        entry["name"]
        for entry in c.categories_json()
        if status in entry["matchedStatuses"] and re.fullmatch(entry["messageRegex"], message)
    ]
    assert matching == ([expected] if expected else [])


def test_categories_json_names_what_the_board_acts_on() -> None:
    names = [entry["name"] for entry in c.categories_json()]
    assert names == [
        "safety refusal",
        "platform unreachable",
        "SLO breach",
        "old/new difference",
        "FHIR profile violation",
        "contract violation",
        "test defect",
    ]
    # Java's regex dialect: only constructs both Python and Java read the same way
    for entry in c.categories_json():
        assert entry["messageRegex"].startswith("(?s)")
        assert "(?P" not in entry["messageRegex"]
