"""The job ledger: one small blob per pending job, updated by ETag compare-and-swap.

A job is recorded when it first goes pending (rescheduled) and removed once its manifest exists.
Each record holds the message that polls the job next and when that poll is due (also in the
blob's metadata, so the sweep finds overdue jobs from a listing alone). The ETag is the baton:
the message that carries the record's current ETag is the one entitled to move the job on; a
stale duplicate loses the swap and stops, so duplicates never multiply into parallel chains.

What storage holds is checked before use, like any input: a blob whose name is not
``<uuid>.json`` is no record (skipped, with a WARNING); a record whose body is unreadable,
oversized or names another job keeps the job (it is re-driven from the id in its name, with a
WARNING), and an out-of-range due time reads as unknown (overdue). Nothing in a record can make
the sweep fail, again and again, on the same job.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from .jsontext import UnreadableJson, dumps_compact, loads_bounded
from .messages import MAX_DEPTH, QUEUE_MESSAGE_BYTES, InvalidMessage, JobMessage, parse_message, sane_time
from .policy import MAX_VISIBILITY_SECONDS
from .settings import Settings
from .storage import swap_blob
from .telemetry import job_attributes
from .timefmt import format_time, parse_time

__all__ = ["FAR_AHEAD", "MAX_RECORD_BYTES", "Ledger", "LedgerEntry", "LedgerRecord", "is_overdue"]

_log = logging.getLogger("archiver.ledger")

_NEXT_POLL_KEY: Final = "nextpollat"
_RANGE_NOT_SATISFIABLE: Final = 416
#: A record holds one message (at most a queue message) and two short fields.
MAX_RECORD_BYTES: Final = QUEUE_MESSAGE_BYTES + 1024
#: A next poll further ahead than this was not scheduled by the app: a queue message is visible
#: again within 7 days (the queue's limit), so its record is due by then.
FAR_AHEAD: Final = timedelta(days=MAX_VISIBILITY_SECONDS / 86400 + 1)
_RECORD_NAME: Final = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.json$")


def is_overdue(next_poll_at: datetime | None, *, now: datetime, grace: timedelta) -> bool:
    """As the sweep judges it: the next poll is more than ``grace`` late, or its time is unknown or
    further ahead than any poll the app schedules (a job must not hide behind a forged due time)."""
    # now - grace, not next_poll_at + grace: only ``now`` is known to be far from datetime's ends.
    return next_poll_at is None or now - grace > next_poll_at or next_poll_at > now + FAR_AHEAD


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A listing row: enough to tell whether the job is overdue without reading the blob."""

    job_id: str
    next_poll_at: datetime | None


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    message: JobMessage
    next_poll_at: datetime | None  # None: unreadable, so overdue
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
        """The job's record; one that cannot be read keeps the job, from its id alone (WARNING)."""
        blob = self._container.get_blob_client(_name(job_id))
        try:
            # At most one byte more than a record can have: enough to tell it is too long.
            downloader = await blob.download_blob(offset=0, length=MAX_RECORD_BYTES + 1)
            data, etag = await downloader.readall(), downloader.properties.etag
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            if exc.status_code != _RANGE_NOT_SATISFIABLE:
                raise
            # An empty blob has no byte 0 to read: storage refuses the range.
            try:
                data, etag = b"", (await blob.get_blob_properties()).etag
            except ResourceNotFoundError:
                return None
        try:
            message, next_poll_at = self._read(job_id, data)
        except _Unreadable as exc:
            _log.warning(
                "ledger record of job %s is unreadable (%s): the job is kept and polled from its id alone",
                job_id,
                exc,
                extra=job_attributes(job_id),
            )
            message, next_poll_at = JobMessage(job_id=job_id), None
        return LedgerRecord(message=message.evolve(ledger_etag=etag), next_poll_at=next_poll_at, etag=etag)

    def _read(self, job_id: str, data: bytes) -> tuple[JobMessage, datetime | None]:
        if len(data) > MAX_RECORD_BYTES:
            raise _Unreadable(f"more than {MAX_RECORD_BYTES} bytes")
        try:
            body = loads_bounded(data.decode("utf-8"), max_depth=MAX_DEPTH + 1)
        except (UnicodeDecodeError, UnreadableJson) as exc:
            raise _Unreadable(type(exc).__name__) from None
        if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
            raise _Unreadable("not a ledger record")
        try:
            message = parse_message(dumps_compact(body["message"]), settings=self._settings)
        except InvalidMessage as exc:
            raise _Unreadable(f"its message is invalid: {exc.code}") from None
        if message.job_id != job_id:
            raise _Unreadable("its message names another job")
        return message, _time(body.get("nextPollAt"))

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
                match = _RECORD_NAME.match(blob.name)
                if match is None:
                    _log.warning("ledger container holds %r, which is not a job record: skipped", blob.name)
                    continue
                yield LedgerEntry(job_id=match.group(1), next_poll_at=_due(blob.metadata))
        except ResourceNotFoundError:
            return  # no container yet: nothing has ever gone pending

    async def _put(self, message: JobMessage, next_poll_at: datetime, *, etag: str | None) -> str | None:
        # The ETag is the record's own: storing it inside would be stale by construction. UTF-8, no
        # escapes: a record is never much longer than the message it holds.
        body = {
            "jobId": message.job_id,
            "nextPollAt": format_time(next_poll_at),
            "message": message.evolve(ledger_etag=None).to_dict(),
        }
        data = dumps_compact(body).encode("utf-8")
        return await swap_blob(
            self._container,
            _name(message.job_id),
            data,
            etag=etag,
            metadata={_NEXT_POLL_KEY: format_time(next_poll_at) or ""},
        )


class _Unreadable(ValueError):
    """A ledger record whose content cannot be used (the reason names no content)."""


def _due(metadata: dict[str, str] | None) -> datetime | None:
    return _time((metadata or {}).get(_NEXT_POLL_KEY))


def _time(value: object) -> datetime | None:
    """A due time as stored; ``None`` (overdue) when unreadable or out of the sane range."""
    try:
        return sane_time(parse_time(value))
    except (ValueError, OverflowError):
        return None


def _name(job_id: str) -> str:
    return f"{job_id}.json"
