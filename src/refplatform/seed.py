"""Seed data: the old platform's store as years of use left it, for every test patient of the registry.

    python -m refplatform seed --platform old --data-dir DIR --contracts contracts [--seed N] [--as-of DATE]

Writes the old platform's own tables directly (as if accumulated over the years before the
window): prescriptions of every status, each cancellation reason (some with a comment), expired
ones, electronic and telephoned ones, withdrawals from none to every one allowed (some with
three and more), dispensings reported to the medication list, consents given, withdrawn and
never given, dosage texts near the 500-character limit, names and texts with å, ä and ö, and
prescriptions registered just after midnight Stockholm time, on the days the clocks change and
around 29 February. Every row keeps the invariants the old platform's handlers keep: uttagKvar
is antalUttag less the withdrawals, each withdrawal records what remained and the status right
after it, Slutexpedierad exactly when none remain, withdrawals only inside the validity and
only on Aktiv or Parkerad prescriptions, each dispensing id reserved beforehand by the pharmacy
(GLN) that uses it, prescribers with their HSA-id, förskrivarkod and arbetsplatskod from
contracts/testdata/test-actors.json.

Deterministic: the same --seed and --as-of give the same store. Every instant lies before the
start of the --as-of day (default: today in Stockholm), and each patient's data is drawn from
a generator seeded by (--seed, the patient's identity), so seeding part of the registry gives
those patients the same data as seeding all of it. The draws use `random.Random` with an
explicit seed: this is a data generator of the platform, not a property test.

One history the seed does not write: a withdrawal made while the prescription had another
status than it has now and than Aktiv (taken while Parkerad, then reactivated or cancelled).
The transformer derives each withdrawal's ordinationsstatus from the prescription's current
status, so the new platform could not answer it as the old one does (see the report of the
migration work).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from refplatform.common.cmdline import CommandError, OneLineParser, fail
from refplatform.common.store import Store
from refplatform.common.testdata import load_seed
from refplatform.old.app import SCHEMA

STOCKHOLM = ZoneInfo("Europe/Stockholm")
DEFAULT_VALIDITY = {"ELEKTRONISK": 366, "TELEFON": 14}  # DOMAIN.md, as the old platform applies it
CUSTOM_VALIDITY_DAYS = (30, 90, 180, 365)  # a giltigTom the prescriber gave (at most issue date + 366)
MAX_TEXT = 500  # legacy.yaml Text: maxLength
LONG_TEXT_MIN = 470  # "near the limit"
MEDIUM_TEXT = (260, 400)  # longer than a VARCHAR(255) staging column
REASONS = ("FEL_LAKEMEDEL", "FEL_PATIENT", "FEL_DOSERING", "BEHANDLING_AVSLUTAD", "OVRIGT")
HISTORY_DAYS = 1100  # how far back the register's data goes (three years)
MIN_ROOM = timedelta(hours=1)  # a prescription with less time than this before the as-of day has no life yet

# One of these is given to each patient in turn (registry order, shifted by the seed), so any
# run of len(FORCED) consecutive patients holds every one; the rest of a patient's data is drawn.
FORCED = (
    "aktiv-utan-uttag", "aktiv-med-uttag", "aktiv-utgangen", "parkerad", "parkerad-utgangen",
    *(f"makulerad-{r}" for r in REASONS),
    "slutexpedierad", "max-uttag", "avslutad", "telefon", "lang-text", "mellanlang-text",
    "midnatt-vinter", "midnatt-sommar", "sommartid-borjar", "sommartid-slutar", "skottdag",
    "giltig-till-skottdag", "samtycke-givet", "samtycke-aterkallat", "samtycke-aldrig", "utan-ordinationer",
)
# How a drawn prescription ends up (weights): most are current or dispensed.
STATUS_WEIGHTS = {"aktiv": 28, "aktiv-utgangen": 12, "parkerad": 5, "parkerad-utgangen": 2, "makulerad": 10,
                  "slutexpedierad": 25, "avslutad": 8}
COUNT_WEIGHTS = (8, 12, 15, 15, 13, 12, 10, 8, 7)  # drawn prescriptions per patient: 0..8
WITHDRAWALS_WEIGHTS = {1: 35, 2: 15, 3: 15, 4: 15, 5: 3, 6: 8, 12: 7, 8: 2}  # antalUttag
CONSENT_WEIGHTS = {"given": 45, "withdrawn": 15, "never": 40}
REPORTED_SHARE = 0.75  # withdrawals the pharmacy also reported to the medication list
TELEPHONE_SHARE = 0.08  # DOMAIN.md: 99 % electronic; telephoned ones over-represented to be seen
NIGHT_SHARE = 0.04  # drawn prescriptions registered around midnight (23:00-02:00)
# The status a FORCED prescription scenario gets ("by-date": current if its special day allows).
SCENARIO_STATUS = {
    **{f"makulerad-{r}": "makulerad" for r in REASONS},
    "max-uttag": "slutexpedierad", "aktiv-utan-uttag": "aktiv", "aktiv-med-uttag": "aktiv", "telefon": "aktiv",
    "lang-text": "aktiv", "mellanlang-text": "aktiv", "midnatt-vinter": "aktiv", "midnatt-sommar": "aktiv",
    "sommartid-borjar": "by-date", "sommartid-slutar": "by-date", "skottdag": "by-date",
    "giltig-till-skottdag": "by-date",
}


@dataclass(frozen=True)
class Vocabulary:
    """Packages, dosage texts and comments the data is made of (contracts/testdata/seed-vocabulary.json)."""

    medications: list[dict[str, str]]
    dosages: list[str]
    instructions: list[str]
    comments: list[str]


@dataclass
class Rows:
    """The rows of the old store being built, each with the instant that orders its table."""

    ordination: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    uttag: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lf_post: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    expeditionsid: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    consent: dict[str, tuple[int, str | None]] = field(default_factory=dict)


def utc_instant(moment: datetime) -> str:
    """An instant as the old platform writes them (UTC, milliseconds, Z)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def load_vocabulary(contracts: Path) -> Vocabulary:
    """Read contracts/testdata/seed-vocabulary.json."""
    raw = json.loads((contracts / "testdata" / "seed-vocabulary.json").read_text(encoding="utf-8"))
    return Vocabulary(raw["medications"], raw["dosages"], raw["instructions"], raw["cancellationComments"])


