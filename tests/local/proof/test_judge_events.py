"""The chaos run's judge of archive events: every archived job announced, every event agreeing with
its manifest, none without one, duplicates bounded."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError

from local.proof.judge import Expectation, Verdict
from shared.events import archive_event

from .test_judge import EXPECTED, JOB, OTHER, Store, store

pytestmark = pytest.mark.integration

__all__ = ["store"]  # the fixture of the judge's own tests


def source(store: Store) -> str:
    return store.archive.url.rstrip("/")


async def verdict(store: Store, expected: dict[str, Expectation] = EXPECTED) -> Verdict:
    return await store.verdict(expected, events=(f"{store.names}-events", source(store)))


async def send(store: Store, event: dict[str, Any] | str) -> None:
    """Put an event on the events queue as the app does (base64 of UTF-8 JSON); a str as it is."""
    queue = store.queues.get_queue_client(f"{store.names}-events")
    with contextlib.suppress(ResourceExistsError):
        await queue.create_queue()
    text = event if isinstance(event, str) else base64.b64encode(json.dumps(event).encode()).decode()
    await queue.send_message(text)


async def event_of(store: Store, job_id: str) -> dict[str, Any]:
    """The app's event of an archived job (the judge checks it on its own)."""
    data = await (await store.archive.download_blob(f"{job_id}/manifest.json")).readall()
    return archive_event(json.loads(data), container_url=source(store))


async def test_an_archive_whose_jobs_are_all_announced_passes(store: Store) -> None:
    await store.archive_job(JOB)
    await send(store, await event_of(store, JOB))

    judged = await verdict(store)

    assert judged.ok, judged.problems()
    assert judged.events is not None
    assert (judged.events.events, judged.events.announced, judged.events.duplicates) == (1, 1, 0)


async def test_an_archived_job_without_its_event_fails(store: Store) -> None:
    await store.archive_job(JOB)

    judged = await verdict(store)

    assert not judged.ok
    assert judged.events is not None
    assert judged.events.unannounced == [JOB]


async def test_an_event_of_a_job_without_a_manifest_fails(store: Store) -> None:
    await store.archive_job(JOB)
    event = await event_of(store, JOB)
    await send(store, event)
    stray = str(uuid.uuid4())
    await send(store, {**event, "id": stray, "data": {**event["data"], "jobId": stray}})

    judged = await verdict(store)

    assert judged.events is not None
    assert judged.events.orphans == [stray]
    assert not judged.ok


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda e: {**e, "time": "2020-01-01T00:00:00Z"}, "time"),
        (lambda e: {**e, "specversion": "0.3"}, "specversion"),
        (lambda e: {**e, "source": "https://elsewhere/archive"}, "source"),
        (lambda e: {**e, "data": {**e["data"], "entityCount": 99}}, "data.entityCount"),
        (lambda e: {**e, "data": {**e["data"], "status": "failed"}}, "data.status"),
        (lambda e: {k: v for k, v in e.items() if k != "subject"}, "envelope"),
        (lambda e: {**e, "data": {k: v for k, v in e["data"].items() if k != "correlationId"}}, "documented"),
    ],
)
async def test_an_event_that_disagrees_with_its_manifest_or_the_format_fails(
    store: Store, change: Any, expected: str
) -> None:
    await store.archive_job(JOB)
    await send(store, change(await event_of(store, JOB)))

    judged = await verdict(store)

    assert judged.events is not None
    assert any(expected in line for line in judged.events.malformed), judged.events.malformed
    assert not judged.ok


async def test_a_message_that_is_not_base64_json_fails(store: Store) -> None:
    await store.archive_job(JOB)
    await send(store, await event_of(store, JOB))
    await send(store, "not base64 at all!")

    judged = await verdict(store)

    assert judged.events is not None
    assert judged.events.malformed == ["not base64: not base64 at all!"]


@pytest.mark.parametrize(("repeats", "ok"), [(1, True), (2, False)])
async def test_duplicates_are_counted_and_more_than_half_the_jobs_fail(
    store: Store, repeats: int, ok: bool
) -> None:
    expected = dict.fromkeys((JOB, OTHER), EXPECTED[JOB])
    for job in (JOB, OTHER):
        await store.archive_job(job)
        await send(store, await event_of(store, job))
    for _ in range(repeats):
        await send(store, await event_of(store, JOB))

    judged = await verdict(store, expected)

    assert judged.events is not None
    assert judged.events.duplicates == repeats
    assert judged.ok is ok
