"""Job lifecycle on the emulator clock, timestamps and the job-level fields."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import aiohttp
import pytest

from local.emulator.server import RunningEmulator
from tests.emulator.support import (
    StartEmulator,
    advance,
    call,
    custom_task,
    get_json,
    job_body,
    prebuilt_task,
    submit,
)

JOB_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
TASK_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$")


async def test_new_job_is_not_started_with_no_items(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    job = await get_json(http, await submit(http, emulator, job_body(["Seattle"])))

    assert job["status"] == "notStarted"
    assert job["tasks"] == {"completed": 0, "failed": 0, "inProgress": 2, "total": 2, "items": []}
    assert "nextLink" not in job


async def test_job_runs_after_the_not_started_window_then_succeeds(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    url = await submit(http, emulator, job_body(["Seattle"]))
    statuses = []
    for step in (0.0, 1.1, 2.0):
        advance(emulator, step)
        statuses.append((await get_json(http, url))["status"])

    assert statuses == ["notStarted", "running", "succeeded"]


async def test_running_job_lists_only_the_tasks_already_finished(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    url = await submit(http, emulator, job_body(["Seattle"], [prebuilt_task("a"), custom_task("b")]))
    advance(emulator, 2.5)  # running window is [1 s, 3 s]: task a finished at 2 s, task b finishes at 3 s

    job = await get_json(http, url)

    assert job["status"] == "running"
    assert {k: v for k, v in job["tasks"].items() if k != "items"} == {
        "completed": 1,
        "failed": 0,
        "inProgress": 1,
        "total": 2,
    }
    assert [(item["taskName"], item["status"]) for item in job["tasks"]["items"]] == [("a", "succeeded")]


async def test_timestamps_are_utc_with_z_and_expiry_is_created_plus_a_day(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    url = await submit(http, emulator, job_body(["Seattle"]))
    advance(emulator, 5)
    job = await get_json(http, url)

    job_times = [job[name] for name in ("createdDateTime", "lastUpdatedDateTime", "expirationDateTime")]
    assert all(JOB_TIME.match(value) for value in job_times)
    assert all(TASK_TIME.match(item["lastUpdateDateTime"]) for item in job["tasks"]["items"])
    created, updated, expires = (datetime.fromisoformat(value) for value in job_times)
    assert expires - created == timedelta(days=1)
    assert updated - created == timedelta(seconds=3)


@pytest.mark.parametrize("field", ["lastUpdatedDateTime", "lastUpdateDateTime"])
async def test_job_timestamp_uses_the_configured_spelling(
    http: aiohttp.ClientSession, start_emulator: StartEmulator, field: str
) -> None:
    emulator = await start_emulator(job_timestamp_field=field)
    job = await get_json(http, await submit(http, emulator, job_body(["Seattle"])))

    assert field in job
    assert ({"lastUpdatedDateTime", "lastUpdateDateTime"} - {field}).isdisjoint(job)
    assert all("lastUpdateDateTime" in item for item in job["tasks"]["items"])


async def test_display_name_is_echoed_only_when_submitted(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    named = await get_json(http, await submit(http, instant, job_body(["x"], display_name="Nightly")))
    unnamed = await get_json(http, await submit(http, instant, job_body(["x"])))

    assert named["displayName"] == "Nightly"
    assert "displayName" not in unnamed


async def test_healthy_job_has_empty_errors(http: aiohttp.ClientSession, instant: RunningEmulator) -> None:
    job = await get_json(http, await submit(http, instant, job_body(["Seattle"])))

    assert job["errors"] == []


async def test_timing_change_applies_to_jobs_submitted_afterwards(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    before = await submit(http, emulator, job_body(["x"]))
    status, timing = await call(
        http,
        "PUT",
        f"{emulator.base_url}/_emulator/timing",
        json_body={"notStartedSeconds": 0, "runningSeconds": 0},
    )
    after = await submit(http, emulator, job_body(["x"]))

    assert (status, timing) == (200, {"notStartedSeconds": 0, "runningSeconds": 0})
    assert (await get_json(http, before))["status"] == "notStarted"
    assert (await get_json(http, after))["status"] == "succeeded"
