"""The queue-triggered poll function, through the real entry point, on Azurite and the emulator."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.emulator import EmulatorConfig, serve
from shared.messages import JobMessage
from shared.runtime import close_process_runtime, process_runtime
from shared.settings import SettingsError
from tests.conftest import EMULATOR_KEY

from .conftest import Stack, documents

pytestmark = pytest.mark.integration

#: A custom NER task whose project the service does not know: the task fails.
UNKNOWN_PROJECT_TASK = {
    "kind": "CustomEntityRecognition",
    "taskName": "unknown project",
    "parameters": {"projectName": "NoSuchProject", "deploymentName": "nope"},
}


async def finish_jobs(stack: Stack) -> None:
    """Let an hour pass on the emulator's clock: the slow jobs end."""
    await stack.admin("POST", "clock", {"advanceSeconds": 3601})


# -- a job already finished at its first poll -------------------------------------------------


async def test_finished_job_is_archived_as_task_blobs_and_a_manifest(stack: Stack) -> None:
    job_id = await stack.submit(documents(3), display_name="three documents")

    await stack.deliver({"jobId": job_id, "correlationId": "c-1", "metadata": {"tenant": "contoso"}})

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert manifest["status"] == "succeeded"
    assert manifest["jobId"] == job_id
    assert manifest["displayName"] == "three documents"
    assert manifest["correlationId"] == "c-1"
    assert manifest["metadata"] == {"tenant": "contoso"}
    assert manifest["apiVersion"] == "2024-11-01"
    assert [task["blob"] for task in manifest["tasks"]] == [
        f"{job_id}/tasks/00-EntityRecognitionLROResults.json",
        f"{job_id}/tasks/01-CustomEntityRecognitionLROResults.json",
    ]
    assert sorted(await stack.blob_names(job_id)) == sorted(
        [f"{job_id}/manifest.json", *(task["blob"] for task in manifest["tasks"])]
    )


async def test_manifest_has_every_contract_field(stack: Stack) -> None:
    job_id = await stack.submit()

    await stack.deliver(job_id)

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert set(manifest) == {
        "schemaVersion", "jobId", "status", "displayName", "createdDateTime", "lastUpdatedDateTime",
        "expirationDateTime", "archivedAt", "apiVersion", "errors", "correlationId", "metadata", "tasks",
    }  # fmt: skip
    assert manifest["correlationId"] is None
    for task in manifest["tasks"]:
        assert set(task) == {
            "taskName", "kind", "status", "blob", "sha256", "bytes",
            "documentCount", "entityCount", "errorCount",
        }  # fmt: skip


async def test_task_blobs_match_their_manifest_entries(stack: Stack) -> None:
    job_id = await stack.submit(documents(4))

    await stack.deliver({"jobId": job_id})

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    for task in manifest["tasks"]:
        data = await stack.blob(task["blob"])
        assert data is not None
        assert hashlib.sha256(data).hexdigest() == task["sha256"]
        assert len(data) == task["bytes"]
        item = json.loads(data)
        assert item["kind"] == task["kind"]
        assert task["documentCount"] == len(item["results"]["documents"]) == 4
        assert task["entityCount"] == sum(len(doc["entities"]) for doc in item["results"]["documents"]) > 0
        assert task["errorCount"] == len(item["results"]["errors"])


async def test_archive_blobs_are_utf8_json(stack: Stack) -> None:
    job_id = await stack.submit()

    await stack.deliver({"jobId": job_id})

    for name in await stack.blob_names(job_id):
        props = await stack.blobs.get_blob_client(
            stack.settings.archive_container, name
        ).get_blob_properties()
        assert props.content_settings.content_type == "application/json; charset=utf-8"


async def test_job_named_by_operation_location_is_archived(stack: Stack) -> None:
    job_id = await stack.submit()
    location = f"{stack.emulator_url}/language/analyze-text/jobs/{job_id}?api-version=2024-11-01"

    await stack.deliver({"operationLocation": location})

    assert (await stack.manifest(job_id) or {}).get("status") == "succeeded"


async def test_bare_operation_location_body_is_accepted(stack: Stack) -> None:
    job_id = await stack.submit()

    await stack.deliver(f"{stack.emulator_url}/language/analyze-text/jobs/{job_id}?api-version=2024-11-01")

    assert (await stack.manifest(job_id) or {}).get("status") == "succeeded"


