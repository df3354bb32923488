"""The archive: one JSON blob per task item, then ``manifest.json`` as the single commit point.

Layout (DESIGN.md, "Archive layout"): ``<jobId>/tasks/<NN>-<kind>.json`` and
``<jobId>/manifest.json``. Task blobs are deterministic bytes, so a retried or duplicated run
writes the same content; the manifest is created with ``If-None-Match: *`` and whoever loses
that race has nothing left to do.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Final, TypeVar, cast

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from .blob_put import BlobPut
from .storage import JSON_CONTENT, create_container_if_missing
from .timefmt import format_time

__all__ = [
    "SCHEMA_VERSION",
    "ArchiveWriter",
    "Commit",
    "JobRecord",
    "TaskBlob",
    "manifest_name",
    "render_manifest",
    "render_tasks",
    "task_blob_name",
]

SCHEMA_VERSION: Final = 1
#: The longest ``<kind>`` part of a task blob's name. Azure allows 1,024 characters in a blob
#: name; a job id and ``/tasks/NN-…json`` take about 50, and every real kind is under 40.
MAX_KIND_CHARS: Final = 100
_UNSAFE_KIND: Final = re.compile(r"[^A-Za-z0-9._-]+")
_DOTS: Final = re.compile(r"\.{2,}")
_T = TypeVar("_T")


class Commit(Enum):
    COMMITTED = "committed"  # this call created the manifest
    ALREADY_ARCHIVED = "already-archived"  # someone else did; nothing left to do


@dataclass(frozen=True, slots=True)
class TaskBlob:
    """One task item rendered for the archive, with the manifest entry that describes it."""

    name: str
    data: bytes
    entry: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRecord:
    """What the manifest says of the job itself (every field present, unknown ones ``None``)."""

    job_id: str
    status: str
    display_name: str | None
    created: datetime | None
    last_updated: datetime | None
    expires: datetime | None
    api_version: str
    errors: Sequence[Any]
    correlation_id: str | None
    metadata: Mapping[str, str]


def manifest_name(job_id: str) -> str:
    return f"{job_id}/manifest.json"


def task_blob_name(job_id: str, index: int, kind: Any) -> str:
    r"""``<jobId>/tasks/<NN>-<kind>.json``, always a valid and safe blob name, unique by ``index``.

    ``kind`` as served, reduced to ASCII letters, digits, ``_``, ``-`` and single dots (any other
    run of characters becomes one ``_``), no dot at either end, at most ``MAX_KIND_CHARS``
    characters; ``Unknown`` when nothing is left. No ``/``, ``\``, ``..`` or empty segment can
    come out of it, whatever the service sends; the manifest keeps the full ``kind``.
    """
    text = kind if isinstance(kind, str) else ""
    safe = _DOTS.sub("_", _UNSAFE_KIND.sub("_", text))[:MAX_KIND_CHARS].strip(".")
    return f"{job_id}/tasks/{index:02d}-{safe or 'Unknown'}.json"


def render_tasks(job_id: str, items: Sequence[Mapping[str, Any]]) -> list[TaskBlob]:
    """Task blobs in the service's order; bytes depend only on the items (sorted keys, compact)."""
    blobs = []
    for index, item in enumerate(items):
        name = task_blob_name(job_id, index, item.get("kind"))
        data = json.dumps(item, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
        results = item.get("results") if isinstance(item.get("results"), Mapping) else {}
        assert isinstance(results, Mapping)
        documents = _list(results.get("documents"))
        blobs.append(
            TaskBlob(
                name=name,
                data=data,
                entry={
                    "taskName": item.get("taskName"),
                    "kind": item.get("kind"),
                    "status": item.get("status"),
                    "blob": name,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data),
                    "documentCount": len(documents),
                    "entityCount": sum(
                        len(_list(doc.get("entities"))) for doc in documents if isinstance(doc, Mapping)
                    ),
                    "errorCount": len(_list(results.get("errors"))),
                },
            )
        )
    return blobs