class Calendar:
    """The special days before the as-of day: clock changes and the last 29 February."""

    def __init__(self, as_of: date) -> None:
        self.as_of = as_of
        self.start = local_midnight(as_of)  # every instant lies before this
        self.spring: list[date] = []
        self.autumn: list[date] = []
        day = as_of - timedelta(days=1)
        while len(self.spring) < 2 or len(self.autumn) < 2:
            before = datetime.combine(day - timedelta(days=1), time(12), STOCKHOLM).utcoffset()
            after = datetime.combine(day, time(12), STOCKHOLM).utcoffset()
            if before != after:
                assert before is not None and after is not None
                (self.spring if after > before else self.autumn).append(day)
            day -= timedelta(days=1)
        year = as_of.year if (as_of.month, as_of.day) > (2, 29) else as_of.year - 1
        while not _leap(year):
            year -= 1
        self.leap_day = date(year, 2, 29)

    def days_back(self, days: int, hour: int, minute: int, second: int, ms: int, fold: int = 0) -> datetime:
        """The Stockholm instant `days` days before the as-of day at the given wall-clock time."""
        return self.at(self.as_of - timedelta(days=days), hour, minute, second, ms, fold)

    @staticmethod
    def at(day: date, hour: int, minute: int, second: int = 0, ms: int = 0, fold: int = 0) -> datetime:
        """The instant (in UTC) of a Stockholm wall-clock time on `day` (fold 1: the second 02:30 in autumn)."""
        local = datetime(day.year, day.month, day.day, hour, minute, second, ms * 1000, tzinfo=STOCKHOLM, fold=fold)
        return local.astimezone(UTC)


