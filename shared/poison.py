"""Reading the poison queue back, and replaying what can now succeed onto the jobs queue.

Two kinds of message end in ``<JOBS_QUEUE>-poison``: the app's own wrapper (a message that could
never succeed), ``{"reason", "message"}`` or, for an original too large to quote as JSON text,
``{"reason", "messageBase64"}``; and a message the Functions host moved there as it was, after
``maxDequeueCount`` failed attempts (storage down, a bug). Replaying sends the original text back
to the jobs queue, judged by the app's own parser: a message that would be poison again stays, and
so does one whose job is already archived (sending it again would only cost a poll). A message is
deleted from the poison queue only after its replay was sent, so a crash in between duplicates it
(which the app tolerates) and never loses it. Whatever a message holds, it gets an outcome: the
run never stops at one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient

from .archive import ArchiveWriter
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
    ALREADY_ARCHIVED = "already-archived"  # the job has its manifest: not sent, left on the queue


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    action: ReplayAction
    job_id: str | None
    reason: str | None  # kept: why it would be poison again; otherwise why it was poisoned, if known
    #: The original message as read (for a caller that must mask what it quotes); not shown.
    original: bytes = field(default=b"", compare=False, repr=False)


def unwrap_poison(content: bytes) -> tuple[bytes, str | None]:
    """The original message body and the app's poison reason (``None``: the host moved it as it was).

    Raises ``InvalidMessage`` for the app's wrapper whose ``messageBase64`` is not base64.
    """
    try:
        body = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return content, None
    if not isinstance(body, dict) or not isinstance(body.get("reason"), str):
        return content, None
    reason = body["reason"]
    if body.keys() == {"reason", "message"} and isinstance(body["message"], str):
        return body["message"].encode("utf-8", "surrogatepass"), reason
    if body.keys() == {"reason", "messageBase64"} and isinstance(body["messageBase64"], str):
        try:
            return base64.b64decode(body["messageBase64"], validate=True), reason
        except binascii.Error:
            raise InvalidMessage("unparseable", "the poison wrapper's messageBase64 is not base64") from None
    return content, None


class PoisonReplay:
    """One pass over the poison queue (``replay``), bounded by ``MAX_PER_RUN`` messages."""

    def __init__(
        self,
        *,
        poison: QueueClient,
        queues: JobQueues,
        settings: Settings,
        archive: ArchiveWriter | None = None,
        lease_seconds: int = _LEASE_SECONDS,
    ) -> None:
        """``archive``, when given, is asked whether each job is already archived (then not sent)."""
        self._poison = poison
        self._queues = queues
        self._settings = settings
        self._archive = archive
        self._lease = lease_seconds

    async def replay(self, *, dry_run: bool) -> AsyncIterator[ReplayOutcome]:
        """An outcome per poison message; ``dry_run`` sends and deletes nothing."""
        seen: dict[str, int] = {}  # id: the order received
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
                seen.update((message.id, len(seen) + i) for i, message in enumerate(fresh))
                for outcome in await asyncio.gather(*(self._one(m, dry_run, held) for m in fresh)):
                    yield outcome
        finally:
            # In the order received, so that the queue keeps its order for the next run.
            for message_id, receipt in sorted(held, key=lambda pair: seen.get(pair[0], 0)):
                # By id, without content: given the message object, the SDK would re-send (and
                # re-encode) its content. Best effort: if this fails the lease simply runs out.
                with contextlib.suppress(AzureError):
                    await self._poison.update_message(message_id, pop_receipt=receipt, visibility_timeout=0)

    async def _one(self, message: QueueMessage, dry_run: bool, held: list[tuple[str, str]]) -> ReplayOutcome:
        original = b""
        try:
            original, reason = unwrap_poison(_decode(message.content))
            job = parse_body(original, settings=self._settings)
        except InvalidMessage as exc:
            held.append((message.id, message.pop_receipt or ""))
            return ReplayOutcome(ReplayAction.KEPT, None, exc.reason, original)
        except RecursionError:  # whatever the parser lets through: kept and reported, the run goes on
            held.append((message.id, message.pop_receipt or ""))
            return ReplayOutcome(ReplayAction.KEPT, None, "unparseable: nested too deep", original)
        if self._archive is not None and await self._archive.is_archived(job.job_id):
            held.append((message.id, message.pop_receipt or ""))
            return ReplayOutcome(ReplayAction.ALREADY_ARCHIVED, job.job_id, reason, original)
        if dry_run:
            held.append((message.id, message.pop_receipt or ""))
            return ReplayOutcome(ReplayAction.WOULD_REPLAY, job.job_id, reason, original)
        await self._queues.submit(original.decode("utf-8"))  # parse_body proved it is UTF-8
        # Only now: a crash before this line leaves the message here, to be replayed again.
        with contextlib.suppress(ResourceNotFoundError):  # already gone: nothing left to do
            await self._poison.delete_message(message)
        return ReplayOutcome(ReplayAction.REPLAYED, job.job_id, reason, original)


def _decode(content: object) -> bytes:
    """The message's bytes: the queue holds base64 (the host's encoding and the app's)."""
    try:
        return base64.b64decode(str(content or ""), validate=True)
    except binascii.Error:
        raise InvalidMessage("unparseable", "poison message is not base64") from None
