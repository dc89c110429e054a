"""A run of the local target over mutual TLS: both platforms on both entry points, SAMBI assertions, the audit on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rxverify.target.run import Run, open_run
from rxverify.target.targets import Target

from ..conftest import CONTRACTS


@pytest.fixture(scope="package")
def tls_run() -> Iterator[Run]:
    """open_run(tls=True) as part B's suites will open it, with the egress audit on."""
    with open_run(Target("local", "local"), CONTRACTS, suite="cli", tls=True, platforms=("old", "new"),
                  audit=True) as run:
        yield run
    # every request a platform received was one the guard let through
    assert run.audit_problems == [], run.audit_problems
