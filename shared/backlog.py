"""The queues' backlog as each sweep sees it: every queue's approximate length and the age of its
first visible message, emitted as metrics (DESIGN.md, "Telemetry") for the backlog alerts.

Keyless and cheap: per queue and sweep, one Get Queue Metadata (the length) and one Peek Messages of
one message (its insertion time); the app's identity reads its queues already. The age counts from
the message's insertion: a rescheduled poll becomes visible already as old as its delay
(``POLL_MAX_DELAY_SECONDS`` at most), which the age alert's threshold leaves room for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from .telemetry import QueueRole, Telemetry

__all__ = ["Backlog", "QueueWatch", "oldest_age"]

_log = logging.getLogger("archiver.backlog")


@dataclass(frozen=True, slots=True)
class Backlog:
    """One queue at one moment: approximate messages (invisible ones included) and the seconds its
    first visible message has waited since it was inserted (0: no visible message)."""

    queue: QueueRole
    length: int
    oldest_age: float


def oldest_age(inserted_on: datetime | None, *, now: datetime) -> float:
    """Seconds since ``inserted_on``, never negative (another machine's clock may run ahead); 0 for
    no message."""
    if inserted_on is None:
        return 0.0
    return max(0.0, (now - inserted_on).total_seconds())


class QueueWatch:
    """Measures the app's queues (by role) and records what it finds."""

    def __init__(self, *, queues: Mapping[QueueRole, QueueClient]) -> None:
        self._queues = dict(queues)

    async def observe(self, *, now: datetime, telemetry: Telemetry) -> list[Backlog]:
        """Every queue's backlog, recorded as metrics; a queue that cannot be read is logged and
        left out (the sweep goes on)."""
        found = await asyncio.gather(
            *(self._one(role, queue, now=now) for role, queue in self._queues.items())
        )
        backlogs = [backlog for backlog in found if backlog is not None]
        for backlog in backlogs:
            telemetry.queue_backlog(backlog.queue, length=backlog.length, oldest_age=backlog.oldest_age)
        return backlogs

    async def _one(self, role: QueueRole, queue: QueueClient, *, now: datetime) -> Backlog | None:
        try:
            properties = await queue.get_queue_properties()
            peeked = await queue.peek_messages(max_messages=1)
        except ResourceNotFoundError:
            # Created on first use (the poison queue before the first poison message): nothing waits.
            return Backlog(role, 0, 0.0)
        except AzureError as exc:
            _log.warning("could not measure the %s queue %s (%s)", role.value, queue.queue_name, exc)
            return None
        first = peeked[0].inserted_on if peeked else None
        return Backlog(role, max(0, properties.approximate_message_count or 0), oldest_age(first, now=now))
