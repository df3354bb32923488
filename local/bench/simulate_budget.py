"""``make simulate-budget``: 10,000 pending jobs against the S tier, in virtual time, in seconds.

A discrete-event simulation that drives the app's real decisions with an injected clock and no
sleeping: the shared bucket, AIMD and pending count (``shared.budget``: ``take``, ``ready_at``,
``throttle``, ``with_pending``, ``cycle_seconds``) and the poll policy (``shared.policy.next_poll``
with the budget's cycle as its floor). What it models around them: instances that take tokens in
batches and hold them ``hold_seconds``, serving their waiting polls nearest-expiry first; the
service's sliding 60-s window (1,000 a minute on S) that also counts the upstream's submissions;
and an upstream that, for a few minutes, submits far more than its share, so the service answers
429 and the app must slow down.

It prints the app's requests per minute, the 429s, the lag (job finished -> polled and archived),
how late rescheduled polls came against the time the ledger recorded (the sweep re-drives after
``SWEEP_GRACE_SECONDS``), and that no job timed out.

    python -m local.bench.simulate_budget                 # what `make simulate-budget` runs
    python -m local.bench.simulate_budget --jobs 1000 --instances 2
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import sys
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from local.bench.throttle_report import percentile
from shared.budget import (
    BudgetLimits,
    BudgetState,
    Pacing,
    advance,
    cycle_seconds,
    paced,
    ready_at,
    refill_due,
    take,
    throttle,
    with_lateness,
    with_pending,
)
from shared.policy import GiveUp, PollPolicy, WaitReason, next_poll

__all__ = ["SimPlan", "SimReport", "simulate"]

_EPOCH: Final = datetime(2026, 1, 1, tzinfo=UTC)
_WINDOW: Final = 60.0
_SWEEP_EVERY: Final = 300.0


@dataclass(frozen=True, kw_only=True)
class SimPlan:
    jobs: int = 10_000
    instances: int = 4
    budget: int = 600  # LANGUAGE_MAX_REQUESTS_PER_MINUTE
    service_limit: int = 1000  # S tier
    #: The upstream's own requests (submissions) a minute, and a burst of them in which the
    #: service is over its limit whatever the app does.
    upstream_per_minute: int = 300
    burst_per_minute: int = 900
    burst_from: float = 600.0
    burst_seconds: float = 180.0
    #: Jobs finish uniformly over this many seconds after the start; all expire 24 h after it.
    finish_within: float = 2 * 3600.0
    expires_after: float = 24 * 3600.0
    latency: float = 0.05  # one request's round trip
    grace: float = 300.0  # SWEEP_GRACE_SECONDS
    seed: int = 16


@dataclass(kw_only=True)
class SimReport:
    plan: SimPlan
    per_minute: list[int] = field(default_factory=list)  # the app's requests, minute by minute
    throttled: int = 0
    requests: int = 0
    max_in_window: int = 0
    lags: list[float] = field(default_factory=list)
    late: list[float] = field(default_factory=list)  # rescheduled poll: actual - recorded time
    statuses: Counter[str] = field(default_factory=Counter)
    redriven: int = 0  # polls the sweep would have re-driven first
    virtual_seconds: float = 0.0

    def failures(self) -> list[str]:
        found = []
        if self.statuses.get("succeeded", 0) != self.plan.jobs:
            found.append(f"not every job succeeded: {dict(self.statuses)}")
        if self.max_in_window > 1.1 * self.plan.budget:
            found.append(f"{self.max_in_window} requests in a 60-s window > 1.1 x {self.plan.budget}")
        if self.redriven:
            found.append(f"{self.redriven} polls later than the ledger said by more than the sweep's grace")
        return found

    def summary(self) -> str:
        plan = self.plan
        p50, p95 = percentile(self.lags, 50), percentile(self.lags, 95)
        late95 = percentile(self.late, 95)
        minutes = self.per_minute
        return "\n".join(
            [
                f"simulate-budget: {plan.jobs} pending jobs, {plan.instances} instances, "
                f"budget {plan.budget}/min, service {plan.service_limit}/min, "
                f"upstream {plan.upstream_per_minute}/min "
                f"({plan.burst_per_minute}/min for {plan.burst_seconds:g} s from {plan.burst_from:g} s)",
                "app requests per minute: "
                + " ".join(str(n) for n in minutes[:30])
                + (" ..." if len(minutes) > 30 else ""),
                f"requests {self.requests}, most in any 60-s window {self.max_in_window}, "
                f"429 {self.throttled} ({self.throttled / max(1, self.requests):.2%})",
                f"lag p50 {p50 or 0:.0f} s p95 {p95 or 0:.0f} s max {max(self.lags, default=0):.0f} s; "
                f"rescheduled polls late by p95 {late95 or 0:.1f} s (sweep re-drives: {self.redriven})",
                f"statuses {dict(self.statuses)} (timedOut: {self.statuses.get('timedOut', 0)}), "
                f"{self.virtual_seconds / 3600:.1f} h of virtual time",
                "PASS" if not self.failures() else "FAIL: " + "; ".join(self.failures()),
            ]
        )


@dataclass
class _Job:
    index: int
    finish: float
    deadline: float  # the expiry margin, epoch-free virtual seconds
    attempt: int = 0
    recorded: float | None = None  # the ledger's next poll time, once rescheduled


@dataclass
class _Instance:
    pacing: Pacing | None = None  # the batch held, and how many of it are spent
    spent: int = 0
    ahead: Pacing | None = None  # the batch taken ahead of need
    waiters: list[tuple[float, int, _Job]] = field(default_factory=list)
    paused_until: float = 0.0
    known: BudgetState | None = None
    pumping: bool = False


@dataclass(frozen=True, kw_only=True)
class _Sent:
    """A request on its way: who sent it, for which job, when."""

    instance: _Instance
    job: _Job
    at: float


class _Service:
    """The S tier's sliding window (refused requests do not count, as in the emulator)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.accepted: deque[float] = deque()

    def admit(self, now: float) -> int | None:
        while self.accepted and self.accepted[0] <= now - _WINDOW:
            self.accepted.popleft()
        if len(self.accepted) >= self.limit:
            return max(1, int(self.accepted[len(self.accepted) - self.limit] + _WINDOW - now) + 1)
        self.accepted.append(now)
        return None


