"""The archive writer on real Azurite: task blobs, then the manifest as the single commit point."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient
from yarl import URL

from local.host.azurite import Azurite
from shared.archive import (
    SCHEMA_VERSION,
    ArchiveWriter,
    Commit,
    JobRecord,
    TaskBlob,
    manifest_name,
    render_tasks,
)
from shared.blob_put import BlobPut, SharedKeySigner, account_key_of
from shared.settings import StorageSettings
from shared.storage import open_storage

pytestmark = pytest.mark.integration

NOW = datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)
JSON_UTF8 = "application/json; charset=utf-8"


@dataclass
class RequestLog:
    """Every HTTP request the shared session sends, in order, as (method, blob name)."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    # ("start" | "end", method, blob name) in the order they happened; "end" includes a failure.
    events: list[tuple[str, str, str]] = field(default_factory=list)
    container: str = ""

    def trace_config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()

        async def on_start(
            session: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestStartParams
        ) -> None:
            self.requests.append((params.method, self._blob(params.url)))
            self.events.append(("start", params.method, self._blob(params.url)))

        async def on_end(
            session: aiohttp.ClientSession,
            context: object,
            params: aiohttp.TraceRequestEndParams | aiohttp.TraceRequestExceptionParams,
        ) -> None:
            self.events.append(("end", params.method, self._blob(params.url)))

        config.on_request_start.append(on_start)
        config.on_request_end.append(on_end)
        config.on_request_exception.append(on_end)
        return config

    def _blob(self, url: URL) -> str:
        # Azurite paths are /<account>/<container>/<blob>; the container itself is "".
        _, _, rest = url.path.partition(f"/{self.container}")
        return rest.lstrip("/")


@dataclass
class Fixture:
    writer: ArchiveWriter
    container: ContainerClient
    log: RequestLog

    async def blob(self, name: str) -> bytes:
        return bytes(await (await self.container.download_blob(name)).readall())

    async def names(self) -> list[str]:
        return sorted([blob.name async for blob in self.container.list_blobs()])

    async def snapshot(self) -> dict[str, tuple[str, datetime]]:
        """Name -> (ETag, Last-Modified) of every blob: any write changes the ETag."""
        return {blob.name: (blob.etag, blob.last_modified) async for blob in self.container.list_blobs()}


@pytest.fixture(params=["put", "sdk"])
async def fx(azurite: Azurite, request: pytest.FixtureRequest) -> AsyncIterator[Fixture]:
    """An archive writer on a container of its own (not created yet), on the app's storage clients:
    writing by its lean Put Blob (an account key, as the app does), and by the SDK (a SAS)."""
    name = f"archive-{uuid.uuid4().hex[:12]}"
    log = RequestLog(container=name)
    settings = StorageSettings(connection_string=azurite.connection_string)
    async with aiohttp.ClientSession(trace_configs=[log.trace_config()]) as session:
        clients = open_storage(settings, session=session, credential=None)
        container = clients.container(name)
        put = None
        if request.param == "put":
            account = account_key_of(azurite.connection_string)
            assert account is not None
            signer = SharedKeySigner(account_name=account[0], account_key=account[1])
            put = BlobPut(
                session=session, container_url=container.url, signer=signer, api_version=container.api_version
            )
        yield Fixture(ArchiveWriter(container=container, put=put), container, log)
        with contextlib.suppress(ResourceNotFoundError):
            await container.delete_container()
        await clients.close()


def ner_item(*doc_texts: str) -> dict[str, Any]:
    return {
        "kind": "EntityRecognitionLROResults",
        "taskName": "people and places",
        "lastUpdateDateTime": "2025-03-01T12:00:04.1234567Z",
        "status": "succeeded",
        "results": {
            "documents": [
                {
                    "id": str(n),
                    "entities": [
                        {
                            "text": text,
                            "category": "Location",
                            "offset": 0,
                            "length": len(text),
                            "confidenceScore": 0.9,
                        }
                    ],
                    "warnings": [],
                }
                for n, text in enumerate(doc_texts, start=1)
            ],
            "errors": [],
            "modelVersion": "2024-04-15",
        },
    }


def custom_item() -> dict[str, Any]:
    return {
        "kind": "CustomEntityRecognitionLROResults",
        "taskName": "régions",
        "lastUpdateDateTime": "2025-03-01T12:00:04.7654321Z",
        "status": "succeeded",
        "results": {
            "documents": [{"id": "1", "entities": [], "warnings": []}],
            "errors": [
                {"id": "2", "error": {"code": "InvalidArgument", "message": "Document text is empty."}}
            ],
            "projectName": "MyProject",
            "deploymentName": "MyDeployment",
        },
    }


@dataclass(frozen=True)
class Job:
    record: JobRecord
    tasks: list[TaskBlob]

    @property
    def job_id(self) -> str:
        return self.record.job_id

    @property
    def manifest(self) -> str:
        return manifest_name(self.record.job_id)


