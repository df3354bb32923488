"""Judge the archive events of a run by storage alone (DESIGN.md, "Archive events").

Every event on the events queue is read (received, so past the 32 a peek shows) and checked against
the manifest it names, field by field, by this code alone (never the app's renderer): a well-formed
CloudEvents 1.0 event in JSON structured mode, base64 of UTF-8 JSON under 48 KiB, whose ``data``
agrees with the manifest. Every archived job must be announced; no event may name a job without a
manifest; duplicates (the same ``id`` again) are counted, and at most half the number of jobs.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

__all__ = ["EventVerdict", "judge_events"]

_ENVELOPE: Final = {"specversion", "type", "source", "subject", "id", "time", "datacontenttype", "data"}
_DATA: Final = {
    "jobId", "status", "archivedAt", "manifestUrl", "correlationId", "metadata", "displayName",
    "taskCount", "documentCount", "entityCount", "errorCount",
}  # fmt: skip
_FROM_MANIFEST: Final = ("jobId", "status", "archivedAt", "correlationId", "metadata", "displayName")
_LIMIT: Final = 48 * 1024
_READ_SECONDS: Final = 120


@dataclass(kw_only=True)
class EventVerdict:
    jobs: int
    events: int = 0
    announced: int = 0  # archived jobs with at least one well-formed event
    unannounced: list[str] = field(default_factory=list)  # archived jobs without one
    malformed: list[str] = field(default_factory=list)  # one line per bad event
    orphans: list[str] = field(default_factory=list)  # events of jobs without a manifest
    duplicates: int = 0  # events beyond the first of their id

    @property
    def ok(self) -> bool:
        return not (self.unannounced or self.malformed or self.orphans) and self.duplicates <= self.jobs / 2

    def problems(self) -> list[str]:
        lines = [f"archived, never announced: {job_id}" for job_id in self.unannounced]
        lines += [f"malformed event: {line}" for line in self.malformed]
        lines += [f"event of a job without a manifest: {job_id}" for job_id in self.orphans]
        if self.duplicates > self.jobs / 2:
            lines.append(f"{self.duplicates} duplicate events, more than half the {self.jobs} jobs")
        return lines

    def summary(self) -> str:
        return (
            f"events {self.events}: announced {self.announced}, duplicates {self.duplicates}, "
            f"unannounced {len(self.unannounced)}, malformed {len(self.malformed)}, "
            f"without manifest {len(self.orphans)}"
        )


async def judge_events(
    queue: QueueClient, *, manifests: Mapping[str, Any], container_url: str, jobs: int
) -> EventVerdict:
    """Judge every event on ``queue`` against ``manifests`` (job id -> the manifest's JSON) of the
    archive container at ``container_url`` (as the app addresses it)."""
    verdict = EventVerdict(jobs=jobs)
    ids: Counter[str] = Counter()
    for content in await _contents(queue):
        verdict.events += 1
        try:
            event = _decode(content)
        except ValueError as error:
            verdict.malformed.append(f"{error}: {content[:80]}")
            continue
        job_id: str = event["id"]
        ids[job_id] += 1
        if job_id not in manifests:
            verdict.orphans.append(job_id)
            continue
        found = _disagreements(event, manifests[job_id], container_url)
        verdict.malformed += [f"{job_id}: {problem}" for problem in found]
    verdict.duplicates = sum(count - 1 for count in ids.values())
    verdict.announced = sum(1 for job_id in manifests if ids[job_id])
    verdict.unannounced = sorted(job_id for job_id in manifests if not ids[job_id])
    return verdict


def _decode(content: str) -> dict[str, Any]:
    try:
        data = base64.b64decode(content, validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None
    if len(data) >= _LIMIT:
        raise ValueError(f"{len(data)} bytes of JSON, not under 48 KiB")
    try:
        event = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("not UTF-8 JSON") from None
    if not isinstance(event, dict) or set(event) != _ENVELOPE:
        raise ValueError("not the envelope of a structured-mode CloudEvent with data")
    if not isinstance(event["id"], str):
        raise ValueError("id is not a string")
    if not isinstance(event["data"], dict) or set(event["data"]) != _DATA:
        raise ValueError("data does not hold exactly the documented fields")
    return event


def _disagreements(event: dict[str, Any], manifest: Mapping[str, Any], container_url: str) -> list[str]:
    job_id, data, tasks = event["id"], event["data"], manifest.get("tasks") or []
    expected = {
        "specversion": "1.0",
        "type": "LanguageJobArchiver.JobArchived",
        "datacontenttype": "application/json",
        "source": container_url,
        "subject": f"{job_id}/manifest.json",
        "time": manifest.get("archivedAt"),
    }
    found = [
        f"{name} {event[name]!r} != {value!r}" for name, value in expected.items() if event[name] != value
    ]
    wanted = {name: manifest.get(name) for name in _FROM_MANIFEST}
    wanted["manifestUrl"] = f"{container_url}/{job_id}/manifest.json"
    wanted["taskCount"] = len(tasks)
    for count in ("documentCount", "entityCount", "errorCount"):
        wanted[count] = sum(task.get(count, 0) for task in tasks)
    found += [
        f"data.{name} {data[name]!r} != {value!r}" for name, value in wanted.items() if data[name] != value
    ]
    return found


async def _contents(queue: QueueClient) -> list[str]:
    """Every message's content; received with a long lease so that each is read once."""
    try:
        total = int((await queue.get_queue_properties()).approximate_message_count or 0)
    except ResourceNotFoundError:
        return []
    contents: list[str] = []
    for _ in range(total // 32 + 2):  # bounded: a batch a round, a round more than needed
        batch = [
            m
            async for m in queue.receive_messages(
                messages_per_page=32, max_messages=32, visibility_timeout=_READ_SECONDS
            )
        ]
        if not batch:
            break
        contents += [str(message.content) for message in batch]
    return contents