class ArchiveWriter:
    """Writes task blobs and commits the manifest in the archive container."""

    def __init__(self, *, container: ContainerClient, put: BlobPut | None = None) -> None:
        """``put``: the lean Put Blob for this container (``shared.blob_put``); without it (a SAS
        connection string) the SDK's upload writes."""
        self._container = container
        self._put = put

    async def is_archived(self, job_id: str) -> bool:
        try:
            await self._container.get_blob_client(manifest_name(job_id)).get_blob_properties()
        except ResourceNotFoundError:
            return False
        return True

    async def read_manifest(self, job_id: str) -> bytes | None:
        """The manifest's bytes, ``None`` when the job has none (one GET, where a probe is a HEAD)."""
        try:
            return await (await self._container.download_blob(manifest_name(job_id))).readall()
        except ResourceNotFoundError:
            return None

    async def commit(self, record: JobRecord, tasks: Sequence[TaskBlob], *, now: datetime) -> Commit:
        """Write every task blob (all at once), then create the manifest; idempotent and race-safe."""
        # Create-only first: on a fresh job that is one PUT per blob, as cheap as an overwrite. The
        # blobs go out together (one round trip, not one per task); the manifest waits for all.
        created = await _all(self._create(task) for task in tasks)
        existing = [task for task, fresh in zip(tasks, created, strict=True) if not fresh]
        if existing:
            # A 409: an earlier or concurrent run got here. If it wrote the first blob, it may have
            # finished: then the manifest exists and we are done. Otherwise that run was interrupted
            # and we (re)write the same deterministic bytes.
            if not created[0] and await self.is_archived(record.job_id):
                return Commit.ALREADY_ARCHIVED
            await _all(self._settle(task) for task in existing)
        manifest = render_manifest(record, tasks, now=now)
        try:
            await self._upload(manifest_name(record.job_id), manifest, overwrite=False)
        except ResourceExistsError:
            return Commit.ALREADY_ARCHIVED
        return Commit.COMMITTED

    async def _create(self, task: TaskBlob) -> bool:
        """Create the task blob; ``False`` when it already exists."""
        try:
            await self._upload(task.name, task.data, overwrite=False)
        except ResourceExistsError:
            return False
        return True

    async def _settle(self, task: TaskBlob) -> None:
        """A task blob that exists already: left as it is when it holds these very bytes (the storage
        service's Content-MD5 of a single-shot upload says so, one HEAD), rewritten otherwise. A
        rewrite of equal bytes would only add a blob version, which a write-once (immutable) archive
        keeps for its whole retention; a torn or stale blob is replaced (a new version under
        version-level immutability, which allows that)."""
        try:
            properties = await self._container.get_blob_client(task.name).get_blob_properties()
        except ResourceNotFoundError:
            properties = None
        if properties is not None and properties.size == len(task.data):
            stored = properties.content_settings.content_md5
            if stored and bytes(stored) == hashlib.md5(task.data, usedforsecurity=False).digest():
                return
        await self._upload(task.name, task.data, overwrite=True)

    async def _upload(self, name: str, data: bytes, *, overwrite: bool) -> None:
        try:
            await self._write(name, data, overwrite=overwrite)
        except ResourceNotFoundError:
            await create_container_if_missing(self._container)
            await self._write(name, data, overwrite=overwrite)

    async def _write(self, name: str, data: bytes, *, overwrite: bool) -> None:
        if self._put is not None:
            await self._put.put(name, data, create_only=not overwrite)
        else:
            await self._container.upload_blob(name, data, overwrite=overwrite, content_settings=JSON_CONTENT)


async def _all(calls: Iterable[Awaitable[_T]]) -> list[_T]:
    """Await ``calls`` concurrently; every one finishes before the first error is raised, so no
    write is left running behind a failed commit (and none is reported as done when it is not)."""
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return cast(list[_T], outcomes)


def render_manifest(record: JobRecord, tasks: Sequence[TaskBlob], *, now: datetime) -> bytes:
    """The manifest's bytes, archived ``now``: what ``commit`` creates."""
    body = {
        "schemaVersion": SCHEMA_VERSION,
        "jobId": record.job_id,
        "status": record.status,
        "displayName": record.display_name,
        "createdDateTime": format_time(record.created),
        "lastUpdatedDateTime": format_time(record.last_updated),
        "expirationDateTime": format_time(record.expires),
        "archivedAt": format_time(now),
        "apiVersion": record.api_version,
        "errors": list(record.errors),
        "correlationId": record.correlation_id,
        "metadata": dict(record.metadata),
        "tasks": [task.entry for task in tasks],
    }
    return json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
