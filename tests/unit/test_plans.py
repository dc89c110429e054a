"""Verification plans: the shipped one is valid; a bad one is one line naming the problem and the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rxverify.errors import UserError
from rxverify.operations import load_operations
from rxverify.plans import Plan, load_plan, plan_path, resolve
from rxverify.safety.identity import check_digit
from rxverify.safety.registry import Registry
from rxverify.target.credentials import load_actors

from .conftest import CONTRACTS, ROOT

SHIPPED = CONTRACTS / "verification" / "release-21.0.toml"

HEADER = """
name = "t"
release = "21.0"
target_class = "production"
[window]
start = 2021-11-20T22:00:00+01:00
end = 2021-11-21T06:00:00+01:00
[rate]
requests_per_second = 2.0
[participants.care]
role = "prescriber"
actor = 0
contact = "A. Person, verification lead"
[participants.pharmacy]
role = "pharmacy"
actor = 0
contact = "B. Person, integration manager"
"""

CREATE = """
[[steps]]
id = "S1"
participant = "care"
operation = "SkapaOrdinationVard"
patient = "191212121212"
expect = { status = 200 }
[steps.body]
personnummer = "${patient}"
lakemedel = { nplPackId = "19990101100001", namn = "Alvedon" }
doseringstext = "1 x 3"
antalForpackningar = 1
antalUttag = 1
forskrivningstyp = "ELEKTRONISK"
"""


def foreign_identity(registry: Registry) -> str:
    """A valid identity outside the registry, made from a registered one (never written out)."""
    base = registry.patients[0].id
    for serial in range(1000):
        nine = base[2:8] + f"{serial:03d}"
        twelve = base[:2] + nine + check_digit(nine)
        if twelve not in registry:
            return twelve
    raise AssertionError("no foreign identity")


def _load(registry: Registry, path: Path) -> Plan:
    return load_plan(
        path, load_operations(CONTRACTS), registry, load_actors(CONTRACTS / "testdata" / "test-actors.json")
    )


def test_shipped_plan_is_valid_and_covers_the_release(registry: Registry) -> None:
    plan = _load(registry, SHIPPED)
    assert plan.release == "21.0" and plan.target_class == "production"
    assert plan.window_start < plan.window_end and plan.rate_per_second > 0
    assert {"prescriber", "pharmacy"} == {p.role for p in plan.participants.values()}
    assert all(p.contact for p in plan.participants.values())
    # Säker åtkomst 17.1: the release is verified over both entry points (the care system over Sjunet)
    assert {p.key: p.entry for p in plan.participants.values()} == {"region-care": "sjunet", "pharmacy": "internet"}
    assert {
        "KontrolleraArbetsplatskod",
        "HamtaPatientInfo",
        "SkapaOrdinationVard",
        "HamtaAktuellaOrdinationer",
        "HamtaExpeditionsId",
        "GodkannUttag",
        "RapporteraExpeditionLF",
        "UppdateraSamtycke",
        "HamtaLakemedelsforteckning",
        "MakuleraOrdinationVard",
    } <= plan.allowed_operations
    assert plan.allowed_operations == {s.operation for s in plan.steps}
    assert all(s.patient is None or s.patient in registry for s in plan.steps)
    rejected = [s for s in plan.steps if s.expect.kod == "MAKULERAD"]
    assert rejected and rejected[0].expect.status == 500 and rejected[0].operation == "GodkannUttag"
    assert plan_path("release-21.0", CONTRACTS) == SHIPPED


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (CREATE.replace("SkapaOrdinationVard", "SkapaOrdinationApotek"), "unknown operation 'SkapaOrdinationApotek'"),
        (CREATE.replace('participant = "care"', 'participant = "pharmacy"'), "allows roles prescriber, not"),
        (CREATE.replace('participant = "care"', 'participant = "region"'), "unknown participant 'region'"),
        (CREATE + CREATE, "step id 'S1' is used twice"),
        (CREATE.replace("expect = { status = 200 }", ""), "expect.status"),
        (
            """
[[steps]]
id = "S1"
participant = "pharmacy"
operation = "GodkannUttag"
body = { ordinationsId = "${S2.ordinationsId}", expeditionsId = "x", antalForpackningar = 1 }
expect = { status = 200 }
"""
            + CREATE.replace('"S1"', '"S2"'),
            "refers to step 'S2', which does not run before it",
        ),
        (
            CREATE
            + """
