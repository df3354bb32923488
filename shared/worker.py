"""The poll of one job: one queue message in, one outcome out.

Unfinished jobs are rescheduled onto the jobs queue with a delay (ledger first, then the
message); terminal jobs are archived and committed; jobs that cannot be archived end with a
manifest that says why. Raising is kept for real faults (storage down, a bug), so the host's
retries and poison queue mean what they should.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Final

from azure.core.exceptions import AzureError

from .archive import Commit, JobRecord, render_manifest, render_tasks
from .events import archived
from .jobs import JobPage, MalformedJob, merge_task_items
from .language import (
    AccessDenied,
    JobNotFound,
    LanguageError,
    RequestRejected,
    TransientFailure,
    UntrustedLink,
    UnusableResponse,
)
from .messages import InvalidMessage, JobMessage, parse_body, sane_time
from .policy import GiveUp, PollAgain, WaitReason, next_poll, queue_visibility
from .request_budget import BudgetBusy
from .runtime import Runtime
from .telemetry import (
    ATTEMPT,
    DELAY_SECONDS,
    DEQUEUE_COUNT,
    JOB_ID,
    LAG_SECONDS,
    OUTCOME,
    OUTCOME_RECORD,
    REASON,
    STATUS,
    AttributeValue,
    PollResult,
    job_attributes,
    job_log,
)
from .timefmt import format_time

__all__ = ["Outcome", "Result", "handle_message"]

_log = logging.getLogger("archiver")

#: Results are purged 24 h after submission; used when the service never told us the expiry.
RETENTION: Final = timedelta(hours=24)
#: A 404 this soon after the app first saw the message may be the service catching up.
NOT_FOUND_GRACE: Final = timedelta(seconds=60)
#: A 404 for a job the app has seen, before its expirationDateTime, is not proof that it is gone
#: (a regional failover, a replica behind): the job ends ``expired`` only once 404s, and nothing
#: else, have answered for this long. After its expirationDateTime one 404 is enough.
NOT_FOUND_CONFIRMATION: Final = timedelta(minutes=5)
#: How soon a job is polled again while a 404 is being confirmed (a floor; POLL_MAX_DELAY_SECONDS wins).
NOT_FOUND_RECHECK_SECONDS: Final = 60.0
#: Consecutive polls with unusable answers before the job is given up as ``rejected``.
MAX_UNUSABLE: Final = 5
#: The app's own times in a message may run this far ahead of this instance's clock (another
#: instance's clock); later ones were not written by the app and are ignored.
CLOCK_SKEW: Final = timedelta(minutes=5)
#: The most an invocation waits for the request budget, all its requests and in-place retries
#: together (DESIGN.md): past it the poll goes back on the queue, due when the budget will have
#: room (and the ledger says so), and the invocation returns.
MAX_BUDGET_WAIT: Final = 30.0
#: A poll expected to wait longer than this for the budget first moves its ledger due time past
#: the wait bound, when the sweep could otherwise take the wait for a lost message.
_RECORDED_WAIT: Final = 1.0
#: What an invocation does after its budget wait (page GETs, blob writes, the reschedule): the
#: ledger's due time moved for a wait leaves it this much room.
_OWN_WORK: Final = 10.0


#: Faults that keep the job: how loudly to say so, what an operator should check, how to wait.
_KEPT_ON: Final[dict[type[LanguageError], tuple[int, str, str, WaitReason]]] = {
    AccessDenied: (
        logging.ERROR,
        "refused access",
        "check LANGUAGE_API_KEY, or the managed identity (AZURE_CLIENT_ID) and its Language role",
        WaitReason.CONFIG_FAULT,
    ),
    RequestRejected: (
        logging.ERROR,
        "rejected the request",
        "check LANGUAGE_ENDPOINT and LANGUAGE_API_VERSION",
        WaitReason.CONFIG_FAULT,
    ),
    TransientFailure: (
        logging.WARNING,
        "is unavailable",
        "if this persists, check LANGUAGE_ENDPOINT and the network",
        WaitReason.TRANSIENT,
    ),
}


class Outcome(Enum):
    ARCHIVED = "archived"
    ALREADY_ARCHIVED = "already-archived"
    RESCHEDULED = "rescheduled"
    POISONED = "poisoned"
    SUPERSEDED = "superseded"  # a stale duplicate: another message owns the job's next poll


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    job_id: str | None = None
    status: str | None = None  # the manifest's status when the job ended here
    delay: float | None = None  # the wait before the next poll when rescheduled
    reason: str | None = None  # why the message was poisoned
    #: More attributes of the outcome record (archived: counts and lagSeconds).
    details: tuple[tuple[str, AttributeValue], ...] = ()


async def handle_message(
    body: bytes, *, dequeue_count: int, runtime: Runtime, enqueued_at: datetime | None = None
) -> Result:
    """Process one jobs-queue message (base64 already decoded) and return what became of the job;
    ``enqueued_at``: when the queue service inserted it (a naive time is UTC; None: unknown).

    One span covers the invocation (the Language and storage calls nest under it), and one
    outcome record says what became of it; a real fault raises out of both."""
    # A consumer span: the processing of a queue message (Application Insights shows it as a request
    # unless the host's own span is its parent).
    with runtime.telemetry.span(
        "archiver.poll_job", kind="consumer", attributes={DEQUEUE_COUNT: dequeue_count}
    ) as span:
        message: JobMessage | None = None
        try:
            message = parse_body(body, settings=runtime.settings)
        except InvalidMessage as exc:
            await runtime.queues.poison(reason=exc.reason, original=body)
            runtime.telemetry.message_poisoned(reason=exc.reason)
            result = Result(Outcome.POISONED, reason=exc.reason)
        else:
            span.set_attribute(JOB_ID, message.job_id)
            result = await _JobPoll(
                runtime, message, dequeue_count=dequeue_count, enqueued_at=enqueued_at
            ).run()
        span.set_attribute(OUTCOME, result.outcome.value)
        _log_outcome(result, message, dequeue_count=dequeue_count)
        return result


def _log_outcome(result: Result, message: JobMessage | None, *, dequeue_count: int) -> None:
    """The one outcome record of an invocation: its attributes are the custom dimensions."""
    attributes: dict[str, AttributeValue] = {
        **job_attributes(result.job_id, message.correlation_id if message else None),
        OUTCOME: result.outcome.value,
        # The poll this message is, 1 for a job's first (the message carries the app's count).
        ATTEMPT: message.attempt + 1 if message else 1,
        DEQUEUE_COUNT: dequeue_count,
        **dict(result.details),
    }
    if result.status is not None:
        attributes[STATUS] = result.status
    if result.reason is not None:
        attributes[REASON] = result.reason
    if result.delay is not None:
        attributes[DELAY_SECONDS] = round(result.delay, 3)
    _log.log(
        logging.ERROR if result.outcome is Outcome.POISONED else logging.INFO,
        "%s outcome=%s status=%s jobId=%s%s",
        OUTCOME_RECORD,
        result.outcome.value,
        result.status,
        result.job_id,
        f" reason={result.reason}" if result.reason else "",
        extra=attributes,
    )


class _JobPoll:
    """The decisions for one message; every path ends in a ``Result`` or raises a real fault."""

    def __init__(
        self,
        runtime: Runtime,
        message: JobMessage,
        *,
        dequeue_count: int,
        enqueued_at: datetime | None = None,
    ) -> None:
        self._rt = runtime
        self._now = runtime.clock()
        if enqueued_at is not None and enqueued_at.tzinfo is None:
            enqueued_at = enqueued_at.replace(tzinfo=UTC)
        self._enqueued_at = sane_time(enqueued_at)
        self._job_id = message.job_id
        self._log = job_log(_log, job_id=message.job_id, correlation_id=message.correlation_id)
        message = self._plausible(message)
        self._message = message if message.first_seen_at else message.evolve(first_seen_at=self._now)
        self._redelivered = dequeue_count > 1
        self._new = message.first_seen_at is None
        self._answered = False  # the service showed the job in this invocation
        # Event-loop time, as the budget's waits are timed: immune to the wall clock's jumps.
        self._give_up_at = asyncio.get_running_loop().time() + MAX_BUDGET_WAIT

    def _plausible(self, message: JobMessage) -> JobMessage:
        """``message`` without the app's own times that lie in the future: the app never wrote them."""
        future = {
            name: None
            for name in ("first_seen_at", "seen_at")
            if (when := getattr(message, name)) is not None and when > self._now + CLOCK_SKEW
        }
        if future:
            self._log.warning(
                "job %s: the message's own %s lie in the future: ignored, as if absent",
                self._job_id,
                " and ".join(sorted(future)),
            )
        return message.evolve(**future)

    async def run(self) -> Result:
        message = self._message
        if self._redelivered:
            # An earlier attempt failed, perhaps between task blobs and manifest. Make sure the
            # job is in the ledger before anything else, so that if this message ends in the
            # poison queue the sweep still finishes the job.
            if await self._found_archived(message):
                await self._forget()
                return Result(Outcome.ALREADY_ARCHIVED, self._job_id)
            if message.ledger_etag is None:
                message = self._backed(message)
                etag = await self._rt.ledger.create(message, next_poll_at=self._now)
                if etag is not None:
                    message = message.evolve(ledger_etag=etag)
        if self._new:
            self._rt.budget.jobs_changed(+1)
        if message.due_at is not None:
            # The app sends each message before it is due (a visibility delay): a due time before
            # the insertion is not the app's (a forged or re-driven message), and its lateness is
            # counted from the insertion, so no message can widen the sweep's grace by itself.
            due = max(message.due_at, self._enqueued_at or message.due_at)
            self._rt.budget.poll_late(max(0.0, (self._now - due).total_seconds()))
        # Never deferred past the job's expiry margin: it is first in line at this instance anyway.
        wait = min(self._rt.budget.estimated_wait(), self._priority(message, None) - self._now.timestamp())
        if wait > MAX_BUDGET_WAIT:
            # The budget is the bottleneck: come back when it has room rather than hold the message.
            self._log.info("job %s: the request budget is busy for %.0f s, polled then", self._job_id, wait)
            return await self._reschedule(
                message, PollAgain(delay=wait, not_before=self._now + timedelta(seconds=wait))
            )
        message = await self._record_wait(message)
        try:
            page = await self._rt.language.get_job(
                self._job_id, deadline=self._priority(message, None), give_up_at=self._give_up_at
            )
        except BudgetBusy as exc:
            return await self._budget_busy(message, exc, page=None)
        except LanguageError as exc:
            self._rt.telemetry.polled(PollResult.FAILED)
            return await self._on_failure(message, exc)
        self._rt.telemetry.polled(PollResult.ENDED if page.is_terminal else PollResult.UNFINISHED)
        self._answered = True
        message = message.evolve(
            seen_at=message.seen_at or self._now,
            expires_at=page.expires or message.expires_at,
            unusable=0,
            not_found_since=None,
        )
        if page.is_terminal:
            return await self._archive(message, page, status=page.status, errors=page.errors)
        if not page.is_known_unfinished:
            self._log.warning(
                "job %s has status %r, unknown to this app: polling it again", self._job_id, page.status
            )
        return await self._wait(message, WaitReason.UNFINISHED, retry_after=None, page=page)

    async def _on_failure(self, message: JobMessage, exc: LanguageError) -> Result:
        if isinstance(exc, JobNotFound):
            return await self._on_not_found(message, exc)
        for kind, (level, what, hint, reason) in _KEPT_ON.items():
            if isinstance(exc, kind):
                self._log.log(
                    level,
                    "Language service %s for job %s (%s): %s; the job is kept and polled again",
                    what,
                    self._job_id,
                    exc,
                    hint,
                )
                return await self._wait(message, reason, retry_after=exc.retry_after, cause=exc)
        if isinstance(exc, UntrustedLink):
            return await self._finish(message, "rejected", [_error("UntrustedLink", str(exc))])
        assert isinstance(exc, UnusableResponse)
        message = message.evolve(unusable=await self._unusable_before(message) + 1)
        if message.unusable >= MAX_UNUSABLE:
            return await self._finish(
                message, "rejected", [_error("UnusableResponse", f"{MAX_UNUSABLE} polls in a row: {exc}")]
            )
        self._log.warning("job %s: unusable answer from the service (%s): polling again", self._job_id, exc)
        return await self._wait(message, WaitReason.TRANSIENT, retry_after=None, cause=exc)

    async def _on_not_found(self, message: JobMessage, exc: JobNotFound) -> Result:
        """A 404: the gateway's for the route (keep the job), or the job's (confirm, then end it)."""
        if exc.unknown_route:
            self._log.error(
                "Language service answered 404 for the jobs route itself, not for job %s (%s): check "
                "LANGUAGE_API_VERSION and that LANGUAGE_ENDPOINT has no path; the job is kept and "
                "polled again",
                self._job_id,
                exc,
            )
            return await self._wait(message, WaitReason.CONFIG_FAULT, retry_after=None, cause=exc)
        message = await self._confirmed(message)
        assert message.first_seen_at is not None
        if message.seen_at is None:
            if self._now - message.first_seen_at < NOT_FOUND_GRACE:
                return await self._wait(message, WaitReason.NOT_FOUND_GRACE, retry_after=None)
            return await self._finish(
                message, "notFound", [_error("NotFound", f"the service has no such job: {exc}")]
            )
        expires = message.expires_at or message.first_seen_at + RETENTION
        if self._now >= expires:
            return await self._finish(
                message,
                "expired",
                [_error("Expired", f"purged after its expirationDateTime {_iso(expires)}: {exc}")],
            )
        # A time from the future (a clock ahead, a forged field) starts the confirmation now.
        since = min(message.not_found_since or self._now, self._now)
        if self._now - since >= NOT_FOUND_CONFIRMATION:
            return await self._finish(
                message,
                "expired",
                [
                    _error(
                        "Expired",
                        f"the service answered 404 from {_iso(since)} to {_iso(self._now)}, before the job's "
                        f"expirationDateTime {_iso(expires)}: purged early ({exc})",
                    )
                ],
            )
        self._log.warning(
            "job %s: 404 before its expirationDateTime %s (since %s): polled again to confirm it is gone",
            self._job_id,
            _iso(expires),
            _iso(since),
        )
        return await self._wait(
            message.evolve(not_found_since=since),
            WaitReason.NOT_FOUND_GRACE,
            retry_after=NOT_FOUND_RECHECK_SECONDS,
            cause=exc,
        )

    async def _confirmed(self, message: JobMessage) -> JobMessage:
        """``message`` with its own ``seenAt``, ``firstSeenAt`` and ``notFoundSince`` as far as the
        app's ledger record confirms them. A 404 ends a job on these times, and anyone can forge them
        in a message: a claim the record does not back is dropped (the job never seen, first seen
        now, no 404 before), so a forged message can neither end a job ``expired`` nor cut its
        not-found grace or confirmation (one GET, on a 404 only)."""
        if self._new and message.seen_at is None:
            return message  # no claim: first seen now
        recorded = await self._recorded()
        assert message.first_seen_at is not None
        claimed, kept = message.not_found_since, recorded.not_found_since
        confirmed = message.evolve(
            seen_at=recorded.seen_at,
            first_seen_at=max(message.first_seen_at, recorded.first_seen_at or self._now),
            not_found_since=max(claimed, kept) if claimed is not None and kept is not None else None,
        )
        claims = (message.seen_at is not None, message.first_seen_at, message.not_found_since)
        if (confirmed.seen_at is not None, confirmed.first_seen_at, confirmed.not_found_since) != claims:
            self._log.warning(
                "job %s: the message's own seenAt, firstSeenAt or notFoundSince differs from its ledger "
                "record: record used",
                self._job_id,
            )
        return confirmed

    def _backed(self, message: JobMessage) -> JobMessage:
        """``message`` as the job's first ledger record may hold it. No record backs the message's
        own claims yet, so the record keeps only what this invocation saw itself: seen by the
        service only if it answered now, first seen now (the unusable count is checked apart)."""
        return message.evolve(seen_at=message.seen_at if self._answered else None, first_seen_at=self._now)

    async def _unusable_before(self, message: JobMessage) -> int:
        """Unusable answers in a row before this one. The message's count is advisory (anyone can
        forge it): only the count the app recorded in the job's ledger record counts (one GET, on
        an unusable answer after another only)."""
        if message.unusable == 0:
            return 0
        recorded = (await self._recorded()).unusable
        if recorded < message.unusable:
            self._log.warning(
                "job %s: the message's own unusable count is not the ledger's: the ledger's is used",
                self._job_id,
            )
        return min(message.unusable, recorded)

    async def _recorded(self) -> JobMessage:
        """The job's state as the app last wrote it in the ledger (a bare job when there is none)."""
        record = await self._rt.ledger.get(self._job_id)
        return record.message if record is not None else JobMessage(job_id=self._job_id)

    async def _archive(
        self,
        message: JobMessage,
        page: JobPage,
        *,
        status: str,
        errors: Sequence[Any],
        giving_up: bool = False,
    ) -> Result:
        try:
            rest = await self._rt.language.get_remaining_pages(
                page, deadline=self._priority(message, page), give_up_at=self._give_up_at
            )
            pages = [page, *rest]
            items = merge_task_items(pages)
        except BudgetBusy as exc:
            return await self._budget_busy(message, exc, page=page)
        except MalformedJob as exc:
            return await self._on_failure(message, UnusableResponse(f"job {self._job_id}: {exc}"))
        except LanguageError as exc:
            if isinstance(exc, JobNotFound) and giving_up:
                # Purged between two pages at the end of its life: it expired before we had it all.
                return await self._finish(
                    message,
                    "expired",
                    [_error("Expired", f"purged while its pages were read: {exc}")],
                    page=page,
                )
            return await self._on_failure(message, exc)
        return await self._finish(message, status, errors, page=page, items=items)

    async def _wait(
        self,
        message: JobMessage,
        reason: WaitReason,
        *,
        retry_after: float | None,
        page: JobPage | None = None,
        cause: Exception | None = None,
    ) -> Result:
        decision = next_poll(
            self._rt.policy,
            reason=reason,
            attempt=message.attempt,
            retry_after=retry_after,
            now=self._now,
            deadline=_service_deadline(page),
            rand=self._rt.rand,
            floor=self._rt.budget.cycle_seconds(),
        )
        if isinstance(decision, GiveUp):
            assert page is not None  # no deadline without the service's own answer
            return await self._give_up(message, decision, page=page, cause=cause)
        return await self._reschedule(message, decision)

    async def _give_up(
        self, message: JobMessage, decision: GiveUp, *, page: JobPage, cause: Exception | None
    ) -> Result:
        """The job's results are about to be purged, or already are: keep what is done.

        Only the service's own answer of this poll (``page``) leads here, never a time the message
        carried. At the expiry margin the job ends ``timedOut`` and the service is asked to stop
        it; a job already past its expirationDateTime ends ``expired``.
        """
        expires = page.expires
        if expires is not None and self._now >= expires:
            status, errors = (
                "expired",
                [_error("Expired", f"past its expirationDateTime {expires.isoformat()}")],
            )
        else:
            await self._rt.language.cancel(
                self._job_id, deadline=self._priority(message, page), give_up_at=self._give_up_at
            )
            status, errors = "timedOut", [_error("TimedOut", decision.reason)]
        if cause is not None:
            errors.append(_error(type(cause).__name__, str(cause)))
        return await self._archive(message, page, status=status, errors=errors, giving_up=True)

    async def _record_wait(self, message: JobMessage) -> JobMessage:
        """Before a poll waits for the budget, its ledger due time moves past the wait (one write,
        only when the sweep could re-drive the job meanwhile): the sweep never re-drives a job whose
        poll is only waiting. Without a record (a first delivery) there is nothing to re-drive."""
        if message.ledger_etag is None or self._rt.budget.estimated_wait() <= _RECORDED_WAIT:
            return message
        held_until = self._now + timedelta(seconds=MAX_BUDGET_WAIT + _OWN_WORK)
        overdue_at = (message.due_at or self._now) + timedelta(seconds=self._rt.settings.sweep_grace_seconds)
        if overdue_at > held_until:
            return message
        etag = await self._rt.ledger.replace(message, next_poll_at=held_until, etag=message.ledger_etag)
        # ``None``: another copy moved the job on meanwhile; the reschedule below sorts that out.
        return message if etag is None else message.evolve(ledger_etag=etag)

    async def _budget_busy(self, message: JobMessage, busy: BudgetBusy, *, page: JobPage | None) -> Result:
        """The invocation has waited for the budget as long as it may: the poll goes back on the
        queue, due when the budget likely has room (never past the job's expiry margin), and the
        ledger records that time, so the sweep does not take the wait for a lost message."""
        now = self._rt.clock()
        wait = max(1.0, min(busy.wait, self._priority(message, page) - now.timestamp()))
        self._log.info("job %s: %s; polled again in %.0f s", self._job_id, busy, wait)
        decision = PollAgain(delay=wait, not_before=now + timedelta(seconds=wait))
        return await self._reschedule(message, decision)

    async def _reschedule(self, message: JobMessage, decision: PollAgain) -> Result:
        upcoming = message.evolve(attempt=message.attempt + 1, due_at=decision.not_before)
        ledger = self._rt.ledger
        etag = None
        if message.ledger_etag is not None:
            etag = await ledger.replace(upcoming, next_poll_at=decision.not_before, etag=message.ledger_etag)
        if etag is None:
            # No record yet, or this copy's ETag is not the record's: whoever creates the record
            # owns the job. (An ETag naming no record at all, e.g. a hand-made message, must not
            # drop the job: the create below then succeeds.)
            upcoming = self._backed(upcoming)
            etag = await ledger.create(upcoming, next_poll_at=decision.not_before)
        if etag is None:
            # Another message (a duplicate delivery, or the sweep's re-drive) moved the job on
            # since this one was written: it owns the next poll; this copy stops here.
            self._log.info("job %s: superseded by another message, dropping this copy", self._job_id)
            return Result(Outcome.SUPERSEDED, self._job_id)
        await self._rt.queues.schedule(
            upcoming.evolve(ledger_etag=etag), visibility_timeout=queue_visibility(decision.delay)
        )
        return Result(Outcome.RESCHEDULED, self._job_id, delay=decision.delay)

    async def _finish(
        self,
        message: JobMessage,
        status: str,
        errors: Sequence[Any],
        *,
        page: JobPage | None = None,
        items: Sequence[dict[str, Any]] = (),
    ) -> Result:
        tasks = render_tasks(self._job_id, items)
        record = JobRecord(
            job_id=self._job_id,
            status=status,
            display_name=(page.display_name if page else None) or message.display_name,
            created=page.created if page else None,
            last_updated=page.last_updated if page else None,
            expires=page.expires if page else message.expires_at,
            api_version=self._rt.settings.language_api_version,
            errors=errors,
            correlation_id=message.correlation_id,
            metadata=message.metadata,
        )
        archived_at = self._rt.clock()
        commit = await self._rt.archive.commit(record, tasks, now=archived_at)
        if self._rt.events is not None:
            # Announced before the ledger record goes: if this worker dies first, the redelivered
            # message or the sweep finds the manifest and announces the job.
            manifest = (
                render_manifest(record, tasks, now=archived_at)
                if commit is Commit.COMMITTED
                else await self._rt.archive.read_manifest(self._job_id)  # the winner's, not ours
            )
            if manifest is not None:
                await self._announce(message, manifest)
        self._rt.budget.jobs_changed(-1)
        if message.ledger_etag is not None or self._redelivered:
            await self._forget()
        if commit is Commit.ALREADY_ARCHIVED:
            return Result(Outcome.ALREADY_ARCHIVED, self._job_id)
        lag = None
        if record.last_updated is not None:
            # The service's clock may run a little ahead of ours: a lag is never negative.
            lag = max(0.0, (archived_at - record.last_updated).total_seconds())
        self._rt.telemetry.job_archived(status=status, lag_seconds=lag)
        details: list[tuple[str, AttributeValue]] = [
            ("tasks", len(tasks)),
            ("documents", sum(task.entry["documentCount"] for task in tasks)),
            ("entities", sum(task.entry["entityCount"] for task in tasks)),
        ]
        if lag is not None:
            details.append((LAG_SECONDS, round(lag, 3)))
        return Result(Outcome.ARCHIVED, self._job_id, status=status, details=tuple(details))

    async def _found_archived(self, message: JobMessage) -> bool:
        """Whether the job has its manifest; with events on, the job is announced (again) if so."""
        async with self._sent_or_recorded(message):
            return await archived(self._rt.archive, self._rt.events, self._job_id)

    async def _announce(self, message: JobMessage, manifest: bytes) -> None:
        """Send the job's archive event: its manifest exists, its message is not yet acknowledged."""
        assert self._rt.events is not None
        async with self._sent_or_recorded(message):
            await self._rt.events.announce_stored(manifest, job_id=self._job_id)

    @contextlib.asynccontextmanager
    async def _sent_or_recorded(self, message: JobMessage) -> AsyncIterator[None]:
        """A storage fault raises (never acknowledged before the event is sent: the host retries), but
        first makes sure of a ledger record: should this message end in the poison queue, the sweep
        still finds (and announces) the job. Best effort: storage is likely down as a whole."""
        try:
            yield
        except AzureError:
            if message.ledger_etag is None:
                with contextlib.suppress(AzureError):
                    await self._rt.ledger.create(message, next_poll_at=self._now)
            raise

    async def _forget(self) -> None:
        """Drop the ledger record of an archived job; the sweep cleans up if this fails."""
        try:
            await self._rt.ledger.delete(self._job_id)
        except AzureError as exc:
            self._log.warning("job %s is archived but its ledger record remains (%s)", self._job_id, exc)

    def _priority(self, message: JobMessage, page: JobPage | None) -> float:
        """The job's rank among requests waiting for the budget: its expiry margin (epoch seconds).

        A rank only: the message's own times (advisory) may order the waiting polls, never end a job."""
        margin = timedelta(seconds=self._rt.policy.expiry_margin)
        assert message.first_seen_at is not None
        deadline = _service_deadline(page) or message.expires_at or message.first_seen_at + RETENTION
        return (deadline - margin).timestamp()


def _service_deadline(page: JobPage | None) -> datetime | None:
    """When the job's results go, as the service's answer of this poll says (``None``: unknown)."""
    if page is None:
        return None
    if page.expires is not None:
        return page.expires
    return None if page.created is None else page.created + RETENTION


def _error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def _iso(value: datetime) -> str:
    return format_time(value) or ""
