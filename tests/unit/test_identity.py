"""Recognising personal identity numbers, and the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxverify.errors import UserError
from rxverify.safety.identity import (
    _UUID,
    _UUID_MASK,
    CANDIDATE,
    candidates,
    find_identities,
    luhn_ok,
    mask,
    mask_uuids,
)
from rxverify.safety.registry import Registry, load_registry
from rxverify.strategies import invalid_person_ids, person_ids

from .strategies import foreign_identities, written


def test_registry_is_explicit_synthetic_and_large_enough(registry: Registry) -> None:
    assert registry.synthetic and "synthetic" in registry.source
    assert len(registry.patients) >= 200
    kinds = {p.kind for p in registry.patients}
    assert kinds == {"personnummer", "samordningsnummer"}
    assert "191212121212" in registry  # the customary example
    assert any(p.group == "over 100" for p in registry.patients)
    assert any(p.group == "child" for p in registry.patients)


@given(st.data())
def test_every_registered_identity_is_found_in_every_written_form(registry: Registry, data: st.DataObject) -> None:
    pid = data.draw(person_ids(registry))
    style = data.draw(st.sampled_from(["12", "12-", "10sep"]))
    text = f'{{"x": "a {written(pid, style)} b"}}'
    assert [f.twelve for f in find_identities(text)] == [pid]
    assert registry.unregistered_in(text) == []


@given(st.data())
def test_foreign_identities_are_found_as_unregistered(registry: Registry, data: st.DataObject) -> None:
    pid = data.draw(foreign_identities(registry))
    style = data.draw(st.sampled_from(["12", "12-", "10sep"]))
    hits = registry.unregistered_in(f"/patienter/{written(pid, style)}/x")
    assert [h.twelve for h in hits] == [pid]


@given(st.data())
def test_a_wrong_check_digit_is_not_an_identity(registry: Registry, data: st.DataObject) -> None:
    bad = data.draw(invalid_person_ids(registry))
    assert not luhn_ok(bad[2:])
    assert find_identities(bad) == []


def test_uuids_and_timestamps_are_not_identities() -> None:
    assert find_identities("3f0b7a2e-3c1d-4c55-9d7e-191212121212 2026-11-25T16:03:00.123Z") == []


def test_mask_keeps_only_two_digits_at_each_end() -> None:
    assert mask("191212121212") == "19********12"


def test_registry_rejects_a_row_with_a_bad_check_digit(tmp_path: Path, registry: Registry) -> None:
    good = registry.patients[0].id
    bad = good[:11] + str((int(good[11]) + 1) % 10)
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"synthetic": True, "patients": [{"id": bad}]}))
    with pytest.raises(UserError, match="not a 12-digit Luhn-valid identity"):
        load_registry(path)


def test_synthetic_registry_refused_for_a_test_environment(registry: Registry) -> None:
    registry.check_usable_for("local", "local")
    with pytest.raises(UserError, match="synthetic"):
        registry.check_usable_for("test", "acceptance")


def test_unreadable_registry_is_one_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        load_registry(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="not valid JSON"):
        load_registry(tmp_path / "bad.json")



@given(st.lists(st.one_of(st.text(alphabet="0123456789-+ x#", max_size=40), st.uuids().map(str)), max_size=8))
def test_scanning_from_digit_runs_finds_every_match_of_the_pattern(parts: list[str]) -> None:
    """The scan tries the pattern only where a run of six digits starts: it must find what finditer finds."""
    text = "".join(parts)
    assert [m.group(0) for m in candidates(text)] == [m.group(0) for m in CANDIDATE.finditer(text)]


@given(st.lists(st.one_of(st.text(alphabet="0123456789abcdefAF-x", max_size=40), st.uuids().map(str)), max_size=8))
def test_uuids_are_masked_as_the_full_pattern_masks_them(parts: list[str]) -> None:
    """The hyphen-anchored masking is the full pattern's, UUIDs next to UUIDs and hex runs included."""
    text = "".join(parts)
    assert mask_uuids(text) == _UUID.sub(_UUID_MASK, text)
