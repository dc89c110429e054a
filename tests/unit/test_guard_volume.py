"""Guard at volume: per encoding family, 100,000 requests with a foreign identity hidden anywhere (none admitted)
and 100,000 with registered test patients in legal forms (none refused). The counts are printed.

The identities are made at run time from a seed that is printed (Luhn-valid, not in the registry,
both kinds, every written form) and never written to a file; the families and places are those
of tests/unit/safety_encodings.py. The guard decides at `Guard.admit`, before any transport: a
request it refuses reaches no socket (the transports' own tests prove that they ask it first).
Two processes share the families: the machine's cores.
"""

from __future__ import annotations

import os
import random
from concurrent.futures import ProcessPoolExecutor

import pytest

from rxverify.safety.guard import Guard, RequestRefused
from rxverify.safety.registry import load_registry

from . import safety_encodings as enc
from .conftest import CONTRACTS

VOLUME = 100_000  # per family and per direction


def _family(name: str, seed: int, volume: int) -> tuple[str, int, int, int, int, list[str]]:
    """(family, foreign admitted, foreign refused, registered refused, registered admitted, examples of errors)."""
    registry = load_registry(CONTRACTS / "testdata" / "test-patients.json")
    guard = Guard(registry)
    build = enc.FAMILIES[name]
    rng = random.Random(f"{seed}:{name}")
    patients = [p.id for p in registry.patients]
    admitted = refused = wrongly_refused = sent = 0
    errors: list[str] = []
    for _ in range(volume):
        request = build(rng, enc.written(rng, enc.foreign_identity(rng, registry)))
        try:
            guard.admit(request.method, request.url, request.headers, request.body)
        except RequestRefused:
            refused += 1
        else:
            admitted += 1
            if len(errors) < 3:
                errors.append(f"admitted: {request.method} {request.headers} {request.body!r:.120}")
    for _ in range(volume):
        request = build(rng, enc.written(rng, rng.choice(patients)))
        try:
            guard.admit(request.method, request.url, request.headers, request.body)
        except RequestRefused as exc:
            wrongly_refused += 1
            if len(errors) < 3:
                errors.append(f"refused: {exc.message}")
        else:
            sent += 1
    return name, admitted, refused, wrongly_refused, sent, errors


def test_foreign_identities_never_pass_and_test_patients_always_do(capsys: pytest.CaptureFixture[str]) -> None:
    seed = int(os.environ.get("RXVERIFY_VOLUME_SEED") or random.SystemRandom().randrange(1, 2**31))
    volume = int(os.environ.get("RXVERIFY_VOLUME") or VOLUME)
    families = sorted(enc.FAMILIES)
    with ProcessPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(_family, families, [seed] * len(families), [volume] * len(families)))
    lines = [f"guard volume (seed {seed}, RXVERIFY_VOLUME_SEED={seed} reproduces):"]
    for name, admitted, refused, wrongly, sent, _ in outcomes:
        lines.append(
            f"  {name:<22} foreign: {refused:>6} refused, {admitted} admitted; "
            f"test patients: {sent:>6} admitted, {wrongly} refused"
        )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    problems = [(name, errors) for name, admitted, _, wrongly, _, errors in outcomes if admitted or wrongly]
    assert not problems, problems
    assert all(refused == volume and sent == volume for _, _, refused, _, sent, _ in outcomes)


