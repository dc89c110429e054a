"""Schemathesis CLI hooks for the throughput benchmark: the suite's safety, SOAP bodies, counted calls.

Loaded with SCHEMATHESIS_HOOKS=_st_hooks. The CLI has no guard of its own, so: identities are
drawn from the test-patient registry, every case is inspected by rxverify's guard before it is
sent (a refused case is filtered out, and one that slips through aborts the call), and each
call is counted so the benchmark can compare cases per second. legacy.yaml's bodies are
`text/xml`: the CLI writes them with the same serializer as our run (rxverify.legacy.media, the
one legacy client writing the SOAP envelope, SOAPAction, RIV-TA headers and the ticket, here the
one the benchmark passes in RXVERIFY_BENCH_TICKET), or it could not send one valid request.
"""

from __future__ import annotations

import atexit
import json
import os
from pathlib import Path

import schemathesis
from hypothesis import strategies as st

from rxverify.contracts.riv import load_riv
from rxverify.legacy import media
from rxverify.legacy.client import LegacyClient
from rxverify.safety.guard import Guard
from rxverify.safety.registry import load_registry
from rxverify.strategies import contract_patients

REGISTRY = load_registry(Path("contracts/testdata/test-patients.json"))
GUARD = Guard(REGISTRY)
CALLS = {"n": 0}
schemathesis.openapi.format("personid", st.sampled_from([p.id for p in contract_patients(REGISTRY)]))
RIV = load_riv(Path("contracts"))


class _BenchTicket:
    """The ticket the benchmark minted, for every role."""

    def ticket(self, role: str, index: int = 0) -> str | None:
        """The benchmark's ticket."""
        return os.environ.get("RXVERIFY_BENCH_TICKET")


media.register()
media.bind(lambda session, base: LegacyClient(session, base, RIV, _BenchTicket()), lambda: None)  # type: ignore[arg-type,return-value]


def _wire(case: schemathesis.Case) -> tuple[str, dict[str, str], str]:
    body = json.dumps(case.body) if case.body is not None and not isinstance(case.body, (str, bytes)) else case.body
    path = case.formatted_path + ("?" + "&".join(f"{k}={v}" for k, v in (case.query or {}).items()))
    return path, {k: str(v) for k, v in (case.headers or {}).items()}, str(body or "")


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    """Drop cases the guard would refuse (a non-registered identity anywhere)."""
    path, headers, body = _wire(case)
    try:
        GUARD.inspect("POST", "http://127.0.0.1" + path, headers, body)
    except Exception:
        return False
    return True


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: dict) -> None:
    """Fail closed: inspect again right before sending, and count."""
    path, headers, body = _wire(case)
    GUARD.inspect("POST", "http://127.0.0.1" + path, headers, body)
    CALLS["n"] += 1


@atexit.register
def _write_count() -> None:
    target = os.environ.get("RXVERIFY_BENCH_COUNT")
    if target:
        Path(target).write_text(str(CALLS["n"]))