async def test_job_over_several_pages_is_merged_in_service_order(stack: Stack) -> None:
    job_id = await stack.submit(documents(25))

    await stack.deliver({"jobId": job_id})

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    for task in manifest["tasks"]:
        item = json.loads(await stack.blob(task["blob"]) or b"{}")
        assert [doc["id"] for doc in item["results"]["documents"]] == [str(n) for n in range(1, 26)]
        assert task["documentCount"] == 25
    assert (await stack.requests_for(job_id)).get("GET") == 2  # first page + one nextLink


async def test_job_finished_at_first_poll_leaves_no_ledger_record_and_no_message(stack: Stack) -> None:
    job_id = await stack.submit()

    await stack.deliver({"jobId": job_id})

    assert await stack.ledger_names() == []
    assert await stack.queue_length(stack.settings.jobs_queue) == 0


# -- unfinished jobs ----------------------------------------------------------------------------


@pytest.mark.usefixtures("slow_jobs")
async def test_unfinished_job_is_rescheduled_and_recorded_in_the_ledger(stack: Stack) -> None:
    job_id = await stack.submit()

    await stack.deliver({"jobId": job_id, "displayName": "mine"})

    assert await stack.manifest(job_id) is None
    assert await stack.ledger_names() == [f"{job_id}.json"]
    assert await stack.queue_length(stack.settings.jobs_queue) == 1


@pytest.mark.usefixtures("slow_jobs")
async def test_rescheduled_job_is_archived_when_it_ends_and_leaves_the_ledger(stack: Stack) -> None:
    job_id = await stack.submit()
    await stack.deliver({"jobId": job_id, "metadata": {"k": "v"}})
    await finish_jobs(stack)

    text, dequeue_count = await stack.next_job_message()
    await stack.deliver(text, dequeue_count=dequeue_count)

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert manifest["status"] == "succeeded"
    assert manifest["metadata"] == {"k": "v"}
    assert await stack.ledger_names() == []


@pytest.mark.usefixtures("slow_jobs")
async def test_rescheduled_message_keeps_the_public_fields_and_counts_attempts(stack: Stack) -> None:
    job_id = await stack.submit()
    await stack.deliver({"jobId": job_id, "displayName": "d", "correlationId": "c", "metadata": {"a": "b"}})

    text, _ = await stack.next_job_message()

    body = json.loads(text)
    assert {k: body[k] for k in ("jobId", "displayName", "correlationId", "metadata")} == {
        "jobId": job_id,
        "displayName": "d",
        "correlationId": "c",
        "metadata": {"a": "b"},
    }
    assert body["_poll"]["attempt"] == 1


@pytest.mark.usefixtures("slow_jobs")
async def test_second_copy_of_a_pending_job_message_is_superseded(stack: Stack) -> None:
    job_id = await stack.submit()

    await stack.deliver({"jobId": job_id})
    await stack.deliver({"jobId": job_id})

    assert await stack.queue_length(stack.settings.jobs_queue) == 1


# -- jobs that end without results ----------------------------------------------------------------


async def test_failed_job_gets_a_manifest_with_the_services_errors(stack: Stack) -> None:
    job_id = await stack.submit(tasks=[UNKNOWN_PROJECT_TASK])

    await stack.deliver({"jobId": job_id})

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert manifest["status"] == "failed"
    assert manifest["errors"], "a failed job's manifest says why"
    assert [task["status"] for task in manifest["tasks"]] == ["failed"]
    assert manifest["tasks"][0]["documentCount"] == 0


async def test_partially_completed_job_archives_every_task(stack: Stack) -> None:
    job_id = await stack.submit(
        tasks=[{"kind": "EntityRecognition", "taskName": "prebuilt"}, UNKNOWN_PROJECT_TASK]
    )

    await stack.deliver({"jobId": job_id})

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert manifest["status"] == "partiallyCompleted"
    assert [task["status"] for task in manifest["tasks"]] == ["succeeded", "failed"]


async def test_document_errors_are_kept_in_the_task_blob(stack: Stack) -> None:
    job_id = await stack.submit([{"id": "ok", "text": "Seattle"}, {"id": "empty", "text": " "}])

    await stack.deliver({"jobId": job_id})

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert all(task["errorCount"] == 1 and task["documentCount"] == 1 for task in manifest["tasks"])


