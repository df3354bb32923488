"""Reading the archive back (DESIGN.md, "Archive layout"): manifests are trusted only when they parse
and stay inside their job; task blobs pass only with their manifest's exact size and SHA-256."""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.archive import JobRecord, render_manifest, render_tasks
from shared.archive_reader import Finding, ManifestUnreadable, Problem, TaskEntry, check_blob, parse_manifest
from tests.support import BOUNDED

JOB_ID = "c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18"
ITEMS: list[dict[str, Any]] = [
    {
        "kind": "EntityRecognitionLROResults",
        "taskName": "a",
        "status": "succeeded",
        "results": {"documents": []},
    },
    {"kind": "CustomEntityRecognitionLROResults", "taskName": "b", "status": "failed"},
]
RECORD = JobRecord(
    job_id=JOB_ID,
    status="partiallyCompleted",
    display_name=None,
    created=None,
    last_updated=None,
    expires=None,
    api_version="2024-11-01",
    errors=[],
    correlation_id="order-1",
    metadata={},
)
ARCHIVED_AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def written_manifest() -> bytes:
    return render_manifest(RECORD, render_tasks(JOB_ID, ITEMS), now=ARCHIVED_AT)


def test_the_manifest_the_app_writes_reads_back_with_every_task_entry() -> None:
    tasks = render_tasks(JOB_ID, ITEMS)

    manifest = parse_manifest(written_manifest(), job_id=JOB_ID)

    assert (manifest.status, manifest.archived_at, manifest.correlation_id) == (
        "partiallyCompleted",
        ARCHIVED_AT,
        "order-1",
    )
    assert manifest.tasks == tuple(TaskEntry(t.name, t.entry["sha256"], t.entry["bytes"]) for t in tasks)


@BOUNDED
@given(
    st.binary(max_size=200) | st.integers(0, len(written_manifest())).map(lambda n: written_manifest()[:n])
)
def test_any_bytes_either_parse_or_are_unreadable_never_another_error(data: bytes) -> None:
    with contextlib.suppress(ManifestUnreadable):
        parse_manifest(data, job_id=JOB_ID)


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("jobId", "8f1d4b4e-2c3a-4d5e-9f60-718293a4b5c6"),
        ("tasks", {}),
        ("archivedAt", "yesterday"),
        ("status", 7),
    ],
)
def test_a_manifest_with_a_wrong_field_is_unreadable(change: str, value: object) -> None:
    body = json.loads(written_manifest()) | {change: value}

    with pytest.raises(ManifestUnreadable):
        parse_manifest(json.dumps(body).encode(), job_id=JOB_ID)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("blob", "8f1d4b4e-2c3a-4d5e-9f60-718293a4b5c6/tasks/00-X.json"),
        ("blob", f"{JOB_ID}/manifest.json"),
        ("sha256", "ABC"),
        ("bytes", -1),
        ("bytes", True),
    ],
)
def test_a_task_entry_outside_its_job_or_without_a_hash_and_size_is_unreadable(
    field: str, value: object
) -> None:
    body = json.loads(written_manifest())
    body["tasks"][0][field] = value

    with pytest.raises(ManifestUnreadable):
        parse_manifest(json.dumps(body).encode(), job_id=JOB_ID)


@BOUNDED
@given(st.binary(max_size=300), st.data())
def test_a_blob_passes_exactly_when_it_is_the_bytes_its_entry_describes(
    data: bytes, draw: st.DataObject
) -> None:
    entry = TaskEntry(f"{JOB_ID}/tasks/00-X.json", hashlib.sha256(data).hexdigest(), len(data))
    other = draw.draw(st.binary(max_size=300).filter(lambda b: b != data))

    assert check_blob(entry, data) == []
    findings = check_blob(entry, other)
    assert Finding(entry.blob, Problem.SHA256_MISMATCH) in findings
    assert (Finding(entry.blob, Problem.SIZE_MISMATCH) in findings) == (len(other) != len(data))


def test_a_missing_blob_is_one_finding() -> None:
    entry = TaskEntry(f"{JOB_ID}/tasks/00-X.json", "0" * 64, 0)

    assert check_blob(entry, None) == [Finding(entry.blob, Problem.MISSING)]
