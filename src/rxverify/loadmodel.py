"""The national load model: peak-hour rates per caller and operation, from loadtests/model.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rxverify.errors import UserError


@dataclass(frozen=True)
class OperationRate:
    """Requests per second of one operation by one caller at the national peak hour."""

    caller: str
    operation: str
    per_second: float
    assumption: bool
    source: str


@dataclass(frozen=True)
class LoadModel:
    """The derived national peak-hour load."""

    items_per_peak_hour: float
    visits_per_peak_hour: float
    prescriptions_per_peak_hour: float
    rates: tuple[OperationRate, ...]
    think_times: dict[str, float]
    raw: dict[str, Any]
    response_time_s: float = 0.1  # [users] response_time_s (an assumption) for Little's law
    vu_budget_s: float = 1.0  # [users] vu_budget_s (an assumption): open-model pool per caller

    @property
    def callers(self) -> tuple[str, ...]:
        """The callers, in the model's order."""
        return tuple(self.think_times)

    @property
    def total_per_second(self) -> float:
        """All callers together, requests per second."""
        return sum(r.per_second for r in self.rates)

    def caller_rate(self, caller: str) -> float:
        """Requests per second of one caller."""
        return sum(r.per_second for r in self.rates if r.caller == caller)


def _value(section: dict[str, Any], key: str, where: str) -> float:
    try:
        entry = section[key]
        return float(entry["value"] if isinstance(entry, dict) else entry)
    except (KeyError, TypeError, ValueError):
        raise UserError(f"load model {where}: missing or non-numeric {key!r}") from None


def load_model(path: Path) -> LoadModel:
    """Read and derive the model; a malformed file is one UserError."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read load model {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"load model {path} is not valid TOML: {exc}") from None
    vol, shape = raw.get("volumes", {}), raw.get("shape", {})
    ratio = _value(shape, "weekday_weekend_ratio", f"{path} [shape]")
    weekday_share = ratio / (5 * ratio + 2)
    weekly = 1 / _value(shape, "weeks_per_year", f"{path} [shape]")
    peak = _value(shape, "peak_hour_share", f"{path} [shape]")
    items_per_year = _value(vol, "dispensed_items_per_year", f"{path} [volumes]")
    items = items_per_year * weekly * weekday_share * peak
    visits = (
        _value(vol, "pharmacy_visits_per_day", f"{path} [volumes]")
        * _value(vol, "pickup_share_of_visits", f"{path} [volumes]")
        * peak
    )
    prescriptions = (
        items_per_year
        / _value(vol, "dispensings_per_prescription", f"{path} [volumes]")
        * _value(vol, "electronic_share", f"{path} [volumes]")
        * weekly
        * weekday_share
        * peak
    )
    units = {"item": items, "visit": visits, "prescription": prescriptions}
    rates: list[OperationRate] = []
    think: dict[str, float] = {}
    callers = raw.get("callers")
    if not isinstance(callers, dict) or not callers:
        raise UserError(f"load model {path} defines no [callers]")
    for caller, spec in callers.items():
        share = (
            _value(spec, "share_of_prescriptions", f"{path} [callers.{caller}]")
            if "share_of_prescriptions" in spec
            else 1.0
        )
        think[caller] = _value(spec, "think_time_s", f"{path} [callers.{caller}]")
        for op, entry in spec.get("operations", {}).items():
            if not isinstance(entry, dict) or entry.get("per") not in units:
                raise UserError(
                    f"load model {path} [callers.{caller}.operations] {op}: 'per' must be item, visit or prescription"
                )
            base = units[entry["per"]] * (share if entry["per"] == "prescription" else 1.0)
            rates.append(
                OperationRate(
                    caller,
                    op,
                    base * _value({"v": entry}, "v", op) / 3600.0,
                    bool(entry.get("assumption")),
                    str(entry.get("source", "")),
                )
            )
    users = raw.get("users", {})
    response_time = _value(users, "response_time_s", f"{path} [users]") if "response_time_s" in users else 0.1
    budget = _value(users, "vu_budget_s", f"{path} [users]") if "vu_budget_s" in users else 1.0
    if response_time < 0 or budget <= 0 or any(t < 0 for t in think.values()):
        raise UserError(f"load model {path}: response, think and budget times must be positive")
    return LoadModel(items, visits, prescriptions, tuple(rates), think, raw, response_time, budget)


@dataclass(frozen=True)
class CallerLoad:
    """What one caller brings at scale factor S: its rate and the users Little's law gives it."""

    caller: str
    per_second: float  # requests per second at the scale
    think_time_s: float
    response_time_s: float
    users: float  # Little's law: per_second x (response_time_s + think_time_s)
    vus: float  # open model: per_second x vu_budget_s


def caller_loads(model: LoadModel, scale: float = 1.0, skip: frozenset[str] = frozenset()) -> list[CallerLoad]:
    """Each caller's rate at scale factor `scale` and the users it needs (operations in `skip` left out)."""
    loads = []
    for caller in model.callers:
        rate = scale * sum(r.per_second for r in model.rates if r.caller == caller and r.operation not in skip)
        think = model.think_times[caller]
        loads.append(
            CallerLoad(
                caller,
                rate,
                think,
                model.response_time_s,
                rate * (model.response_time_s + think),
                rate * model.vu_budget_s,
            )
        )
    return loads


def _said(source: str) -> str:
    return source.removeprefix("assumption: ")


def describe(model: LoadModel, scale: float, path: Path) -> list[str]:
    """The lines `rxverify loadmodel` prints: rates per caller and operation, users, scale."""
    lines = [
        f"load model {path}: national peak hour, scale factor {scale:g}",
        f"  peak hour: {model.items_per_peak_hour:,.0f} dispensed items, {model.visits_per_peak_hour:,.0f} "
        f"pickup visits, {model.prescriptions_per_peak_hour:,.0f} prescriptions",
    ]
    shape = model.raw.get("shape", {})
    for key, entry in shape.items():
        if isinstance(entry, dict):
            mark = "ASSUMPTION" if entry.get("assumption") else "source"
            lines.append(f"  {key} = {entry.get('value')}  [{mark}: {_said(entry.get('source', ''))}]")
    lines.append("rates (requests/s at this scale):")
    for caller in model.callers:
        lines.append(f"  {caller}:")
        for r in model.rates:
            if r.caller == caller:
                mark = "ASSUMPTION" if r.assumption else "source"
                lines.append(f"    {r.operation:<28} {r.per_second * scale:9.3f}/s  [{mark}: {_said(r.source)}]")
    users = model.raw.get("users", {})
    lines.append(
        "users by Little's law: users = rate x (response time + think time); "
        f"response time {model.response_time_s:g} s "
        f"[{'ASSUMPTION' if users.get('response_time_s', {}).get('assumption', True) else 'source'}]"
    )
    total_users = 0.0
    for load in caller_loads(model, scale):
        spec = model.raw.get("callers", {}).get(load.caller, {}).get("think_time_s", {})
        mark = "ASSUMPTION" if isinstance(spec, dict) and spec.get("assumption") else "source"
        lines.append(
            f"  {load.caller:<20} {load.per_second:9.3f}/s x ({load.response_time_s:g} s + {load.think_time_s:g} s "
            f"think [{mark}]) = {load.users:8.1f} users; open model: {max(1.0, load.vus):.0f} VUs"
        )
        total_users += load.users
    lines.append(f"total: {model.total_per_second * scale:.3f} requests/s, {total_users:.1f} users (closed model)")
    return lines
