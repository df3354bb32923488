"""Reading the archive back: list archived jobs page by page, read manifests, verify task blobs.

The reader trusts nothing it reads: a manifest that does not parse, or names blobs outside its
job, is ``manifest-unreadable``; each task blob is hashed and measured against its manifest entry
(DESIGN.md, "Archive layout"). Listing streams one page at a time, so memory does not grow with
the archive.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from .archive import manifest_name
from .jobs import TERMINAL_STATUSES
from .timefmt import parse_time

__all__ = [
    "ARCHIVE_STATUSES",
    "ArchiveReader",
    "CheckedTasks",
    "Finding",
    "Manifest",
    "ManifestUnreadable",
    "Problem",
    "TaskEntry",
    "Verification",
    "check_blob",
    "is_job_id",
    "parse_manifest",
    "selected",
]

#: Every status a manifest can hold: the service's terminal ones and the app's own (DESIGN.md,
#: "Precise definitions"): what ``--status`` filters may name.
ARCHIVE_STATUSES: Final = TERMINAL_STATUSES | {"notFound", "expired", "timedOut", "rejected"}
_MANIFEST_SUFFIX: Final = "/manifest.json"
_SHA256: Final = re.compile(r"^[0-9a-f]{64}$")
#: Blobs per listing page (about 330 jobs). A page's entries are what memory holds of the listing;
#: at 5,000 (the service's maximum) that alone is ~30 MiB, and 5x fewer list calls save nothing
#: worth it next to the three reads each job costs.
_PAGE_SIZE: Final = 1000
#: ``archivedAt`` is the app's clock, a blob's Last-Modified the storage's: a listing filter by time
#: keeps this much slack for skew between the two, so it never drops a job it should keep.
_CLOCK_SLACK: Final = timedelta(minutes=15)


class Problem(StrEnum):
    MISSING = "missing"
    SHA256_MISMATCH = "sha256-mismatch"
    SIZE_MISMATCH = "size-mismatch"
    MANIFEST_UNREADABLE = "manifest-unreadable"
    NOT_ARCHIVED = "not-archived"
    INVALID_NAME = "invalid-name"  # a listed manifest whose folder is not a job id: never followed


@dataclass(frozen=True, slots=True)
class Finding:
    blob: str | None  # None where no blob applies (no manifest at all)
    problem: Problem


@dataclass(frozen=True, slots=True)
class Verification:
    job_id: str
    problems: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class TaskEntry:
    """A manifest's promise about one task blob."""

    blob: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """The parts of ``manifest.json`` that readers rely on."""

    job_id: str
    status: str | None
    archived_at: datetime | None
    correlation_id: str | None
    tasks: tuple[TaskEntry, ...]
    #: The whole JSON object, for what renders from it (an archive event).
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


class ManifestUnreadable(ValueError):
    """The manifest exists but cannot be trusted (not JSON, truncated, wrong shape or job)."""


def parse_manifest(data: bytes, *, job_id: str) -> Manifest:
    """Parse and check a manifest; raise ``ManifestUnreadable`` for anything off."""
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestUnreadable(f"not JSON ({exc})") from None
    except RecursionError:
        raise ManifestUnreadable("not JSON (nested too deep)") from None
    if not isinstance(body, dict) or body.get("jobId") != job_id:
        raise ManifestUnreadable("not the manifest of this job")
    tasks = body.get("tasks")
    if not isinstance(tasks, list):
        raise ManifestUnreadable("tasks is not a list")
    try:
        archived_at = parse_time(body.get("archivedAt"))
    except ValueError:
        raise ManifestUnreadable("archivedAt is not a timestamp") from None
    return Manifest(
        job_id=job_id,
        status=_optional_str(body, "status"),
        archived_at=archived_at,
        correlation_id=_optional_str(body, "correlationId"),
        tasks=tuple(_task_entry(task, job_id) for task in tasks),
        document=body,
    )


def selected(manifest: Manifest, *, statuses: Collection[str], since: datetime | None) -> bool:
    """Whether a job passes the ``--status`` (any of ``statuses``; empty: all) and ``--since`` filters."""
    if statuses and manifest.status not in statuses:
        return False
    return since is None or (manifest.archived_at is not None and manifest.archived_at >= since)


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ManifestUnreadable(f"{name} is not a string")
    return value


def _task_entry(task: Any, job_id: str) -> TaskEntry:
    if not isinstance(task, dict):
        raise ManifestUnreadable("a task entry is not an object")
    blob, sha256, size = task.get("blob"), task.get("sha256"), task.get("bytes")
    # A blob outside the job's own folder would let one manifest vouch for another job's data.
    if not isinstance(blob, str) or not _is_task_blob(blob, job_id):
        raise ManifestUnreadable("a task entry names a blob outside the job")
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise ManifestUnreadable(f"the sha256 of {blob} is not lowercase hex")
    if type(size) is not int or size < 0:
        raise ManifestUnreadable(f"the bytes of {blob} is not a size")
    return TaskEntry(blob=blob, sha256=sha256, size=size)