async def test_cancelled_job_gets_a_cancelled_manifest(stack: Stack) -> None:
    job_id = await stack.submit()
    await stack.admin("POST", f"jobs/{job_id}/overrides", {"status": "cancelled"})

    await stack.deliver({"jobId": job_id})

    assert (await stack.manifest(job_id) or {}).get("status") == "cancelled"


async def test_unknown_job_ends_not_found_once_past_the_first_minute(stack: Stack) -> None:
    job_id = str(uuid.uuid4())
    long_ago = datetime.now(UTC) - timedelta(minutes=5)

    await stack.deliver(await stack.rescheduled(JobMessage(job_id=job_id, attempt=3, first_seen_at=long_ago)))

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert manifest["status"] == "notFound"
    assert manifest["errors"][0]["code"] == "NotFound"
    assert manifest["tasks"] == []


async def test_unknown_job_seen_for_the_first_time_gets_a_short_grace(stack: Stack) -> None:
    job_id = str(uuid.uuid4())

    await stack.deliver({"jobId": job_id})

    assert await stack.manifest(job_id) is None
    assert await stack.queue_length(stack.settings.jobs_queue) == 1


# -- bad messages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "unparseable"),
        ("", "unparseable"),
        ('{"displayName": "no job"}', "missing-job"),
        ('{"jobId": "42"}', "invalid-job-id"),
        ("not-a-uuid", "invalid-job-id"),
        ('{"jobId": 7}', "invalid-field"),
        (json.dumps({"jobId": str(uuid.uuid4()), "metadata": {"n": 1}}), "invalid-field"),
        (
            json.dumps(
                {"operationLocation": f"https://evil.example/language/analyze-text/jobs/{uuid.uuid4()}"}
            ),
            "foreign-operation-location",
        ),
        (json.dumps({"jobId": str(uuid.uuid4()), "metadata": {"padding": "x" * 45000}}), "oversized"),
    ],
)
async def test_message_that_can_never_succeed_goes_to_poison_with_its_reason(
    stack: Stack, body: str, reason: str
) -> None:
    await stack.deliver(body)

    poisoned = await stack.poison_messages()
    assert len(poisoned) == 1
    assert poisoned[0]["reason"].startswith(reason + ":")
    assert poisoned[0]["message"] == body
    assert await stack.queue_length(stack.settings.jobs_queue) == 0


async def test_message_on_another_scheme_is_poisoned_before_any_request(stack: Stack) -> None:
    job_id = await stack.submit()
    other_scheme = stack.emulator_url.replace("http://", "https://")

    await stack.deliver({"operationLocation": f"{other_scheme}/language/analyze-text/jobs/{job_id}"})

    assert [p["reason"].split(":")[0] for p in await stack.poison_messages()] == [
        "foreign-operation-location"
    ]
    assert (await stack.requests_for(job_id)).get("GET", 0) == 0


async def test_message_naming_two_different_jobs_is_poisoned(stack: Stack) -> None:
    job_id = await stack.submit()
    location = f"{stack.emulator_url}/language/analyze-text/jobs/{uuid.uuid4()}"

    await stack.deliver({"jobId": job_id, "operationLocation": location})

    assert [p["reason"].split(":")[0] for p in await stack.poison_messages()] == ["mismatch"]


async def test_message_that_is_not_utf8_is_poisoned(stack: Stack) -> None:
    await stack.deliver(b"\xff\xfe\x00garbage")

    assert [p["reason"].split(":")[0] for p in await stack.poison_messages()] == ["unparseable"]


# -- configuration ---------------------------------------------------------------------------


