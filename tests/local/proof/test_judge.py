"""The chaos run's judge: reading storage alone, it finds every kind of loss and corruption."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.storage.blob.aio import BlobServiceClient, ContainerClient
from azure.storage.queue.aio import QueueServiceClient

from local.host.azurite import Azurite
from local.proof.judge import Expectation, Verdict, judge
from shared.archive import ArchiveWriter, JobRecord, render_tasks

JOB = str(uuid.UUID(int=1))
OTHER = str(uuid.UUID(int=2))
ITEMS: list[dict[str, Any]] = [
    {
        "kind": "EntityRecognition",
        "taskName": "a",
        "status": "succeeded",
        "results": {"documents": [{"id": "1"}]},
    },
    {"kind": "CustomEntityRecognition", "taskName": "b", "status": "failed"},
]
EXPECTED = {JOB: Expectation(statuses=frozenset({"succeeded"}), documents=1)}


@dataclass
class Store:
    connection_string: str
    names: str
    archive: ContainerClient
    ledger: ContainerClient
    queues: QueueServiceClient

    async def verdict(
        self,
        expected: dict[str, Expectation] = EXPECTED,
        bad: tuple[str, ...] = (),
        events: tuple[str, str] | None = None,
    ) -> Verdict:
        return await judge(
            connection_string=self.connection_string,
            archive_container=self.names,
            ledger_container=f"{self.names}-ledger",
            jobs_queue=self.names,
            expected=expected,
            bad_messages=bad,
            events=events,
        )

    async def archive_job(self, job_id: str, status: str = "succeeded") -> None:
        record = JobRecord(
            job_id=job_id,
            status=status,
            display_name=None,
            created=None,
            last_updated=None,
            expires=None,
            api_version="2024-11-01",
            errors=[],
            correlation_id=None,
            metadata={},
        )
        await ArchiveWriter(container=self.archive).commit(
            record, render_tasks(job_id, ITEMS), now=datetime.now(UTC)
        )

    async def poison(self, original: str) -> None:
        queue = self.queues.get_queue_client(f"{self.names}-poison")
        body = json.dumps({"reason": "test: parked", "message": original})
        await queue.send_message(base64.b64encode(body.encode()).decode())


@pytest.fixture
async def store(azurite: Azurite) -> AsyncIterator[Store]:
    names = f"judge-{uuid.uuid4().hex[:12]}"
    async with (
        BlobServiceClient.from_connection_string(azurite.connection_string) as blobs,
        QueueServiceClient.from_connection_string(azurite.connection_string) as queues,
    ):
        await queues.create_queue(names)
        await queues.create_queue(f"{names}-poison")
        yield Store(
            connection_string=azurite.connection_string,
            names=names,
            archive=blobs.get_container_client(names),
            ledger=blobs.get_container_client(f"{names}-ledger"),
            queues=queues,
        )


async def test_a_sound_archive_passes(store: Store) -> None:
    await store.archive_job(JOB)

    verdict = await store.verdict()

    assert verdict.ok, verdict.problems()
    assert (verdict.jobs, verdict.archived, verdict.manifests) == (1, 1, 1)


async def test_a_job_without_a_manifest_is_lost(store: Store) -> None:
    verdict = await store.verdict()

    assert verdict.lost == [JOB]
    assert not verdict.ok


async def test_a_task_blob_whose_bytes_changed_is_corrupt(store: Store) -> None:
    await store.archive_job(JOB)
    await store.archive.upload_blob(f"{JOB}/tasks/00-EntityRecognition.json", b"{}", overwrite=True)

    verdict = await store.verdict()

    size = len(render_tasks(JOB, ITEMS)[0].data)
    assert verdict.corrupt[JOB] == [
        f"{JOB}/tasks/00-EntityRecognition.json: sha256 mismatch",
        f"{JOB}/tasks/00-EntityRecognition.json: size 2 != bytes {size}",
    ]


async def test_a_missing_task_blob_is_corrupt(store: Store) -> None:
    await store.archive_job(JOB)
    await store.archive.delete_blob(f"{JOB}/tasks/01-CustomEntityRecognition.json")

    verdict = await store.verdict()

    assert verdict.corrupt[JOB] == [f"{JOB}/tasks/01-CustomEntityRecognition.json: missing"]


async def test_a_task_blob_its_manifest_does_not_list_is_corrupt(store: Store) -> None:
    await store.archive_job(JOB)
    await store.archive.upload_blob(f"{JOB}/tasks/00-EntityRecognition-x.json", b"{}")

    verdict = await store.verdict()

    assert verdict.corrupt[JOB] == [
        f"{JOB}/tasks/00-EntityRecognition-x.json: task blob not listed in the manifest"
    ]


async def test_blobs_outside_the_layout_or_of_no_submitted_job_are_corrupt(store: Store) -> None:
    await store.archive_job(JOB)
    await store.archive_job(OTHER)
    await store.archive.upload_blob(f"{JOB}/stray.txt", b"?")

    verdict = await store.verdict()

    assert set(verdict.corrupt) == {
        f"{JOB}/stray.txt",
        f"{OTHER}/manifest.json",
        f"{OTHER}/tasks/00-EntityRecognition.json",
        f"{OTHER}/tasks/01-CustomEntityRecognition.json",
    }


async def test_an_unexpected_status_or_missing_documents_are_corrupt(store: Store) -> None:
    await store.archive_job(JOB, status="failed")

    verdict = await store.verdict({JOB: Expectation(statuses=frozenset({"succeeded"}), documents=3)})

    assert verdict.corrupt[JOB] == [
        "status failed, expected one of ['succeeded']",
        f"{JOB}/tasks/00-EntityRecognition.json: 1 documents, 3 submitted",
    ]


async def test_a_pending_ledger_record_or_a_queued_message_is_work_left(store: Store) -> None:
    await store.archive_job(JOB)
    await store.ledger.create_container()
    await store.ledger.upload_blob(f"{JOB}.json", b"{}")
    await store.queues.get_queue_client(store.names).send_message("eA==")

    verdict = await store.verdict()

    assert verdict.pending == [JOB]
    assert verdict.queued == 1
    assert not verdict.ok


async def test_poison_is_accounted_for_when_meant_or_when_its_job_was_archived(store: Store) -> None:
    await store.archive_job(JOB)
    await store.poison("{broken")
    await store.poison(json.dumps({"jobId": JOB}))
    # The host's own copy: the original message, still base64.
    await store.queues.get_queue_client(f"{store.names}-poison").send_message(
        base64.b64encode(json.dumps({"jobId": JOB}).encode()).decode()
    )
    await store.poison(json.dumps({"jobId": OTHER}))

    verdict = await store.verdict(bad=("{broken",))

    assert verdict.poisoned == 4
    assert verdict.unaccounted_poison == [json.dumps({"jobId": OTHER})]
