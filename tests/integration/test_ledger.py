"""The job ledger on real Azurite: ETag compare-and-swap records, and the listing the sweep reads."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient
from yarl import URL

from local.host.azurite import Azurite
from shared.ledger import Ledger, LedgerEntry
from shared.messages import JobMessage
from shared.settings import Settings, StorageSettings
from shared.storage import open_storage

pytestmark = pytest.mark.integration

DUE = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class RequestLog:
    """Every HTTP request the shared session sends, in order."""

    requests: list[tuple[str, URL]] = field(default_factory=list)

    def trace_config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()

        async def on_start(
            session: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestStartParams
        ) -> None:
            self.requests.append((params.method, params.url))

        config.on_request_start.append(on_start)
        return config

    def listings(self) -> int:
        return sum(1 for method, url in self.requests if method == "GET" and url.query.get("comp") == "list")


@dataclass
class Fixture:
    ledger: Ledger
    container: ContainerClient
    log: RequestLog

    async def body(self, job_id: str) -> dict[str, object]:
        data = await (await self.container.download_blob(f"{job_id}.json")).readall()
        body: dict[str, object] = json.loads(data)
        return body

    async def etag(self, job_id: str) -> str:
        return str((await self.container.get_blob_client(f"{job_id}.json").get_blob_properties()).etag)

    async def exists(self) -> bool:
        return bool(await self.container.exists())


@pytest.fixture
async def fx(azurite: Azurite) -> AsyncIterator[Fixture]:
    """A ledger in a container of its own (not created yet), on the app's storage clients."""
    log = RequestLog()
    storage_settings = StorageSettings(connection_string=azurite.connection_string)
    settings = Settings(
        language_endpoint="https://contoso.cognitiveservices.azure.com", storage=storage_settings
    )
    async with aiohttp.ClientSession(trace_configs=[log.trace_config()]) as session:
        clients = open_storage(storage_settings, session=session, credential=None)
        container = clients.container(f"ledger-{uuid.uuid4().hex[:12]}")
        yield Fixture(Ledger(container=container, settings=settings), container, log)
        with contextlib.suppress(ResourceNotFoundError):
            await container.delete_container()
        await clients.close()


def message(**changes: object) -> JobMessage:
    base = JobMessage(job_id=str(uuid.uuid4()))
    return base.evolve(**changes) if changes else base


# -- create ----------------------------------------------------------------------------------


async def test_create_returns_the_etag_of_the_new_record(fx: Fixture) -> None:
    job = message()

    etag = await fx.ledger.create(job, next_poll_at=DUE)

    assert etag is not None
    assert etag == await fx.etag(job.job_id)


async def test_first_write_creates_the_container(fx: Fixture) -> None:
    assert not await fx.exists()

    assert await fx.ledger.create(message(), next_poll_at=DUE) is not None

    assert await fx.exists()


async def test_second_create_of_a_job_returns_none_and_keeps_the_first_record(fx: Fixture) -> None:
    job = message(attempt=1)
    first = await fx.ledger.create(job, next_poll_at=DUE)

    second = await fx.ledger.create(job.evolve(attempt=9), next_poll_at=DUE + timedelta(hours=1))

    assert second is None
    assert await fx.etag(job.job_id) == first
    record = await fx.ledger.get(job.job_id)
    assert record is not None
    assert (record.message.attempt, record.next_poll_at) == (1, DUE)


async def test_concurrent_creates_on_a_fresh_container_have_exactly_one_winner(fx: Fixture) -> None:
    job = message()

    etags = await asyncio.gather(*(fx.ledger.create(job, next_poll_at=DUE) for _ in range(5)))

    winners = [etag for etag in etags if etag is not None]
    assert len(winners) == 1
    assert winners[0] == await fx.etag(job.job_id)


# -- replace ---------------------------------------------------------------------------------


async def test_replace_with_the_current_etag_moves_the_record_on_and_returns_a_new_etag(fx: Fixture) -> None:
    job = message()
    etag = await fx.ledger.create(job, next_poll_at=DUE)
    assert etag is not None
    later = DUE + timedelta(minutes=5)

    new_etag = await fx.ledger.replace(job.evolve(attempt=1), next_poll_at=later, etag=etag)

    assert new_etag is not None
    assert new_etag != etag
    assert new_etag == await fx.etag(job.job_id)
    record = await fx.ledger.get(job.job_id)
    assert record is not None
    assert (record.message.attempt, record.next_poll_at) == (1, later)


async def test_replace_with_a_stale_etag_returns_none_and_leaves_the_record_unchanged(fx: Fixture) -> None:
    job = message()
    stale = await fx.ledger.create(job, next_poll_at=DUE)
    assert stale is not None
    current = await fx.ledger.replace(job.evolve(attempt=1), next_poll_at=DUE, etag=stale)
    body = await fx.body(job.job_id)

    result = await fx.ledger.replace(job.evolve(attempt=7), next_poll_at=DUE + timedelta(days=1), etag=stale)

    assert result is None
    assert await fx.etag(job.job_id) == current
    assert await fx.body(job.job_id) == body


async def test_concurrent_replaces_with_one_etag_have_exactly_one_winner(fx: Fixture) -> None:
    job = message()
    etag = await fx.ledger.create(job, next_poll_at=DUE)
    assert etag is not None

    results = await asyncio.gather(
        *(fx.ledger.replace(job.evolve(attempt=n), next_poll_at=DUE, etag=etag) for n in range(1, 6))
    )

    winners = [result for result in results if result is not None]
    assert len(winners) == 1
    assert winners[0] == await fx.etag(job.job_id)