def job(status: str = "succeeded", *, items: list[dict[str, Any]] | None = None) -> Job:
    job_id = str(uuid.uuid4())
    record = JobRecord(
        job_id=job_id,
        status=status,
        display_name="contracts",
        created=datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC),
        last_updated=datetime(2025, 3, 1, 12, 0, 4, tzinfo=UTC),
        expires=datetime(2025, 3, 2, 12, 0, 0, tzinfo=UTC),
        api_version="2024-11-01",
        errors=[],
        correlation_id="corr-1",
        metadata={"tenant": "contoso"},
    )
    tasks = render_tasks(job_id, [ner_item("Seattle", "Zürich"), custom_item()] if items is None else items)
    return Job(record, tasks)


# -- a first commit --------------------------------------------------------------------------


async def test_commit_writes_every_task_blob_then_the_manifest(fx: Fixture) -> None:
    j = job()

    assert await fx.writer.commit(j.record, j.tasks, now=NOW) is Commit.COMMITTED

    puts = [name for method, name in fx.log.requests if method == "PUT" and name]
    assert puts[-1] == j.manifest
    assert set(puts[:-1]) == {task.name for task in j.tasks}
    assert await fx.names() == sorted([j.manifest, *(task.name for task in j.tasks)])
    for task in j.tasks:
        assert await fx.blob(task.name) == task.data


async def test_task_blobs_are_written_at_once_and_the_manifest_after_all_of_them(fx: Fixture) -> None:
    await fx.container.create_container()
    j = job()
    fx.log.events.clear()

    await fx.writer.commit(j.record, j.tasks, now=NOW)

    events = fx.log.events
    task_names = {task.name for task in j.tasks}
    starts = [events.index(("start", "PUT", name)) for name in task_names]
    ends = [events.index(("end", "PUT", name)) for name in task_names]
    assert max(starts) < min(ends)  # every task blob was on the wire before any answer came
    assert events.index(("start", "PUT", j.manifest)) > max(ends)  # the commit point comes last


async def test_a_task_blob_that_cannot_be_written_fails_the_commit_without_a_manifest(fx: Fixture) -> None:
    j = job()
    await fx.container.create_container()
    # Leftovers of an interrupted run; the second is leased by someone else, so it cannot be
    # overwritten (412), while the first is rewritten at the same time.
    for task in j.tasks:
        await fx.container.upload_blob(task.name, b"stale bytes")
    await fx.container.get_blob_client(j.tasks[1].name).acquire_lease(lease_duration=-1)
    fx.log.events.clear()

    with pytest.raises(HttpResponseError):
        await fx.writer.commit(j.record, j.tasks, now=NOW)

    assert await fx.names() == sorted(task.name for task in j.tasks)  # no manifest
    assert await fx.blob(j.tasks[0].name) == j.tasks[0].data
    assert await fx.blob(j.tasks[1].name) == b"stale bytes"
    started = [event[1:] for event in fx.log.events if event[0] == "start"]
    ended = [event[1:] for event in fx.log.events if event[0] == "end"]
    assert sorted(started) == sorted(ended)  # no write left running behind the failure


async def test_manifest_describes_the_job_and_every_task_blob(fx: Fixture) -> None:
    j = job()

    await fx.writer.commit(j.record, j.tasks, now=NOW)

    manifest = json.loads(await fx.blob(j.manifest))
    assert manifest["schemaVersion"] == SCHEMA_VERSION
    assert manifest["jobId"] == j.job_id
    assert manifest["status"] == "succeeded"
    assert manifest["archivedAt"] == "2025-03-01T12:00:05Z"
    assert manifest["correlationId"] == "corr-1"
    assert manifest["metadata"] == {"tenant": "contoso"}
    assert manifest["tasks"] == [task.entry for task in j.tasks]
    assert [task["blob"] for task in manifest["tasks"]] == [
        f"{j.job_id}/tasks/00-EntityRecognitionLROResults.json",
        f"{j.job_id}/tasks/01-CustomEntityRecognitionLROResults.json",
    ]


async def test_container_is_created_on_first_use(fx: Fixture) -> None:
    assert not await fx.container.exists()
    j = job()

    assert await fx.writer.commit(j.record, j.tasks, now=NOW) is Commit.COMMITTED

    assert await fx.container.exists()


async def test_commit_in_an_existing_container_costs_one_put_per_blob_and_nothing_else(fx: Fixture) -> None:
    await fx.container.create_container()
    j = job()
    fx.log.requests.clear()

    await fx.writer.commit(j.record, j.tasks, now=NOW)

    assert [method for method, _ in fx.log.requests] == ["PUT"] * (len(j.tasks) + 1)


async def test_blobs_are_json_in_utf8(fx: Fixture) -> None:
    j = job()

    await fx.writer.commit(j.record, j.tasks, now=NOW)

    for name in await fx.names():
        properties = await fx.container.get_blob_client(name).get_blob_properties()
        assert properties.content_settings.content_type == JSON_UTF8, name
        json.loads((await fx.blob(name)).decode("utf-8"))


