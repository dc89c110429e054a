"""Load shapes, one per profile; `shape = NAME` in loadtests/profiles/NAME.conf picks one.

A shape says how much of the national peak (x --scale) is offered t seconds into the run: the
open model's arrival rate follows it; in the closed model it sets the number of Locust users
(Little's law from the load model). Durations are the profiles' defaults; `--duration` changes them.
"""

from __future__ import annotations

import time
from typing import Any

from locust import LoadTestShape

from rxverify.load import runtime
from rxverify.load.runtime import Settings

STRESS_SETTLE_S = 2.0  # a stress step is judged after its first seconds (the new rate settling)


class ProfileShape(LoadTestShape):
    """A profile: a multiplier of the national peak over time, for a default duration."""

    abstract = True
    default_duration_s = 60.0

    def duration(self, settings: Settings) -> float:
        """Seconds this profile runs."""
        return settings.duration or self.default_duration_s

    def multiplier(self, t: float, settings: Settings) -> float:
        """The share of the national peak (before --scale) offered at t seconds."""
        return 1.0

    def max_multiplier(self, settings: Settings) -> float:
        """The largest multiplier of the run (sizes the open model's VU pool)."""
        return 1.0

    def tick(self) -> tuple[int, float] | None:
        """Users for Locust: the open model's VU pool (constant), or the closed model's Little's-law users."""
        load = runtime.active()
        settings = load.settings
        t = self.get_run_time()
        if self.stop_now(t, load) or t >= self.duration(settings):
            return None
        if settings.arrival == "open":
            total = sum(load.pool.values())
            return total, float(total)
        users = max(len(load.callers), round(sum(load.users.values()) * self.multiplier(t, settings)))
        return users, max(10.0, users / 5)

    def stop_now(self, t: float, load: Any) -> bool:
        """Whether the profile ends early (stress: an SLO broke)."""
        return False


class SmokeShape(ProfileShape):
    """smoke: a short constant load, the CI default (under 90 s)."""

    default_duration_s = 25.0


class PeakShape(ProfileShape):
    """peak: the national peak hour at scale S, after a ramp of a tenth of the run (at most 5 minutes)."""

    default_duration_s = 3600.0

    def multiplier(self, t: float, settings: Settings) -> float:
        """Ramp up, then the peak."""
        ramp = min(300.0, self.duration(settings) / 10)
        return min(1.0, max(0.05, t / ramp)) if ramp else 1.0


class MorningShape(ProfileShape):
    """morning: quiet before opening, a surge when surgeries and pharmacies open, settling to the peak."""

    default_duration_s = 1200.0
    before, surge = 0.2, 1.5  # of the peak: before opening (assumption), the opening surge (assumption)

    def multiplier(self, t: float, settings: Settings) -> float:
        """Quiet for the first tenth, the surge at opening, decaying to the peak by 40 % of the run."""
        d = self.duration(settings)
        if t < 0.1 * d:
            return self.before
        if t < 0.4 * d:
            return self.surge - (self.surge - 1.0) * (t - 0.1 * d) / (0.3 * d)
        return 1.0

    def max_multiplier(self, settings: Settings) -> float:
        """The surge."""
        return self.surge


class StressShape(ProfileShape):
    """stress: the peak, then one more peak per step, until an SLO breaks; reports the step where it broke."""

    def duration(self, settings: Settings) -> float:
        """--max-steps steps of --step-seconds."""
        return settings.duration or settings.step_s * settings.max_steps

    def multiplier(self, t: float, settings: Settings) -> float:
        """Step k (from 1) offers k national peaks."""
        return float(int(t // settings.step_s) + 1)

    def max_multiplier(self, settings: Settings) -> float:
        """The last step."""
        return float(settings.max_steps)

    def stop_now(self, t: float, load: Any) -> bool:
        """At each step's end judge it; stop at the first step that breaks an SLO."""
        s = load.settings
        step = int(t // s.step_s)  # steps finished so far
        judged = getattr(self, "_judged", 0)
        if step <= judged:
            return False
        self._judged = step
        start = time.time() - t  # epoch of the run's start
        lag = runtime.REPORT_LAG_S if load.role == "master" else 0.5
        begin, end = start + (step - 1) * s.step_s + STRESS_SETTLE_S, start + step * s.step_s - lag
        verdicts = runtime.judge_window(begin, end)
        rate = runtime.offered_rate((step - 0.5) * s.step_s)
        broken = [v for v in verdicts if not v.passed]
        if not broken:
            load.stress_verdicts = verdicts
            load.stress = {"held_steps": step, "broke_at_step": None, "offered_rps": round(rate, 2),
                           "step_s": s.step_s, "start_epoch": round(start, 3),
                           "verdict": f"held step {step} ({step} x peak x scale, {rate:.1f} requests/s)"}  # fmt: skip
            return False
        if load.stress_verdicts is None:  # the first step broke: the platform does not carry the peak
            load.stress_verdicts = verdicts
        load.stress = {
            "held_steps": step - 1, "broke_at_step": step, "offered_rps": round(rate, 2),
            "step_s": s.step_s, "start_epoch": round(start, 3), "breaches": [v.line for v in broken],
            "verdict": f"broke at step {step} ({step} x peak x scale, {rate:.1f} requests/s offered): "
                       + "; ".join(v.slo.title for v in broken),
        }  # fmt: skip
        return True


class SoakShape(ProfileShape):
    """soak: the peak held for hours; the SLOs add latency drift and error growth (first vs last tenth)."""

    default_duration_s = 4 * 3600.0


PROFILES: dict[str, type[ProfileShape]] = {
    "smoke": SmokeShape,
    "peak": PeakShape,
    "morning": MorningShape,
    "stress": StressShape,
    "soak": SoakShape,
}
