"""A per-test app stack: its own archive container and queues on the shared Azurite and emulator,
the app's settings in the environment, and helpers to submit jobs and inspect what was archived."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.functions.queue import QueueMessage
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient

import function_app
from local.host.azurite import Azurite
from local.host.functions import functions_of
from local.upstream import submit_job
from shared.messages import JobMessage
from shared.runtime import close_process_runtime, process_runtime
from shared.settings import Settings, load_settings
from tests.conftest import EMULATOR_KEY

DEFAULT_TASKS: Sequence[Mapping[str, Any]] = (
    {"kind": "EntityRecognition", "taskName": "people and places", "parameters": {"modelVersion": "latest"}},
    {
        "kind": "CustomEntityRecognition",
        "taskName": "regions",
        "parameters": {"projectName": "MyProject", "deploymentName": "MyDeployment"},
    },
)


def documents(
    count: int, text: str = "I had a wonderful trip to Seattle last week, then the Pacific Northwest."
) -> list[dict[str, str]]:
    return [{"id": str(n), "language": "en", "text": text} for n in range(1, count + 1)]


@dataclass
class Stack:
    """The app under test, wired to real Azurite and the real emulator through the environment."""

    environ: dict[str, str]
    settings: Settings
    emulator_url: str
    http: aiohttp.ClientSession
    blobs: BlobServiceClient
    queues: QueueServiceClient
    submitted: list[str] = field(default_factory=list)

    # -- the Language side ---------------------------------------------------------------
    async def submit(
        self,
        docs: Sequence[Mapping[str, Any]] | None = None,
        tasks: Sequence[Mapping[str, Any]] = DEFAULT_TASKS,
        *,
        display_name: str | None = "integration test",
    ) -> str:
        job = await submit_job(
            self.http,
            self.emulator_url,
            key=EMULATOR_KEY,
            documents=docs if docs is not None else documents(2),
            tasks=tasks,
            display_name=display_name,
            api_version=self.settings.language_api_version,
        )
        job_id = job.job_id
        self.submitted.append(job_id)
        return job_id

    async def admin(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> Any:
        async with self.http.request(
            method, f"{self.emulator_url}/_emulator/{path}", json=payload
        ) as response:
            assert response.status < 300, await response.text()
            return await response.json() if response.content_type == "application/json" else None

    async def requests_for(self, job_id: str) -> dict[str, int]:
        stats = await self.admin("GET", "stats")
        return dict(stats.get("byJob", {}).get(job_id, {}))

    # -- the Functions side --------------------------------------------------------------
    async def rescheduled(self, message: JobMessage) -> str:
        """What the app itself wrote when it rescheduled ``message`` before: its ledger record, and
        the message text bound to that record (the app's own fields are believed only so far as the
        record backs them)."""
        etag = await (await process_runtime()).ledger.create(message, next_poll_at=datetime.now(UTC))
        assert etag is not None
        return message.evolve(ledger_etag=etag).to_json()

    async def deliver(
        self,
        body: str | bytes | Mapping[str, Any],
        *,
        dequeue_count: int = 1,
        enqueued_at: datetime | None = None,
    ) -> None:
        """Hand one message to the real queue-triggered function, as the host would (``enqueued_at``:
        its insertion time, unknown by default)."""
        if isinstance(body, Mapping):
            body = json.dumps(body)
        raw = body.encode("utf-8") if isinstance(body, str) else body
        poll_job = app_function("poll_job")
        message = QueueMessage(  # type: ignore[no-untyped-call]
            id=str(uuid.uuid4()), body=raw, dequeue_count=dequeue_count, insertion_time=enqueued_at
        )
        await poll_job(message)

    async def next_job_message(self, *, wait: float = 10.0) -> tuple[str, int]:
        """Wait for the app's next message on the jobs queue; return (text, dequeue_count)."""
        queue = self.queues.get_queue_client(self.settings.jobs_queue)
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            async for message in queue.receive_messages(max_messages=1, visibility_timeout=30):
                await queue.delete_message(message)
                return base64.b64decode(message.content).decode("utf-8"), message.dequeue_count or 1
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no message on {self.settings.jobs_queue} within {wait} s")
            await asyncio.sleep(0.1)

    async def queue_length(self, name: str) -> int:
        try:
            props = await self.queues.get_queue_client(name).get_queue_properties()
        except ResourceNotFoundError:
            return 0
        return int(props.approximate_message_count or 0)

    async def poison_messages(self) -> list[dict[str, Any]]:
        queue = self.queues.get_queue_client(self.settings.poison_queue)
        try:
            peeked = await queue.peek_messages(max_messages=32)
        except ResourceNotFoundError:
            return []
        return [json.loads(base64.b64decode(m.content)) for m in peeked]

    # -- the archive -------------------------------------------------------------------------
    async def manifest(self, job_id: str) -> dict[str, Any] | None:
        data = await self.blob(f"{job_id}/manifest.json")
        return None if data is None else json.loads(data)

    async def blob(self, name: str, container: str | None = None) -> bytes | None:
        client = self.blobs.get_blob_client(container or self.settings.archive_container, name)
        try:
            return await (await client.download_blob()).readall()
        except ResourceNotFoundError:
            return None

    async def blob_names(self, prefix: str = "", container: str | None = None) -> list[str]:
        client = self.blobs.get_container_client(container or self.settings.archive_container)
        try:
            return [b.name async for b in client.list_blobs(name_starts_with=prefix)]
        except ResourceNotFoundError:
            return []

    async def ledger_names(self) -> list[str]:
        return await self.blob_names(container=self.settings.ledger_container)