[[steps]]
id = "S2"
participant = "pharmacy"
operation = "GodkannUttag"
body = { ordinationsId = "${S9.ordinationsId}", expeditionsId = "x", antalForpackningar = 1 }
expect = { status = 200 }
""",
            "refers to an unknown step 'S9'",
        ),
        (
            """
[[steps]]
id = "S1"
participant = "pharmacy"
operation = "HamtaPatientInfo"
expect = { status = 200 }
""",
            "needs a patient",
        ),
        (CREATE.replace('patient = "191212121212"\n', ""), r"\$\{patient\} is used but the step names no patient"),
        (CREATE.replace("doseringstext", "dosering"), "dosering is not an element of SkapaOrdinationVard"),
        (CREATE.replace("[steps.body]", 'params = { personnummer = "x" }\n[steps.body]'), "its data goes in body"),
    ],
)
def test_bad_plan_is_one_user_error_naming_file_and_problem(
    registry: Registry, tmp_path: Path, steps: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(HEADER + steps)
    with pytest.raises(UserError, match=message) as refused:
        _load(registry, path)
    text = str(refused.value)
    assert str(path) in text and "\n" not in text


def test_patient_outside_registry_is_refused_and_masked(registry: Registry, tmp_path: Path) -> None:
    foreign = foreign_identity(registry)
    path = tmp_path / "foreign.toml"
    path.write_text(HEADER + CREATE.replace('patient = "191212121212"', f'patient = "{foreign}"'))
    with pytest.raises(UserError, match="is not in the test-patient registry") as refused:
        _load(registry, path)
    assert foreign not in str(refused.value)
    # hidden in the body instead of the patient field
    path.write_text(HEADER + CREATE.replace('personnummer = "${patient}"', f'personnummer = "{foreign}"'))
    with pytest.raises(UserError, match="is not a registered test patient") as refused:
        _load(registry, path)
    assert foreign not in str(refused.value)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (HEADER.replace("end = 2021-11-21T06:00:00+01:00", "end = 2021-11-19T06:00:00+01:00"), "window.end"),
        (HEADER.replace("start = 2021-11-20T22:00:00+01:00", "start = 2021-11-20T22:00:00"), "no UTC offset"),
        (HEADER.replace("requests_per_second = 2.0", "requests_per_second = 0"), "requests_per_second"),
        (HEADER.replace('contact = "A. Person, verification lead"', ""), "names no contact"),
        (HEADER.replace('actor = 0\ncontact = "B', 'actor = 99\ncontact = "B'), "actor 99"),
        (HEADER.replace('actor = 0\ncontact = "B', 'actor = 0\nentry = "moon"\ncontact = "B'),
         "participant 'pharmacy': entry 'moon' is not an entry point \\(internet, sjunet\\)"),
        (HEADER.replace('target_class = "production"', 'target_class = "staging"'), "target_class 'staging'"),
        (HEADER + "[oops", "not valid TOML"),
    ],
)
def test_bad_plan_settings(registry: Registry, tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(header + CREATE)
    with pytest.raises(UserError, match=message):
        _load(registry, path)


def test_references_resolve_to_earlier_results() -> None:
    results = {"S1": {"ordinationId": "o-1"}, "S3": {"expeditionsIdn": ["e-0", "e-1"]}}
    body = {
        "a": "${S1.ordinationId}",
        "b": ["${S3.expeditionsIdn[1]}"],
        "c": "x/${S1.ordinationId}/y",
        "p": "${patient}",
    }
    assert resolve(body, results, "191212121212") == {"a": "o-1", "b": ["e-1"], "c": "x/o-1/y", "p": "191212121212"}
    with pytest.raises(KeyError):
        resolve("${S3.expeditionsIdn[5]}", results, None)


def test_cli_bad_plan_is_exit_2_one_line(registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(HEADER + CREATE.replace("SkapaOrdinationVard", "Nope"))
    done = subprocess.run(
        [sys.executable, "-m", "rxverify", "verify", "--plan", str(path), "--dry-run"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "unknown operation 'Nope'" in done.stderr and str(path) in done.stderr
