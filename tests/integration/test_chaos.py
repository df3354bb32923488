"""Chaos: hundreds of jobs through two local runners at once, with injected service faults and
duplicate deliveries. Every job must end with exactly one manifest whose task blobs are complete
and match their SHA-256, nothing may stay pending, and only the deliberately bad messages may be
poisoned."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueClient

import function_app
from local.emulator import EmulatorConfig, Faults, serve
from local.host.azurite import Azurite
from local.host.runner import QueueRunner
from local.upstream import enqueue, submit_job
from shared.language import InPlaceRetry
from shared.runtime import build_runtime, close_process_runtime, install_process_runtime
from shared.settings import load_settings
from tests.conftest import EMULATOR_KEY

from .conftest import DEFAULT_TASKS, stack_environ

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

JOBS = 200
DUPLICATE_SHARE = 0.2
BAD_MESSAGES = [
    "not-a-uuid",
    '{"jobId": "7"}',
    "{broken",
    json.dumps({"operationLocation": f"https://evil.example/language/analyze-text/jobs/{uuid.uuid4()}"}),
]
FAULTS = Faults(
    rate_429=0.05,
    retry_after_seconds=1,
    rate_5xx=0.05,
    rate_reset=0.03,
    rate_slow=0.01,
    slow_seconds=2.0,  # beyond the client timeout installed below
    rate_malformed=0.03,
)


@pytest.fixture
async def chaos_emulator() -> AsyncIterator[Any]:
    config = EmulatorConfig(
        api_key=EMULATOR_KEY, not_started_seconds=0.5, running_seconds=1.5, faults=FAULTS, seed=20261129
    )
    async with serve(config) as server:
        yield server


async def submit(http: aiohttp.ClientSession, base_url: str, documents: int) -> str:
    docs = [
        {"id": str(n), "text": f"Doc {n}: a trip to Seattle and the Pacific Northwest on March 15, 2025."}
        for n in range(documents)
    ]
    job = await submit_job(
        http, base_url, key=EMULATOR_KEY, documents=docs, tasks=DEFAULT_TASKS, display_name="chaos"
    )
    return job.job_id


async def test_every_job_is_archived_exactly_once_under_faults_and_duplicates(
    azurite: Azurite, chaos_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = stack_environ(
        azurite, chaos_emulator.base_url, SWEEP_SCHEDULE="*/3 * * * * *", SWEEP_GRACE_SECONDS="5"
    )
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(environ)
    # Short client timeouts and in-place retries, so that "slow" faults cost seconds, not minutes.
    await install_process_runtime(
        await build_runtime(
            settings,
            retry=InPlaceRetry(attempts=3, base_delay=0.05, max_wait=1.0),
            language_timeout=aiohttp.ClientTimeout(total=1.5, sock_connect=1.0, sock_read=1.0),
        )
    )
    rng = random.Random(7)
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        sizes = [rng.choice([1, 3, 5, 21, 25]) for _ in range(JOBS)]
        job_ids = await asyncio.gather(*(submit(http, chaos_emulator.base_url, size) for size in sizes))
    expected_documents = dict(zip(job_ids, sizes, strict=True))

    async with QueueClient.from_connection_string(azurite.connection_string, settings.jobs_queue) as queue:
        await queue.create_queue()
        messages = [
            json.dumps({"jobId": job_id, "correlationId": f"c-{n}"}) for n, job_id in enumerate(job_ids)
        ]
        messages += rng.sample(messages, int(JOBS * DUPLICATE_SHARE))  # upstream sent these twice
        messages += BAD_MESSAGES
        rng.shuffle(messages)
        for text in messages:
            await enqueue(queue, text)

    async with BlobServiceClient.from_connection_string(azurite.connection_string) as blobs:
        archive = blobs.get_container_client(settings.archive_container)
        ledger = blobs.get_container_client(settings.ledger_container)
        with contextlib.suppress(ResourceExistsError):
            await archive.create_container()

        async def manifests() -> set[str]:
            return {
                b.name.split("/")[0] async for b in archive.list_blobs() if b.name.endswith("/manifest.json")
            }

        async def pending() -> int:
            try:
                return len([b async for b in ledger.list_blobs()])
            except ResourceNotFoundError:
                return 0

        async def queued() -> int:
            async with QueueClient.from_connection_string(
                azurite.connection_string, settings.jobs_queue
            ) as queue:
                return (await queue.get_queue_properties()).approximate_message_count or 0

        async def done() -> bool:
            # Quiet as well as complete: an invocation still running (a duplicate that saw the job
            # unfinished just before another copy archived it) may yet write a ledger record and a
            # next poll, which the next poll then clears. Stopping at that instant would judge a
            # moment, not the end state.
            return (
                all(runner.in_flight == 0 for runner in runners)
                and len(await manifests()) == JOBS
                and await pending() == 0
                and await queued() == 0
            )

        runners = [
            QueueRunner(
                app=function_app.app, connection_string=azurite.connection_string, environ=environ, name=name
            )
            for name in ("runner-a", "runner-b")
        ]
        try:
            await asyncio.gather(*(runner.run_until(done, timeout=240) for runner in runners))
        finally:
            for runner in runners:
                await runner.aclose()
            await close_process_runtime()

        assert await manifests() == set(job_ids)
        assert await pending() == 0
        names = [b.name async for b in archive.list_blobs()]
        assert len([n for n in names if n.endswith("/manifest.json")]) == JOBS  # exactly one each
        for job_id in job_ids:
            manifest = json.loads(await (await archive.download_blob(f"{job_id}/manifest.json")).readall())
            assert manifest["status"] == "succeeded", manifest["errors"]
            assert sorted(n for n in names if n.startswith(f"{job_id}/tasks/")) == sorted(
                task["blob"] for task in manifest["tasks"]
            )
            for task in manifest["tasks"]:
                data = await (await archive.download_blob(task["blob"])).readall()
                assert hashlib.sha256(data).hexdigest() == task["sha256"]
                assert task["documentCount"] == expected_documents[job_id]

    async with QueueClient.from_connection_string(azurite.connection_string, settings.poison_queue) as poison:
        parked = [
            json.loads(base64.b64decode(m.content)) async for m in poison.receive_messages(max_messages=32)
        ]
    assert sorted(p["message"] for p in parked) == sorted(BAD_MESSAGES)
    elapsed = time.monotonic() - started
    statuses = {status for (_, _, status), _count in chaos_emulator.state.requests.items()}
    assert {429, None} <= statuses, "rate limiting and resets were injected"
    assert statuses & {500, 502, 503, 504}, "server errors were injected"
    assert sum(r.stats.invoked for r in runners) >= JOBS
    print(f"chaos: {JOBS} jobs, {len(messages)} messages, two runners, {elapsed:.1f} s")
