"""contracts/release-criteria.toml read and checked: what Go means, as data."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rxverify.errors import UserError

STATUSES = ("passed", "failed", "broken", "skipped")
_WILDCARD = re.compile(r"[*?\[\]]")


@dataclass(frozen=True)
class DifferenceException:
    """An accepted old/new difference: which test, optionally which message, and why."""

    test: str
    reason: str
    message: str | None = None

    def covers(self, full_name: str, name: str, text: str) -> bool:
        """Whether a difference of test `full_name`/`name` with failure `text` is this exception."""
        named = fnmatch.fnmatchcase(full_name, self.test) or fnmatch.fnmatchcase(name, self.test)
        return named and (self.message is None or re.search(self.message, text) is not None)


@dataclass(frozen=True)
class KnownIssue:
    """A known failure of exactly one test (its test id or history id) or one SLO, ignored until it expires."""

    id: str
    owner: str
    expires: date
    reason: str
    test: str | None = None
    history: str | None = None
    slo: str | None = None

    def active(self, today: date) -> bool:
        """Ignored through the day before `expires`; from that day on it counts again."""
        return today < self.expires

    def covers_test(self, test_id: str, history_id: str) -> bool:
        """Whether the issue names this test: its exact test id or history id, never a pattern."""
        return (self.test is not None and self.test == test_id) or (
            self.history is not None and self.history == history_id
        )

    def covers_slo(self, slo: str) -> bool:
        """Whether the issue names this SLO (its exact name)."""
        return self.slo is not None and self.slo == slo

    @property
    def names(self) -> str:
        """What the issue names, for messages."""
        if self.test is not None:
            return f"test {self.test}"
        return f"historyId {self.history}" if self.history is not None else f"SLO {self.slo}"


@dataclass(frozen=True)
class AllowedSkip:
    """A test the board accepts as skipped (its exact test id), and why."""

    test: str
    reason: str


@dataclass(frozen=True)
class Criteria:
    """The release criteria."""

    path: Path
    release: str
    blocking_statuses: tuple[str, ...]
    minimum_tests: dict[str, int]
    minimum_tests_in_production: dict[str, int]
    difference_story: str
    difference_exceptions: tuple[DifferenceException, ...]
    require_load_summary: bool
    require_verification_summary: bool
    max_refusals: int
    require_run_records: bool
    # suites whose refusals are of generated (fuzzing) data: reported, not counted against max_refusals
    fuzzing_suites: tuple[str, ...] = ()
    known_issues: tuple[KnownIssue, ...] = field(default_factory=tuple)
    allowed_skips: tuple[AllowedSkip, ...] = ()
    # test-id prefixes that must have run (not skipped, not left out) when the runs targeted old and new
    required_when_both_platforms: tuple[str, ...] = ()
    whole_suite: bool = True  # a contract run that ran a selection of its suite verified only part of it
    max_refused_per_operation: int = 0  # generated cases the guard refused, per operation and run
    max_age_hours: float = 24.0  # evidence older than this is refused (exit 2)
    known_issue_max_days: int = 90  # a known issue expires at most this many days after the run


class _Reader:
    """Typed access to the TOML document, every error naming the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> UserError:
        return UserError(f"release criteria {self.path}: {key} {problem}")

    def table(self, doc: dict[str, Any], key: str) -> dict[str, Any]:
        value = doc.get(key)
        if not isinstance(value, dict):
            raise self.fail(f"[{key}]", "is missing or not a table")
        return value

    def value(self, doc: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
        if key not in doc:
            raise self.fail(f"{where}{key}", "is missing")
        value = doc[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(f"{where}{key}", f"has the wrong type ({type(value).__name__})")
        return value

    def strings(self, doc: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
        values = self.value(doc, key, list, where)
        if not all(isinstance(v, str) for v in values):
            raise self.fail(f"{where}{key}", "must be a list of strings")
        return tuple(values)

    def minimums(self, doc: dict[str, Any], key: str) -> dict[str, int]:
        table = self.table(doc, key)
        for area, least in table.items():
            if not isinstance(least, int) or isinstance(least, bool) or least < 0:
                raise self.fail(f"[{key}] {area!r}", "must be a whole number of tests, 0 or more")
        return dict(table)

    def regex(self, text: str, where: str) -> str:
        try:
            re.compile(text)
        except re.error as exc:
            raise self.fail(where, f"is not a regular expression ({exc})") from None
        return text


def _day(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


def load_criteria(path: Path) -> Criteria:
    """Read and check the criteria file; anything malformed is one UserError line (exit 2)."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read release criteria {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"release criteria {path} is not valid TOML: {exc}") from None
    r = _Reader(path)
    tests = r.table(doc, "tests")
    if "blocking_severities" in tests:
        raise r.fail(
            "[tests] blocking_severities",
            "is no longer a criterion: a failed or broken test of any severity is a NO-GO unless a known issue "
            "names it",
        )
    statuses = r.strings(tests, "blocking_statuses", "[tests] ")
    if unknown := [s for s in statuses if s not in STATUSES]:
        raise r.fail("[tests] blocking_statuses", f"names unknown Allure statuses: {', '.join(unknown)}")
    differences = r.table(doc, "differences")
    exceptions = []
    for i, item in enumerate(r.value(differences, "exceptions", list, "[differences] ")):
        where = f"[differences] exceptions[{i}] "
        if not isinstance(item, dict):
            raise r.fail(where.strip(), "must be a table")
        message = item.get("message")
        exceptions.append(
            DifferenceException(
                test=r.value(item, "test", str, where),
                reason=r.value(item, "reason", str, where),
                message=r.regex(message, f"{where}message") if isinstance(message, str) else None,
            )
        )
    slos = r.table(doc, "slos")
    verification = r.table(doc, "verification")
    safety = r.table(doc, "safety")
    issues = []
    listed = doc.get("known_issues", [])
    if not isinstance(listed, list):
        raise r.fail("[[known_issues]]", "must be an array of tables")
    for i, item in enumerate(listed):
        where = f"[[known_issues]] #{i + 1} "
        if not isinstance(item, dict):
            raise r.fail(where.strip(), "must be a table")
        names = {key: r.value(item, key, str, where) for key in ("test", "history", "slo") if key in item}
        if len(names) != 1:
            raise r.fail(where.strip(), "needs exactly one of `test` (a test id), `history` (a historyId), `slo`")
        [(key, named)] = names.items()
        if _WILDCARD.search(named) or not named.strip():
            raise r.fail(
                f"{where}{key}", f"{named!r} is a pattern: a known issue names one test, exactly (no *, ?, [ ])"
            )
        issue = KnownIssue(
            id=r.value(item, "id", str, where),
            owner=r.value(item, "owner", str, where),
            expires=_day(r.value(item, "expires", date, where)),
            reason=r.value(item, "reason", str, where),
            **{key: named},
        )
        for attribute in ("id", "owner", "reason"):
            if not getattr(issue, attribute).strip():
                raise r.fail(f"{where}{attribute}", f"is empty: every known issue needs an {attribute}")
        issues.append(issue)
    max_refusals = r.value(safety, "max_refusals", int, "[safety] ")
    if max_refusals < 0:
        raise r.fail("[safety] max_refusals", "must be 0 or more")
    skips = []
    for i, item in enumerate(r.value(r.table(doc, "skips"), "allowed", list, "[skips] ")):
        where = f"[skips] allowed[{i}] "
        if not isinstance(item, dict):
            raise r.fail(where.strip(), "must be a table")
        skip = AllowedSkip(test=r.value(item, "test", str, where), reason=r.value(item, "reason", str, where))
        if _WILDCARD.search(skip.test) or not skip.reason.strip():
            raise r.fail(where.strip(), "names one test exactly (no *, ?, [ ]) and gives a reason")
        skips.append(skip)
    both = r.strings(r.table(doc, "required_when_both_platforms"), "tests", "[required_when_both_platforms] ")
    completeness = r.table(doc, "completeness")
    refused = r.value(r.table(doc, "refusals"), "max_per_operation", int, "[refusals] ")
    evidence = r.table(doc, "evidence")
    max_age = r.value(evidence, "max_age_hours", (int, float), "[evidence] ")
    issue_days = r.value(evidence, "known_issue_max_days", int, "[evidence] ")
    if refused < 0 or max_age <= 0 or issue_days < 0:
        raise r.fail(
            "[refusals]/[evidence]",
            "max_per_operation and known_issue_max_days must be 0 or more, max_age_hours more than 0",
        )
    return Criteria(
        path=path,
        release=str(doc.get("release", "")),
        blocking_statuses=statuses,
        minimum_tests=r.minimums(doc, "minimum_tests"),
        minimum_tests_in_production=r.minimums(doc, "minimum_tests_in_production"),
        difference_story=r.value(differences, "story", str, "[differences] "),
        difference_exceptions=tuple(exceptions),
        require_load_summary=r.value(slos, "require_load_summary", bool, "[slos] "),
        require_verification_summary=r.value(verification, "require_summary", bool, "[verification] "),
        max_refusals=max_refusals,
        require_run_records=r.value(safety, "require_run_records", bool, "[safety] "),
        fuzzing_suites=tuple(str(x) for x in safety.get("fuzzing_suites", [])),
        known_issues=tuple(issues),
        allowed_skips=tuple(skips),
        required_when_both_platforms=both,
        whole_suite=r.value(completeness, "whole_suite", bool, "[completeness] "),
        max_refused_per_operation=refused,
        max_age_hours=float(max_age),
        known_issue_max_days=issue_days,
    )