def is_job_id(value: str) -> bool:
    """Whether ``value`` is a job id as the app names folders: a canonical (lowercase) UUID."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


#: Azure's limit on a blob name; anything longer is not a name the app wrote.
_MAX_BLOB_NAME: Final = 1024
_UNSAFE_IN_NAME: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")


def _is_task_blob(name: str, job_id: str) -> bool:
    """``<job_id>/tasks/<name>``, with no empty, ``.`` or ``..`` segment (which a URL would resolve
    out of the job's folder), no backslash or control character, within Azure's length limit."""
    prefix = f"{job_id}/tasks/"
    if not name.startswith(prefix) or len(name) > _MAX_BLOB_NAME or _UNSAFE_IN_NAME.search(name):
        return False
    return all(segment not in ("", ".", "..") for segment in name[len(prefix) :].split("/"))


def check_blob(entry: TaskEntry, data: bytes | None) -> list[Finding]:
    """What is wrong with a task blob's bytes (``None``: the blob is missing) against its entry."""
    if data is None:
        return [Finding(entry.blob, Problem.MISSING)]
    findings = []
    if len(data) != entry.size:
        findings.append(Finding(entry.blob, Problem.SIZE_MISMATCH))
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        findings.append(Finding(entry.blob, Problem.SHA256_MISMATCH))
    return findings


@dataclass(frozen=True, slots=True)
class CheckedTasks:
    """Task blobs read and checked against their manifest, in the manifest's order."""

    blobs: tuple[tuple[TaskEntry, bytes], ...]  # the ones that passed
    problems: tuple[Finding, ...]


class ArchiveReader:
    """Reads ``ARCHIVE_CONTAINER``: never writes."""

    def __init__(self, *, container: ContainerClient) -> None:
        self._container = container

    async def archived_jobs(
        self,
        *,
        modified_since: datetime | None = None,
        page_size: int = _PAGE_SIZE,
        on_invalid: Callable[[str], None] | None = None,
    ) -> AsyncIterator[str]:
        """Ids of the jobs that have a manifest, in name order, one listing page at a time.

        ``modified_since`` skips manifests written well before it (from the listing alone, with
        slack for clock skew), so a filter on ``archivedAt`` does not read every manifest. A
        manifest whose folder is not a job id is never followed: its name goes to ``on_invalid``.
        """
        floor = None if modified_since is None else _minus(modified_since, _CLOCK_SLACK)
        try:
            async for blob in self._container.list_blobs(results_per_page=page_size):
                job_id, suffix = blob.name[: -len(_MANIFEST_SUFFIX)], blob.name[-len(_MANIFEST_SUFFIX) :]
                if suffix != _MANIFEST_SUFFIX:
                    continue
                if not is_job_id(job_id):
                    if on_invalid is not None:
                        on_invalid(blob.name)
                    continue
                if floor is not None and blob.last_modified is not None and blob.last_modified < floor:
                    continue
                yield job_id
        except ResourceNotFoundError:
            return  # no container yet: nothing archived

    async def manifest(self, job_id: str) -> Manifest | None:
        """The job's manifest, ``None`` when it has none; ``ManifestUnreadable`` when it is broken."""
        data = await self._read(manifest_name(job_id))
        return None if data is None else parse_manifest(data, job_id=job_id)

    async def check_tasks(self, manifest: Manifest) -> CheckedTasks:
        blobs, problems = [], []
        for entry in manifest.tasks:
            data = await self._read(entry.blob)
            findings = check_blob(entry, data)
            if findings:
                problems.extend(findings)
            else:
                assert data is not None
                blobs.append((entry, data))
        return CheckedTasks(blobs=tuple(blobs), problems=tuple(problems))

    async def verify(self, job_id: str) -> Verification:
        """Re-read the manifest and every task blob; every mismatch is a finding."""
        try:
            manifest = await self.manifest(job_id)
        except ManifestUnreadable:
            return Verification(job_id, (Finding(manifest_name(job_id), Problem.MANIFEST_UNREADABLE),))
        if manifest is None:
            return Verification(job_id, (Finding(None, Problem.NOT_ARCHIVED),))
        return Verification(job_id, (await self.check_tasks(manifest)).problems)

    async def _read(self, name: str) -> bytes | None:
        try:
            return await (await self._container.download_blob(name)).readall()
        except ResourceNotFoundError:
            return None


def _minus(moment: datetime, delta: timedelta) -> datetime | None:
    """``moment - delta``; ``None`` (no floor) where that is before the first representable time."""
    try:
        return moment - delta
    except OverflowError:
        return None
