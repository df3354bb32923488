"""What the crash-chaos run submits and expects: the job lifecycles, the faults, the plan and
the report (``local.proof.chaos`` runs it).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from local.emulator import Faults
from local.proof.judge import Verdict

__all__ = ["API_KEY", "BAD_MESSAGES", "FAULTS", "LIFECYCLES", "TEXT", "ChaosPlan", "ChaosReport", "Lifecycle"]


API_KEY: Final = "chaos-key-0123456789abcdef"
TEXT: Final = "Contoso Ltd. shipped to Seattle and the Pacific Northwest on March 15, 2025."
_PREBUILT: Final = {
    "kind": "EntityRecognition",
    "taskName": "prebuilt",
    "parameters": {"modelVersion": "latest"},
}
_CUSTOM: Final = {
    "kind": "CustomEntityRecognition",
    "taskName": "regions",
    "parameters": {"projectName": "MyProject", "deploymentName": "MyDeployment"},
}
_MISSING_PROJECT: Final = {
    "kind": "CustomEntityRecognition",
    "taskName": "missing",
    "parameters": {"projectName": "NoSuchProject", "deploymentName": "none"},
}
BAD_MESSAGES: Final = (
    "not-a-uuid",
    '{"jobId": "7"}',
    "{broken",
    json.dumps({"operationLocation": f"https://evil.example/language/analyze-text/jobs/{uuid.UUID(int=7)}"}),
)
# Language-side faults on every GET: rare enough that the run ends, frequent enough to matter.
FAULTS: Final = Faults(
    rate_429=0.03,
    retry_after_seconds=1,
    rate_5xx=0.03,
    rate_reset=0.02,
    rate_slow=0.005,
    slow_seconds=2.0,
    rate_malformed=0.02,
)


@dataclass(frozen=True, kw_only=True)
class Lifecycle:
    """One kind of job: its share of the run, what is submitted, how long it runs, how it must end."""

    name: str
    share: float
    documents: int
    tasks: tuple[Mapping[str, Any], ...]
    statuses: frozenset[str]
    not_started_seconds: float = 0.0
    running_seconds: float = 0.0
    purge: bool = False  # purged by the service before the app first polls it


LIFECYCLES: Final = (
    Lifecycle(
        name="first-poll",
        share=0.50,
        documents=3,
        tasks=(_PREBUILT, _CUSTOM),
        statuses=frozenset({"succeeded"}),
    ),
    Lifecycle(
        name="running",
        share=0.08,
        documents=3,
        tasks=(_PREBUILT, _CUSTOM),
        statuses=frozenset({"succeeded"}),
        not_started_seconds=2,
        running_seconds=10,
    ),
    Lifecycle(
        name="running-long",
        share=0.07,
        documents=3,
        tasks=(_PREBUILT, _CUSTOM),
        statuses=frozenset({"succeeded"}),
        not_started_seconds=3,
        running_seconds=40,
    ),
    # 25 documents (a submission's most) at 10 a page: three result pages per poll, merged.
    Lifecycle(
        name="paged",
        share=0.12,
        documents=25,
        tasks=(_PREBUILT, _CUSTOM),
        statuses=frozenset({"succeeded"}),
        running_seconds=3,
    ),
    Lifecycle(
        name="failed", share=0.06, documents=3, tasks=(_MISSING_PROJECT,), statuses=frozenset({"failed"})
    ),
    Lifecycle(
        name="partial",
        share=0.14,
        documents=3,
        tasks=(_PREBUILT, _MISSING_PROJECT),
        statuses=frozenset({"partiallyCompleted"}),
        running_seconds=2,
    ),
    # Purged by the service before the app first polls it (404 from the start): notFound once the
    # 60-s grace is over. A 404 for a job the app has seen is confirmed over 5 minutes, longer than
    # a chaos run; tests/integration/test_not_found.py proves that path.
    Lifecycle(
        name="purged",
        share=0.03,
        documents=3,
        tasks=(_PREBUILT, _CUSTOM),
        statuses=frozenset({"notFound"}),
        purge=True,
    ),
)


@dataclass(frozen=True, kw_only=True)
class ChaosPlan:
    jobs: int = 1000
    workers: int = 2
    duplicate_share: float = 0.10
    kills: int = 12  # at least this many SIGKILLs before the faults stop
    kill_every: float = 2.0  # mean seconds between kills
    drops: int = 15  # at most, of the app's own next-poll messages deleted behind its back (lost)
    drop_every: float = 2.0  # mean seconds between drops
    outages: int = 2
    outage_seconds: float = 4.0
    first_outage_after: float = 8.0
    outage_every: float = 15.0
    storage_latency: float = 0.003  # added to each storage request
    lease_seconds: int = 8
    sweep_schedule: str = "*/4 * * * * *"
    sweep_grace_seconds: int = 6
    timeout: float = 540.0
    seed: int = 20261202
    lifecycles: tuple[Lifecycle, ...] = LIFECYCLES


@dataclass(kw_only=True)
class ChaosReport:
    plan: ChaosPlan
    verdict: Verdict
    kills: int = 0
    kills_in_flight: int = 0  # kills that hit a worker with an invocation running
    drops: int = 0
    outages: int = 0
    messages: int = 0
    elapsed: float = 0.0
    last_fault_to_last_archive: float | None = None
    lifecycles: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        # Drops are best effort (only a message visible at that instant can be taken), so they
        # are reported but not required.
        return self.verdict.ok and self.kills >= self.plan.kills and self.outages >= self.plan.outages

    def summary(self) -> str:
        v = self.verdict
        settle = (
            "n/a" if self.last_fault_to_last_archive is None else f"{self.last_fault_to_last_archive:.1f} s"
        )
        return "\n".join(
            [
                f"chaos: {v.jobs} jobs ({', '.join(f'{n} {k}' for k, n in self.lifecycles.items())}), "
                f"{self.messages} messages, {self.plan.workers} workers, "
                f"+{self.plan.storage_latency * 1000:g} ms per storage request",
                f"kills {self.kills} ({self.kills_in_flight} mid-invocation), outages {self.outages} "
                f"({self.plan.outage_seconds:g} s each), app messages dropped {self.drops}, "
                f"jobs {v.jobs}, archived {v.archived}, "
                f"lost {len(v.lost)}, corrupt {len(v.corrupt)}",
                f"manifests {v.manifests}, pending ledger records {len(v.pending)}, left on the jobs queue "
                f"{v.queued}, poison {v.poisoned} (unaccounted {len(v.unaccounted_poison)})",
                v.events.summary() if v.events is not None else "events: not judged",
                f"last fault -> last archive {settle}, whole run {self.elapsed:.1f} s: "
                + ("PASS" if self.ok else "FAIL"),
            ]
        )
