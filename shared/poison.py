"""Reading the poison queue back, and replaying what can now succeed onto the jobs queue.

Two kinds of message end in ``<JOBS_QUEUE>-poison``: the app's own ``{"reason", "message"}``
wrapper (a message that could never succeed), and a message the Functions host moved there as it
was, after ``maxDequeueCount`` failed attempts (storage down, a bug). Replaying sends the original
text back to the jobs queue, judged by the app's own parser: a message that would be poison again
stays. A message is deleted from the poison queue only after its replay was sent, so a crash in
between duplicates it (which the app tolerates) and never loses it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient

from .messages import InvalidMessage, parse_body
from .queues import JobQueues
from .settings import Settings

__all__ = ["PoisonReplay", "ReplayAction", "ReplayOutcome", "unwrap_poison"]

_BATCH: Final = 32  # the queue service's maximum per receive
#: While a run looks at a message, others do not see it; a kept one is made visible again at the end.
_LEASE_SECONDS: Final = 300
#: Messages looked at per run at most: a queue that keeps filling must not keep a run going forever.
MAX_PER_RUN: Final = 100_000


class ReplayAction(StrEnum):
    REPLAYED = "replayed"
    KEPT = "kept"
    WOULD_REPLAY = "would-replay"


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    action: ReplayAction
    job_id: str | None
    reason: str | None  # kept: why it would be poison again; otherwise why it was poisoned, if known


def unwrap_poison(content: bytes) -> tuple[bytes, str | None]:
    """The original message body and the app's poison reason (``None``: the host moved it as it was)."""
    try:
        body = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return content, None
    if (
        isinstance(body, dict)
        and body.keys() == {"reason", "message"}
        and isinstance(body["reason"], str)
        and isinstance(body["message"], str)
    ):
        return body["message"].encode("utf-8", "surrogatepass"), body["reason"]
    return content, None


class PoisonReplay:
    """One pass over the poison queue (``replay``), bounded by ``MAX_PER_RUN`` messages."""

    def __init__(
        self,
        *,
        poison: QueueClient,
        queues: JobQueues,
        settings: Settings,
        lease_seconds: int = _LEASE_SECONDS,
    ) -> None:
        self._poison = poison
        self._queues = queues
        self._settings = settings
        self._lease = lease_seconds

    async def replay(self, *, dry_run: bool) -> AsyncIterator[ReplayOutcome]:
        """An outcome per poison message; ``dry_run`` sends and deletes nothing."""
        seen: set[str] = set()
        held: list[tuple[str, str]] = []  # (id, pop receipt) looked at and left: visible again at the end
        try:
            while len(seen) < MAX_PER_RUN:
                try:
                    batch = [
                        message
                        async for message in self._poison.receive_messages(
                            messages_per_page=_BATCH, max_messages=_BATCH, visibility_timeout=self._lease
                        )
                    ]
                except ResourceNotFoundError:
                    return  # no poison queue: nothing was ever poisoned
                # A message seen before is back because its lease ran out during a long pass: done.
                fresh = [message for message in batch if message.id not in seen]
                if not fresh:
                    return
                seen.update(message.id for message in fresh)
                for outcome in await asyncio.gather(*(self._one(m, dry_run, held) for m in fresh)):
                    yield outcome
        finally:
            for message_id, receipt in held:
                # By id, without content: given the message object, the SDK would re-send (and
                # re-encode) its content. Best effort: if this fails the lease simply runs out.
                with contextlib.suppress(AzureError):
                    await self._poison.update_message(message_id, pop_receipt=receipt, visibility_timeout=0)

    async def _one(self, message: QueueMessage, dry_run: bool, held: list[tuple[str, str]]) -> ReplayOutcome:
        try:
            original, reason = unwrap_poison(_decode(message.content))
            job = parse_body(original, settings=self._settings)
        except InvalidMessage as exc:
            held.append((message.id, message.pop_receipt or ""))
            return ReplayOutcome(ReplayAction.KEPT, None, exc.reason)
        if dry_run:
            held.append((message.id, message.pop_receipt or ""))
            return ReplayOutcome(ReplayAction.WOULD_REPLAY, job.job_id, reason)
        await self._queues.submit(original.decode("utf-8"))  # parse_body proved it is UTF-8
        # Only now: a crash before this line leaves the message here, to be replayed again.
        with contextlib.suppress(ResourceNotFoundError):  # already gone: nothing left to do
            await self._poison.delete_message(message)
        return ReplayOutcome(ReplayAction.REPLAYED, job.job_id, reason)


def _decode(content: object) -> bytes:
    """The message's bytes: the queue holds base64 (the host's encoding and the app's)."""
    try:
        return base64.b64decode(str(content or ""), validate=True)
    except binascii.Error:
        raise InvalidMessage("unparseable", "poison message is not base64") from None
