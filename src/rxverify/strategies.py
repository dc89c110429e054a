"""Hypothesis strategies with domain names; identities come only from the registry."""

from __future__ import annotations

from hypothesis import strategies as st

from rxverify.safety.identity import check_digit
from rxverify.safety.registry import Registry, TestPatient

DIFFERENTIAL_SHARE = 8  # every 8th test patient is kept for the old-vs-new comparison


def differential_patients(registry: Registry) -> tuple[TestPatient, ...]:
    """Patients only the differential writes to, so old and new hold the same data for them."""
    return tuple(p for i, p in enumerate(registry.patients) if i % DIFFERENTIAL_SHARE == DIFFERENTIAL_SHARE - 1)


def contract_patients(registry: Registry) -> tuple[TestPatient, ...]:
    """Every other patient: free for the conformance runs, which write different data to each platform."""
    kept = set(differential_patients(registry))
    return tuple(p for p in registry.patients if p not in kept)


def test_patients(registry: Registry) -> st.SearchStrategy[TestPatient]:
    """A registered test patient (shrinks towards the first in the registry)."""
    return st.sampled_from(registry.patients)


def person_ids(registry: Registry) -> st.SearchStrategy[str]:
    """A registered test patient's 12-digit number."""
    return test_patients(registry).map(lambda p: p.id)


def invalid_person_ids(registry: Registry) -> st.SearchStrategy[str]:
    """A registered number with a wrong check digit: shaped like an identity, never one."""

    def spoil(pid: str) -> st.SearchStrategy[str]:
        good = check_digit(pid[2:11])
        return st.sampled_from([d for d in "0123456789" if d != good]).map(lambda d: pid[:11] + d)

    return person_ids(registry).flatmap(spoil)


def register_schemathesis_formats(registry: Registry) -> None:
    """Make schemathesis draw every `format: personid` value from the registry."""
    import schemathesis

    schemathesis.openapi.format("personid", person_ids(registry))
