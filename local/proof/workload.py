"""What the chaos run does to the app from outside: submit and enqueue the jobs (duplicates and bad
messages among them), lose one of the app's own next-poll messages, purge jobs before the app first
polls them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import Sequence

import aiohttp
from azure.core.exceptions import AzureError
from azure.storage.queue.aio import QueueClient

from local.proof.plan import API_KEY, BAD_MESSAGES, TEXT, ChaosPlan, Lifecycle
from local.upstream import enqueue_all, submit_job

__all__ = ["drop_app_message", "enqueue_messages", "purge", "submit_jobs"]


async def submit_jobs(
    http: aiohttp.ClientSession, emulator_url: str, plan: ChaosPlan
) -> dict[str, Lifecycle]:
    """Submit the jobs, lifecycle by lifecycle (the emulator's timing applies to what is submitted next)."""
    counts = [int(plan.jobs * cycle.share) for cycle in plan.lifecycles]
    counts[0] += plan.jobs - sum(counts)
    gate = asyncio.Semaphore(16)
    jobs: dict[str, Lifecycle] = {}
    for cycle, count in zip(plan.lifecycles, counts, strict=True):
        timing = {"notStartedSeconds": cycle.not_started_seconds, "runningSeconds": cycle.running_seconds}
        async with http.put(f"{emulator_url}/_emulator/timing", json=timing) as response:
            response.raise_for_status()
        documents = [{"id": str(n), "language": "en", "text": TEXT} for n in range(cycle.documents)]

        async def one(cycle: Lifecycle = cycle, documents: list[dict[str, str]] = documents) -> str:
            async with gate:
                job = await submit_job(
                    http, emulator_url, key=API_KEY, documents=documents, tasks=cycle.tasks
                )
            return job.job_id

        for job_id in await asyncio.gather(*(one() for _ in range(count))):
            jobs[job_id] = cycle
    return jobs


async def enqueue_messages(
    connection_string: str, queue_name: str, job_ids: list[str], plan: ChaosPlan, rng: random.Random
) -> int:
    """One message per job, duplicates of some, and the bad ones, in random order; their count."""
    messages = [
        json.dumps({"jobId": job_id, "correlationId": f"chaos-{n}"}) for n, job_id in enumerate(job_ids)
    ]
    messages += rng.sample(messages, int(len(job_ids) * plan.duplicate_share))
    messages += BAD_MESSAGES
    rng.shuffle(messages)
    await enqueue_all(connection_string, queue_name, messages)
    return len(messages)


async def drop_app_message(connection_string: str, queue_name: str) -> bool:
    """Delete one of the app's own next-poll messages, as if the queue had lost it; True if one was.

    A peek first (no dequeue count changes) finds how far down the first one is; only the messages
    up to it are received, and the others among them handed back at once (visible again, one more
    dequeue each: an attempt that finds none must not push every waiting message towards
    ``maxDequeueCount``). The app's messages wait invisible for their delay, so an attempt often finds none.
    """
    try:
        async with QueueClient.from_connection_string(connection_string, queue_name, retry_total=0) as queue:
            peeked = [_text(m.content) for m in await queue.peek_messages(max_messages=32)]
            depth = next((n + 1 for n, text in enumerate(peeked) if '"_poll"' in text), 0)
            if not depth:
                return False
            batch = [m async for m in queue.receive_messages(max_messages=depth, visibility_timeout=30)]
            dropped = False
            for message in batch:
                if not dropped and '"_poll"' in _text(message.content):
                    await queue.delete_message(message)
                    dropped = True
                else:
                    await queue.update_message(message, visibility_timeout=0)
            return dropped
    except AzureError:
        return False  # storage is down: the leased ones come back after 30 s


def _text(content: object) -> str:
    return base64.b64decode(str(content)).decode("utf-8", "replace")


async def purge(http: aiohttp.ClientSession, emulator_url: str, job_ids: Sequence[str]) -> None:
    """The service forgets ``job_ids`` (404 from now on), before the app first polls them."""
    for job_id in job_ids:
        async with http.post(
            f"{emulator_url}/_emulator/jobs/{job_id}/overrides", json={"purge": True}
        ) as response:
            response.raise_for_status()
