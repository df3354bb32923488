"""What an upstream system does: submit an analyze-text job and tell the archiver about it.

Used by the demo, the benchmark and the tests, against the emulator or a real Language resource.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue.aio import QueueClient

__all__ = ["SubmittedJob", "enqueue", "enqueue_all", "job_message", "submit_job"]


@dataclass(frozen=True, slots=True)
class SubmittedJob:
    job_id: str
    operation_location: str


async def submit_job(
    http: aiohttp.ClientSession,
    endpoint: str,
    *,
    key: str,
    documents: Sequence[Mapping[str, Any]],
    tasks: Sequence[Mapping[str, Any]],
    display_name: str | None = None,
    api_version: str = "2024-11-01",
) -> SubmittedJob:
    """``POST {endpoint}/language/analyze-text/jobs``; the job id is the operation-location's last segment."""
    body: dict[str, Any] = {"analysisInput": {"documents": list(documents)}, "tasks": list(tasks)}
    if display_name is not None:
        body["displayName"] = display_name
    async with http.post(
        f"{endpoint}/language/analyze-text/jobs",
        params={"api-version": api_version},
        json=body,
        headers={"Ocp-Apim-Subscription-Key": key},
    ) as response:
        if response.status != 202:
            raise RuntimeError(f"submit failed: HTTP {response.status} {await response.text()}")
        location = response.headers["operation-location"]
    return SubmittedJob(job_id=location.split("/jobs/")[1].split("?")[0], operation_location=location)


async def enqueue(queue: QueueClient, text: str) -> None:
    """Put one message on the jobs queue, base64-encoded as the Functions host reads it."""
    await queue.send_message(base64.b64encode(text.encode("utf-8")).decode("ascii"))


async def enqueue_all(
    connection_string: str, queue_name: str, texts: Iterable[str], *, concurrency: int = 16
) -> None:
    """Put every text on the queue (created if missing), ``concurrency`` sends at a time."""
    gate = asyncio.Semaphore(concurrency)
    async with QueueClient.from_connection_string(connection_string, queue_name) as queue:
        with contextlib.suppress(ResourceExistsError):
            await queue.create_queue()

        async def send(text: str) -> None:
            async with gate:
                await enqueue(queue, text)

        await asyncio.gather(*(send(text) for text in texts))


def job_message(job_id: str, **fields: Any) -> str:
    """The public message schema: ``{"jobId", ...optional fields}``."""
    return json.dumps({"jobId": job_id, **{k: v for k, v in fields.items() if v is not None}})
