"""Fixtures of the contract suite: the active run, the guarded session, each platform's URLs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from hypothesis import HealthCheck, settings

from rxverify.contract import ACTIVE, configure, legacy_client
from rxverify.errors import UserError
from rxverify.legacy.client import LegacyClient
from rxverify.paths import contracts_dir
from rxverify.pytest_plugin import prepare_target
from rxverify.target.run import Run

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
        # the target checked and probed before collection: a mistake is one line, exit 2, before any test
        contracts = contracts_dir(config.getoption("--contracts"))
        _, ACTIVE.registry, ACTIVE.tickets = prepare_target(config, contracts)
        ACTIVE.contracts = contracts
    except UserError as exc:
        pytest.exit(f"rxverify: {exc}", returncode=2)


@pytest.fixture(scope="session", autouse=True)
def rx_active(rx_run: Run) -> Iterator[Run]:
    """Bind the schemas to this run (tickets, registry) for the session."""
    ACTIVE.run = rx_run
    yield rx_run
    ACTIVE.run = None


@pytest.fixture(scope="session")
def rx_session(rx_run: Run) -> requests.Session:
    """The guarded HTTP session every contract request goes through."""
    return rx_run.session()


@pytest.fixture(scope="session")
def legacy_url(platform: str, rx_run: Run) -> str:
    """Base URL of the legacy interface on `platform` (a test that takes it exists only where there is one)."""
    endpoints = rx_run.target.platforms[platform]
    assert endpoints.legacy is not None, f"generated for {platform}, which has no legacy interface"
    return endpoints.legacy


@pytest.fixture(scope="session")
def legacy(legacy_url: str, rx_session: requests.Session) -> LegacyClient:
    """The one legacy client of `platform`, over the guarded session, with the run's tickets."""
    return legacy_client(rx_session, legacy_url)


@pytest.fixture(scope="session")
def fhir_url(platform: str, rx_run: Run) -> str:
    """Base URL of the FHIR API on `platform` (a test that takes it exists only where there is one)."""
    endpoints = rx_run.target.platforms[platform]
    assert endpoints.fhir is not None, f"generated for {platform}, which has no FHIR API"
    return endpoints.fhir
