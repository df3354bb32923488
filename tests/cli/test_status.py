"""``status``: what became of each job (DESIGN.md, "Operator command line")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.ledger import Ledger
from shared.messages import JobMessage
from tests.integration.conftest import Stack

from .conftest import ARCHIVED_AT, RunCli, archive_job, put_blob

pytestmark = pytest.mark.integration

UNKNOWN_ID = "0b8d7b5e-4a8f-4c1e-9d0e-5f6a7b8c9d0e"


def ledger(stack: Stack) -> Ledger:
    return Ledger(
        container=stack.blobs.get_container_client(stack.settings.ledger_container), settings=stack.settings
    )


async def test_an_archived_job_shows_its_manifest_status_and_time(stack: Stack, run_cli: RunCli) -> None:
    job_id = await archive_job(stack, status="partiallyCompleted")

    ran = await run_cli("status", "--json", job_id)

    assert ran.status == 0
    assert ran.objects() == [
        {
            "jobId": job_id,
            "state": "archived",
            "status": "partiallyCompleted",
            "archivedAt": "2026-11-30T12:00:00Z",
            "nextPollAt": None,
            "overdue": None,
        }
    ]


async def test_a_pending_job_shows_its_next_poll_and_that_it_is_not_overdue(
    stack: Stack, run_cli: RunCli
) -> None:
    job_id = "5d3f0c5e-2b1a-4c7d-8e9f-0a1b2c3d4e5f"
    due = datetime.now(UTC) + timedelta(minutes=5)
    await ledger(stack).create(JobMessage(job_id=job_id), next_poll_at=due.replace(microsecond=0))

    ran = await run_cli("status", "--json", job_id)

    assert ran.status == 0
    [row] = ran.objects()
    assert row["state"] == "pending"
    assert (row["status"], row["archivedAt"]) == (None, None)
    assert row["nextPollAt"] == due.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    assert row["overdue"] is False


async def test_a_pending_job_past_the_sweep_grace_is_overdue(stack: Stack, run_cli: RunCli) -> None:
    job_id = "6e4f1d6f-3c2b-4d8e-9f0a-1b2c3d4e5f60"
    grace = stack.settings.sweep_grace_seconds
    await ledger(stack).create(
        JobMessage(job_id=job_id), next_poll_at=datetime.now(UTC) - timedelta(seconds=grace + 60)
    )

    ran = await run_cli("status", "--json", job_id)

    assert ran.objects()[0]["overdue"] is True
    assert ran.status == 0


async def test_an_unknown_job_is_reported_with_nulls_and_exit_1(stack: Stack, run_cli: RunCli) -> None:
    ran = await run_cli("status", "--json", UNKNOWN_ID)

    assert ran.status == 1
    assert ran.objects() == [
        {
            "jobId": UNKNOWN_ID,
            "state": "unknown",
            "status": None,
            "archivedAt": None,
            "nextPollAt": None,
            "overdue": None,
        }
    ]


async def test_several_jobs_are_reported_in_the_order_given(stack: Stack, run_cli: RunCli) -> None:
    first, second = await archive_job(stack), await archive_job(stack)

    ran = await run_cli("status", "--json", second, UNKNOWN_ID, first)

    assert [(row["jobId"], row["state"]) for row in ran.objects()] == [
        (second, "archived"),
        (UNKNOWN_ID, "unknown"),
        (first, "archived"),
    ]
    assert ran.status == 1


async def test_an_operation_location_url_names_its_job(stack: Stack, run_cli: RunCli) -> None:
    job_id = await archive_job(stack)
    endpoint = stack.settings.language_endpoint
    url = f"{endpoint}/language/analyze-text/jobs/{job_id.upper()}?api-version=2024-11-01"

    ran = await run_cli("status", "--json", url)

    assert ran.objects()[0]["jobId"] == job_id


async def test_text_output_says_the_state_in_one_line_per_job(stack: Stack, run_cli: RunCli) -> None:
    job_id = await archive_job(stack)

    ran = await run_cli("status", job_id, UNKNOWN_ID)

    assert ran.out.splitlines() == [
        f"{job_id}  archived  succeeded  at {ARCHIVED_AT.isoformat().replace('+00:00', 'Z')}",
        f"{UNKNOWN_ID}  unknown  (no manifest, not in the ledger)",
    ]


async def test_an_unreadable_manifest_is_archived_with_nulls_named_on_stderr_and_exit_1(
    stack: Stack, run_cli: RunCli
) -> None:
    job_id = await archive_job(stack)
    await put_blob(stack, f"{job_id}/manifest.json", b'{"schemaVersion": 1, "jobId": "')

    ran = await run_cli("status", "--json", job_id)

    assert ran.status == 1
    assert ran.objects() == [
        {
            "jobId": job_id,
            "state": "archived",
            "status": None,
            "archivedAt": None,
            "nextPollAt": None,
            "overdue": None,
        }
    ]
    assert f"{job_id}: its manifest is unreadable" in ran.err


async def test_a_job_id_that_is_not_a_uuid_is_a_usage_error(stack: Stack, run_cli: RunCli) -> None:
    ran = await run_cli("status", "not-a-job")

    assert ran.status == 2
    assert ran.out == ""
    assert ran.err.splitlines() == [
        "error: 'not-a-job' is not a job: invalid-job-id: job id 'not-a-job' is not a UUID"
    ]
