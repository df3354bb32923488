"""Property tests: hostile input through the real poll function and sweep on Azurite and the emulator.

Invariant (DESIGN.md, "Bad input"): every message has one definite outcome on its first delivery,
accepted (the job is archived, or in the ledger with its next message on the queue) or poisoned
(the app's wrapper, or the original as it came, on ``<JOBS_QUEUE>-poison``), never an exception;
the app's own fields, forged, never end or cancel a running job; whatever a ledger record holds,
the sweep neither fails on it nor forgets its job. Few examples each (every one is real I/O), drawn
from the bounded profile's fixed seed.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.entrypoints import on_jobs_message
from shared.ledger import MAX_RECORD_BYTES
from shared.messages import MAX_MESSAGE_BYTES, QUEUE_MESSAGE_BYTES, parse_message
from shared.runtime import process_runtime
from shared.sweep import run_sweep
from shared.worker import Outcome
from tests.support import BOUNDED

from .conftest import Stack

pytestmark = pytest.mark.integration

#: Every example is a few real requests: the suite's bounded profile (fixed seed, no deadline),
#: with fewer examples still, so that each test takes seconds.
IO_BOUND = settings(
    BOUNDED,
    max_examples=30,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
ACCEPTED = {Outcome.ARCHIVED, Outcome.ALREADY_ARCHIVED, Outcome.RESCHEDULED, Outcome.SUPERSEDED}

# -- strategies ------------------------------------------------------------------------------------

surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
texts = st.text(st.characters() | surrogates, max_size=30)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | texts | st.just(10**40)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
job_ids = st.uuids(version=4).map(str)
extreme_times = st.sampled_from(
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+14:00",
        "2001-01-01T00:00:00Z",
        "2999-12-31T00:00:00Z",
        "soon",
        "",
    ]
)
times = extreme_times | st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat()) | scalars
counts = st.integers() | st.floats() | st.booleans() | texts | st.just(10**40)
etags = texts | st.integers() | st.just('"0x8D"\r\nX-Injected: 1') | st.text('"0x8DABCDEF', min_size=1)
forged_polls = json_values | st.fixed_dictionaries(
    {},
    optional={
        "attempt": counts,
        "unusable": counts,
        "ledgerEtag": etags,
        "firstSeenAt": times,
        "seenAt": times,
        "expiresAt": times,
        "dueAt": times,
    },
)


def message_objects(ids: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"jobId": ids},
        optional={
            "displayName": texts | json_values,
            "correlationId": texts | json_values,
            "metadata": st.dictionaries(texts, texts, max_size=5) | json_values,
            "_poll": forged_polls,
            "extra": json_values,
        },
    )


def encoded(body: Any, how: str) -> bytes:
    if how == "ascii":  # lone surrogates travel as \ud83d escapes
        return json.dumps(body).encode()
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")  # raw: not UTF-8


def nested(job_id: str, depth: int) -> bytes:
    return ('{"jobId": "' + job_id + '", "x": ' + "[" * depth + "]" * depth + "}").encode()


def at_size(job_id: str, size: int, char: str) -> bytes:
    head = json.dumps({"jobId": job_id, "metadata": {"k": ""}}, separators=(",", ":")).encode()
    room = size - len(head)
    note = char * (room // len(char.encode())) + "x" * (room % len(char.encode()))
    return json.dumps(
        {"jobId": job_id, "metadata": {"k": note}}, ensure_ascii=False, separators=(",", ":")
    ).encode()


hostile_bodies = st.one_of(
    st.builds(encoded, message_objects(job_ids | scalars), st.sampled_from(["ascii", "raw"])),
    st.builds(encoded, json_values, st.sampled_from(["ascii", "raw"])),
    st.builds(nested, job_ids, st.integers(28, 20_000)),
    st.builds(
        lambda job_id, number: ('{"jobId": "' + job_id + '", "x": ' + number + "}").encode(),
        job_ids,
        st.sampled_from(["1" * 5000, "1e999999", "-1e400", "NaN", "-Infinity", "0." + "0" * 5000 + "1"]),
    ),
    st.builds(
        at_size, job_ids, st.integers(MAX_MESSAGE_BYTES - 3, MAX_MESSAGE_BYTES + 3), st.sampled_from("xé€🗂")
    ),
    st.text(max_size=300).map(str.encode),
    st.binary(max_size=3000),
    st.just(b"\x00\xff" * (QUEUE_MESSAGE_BYTES // 2)),
)

# -- helpers ---------------------------------------------------------------------------------------


async def drain(stack: Stack, queue_name: str) -> list[str]:
    """Every message on ``queue_name`` (base64 content as stored), deleted."""
    queue = stack.queues.get_queue_client(queue_name)
    taken: list[str] = []
    try:
        for _ in range(10):
            batch = [m async for m in queue.receive_messages(max_messages=32, visibility_timeout=30)]
            if not batch:
                break
            for message in batch:
                taken.append(message.content)
                await queue.delete_message(message)
    except ResourceNotFoundError:
        pass
    return taken


def unwrapped(content: str) -> bytes:
    """The original a poison message carries: the app's wrapper (either form), or itself."""
    raw = base64.b64decode(content)
    try:
        body = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(body, dict) and set(body) == {"reason", "message"}:
        text = body["message"]
        assert isinstance(text, str)
        return text.encode()
    if isinstance(body, dict) and set(body) == {"reason", "messageBase64"}:
        return base64.b64decode(body["messageBase64"])
    return raw


