"""Old vs new: generated legacy call sequences answered alike by the old platform and the new one.

The calls are SOAP requests of the one legacy client; answers are compared as canonical XML
(rxverify.differential.canonical: local names, namespaces, child order, typed values).

Requirement: the new platform keeps the old service interface alive through its transformer
"so that today's care systems and pharmacy systems are not affected" (DOMAIN.md). Noise (ids,
instants) is learned from a second old instance (the Diffy method), not listed by hand.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta

import allure
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxverify.contract import ACTIVE, legacy_client
from rxverify.differential import Lane, Noise, call_sequences, compare, declared_noise, render
from rxverify.mapping import load_mapping
from rxverify.paths import contracts_dir
from rxverify.target.local import SECONDARY
from rxverify.target.run import Run

COMPARED = ("old", SECONDARY, "new")


@pytest.fixture(scope="session")
def lanes(rx_run: Run) -> Iterator[dict[str, Lane]]:
    """The legacy interface of old, the second old instance and new (the test exists only when all three do)."""
    platforms = rx_run.target.platforms
    out = {}
    for name in ("old", SECONDARY, "new"):
        legacy = platforms[name].legacy
        assert legacy is not None
        out[name] = Lane(name, legacy_client(rx_run.session(), legacy))
    yield out
    for lane in out.values():
        if lane.client.session is not None:
            lane.client.session.close()


@pytest.fixture(scope="session")
def noise() -> Noise:
    """What differs between two old instances, learned over the whole run."""
    return Noise(declared_noise(load_mapping(contracts_dir() / "mapping" / "legacy-fhir.yaml")))


# A sequence costs milliseconds against three local platforms, so the comparison draws five
# per --examples: more lifecycles (a cancel before a history read, a last withdrawal) per run.
SEQUENCES_PER_EXAMPLE = 5
_SEQUENCE = itertools.count(1)  # numbers each sequence, the same for its three lanes (Lane.aliases)


def _issue_date_plus(days: int) -> str:
    """Today's legacy date (the mapping's time zone) + days: a giltigTom inside the allowed range."""
    today = datetime.now(load_mapping(contracts_dir() / "mapping" / "legacy-fhir.yaml").time_zone).date()
    return (today + timedelta(days=days)).isoformat()


@pytest.mark.integration
@pytest.mark.compares(*COMPARED)  # generated only when the run has all three ([target.old-secondary], --platform both)
@pytest.mark.parametrize("compared", ["old-vs-new"])  # the id names the platforms, as every test id does
@allure.epic("old vs new")
@allure.feature("legacy interface through the transformer")
@allure.story("old and new answer alike")
@allure.severity(allure.severity_level.BLOCKER)
@settings(max_examples=settings.default.max_examples * SEQUENCES_PER_EXAMPLE)
@given(data=st.data())
def test_old_and_new_answer_alike(data: st.DataObject, compared: str, lanes: dict[str, Lane], noise: Noise) -> None:
    """The same generated call sequence gets the same answers from old and new (noise learned from old vs old)."""
    registry = ACTIVE.registry or ACTIVE.get().registry
    patient, steps = data.draw(call_sequences(registry), label="sequence")
    sequence = next(_SEQUENCE)
    old = lanes["old"].run(patient, steps, _issue_date_plus, sequence)
    secondary = lanes[SECONDARY].run(patient, steps, _issue_date_plus, sequence)
    new = lanes["new"].run(patient, steps, _issue_date_plus, sequence)
    noise.learn(old, secondary)
    diffs = compare(old, new, noise)
    if diffs:
        report = render(patient.id, steps, diffs, old, new)
        allure.attach(report, name="old/new difference", attachment_type=allure.attachment_type.TEXT)
        raise AssertionError(report)
