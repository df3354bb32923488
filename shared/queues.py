"""Writing to the jobs queue (the next poll of a job), to its poison queue, and any queue of the app.

Messages are base64 of UTF-8 JSON, as the Functions host's queue trigger reads them. Queues are
created on first use when missing (a 404 answers that; no probe on every call).
"""

from __future__ import annotations

import base64
import contextlib

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from .jsontext import dumps_compact, well_formed
from .messages import QUEUE_MESSAGE_BYTES, JobMessage
from .policy import MESSAGE_TIME_TO_LIVE

__all__ = ["JobQueues", "poison_body", "send_text"]


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

    async def poison(self, *, reason: str, original: bytes | str) -> None:
        """Park a message that can never succeed, with why (see ``poison_body``)."""
        await send_text(self._poison, poison_body(reason=reason, original=original), visibility_timeout=0)


def poison_body(*, reason: str, original: bytes | str) -> str | bytes:
    """What the poison queue gets for ``original`` (the body as received; text is its UTF-8), never cut:

    ``{"reason", "message": <original text>}`` when the original is UTF-8 text and the wrapper fits
    a queue message; else ``{"reason", "messageBase64": <base64 of the original bytes>}``; and when
    not even that fits (an original of more than about 36 KiB that is not quotable text, far beyond
    the message limit), the original bytes as they came, as the host itself would have moved them
    (the reason is then in the outcome record and the poisoned-messages metric)."""
    reason = well_formed(reason)
    if isinstance(original, str):
        original = original.encode("utf-8", "surrogatepass")  # a lone surrogate: not UTF-8, base64
    try:
        text = original.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        body = dumps_compact({"reason": reason, "message": text})
        if _fits(body):
            return body
    body = dumps_compact({"reason": reason, "messageBase64": base64.b64encode(original).decode("ascii")})
    return body if _fits(body) else original


def _fits(body: str) -> bool:
    return len(body.encode("utf-8")) <= QUEUE_MESSAGE_BYTES


async def send_text(
    queue: QueueClient,
    text: str | bytes,
    *,
    visibility_timeout: int,
    time_to_live: int = MESSAGE_TIME_TO_LIVE,
) -> None:
    """Send ``text`` (the queue client base64-encodes it: UTF-8 text, or bytes as they are); the
    queue is created when a send says 404.

    ``time_to_live``: seconds the message stays on the queue unread (-1, the default: until read)."""
    try:
        await queue.send_message(text, visibility_timeout=visibility_timeout, time_to_live=time_to_live)
    except ResourceNotFoundError:
        with contextlib.suppress(ResourceExistsError):
            await queue.create_queue()
        await queue.send_message(text, visibility_timeout=visibility_timeout, time_to_live=time_to_live)
