"""Archive events: every archived job announced on ``EVENTS_QUEUE`` (DESIGN.md, "Archive events").

One CloudEvents 1.0 event per job, in JSON structured mode, rendered from the manifest alone by a
pure function: the same manifest gives the same bytes, so every re-send (a 409, a redelivered
message, the sweep, ``python -m cli announce``) is identical and consumers deduplicate on ``id``.
Whoever sends does it after the manifest exists and before the job's message is acknowledged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from azure.storage.queue.aio import QueueClient

from .archive import ArchiveWriter, manifest_name
from .queues import send_text
from .settings import Settings
from .storage import StorageClients
from .telemetry import job_attributes

__all__ = [
    "EVENT_TYPE",
    "MAX_EVENT_BYTES",
    "ArchiveEvents",
    "EventUnrenderable",
    "archive_event",
    "archive_events",
    "archived",
    "render_event",
]

_log = logging.getLogger("archiver.events")

EVENT_TYPE: Final = "LanguageJobArchiver.JobArchived"
#: A queue message is at most 64 KiB once base64-encoded: 48 KiB of UTF-8 JSON, and an event stays under.
MAX_EVENT_BYTES: Final = 48 * 1024
_COUNTS: Final = ("documentCount", "entityCount", "errorCount")


class EventUnrenderable(ValueError):
    """The manifest lacks what an event needs (not the app's manifest, or hand-edited)."""


def archive_event(manifest: Mapping[str, Any], *, container_url: str) -> dict[str, Any]:
    """The event of a job from its manifest (as parsed JSON) and the archive container's URL.

    Every ``data`` field is the manifest's, counts summed over its tasks. ``metadata``,
    ``correlationId`` and a ``displayName`` from the queue message are bounded by the message limits;
    only a ``displayName`` the service returned can be longer: it is cut to what fits under the limit.
    """
    job_id, status, archived_at = (_text(manifest, name) for name in ("jobId", "status", "archivedAt"))
    tasks = manifest.get("tasks")
    metadata = manifest.get("metadata")
    if not isinstance(tasks, list) or not all(isinstance(task, Mapping) for task in tasks):
        raise EventUnrenderable("the manifest's tasks are not a list of objects")
    if not isinstance(metadata, Mapping):
        raise EventUnrenderable("the manifest's metadata is not an object")
    counts = {name: 0 for name in _COUNTS}
    for task in tasks:
        for name in _COUNTS:
            value = task.get(name)
            if type(value) is not int or value < 0:
                raise EventUnrenderable(f"a task's {name} is not a count")
            counts[name] += value
    source = _public(container_url)
    subject = manifest_name(job_id)
    event = {
        "specversion": "1.0",
        "type": EVENT_TYPE,
        "source": source,
        "subject": subject,
        "id": job_id,
        "time": archived_at,
        "datacontenttype": "application/json",
        "data": {
            "jobId": job_id,
            "status": status,
            "archivedAt": archived_at,
            "manifestUrl": f"{source}/{subject}",
            "correlationId": _text(manifest, "correlationId", optional=True),
            "metadata": dict(metadata),
            "displayName": _text(manifest, "displayName", optional=True),
            "taskCount": len(tasks),
            **counts,
        },
    }
    return _fitted(event)


def render_event(manifest: Mapping[str, Any], *, container_url: str) -> str:
    """The event as the JSON text sent on the queue (the queue client base64-encodes it)."""
    return _dumps(archive_event(manifest, container_url=container_url))


class ArchiveEvents:
    """Sends archive events on ``EVENTS_QUEUE``; the queue is created on first use when missing.

    Every event carries the queue time-to-live ``time_to_live`` (``EVENTS_TIME_TO_LIVE_SECONDS``):
    with no consumer, or one that is down, the queue drops what nobody read instead of growing for
    ever; ``python -m cli announce`` sends expired events again."""

    def __init__(self, *, queue: QueueClient, container_url: str, time_to_live: int) -> None:
        self._queue = queue
        self._source = container_url
        self._time_to_live = time_to_live

    @property
    def queue_name(self) -> str:
        return self._queue.queue_name

    async def announce(self, manifest: Mapping[str, Any]) -> None:
        """Send the event of ``manifest``; raises ``EventUnrenderable`` before any request."""
        await send_text(
            self._queue,
            render_event(manifest, container_url=self._source),
            visibility_timeout=0,
            time_to_live=self._time_to_live,
        )

    async def announce_stored(self, manifest: bytes, *, job_id: str) -> None:
        """Send the event of job ``job_id`` from its manifest blob's bytes.

        A manifest the app did not write is logged, not announced: no event could agree with it, and
        retrying cannot help."""
        try:
            await self.announce(_document(manifest, job_id=job_id))
        except EventUnrenderable as exc:
            _log.error(
                "job %s is archived but cannot be announced (%s): run 'python -m cli verify %s'",
                job_id,
                exc,
                job_id,
                extra=job_attributes(job_id),
            )


async def archived(archive: ArchiveWriter, events: ArchiveEvents | None, job_id: str) -> bool:
    """Whether job ``job_id`` has its manifest (a HEAD); with events on, a GET of the manifest instead,
    and the job announced (again) if it has one: whoever finds the manifest already there sends."""
    if events is None:
        return await archive.is_archived(job_id)
    manifest = await archive.read_manifest(job_id)
    if manifest is None:
        return False
    await events.announce_stored(manifest, job_id=job_id)
    return True


def _document(manifest: bytes, *, job_id: str) -> dict[str, Any]:
    """A manifest blob's JSON object, checked to be the manifest of ``job_id``."""
    try:
        document = json.loads(manifest)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventUnrenderable(f"the manifest is not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("jobId") != job_id:
        raise EventUnrenderable(f"not the manifest of job {job_id}")
    return document


def archive_events(settings: Settings, storage: StorageClients) -> ArchiveEvents | None:
    """The events sender of ``settings``; ``None`` when ``EVENTS_QUEUE`` is unset (no events)."""
    if settings.events_queue is None:
        return None
    return ArchiveEvents(
        queue=storage.queue(settings.events_queue),
        container_url=storage.container(settings.archive_container).url,
        time_to_live=settings.events_time_to_live_seconds,
    )


def _fitted(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` under ``MAX_EVENT_BYTES``, its ``displayName`` cut (by characters) if need be."""
    size = _size(event)
    if size < MAX_EVENT_BYTES:
        return event
    data = event["data"]
    name = data["displayName"]
    without = _size({**event, "data": {**data, "displayName": ""}})
    if name is None or without >= MAX_EVENT_BYTES:
        raise EventUnrenderable(f"the event would have {size} bytes, the limit is {MAX_EVENT_BYTES}")
    room, kept = MAX_EVENT_BYTES - 1 - without, 0
    for index, char in enumerate(name):
        room -= len(_dumps(char).encode("utf-8")) - 2  # the character as escaped inside the string
        if room < 0:
            break
        kept = index + 1
    return {**event, "data": {**data, "displayName": name[:kept]}}


def _size(event: Mapping[str, Any]) -> int:
    try:
        return len(_dumps(event).encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: never in a manifest the app wrote
        raise EventUnrenderable("the manifest holds text that is not UTF-8") from None


def _dumps(value: Any) -> str:
    # Compact and non-ASCII kept as UTF-8: never longer than the message the fields came from.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _text(manifest: Mapping[str, Any], name: str, *, optional: bool = False) -> Any:
    value = manifest.get(name)
    if isinstance(value, str) or (optional and value is None):
        return value
    raise EventUnrenderable(f"the manifest's {name} is not {'a string or null' if optional else 'a string'}")


def _public(url: str) -> str:
    """The container's URL without a query: a SAS token in the connection string must not travel."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
