"""Messages as the world sends them, through the real poll function and sweep (DESIGN.md, "Bad input"):
one definite outcome on the first delivery, no exception, and every accepted job archived."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.ledger import MAX_RECORD_BYTES
from shared.messages import MAX_MESSAGE_BYTES, QUEUE_MESSAGE_BYTES, parse_message
from shared.runtime import build_runtime, process_runtime
from shared.sweep import run_sweep
from shared.timefmt import parse_time
from shared.worker import Outcome, handle_message

from .conftest import SetFaults, Stack

pytestmark = pytest.mark.integration

EVENTS = f"events-{uuid.uuid4().hex[:12]}"


async def finish_jobs(stack: Stack) -> None:
    """Let an hour pass on the emulator's clock: the slow jobs end."""
    await stack.admin("POST", "clock", {"advanceSeconds": 3601})


def compact_message(job_id: str, size: int, char: str) -> tuple[str, dict[str, str]]:
    """A compact message of exactly ``size`` UTF-8 bytes whose metadata is padded with ``char``."""

    def text(note: str) -> str:
        body = {"jobId": job_id, "correlationId": "c-42", "metadata": {"tenant": "contoso", "note": note}}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

    room = size - len(text("").encode())
    width = len(char.encode())
    note = char * (room // width) + "x" * (room % width)
    result = text(note)
    assert len(result.encode()) == size
    return result, {"tenant": "contoso", "note": note}


async def ledger_record(stack: Stack, job_id: str) -> bytes:
    data = await stack.blob(f"{job_id}.json", container=stack.settings.ledger_container)
    assert data is not None
    return data


async def take_events(stack: Stack) -> list[bytes]:
    queue = stack.queues.get_queue_client(EVENTS)
    found = []
    async for message in queue.receive_messages(max_messages=32):
        found.append(base64.b64decode(message.content))
        await queue.delete_message(message)
    return found


# -- the size limit, end to end: reschedule, ledger, a lost message, the sweep, the archive --------


@pytest.mark.usefixtures("slow_jobs")
@pytest.mark.parametrize("stack", [{"EVENTS_QUEUE": EVENTS}], indirect=True)
@pytest.mark.parametrize("char", ["x", "é", "€", "🗂"], ids=["ascii", "2-byte", "3-byte", "4-byte"])
async def test_a_message_at_the_exact_size_limit_is_archived_through_a_lost_message_and_the_sweep(
    stack: Stack, char: str
) -> None:
    job_id = await stack.submit()
    text, metadata = compact_message(job_id, MAX_MESSAGE_BYTES, char)

    await stack.deliver(text)  # unfinished: recorded in the ledger and rescheduled
    rescheduled, _ = await stack.next_job_message()  # ... and that message is lost
    record = await ledger_record(stack, job_id)
    assert len(rescheduled.encode()) <= QUEUE_MESSAGE_BYTES
    assert len(record) <= MAX_RECORD_BYTES
    assert b"\\u" not in record  # UTF-8 as itself, never escapes that inflate it

    later = datetime.now(UTC) + timedelta(hours=1)  # long past the record's due time and grace
    sweeper = await build_runtime(stack.settings, clock=lambda: later)
    try:
        report = await run_sweep(sweeper)
    finally:
        await sweeper.aclose()
    redriven, dequeue_count = await stack.next_job_message()
    assert report.job_ids == [job_id]
    assert len(redriven.encode()) <= QUEUE_MESSAGE_BYTES
    assert parse_message(redriven, settings=stack.settings).metadata == metadata

    await finish_jobs(stack)
    await stack.deliver(redriven, dequeue_count=dequeue_count)

    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert manifest["status"] == "succeeded"
    assert (manifest["metadata"], manifest["correlationId"]) == (metadata, "c-42")
    [event] = await take_events(stack)
    assert len(base64.b64encode(event)) <= 64 * 1024
    assert json.loads(event)["data"]["metadata"] == metadata
    assert await stack.ledger_names() == []


async def test_a_message_one_byte_over_the_limit_is_poison_on_its_first_delivery(stack: Stack) -> None:
    text, _ = compact_message(str(uuid.uuid4()), MAX_MESSAGE_BYTES + 1, "é")

    await stack.deliver(text)

    [poisoned] = await stack.poison_messages()
    assert poisoned["message"] == text
    assert poisoned["reason"].startswith("oversized: ")


# -- text that is not valid Unicode, depth, bytes that are no text -----------------------------


@pytest.mark.usefixtures("slow_jobs")
@pytest.mark.parametrize("stack", [{"EVENTS_QUEUE": EVENTS}], indirect=True)
async def test_lone_surrogates_are_replaced_everywhere_and_the_job_is_archived(stack: Stack) -> None:
    job_id = await stack.submit()
    body = (
        '{"jobId": "' + job_id + '", "displayName": "\\udfff", "correlationId": "cut \\ud83d", '
        '"metadata": {"k\\udc00": "\\ud800v"}}'
    )
    replaced = {"displayName": "\ufffd", "correlationId": "cut \ufffd", "metadata": {"k\ufffd": "\ufffdv"}}

    await stack.deliver(body)
    text, dequeue_count = await stack.next_job_message()
    record = json.loads((await ledger_record(stack, job_id)).decode("utf-8"))  # valid UTF-8
    await finish_jobs(stack)
    await stack.deliver(text, dequeue_count=dequeue_count)

    for written in (json.loads(text), record["message"]):  # the rescheduled message, the ledger
        assert {name: written[name] for name in replaced} == replaced
    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert (manifest["correlationId"], manifest["metadata"]) == ("cut \ufffd", {"k\ufffd": "\ufffdv"})
    [event] = await take_events(stack)
    data = json.loads(event.decode("utf-8"))["data"]
    assert (data["correlationId"], data["metadata"]) == ("cut \ufffd", {"k\ufffd": "\ufffdv"})
    assert await stack.poison_messages() == []


@pytest.mark.parametrize("depth", [33, 20_000])
async def test_nesting_beyond_the_bound_is_poison_with_a_clear_reason(stack: Stack, depth: int) -> None:
    body = '{"jobId": "' + str(uuid.uuid4()) + '", "x": ' + "[" * depth + "]" * depth + "}"

    await stack.deliver(body)

    [poisoned] = await stack.poison_messages()
    assert poisoned["reason"] == "too-deep: message is JSON nested deeper than 32 levels"
    assert poisoned["message"] == body


def poison_contents(stack: Stack) -> Any:
    return stack.queues.get_queue_client(stack.settings.poison_queue).peek_messages(max_messages=32)


async def test_bytes_that_are_not_utf8_are_poison_carried_as_base64_in_a_new_poison_queue(
    stack: Stack,
) -> None:
    original = b'{"jobId": "\xff\xfe"}' + bytes(range(256))
    assert await stack.queue_length(stack.settings.poison_queue) == 0  # not even created yet

    await stack.deliver(original)

    [poisoned] = await stack.poison_messages()
    assert set(poisoned) == {"reason", "messageBase64"}
    assert base64.b64decode(poisoned["messageBase64"]) == original
    assert poisoned["reason"] == "unparseable: message is not UTF-8 text"


async def test_text_whose_json_quoting_would_not_fit_is_carried_as_base64(stack: Stack) -> None:
    original = '"' * 30_000  # each quote is escaped: 60,000 bytes quoted, 40,000 in base64

    await stack.deliver(original)

    [poisoned] = await stack.poison_messages()
    assert base64.b64decode(poisoned["messageBase64"]).decode() == original


async def test_an_original_too_large_for_any_wrapper_goes_to_poison_as_it_came(stack: Stack) -> None:
    original = b"\x00\xff" * (QUEUE_MESSAGE_BYTES // 2)  # a full queue message that is no text

    await stack.deliver(original)

    [message] = await poison_contents(stack)
    assert base64.b64decode(message.content) == original
    assert len(message.content) <= 64 * 1024


# -- the app's own fields are advisory -----------------------------------------------------------


@pytest.mark.usefixtures("slow_jobs")
async def test_a_forged_past_expiry_neither_cancels_nor_ends_a_running_job(stack: Stack) -> None:
    job_id = await stack.submit()
    forged = {
        "jobId": job_id,
        "_poll": {
            "attempt": 3,
            "firstSeenAt": "2001-01-01T00:00:00Z",
            "seenAt": "2001-01-01T00:00:00Z",
            "expiresAt": "2001-01-02T00:00:00Z",
        },
    }

    await stack.deliver(forged)

    assert await stack.manifest(job_id) is None
    assert (await stack.requests_for(job_id)).get("CANCEL", 0) == 0
    text, _ = await stack.next_job_message()
    assert json.loads(text)["jobId"] == job_id


async def test_a_forged_seen_time_cannot_end_a_job_the_service_does_not_know_yet_as_expired(
    stack: Stack,
) -> None:
    job_id = str(uuid.uuid4())  # not (yet) known to the service: 404
    seen = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()

    await stack.deliver({"jobId": job_id, "_poll": {"attempt": 1, "firstSeenAt": seen, "seenAt": seen}})

    assert await stack.manifest(job_id) is None  # in its not-found grace, counted from now
    text, _ = await stack.next_job_message()
    assert json.loads(text)["jobId"] == job_id


async def test_a_forged_seen_time_is_not_recorded_when_the_service_did_not_answer(
    stack: Stack, faults: SetFaults
) -> None:
    job_id = str(uuid.uuid4())
    seen = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    await faults(rate_5xx=1.0)

    await stack.deliver({"jobId": job_id, "_poll": {"attempt": 1, "firstSeenAt": seen, "seenAt": seen}})

    poll = json.loads(await ledger_record(stack, job_id))["message"]["_poll"]
    assert poll["seenAt"] is None  # a later 404 finds nothing that says the job was ever seen
    first_seen = parse_time(poll["firstSeenAt"])
    assert first_seen is not None
    assert datetime.now(UTC) - first_seen < timedelta(minutes=1)


@pytest.mark.parametrize("count", [1, 3, 4])
async def test_a_forged_unusable_count_cannot_cut_the_polls_before_a_job_is_rejected(
    stack: Stack, count: int
) -> None:
    job_id = await stack.submit()
    await stack.admin("POST", f"jobs/{job_id}/overrides", {"malformedPages": True})

    await stack.deliver({"jobId": job_id, "_poll": {"attempt": count, "unusable": count}})

    assert await stack.manifest(job_id) is None
    text, _ = await stack.next_job_message()
    assert json.loads(text)["_poll"]["unusable"] == 1  # counted from the app's own record: none


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+14:00",
    ],
)
async def test_own_times_at_datetimes_ends_are_ignored_and_the_job_archived(stack: Stack, when: str) -> None:
    job_id = await stack.submit()
    times = {name: when for name in ("firstSeenAt", "seenAt", "expiresAt", "dueAt")}

    await stack.deliver({"jobId": job_id, "_poll": {**times, "attempt": 2}})

    assert (await stack.manifest(job_id) or {}).get("status") == "succeeded"