async def test_missing_endpoint_setting_fails_with_one_line_naming_it(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LANGUAGE_ENDPOINT")

    with pytest.raises(SettingsError, match="LANGUAGE_ENDPOINT") as raised:
        await stack.deliver({"jobId": str(uuid.uuid4())})

    assert "\n" not in str(raised.value)


def _first(items: list[Any]) -> Any:
    return items[0] if items else None


async def test_duplicate_deliveries_at_once_end_in_one_identical_archive(stack: Stack) -> None:
    job_id = await stack.submit(documents(22))

    await asyncio.gather(*(stack.deliver({"jobId": job_id}) for _ in range(4)))

    names = await stack.blob_names(job_id)
    assert sorted(names) == sorted(
        [
            f"{job_id}/manifest.json",
            f"{job_id}/tasks/00-EntityRecognitionLROResults.json",
            f"{job_id}/tasks/01-CustomEntityRecognitionLROResults.json",
        ]
    )
    manifest = await stack.manifest(job_id)
    assert manifest is not None
    for task in manifest["tasks"]:
        assert hashlib.sha256(await stack.blob(task["blob"]) or b"").hexdigest() == task["sha256"]


async def test_redelivered_message_of_an_archived_job_makes_no_service_call(stack: Stack) -> None:
    job_id = await stack.submit()
    await stack.deliver({"jobId": job_id})
    before = (await stack.requests_for(job_id)).get("GET", 0)

    await stack.deliver({"jobId": job_id}, dequeue_count=2)

    assert (await stack.requests_for(job_id)).get("GET", 0) == before


async def test_archive_interrupted_before_its_manifest_is_finished_on_redelivery(stack: Stack) -> None:
    job_id = await stack.submit()
    container = stack.blobs.get_container_client(stack.settings.archive_container)
    await container.create_container()
    torn = f"{job_id}/tasks/00-EntityRecognitionLROResults.json"
    await container.upload_blob(torn, b'{"half": ')

    await stack.deliver({"jobId": job_id}, dequeue_count=2)

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    entry = _first([t for t in manifest["tasks"] if t["blob"] == torn])
    assert hashlib.sha256(await stack.blob(torn) or b"").hexdigest() == entry["sha256"]


# -- service states and spellings ------------------------------------------------------------------


async def test_status_unknown_to_the_app_is_logged_and_polled_again(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = await stack.submit()
    await stack.admin("POST", f"jobs/{job_id}/overrides", {"status": "partiallySucceeded"})

    with caplog.at_level(logging.WARNING, logger="archiver"):
        await stack.deliver({"jobId": job_id})

    assert await stack.manifest(job_id) is None
    assert await stack.queue_length(stack.settings.jobs_queue) == 1
    assert any("partiallySucceeded" in record.getMessage() for record in caplog.records)


async def test_cancelling_job_is_polled_again(stack: Stack) -> None:
    job_id = await stack.submit()
    await stack.admin("POST", f"jobs/{job_id}/overrides", {"status": "cancelling"})

    await stack.deliver({"jobId": job_id})

    assert await stack.manifest(job_id) is None
    assert await stack.queue_length(stack.settings.jobs_queue) == 1


@pytest.mark.parametrize("spelling", ["lastUpdatedDateTime", "lastUpdateDateTime"])
async def test_job_timestamp_is_read_in_either_spelling(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    config = EmulatorConfig(
        api_key=EMULATOR_KEY, not_started_seconds=0, running_seconds=0, job_timestamp_field=spelling
    )
    async with serve(config) as other:
        monkeypatch.setenv("LANGUAGE_ENDPOINT", other.base_url)
        await close_process_runtime()
        local = dataclasses.replace(stack, emulator_url=other.base_url)
        job_id = await local.submit()

        await local.deliver({"jobId": job_id})

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert manifest["lastUpdatedDateTime"] is not None
    assert manifest["createdDateTime"] is not None
    assert manifest["expirationDateTime"] is not None


@pytest.mark.usefixtures("slow_jobs")
async def test_message_naming_a_ledger_record_that_does_not_exist_still_keeps_the_job(stack: Stack) -> None:
    job_id = await stack.submit()

    await stack.deliver({"jobId": job_id, "_poll": {"attempt": 2, "ledgerEtag": '"0x8DEADBEEF"'}})

    assert await stack.ledger_names() == [f"{job_id}.json"]
    assert await stack.queue_length(stack.settings.jobs_queue) == 1


async def test_invocations_share_one_runtime_and_one_http_session(stack: Stack) -> None:
    await stack.deliver({"jobId": await stack.submit()})
    runtime = await process_runtime()
    session = await runtime._session.get()

    await stack.deliver({"jobId": await stack.submit()})

    assert await process_runtime() is runtime
    assert await runtime._session.get() is session
