"""Instants and dates as the new platform writes them (UTC with milliseconds; Stockholm offsets)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def utc_instant(moment: datetime) -> str:
    """`moment` as a UTC instant with milliseconds and `Z` (2026-11-25T16:03:00.123Z)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now() -> datetime:
    """The current moment (aware, UTC)."""
    return datetime.now(UTC)


def stockholm_instant(moment: datetime) -> str:
    """`moment` as an instant with its Europe/Stockholm offset (2026-11-25T17:03:00.123+01:00)."""
    return moment.astimezone(STOCKHOLM).isoformat(timespec="milliseconds")


def today() -> date:
    """Today's calendar date in Europe/Stockholm."""
    return datetime.now(STOCKHOLM).date()


def parse_datetime(value: str) -> datetime:
    """A FHIR date or dateTime as an aware moment; a value without offset is Stockholm time."""
    if len(value) == 4:
        value += "-01-01"
    elif len(value) == 7:
        value += "-01"
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=STOCKHOLM)
    return moment


def local_date(value: str) -> str:
    """The Stockholm calendar date of a FHIR date or dateTime (a plain date stays as it is)."""
    if len(value) == 10:
        return value
    return parse_datetime(value).astimezone(STOCKHOLM).date().isoformat()


EARLIEST, LATEST = "0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z"


def interval(value: str) -> tuple[str, str]:
    """The UTC interval [lo, hi) a FHIR search date value stands for, by its precision.

    Values at the edges of the calendar (year 1, year 9999) are valid FHIR dates; their
    interval is clamped to what a datetime can hold instead of failing.
    """
    if value.startswith("0000"):
        # FHIR's own date regex admits 0000-02-29; no datetime holds year 0 and nothing was authored then
        return EARLIEST, EARLIEST
    start = parse_datetime(value)  # a malformed value raises ValueError here, as before
    try:
        return _interval(value)
    except (OverflowError, ValueError):
        late = start.year > 5000
        return _safe_utc(start, LATEST if late else EARLIEST), (LATEST if late else _safe_utc(start, EARLIEST))


def _safe_utc(moment: datetime, fallback: str) -> str:
    try:
        return utc_instant(moment)
    except (OverflowError, ValueError):
        return fallback


def _interval(value: str) -> tuple[str, str]:
    start = parse_datetime(value)
    if len(value) == 4:
        end = start.replace(year=start.year + 1)
    elif len(value) == 7:
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    elif len(value) == 10:
        end = datetime.combine(start.date() + timedelta(days=1), datetime.min.time(), STOCKHOLM)
    else:
        time_part = value[11:]
        if "." in time_part:
            end = start + timedelta(milliseconds=1)
        elif time_part.count(":") >= 2 and len(time_part.split("+")[0].split("-")[0].rstrip("Z")) >= 8:
            end = start + timedelta(seconds=1)
        else:
            end = start + timedelta(minutes=1)
    return utc_instant(start), utc_instant(end)