def local_midnight(day: date) -> datetime:
    """The instant (in UTC) the Stockholm day `day` begins.

    Instants are kept in UTC: Python adds a timedelta to an aware datetime on its wall clock, so
    `stockholm_time - 30 minutes` across a clock change would land on the wrong instant.
    """
    return datetime.combine(day, time(0), STOCKHOLM).astimezone(UTC)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _weighted(rng: random.Random, weights: dict[Any, int]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


class PatientSeeder:
    """Draws one patient's prescriptions, withdrawals, reports and consent."""

    def __init__(self, rng: random.Random, calendar: Calendar, vocabulary: Vocabulary,
                 prescribers: list[dict[str, Any]], glns: list[str], rows: Rows) -> None:
        self.rng = rng
        self.cal = calendar
        self.vocabulary = vocabulary
        self.prescribers = prescribers
        self.glns = glns
        self.rows = rows

    # ---- texts ----

    def dosage(self, size: str) -> str:
        """A dosage text: short, medium (over 255 characters) or long (near 500)."""
        rng = self.rng
        text = rng.choice(self.vocabulary.dosages)
        if size == "short":
            return text + (" " + rng.choice(self.vocabulary.instructions) if rng.random() < 0.4 else "")
        low, high = (LONG_TEXT_MIN, MAX_TEXT) if size == "long" else MEDIUM_TEXT
        target = rng.randint(low, high)
        extra = rng.sample(self.vocabulary.instructions, len(self.vocabulary.instructions))
        while extra and len(text) < target:
            sentence = extra.pop()
            if len(text) + 1 + len(sentence) <= high:
                text += " " + sentence
        if len(text) < low:  # too few sentences fit: fill with a repeated short one, as people do
            filler = "Se även bipacksedeln."
            while len(text) + 1 + len(filler) <= high and len(text) < low:
                text += " " + filler
        return text

    # ---- one prescription ----

    def authored(self, scenario: str, days: tuple[int, int]) -> datetime:
        """When the prescription was registered: `days` back at working hours, or a special moment."""
        rng, cal = self.rng, self.cal
        if scenario in ("midnatt-vinter", "midnatt-sommar"):
            summer = scenario == "midnatt-sommar"
            while True:  # a 366-day range holds days of both offsets
                hour = rng.randint(0, 1) if summer else 0
                moment = cal.days_back(rng.randint(*days), hour, rng.randint(0, 59), rng.randint(0, 59),
                                       rng.randint(0, 999))
                if (moment.astimezone(STOCKHOLM).utcoffset() == timedelta(hours=2)) == summer:
                    return moment
        if scenario == "sommartid-borjar":
            day = rng.choice(cal.spring)  # 02:00-03:00 does not exist that night
            hour, minute = rng.choice(((0, 10), (0, 45), (1, 30), (3, 5), (3, 40)))
            return cal.at(day, hour, minute, rng.randint(0, 59), rng.randint(0, 999))
        if scenario == "sommartid-slutar":
            day = rng.choice(cal.autumn)  # 02:00-03:00 happens twice that night
            hour, minute, fold = rng.choice(((0, 30, 0), (1, 30, 0), (2, 30, 0), (2, 30, 1), (3, 15, 0)))
            return cal.at(day, hour, minute, rng.randint(0, 59), rng.randint(0, 999), fold)
        if scenario == "skottdag":
            return cal.at(cal.leap_day, rng.choice((0, 0, 1, 9, 23)), rng.randint(0, 59), rng.randint(0, 59))
        if scenario == "giltig-till-skottdag":  # issued 366 days before 29 February: valid through it
            return cal.at(cal.leap_day - timedelta(days=366), rng.randint(8, 16), rng.randint(0, 59))
        hour = rng.choice((23, 0, 1)) if rng.random() < NIGHT_SHARE else rng.randint(8, 17)
        return cal.days_back(rng.randint(*days), hour, rng.randint(0, 59), rng.randint(0, 59), rng.randint(0, 999))

    def prescription(self, person_id: str, scenario: str, home_gln: str) -> None:
        """Draw one prescription shaped by `scenario` (a FORCED name or a drawn status) and write its rows."""
        rng = self.rng
        drawn = scenario in STATUS_WEIGHTS
        status = SCENARIO_STATUS.get(scenario, scenario)
        kind = "TELEFON" if scenario == "telefon" or (drawn and rng.random() < TELEPHONE_SHARE) else "ELEKTRONISK"
        validity = DEFAULT_VALIDITY[kind]
        if drawn and kind == "ELEKTRONISK" and rng.random() < 0.2:
            validity = rng.choice(CUSTOM_VALIDITY_DAYS)
        if status in ("aktiv", "parkerad"):
            days = (1, validity - 1)  # still valid on the as-of day
        elif status in ("aktiv-utgangen", "parkerad-utgangen"):
            days = (validity + 1, HISTORY_DAYS)
        else:
            days = (1, HISTORY_DAYS)
        moment = self.authored(scenario, days)
        issued = moment.astimezone(STOCKHOLM).date()
        valid_to = issued + timedelta(days=validity)
        if status == "by-date":  # a special day: current if still valid, otherwise it has had its life
            status = "aktiv" if valid_to >= self.cal.as_of else rng.choice(
                ("aktiv-utgangen", "slutexpedierad", "makulerad", "avslutad"))
        allowed = 12 if scenario == "max-uttag" else _weighted(rng, WITHDRAWALS_WEIGHTS)
        if scenario == "aktiv-med-uttag":
            allowed = max(allowed, 4)
        if status == "slutexpedierad":
            taken = allowed
        elif scenario == "aktiv-utan-uttag":
            taken = 0
        elif scenario == "aktiv-med-uttag":
            taken = rng.randint(3, allowed - 1)
        else:
            taken = rng.randint(0, allowed - 1)
        prescriber = rng.choice(self.prescribers)
        medication = rng.choice(self.vocabulary.medications)
        packages = rng.choices((1, 2, 3, 5, 10, 99), weights=(60, 25, 10, 3, 1, 1))[0]
        size = {"lang-text": "long", "mellanlang-text": "medium"}.get(
            scenario, rng.choices(("short", "medium", "long"), weights=(70, 15, 15))[0])
        ordination_id = _uuid(rng)
        text = self.dosage(size)
        # withdrawals inside the validity, and before the as-of day
        end = min(local_midnight(valid_to + timedelta(days=1)), self.cal.start)
        if end - moment < MIN_ROOM:  # registered just before the as-of day: nothing has happened to it yet
            status, taken = ("aktiv" if valid_to >= self.cal.as_of else "aktiv-utgangen"), 0
        legacy_status = _legacy(status)
        parked = None
        first_possible = moment + timedelta(minutes=1)
        if legacy_status == "Parkerad":  # parked before any withdrawal: each one was taken while parked
            parked = _between(rng, moment, end if taken == 0 else moment + (end - moment) / 3)
            first_possible = parked + timedelta(minutes=1)
        times = _sorted_instants(rng, first_possible, end, taken)
        last = times[-1] if times else (parked or moment)
        for n, when in enumerate(times, start=1):
            left = allowed - n
            gln = home_gln if rng.random() < 0.8 else rng.choice(self.glns)
            dispensing_id = _uuid(rng)
            reserved = when - timedelta(minutes=rng.randint(1, 30), seconds=rng.randint(0, 59))
            self.rows.expeditionsid.append((utc_instant(reserved), {
                "expeditions_id": dispensing_id, "apotek_gln": gln, "reserverad": utc_instant(reserved)}))
            took = rng.randint(1, packages) if rng.random() < 0.3 else packages
            self.rows.uttag.append((utc_instant(when), {
                "uttag_id": _uuid(rng), "ordination_id": ordination_id, "expeditions_id": dispensing_id,
                "apotek_gln": gln, "antal_forpackningar": took, "tidpunkt": utc_instant(when), "uttag_kvar": left,
                "ordinationsstatus": "Slutexpedierad" if left == 0 else ("Parkerad" if parked else "Aktiv"),
            }))
            if rng.random() < REPORTED_SHARE:
                reported = when + min(timedelta(seconds=rng.randint(5, 600)), (self.cal.start - when) / 2)
                self.rows.lf_post.append((utc_instant(reported), {
                    "rapport_id": _uuid(rng), "person_id": person_id, "ordination_id": ordination_id,
                    "expeditions_id": dispensing_id, "npl_pack_id": medication["nplPackId"],
                    "lakemedel_namn": medication["namn"], "doseringstext": text, "antal_forpackningar": took,
                    "expedierad": utc_instant(reported), "apotek_gln": gln, "registrerad": utc_instant(reported),
                }))
        reason = comment = None
        changed = max(last, parked or moment)
        if legacy_status in ("Makulerad", "Avslutad"):
            changed = _between(rng, last, min(last + timedelta(days=60), self.cal.start))
        if legacy_status == "Makulerad":
            reason = scenario.removeprefix("makulerad-") if scenario.startswith("makulerad-") else rng.choice(REASONS)
            if rng.random() < 0.4:
                comment = rng.choice(self.vocabulary.comments)
        self.rows.ordination.append((utc_instant(moment), {
            "ordination_id": ordination_id, "person_id": person_id, "status": legacy_status,
            "utfardandedatum": issued.isoformat(), "utfardad": utc_instant(moment), "giltig_tom": valid_to.isoformat(),
            "npl_pack_id": medication["nplPackId"], "lakemedel_namn": medication["namn"], "doseringstext": text,
            "antal_forpackningar": packages, "antal_uttag": allowed, "uttag_kvar": allowed - taken,
            "forskrivningstyp": kind, "hsa_id": prescriber["hsaId"], "forskrivarkod": prescriber["forskrivarkod"],
            "arbetsplatskod": prescriber["careUnit"], "makuleringsorsak": reason, "makuleringskommentar": comment,
            "senast_andrad": utc_instant(changed),
        }))

    # ---- one patient ----

    def patient(self, person_id: str, forced: str) -> None:
        """The patient's consent and prescriptions: the forced scenario plus drawn ones."""
        rng = self.rng
        consent = {"samtycke-givet": "given", "samtycke-aterkallat": "withdrawn", "samtycke-aldrig": "never"}.get(
            forced) or _weighted(rng, CONSENT_WEIGHTS)
        if consent != "never":
            when = self.cal.days_back(rng.randint(1, HISTORY_DAYS), rng.randint(8, 19), rng.randint(0, 59),
                                      rng.randint(0, 59), rng.randint(0, 999))
            self.rows.consent[person_id] = (1 if consent == "given" else 0, utc_instant(when))
        if forced == "utan-ordinationer":
            return
        home = rng.choice(self.glns)
        drawn = ["" for _ in range(rng.choices(range(len(COUNT_WEIGHTS)), weights=COUNT_WEIGHTS)[0])]
        scenarios = [*drawn, forced] if not forced.startswith("samtycke") else drawn
        for scenario in scenarios:
            self.prescription(person_id, scenario or _weighted(rng, STATUS_WEIGHTS), home)


def _legacy(status: str) -> str:
    return {"aktiv": "Aktiv", "aktiv-utgangen": "Aktiv", "parkerad": "Parkerad", "parkerad-utgangen": "Parkerad",
            "makulerad": "Makulerad", "slutexpedierad": "Slutexpedierad", "avslutad": "Avslutad"}[status]


def _between(rng: random.Random, low: datetime, high: datetime) -> datetime:
    """An instant strictly inside (low, high) (its middle when there is little room)."""
    span = (high - low).total_seconds()
    if span <= 2:
        return low + (high - low) / 2
    return low + timedelta(seconds=rng.uniform(1, span - 1))


def _sorted_instants(rng: random.Random, low: datetime, high: datetime, count: int) -> list[datetime]:
    """`count` increasing instants in [low, high), whole milliseconds apart at least."""
    span_ms = max(int((high - low).total_seconds() * 1000), count + 1)
    picks = sorted(rng.sample(range(span_ms), count)) if count else []
    return [low + timedelta(milliseconds=p) for p in picks]


def seed_old_store(data_dir: Path, contracts: Path, seed: int, as_of: date | None = None,
                   patients: list[str] | None = None) -> dict[str, Any]:
    """Write the seed into the old store of `data_dir` (a fresh one); the counts per kind.

    `patients`: only these test patients (default: every one of the registry).
    """
    as_of = as_of or datetime.now(STOCKHOLM).date()
    testdata = load_seed(contracts)
    vocabulary = load_vocabulary(contracts)
    registry = [p["id"] for p in testdata.patients]
    chosen = registry if patients is None else [p for p in registry if p in set(patients)]
    if patients is not None and len(chosen) != len(set(patients)):
        raise CommandError("seed: some of the patients asked for are not in the test-patient registry")
    store = Store(data_dir / "old.sqlite", SCHEMA)
    conn = store.conn()
    held = conn.execute("SELECT (SELECT COUNT(*) FROM ordination) + (SELECT COUNT(*) FROM expeditionsid) + "
                        "(SELECT COUNT(*) FROM patient WHERE samtycke_andrad IS NOT NULL)").fetchone()[0]
    if held:
        raise CommandError(f"the old store in {data_dir} already holds data: seed writes into a fresh store only")
    calendar = Calendar(as_of)
    rows = Rows()
    glns = [p["gln"] for p in testdata.pharmacies]
    for person_id in chosen:
        index = registry.index(person_id)
        forced = FORCED[(index + seed) % len(FORCED)]
        rng = random.Random(f"{seed}:{person_id}")
        PatientSeeder(rng, calendar, vocabulary, testdata.prescribers, glns, rows).patient(person_id, forced)
    spare = random.Random(f"{seed}:pharmacies")
    for gln in glns:  # ids reserved in the last days and not yet used: the pharmacies use them after the window
        for _ in range(spare.randint(3, 12)):
            when = calendar.days_back(spare.randint(1, 5), spare.randint(8, 19), spare.randint(0, 59),
                                      spare.randint(0, 59), spare.randint(0, 999))
            rows.expeditionsid.append((utc_instant(when), {"expeditions_id": _uuid(spare), "apotek_gln": gln,
                                                           "reserverad": utc_instant(when)}))
    with store.write() as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO patient (person_id, fornamn, efternamn, fodelsedatum, samtycke)"
            " VALUES (?, ?, ?, ?, 0)",
            [(p["id"], p["givenName"], p["familyName"], p["birthDate"]) for p in testdata.patients],
        )
        conn.executemany("UPDATE patient SET samtycke = ?, samtycke_andrad = ? WHERE person_id = ?",
                         [(given, when, person) for person, (given, when) in rows.consent.items()])
        for table, items in (("ordination", rows.ordination), ("expeditionsid", rows.expeditionsid),
                             ("uttag", rows.uttag), ("lf_post", rows.lf_post)):
            _insert_in_order(conn, table, items)
    return _counts(rows, len(chosen), seed, as_of)


