"""What the Functions triggers call: the binding payload in, one call into the core."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from .runtime import process_runtime
from .worker import Result, handle_message

if TYPE_CHECKING:
    from .sweep import SweepReport

__all__ = ["on_jobs_message", "on_sweep_timer"]

_log = logging.getLogger("archiver")
# azure-core logs every storage request at INFO; in Functions that would be a trace per request,
# billed as telemetry and drowning the app's own one-line outcomes.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)


async def on_jobs_message(body: bytes, *, dequeue_count: int, enqueued_at: datetime | None = None) -> Result:
    """One message of the jobs queue (already base64-decoded by the binding); ``enqueued_at``: its
    insertion time, as the queue service recorded it."""
    return await handle_message(
        body, dequeue_count=dequeue_count, runtime=await process_runtime(), enqueued_at=enqueued_at
    )


async def on_sweep_timer(*, past_due: bool) -> SweepReport:
    # The sweep (and the backlog it measures) loads with its first run: a poll's cold start,
    # the common one, does not need it.
    from .sweep import run_sweep  # noqa: PLC0415

    if past_due:
        _log.info("sweep timer is past due: running now")
    return await run_sweep(await process_runtime())
