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
    return LoadModel(items, visits, prescriptions, tuple(rates), think, raw)
