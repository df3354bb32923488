"""Writing to the jobs queue (the next poll of a job), to its poison queue, and any queue of the app.

Messages are base64 of UTF-8 JSON, as the Functions host's queue trigger reads them. Queues are
created on first use when missing (a 404 answers that; no probe on every call).
"""

from __future__ import annotations

import contextlib
import json
from typing import Final

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from .messages import JobMessage
from .policy import MESSAGE_TIME_TO_LIVE

__all__ = ["JobQueues", "poison_body", "send_text"]

# 64 KiB once base64-encoded; a poison body that would not fit keeps the head of the original.
_MAX_BODY_BYTES: Final = 48 * 1024


class JobQueues:
    """The jobs queue and ``<JOBS_QUEUE>-poison``."""

    def __init__(self, *, jobs: QueueClient, poison: QueueClient) -> None:
        self._jobs = jobs
        self._poison = poison

    async def schedule(self, message: JobMessage, *, visibility_timeout: int) -> None:
        """Enqueue the next poll of a job, invisible for ``visibility_timeout`` seconds."""
        await send_text(self._jobs, message.to_json(), visibility_timeout=visibility_timeout)

    async def submit(self, text: str) -> None:
        """Put a message body on the jobs queue as upstream would (a backfill, a replayed poison)."""
        await send_text(self._jobs, text, visibility_timeout=0)

    async def poison(self, *, reason: str, original: str) -> None:
        """Park a message that can never succeed, with why, as ``{"reason", "message"}``."""
        await send_text(self._poison, poison_body(reason=reason, original=original), visibility_timeout=0)


def poison_body(*, reason: str, original: str) -> str:
    """The poison queue's wrapper: ``{"reason", "message"}``, the original's head if it would not fit."""
    body = json.dumps({"reason": reason, "message": original}, ensure_ascii=False)
    if len(body.encode("utf-8", "surrogatepass")) > _MAX_BODY_BYTES:
        head = original.encode("utf-8", "surrogatepass")[: _MAX_BODY_BYTES // 4].decode("utf-8", "ignore")
        body = json.dumps({"reason": f"{reason} (message truncated)", "message": head}, ensure_ascii=False)
    return body


async def send_text(
    queue: QueueClient, text: str, *, visibility_timeout: int, time_to_live: int = MESSAGE_TIME_TO_LIVE
) -> None:
    """Send ``text`` (the queue client base64-encodes it); the queue is created when a send says 404.

    ``time_to_live``: seconds the message stays on the queue unread (-1, the default: until read)."""
    try:
        await queue.send_message(text, visibility_timeout=visibility_timeout, time_to_live=time_to_live)
    except ResourceNotFoundError:
        with contextlib.suppress(ResourceExistsError):
            await queue.create_queue()
        await queue.send_message(text, visibility_timeout=visibility_timeout, time_to_live=time_to_live)
