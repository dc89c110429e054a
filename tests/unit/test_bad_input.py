"""Every mistake a user can type is one line naming the problem and exit code 2: a table of them all.

Every option of every `rxverify` command, every option the suite adds to pytest and every
option it adds to Locust (src/rxverify/load/runtime.py add_options), with a bad number (NaN,
infinities, negative, zero, not a number), an out-of-range port, an unknown name, an unreadable
file, a target that cannot be used. Each case runs the real command in a process of its own and
asserts exit code 2 and exactly one line of output, ours, naming the problem (no traceback,
no usage text). pytest prints such a line as `Exit: rxverify: ...` (its own form of a clean
exit with a code); the others as `rxverify: ...`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rxverify.pytest_plugin import pytest_addoption
from rxverify.reconcile import SNAPSHOT_KIND, SNAPSHOT_VERSION
from rxverify.target.local import known_faults

from .conftest import CONTRACTS, ROOT

CLOSED = "http://127.0.0.1:1"  # a loopback port nothing listens on
TIMEOUT_S = 120

RXVERIFY_CASES = [
    (["nosuch"], "invalid choice: 'nosuch'"),
    ([], "required: COMMAND"),
    (["--contracts", "/nosuch", "targets"], "no contracts found"),
    (["serve", "--port-old", "99999"], "argument --port-old: '99999' is not a port"),
    (["serve", "--port-new", "-1"], "argument --port-new: '-1' is not a port"),
    (["serve", "--port-old-secondary", "abc"], "argument --port-old-secondary: 'abc' is not a whole number"),
    (["serve", "--platform", "sideways"], "argument --platform: invalid choice: 'sideways'"),
    (["serve", "--fault", "no-such-fault"], "--fault: unknown fault 'no-such-fault'"),
    (["serve", "--data-dir", "{file}"], "--data-dir"),
    (["targets", "--targets-file", "/nosuch"], "cannot read targets file /nosuch"),
    (["targets", "--targets-file", "{badtoml}"], "is not valid TOML"),
    (["verify", "--plan", "no-such-plan"], "no-such-plan"),
    (["verify", "--plan", "release-21.0", "--target", "nosuch"], "unknown target 'nosuch'"),
    (["verify", "--plan", "release-21.0", "--targets-file", "/nosuch"], "cannot read targets file /nosuch"),
    (["verify", "--plan", "release-21.0", "--platform", "sideways"], "argument --platform: invalid choice"),
    (["verify", "--plan", "release-21.0", "--old-url", "ftp://x"], "--old-url: 'ftp://x' is not an http(s) base URL"),
    (["verify", "--plan", "release-21.0", "--new-url", "http://127.0.0.1:99999"], "has no valid port"),
    (["verify", "--plan", "release-21.0", "--fhir-url", "nope"], "--fhir-url: 'nope' is not an http(s) base URL"),
    (["verify", "--plan", "release-21.0", "--new-url", CLOSED], "has no tickets: give the platforms' ticket key"),
    (["verify", "--plan", "release-21.0", "--new-url", CLOSED, "--ticket-key-file", "/nosuch"],
     "cannot read ticket key /nosuch"),
    (["verify", "--plan", "release-21.0", "--new-url", CLOSED, "--ticket-key-file", "{key}", "--trust-dir", "/nosuch",
      "--reports", "{tmp}/r"], "--trust-dir /nosuch: no local trust domain there"),
    (["verify", "--plan", "release-21.0", "--new-url", CLOSED, "--ticket-key-file", "{key}", "--reports", "{tmp}/r"],
     f"platform unreachable: new at {CLOSED}/legacy"),
    (["verify", "--plan", "release-21.0", "--target", "at", "--targets-file", "{targets}", "--dry-run"],
     "which does not exist: import Skatteverket's published test numbers"),
    (["ledger", "--reports", "/nosuch"], "no reports folder /nosuch"),
    (["ledger", "--patient", "abc"], "argument --patient: is not a personal identity number"),
    (["ledger", "--patient", "191212121213"], "argument --patient: is not a personal identity number"),
    (["ledger", "--since", "yesterday"], "argument --since: 'yesterday' is not an ISO 8601 date or time"),
    (["ledger", "--reports", "{ledger}", "--run", "no-such-run"], "no writes of run 'no-such-run'"),
    (["report", "--results", "{empty}", "--reports", "{empty}"], "no Allure results"),
    (["report", "--target", "nosuch"], "unknown target 'nosuch'"),
    (["report", "--targets-file", "{badtoml}"], "is not valid TOML"),
    (["gate", "--today", "2021-13-01"], "argument --today: '2021-13-01' is not an ISO 8601 date"),
    (["gate", "--criteria", "/nosuch"], "cannot read release criteria /nosuch"),
    (["gate", "--reports", "{empty}"], "{empty}"),
    (["gate", "--reports", "{empty}", "--release-run", "release-x"], "no release run in"),
    (["loadmodel", "--scale", "nan"], "argument --scale: 'nan' is not a finite number"),
    (["loadmodel", "--scale", "inf"], "argument --scale: 'inf' is not a finite number"),
    (["loadmodel", "--scale", "-1"], "argument --scale: '-1' is not a number above 0"),
    (["loadmodel", "--scale", "0"], "argument --scale: '0' is not a number above 0"),
    (["loadmodel", "--scale", "abc"], "argument --scale: 'abc' is not a number"),
    (["loadmodel", "--model", "/nosuch"], "/nosuch"),
    (["registry", "import", "/nosuch"], "cannot read /nosuch"),
    (["registry", "import", "{nocolumn}"], "no 'testpersonnummer' column"),
    (["registry", "import", "{allbad}"], "refused 2 of 2 rows"),
    (["registry", "import", "{binary}"], "is not UTF-8 text"),
    (["registry", "import", "{good}", "--output", "{file}/registry.json"], "cannot write the registry"),
    (["registry"], "registry: the following arguments are required: COMMAND"),
    (["fhir", "validate", "/nosuch"], "cannot read /nosuch"),
    (["fhir", "validate", "{badtoml}"], "is not valid JSON"),
    (["fhir", "validate", "--profile", "http://nosuch.invalid/P", "{fhirfile}"],
     "no StructureDefinition http://nosuch.invalid/P"),
    (["fhir", "validate", "--package", "/nosuch", "{fhirfile}"], "no FHIR package at /nosuch"),
    (["power", "--seed", "abc"], "--seed 'abc': a seed is a positive whole number"),
    (["power", "--seed", "7,-1"], "--seed '-1': a seed is a positive whole number"),
    (["power", "--seeds", "0"], "argument --seeds: '0' is not a whole number of at least 1"),
    (["power", "--seeds", "2", "--seed", "7"], "give either --seeds K (fresh seeds) or --seed S"),
    (["power", "--workers", "0"], "argument --workers: '0' is not a whole number of at least 1"),
    (["power", "--workers", "nan"], "argument --workers: 'nan' is not a whole number"),
    (["power", "--matrix", "/nosuch"], "cannot read power matrix /nosuch"),
    (["power", "--fault", "no-such-fault"], "unknown fault(s) no-such-fault"),
    (["reconcile", "local", "--seed", "abc"], "argument --seed: invalid int value: 'abc'"),
    (["reconcile", "local", "--fault", "no-such-fault"], "no-such-fault"),
    (["reconcile", "local", "--data-dir", "{file}"], "--data-dir"),
    (["reconcile", "local", "--lanes", "sideways"], "--lanes 'sideways': legacy, fhir or legacy,fhir"),
    (["reconcile", "local", "--patients", "0"], "argument --patients: '0' is not a whole number of at least 1"),
    (["reconcile", "local", "--reports", "{file}"], "cannot use reports folder {file}"),
    (["reconcile", "snapshot", "--out"], "argument --out: expected one argument"),
    (["reconcile", "snapshot", "--out", "{tmp}/s.json", "--platform", "sideways"],
     "argument --platform: invalid choice: 'sideways'"),
    (["reconcile", "snapshot", "--out", "{tmp}/s.json", "--target", "nosuch"], "unknown target 'nosuch'"),
    (["reconcile", "snapshot", "--out", "{tmp}/s.json", "--targets", "/nosuch"], "cannot read targets file /nosuch"),
    (["reconcile", "snapshot", "--out", "{tmp}/s.json", "--old-url", CLOSED, "--plan", "no-such-plan"], "no-such-plan"),
    (["reconcile", "snapshot", "--out", "{tmp}/s.json", "--old-url", "ftp://x"],
     "--old-url: 'ftp://x' is not an http(s) base URL"),
    (["reconcile", "snapshot", "--out", "{tmp}/s.json", "--new-url", "http://127.0.0.1:99999"], "has no valid port"),
    (["reconcile", "snapshot", "--out", "{tmp}/s.json", "--fhir-url", "nope"],
     "--fhir-url: 'nope' is not an http(s) base URL"),
    (["reconcile", "snapshot", "--out", "{tmp}/s.json", "--old-url", CLOSED, "--ticket-key-file", "/nosuch"],
     "cannot read ticket key /nosuch"),
    (["reconcile", "snapshot", "--out", "{tmp}/s.json", "--old-url", CLOSED, "--ticket-key-file", "{key}",
      "--trust-dir", "/nosuch", "--reports", "{tmp}/r"], "--trust-dir /nosuch: no local trust domain there"),
    (["reconcile", "snapshot", "--out", "{tmp}/s.json", "--reports", "{file}"], "cannot use reports folder {file}"),
    (["reconcile", "compare", "--baseline"], "argument --baseline: expected one argument"),
    (["reconcile", "compare", "--baseline", "/nosuch", "--new-url", CLOSED], "/nosuch"),
    (["reconcile", "compare", "--baseline", "/nosuch", "--lanes", "sideways"], "--lanes 'sideways'"),
    (["reconcile", "compare", "--baseline", "/nosuch", "--platform", "sideways"],
     "argument --platform: invalid choice: 'sideways'"),
    (["reconcile", "compare", "--baseline", "/nosuch", "--target", "nosuch"], "unknown target 'nosuch'"),
    (["reconcile", "compare", "--baseline", "/nosuch", "--targets", "/nosuch"], "cannot read targets file /nosuch"),
    (["reconcile", "compare", "--baseline", "/nosuch", "--new-url", CLOSED, "--plan", "no-such-plan"], "no-such-plan"),
    (["reconcile", "compare", "--baseline", "/nosuch", "--old-url", "ftp://x"],
     "--old-url: 'ftp://x' is not an http(s) base URL"),
    (["reconcile", "compare", "--baseline", "/nosuch", "--new-url", "http://127.0.0.1:99999"], "has no valid port"),
    (["reconcile", "compare", "--baseline", "/nosuch", "--fhir-url", "nope"],
     "--fhir-url: 'nope' is not an http(s) base URL"),
    (["reconcile", "compare", "--baseline", "/nosuch", "--reports", "{file}"], "cannot use reports folder {file}"),
    (["reconcile", "compare", "--baseline", "{baseline}", "--new-url", CLOSED, "--ticket-key-file", "/nosuch"],
     "cannot read ticket key /nosuch"),
    (["reconcile", "compare", "--baseline", "{baseline}", "--new-url", CLOSED, "--ticket-key-file", "{key}",
      "--trust-dir", "/nosuch", "--reports", "{tmp}/r"], "--trust-dir /nosuch: no local trust domain there"),
    (["rehearse", "--plan", "no-such-plan"], "no-such-plan"),
    (["rehearse", "--plan", "release-21.0", "--fault", "no-such-fault"], "no-such-fault"),
    (["rehearse", "--plan", "release-21.0", "--seed", "abc"], "argument --seed: invalid int value: 'abc'"),
    (["rehearse", "--plan", "release-21.0", "--patients", "0"],
     "argument --patients: '0' is not a whole number of at least 1"),
    (["rehearse", "--plan", "release-21.0", "--reports", "{file}"], "cannot use reports folder {file}"),
    (["watch", "--plan", "no-such-plan"], "no-such-plan"),
    (["watch", "--plan", "release-21.0", "--every", "sometimes"], "sometimes"),
    (["watch", "--plan", "release-21.0", "--rounds", "0"],
     "argument --rounds: '0' is not a whole number of at least 1"),
    (["watch", "--plan", "release-21.0", "--until", "soon"], "--until 'soon' is not an ISO 8601 time"),
    (["watch", "--plan", "release-21.0", "--max-latency-ms", "nan"],
     "argument --max-latency-ms: 'nan' is not a finite"),
    (["watch", "--plan", "release-21.0", "--platform", "sideways"], "argument --platform: invalid choice: 'sideways'"),
    (["watch", "--plan", "release-21.0", "--fault", "no-such-fault"], "no-such-fault"),
    (["watch", "--plan", "release-21.0", "--target", "nosuch"], "unknown target 'nosuch'"),
    (["watch", "--plan", "release-21.0", "--targets", "/nosuch"], "cannot read targets file /nosuch"),
    (["watch", "--plan", "release-21.0", "--old-url", "ftp://x"], "--old-url: 'ftp://x' is not an http(s) base URL"),
    (["watch", "--plan", "release-21.0", "--new-url", "http://127.0.0.1:99999"], "has no valid port"),
    (["watch", "--plan", "release-21.0", "--fhir-url", "nope"], "--fhir-url: 'nope' is not an http(s) base URL"),
    (["watch", "--plan", "release-21.0", "--new-url", CLOSED, "--ticket-key-file", "/nosuch"],
     "cannot read ticket key /nosuch"),
    (["watch", "--plan", "release-21.0", "--new-url", CLOSED, "--ticket-key-file", "{key}", "--trust-dir", "/nosuch",
      "--reports", "{tmp}/r"], "--trust-dir /nosuch: no local trust domain there"),
    (["watch", "--plan", "release-21.0", "--reports", "{file}"], "cannot use reports folder {file}"),
    (["fhir", "snapshot", "--folder", "/nosuch"], "/nosuch"),
    (["contracts", "openapi", "--output", "{file}/legacy.yaml"], "{file}/legacy.yaml"),
]

PYTEST_CASES = [
    (["--examples", "-5"], "--examples: '-5' is not a whole number of at least 1"),
    (["--examples", "0"], "--examples: '0' is not a whole number of at least 1"),
    (["--examples", "abc"], "--examples: 'abc' is not a whole number"),
    (["--examples", "nan"], "--examples: 'nan' is not a whole number"),
    (["--seed", "abc"], "--seed: 'abc' is not a whole number"),
    (["--seed", "-3"], "--seed: '-3' is not a seed"),
    (["--platform", "sideways"], "--platform: 'sideways' is not one of old, new, both"),
    (["--fault", "no-such-fault"], "--fault: unknown fault 'no-such-fault'"),
    (["--target", "nosuch"], "unknown target 'nosuch'"),
    (["--targets-file", "/nosuch"], "cannot read targets file /nosuch"),
    (["--contracts", "/nosuch"], "no contracts found"),
    (["--target", "production"], "is class production: the contract suite never runs against production"),
    (["--target", "at", "--targets-file", "{targets}"], "which does not exist: import Skatteverket's"),
    (["--old-url", "ftp://x"], "--old-url: 'ftp://x' is not an http(s) base URL"),
    (["--new-url", "http://127.0.0.1:99999"], "--new-url: 'http://127.0.0.1:99999' has no valid port"),
    (["--fhir-url", "nope"], "--fhir-url: 'nope' is not an http(s) base URL"),
    (["--old-secondary-url", "http://127.0.0.1:2"], "--old-secondary-url is a second old instance"),
    (["--old-url", CLOSED, "--platform", "old"], "has no tickets: give the platforms' ticket key"),
    (["--old-url", CLOSED, "--platform", "old", "--ticket-key-file", "/nosuch"], "cannot read ticket key /nosuch"),
    (["--old-url", CLOSED, "--ticket-key-file", "{key}"], "has no new platform: choose --platform old"),
    (["--old-url", CLOSED, "--platform", "old", "--ticket-key-file", "{key}", "--trust-dir", "/nosuch"],
     "--trust-dir /nosuch: no local trust domain there"),
    (["--plain-http", "--examples", "0"], "--examples: '0' is not a whole number of at least 1"),
    (["--old-url", CLOSED, "--platform", "old", "--ticket-key-file", "{key}"],
     f"platform unreachable: old at {CLOSED}/legacy"),
    (["--old-url", CLOSED, "--platform", "old", "--ticket-key-file", "{key}", "--fault", "{fault}"],
     "--fault applies to the embedded platforms only"),
]

LOCUST_CASES = [
    (["--target", "nosuch"], "unknown target 'nosuch'"),
    (["--targets-file", "/nosuch"], "cannot read targets file /nosuch"),
    (["--contracts", "/nosuch"], "no contracts found"),
    (["--target", "production"], "is class production: the load suite never runs against production"),
    (["--platform", "sideways"], "--platform: 'sideways' is not one of old, new, fhir"),
    (["--arrival", "sideways"], "--arrival: 'sideways' is not one of open, closed"),
    (["--shape", "weekend"], "unknown load profile 'weekend'"),
    (["--scale", "nan"], "--scale: 'nan' is not a finite number"),
    (["--scale", "inf"], "--scale: 'inf' is not a finite number"),
    (["--scale", "0"], "--scale: '0' is not a number above 0"),
    (["--scale", "-1"], "--scale: '-1' is not a number above 0"),
    (["--scale", "abc"], "--scale: 'abc' is not a number"),
    (["--duration", "-1"], "--duration: '-1' is not a number of at least 0"),
    (["--duration", "nan"], "--duration: 'nan' is not a finite number"),
    (["--step-seconds", "0"], "--step-seconds: '0' is not a number above 0"),
    (["--max-steps", "0"], "--max-steps: '0' is not a whole number of at least 1"),
    (["--max-steps", "abc"], "--max-steps: 'abc' is not a whole number"),
    (["--seed-patients", "0"], "--seed-patients: '0' is not a whole number of at least 1"),
    (["--seed-patients", "2.5"], "--seed-patients: '2.5' is not a whole number"),
    (["--think-scale=-inf"], "--think-scale: '-inf' is not a finite number"),  # `=`: else -inf reads as an option
    (["--think-scale", "nan"], "--think-scale: 'nan' is not a finite number"),
    (["--seed", "abc"], "--seed: 'abc' is not a whole number"),
    (["--seed=-2"], "--seed: '-2' is not a seed"),
    (["--max-vus", "-1"], "--max-vus: '-1' is not a whole number of at least 0"),
    (["--max-vus", "many"], "--max-vus: 'many' is not a whole number"),
    (["--warm-up", "nan"], "--warm-up: 'nan' is not a finite number"),
    (["--warm-up=-1"], "--warm-up: '-1' is not a number of at least 0"),
    (["--start-timeout", "nan"], "--start-timeout: 'nan' is not a finite number"),
    (["--start-timeout=-1"], "--start-timeout: '-1' is not a number of at least 0"),
    (["--progress-seconds", "inf"], "--progress-seconds: 'inf' is not a finite number"),
    (["--model", "/nosuch"], "/nosuch"),
    (["--slo", "/nosuch"], "/nosuch"),
    (["--fault", "no-such-fault"], "--fault: unknown fault 'no-such-fault'"),
    (["--old-url", "ftp://x"], "--old-url: 'ftp://x' is not an http(s) base URL"),
    (["--new-url", "http://127.0.0.1:70000"], "has no valid port"),
    (["--fhir-url", "nope"], "--fhir-url: 'nope' is not an http(s) base URL"),
    (["--platform", "old", "--old-url", CLOSED], "has no tickets: give the platforms' ticket key"),
    (["--platform", "old", "--old-url", CLOSED, "--ticket-key-file", "/nosuch"], "cannot read ticket key /nosuch"),
    (["--platform", "old", "--old-url", CLOSED, "--ticket-key-file", "{key}", "--trust-dir", "/nosuch"],
     "--trust-dir /nosuch: no local trust domain there"),
    (["--plain-http", "--fault", "no-such-fault"], "--fault: unknown fault 'no-such-fault'"),
    (["--old-url", CLOSED, "--ticket-key-file", "{key}"], "target 'adhoc' has no new platform"),
    (["--platform", "old", "--old-url", CLOSED, "--ticket-key-file", "{key}"],
     f"platform unreachable: old at {CLOSED}/legacy"),
    (["--target", "at", "--targets-file", "{targets}"], "which does not exist: import Skatteverket's"),
    (["--old-url", CLOSED, "--platform", "old", "--ticket-key-file", "{key}", "--fault", "{fault}"],
     "--fault applies to the embedded platforms only"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The files the cases name: a key, a malformed TOML file, a published list without its column, ..."""
    tmp = tmp_path_factory.mktemp("bad-input")
    (tmp / "ticket.key").write_text("k" * 64, encoding="utf-8")
    (tmp / "bad.toml").write_text("[x\n", encoding="utf-8")
    (tmp / "a-file").write_text("not a folder\n", encoding="utf-8")
    (tmp / "targets.toml").write_text(
        f'[at]\nclass = "test"\nregistry = "{tmp / "not-imported.json"}"\n'
        '[at.old]\nlegacy = "http://127.0.0.1:1/legacy"\n[at.new]\nlegacy = "http://127.0.0.1:1/legacy"\n'
        '[at.tickets]\nprescriber = "RXVERIFY_UNSET_A"\npharmacy = "RXVERIFY_UNSET_B"\n',
        encoding="utf-8",
    )
    (tmp / "no-column.csv").write_text("nummer\n1\n", encoding="utf-8")
    first = json.loads((CONTRACTS / "testdata" / "test-patients.json").read_text(encoding="utf-8"))["patients"][0]
    spoiled = first["id"][:11] + str((int(first["id"][11]) + 1) % 10)  # a wrong check digit: never an identity
    (tmp / "all-bad.csv").write_text(f"testpersonnummer\n12345\n{spoiled}\n", encoding="utf-8")
    (tmp / "good.csv").write_text(f"testpersonnummer\n{first['id']}\n", encoding="utf-8")
    (tmp / "binary.csv").write_bytes(b"\xff\xfe\x00\x01")
    (tmp / "empty").mkdir()
    ledger = tmp / "reports-with-ledger" / "ledger"
    ledger.mkdir(parents=True)
    (ledger / "ledger-1.jsonl").write_text(
        json.dumps({"time": "2021-11-20T21:00:00.000Z", "run": "contract-1", "runKind": "contract", "seq": 1,
                    "kind": "attempt", "method": "POST", "path": "/x", "patients": []}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    baseline = {"kind": SNAPSHOT_KIND, "version": SNAPSHOT_VERSION, "patients": {}}
    (tmp / "baseline.json").write_text(json.dumps(baseline), encoding="utf-8")
    fhir = sorted((CONTRACTS / "fhir" / "examples").glob("Consent-*.json"))[0]
    return {
        "tmp": str(tmp), "key": str(tmp / "ticket.key"), "badtoml": str(tmp / "bad.toml"),
        "file": str(tmp / "a-file"), "targets": str(tmp / "targets.toml"), "nocolumn": str(tmp / "no-column.csv"),
        "allbad": str(tmp / "all-bad.csv"), "good": str(tmp / "good.csv"), "binary": str(tmp / "binary.csv"),
        "empty": str(tmp / "empty"), "ledger": str(tmp / "reports-with-ledger"), "fhirfile": str(fhir),
        "baseline": str(tmp / "baseline.json"),
        "fault": next(name for name, platform in sorted(known_faults().items()) if platform == "old"),
    }  # fmt: skip


def _env(files: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RXVERIFY_")}
    return env | {"RXVERIFY_RUNTIME_DIR": f"{files['tmp']}/runtime", "RXVERIFY_REPORTS": f"{files['tmp']}/reports"}


def _one_line(done: subprocess.CompletedProcess[str], prefix: str, fragment: str) -> None:
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    shown = "\n".join(lines[-30:])
    assert done.returncode == 2, f"exit {done.returncode}, not 2:\n{shown}"
    assert len(lines) == 1, f"{len(lines)} lines, not one:\n{shown}"
    assert lines[0].startswith(prefix), lines[0]
    assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


@pytest.mark.parametrize(("args", "fragment"), RXVERIFY_CASES, ids=[" ".join(a) or "-" for a, _ in RXVERIFY_CASES])
def test_rxverify_mistake_is_one_line_exit_2(files: dict[str, str], args: list[str], fragment: str) -> None:
    argv = [a.format(**files) for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "rxverify", *argv], cwd=ROOT, env=_env(files), capture_output=True, text=True,
        timeout=TIMEOUT_S,
    )  # fmt: skip
    _one_line(done, "rxverify: ", fragment.format(**files))


@pytest.mark.parametrize(("args", "fragment"), PYTEST_CASES, ids=[" ".join(a) for a, _ in PYTEST_CASES])
def test_suite_option_mistake_is_one_line_exit_2(files: dict[str, str], args: list[str], fragment: str) -> None:
    argv = [a.format(**files) for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/contract/test_last_withdrawal.py", "-p", "no:cacheprovider", *argv],
        cwd=ROOT, env=_env(files), capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    _one_line(done, "Exit: rxverify: ", fragment)


@pytest.mark.parametrize(("args", "fragment"), LOCUST_CASES, ids=[" ".join(a) for a, _ in LOCUST_CASES])
def test_load_option_mistake_is_one_line_exit_2(files: dict[str, str], args: list[str], fragment: str) -> None:
    argv = [a.format(**files) for a in args]
    reports = Path(files["tmp"]) / "load-reports"
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless", "--config",
         "loadtests/profiles/smoke.conf", "--reports", str(reports), "--csv", str(reports / "load" / "smoke"), *argv],
        cwd=ROOT, env=_env(files), capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    _one_line(done, "rxverify: ", fragment)


def _walk(parser: argparse.ArgumentParser, args: list[str]) -> tuple[str, set[str]]:
    """The subcommand `args` name (`registry import`) and the options they use."""
    path = []
    for word in args:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if subs and word in subs[0].choices:
            path.append(word)
            parser = subs[0].choices[word]
    return " ".join(path), {a for a in args if a.startswith("--")}


def _declared(parser: argparse.ArgumentParser, path: str = "") -> set[str]:
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= _declared(sub, f"{path} {name}".strip())
        elif action.help != argparse.SUPPRESS and action.option_strings and "-h" not in action.option_strings:
            found.add(f"{path} {action.option_strings[0]}".strip())
    return found


# options that only choose where output goes or what to do, not a value a user can get wrong
CHOICES_ONLY = {"verify --dry-run", "verify --production", "verify --reports", "report --no-probe", "report --output",
                "report --tools", "report --reports", "gate --results", "power --reports",
                "power --corpus", "fhir snapshot --check", "contracts openapi --check",
                "serve --plain-http", "verify --plain-http", "watch --plain-http"}  # fmt: skip


def test_every_option_of_every_command_has_a_case() -> None:
    """The tables cover every option of rxverify, of the pytest plugin and of the Locust runtime."""
    from rxverify.cli import _parser

    parser = _parser()
    covered = set()
    for args, _ in RXVERIFY_CASES:
        command, used = _walk(parser, args)
        covered |= {f"{'' if o == '--contracts' else command} {o}".strip() for o in used}
    missing = sorted(_declared(parser) - covered - CHOICES_ONLY)
    assert not missing, f"no bad-input case for rxverify {missing}"

    declared: set[str] = set()

    class Group:
        def addoption(self, name: str, **_: object) -> None:
            declared.add(name)

    class Options:
        def getgroup(self, *_: object) -> Group:
            return Group()

    pytest_addoption(Options())  # type: ignore[arg-type]
    used = {w for a, _ in PYTEST_CASES for w in a if w.startswith("--")}
    assert declared <= used, f"no bad-input case for the suite's {sorted(declared - used)}"

    # in a process of its own, Locust first: importing it monkey-patches the standard library
    listing = (
        "import locust, argparse; from rxverify.load.runtime import add_options; p = argparse.ArgumentParser(); "
        "add_options(p); print(' '.join(a.option_strings[0] for a in p._actions "
        "if a.option_strings and a.help != argparse.SUPPRESS))"
    )
    done = subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True, timeout=60, check=True)
    declared = set(done.stdout.split())
    used = {w.split("=")[0] for a, _ in LOCUST_CASES for w in a if w.startswith("--")}
    missing = sorted(declared - used - {"-h", "--reports"})
    assert not missing, f"no bad-input case for the load tests' {missing}"