def simulate(plan: SimPlan) -> SimReport:
    """Run ``plan`` to the end (every job archived or given up) in virtual time."""
    return _Simulation(plan).run()


class _Simulation:
    def __init__(self, plan: SimPlan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.limits = BudgetLimits(per_minute=plan.budget)
        self.policy = PollPolicy(initial_delay=5.0, max_delay=300.0)
        self.service = _Service(plan.service_limit)
        self.report = SimReport(plan=plan)
        # The instances' running estimate starts where the sweep's count would put it.
        self.shared = with_pending(BudgetState.initial(self.limits, 0.0), exact=plan.jobs)
        self.instances = [_Instance() for _ in range(plan.instances)]
        self.events: list[tuple[float, int, str, object]] = []
        self.order = itertools.count()
        self.app_times: deque[float] = deque()
        self.open_jobs = plan.jobs
        self.last_sweep = 0.0
        self.sweep_late = 0.0

    def run(self) -> SimReport:
        plan = self.plan
        for n in range(plan.jobs):
            finish = self.rng.uniform(0, plan.finish_within)
            job = _Job(index=n, finish=finish, deadline=plan.expires_after - self.policy.expiry_margin)
            self._at(self.rng.uniform(0, 60.0), "due", job)  # the burst of messages, over a minute
        self._at(0.0, "upstream", None)
        self._at(_SWEEP_EVERY, "sweep", None)
        now = 0.0
        handlers = {
            "upstream": self._upstream,
            "due": self._due,
            "pump": self._pump,
            "answer": self._answer,
            "sweep": self._sweep,
        }
        while self.events and self.open_jobs:
            now, _, kind, subject = heapq.heappop(self.events)
            handlers[kind](now, subject)
        self.report.virtual_seconds = now
        return self.report

    def _at(self, when: float, kind: str, subject: object) -> None:
        heapq.heappush(self.events, (when, next(self.order), kind, subject))

    def _wake(self, instance: _Instance, when: float) -> None:
        if not instance.pumping:
            instance.pumping = True
            self._at(when, "pump", instance)

    def _upstream(self, now: float, _: object) -> None:
        plan = self.plan
        self.service.admit(now)
        bursting = plan.burst_from <= now < plan.burst_from + plan.burst_seconds
        per_minute = plan.burst_per_minute if bursting else plan.upstream_per_minute
        self._at(now + 60.0 / per_minute * self.rng.uniform(0.5, 1.5), "upstream", None)

    def _sweep(self, now: float, _: object) -> None:
        self.last_sweep, self.sweep_late = now, advance(self.limits, self.shared, now).late
        self._at(now + _SWEEP_EVERY, "sweep", None)

    def _due(self, now: float, job: object) -> None:
        assert isinstance(job, _Job)
        instance = self.instances[self.rng.randrange(self.plan.instances)]
        heapq.heappush(instance.waiters, (job.deadline, next(self.order), job))
        self._wake(instance, now)

    def _pump(self, now: float, subject: object) -> None:
        """What ``RequestBudget._serve`` does: local (paced) tokens first, else a take if worth it."""
        assert isinstance(subject, _Instance)
        instance, limits = subject, self.limits
        instance.pumping = False
        pacing = instance.pacing
        if pacing is not None and (instance.spent >= pacing.tokens or pacing.expires <= now):
            instance.pacing = pacing = None
        if pacing is None and instance.ahead is not None:
            if instance.ahead.expires > now:
                pacing = instance.pacing = instance.ahead
                instance.spent = 0
            instance.ahead = None
        if not instance.waiters:
            return
        if now < instance.paused_until:
            self._wake(instance, instance.paused_until)
            return
        if pacing is not None and pacing.usable_from(instance.spent) > now:
            self._wake(instance, pacing.usable_from(instance.spent))
            return
        if pacing is not None:
            instance.spent += 1
            known = instance.known
            ahead = known is not None and refill_due(limits, known, pacing, instance.spent, now)
            if instance.ahead is None and ahead:
                # Takes are instant here: the batch taken ahead only moves when tokens leave the bucket.
                self.shared, granted = take(limits, self.shared, now, limits.batch)
                instance.known = self.shared
                if granted:
                    instance.ahead = paced(limits, self.shared, now, granted, after=pacing.end)
            _, _, job = heapq.heappop(instance.waiters)
            self._at(now + self.plan.latency, "answer", _Sent(instance=instance, job=job, at=now))
            self._wake(instance, now)
            return
        if instance.known is not None:
            due = ready_at(limits, instance.known, now, len(instance.waiters))
            if due > now:
                self._wake(instance, due)
                return
        self.shared, granted = take(limits, self.shared, now, limits.batch)
        instance.known = self.shared
        if granted:
            instance.pacing, instance.spent = paced(limits, self.shared, now, granted), 0
            self._wake(instance, now)
        else:
            instance.paused_until = max(instance.paused_until, self.shared.throttled_until)
            self._wake(instance, max(now + 0.02, ready_at(limits, self.shared, now, len(instance.waiters))))

    def _answer(self, now: float, subject: object) -> None:
        """The service's answer to one poll, and what the worker then decides."""
        assert isinstance(subject, _Sent)
        instance, job, sent = subject.instance, subject.job, subject.at
        report = self.report
        self._count(sent)
        if job.recorded is not None:
            late = sent - job.recorded
            report.late.append(late)
            # As the last sweep judged it (every 5 minutes, SWEEP_SCHEDULE's default): overdue by
            # more than its grace plus the lateness it read from the budget.
            if self.last_sweep - job.recorded > self.plan.grace + self.sweep_late:
                report.redriven += 1
            self.shared = with_lateness(self.shared, late)
        retry_after = self.service.admit(sent)
        if retry_after is not None:
            report.throttled += 1
            instance.pacing = instance.ahead = None
            instance.paused_until = max(instance.paused_until, now + retry_after)
            self.shared = throttle(self.limits, self.shared, now, float(retry_after))
            reason, floor_after = WaitReason.TRANSIENT, float(retry_after)
        elif sent >= job.finish:
            report.lags.append(now - job.finish)
            self._end(job, "succeeded")
            return
        else:
            reason, floor_after = WaitReason.UNFINISHED, None
        decision = next_poll(
            self.policy,
            reason=reason,
            attempt=job.attempt,
            retry_after=floor_after,
            now=_EPOCH + timedelta(seconds=now),
            deadline=_EPOCH + timedelta(seconds=job.deadline + self.policy.expiry_margin),
            rand=self.rng.random,
            floor=cycle_seconds(self.limits, self.shared),
        )
        if isinstance(decision, GiveUp):
            self._end(job, "timedOut")
            return
        job.attempt += 1
        job.recorded = now + decision.delay
        self._at(job.recorded, "due", job)

    def _count(self, sent: float) -> None:
        report = self.report
        report.requests += 1
        self.app_times.append(sent)
        while self.app_times and self.app_times[0] <= sent - _WINDOW:
            self.app_times.popleft()
        report.max_in_window = max(report.max_in_window, len(self.app_times))
        minute = int(sent // 60)
        report.per_minute += [0] * (minute + 1 - len(report.per_minute))
        report.per_minute[minute] += 1

    def _end(self, job: _Job, status: str) -> None:
        self.report.statuses[status] += 1
        self.shared = with_pending(self.shared, delta=-1)
        self.open_jobs -= 1


def main() -> int:
    defaults = SimPlan()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=defaults.jobs)
    parser.add_argument("--instances", type=int, default=defaults.instances)
    parser.add_argument("--budget", type=int, default=defaults.budget)
    parser.add_argument("--service-limit", type=int, default=defaults.service_limit)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args()
    plan = SimPlan(
        jobs=args.jobs,
        instances=args.instances,
        budget=args.budget,
        service_limit=args.service_limit,
        seed=args.seed,
    )
    report = simulate(plan)
    print(report.summary())
    return 0 if not report.failures() else 1


if __name__ == "__main__":
    sys.exit(main())