@pytest.mark.usefixtures("slow_jobs")
async def test_a_future_first_seen_time_cannot_hold_a_missing_job_in_its_grace_for_ever(stack: Stack) -> None:
    job_id = str(uuid.uuid4())  # the service never heard of it
    later = datetime.now(UTC) + timedelta(minutes=5)
    runtime = await build_runtime(stack.settings, clock=lambda: later)
    forged = json.dumps({"jobId": job_id, "_poll": {"firstSeenAt": "2900-01-01T00:00:00Z"}})
    try:
        first = await handle_message(forged.encode(), dequeue_count=1, runtime=runtime)
        text, _ = await stack.next_job_message()
        later += timedelta(minutes=2)  # past the grace, counted from the first delivery
        result = await handle_message(text.encode(), dequeue_count=1, runtime=runtime)
    finally:
        await runtime.aclose()

    assert first.outcome is Outcome.RESCHEDULED

    assert result.outcome is Outcome.ARCHIVED
    assert result.status == "notFound"


# -- the sweep reads what storage holds as input too ---------------------------------------------


async def put_raw_record(stack: Stack, job_id: str, data: bytes, *, due: str) -> None:
    container = stack.blobs.get_container_client(stack.settings.ledger_container)
    if not await container.exists():
        await container.create_container()
    await container.upload_blob(f"{job_id}.json", data, metadata={"nextpollat": due}, overwrite=True)