async def test_job_without_tasks_is_committed_as_a_manifest_alone(fx: Fixture) -> None:
    j = job("notFound", items=[])

    assert await fx.writer.commit(j.record, j.tasks, now=NOW) is Commit.COMMITTED

    assert await fx.names() == [j.manifest]
    assert json.loads(await fx.blob(j.manifest))["tasks"] == []


# -- is_archived -----------------------------------------------------------------------------


async def test_is_archived_is_false_before_the_commit_and_true_after(fx: Fixture) -> None:
    j = job()
    assert await fx.writer.is_archived(j.job_id) is False  # no container yet

    await fx.writer.commit(j.record, j.tasks, now=NOW)

    assert await fx.writer.is_archived(j.job_id) is True
    assert await fx.writer.is_archived(str(uuid.uuid4())) is False


async def test_task_blobs_without_a_manifest_are_not_archived(fx: Fixture) -> None:
    j = job()
    await fx.container.create_container()
    await fx.container.upload_blob(j.tasks[0].name, j.tasks[0].data)

    assert await fx.writer.is_archived(j.job_id) is False


# -- repeated, torn and concurrent commits ---------------------------------------------------


async def test_second_commit_is_already_archived_and_writes_nothing(fx: Fixture) -> None:
    j = job()
    await fx.writer.commit(j.record, j.tasks, now=NOW)
    before = await fx.snapshot()

    result = await fx.writer.commit(j.record, j.tasks, now=datetime(2025, 3, 1, 13, 0, tzinfo=UTC))

    assert result is Commit.ALREADY_ARCHIVED
    assert await fx.snapshot() == before


async def test_later_commit_with_another_outcome_leaves_the_first_archive_standing(fx: Fixture) -> None:
    j = job()
    await fx.writer.commit(j.record, j.tasks, now=NOW)
    before = await fx.snapshot()
    expired = JobRecord(**{**vars_of(j.record), "status": "expired"})

    assert await fx.writer.commit(expired, [], now=NOW) is Commit.ALREADY_ARCHIVED

    assert await fx.snapshot() == before
    assert json.loads(await fx.blob(j.manifest))["status"] == "succeeded"


async def test_torn_earlier_attempt_is_overwritten_and_committed(fx: Fixture) -> None:
    j = job()
    await fx.container.create_container()
    await fx.container.upload_blob(j.tasks[0].name, b'{"partial":')  # an interrupted run's leftover

    assert await fx.writer.commit(j.record, j.tasks, now=NOW) is Commit.COMMITTED

    for task in j.tasks:
        assert await fx.blob(task.name) == task.data
    assert json.loads(await fx.blob(j.manifest))["tasks"] == [task.entry for task in j.tasks]


async def test_torn_attempt_that_wrote_only_a_later_task_is_completed(fx: Fixture) -> None:
    j = job()
    await fx.container.create_container()
    await fx.container.upload_blob(j.tasks[1].name, b"stale bytes")

    assert await fx.writer.commit(j.record, j.tasks, now=NOW) is Commit.COMMITTED

    assert await fx.blob(j.tasks[1].name) == j.tasks[1].data
    assert await fx.writer.is_archived(j.job_id)


async def test_concurrent_commits_of_one_job_commit_exactly_once(fx: Fixture) -> None:
    j = job()

    results = await asyncio.gather(*(fx.writer.commit(j.record, j.tasks, now=NOW) for _ in range(5)))

    assert sorted(result.value for result in results) == sorted(
        [Commit.COMMITTED.value] + [Commit.ALREADY_ARCHIVED.value] * 4
    )
    names = await fx.names()
    assert names.count(j.manifest) == 1
    assert names == sorted([j.manifest, *(task.name for task in j.tasks)])
    for task in j.tasks:
        assert await fx.blob(task.name) == task.data
    assert json.loads(await fx.blob(j.manifest))["tasks"] == [task.entry for task in j.tasks]


def vars_of(record: JobRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


async def test_a_duplicate_finding_equal_task_blobs_without_a_manifest_leaves_them_unwritten(
    fx: Fixture,
) -> None:
    """An interrupted run wrote every task blob: the next one only commits the manifest. No rewrite
    means no new blob version, which a write-once archive would keep for its whole retention."""
    j = job()
    await fx.container.create_container()
    for task in j.tasks:
        await fx.container.upload_blob(task.name, task.data)
    before = await fx.snapshot()

    assert await fx.writer.commit(j.record, j.tasks, now=NOW) is Commit.COMMITTED

    after = await fx.snapshot()
    assert {name: after[name] for name in before} == before
    assert set(after) - set(before) == {j.manifest}


async def test_a_stale_task_blob_of_the_same_size_is_rewritten(fx: Fixture) -> None:
    j = job()
    await fx.container.create_container()
    stale = bytes(reversed(j.tasks[0].data))  # same length, other bytes
    await fx.container.upload_blob(j.tasks[0].name, stale)

    assert await fx.writer.commit(j.record, j.tasks, now=NOW) is Commit.COMMITTED

    assert await fx.blob(j.tasks[0].name) == j.tasks[0].data