def app_function(name: str) -> Any:
    """The user function of ``function_app`` named ``name``, from the real app object."""
    for function in functions_of(function_app.app):
        if function.get_function_name() == name:
            return function.get_user_function()
    raise LookupError(f"function_app has no function {name!r}")


def stack_environ(azurite: Azurite, emulator_url: str, **overrides: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    environ = {
        "LANGUAGE_ENDPOINT": emulator_url,
        "LANGUAGE_API_KEY": EMULATOR_KEY,
        "LANGUAGE_API_VERSION": "2024-11-01",
        "AzureWebJobsStorage": azurite.connection_string,
        "ARCHIVE_CONTAINER": f"archive-{suffix}",
        "JOBS_QUEUE": f"jobs-{suffix}",
        "POLL_INITIAL_DELAY_SECONDS": "1",
        "POLL_MAX_DELAY_SECONDS": "2",
        "SWEEP_SCHEDULE": "*/2 * * * * *",
        "SWEEP_GRACE_SECONDS": "1",
    }
    environ.update(overrides)
    return environ


SetFaults = Callable[..., Awaitable[None]]


@pytest.fixture
async def faults(stack: Stack) -> AsyncIterator[SetFaults]:
    """Set emulator faults for one test; all are cleared afterwards (the emulator is shared, and
    its fault settings are replaced as a whole)."""

    async def set_faults(**values: Any) -> None:
        await stack.admin("PUT", "faults", values)

    yield set_faults
    await stack.admin("PUT", "faults", {})


@pytest.fixture
async def slow_jobs(stack: Stack) -> AsyncIterator[None]:
    """Jobs submitted during the test stay unfinished until the emulator's clock moves on."""
    await stack.admin("PUT", "timing", {"notStartedSeconds": 3600, "runningSeconds": 0})
    yield
    await stack.admin("PUT", "timing", {"notStartedSeconds": 0, "runningSeconds": 0})


@pytest.fixture
async def stack(
    azurite: Azurite, emulator: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Stack]:
    overrides: dict[str, str] = getattr(request, "param", {}) or {}
    environ = stack_environ(azurite, emulator.base_url, **overrides)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    await close_process_runtime()  # the app reads its settings afresh for this test
    async with (
        aiohttp.ClientSession() as http,
        BlobServiceClient.from_connection_string(azurite.connection_string) as blobs,
        QueueServiceClient.from_connection_string(azurite.connection_string) as queues,
    ):
        yield Stack(
            environ=environ,
            settings=load_settings(environ),
            emulator_url=emulator.base_url,
            http=http,
            blobs=blobs,
            queues=queues,
        )
    await close_process_runtime()


# One faulty run per session serves the telemetry and the security tests (each is a child process).


@pytest.fixture(scope="session")
async def telemetry_run(azurite: Azurite, emulator: Any) -> Any:
    """The faulty run as the OpenTelemetry SDK's in-memory exporters saw it (``telemetry_support.Run``)."""
    from .telemetry_support import in_memory_run  # noqa: PLC0415 - it imports this module

    return await in_memory_run(azurite, emulator)


@pytest.fixture(scope="session")
async def azure_monitor_export(azurite: Azurite, emulator: Any) -> Any:
    """The faulty run as a loopback Azure Monitor endpoint received it: (``Run``, ``Ingestion``)."""
    from .telemetry_support import exported_to_azure_monitor  # noqa: PLC0415 - it imports this module

    return await exported_to_azure_monitor(azurite, emulator)


@pytest.fixture(scope="session")
async def worker_like_export(azurite: Azurite, emulator: Any) -> Any:
    """Four jobs through the real exporter with the root logger at INFO, then 10 s idle with a 2 s
    metric export interval (``telemetry_support.IdleRun``)."""
    from .telemetry_support import worker_like_run  # noqa: PLC0415 - it imports this module

    return await worker_like_run(azurite, emulator, jobs=4, idle_seconds=10.0, metric_interval=2.0)