def _insert_in_order(conn: sqlite3.Connection, table: str, items: list[tuple[str, dict[str, Any]]]) -> None:
    # the order they happened in: the tables' sequence numbers are what the platform sorts by
    ordered = [row for _, row in sorted(items, key=lambda item: (item[0], next(iter(item[1].values()))))]
    if not ordered:
        return
    columns = list(ordered[0])
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                     [tuple(row[c] for c in columns) for row in ordered])


def _counts(rows: Rows, patients: int, seed: int, as_of: date) -> dict[str, Any]:
    statuses = Counter(row["status"] for _, row in rows.ordination)
    expired = sum(1 for _, row in rows.ordination
                  if row["status"] in ("Aktiv", "Parkerad") and row["giltig_tom"] < as_of.isoformat())
    consents = Counter("given" if given else "withdrawn" for given, _ in rows.consent.values())
    return {
        "patients": patients, "prescriptions": len(rows.ordination), "statuses": dict(statuses), "expired": expired,
        "withdrawals": len(rows.uttag), "medication-list entries": len(rows.lf_post),
        "consents given": consents["given"], "consents withdrawn": consents["withdrawn"],
        "never consented": patients - len(rows.consent), "reserved dispensing ids": len(rows.expeditionsid),
        "seed": seed, "as of": as_of.isoformat(),
    }


