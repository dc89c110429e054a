"""Which tests apply to which platform: a test is generated only where the target has what it needs.

A test names its platform through the `platform` argument, which the plugin parametrizes
from `--platform`; so every test id ends with the platform it is about (`test_x[new]`,
`test_y[POST /ordinationer][old]`, `test_z[legacy:GodkannUttag-old]`). It is generated for a
platform only when that platform has every interface the test needs, known before anything
starts (the embedded platforms' interfaces, or the target's URLs):

- a test that takes `legacy_url` or `fhir_url` needs the legacy interface or the FHIR API;
- a test parametrized over `interface` (legacy, fhir) needs that interface, per parameter;
- `@pytest.mark.platforms(...)` names the only platforms a test (or one parameter set) applies to;
- `@pytest.mark.compares(...)` needs every platform it names in the run (the differential);
- `@pytest.mark.forges_tickets` needs a ticket key this run knows (a local target or
  `--ticket-key-file`).

So nothing is skipped because a platform lacks an interface: such a test is not in the run
(deselected, with the reason said once after collection).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import pytest

from rxverify.target.local import INTERFACES, SECONDARY
from rxverify.target.targets import Target

FIXTURE_NEEDS = {"legacy_url": "legacy", "fhir_url": "fhir"}
LEFT_OUT = pytest.StashKey[Counter[str]]()  # why tests were not generated, with how many


def planned_interfaces(target: Target, wanted: Iterable[str]) -> dict[str, frozenset[str]]:
    """The interfaces each platform of the run will have, before anything is started."""
    names = set(wanted)
    if {"old", "new"} <= names:
        names.add(SECONDARY)  # the differential's second old instance runs beside old and new
    if target.is_local:
        return {p: INTERFACES[p] for p in names}
    return {
        name: frozenset(kind for kind, url in (("legacy", e.legacy), ("fhir", e.fhir)) if url)
        for name, e in target.platforms.items()
        if name in names
    }


def platforms_for(metafunc: pytest.Metafunc, wanted: Iterable[str]) -> list[str]:
    """The platforms `metafunc`'s test is parametrized over: those chosen that its `platforms` marker allows."""
    marker = metafunc.definition.get_closest_marker("platforms")
    allowed = set(marker.args) if marker else {"old", "new"}
    return [p for p in wanted if p in allowed]


def _left_out(config: pytest.Config, reason: str, n: int = 1) -> None:
    config.stash.setdefault(LEFT_OUT, Counter())[reason] += n


def drop_inapplicable(
    items: list[pytest.Item], config: pytest.Config, planned: Mapping[str, frozenset[str]], mints: bool,
    local: bool = True,
) -> None:
    """Remove, right after they are generated, the tests whose platform lacks what they need.

    They are reported as deselected (pytest's count stays true), with the reason once per kind.
    """
    kept, dropped = [], []
    for item in items:
        reason = _inapplicable(item, planned, mints, local)
        if reason is None:
            kept.append(item)
        else:
            dropped.append(item)
            _left_out(config, reason)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _inapplicable(
    item: pytest.Item, planned: Mapping[str, frozenset[str]], mints: bool, local: bool = True
) -> str | None:
    params = getattr(getattr(item, "callspec", None), "params", {})
    platform = params.get("platform")
    if platform is not None:
        needs = {kind for fixture, kind in FIXTURE_NEEDS.items() if fixture in getattr(item, "fixturenames", ())}
        if isinstance(params.get("interface"), str):
            needs.add(params["interface"])
        missing = needs - planned.get(platform, frozenset())
        if missing:
            return f"the {platform} platform has no {' or '.join(sorted(missing))} interface"
        only = item.get_closest_marker("platforms")  # also a parameter set's own mark
        if only is not None and platform not in only.args:
            return f"the test applies to the {' and '.join(only.args)} platform only"
    compares = item.get_closest_marker("compares")
    if compares is not None:
        absent = [p for p in compares.args if p not in planned]
        if absent:
            return f"a comparison needs {', '.join(absent)} in the run (--platform both, a second old instance)"
    if item.get_closest_marker("forges_tickets") is not None and not mints:
        return "ticket forgery needs a ticket key this run knows (a local target or --ticket-key-file)"
    if "rx_secure_run" in getattr(item, "fixturenames", ()) and not local:
        # the seeded certificates and assertions (expired, foreign CA, unsigned) are made by the local trust domain
        return "Säker åtkomst's made-up certificates and assertions need the embedded platforms' trust domain"
    return None


def left_out_lines(config: pytest.Config) -> list[str]:
    """One line per reason a test was not generated."""
    return [
        f"rxverify: {n} test{'s' * (n != 1)} deselected, not applicable: {reason}"
        for reason, n in sorted(config.stash.get(LEFT_OUT, Counter()).items())
    ]
