"""The timer sweep: no accepted job is ever forgotten.

It lists the ledger (one page at a time; the due time is in each blob's metadata, so the listing
alone finds overdue jobs), and for each job whose next poll is overdue by more than
``SWEEP_GRACE_SECONDS`` (its message was lost, poisoned, or its archive was interrupted) it
either drops the record (the manifest exists; with ``EVENTS_QUEUE`` set the job is announced
first) or re-drives the job with a fresh message that takes over the record's ETag. Work is bounded
per run and runs with bounded concurrency.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from azure.core.exceptions import AzureError

from .backlog import QueueWatch
from .events import archived
from .ledger import is_overdue
from .runtime import Runtime
from .telemetry import job_attributes

__all__ = ["SweepReport", "run_sweep"]

_log = logging.getLogger("archiver.sweep")
_CONCURRENCY: Final = 16
#: Jobs re-driven per run at most; the rest wait for the next run (keeps one run short and cheap).
MAX_PER_RUN: Final = 2000
#: The most the request budget's lateness adds to the grace: a job's results live 24 hours.
MAX_LATENESS: Final = 24 * 3600.0


@dataclass(slots=True)
class SweepReport:
    scanned: int = 0
    overdue: int = 0
    redriven: int = 0
    cleaned: int = 0
    failed: int = 0
    job_ids: list[str] = field(default_factory=list)  # re-driven ones


async def run_sweep(runtime: Runtime) -> SweepReport:
    """One sweep of the ledger, under one span; its findings are the ledger metrics. Every run also
    beats the heartbeat (first: a sweep that then fails still shows the app alive, its exception
    says the rest) and measures the queues' backlog."""
    runtime.telemetry.sweep_ran()
    with runtime.telemetry.span("archiver.sweep_ledger") as span:
        watch = QueueWatch(queues=runtime.watched_queues)
        await watch.observe(now=runtime.clock(), telemetry=runtime.telemetry)
        report = await _sweep(runtime)
        for name, value in (("scanned", report.scanned), ("overdue", report.overdue)):
            span.set_attribute(name, value)
    return report


async def _sweep(runtime: Runtime) -> SweepReport:
    report = SweepReport()
    now = runtime.clock()
    grace = timedelta(seconds=runtime.settings.sweep_grace_seconds + await _lateness(runtime))
    overdue: list[str] = []
    complete = True
    async for entry in runtime.ledger.entries():
        report.scanned += 1
        if is_overdue(entry.next_poll_at, now=now, grace=grace):
            overdue.append(entry.job_id)
            if len(overdue) >= MAX_PER_RUN:
                complete = False
                break
    report.overdue = len(overdue)
    runtime.telemetry.ledger_swept(pending=report.scanned, overdue=report.overdue)
    if complete:
        # The exact count corrects the instances' running estimate of pending jobs, on which the
        # request budget spaces the polls (one storage write per sweep).
        try:
            await runtime.budget.set_pending(report.scanned)
        except AzureError as exc:
            _log.warning("sweep could not share the pending count with the request budget (%s)", exc)
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def visit(job_id: str) -> None:
        async with gate:
            try:
                await _visit(runtime, job_id, report, grace=grace)
            except Exception:
                # One bad record must not stop the others; it stays in the ledger for next time.
                report.failed += 1
                _log.exception(
                    "sweep could not process ledger record of job %s", job_id, extra=job_attributes(job_id)
                )

    await asyncio.gather(*(visit(job_id) for job_id in overdue))
    _log.info(
        "archiver.sweep scanned=%d overdue=%d redriven=%d cleaned=%d failed=%d",
        report.scanned,
        report.overdue,
        report.redriven,
        report.cleaned,
        report.failed,
    )
    return report


async def _lateness(runtime: Runtime) -> float:
    """How late the app's polls come lately: while the Language budget holds polls back (a long
    429 storm, a backlog), a job whose poll is late by that much only waits its turn."""
    try:
        late = await runtime.budget.lateness()
    except AzureError as exc:
        _log.warning("sweep could not read the request budget (%s): judging by SWEEP_GRACE_SECONDS", exc)
        return 0.0
    # Shared state read from storage: never NaN, negative or beyond a job's lifetime in the grace.
    late = max(0.0, min(late, MAX_LATENESS)) if math.isfinite(late) else 0.0
    if late > 0:
        _log.info("archiver.sweep: polls come up to %.0f s late (request budget): added to the grace", late)
    return late


async def _visit(runtime: Runtime, job_id: str, report: SweepReport, *, grace: timedelta) -> None:
    # With events on, the job is announced before its ledger record goes: a worker may have died
    # between the manifest and the event.
    if await archived(runtime.archive, runtime.events, job_id):
        await runtime.ledger.delete(job_id)
        report.cleaned += 1
        return
    # An unreadable record still names its job: ``get`` keeps it (polled from its id alone).
    record = await runtime.ledger.get(job_id)
    now = runtime.clock()
    if record is None or not is_overdue(record.next_poll_at, now=now, grace=grace):
        return  # archived or moved on since the listing
    # Due now: the re-driven poll's lateness is not the budget's backlog.
    message = record.message.evolve(due_at=now)
    etag = await runtime.ledger.replace(message, next_poll_at=now, etag=record.etag)
    if etag is None:
        return  # its own message moved it on meanwhile
    await runtime.queues.schedule(message.evolve(ledger_etag=etag), visibility_timeout=0)
    report.redriven += 1
    report.job_ids.append(job_id)
    _log.warning(
        "archiver.redriven jobId=%s: its next poll was overdue",
        job_id,
        extra=job_attributes(job_id, record.message.correlation_id),
    )