@pytest.mark.parametrize(
    ("data", "due"),
    [
        (b"not json", "2020-01-01T00:00:00Z"),
        (b"\xff\xfe", "soon"),
        (b"[" * 100_000, "2020-01-01T00:00:00Z"),
        (b'{"jobId": "x", "nextPollAt": "2020-01-01T00:00:00Z", "message": {"jobId": 7}}', ""),
        (b'{"nextPollAt": "9999-12-31T23:59:59Z", "message": {"jobId": "%(job)s"}}', "9999-12-31T23:59:59Z"),
        (b'{"nextPollAt": "0001-01-01T00:00:00Z", "message": {"jobId": "%(job)s"}}', "0001-01-01T00:00:00Z"),
        (b'{"nextPollAt": "2999-01-01T00:00:00Z", "message": {"jobId": "%(job)s"}}', "2999-01-01T00:00:00Z"),
        (b'{"message": {"jobId": "%(other)s"}}', "2020-01-01T00:00:00Z"),
        (
            b'{"message": {"jobId": "%(job)s"}, "pad": "' + b"x" * MAX_RECORD_BYTES + b'"}',
            "2020-01-01T00:00:00Z",
        ),
    ],
    ids=[
        "not-json",
        "not-utf8",
        "too-deep",
        "invalid-message",
        "due-at-datetime-max",
        "due-at-datetime-min",
        "due-centuries-ahead",
        "another-jobs-message",
        "oversized",
    ],
)
async def test_a_corrupt_ledger_record_keeps_its_job_which_the_sweep_redrives_and_archives(
    stack: Stack, data: bytes, due: str
) -> None:
    job_id = await stack.submit()
    names = {b"job": job_id.encode(), b"other": str(uuid.uuid4()).encode()}
    await put_raw_record(stack, job_id, data % names, due=due)

    report = await run_sweep(await process_runtime())
    again = await run_sweep(await process_runtime())  # no crash loop: the record was rewritten

    assert (report.redriven, report.failed, again.failed) == (1, 0, 0)
    text, dequeue_count = await stack.next_job_message()
    await stack.deliver(text, dequeue_count=dequeue_count)
    assert (await stack.manifest(job_id) or {}).get("status") == "succeeded"
    assert await stack.ledger_names() == []


async def test_a_blob_in_the_ledger_that_is_no_job_record_is_skipped(stack: Stack) -> None:
    await put_raw_record(stack, "notes/not-a-job", b"{}", due="2020-01-01T00:00:00Z")

    report = await run_sweep(await process_runtime())

    assert (report.scanned, report.failed) == (0, 0)
