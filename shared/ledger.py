"""The job ledger: one small blob per pending job, updated by ETag compare-and-swap.

A job is recorded when it first goes pending (rescheduled) and removed once its manifest exists.
Each record holds the message that polls the job next and when that poll is due (also in the
blob's metadata, so the sweep finds overdue jobs from a listing alone). The ETag is the baton:
the message that carries the record's current ETag is the one entitled to move the job on; a
stale duplicate loses the swap and stops, so duplicates never multiply into parallel chains.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from .messages import JobMessage, parse_message
from .settings import Settings
from .storage import swap_blob
from .timefmt import format_time, parse_time

__all__ = ["Ledger", "LedgerEntry", "LedgerRecord", "is_overdue"]

_NEXT_POLL_KEY: Final = "nextpollat"


def is_overdue(next_poll_at: datetime | None, *, now: datetime, grace: timedelta) -> bool:
    """As the sweep judges it: the next poll is more than ``grace`` late (or its time is unknown)."""
    return next_poll_at is None or now > next_poll_at + grace


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A listing row: enough to tell whether the job is overdue without reading the blob."""

    job_id: str
    next_poll_at: datetime | None


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    message: JobMessage
    next_poll_at: datetime
    etag: str


class Ledger:
    """Pending jobs in ``<ARCHIVE_CONTAINER>-ledger``, one ``<jobId>.json`` each."""

    def __init__(self, *, container: ContainerClient, settings: Settings) -> None:
        self._container = container
        self._settings = settings

    async def create(self, message: JobMessage, *, next_poll_at: datetime) -> str | None:
        """Record a newly pending job; the new ETag, or ``None`` when a record already exists."""
        return await self._put(message, next_poll_at, etag=None)

    async def replace(self, message: JobMessage, *, next_poll_at: datetime, etag: str) -> str | None:
        """Move the job on if ``etag`` is still current; ``None`` when another writer got there first
        (or the record is gone: the job was archived meanwhile)."""
        return await self._put(message, next_poll_at, etag=etag)

    async def get(self, job_id: str) -> LedgerRecord | None:
        try:
            downloader = await self._container.download_blob(_name(job_id))
            data = await downloader.readall()
        except ResourceNotFoundError:
            return None
        body = json.loads(data)
        next_poll_at = parse_time(body["nextPollAt"])
        assert next_poll_at is not None
        message = parse_message(json.dumps(body["message"]), settings=self._settings)
        etag = downloader.properties.etag
        return LedgerRecord(message=message.evolve(ledger_etag=etag), next_poll_at=next_poll_at, etag=etag)

    async def lookup(self, job_id: str) -> LedgerEntry | None:
        """The job's record as a listing shows it (one HEAD, the body unread); ``None`` when absent."""
        try:
            properties = await self._container.get_blob_client(_name(job_id)).get_blob_properties()
        except ResourceNotFoundError:
            return None
        return LedgerEntry(job_id=job_id, next_poll_at=_due(properties.metadata))

    async def delete(self, job_id: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            await self._container.delete_blob(_name(job_id))

    async def entries(self, *, page_size: int = 500) -> AsyncIterator[LedgerEntry]:
        """Every record, page by page (the listing carries nextPollAt in metadata)."""
        try:
            async for blob in self._container.list_blobs(include=["metadata"], results_per_page=page_size):
                if not blob.name.endswith(".json"):
                    continue
                yield LedgerEntry(job_id=blob.name.removesuffix(".json"), next_poll_at=_due(blob.metadata))
        except ResourceNotFoundError:
            return  # no container yet: nothing has ever gone pending

    async def _put(self, message: JobMessage, next_poll_at: datetime, *, etag: str | None) -> str | None:
        body = {
            "jobId": message.job_id,
            "nextPollAt": format_time(next_poll_at),
            # The ETag is the record's own: storing it inside would be stale by construction.
            "message": json.loads(message.evolve(ledger_etag=None).to_json()),
        }
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return await swap_blob(
            self._container,
            _name(message.job_id),
            data,
            etag=etag,
            metadata={_NEXT_POLL_KEY: format_time(next_poll_at) or ""},
        )


def _due(metadata: dict[str, str] | None) -> datetime | None:
    try:
        return parse_time((metadata or {}).get(_NEXT_POLL_KEY))
    except ValueError:
        return None


def _name(job_id: str) -> str:
    return f"{job_id}.json"
