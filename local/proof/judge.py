"""Judge a run by storage alone: did every accepted job end with exactly one complete, verifiable archive?

It reads the archive container, the ledger container, the jobs queue and its poison queue, and
checks the promise of DESIGN.md ("every accepted job ends with exactly one manifest"):

- every expected job has ``<jobId>/manifest.json``, naming the job, with an expected status;
- every task blob the manifest lists exists and matches its ``sha256`` and ``bytes``, and succeeded
  tasks hold every document that was submitted (all result pages merged);
- no blob lies outside the layout: no task blob that its manifest does not list, no unknown job;
- no pending ledger record and no message on the jobs queue are left;
- every poison message is accounted for: a deliberately bad message, or a job that was archived;
- with an events queue, every archived job is announced, as ``local.proof.judge_events`` judges it.

Used by the crash-chaos run (``local.proof.chaos``) and its tests; reading only, except that poison
messages are received (made invisible for a while) to be read past the 32 a peek shows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient, ContainerClient
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from local.proof.judge_events import EventVerdict, judge_events

__all__ = ["Expectation", "Verdict", "judge"]

_BLOB_NAME: Final = re.compile(
    r"^(?P<job>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/"
    r"(?:manifest\.json|tasks/\d{2}-[A-Za-z0-9_.-]+\.json)$"
)
_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_POISON_READ_SECONDS: Final = 60


@dataclass(frozen=True, kw_only=True)
class Expectation:
    """What one submitted job must end as."""

    statuses: frozenset[str]
    documents: int  # documents of every task that succeeded


@dataclass(kw_only=True)
class Verdict:
    """What storage says; ``ok`` when nothing was lost, corrupt, left behind or unexplained."""

    jobs: int
    manifests: int = 0
    archived: int = 0  # expected jobs with a sound manifest
    lost: list[str] = field(default_factory=list)  # expected jobs without a manifest
    corrupt: dict[str, list[str]] = field(default_factory=dict)  # job (or blob) -> problems
    pending: list[str] = field(default_factory=list)  # ledger records left
    queued: int = 0  # messages left on the jobs queue
    poisoned: int = 0
    unaccounted_poison: list[str] = field(default_factory=list)
    events: EventVerdict | None = None  # judged when the run had an events queue

    @property
    def ok(self) -> bool:
        events_ok = self.events is None or self.events.ok
        return events_ok and not (
            self.lost or self.corrupt or self.pending or self.queued or self.unaccounted_poison
        )

    def problems(self, limit: int = 10) -> list[str]:
        """The first ``limit`` problems, one line each."""
        lines = [f"lost: {job_id}" for job_id in self.lost]
        lines += [f"corrupt: {name}: {'; '.join(found)}" for name, found in self.corrupt.items()]
        lines += [f"pending ledger record: {job_id}" for job_id in self.pending]
        lines += [f"{self.queued} messages left on the jobs queue"] if self.queued else []
        lines += [f"unaccounted poison message: {text[:120]}" for text in self.unaccounted_poison]
        lines += self.events.problems() if self.events is not None else []
        return lines[:limit]


async def judge(
    *,
    connection_string: str,
    archive_container: str,
    ledger_container: str,
    jobs_queue: str,
    expected: Mapping[str, Expectation],
    bad_messages: Collection[str] = (),
    events: tuple[str, str] | None = None,
) -> Verdict:
    """Read storage and judge every job of ``expected``; ``bad_messages`` are the ones meant for poison;
    ``events``: (the events queue, the archive container's URL as the app addresses it)."""
    verdict = Verdict(jobs=len(expected))
    async with BlobServiceClient.from_connection_string(connection_string) as blobs:
        archive = blobs.get_container_client(archive_container)
        names = await _names(archive)
        by_job: dict[str, list[str]] = {}
        for name in names:
            match = _BLOB_NAME.match(name)
            if match is None or match["job"] not in expected:
                verdict.corrupt[name] = ["blob outside the archive layout or of no submitted job"]
            else:
                by_job.setdefault(match["job"], []).append(name)
        verdict.manifests = sum(name.endswith("/manifest.json") for name in names)
        for job_id, expectation in expected.items():
            job_names = set(by_job.get(job_id, ()))
            if f"{job_id}/manifest.json" not in job_names:
                verdict.lost.append(job_id)
                continue
            found = await _check_job(archive, job_id, expectation, job_names)
            if found:
                verdict.corrupt[job_id] = found
            else:
                verdict.archived += 1
        verdict.pending = [
            name.removesuffix(".json") for name in await _names(blobs.get_container_client(ledger_container))
        ]
        manifests = {
            name.removesuffix("/manifest.json"): await _json(archive, name)
            for name in names
            if events is not None and name.endswith("/manifest.json")
        }
    async with QueueServiceClient.from_connection_string(connection_string) as queues:
        verdict.queued = await _count(queues.get_queue_client(jobs_queue))
        archived = set(expected) - set(verdict.lost)
        for original in await _poison_texts(queues.get_queue_client(f"{jobs_queue}-poison")):
            verdict.poisoned += 1
            if original in bad_messages:
                continue
            named = set(_UUID.findall(original.lower()))
            if not named or not named <= archived:
                verdict.unaccounted_poison.append(original)
        if events is not None:
            queue, container_url = events
            verdict.events = await judge_events(
                queues.get_queue_client(queue),
                manifests=manifests,
                container_url=container_url,
                jobs=len(expected),
            )
    return verdict


async def _check_job(
    archive: ContainerClient, job_id: str, expectation: Expectation, names: set[str]
) -> list[str]:
    found: list[str] = []
    try:
        manifest = json.loads(await _read(archive, f"{job_id}/manifest.json"))
        tasks = list(manifest["tasks"])
        status = manifest["status"]
        named = manifest["jobId"]
    except (ValueError, KeyError, TypeError) as error:
        return [f"manifest unreadable: {error}"]
    if named != job_id:
        found.append(f"manifest names job {named}")
    if status not in expectation.statuses:
        found.append(f"status {status}, expected one of {sorted(expectation.statuses)}")
    listed = {f"{job_id}/manifest.json"}
    for index, task in enumerate(tasks):
        blob = task.get("blob") if isinstance(task, dict) else None
        if not isinstance(blob, str) or not blob.startswith(f"{job_id}/tasks/{index:02d}-"):
            found.append(f"task {index}: blob name {blob!r} is not {job_id}/tasks/{index:02d}-<kind>.json")
            continue
        listed.add(blob)
        if blob not in names:
            found.append(f"{blob}: missing")
            continue
        data = await _read(archive, blob)
        if hashlib.sha256(data).hexdigest() != task.get("sha256"):
            found.append(f"{blob}: sha256 mismatch")
        if len(data) != task.get("bytes"):
            found.append(f"{blob}: size {len(data)} != bytes {task.get('bytes')}")
        if task.get("status") == "succeeded" and task.get("documentCount") != expectation.documents:
            found.append(f"{blob}: {task.get('documentCount')} documents, {expectation.documents} submitted")
    found += [f"{name}: task blob not listed in the manifest" for name in sorted(names - listed)]
    return found


async def _names(container: ContainerClient) -> list[str]:
    try:
        return [blob.name async for blob in container.list_blobs()]
    except ResourceNotFoundError:
        return []


async def _json(container: ContainerClient, name: str) -> Any:
    try:
        return json.loads(await _read(container, name))
    except ValueError:
        return None  # judged corrupt above; its events cannot agree with it


async def _read(container: ContainerClient, name: str) -> bytes:
    return await (await container.download_blob(name)).readall()


async def _count(queue: QueueClient) -> int:
    try:
        properties = await queue.get_queue_properties()
    except ResourceNotFoundError:
        return 0
    return int(properties.approximate_message_count or 0)


async def _poison_texts(queue: QueueClient) -> list[str]:
    """The original text of every poison message: the app's ``{"reason", "message"}`` or the host's copy."""
    texts: list[str] = []
    for _ in range(max(1, await _count(queue))):  # bounded: one message a round at least
        batch = [
            m async for m in queue.receive_messages(max_messages=32, visibility_timeout=_POISON_READ_SECONDS)
        ]
        if not batch:
            break
        texts += [_original(str(message.content)) for message in batch]
    return texts


def _original(content: str) -> str:
    try:
        text = base64.b64decode(content, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return content
    try:
        body: Any = json.loads(text)
    except ValueError:
        return text
    if isinstance(body, dict) and set(body) == {"reason", "message"} and isinstance(body["message"], str):
        return body["message"]
    return text
