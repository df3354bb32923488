"""The in-memory emulator state: jobs, the clock, live fault/timing settings and request counts."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter, defaultdict
from datetime import timedelta

from local.emulator.clock import EmulatorClock, format_job_time
from local.emulator.config import EmulatorConfig, Faults, RateLimit, Timing
from local.emulator.jobs import Job, plan_tasks
from local.emulator.ratelimit import SlidingWindow
from local.emulator.submission import Submission

# Per-job operation names in `by_job` (stats "byJob").
JOB_OPERATIONS = ("POST", "GET", "CANCEL")

RequestKey = tuple[str, str, int | None]
"""(method, route, status); status None = the connection was reset without a response."""


class EmulatorState:
    """Shared by every handler of one emulator; tests read it through `serve(...).state`."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = EmulatorClock()
        self.faults: Faults = config.faults
        self.timing = Timing(config.not_started_seconds, config.running_seconds)
        self.rate_limit: RateLimit = config.rate_limit
        self.unknown_api_version_status = config.unknown_api_version_status
        self.window = SlidingWindow()
        self.rng = random.Random(config.seed)
        self.jobs: dict[str, Job] = {}
        self.requests: Counter[RequestKey] = Counter()
        self.by_job: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.closing = asyncio.Event()
        """Set on shutdown, so delayed (slow fault) handlers answer at once instead of holding it up."""

    def create_job(self, submission: Submission) -> Job:
        now = self.clock.now()
        self._purge_expired()
        job = Job(
            job_id=str(uuid.uuid4()),
            submission=submission,
            plans=plan_tasks(submission, self.config.custom_projects),
            created_at=now,
            not_started_seconds=self.timing.not_started_seconds,
            running_seconds=self.timing.running_seconds,
            expires_at=now + timedelta(seconds=self.config.expiry_seconds),
        )
        self.jobs[job.job_id] = job
        return job

    def find_job(self, job_id: str) -> Job | None:
        """The job, unless unknown or past its expirationDateTime (then it is purged)."""
        self._purge_expired()
        return self.jobs.get(job_id.lower())

    def purge(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)

    def _purge_expired(self) -> None:
        now = self.clock.now()
        for job_id in [job_id for job_id, job in self.jobs.items() if now > job.expires_at]:
            del self.jobs[job_id]

    def record(
        self, method: str, route: str, status: int | None, *, job_id: str | None, operation: str | None
    ) -> None:
        self.requests[(method, route, status)] += 1
        if job_id is not None and operation is not None:
            self.by_job[job_id][operation] += 1

    def stats(self) -> dict[str, object]:
        """The `GET /_emulator/stats` body."""
        ordered = sorted(self.requests.items(), key=lambda item: (item[0][1], item[0][0], item[0][2] or 0))
        return {
            "requests": [
                {"method": method, "route": route, "status": status, "count": count}
                for (method, route, status), count in ordered
            ],
            "byJob": {
                job_id: {operation: counts[operation] for operation in JOB_OPERATIONS}
                for job_id, counts in self.by_job.items()
            },
        }

    def rate_limit_report(self) -> dict[str, object]:
        """The `/_emulator/rate-limit` body: the limit in force and what the window admitted."""
        return {
            "requestsPerMinute": self.rate_limit.requests_per_minute,
            "countSubmissions": self.rate_limit.count_submissions,
            **self.window.report(),
        }

    def job_summaries(self) -> list[dict[str, object]]:
        """The `GET /_emulator/jobs` items: live (unexpired) jobs in submission order."""
        self._purge_expired()
        now = self.clock.now()
        return [
            {
                "jobId": job.job_id,
                "status": job.progress(now).status,
                "createdDateTime": format_job_time(job.created_at),
                "expirationDateTime": format_job_time(job.expires_at),
            }
            for job in self.jobs.values()
        ]
