"""Fixtures of the contract suite: the active run, the guarded session, each platform's URLs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from rxverify.contract import ACTIVE, configure
from rxverify.errors import UserError
from rxverify.guard import GuardedSession
from rxverify.paths import contracts_dir
from rxverify.pytest_plugin import local_key, target_of
from rxverify.session import Run, registry_for, tickets_for
from rxverify.tickets import load_actors

from . import schemas

# This folder is the contract suite: a session that loads it is a contract run and writes its
# evidence (manifest, its own results folder, test ids): rxverify.report.pytest_evidence.
RXVERIFY_SUITE = "contract"


def pytest_configure(config: pytest.Config) -> None:
    """Apply --examples and --seed, and the target's registry, before the tests are built."""
    for schema in (schemas.legacy, schemas.fhir):
        configure(schema, config.getoption("--examples"), config.getoption("--seed"))
    # our own hypothesis properties (differential, representations) take --examples too
    settings.register_profile(
        "rxverify-contract",
        max_examples=config.getoption("--examples"),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    settings.load_profile("rxverify-contract")
    try:
        contracts = contracts_dir(config.getoption("--contracts"))
        target = target_of(config, contracts)
        ACTIVE.registry = registry_for(target, contracts)
        key_file = config.getoption("--ticket-key-file")
        ACTIVE.tickets = tickets_for(
            target,
            load_actors(contracts / "testdata" / "test-actors.json"),
            Path(key_file) if key_file else None,
            local_key(config) if target.is_local else None,
        )
    except UserError as exc:
        pytest.exit(f"rxverify: {exc}", returncode=2)


@pytest.fixture(scope="session", autouse=True)
def rx_active(rx_run: Run) -> Iterator[Run]:
    """Bind the schemas to this run (tickets, registry) for the session."""
    ACTIVE.run = rx_run
    yield rx_run
    ACTIVE.run = None


@pytest.fixture(scope="session")
def rx_session(rx_run: Run) -> GuardedSession:
    """The guarded HTTP session every contract request goes through."""
    return rx_run.session()


@pytest.fixture(scope="session")
def legacy_url(platform: str, rx_run: Run) -> str:
    """Base URL of the legacy interface on `platform`."""
    endpoints = rx_run.target.platforms.get(platform)
    if endpoints is None or endpoints.legacy is None:
        pytest.skip(f"target {rx_run.target.name!r} has no legacy interface on the {platform} platform")
    return endpoints.legacy


@pytest.fixture(scope="session")
def fhir_url(platform: str, rx_run: Run) -> str:
    """Base URL of the FHIR API on `platform`."""
    endpoints = rx_run.target.platforms.get(platform)
    if endpoints is None or endpoints.fhir is None:
        pytest.skip(f"target {rx_run.target.name!r} has no FHIR API on the {platform} platform")
    return endpoints.fhir
