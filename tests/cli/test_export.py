"""``export``: one row per entity, each task blob checked against its manifest before its rows."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.export import EXPORT_FIELDS
from tests.integration.conftest import Stack

from .conftest import RunCli, archive_job, cner_item, ner_item, put_blob

pytestmark = pytest.mark.integration


def jsonl(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


async def test_rows_carry_every_field_in_order_with_unicode_text_and_nulls(
    stack: Stack, run_cli: RunCli
) -> None:
    job_id = await archive_job(
        stack, [ner_item("Zürich", "2026-12-01"), cner_item("東京 🗼")], correlation_id="order-1"
    )

    ran = await run_cli("export", job_id)

    assert ran.status == 0
    rows = jsonl(ran.out)
    assert [list(row) for row in rows] == [list(EXPORT_FIELDS)] * 3
    assert rows == [
        {
            "jobId": job_id, "correlationId": "order-1", "taskName": "people and places",
            "kind": "EntityRecognitionLROResults", "documentId": "1", "category": "Location",
            "subcategory": None, "text": "Zürich", "offset": 0, "length": 6, "confidenceScore": 0.9,
        },
        {
            "jobId": job_id, "correlationId": "order-1", "taskName": "people and places",
            "kind": "EntityRecognitionLROResults", "documentId": "1", "category": "DateTime",
            "subcategory": "Date", "text": "2026-12-01", "offset": 0, "length": 10, "confidenceScore": 0.9,
        },
        {
            "jobId": job_id, "correlationId": "order-1", "taskName": "regions",
            "kind": "CustomEntityRecognitionLROResults", "documentId": "doc-1", "category": "Region",
            "subcategory": None, "text": "東京 🗼", "offset": 0, "length": 4, "confidenceScore": 0.9,
        },
    ]  # fmt: skip
    assert "Zürich" in ran.out  # UTF-8 as is, not \\u escapes


async def test_csv_has_a_header_unicode_cells_and_empty_cells_for_nulls(
    stack: Stack, run_cli: RunCli, tmp_path: Path
) -> None:
    job_id = await archive_job(stack, [cner_item('Zürich, "old town"', "東京")])
    target = tmp_path / "entities.csv"

    ran = await run_cli("export", "--format", "csv", "-o", str(target), job_id)

    assert (ran.status, ran.out) == (0, "")
    with target.open(encoding="utf-8", newline="") as stream:
        table = list(csv.reader(stream))
    assert table[0] == list(EXPORT_FIELDS)
    assert [row[EXPORT_FIELDS.index("text")] for row in table[1:]] == ['Zürich, "old town"', "東京"]
    assert {row[EXPORT_FIELDS.index("correlationId")] for row in table[1:]} == {""}
    assert {row[EXPORT_FIELDS.index("subcategory")] for row in table[1:]} == {""}


async def test_without_job_ids_every_archived_job_is_exported(stack: Stack, run_cli: RunCli) -> None:
    first, second = await archive_job(stack), await archive_job(stack)

    ran = await run_cli("export")

    assert sorted({row["jobId"] for row in jsonl(ran.out)}) == sorted([first, second])  # type: ignore[type-var]


async def test_status_keeps_only_jobs_with_that_manifest_status(stack: Stack, run_cli: RunCli) -> None:
    await archive_job(stack, status="failed")
    done = await archive_job(stack, status="succeeded")
    partly = await archive_job(stack, status="partiallyCompleted")

    ran = await run_cli("export", "--status", "succeeded", "--status", "partiallyCompleted")

    assert sorted({row["jobId"] for row in jsonl(ran.out)}) == sorted([done, partly])  # type: ignore[type-var]
    assert ran.status == 0


async def test_since_keeps_only_jobs_archived_at_or_after_it(stack: Stack, run_cli: RunCli) -> None:
    await archive_job(stack, archived_at=datetime(2026, 11, 29, 23, 59, 59, tzinfo=UTC))
    recent = await archive_job(stack, archived_at=datetime(2026, 11, 30, 0, 0, 0, tzinfo=UTC))

    ran = await run_cli("export", "--since", "2026-11-30T00:00:00Z")

    assert {row["jobId"] for row in jsonl(ran.out)} == {recent}


async def test_a_job_whose_blob_fails_its_hash_is_left_out_and_named_on_stderr(
    stack: Stack, run_cli: RunCli
) -> None:
    good = await archive_job(stack)
    bad = await archive_job(stack)
    name = (await stack.blob_names(f"{bad}/tasks/"))[1]
    data = await stack.blob(name)
    assert data is not None
    await put_blob(stack, name, data.replace(b"Pacific", b"Atlantc"))

    ran = await run_cli("export")

    assert ran.status == 1
    assert {row["jobId"] for row in jsonl(ran.out)} == {
        good
    }  # none of the bad job's rows, not even its intact task
    assert ran.err.splitlines() == [
        f"left out {bad}: a task blob fails its manifest ({name}: sha256-mismatch)"
    ]


async def test_a_named_job_that_is_not_archived_is_left_out(stack: Stack, run_cli: RunCli) -> None:
    missing = "2e3f4051-6b7c-4d8e-9fa0-b1c2d3e4f506"

    ran = await run_cli("export", missing)

    assert (ran.status, ran.out) == (1, "")
    assert ran.err.splitlines() == [f"left out {missing}: it is not archived"]


async def test_a_job_whose_manifest_is_unreadable_is_left_out(stack: Stack, run_cli: RunCli) -> None:
    job_id = await archive_job(stack)
    await put_blob(stack, f"{job_id}/manifest.json", b"{")

    ran = await run_cli("export", "--format", "csv")

    assert ran.status == 1
    assert list(csv.reader(io.StringIO(ran.out))) == [list(EXPORT_FIELDS)]
    assert ran.err.splitlines() == [f"left out {job_id}: its manifest is unreadable"]


async def test_a_since_that_is_not_a_time_is_a_usage_error(stack: Stack, run_cli: RunCli) -> None:
    ran = await run_cli("export", "--since", "yesterday")

    assert ran.status == 2
    assert len(ran.err.splitlines()) == 1
    assert "--since 'yesterday' is not a time" in ran.err
