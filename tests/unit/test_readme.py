"""Every command in the README works as written, from a copy of the repository (a fresh clone's files).

Each shell line of the README's ```bash blocks is checked by what its program is:

- cheap commands run for real, as written, in the copy (`rxverify targets`, `registry import`,
  `verify --dry-run`, the local rehearsal, `ledger`, `loadmodel`, `python -m refplatform
  --list-faults`, `python3 -m venv`), and `rxverify serve` runs until it prints the suite's
  command, then gets SIGTERM;
- long runs are checked without running them: the contract suite through `pytest ... --help`
  (every option of ours is checked and the target resolved, with its registry, in
  pytest_configure; nothing is collected or sent), the load tests through `locust ... --list`
  (our options are checked as soon as Locust has parsed them), `rxverify power|report|gate`
  by the command's own parser (and `--fault` names against the catalogue);
- `tox -e ENV -- ARGS` is each environment's command from tox.ini with ARGS, checked as above;
- `pip install` by pip's own `install --help`, the extra it names and what this very install put
  on the PATH (the virtual environment running these tests was made by that command).

A line whose program has no checker fails the test: a new command needs one. The one thing
the README asks the user to fetch, Skatteverket's list as testpersonnummer.csv, is made here
from the synthetic registry's numbers relabelled (never a number outside contracts/testdata).
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from rxverify.cli import _parser
from rxverify.target.local import known_faults

from .conftest import CONTRACTS, ROOT

README = ROOT / "README.md"
BIN = Path(sys.executable).parent  # the virtual environment the README's set-up made
RUN_TIMEOUT_S = 240  # the longest command run for real here: the rehearsal on the embedded platforms
BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)


def shell_lines(text: str) -> list[str]:
    """The command lines of every ```bash block (continuations joined, comments dropped)."""
    lines = []
    for block in BLOCK.findall(text):
        joined = block.replace("\\\n", " ")
        lines += [line.strip() for line in joined.splitlines() if shlex.split(line, comments=True)]
    return lines


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's files as a clone has them (tracked and not ignored), plus the list the README downloads."""
    where = tmp_path_factory.mktemp("clone") / "rxverify"
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (where / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, where / name)
    registry = json.loads((CONTRACTS / "testdata" / "test-patients.json").read_text(encoding="utf-8"))
    rows = ["testpersonnummer", *(p["id"] for p in registry["patients"])]
    (where / "testpersonnummer.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return where


def _env(clone: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RXVERIFY_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["RXVERIFY_RUNTIME_DIR"] = str(clone.parent / "runtime")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(argv: list[str], clone: Path, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=clone, env=_env(clone), capture_output=True, text=True, timeout=timeout)
    shown = f"{done.stdout[-1500:]}{done.stderr[-1500:]}"
    assert done.returncode == 0, f"{shlex.join(argv)}: exit {done.returncode}\n{shown}"
    return done


def _serve(argv: list[str], clone: Path) -> None:
    """`rxverify serve` as written: it prints the platforms and the suite's command, then stops on SIGTERM."""
    proc = subprocess.Popen(argv, cwd=clone, env=_env(clone), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("Ctrl-C"):
                break
        assert any("tox -e contract --" in line for line in seen), "".join(seen) + proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0, f"{shlex.join(argv)} ended with {proc.returncode} on SIGTERM"


def _pytest(args: list[str], clone: Path) -> None:
    """The contract suite's options and target checked (pytest_configure), without collecting or sending."""
    for arg in args:
        if arg.startswith("tests/"):
            assert (clone / arg.split("::")[0]).exists(), f"pytest {arg}: no such path in the clone"
    _run([str(BIN / "python"), "-m", "pytest", *args, "--help"], clone)


def _locust(args: list[str], clone: Path) -> None:
    """Locust's and our options checked as soon as they are parsed (`--list` then exits before anything runs)."""
    _run([str(BIN / "locust"), *args, "--list"], clone)


def _rxverify(args: list[str], clone: Path) -> None:
    if args and args[0] == "serve":
        _serve([str(BIN / "rxverify"), *args], clone)
        return
    if args and args[0] in ("power", "report", "gate"):  # minutes of work, or Java: checked by the parser
        try:
            parsed = _parser().parse_args(args)
        except SystemExit as exc:
            raise AssertionError(f"rxverify {shlex.join(args)}: its options do not parse") from exc
        unknown = sorted(set(getattr(parsed, "fault", None) or []) - set(known_faults()))
        assert not unknown, f"rxverify {shlex.join(args)}: unknown fault {unknown}"
        return
    _run([str(BIN / "rxverify"), *args], clone)


def _tox(args: list[str], clone: Path) -> None:
    """Each named environment's commands from tox.ini, with the arguments after `--`, checked as their program."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(clone / "tox.ini")
    posargs = args[args.index("--") + 1 :] if "--" in args else []
    options = args[: args.index("--")] if "--" in args else args
    if "-e" in options:
        envs = options[options.index("-e") + 1].split(",")
    else:
        envs = [e.strip() for e in config["tox"]["env_list"].split(",")]
    for env in envs:
        assert config.has_section(f"testenv:{env}"), f"tox -e {env}: no such environment in tox.ini"
        for line in config[f"testenv:{env}"]["commands"].strip().splitlines():
            words = shlex.split(line.replace("{posargs}", shlex.join(posargs)))
            check(words, clone)


def _python(args: list[str], clone: Path) -> None:
    if args[:2] == ["-m", "venv"]:
        _run([sys.executable, "-m", "venv", *args[2:]], clone)
    elif args[:2] == ["-m", "pip"] and args[2:3] == ["install"]:
        _pip_install(args[3:], clone)
    elif args[:2] == ["-m", "refplatform"]:
        _run([str(BIN / "python"), *args], clone)
    else:
        raise AssertionError(f"python {shlex.join(args)}: no checker for this command")


def _pip_install(args: list[str], clone: Path) -> None:
    """`pip install -e '.[dev]'`: pip takes the options, the extra exists, and the install gives the README's tools."""
    _run([str(BIN / "python"), "-m", "pip", "install", "--help"], clone)
    assert args[0] == "-e", args
    extras = re.fullmatch(r"\.\[(.*)\]", args[1])
    assert extras is not None, f"pip install -e {args[1]}: not this project"
    declared = tomllib.loads((clone / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras.group(1).split(",")) <= set(declared), f"unknown extra in {args[1]}"
    for tool in ("rxverify", "pytest", "locust", "tox"):
        assert (BIN / tool).is_file(), f"the set-up's install does not put {tool} on the PATH"


def _source(args: list[str], clone: Path) -> None:
    assert (clone / args[0]).is_file(), f". {args[0]}: nothing to source after the steps before it"


def _exists(args: list[str], clone: Path, tool: str = "") -> None:
    assert shutil.which(tool, path=str(BIN)) or shutil.which(tool), f"{tool}: not installed"


CHECKERS: dict[str, Callable[[list[str], Path], None]] = {
    "rxverify": _rxverify,
    "tox": _tox,
    "pytest": _pytest,
    "locust": _locust,
    "python": _python,
    "python3": _python,
    ".": _source,
    "source": _source,
    "ruff": lambda args, clone: _exists(args, clone, "ruff"),
    "mypy": lambda args, clone: _exists(args, clone, "mypy"),
}


def check(words: list[str], clone: Path) -> None:
    """Check one command line by its program."""
    checker = CHECKERS.get(words[0])
    assert checker is not None, f"{shlex.join(words)}: no checker for {words[0]!r} in tests/unit/test_readme.py"
    checker(words[1:], clone)


def test_every_readme_command_works_as_written(clone: Path) -> None:
    """Every shell line of the README, in order (a later line may need what an earlier one made)."""
    lines = shell_lines(README.read_text(encoding="utf-8"))
    assert len(lines) > 20, "the README's shell blocks were not found"
    for line in lines:
        check(shlex.split(line, comments=True), clone)
    assert (clone / "contracts" / "testdata" / "skatteverket-testpersonnummer.json").is_file()


def test_readme_table_lists_every_contract_test_file() -> None:
    text = README.read_text(encoding="utf-8")
    files = sorted(p.stem for p in (ROOT / "tests" / "contract").glob("test_*.py"))
    missing = [name for name in files if f"| `{name}` |" not in text]
    assert not missing, f"the README's test table misses {missing}"


def test_a_command_without_a_checker_fails() -> None:
    with pytest.raises(AssertionError, match="no checker"):
        check(["curl", "https://example.invalid"], ROOT)


def test_a_wrong_option_in_a_readme_line_fails(clone: Path) -> None:
    """The checks can fail: a mistyped option of the suite, of Locust or of rxverify is caught."""
    for words in (
        ["tox", "-e", "contract", "--", "--examples", "0"],
        ["tox", "-e", "load", "--", "--scale", "nan"],
        ["rxverify", "loadmodel", "--scale", "-1"],
        ["rxverify", "power", "--fault", "no-such-fault"],
        ["tox", "-e", "nosuch"],
    ):
        with pytest.raises(AssertionError):
            check(words, clone)
