"""pytest plugin of suite-power runs (`-p rxverify.power_plugin`): detect, do not minimise.

A power run asks one question, whether the suite fails on a fault, and reads the failure's
message. Hypothesis's shrink and explain phases only make a found failure smaller and better
explained; they draw no new examples, so leaving them out changes nothing about what is
found. They are most of a failing run's time (a differential failure: 22 s of shrinking
against 0.2 s to find it), so power runs leave them out; the contract suite keeps them.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings

DETECTION_PHASES_DROPPED = (Phase.shrink, Phase.explain)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Load the active hypothesis profile again without shrinking and explaining."""
    active = settings.default
    if active is None:
        return
    phases = tuple(p for p in active.phases if p not in DETECTION_PHASES_DROPPED)
    settings.register_profile("rxverify-power", parent=active, phases=phases)
    settings.load_profile("rxverify-power")
