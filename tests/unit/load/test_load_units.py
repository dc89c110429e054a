"""The exact-latency histogram, the SLO file and its check, the load model's users (no Locust run)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from rxverify.errors import UserError
from rxverify.load.histogram import Histogram
from rxverify.load.recorder import OVERALL, Recorder
from rxverify.load.slo import check, load_slos
from rxverify.loadmodel import caller_loads, describe, load_model

ROOT = Path(__file__).resolve().parents[3]


def test_percentiles_are_within_one_percent_of_the_sorted_values() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(2, 1.2) for _ in range(20_000)]
    hist = Histogram.of(values)
    ordered = sorted(values)
    for p in (0.5, 0.95, 0.99, 0.999):
        exact = ordered[math.ceil(p * len(ordered)) - 1]
        assert hist.percentile(p) == pytest.approx(exact, rel=0.01)
    assert hist.percentile(1.0) == max(values)


def test_histograms_merge_across_workers_as_one() -> None:
    rng = random.Random(3)
    a, b = [rng.uniform(1, 50) for _ in range(5000)], [rng.uniform(40, 400) for _ in range(5000)]
    left, right = Recorder(), Recorder()
    for i, v in enumerate(a):
        left.request("X", 1000.0 + i / 1000, v, False, None)
    for i, v in enumerate(b):
        right.request("X", 1000.0 + i / 1000, v, i % 100 == 0, 5.0)
    right.iteration("pharmacy", False, 1000.0)
    left.cpu_s, left.guard_s, right.cpu_s, right.guard_s = 2.0, 0.5, 3.0, 0.25
    master = Recorder()
    master.merge_dict(left.to_dict())
    master.merge_dict(right.to_dict())
    whole = Histogram.of(a + b)
    assert master.service["X"].count == 10_000
    assert master.service["X"].percentile(0.95) == pytest.approx(whole.percentile(0.95))
    assert master.failures["X"] == 50 and master.dropped["pharmacy"] == 1
    assert (master.cpu_s, master.guard_s) == (5.0, 0.75)


def test_slo_breach_names_the_slo_the_value_and_the_limit() -> None:
    slos = load_slos(ROOT / "loadtests" / "slo.toml")
    rec = Recorder()
    for i in range(200):
        rec.request("HamtaAktuellaOrdinationer", 1000.0 + i / 10, 310.0 if i % 2 else 5.0, False, None)
    verdicts = check(slos, rec, offered=200)
    broken = [v for v in verdicts if not v.passed]
    assert any(v.slo.scope == "HamtaAktuellaOrdinationer" and v.slo.metric == "p95_ms" for v in broken)
    line = next(v.line for v in broken if v.slo.scope == "HamtaAktuellaOrdinationer")
    assert "BREACHED: HamtaAktuellaOrdinationer p95_ms <= 200" in line and "limit 200" in line
    assert all(v.slo.assumption for v in verdicts)
    assert any(v.slo.scope == OVERALL for v in verdicts)


@pytest.mark.parametrize(
    "text",
    ["assumption = true\n[overall\n", "[overall]\np95_ms = 100\n", "assumption = true\n[overall]\np97_ms = 1\n",
     "assumption = true\n[requests.X]\nmin_throughput_ratio = 1\n", "assumption = true\n[overall]\np95_ms = 'x'\n"],
)  # fmt: skip
def test_malformed_slo_file_is_one_user_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "slo.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as info:
        load_slos(path)
    assert "\n" not in str(info.value)


def test_littles_law_users_per_caller_scale_with_the_factor() -> None:
    model = load_model(ROOT / "loadtests" / "model.toml")
    full, tenth = caller_loads(model, 1.0), caller_loads(model, 0.1)
    for a, b in zip(full, tenth, strict=True):
        assert b.users == pytest.approx(a.users / 10)
        assert a.users == pytest.approx(a.per_second * (model.response_time_s + a.think_time_s))
    text = "\n".join(describe(model, 0.1, Path("loadtests/model.toml")))
    assert "scale factor 0.1" in text and "ASSUMPTION" in text and "users" in text


def _interface_classes() -> dict[str, tuple[set[str], set[str]]]:
    """Of each interface class in load/interfaces.py (read as Python, not imported: it imports locust):
    the request names it passes to `_send` and the ones it declares."""
    import ast

    tree = ast.parse((ROOT / "src" / "rxverify" / "load" / "interfaces.py").read_text(encoding="utf-8"))
    found = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in ("Legacy", "Fhir")):
        sent, declared = set(), set()
        for node in ast.walk(cls):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_send":
                name = node.args[3] if len(node.args) > 3 else next(k.value for k in node.keywords if k.arg == "name")
                assert isinstance(name, ast.Constant), f"{cls.name}: a request name that is not a literal"
                sent.add(name.value)
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "request_names" for t in node.targets):
                declared = {e.value for e in ast.walk(node.value) if isinstance(e, ast.Constant)}
        found[cls.name] = (sent, declared)
    return found


def test_each_interface_declares_every_request_name_it_sends() -> None:
    classes = _interface_classes()
    assert set(classes) == {"Legacy", "Fhir"}
    for name, (sent, declared) in classes.items():
        assert sent and sent == declared, name


def test_a_run_judges_the_overall_slos_and_those_of_its_own_interface() -> None:
    from rxverify.load.slo import applicable

    slos = load_slos(ROOT / "loadtests" / "slo.toml")
    (_, legacy_names), (_, fhir_names) = _interface_classes()["Legacy"], _interface_classes()["Fhir"]
    legacy = {s.scope for s in applicable(slos, frozenset(legacy_names)).slos}
    fhir = {s.scope for s in applicable(slos, frozenset(fhir_names)).slos}
    assert OVERALL in legacy and "HamtaAktuellaOrdinationer" in legacy and "MedicationRequest" not in legacy
    assert OVERALL in fhir and "MedicationRequest" in fhir and "GodkannUttag" not in fhir
