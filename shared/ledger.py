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
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import ContainerClient

from .messages import JobMessage, parse_message
from .settings import Settings
from .storage import create_container_if_missing
from .timefmt import format_time, parse_time

__all__ = ["Ledger", "LedgerEntry", "LedgerRecord", "is_overdue"]

_NEXT_POLL_KEY: Final = "nextpollat"
_JSON: Final = ContentSettings(content_type="application/json; charset=utf-8")


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
        try:
            return await self._put(message, next_poll_at, overwrite=False)
        except ResourceExistsError:
            return None

    async def replace(self, message: JobMessage, *, next_poll_at: datetime, etag: str) -> str | None:
        """Move the job on if ``etag`` is still current; ``None`` when another writer got there first."""
        try:
            return await self._put(message, next_poll_at, overwrite=True, etag=etag)
        except (ResourceModifiedError, ResourceNotFoundError):
            return None

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

    async def _put(
        self, message: JobMessage, next_poll_at: datetime, *, overwrite: bool, etag: str | None = None
    ) -> str:
        body = {
            "jobId": message.job_id,
            "nextPollAt": format_time(next_poll_at),
            # The ETag is the record's own: storing it inside would be stale by construction.
            "message": json.loads(message.evolve(ledger_etag=None).to_json()),
        }
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        blob = self._container.get_blob_client(_name(message.job_id))

        # Compare-and-swap on the ETag when replacing; create-only (If-None-Match: *) otherwise.
        condition: dict[str, Any] = (
            {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag is not None else {}
        )

        async def put() -> dict[str, Any]:
            return await blob.upload_blob(
                data,
                overwrite=overwrite,
                metadata={_NEXT_POLL_KEY: format_time(next_poll_at) or ""},
                content_settings=_JSON,
                **condition,
            )

        try:
            result = await put()
        except ResourceNotFoundError:
            if etag is not None:
                raise  # the record is gone: the job was archived meanwhile
            await create_container_if_missing(self._container)
            result = await put()
        return str(result["etag"])


def _due(metadata: dict[str, str] | None) -> datetime | None:
    try:
        return parse_time((metadata or {}).get(_NEXT_POLL_KEY))
    except ValueError:
        return None


def _name(job_id: str) -> str:
    return f"{job_id}.json"
