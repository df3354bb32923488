"""A submitted job: its precomputed task results and its lifecycle on the emulator clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from local.emulator.config import CustomProjects
from local.emulator.recognizer import Match, recognize_custom, recognize_prebuilt
from local.emulator.submission import CUSTOM, Document, Submission, TaskSpec

TERMINAL_STATUSES = frozenset({"succeeded", "partiallyCompleted", "failed", "cancelled"})
# A cancel is acknowledged at once but settles a moment later, as on the service.
CANCEL_SETTLE = timedelta(seconds=0.5)


@dataclass(frozen=True)
class JobError:
    """An Error in the job-level `errors` array."""

    code: str
    message: str
    target: str


@dataclass(frozen=True)
class DocumentOutcome:
    document: Document
    matches: tuple[Match, ...] | None
    """None when the document is invalid (empty text) and goes to `results.errors`."""


@dataclass(frozen=True)
class TaskPlan:
    """What one task will report once it finishes, computed at submission."""

    index: int
    spec: TaskSpec
    outcomes: tuple[DocumentOutcome, ...]
    failure: JobError | None


@dataclass(frozen=True)
class TaskState:
    plan: TaskPlan
    status: str
    updated_at: datetime
    error: JobError | None = None


@dataclass(frozen=True)
class Progress:
    """The job as one GET sees it at a given moment."""

    status: str
    updated_at: datetime
    items: tuple[TaskState, ...]
    in_progress: int

    @property
    def errors(self) -> tuple[JobError, ...]:
        return tuple(item.error for item in self.items if item.error is not None)


@dataclass
class JobOverrides:
    """Per-job test hooks set through the admin API."""

    next_link_base: str | None = None
    malformed_pages: bool = False
    status: str | None = None
    status_at: datetime | None = None
    #: Bodies served verbatim (200, JSON content type) instead of the job's state: the page named
    #: by the request's ``cannedPage`` query parameter (default 0; past the end, the last one).
    canned_pages: tuple[str, ...] | None = None


@dataclass
class Job:
    job_id: str
    submission: Submission
    plans: tuple[TaskPlan, ...]
    created_at: datetime
    not_started_seconds: float
    running_seconds: float
    expires_at: datetime
    cancel_requested_at: datetime | None = None
    overrides: JobOverrides = field(default_factory=JobOverrides)

    def finish_time(self, index: int) -> datetime:
        """Tasks finish one by one across the running window; the last one ends it."""
        share = self.running_seconds * (index + 1) / len(self.plans)
        return self.created_at + timedelta(seconds=self.not_started_seconds + share)

    def progress(self, now: datetime) -> Progress:
        # A cancel or a forced status freezes the tasks: those unfinished by then never finish.
        frozen_at = min(t for t in (now, self.cancel_requested_at, self.overrides.status_at) if t is not None)
        done = tuple(
            _finished(plan, self.finish_time(plan.index))
            for plan in self.plans
            if self.finish_time(plan.index) <= frozen_at
        )
        pending = self.plans[len(done) :]
        if self.overrides.status is not None and self.overrides.status_at is not None:
            return _forced(self.overrides.status, self.overrides.status_at, done, pending)
        if self.cancel_requested_at is not None:
            return _cancelling(self.cancel_requested_at, now, done, pending)
        started_at = self.created_at + timedelta(seconds=self.not_started_seconds)
        if now < started_at:
            return Progress("notStarted", self.created_at, (), len(pending))
        if pending:
            updated = max((state.updated_at for state in done), default=started_at)
            return Progress("running", updated, done, len(pending))
        failed = sum(state.status == "failed" for state in done)
        status = "succeeded" if not failed else "failed" if failed == len(done) else "partiallyCompleted"
        return Progress(status, done[-1].updated_at, done, 0)

    def request_cancel(self, now: datetime) -> bool:
        """Start cancelling; False when the job is already terminal (the service answers 400)."""
        if self.progress(now).status in TERMINAL_STATUSES:
            return False
        if self.cancel_requested_at is None:
            self.cancel_requested_at = now
        return True


def _finished(plan: TaskPlan, at: datetime) -> TaskState:
    if plan.failure is not None:
        return TaskState(plan, "failed", at, plan.failure)
    return TaskState(plan, "succeeded", at)


def _cancelling(
    requested_at: datetime, now: datetime, done: tuple[TaskState, ...], pending: tuple[TaskPlan, ...]
) -> Progress:
    settled_at = requested_at + CANCEL_SETTLE
    if now < settled_at:
        return Progress("cancelling", requested_at, done, len(pending))
    # Real cancelled jobs list every unfinished task as a cancelled item with empty results.
    cancelled = tuple(TaskState(plan, "cancelled", settled_at) for plan in pending)
    return Progress("cancelled", settled_at, _ordered(done + cancelled), 0)


def _forced(
    status: str, at: datetime, done: tuple[TaskState, ...], pending: tuple[TaskPlan, ...]
) -> Progress:
    if status == "failed":
        failed = tuple(
            TaskState(
                plan,
                "failed",
                at,
                JobError("InternalServerError", "Internal error.", _target(plan.spec, plan.index)),
            )
            for plan in pending
        )
        return Progress(status, at, _ordered(done + failed), 0)
    if status == "cancelled":
        cancelled = tuple(TaskState(plan, "cancelled", at) for plan in pending)
        return Progress(status, at, _ordered(done + cancelled), 0)
    return Progress(status, at, done, len(pending))


def _ordered(states: tuple[TaskState, ...]) -> tuple[TaskState, ...]:
    return tuple(sorted(states, key=lambda state: state.plan.index))


def _target(spec: TaskSpec, index: int) -> str:
    """Names the task in a job-level error: its taskName, else its position in the submitted tasks."""
    return spec.name if spec.name is not None else f"#/tasks/{index}"


def plan_tasks(submission: Submission, projects: CustomProjects) -> tuple[TaskPlan, ...]:
    """Run the recognisers once at submission, so every later GET pages over the same results."""
    return tuple(
        _plan(index, spec, submission.documents, projects) for index, spec in enumerate(submission.tasks)
    )


def _plan(index: int, spec: TaskSpec, documents: tuple[Document, ...], projects: CustomProjects) -> TaskPlan:
    if spec.kind != CUSTOM:
        return TaskPlan(index, spec, _outcomes(documents, recognize_prebuilt), None)
    # Validation guarantees both names for custom tasks.
    gazetteer = projects.get(spec.project_name or "", {}).get(spec.deployment_name or "")
    if gazetteer is None:
        target = _target(spec, index)
        failure = JobError(
            "ProjectNotFound",
            f"Task {target!r} failed: project {spec.project_name!r} with deployment "
            f"{spec.deployment_name!r} was not found.",
            target,
        )
        return TaskPlan(index, spec, (), failure)
    return TaskPlan(index, spec, _outcomes(documents, lambda text: recognize_custom(text, gazetteer)), None)


def _outcomes(
    documents: tuple[Document, ...], recognize: Callable[[str], tuple[Match, ...]]
) -> tuple[DocumentOutcome, ...]:
    return tuple(
        DocumentOutcome(document, None if not document.text.strip() else recognize(document.text))
        for document in documents
    )
