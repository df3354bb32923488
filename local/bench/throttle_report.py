"""What ``make bench-throttle`` runs and what it reports: the plan (the scenario and its thresholds),
the report (what was measured, the failures, the summary) and the nearest-rank percentile."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.worker import MAX_BUDGET_WAIT

__all__ = ["ThrottlePlan", "ThrottleReport", "percentile"]


@dataclass(frozen=True, kw_only=True)
class ThrottlePlan:
    jobs: int = 300
    workers: int = 3
    budget: int = 480  # LANGUAGE_MAX_REQUESTS_PER_MINUTE
    service_limit: int = 600  # the emulator's requests per minute
    squeeze_limit: int = 300
    #: The squeeze starts when the service's 60-s window holds this share of the budget...
    squeeze_when_full: float = 0.95
    squeeze_after: float = 150.0  # ... or this many seconds after the workers start, if sooner
    squeeze_seconds: float = 30.0
    poll_initial_delay: int = 1
    poll_max_delay: int = 16
    sweep_every: int = 5  # seconds
    sweep_grace: int = 10
    lease: int = 10  # seconds; the runner renews it at half, as the host does
    #: The jobs run this long at the service, in equal shares: they finish at different times.
    running_seconds: tuple[float, ...] = (0.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0)
    timeout: float = 900.0
    max_throttled_share: float = 0.02
    max_window_ratio: float = 1.1
    #: Lag p95 at most this many fair-share intervals.
    max_lag_intervals: float = 2.0
    #: An invocation's own work beyond its budget wait (pages, blobs, ledger, queue).
    own_work: float = 15.0

    @property
    def fair_share_interval(self) -> float:
        """Seconds to poll every job once at the budget: the lag a fair scheduler is measured by."""
        return self.jobs / (self.budget / 60.0)

    @property
    def max_lag_p95(self) -> float:
        return self.max_lag_intervals * self.fair_share_interval

    @property
    def max_invocation(self) -> float:
        return MAX_BUDGET_WAIT + self.own_work


@dataclass(kw_only=True)
class ThrottleReport:
    plan: ThrottlePlan
    statuses: Counter[str] = field(default_factory=Counter)
    requests: int = 0  # the app's requests to the Language emulator (GET job, cancel)
    throttled: int = 0
    max_in_window: int = 0  # the most requests in any 60-s window, accepted and refused
    lags: list[float] = field(default_factory=list)
    gets_per_job: float = 0.0
    elapsed: float = 0.0
    squeezed: bool = False
    squeezed_at: float = 0.0  # seconds after the workers started
    squeezed_full: bool = False  # when the window held the budget (else at squeeze_after)
    longest_invocation: float = 0.0  # seconds, over every worker
    redriven: int = 0
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (seconds, requests in the window)
    #: (seconds, the app's requests so far, 429s so far), one a sample: how the app climbs back.
    totals: list[tuple[float, int, int]] = field(default_factory=list)

    def climb_back(self, span: float = 25.0) -> tuple[float, int, int] | None:
        """After the first 429: when it came (seconds into the run), and the requests the app sent
        in the ``span`` seconds after it and in the ``span`` seconds after those."""
        first = next(((at, sent) for at, sent, refused in self.totals if refused), None)
        if first is None:
            return None
        at, sent_then = first

        def sent_by(when: float) -> int:
            return max((sent for seen, sent, _ in self.totals if seen <= when), default=sent_then)

        return at, sent_by(at + span) - sent_then, sent_by(at + 2 * span) - sent_by(at + span)

    @property
    def throttled_share(self) -> float:
        return self.throttled / self.requests if self.requests else 0.0

    @property
    def archived(self) -> int:
        return sum(self.statuses.values())

    def failures(self) -> list[str]:
        plan = self.plan
        found = []
        if self.statuses.get("succeeded", 0) != plan.jobs:
            succeeded = self.statuses.get("succeeded", 0)
            found.append(f"archived succeeded {succeeded} of {plan.jobs}: {dict(self.statuses)}")
        if self.throttled_share > plan.max_throttled_share:
            found.append(
                f"429s {self.throttled_share:.1%} of the app's requests > {plan.max_throttled_share:.0%}"
            )
        if self.max_in_window > plan.max_window_ratio * plan.budget:
            found.append(
                f"{self.max_in_window} requests in a 60-s window > {plan.max_window_ratio} x {plan.budget}"
            )
        p95 = percentile(self.lags, 95)
        if p95 is None or p95 > plan.max_lag_p95:
            found.append(f"lag p95 {p95} s > {plan.max_lag_p95:g} s")
        if not self.squeezed:
            found.append("the squeeze never happened (the run ended first)")
        if self.longest_invocation > plan.max_invocation:
            found.append(f"an invocation ran {self.longest_invocation:.1f} s > {plan.max_invocation:g} s")
        if self.redriven:
            found.append(f"the sweep re-drove {self.redriven} jobs that were only waiting")
        return found

    def _climb_line(self) -> str:
        climb = self.climb_back()
        if climb is None:
            return "no 429: the squeeze never refused the app"
        at, first, second = climb
        per_span = self.plan.budget * 25 / 60
        return (
            f"first 429 at {at:.0f} s; the app sent {first} requests in the 25 s after it (the pause is "
            f"the Retry-After), {second} in the 25 s after those (the budget: {per_span:.0f})"
        )

    def summary(self) -> str:
        plan = self.plan
        p50, p95 = percentile(self.lags, 50), percentile(self.lags, 95)
        when = "window full" if self.squeezed_full else "window not full yet"
        lines = [
            f"bench-throttle: {plan.jobs} jobs, {plan.workers} workers, budget {plan.budget}/min, service "
            f"{plan.service_limit}/min squeezed to {plan.squeeze_limit}/min for {plan.squeeze_seconds:g} s "
            f"at {self.squeezed_at:.0f} s ({when}), poll delay {plan.poll_initial_delay}-"
            f"{plan.poll_max_delay} s, sweep every {plan.sweep_every} s grace {plan.sweep_grace} s, "
            f"lease {plan.lease} s",
            f"requests {self.requests}, 429 {self.throttled} ({self.throttled_share:.2%}), most in any 60-s "
            f"window {self.max_in_window} ({self.max_in_window / plan.budget:.2f} x budget)",
            f"archived {self.archived} {dict(self.statuses)}, lag p50 {_seconds(p50)} p95 {_seconds(p95)} "
            f"(fair-share interval {plan.fair_share_interval:.1f} s, p95 limit {plan.max_lag_p95:.1f} s), "
            f"GETs per job {self.gets_per_job:.2f}, whole run {self.elapsed:.0f} s",
            f"longest invocation {self.longest_invocation:.1f} s (limit {plan.max_invocation:g} s: the "
            f"{MAX_BUDGET_WAIT:g}-s budget wait + {plan.own_work:g} s of work), re-driven by the sweep "
            f"{self.redriven}",
            self._climb_line(),
            "requests in the 60-s window, every 10 s: "
            + " ".join(f"{int(at)}s:{count}" for at, count in self.timeline[::10]),
        ]
        failures = self.failures()
        lines.append("PASS" if not failures else "FAIL: " + "; ".join(failures))
        return "\n".join(lines)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``None`` for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"
