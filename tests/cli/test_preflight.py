"""Before a command touches anything: every settings error is one line and exit 2 (a malformed
connection string included), a container or queue that a setting names must exist (the command
line creates none), option values are checked, and commands that only read storage need no
LANGUAGE_ENDPOINT (DESIGN.md, "Operator command line")."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import ResourceNotFoundError

from shared.archive_reader import ARCHIVE_STATUSES
from shared.settings import STORAGE_SETTING
from tests.integration.conftest import Stack

from .conftest import Ran, RunCli, archive_job
from .test_main import python_m_cli

pytestmark = pytest.mark.integration

JOB_ID = "c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18"
KEY = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5c2x1bmtmb29iYXJiYXpxdXhxdXV4Y29yZ2VncmF1bHQ="


def one_line_error(ran: Ran, *names: str) -> str:
    assert ran.status == 2, ran
    assert ran.out == ""
    [line] = ran.err.splitlines()
    assert line.startswith("error: ")
    for name in names:
        assert name in line
    return line


MALFORMED_CONNECTION_STRINGS = [
    pytest.param("AccountName=acct;AccountKey=not*base64!", id="key-not-base64"),
    pytest.param("AccountName=acct", id="no-key"),
    pytest.param("foo=bar", id="no-account"),
    pytest.param("AccountName=acct;AccountKey", id="part-without-value"),
    pytest.param(f"BlobEndpoint=notaurl;QueueEndpoint=notaurl;AccountName=a;AccountKey={KEY}", id="endpoint"),
    pytest.param(f"BlobEndpoint=http://[::1;AccountName=a;AccountKey={KEY}", id="endpoint-ipv6"),
]


@pytest.mark.parametrize("connection", MALFORMED_CONNECTION_STRINGS)
async def test_a_malformed_connection_string_is_one_line_naming_it_and_exit_2(
    stack: Stack, run_cli: RunCli, connection: str
) -> None:
    ran = await run_cli("status", JOB_ID, environ={**stack.environ, STORAGE_SETTING: connection})

    line = one_line_error(ran, STORAGE_SETTING)
    assert KEY not in line


async def test_a_malformed_connection_string_is_no_traceback_from_the_entry_point(stack: Stack) -> None:
    ran = await python_m_cli(
        "verify", "--all", environ={**stack.environ, STORAGE_SETTING: "AccountName=a;AccountKey=!!"}
    )

    assert ran.returncode == 2
    assert ran.stdout == b""
    [line] = ran.stderr.decode().splitlines()
    assert line.startswith(f"error: {STORAGE_SETTING} is not a storage connection string")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("POLL_INITIAL_DELAY_SECONDS", "five"),
        ("POLL_MAX_DELAY_SECONDS", "nan"),
        ("SWEEP_GRACE_SECONDS", "-1"),
        ("LANGUAGE_MAX_REQUESTS_PER_MINUTE", "1" * 5000),
        ("LANGUAGE_API_VERSION", "latest"),
        ("ARCHIVE_CONTAINER", "Not_A_Name"),
        ("EVENTS_QUEUE", "x"),
    ],
)
async def test_a_malformed_setting_is_one_line_naming_it_and_exit_2(
    stack: Stack, run_cli: RunCli, name: str, value: str
) -> None:
    ran = await run_cli("verify", JOB_ID, environ={**stack.environ, name: value}, provisioned=False)

    one_line_error(ran, name)


READERS_OF_THE_ARCHIVE = [
    pytest.param(["status", JOB_ID], id="status"),
    pytest.param(["verify", "--all"], id="verify-all"),
    pytest.param(["verify", JOB_ID], id="verify"),
    pytest.param(["export"], id="export"),
    pytest.param(["announce"], id="announce"),
    pytest.param(["replay-poison", "--dry-run"], id="replay-poison"),
]


@pytest.mark.parametrize("argv", READERS_OF_THE_ARCHIVE)
async def test_an_archive_container_that_does_not_exist_is_an_error_naming_it_and_not_created(
    stack: Stack, run_cli: RunCli, argv: list[str]
) -> None:
    await archive_job(stack)
    environ = {**stack.environ, "ARCHIVE_CONTAINER": "no-such-archive", "EVENTS_QUEUE": "archive-events"}
    await run_cli("status", JOB_ID)  # provisions the real names
    ran = await run_cli(*argv, environ={**environ}, provisioned=False)

    line = one_line_error(ran, "ARCHIVE_CONTAINER", "no-such-archive")
    assert "does not exist" in line
    with pytest.raises(ResourceNotFoundError):
        await stack.blobs.get_container_client("no-such-archive").get_container_properties()


async def test_enqueue_skip_archived_needs_the_archive_container_to_exist(
    stack: Stack, run_cli: RunCli
) -> None:
    await run_cli("status", JOB_ID)  # provisions the real names
    environ = {**stack.environ, "ARCHIVE_CONTAINER": "no-such-archive"}

    ran = await run_cli("enqueue", "--skip-archived", "/dev/null", environ=environ, provisioned=False)

    one_line_error(ran, "ARCHIVE_CONTAINER")


@pytest.mark.parametrize(
    "argv",
    [pytest.param(["enqueue", "/dev/null"], id="enqueue"), pytest.param(["replay-poison"], id="replay")],
)
async def test_a_jobs_queue_that_does_not_exist_is_an_error_naming_it_and_not_created(
    stack: Stack, run_cli: RunCli, argv: list[str]
) -> None:
    await run_cli("status", JOB_ID)  # provisions the archive container
    environ = {**stack.environ, "JOBS_QUEUE": "no-such-jobs"}

    ran = await run_cli(*argv, environ=environ, provisioned=False)

    one_line_error(ran, "JOBS_QUEUE", "no-such-jobs")
    assert await stack.queue_length("no-such-jobs") == 0
    with pytest.raises(ResourceNotFoundError):
        await stack.queues.get_queue_client("no-such-jobs").get_queue_properties()


async def test_an_events_queue_that_does_not_exist_is_an_error_naming_it_and_not_created(
    stack: Stack, run_cli: RunCli
) -> None:
    job_id = await archive_job(stack)
    await run_cli("status", JOB_ID)  # provisions the archive container
    environ = {**stack.environ, "EVENTS_QUEUE": "no-such-events"}

    ran = await run_cli("announce", job_id, environ=environ, provisioned=False)

    one_line_error(ran, "EVENTS_QUEUE", "no-such-events")
    with pytest.raises(ResourceNotFoundError):
        await stack.queues.get_queue_client("no-such-events").get_queue_properties()


@pytest.mark.parametrize("command", ["export", "announce"])
async def test_a_status_the_archive_does_not_know_is_a_usage_error(
    stack: Stack, run_cli: RunCli, command: str
) -> None:
    environ = {**stack.environ, "EVENTS_QUEUE": "archive-events"}

    ran = await run_cli(command, "--status", "succeded", environ=environ)

    line = one_line_error(ran, "--status", "'succeded'")
    assert "succeeded" in line  # the ones it knows are listed


async def test_every_status_the_archive_knows_is_accepted(stack: Stack, run_cli: RunCli) -> None:
    assert {"succeeded", "partiallyCompleted", "failed", "cancelled"} < ARCHIVE_STATUSES
    assert {"notFound", "expired", "timedOut", "rejected"} < ARCHIVE_STATUSES
    job_id = await archive_job(stack, status="timedOut")
    argv = [arg for status in sorted(ARCHIVE_STATUSES) for arg in ("--status", status)]

    ran = await run_cli("export", *argv)

    assert ran.status == 0
    assert {row["jobId"] for row in map(json.loads, ran.out.splitlines())} == {job_id}


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01", "", "0001-01-01T00:00:00+01:00"])
@pytest.mark.parametrize("command", ["export", "announce"])
async def test_a_since_that_is_not_a_time_is_a_usage_error(
    stack: Stack, run_cli: RunCli, command: str, since: str
) -> None:
    environ = {**stack.environ, "EVENTS_QUEUE": "archive-events"}

    ran = await run_cli(command, "--since", since, environ=environ)

    one_line_error(ran, "--since")


async def test_a_since_at_the_start_of_time_matches_every_job(stack: Stack, run_cli: RunCli) -> None:
    job_id = await archive_job(stack)

    ran = await run_cli("export", "--since", "0001-01-01T00:00:00Z")

    assert ran.status == 0
    assert job_id in ran.out


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["status", JOB_ID], id="status"),
        pytest.param(["verify", "--all"], id="verify"),
        pytest.param(["export"], id="export"),
        pytest.param(["announce"], id="announce"),
    ],
)
async def test_commands_that_send_nothing_to_the_service_need_no_language_endpoint(
    stack: Stack, run_cli: RunCli, argv: list[str]
) -> None:
    await archive_job(stack)
    environ = {k: v for k, v in stack.environ.items() if not k.startswith("LANGUAGE_")}
    environ["EVENTS_QUEUE"] = "archive-events"

    ran = await run_cli(*argv, environ=environ)

    assert ran.status in (0, 1), ran.err
    assert "LANGUAGE_ENDPOINT" not in ran.err


async def test_without_language_endpoint_an_operation_location_still_names_its_job(
    stack: Stack, run_cli: RunCli
) -> None:
    job_id = await archive_job(stack)
    environ = {k: v for k, v in stack.environ.items() if k != "LANGUAGE_ENDPOINT"}
    location = (
        f"https://res.cognitiveservices.azure.com/language/analyze-text/jobs/{job_id}?api-version=2024-11-01"
    )

    ran = await run_cli("status", "--json", location, environ=environ)

    assert ran.status == 0
    assert [row["jobId"] for row in ran.objects()] == [job_id]


@pytest.mark.parametrize("argv", [["enqueue", "/dev/null"], ["replay-poison"]])
async def test_commands_that_judge_operation_locations_need_the_language_endpoint(
    stack: Stack, run_cli: RunCli, argv: list[str]
) -> None:
    environ = {k: v for k, v in stack.environ.items() if k != "LANGUAGE_ENDPOINT"}

    ran = await run_cli(*argv, environ=environ)

    one_line_error(ran, "LANGUAGE_ENDPOINT")