async def test_replace_after_delete_returns_none_and_does_not_recreate_the_record(fx: Fixture) -> None:
    job = message()
    etag = await fx.ledger.create(job, next_poll_at=DUE)
    assert etag is not None
    await fx.ledger.delete(job.job_id)

    assert await fx.ledger.replace(job.evolve(attempt=1), next_poll_at=DUE, etag=etag) is None
    assert await fx.ledger.get(job.job_id) is None


async def test_replace_in_a_missing_container_returns_none_and_creates_nothing(fx: Fixture) -> None:
    assert await fx.ledger.replace(message(), next_poll_at=DUE, etag='"0x8D000000000000"') is None
    assert not await fx.exists()


# -- get and delete --------------------------------------------------------------------------


async def test_get_round_trips_the_message_and_next_poll_at_with_the_blobs_etag(fx: Fixture) -> None:
    job = message(
        display_name="quarterly contracts",
        correlation_id="corr-42",
        metadata={"tenant": "contoso", "source": "upload"},
        attempt=3,
        unusable=1,
        first_seen_at=DUE - timedelta(hours=1),
        seen_at=DUE - timedelta(minutes=50),
        expires_at=DUE + timedelta(hours=23),
        ledger_etag='"an-older-etag"',  # the record's own ETag wins over what the message carried
    )
    due = DUE + timedelta(microseconds=250_000)
    etag = await fx.ledger.create(job, next_poll_at=due)

    record = await fx.ledger.get(job.job_id)

    assert record is not None
    assert record.etag == etag == await fx.etag(job.job_id)
    assert record.message == job.evolve(ledger_etag=etag)
    assert record.next_poll_at == due


async def test_stored_record_does_not_carry_its_own_etag(fx: Fixture) -> None:
    job = message(ledger_etag='"an-older-etag"')
    await fx.ledger.create(job, next_poll_at=DUE)

    body = await fx.body(job.job_id)

    assert body["jobId"] == job.job_id
    assert body["nextPollAt"] == "2025-03-01T12:00:00Z"
    assert isinstance(body["message"], dict)
    assert body["message"]["_poll"]["ledgerEtag"] is None


async def test_get_of_an_unknown_job_returns_none(fx: Fixture) -> None:
    await fx.ledger.create(message(), next_poll_at=DUE)

    assert await fx.ledger.get(str(uuid.uuid4())) is None


async def test_get_in_a_missing_container_returns_none(fx: Fixture) -> None:
    assert await fx.ledger.get(str(uuid.uuid4())) is None


async def test_delete_removes_the_record_and_is_quiet_when_it_is_gone(fx: Fixture) -> None:
    job = message()
    await fx.ledger.create(job, next_poll_at=DUE)

    await fx.ledger.delete(job.job_id)
    await fx.ledger.delete(job.job_id)

    assert await fx.ledger.get(job.job_id) is None


# -- entries ---------------------------------------------------------------------------------


async def test_entries_list_every_record_across_pages(fx: Fixture) -> None:
    jobs = {message().job_id: DUE + timedelta(minutes=n) for n in range(5)}
    for job_id, due in jobs.items():
        await fx.ledger.create(JobMessage(job_id=job_id), next_poll_at=due)
    fx.log.requests.clear()

    entries = [entry async for entry in fx.ledger.entries(page_size=2)]

    assert sorted(entries, key=lambda e: e.job_id) == sorted(
        (LedgerEntry(job_id=job_id, next_poll_at=due) for job_id, due in jobs.items()), key=lambda e: e.job_id
    )
    assert fx.log.listings() == 3  # 2 + 2 + 1


async def test_entries_take_next_poll_at_from_metadata_without_reading_any_record(fx: Fixture) -> None:
    job = message()
    await fx.ledger.create(job, next_poll_at=DUE)
    moved = DUE + timedelta(hours=2)
    await fx.container.get_blob_client(f"{job.job_id}.json").set_blob_metadata(
        {"nextpollat": "2025-03-01T14:00:00Z"}
    )
    fx.log.requests.clear()

    entries = [entry async for entry in fx.ledger.entries()]

    assert entries == [LedgerEntry(job_id=job.job_id, next_poll_at=moved)]
    assert [method for method, _ in fx.log.requests] == ["GET"]  # one listing, no download
    assert fx.log.listings() == 1


async def test_entry_with_unreadable_next_poll_at_is_listed_without_a_due_time(fx: Fixture) -> None:
    job = message()
    await fx.ledger.create(job, next_poll_at=DUE)
    await fx.container.get_blob_client(f"{job.job_id}.json").set_blob_metadata({"nextpollat": "soon"})

    assert [entry async for entry in fx.ledger.entries()] == [
        LedgerEntry(job_id=job.job_id, next_poll_at=None)
    ]


async def test_entries_ignore_blobs_that_are_not_records(fx: Fixture) -> None:
    job = message()
    await fx.ledger.create(job, next_poll_at=DUE)
    await fx.container.upload_blob("README.txt", b"not a record")

    assert [entry.job_id async for entry in fx.ledger.entries()] == [job.job_id]


async def test_entries_of_a_missing_container_are_empty(fx: Fixture) -> None:
    assert [entry async for entry in fx.ledger.entries()] == []
    assert not await fx.exists()