async def pending_on_jobs_queue(stack: Stack) -> int:
    """How many messages the jobs queue holds, visible or not; all of them are removed."""
    count = await stack.queue_length(stack.settings.jobs_queue)
    if count:
        await stack.queues.get_queue_client(stack.settings.jobs_queue).clear_messages()
    return count


async def assert_readable_record(stack: Stack, job_id: str) -> None:
    """The job's ledger record fits its bound and holds a message of the job that fits the queue."""
    data = await stack.blob(f"{job_id}.json", container=stack.settings.ledger_container)
    assert data is not None
    assert len(data) <= MAX_RECORD_BYTES
    message = json.dumps(json.loads(data)["message"], ensure_ascii=False)
    assert len(message.encode()) <= QUEUE_MESSAGE_BYTES
    assert parse_message(message, settings=stack.settings).job_id == job_id


async def clear_ledger(stack: Stack) -> None:
    container = stack.blobs.get_container_client(stack.settings.ledger_container)
    for name in await stack.ledger_names():
        await container.delete_blob(name)


# -- messages --------------------------------------------------------------------------------------


@IO_BOUND
@given(body=hostile_bodies)
async def test_any_body_has_one_definite_outcome_on_its_first_delivery(stack: Stack, body: bytes) -> None:
    result = await on_jobs_message(body, dequeue_count=1)  # what the queue trigger awaits

    poisoned = await drain(stack, stack.settings.poison_queue)
    scheduled = await pending_on_jobs_queue(stack)
    if result.outcome is Outcome.POISONED:
        assert [unwrapped(content) for content in poisoned] == [body]
        assert all(len(content) <= 64 * 1024 for content in poisoned)
        assert scheduled == 0
    else:
        assert result.outcome in ACCEPTED
        assert poisoned == []
        assert result.job_id is not None
        if result.outcome is Outcome.RESCHEDULED:
            assert scheduled == 1  # invisible until due: counted, not read
            await assert_readable_record(stack, result.job_id)
    await clear_ledger(stack)


@pytest.mark.usefixtures("slow_jobs")
@IO_BOUND
@given(poll=forged_polls, name=texts, metadata=st.dictionaries(texts, texts, max_size=3))
async def test_forged_own_fields_never_end_nor_cancel_a_running_job(
    stack: Stack, poll: Any, name: str, metadata: dict[str, str]
) -> None:
    job_id = await stack.submit()
    body = {"jobId": job_id, "displayName": name, "metadata": metadata, "_poll": poll}

    result = await on_jobs_message(json.dumps(body).encode(), dequeue_count=1)

    assert result.outcome is Outcome.RESCHEDULED
    assert await stack.manifest(job_id) is None
    assert (await stack.requests_for(job_id)).get("CANCEL", 0) == 0
    assert await pending_on_jobs_queue(stack) == 1
    await assert_readable_record(stack, job_id)
    await clear_ledger(stack)


# -- the sweep -------------------------------------------------------------------------------------

header_times = (
    extreme_times | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30)
).filter(lambda value: value.strip() == value)
record_bodies = st.one_of(
    st.binary(max_size=500),
    st.builds(encoded, json_values, st.sampled_from(["ascii", "raw"])),
    st.builds(
        lambda due, message, how: encoded({"nextPollAt": due, "message": message}, how),
        times,
        message_objects(st.just("{job}") | scalars),
        st.sampled_from(["ascii", "raw"]),
    ),
    st.builds(lambda depth: b"[" * depth, st.integers(30, 50_000)),
    st.just(b'{"message": {"jobId": "{job}"}, "pad": "' + b"x" * MAX_RECORD_BYTES + b'"}'),
)


@IO_BOUND
@given(data=record_bodies, due=header_times)
async def test_whatever_a_ledger_record_holds_the_sweep_neither_fails_nor_forgets_its_job(
    stack: Stack, data: bytes, due: str
) -> None:
    job_id = str(uuid.uuid4())
    container = stack.blobs.get_container_client(stack.settings.ledger_container)
    if not await container.exists():
        await container.create_container()
    await container.upload_blob(
        f"{job_id}.json",
        data.replace(b"{job}", job_id.encode()),
        metadata={"nextpollat": due},
        overwrite=True,
    )
    runtime = await process_runtime()

    first = await run_sweep(runtime)
    second = await run_sweep(runtime)

    assert (first.failed, second.failed) == (0, 0)
    assert await stack.ledger_names() == [f"{job_id}.json"]  # never dropped without a manifest
    for text in [base64.b64decode(c).decode() for c in await drain(stack, stack.settings.jobs_queue)]:
        assert len(text.encode()) <= QUEUE_MESSAGE_BYTES
        assert parse_message(text, settings=stack.settings).job_id == job_id
    if job_id in first.job_ids:  # re-driven: the record is readable from now on
        record = await runtime.ledger.get(job_id)
        assert record is not None
        assert record.next_poll_at is not None
        assert datetime.now(UTC) - record.next_poll_at < timedelta(minutes=5)
    await clear_ledger(stack)
