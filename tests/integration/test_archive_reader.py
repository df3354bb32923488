"""The archive reader on Azurite: listing archived jobs page by page, and the time filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.archive_reader import ArchiveReader
from tests.cli.conftest import archive_job, put_blob

from .conftest import Stack

pytestmark = pytest.mark.integration


def reader(stack: Stack) -> ArchiveReader:
    return ArchiveReader(container=stack.blobs.get_container_client(stack.settings.archive_container))


async def test_every_archived_job_is_listed_once_across_pages_and_nothing_else(stack: Stack) -> None:
    job_ids = [await archive_job(stack) for _ in range(4)]
    await put_blob(stack, "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d/tasks/00-X.json", b"{}")  # no manifest yet
    await put_blob(stack, "notes/a/manifest.json", b"{}")  # not a job's manifest

    listed = [job_id async for job_id in reader(stack).archived_jobs(page_size=2)]

    assert listed == sorted(job_ids)


async def test_a_time_filter_skips_manifests_written_well_before_it_from_the_listing(stack: Stack) -> None:
    job_id = await archive_job(stack)
    now = datetime.now(UTC)

    recent = [j async for j in reader(stack).archived_jobs(modified_since=now - timedelta(minutes=5))]
    later = [j async for j in reader(stack).archived_jobs(modified_since=now + timedelta(hours=1))]

    assert (recent, later) == ([job_id], [])


async def test_an_archive_that_does_not_exist_yet_lists_nothing(stack: Stack) -> None:
    assert [j async for j in reader(stack).archived_jobs()] == []