def summary(counts: dict[str, Any]) -> str:
    """The one line `seed` prints."""
    statuses = ", ".join(f"{s} {counts['statuses'].get(s, 0)}"
                         for s in ("Aktiv", "Parkerad", "Makulerad", "Slutexpedierad", "Avslutad"))
    return (f"patients {counts['patients']}, prescriptions {counts['prescriptions']} ({statuses}; "
            f"expired {counts['expired']}), withdrawals {counts['withdrawals']}, medication-list entries "
            f"{counts['medication-list entries']}, consents given {counts['consents given']} / withdrawn "
            f"{counts['consents withdrawn']} / never {counts['never consented']}, reserved dispensing ids "
            f"{counts['reserved dispensing ids']} (seed {counts['seed']}, as of {counts['as of']})")


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m refplatform seed", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--platform", required=True, help="old (the new platform is filled by `migrate`)")
    p.add_argument("--data-dir", type=Path, required=True, help="the old platform's run directory")
    p.add_argument("--contracts", type=Path, default=Path("contracts"))
    p.add_argument("--seed", type=int, default=1, help="the draws' seed (default 1)")
    p.add_argument("--as-of", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                   help="the day the data is seeded as of (default today in Stockholm)")
    return p


def main(argv: list[str]) -> int:
    """`python -m refplatform seed ...`; the exit code."""
    try:
        args = _parser().parse_args(argv)
        if args.platform != "old":
            raise CommandError(f"seed --platform {args.platform}: only the old platform is seeded "
                               "(the new one is filled by `python -m refplatform migrate`)")
        counts = seed_old_store(args.data_dir, args.contracts, args.seed, args.as_of)
    except CommandError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"seed: cannot use {exc.filename or args.data_dir}: {exc.strerror}")
    except (sqlite3.Error, ValueError, KeyError) as exc:
        return fail(f"seed: cannot seed the old store in {args.data_dir}: {exc}")
    print(f"refplatform seed: {args.data_dir / 'old.sqlite'}: {summary(counts)}", flush=True)
    return 0
