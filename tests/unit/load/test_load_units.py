"""The latency histogram and its merge, the open model's schedule, SLOs, progress, chart (no Locust run)."""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import pytest

from rxverify.errors import UserError
from rxverify.load.histogram import ACCURACY, Histogram
from rxverify.load.openmodel import ArrivalSchedule
from rxverify.load.parts import await_last_parts
from rxverify.load.progress import Progress
from rxverify.load.recorder import OVERALL, Recorder
from rxverify.load.report import html_page, latency_chart, summary
from rxverify.load.slo import check, check_window, load_slos, measure
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
    right.iteration_scheduled("pharmacy", 1000.0)
    right.iteration_dropped("pharmacy", 1000.0)
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
    assert any(v.slo.scope == "HamtaAktuellaOrdinationer" and v.slo.metric == "intended_p95_ms" for v in broken)
    line = next(v.line for v in broken if v.slo.scope == "HamtaAktuellaOrdinationer")
    assert "BREACHED: HamtaAktuellaOrdinationer intended_p95_ms <= 200" in line and "limit 200" in line
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
    the request names it passes to `_send` or `_call` and the ones it declares."""
    import ast

    tree = ast.parse((ROOT / "src" / "rxverify" / "load" / "interfaces.py").read_text(encoding="utf-8"))
    found = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in ("Legacy", "Fhir")):
        sent, declared = set(), set()
        for node in ast.walk(cls):
            # Fhir names its requests in `_send(vu, method, path, name, ...)`; Legacy sends a SOAP request
            # named by its service in `_call(vu, service, ...)`
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_send":
                name = node.args[3] if len(node.args) > 3 else next(k.value for k in node.keywords if k.arg == "name")
                assert isinstance(name, ast.Constant), f"{cls.name}: a request name that is not a literal"
                sent.add(name.value)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_call":
                name = node.args[1]
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


def test_percentiles_are_within_the_stated_accuracy_also_below_one_millisecond() -> None:
    rng = random.Random(11)
    for values in ([rng.uniform(0.05, 0.99) for _ in range(5000)], [rng.lognormvariate(2, 1.5) for _ in range(20_000)]):
        hist, ordered = Histogram.of(values), sorted(values)
        for p in (0.5, 0.9, 0.95, 0.99, 0.999):
            exact = ordered[math.ceil(p * len(ordered)) - 1]
            assert abs(hist.percentile(p) / exact - 1) <= ACCURACY * (1 + 1e-9), (p, exact)
    assert ACCURACY < 0.005


def _synthetic(rng: random.Random, n: int) -> list[tuple[str, float, float, bool, float | None]]:
    """Requests as a run records them: name, epoch of the send, response ms, failed, delay ms (None: closed)."""
    names = ("HamtaAktuellaOrdinationer", "GodkannUttag", "SkapaOrdinationVard")
    return [(rng.choice(names), 1000.0 + i / 50, rng.lognormvariate(2, 1), rng.random() < 0.02,
             rng.choice((None, 0.0, rng.expovariate(1 / 200)))) for i in range(n)]  # fmt: skip


def _record(rec: Recorder, rows: list[tuple[str, float, float, bool, float | None]], which: range) -> None:
    for i in which:
        name, start, ms, failed, delay = rows[i]
        rec.request(name, start, ms, failed, delay)
        caller = ("pharmacy", "care")[i % 2]
        rec.iteration_scheduled(caller, start)
        if i % 17:
            rec.iteration_started(caller, delay or 0.0)
        else:
            rec.iteration_dropped(caller, start)


def test_two_processes_merged_give_exactly_the_figures_of_one_process() -> None:
    rows = _synthetic(random.Random(5), 6000)
    one, left, right = Recorder(), Recorder(), Recorder()
    _record(one, rows, range(len(rows)))
    # the workers' requests interleave in time, as two processes' do; one reports a part, records on
    # and reports the rest (Locust's periodic worker reports): each part counts once
    _record(left, rows, range(0, len(rows) // 2, 2))
    early = left.take()
    _record(left, rows, range(len(rows) // 2, len(rows), 2))
    _record(right, rows, range(1, len(rows), 2))
    master = Recorder()
    for part in (early, right, left):
        master.merge_dict(json.loads(json.dumps(part.to_dict())))  # as Locust carries it: through JSON
    s_one = summary(one, [], {"arrival": "open"}, None)
    s_merged = summary(master, [], {"arrival": "open"}, None)
    for kind in ("latency_from_send", "latency_from_intended_start"):
        a, b = s_one["overall"][kind], s_merged["overall"][kind]
        assert a.pop("mean_ms") == pytest.approx(b.pop("mean_ms"))
        assert a == b and a["count"] == 6000
        for name, figs in s_one["requests_by_name"].items():
            c, d = dict(figs[kind]), dict(s_merged["requests_by_name"][name][kind])
            assert c.pop("mean_ms") == pytest.approx(d.pop("mean_ms")) and c == d
    for key in ("service", "intended"):
        mine, merged = getattr(one, key), getattr(master, key)
        assert {n: h.buckets for n, h in mine.items()} == {n: h.buckets for n, h in merged.items()}
    assert s_one["iterations"] == s_merged["iterations"] and s_one["iterations"]["dropped"] == 6000 // 17 + 1
    assert s_one["failures"] == s_merged["failures"] > 0
    assert one.seconds.keys() == master.seconds.keys()
    for s, sec in one.seconds.items():
        other = master.seconds[s]
        assert (sec.service.buckets, sec.intended.buckets, sec.failures, sec.scheduled, sec.dropped) == (
            other.service.buckets, other.intended.buckets, other.failures, other.scheduled, other.dropped)  # fmt: skip
    # and the merged percentiles are within the histogram's accuracy of the recorded values
    ordered = sorted(ms + (delay or 0.0) for _, _, ms, _, delay in rows)
    exact = ordered[math.ceil(0.99 * len(ordered)) - 1]
    assert abs(s_merged["overall"]["latency_from_intended_start"]["p99_ms"] / exact - 1) <= ACCURACY + 1e-3


def test_a_stress_window_judges_each_latency_on_its_own_histogram() -> None:
    slos = load_slos(ROOT / "loadtests" / "slo.toml")
    rec = Recorder()
    for i in range(400):  # answered in 5 ms, but sent 600 ms after the intended start (waited for a VU)
        rec.request("HamtaAktuellaOrdinationer", 1000.0 + i / 100, 5.0, False, 600.0)
        rec.iteration_scheduled("pharmacy", 1000.0 + i / 100)
    verdicts = {v.slo.metric: v for v in check_window(slos, rec.window(1000, 1004))}
    intended = verdicts["intended_p95_ms"]
    assert not intended.passed and intended.measured == pytest.approx(605, rel=0.01)
    assert verdicts["dropped_ratio"].passed and verdicts["failure_ratio"].passed
    send = check_window(load_slos(_slo_file(rec, "p95_ms = 250")), rec.window(1000, 1004))
    assert send[0].passed and send[0].measured == pytest.approx(5, rel=0.01)


def _slo_file(rec: Recorder, line: str) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "slo.toml"
    path.write_text(f"assumption = true\n[overall]\n{line}\n", encoding="utf-8")
    return path


def test_in_the_closed_model_latency_from_intended_start_is_latency_from_send() -> None:
    rec = Recorder()
    for i in range(100):
        rec.request("GodkannUttag", 1000.0 + i / 10, 10.0 + i, False, None)
    assert rec.overall("intended").buckets == rec.overall().buckets
    assert measure(rec, "GodkannUttag", "intended_p95_ms", None) == measure(rec, "GodkannUttag", "p95_ms", None)


def test_the_open_model_waits_for_an_idle_vu_and_drops_only_past_the_start_timeout() -> None:
    import gevent

    def run(timeout_s: float) -> Recorder:
        rec = Recorder()
        schedule = ArrivalSchedule(["pharmacy"], lambda caller, t: 50.0, rec, timeout_s)
        stall_until = [0.0]

        def vu() -> None:
            while True:
                schedule.next_iteration("pharmacy")
                if time.monotonic() < stall_until[0]:  # every VU is held by the stalled platform
                    gevent.sleep(stall_until[0] - time.monotonic())

        schedule.start()
        vus = [gevent.spawn(vu) for _ in range(2)]
        gevent.sleep(0.4)
        stall_until[0] = time.monotonic() + 1.0
        gevent.sleep(2.0)
        gevent.killall(vus)
        schedule.stop()
        return rec

    patient, impatient = run(3.0), run(0.3)
    # a 1 s stall under a 3 s bound: every iteration waited, none dropped, the longest wait about the stall
    assert sum(patient.dropped.values()) == 0 and patient.start_wait.max > 500
    assert sum(patient.started.values()) >= sum(patient.scheduled.values()) - 2
    # under a 0.3 s bound: the iterations of the stall's last 0.7 s are dropped, counted per second
    dropped = sum(impatient.dropped.values())
    assert 10 <= dropped <= 50 and sum(s.dropped for s in impatient.seconds.values()) == dropped
    assert impatient.start_wait.max <= 300.0 + 1e-6


def test_a_progress_line_names_rates_p95_drops_errors_and_slos_at_risk() -> None:
    slos = load_slos(ROOT / "loadtests" / "slo.toml")
    rec = Recorder()
    for i in range(500):  # 100 scheduled a second, 90 answered, the tenth of them late
        start = 1000.0 + i / 100
        rec.iteration_scheduled("pharmacy", start)
        if i % 10 == 9:
            rec.iteration_dropped("pharmacy", start)
            continue
        rec.request("HamtaAktuellaOrdinationer", start, 4.0, i % 50 == 0, 900.0 if i % 10 == 8 else 1.0)
    progress = Progress(rec, slos, 5.0, 0.0, lambda: 500.0, None)
    progress.started = 1000.0
    line = progress.line(1005.2)
    assert line.startswith("rxverify progress    5 s: offered 100.0/s, achieved 90.0/s")
    assert "p95 from intended start 904.0 ms (from send 4.0 ms)" in line and "dropped 50, errors 10 (2.22%)" in line
    assert "SLOs at risk: overall intended_p95_ms <= 250 at 904; overall intended_p99_ms <= 500 at 904" in line
    # failures 2.2 %, throughput 0.9: breached; then dropped ratio and the request's own two, counted
    assert line.endswith("failure_ratio <= 0.01 at 0.02222; overall throughput_ratio >= 0.95 at 0.9; 3 more")


def test_the_chart_and_page_show_both_latencies_and_the_step_where_an_slo_broke() -> None:
    rec = Recorder()
    for i in range(300):
        rec.request("GodkannUttag", 1000.0 + i / 10, 5.0, False, 50.0 if i > 200 else 0.0)
    stress = {"step_s": 10.0, "start_epoch": 1000.0, "held_steps": 2, "broke_at_step": 3, "verdict": "broke at step 3"}
    chart = latency_chart(rec, "stress <test>", stress)
    assert chart.count("<polyline") == 5 and chart.count('stroke-dasharray="5,3"') == 2
    assert "SLO broke at step 3" in chart and "step 1" in chart and "stress &lt;test&gt;" in chart
    context = {"profile": "stress", "target": "local", "platform": "old", "arrival": "open", "stress": stress}
    data = summary(rec, check(load_slos(ROOT / "loadtests" / "slo.toml"), rec, 300), context, 300)
    page = html_page(data, chart)
    assert page.startswith("<!doctype html>") and chart in page and "broke at step 3" in page
    assert "GodkannUttag, from intended start" in page and "within 0.50%" in page


def test_a_master_waits_for_every_workers_last_part_and_names_the_ones_that_never_came() -> None:
    import gevent

    arrived: set[str] = set()
    # w1's last part comes half a second after the master stopped, w2's never
    gevent.spawn_later(0.5, arrived.add, "w1")
    started = time.monotonic()
    assert await_last_parts(["w1", "w2"], arrived, wait_s=1.5) == ["w2"]
    assert arrived == {"w1"} and time.monotonic() - started >= 1.5
    gevent.spawn_later(0.2, arrived.add, "w2")
    assert await_last_parts(["w1", "w2"], arrived, wait_s=30) == []  # returns as soon as all are there


def test_the_warm_up_is_sent_and_counted_but_never_judged() -> None:
    """--warm-up: what was due before the judged window (by its intended start) is left out of every figure."""
    from rxverify.load.recorder import Recorder

    rec = Recorder()
    rec.judged_from = 1000.0
    rec.iteration_scheduled("pharmacy", 999.0)
    rec.iteration_started("pharmacy", 0.0, 999.0)
    rec.request("HamtaAktuellaOrdinationer", 999.5, 900.0, False, None)  # a cold start: slow, before the window
    rec.request("HamtaAktuellaOrdinationer", 1000.2, 800.0, False, 500.0)  # due at 999.7: warm-up too
    rec.iteration_scheduled("pharmacy", 1001.0)
    rec.iteration_started("pharmacy", 2.0, 1001.0)
    rec.request("HamtaAktuellaOrdinationer", 1001.0, 10.0, False, 2.0)
    assert rec.warmup == 2 and rec.requests == 1 and rec.overall().percentile(1.0) < 20
    assert sum(rec.scheduled.values()) == 1 and sum(rec.started.values()) == 1
    part = rec.take()
    assert rec.judged_from == 1000.0 and part.warmup == 2 and rec.warmup == 0  # the window is the run's
    rec.request("HamtaAktuellaOrdinationer", 999.0, 5.0, False, None)
    merged = Recorder()
    merged.merge(part)
    merged.merge(rec)
    assert merged.warmup == 3 and merged.requests == 1
    plain = Recorder()  # no warm-up: everything judged
    plain.request("HamtaAktuellaOrdinationer", 999.5, 900.0, False, None)
    assert plain.requests == 1 and plain.warmup == 0
