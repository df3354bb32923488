"""``replay-poison``: the poison queue goes back to JOBS_QUEUE once the cause is fixed, and nothing
is ever lost (a message leaves the poison queue only after its replay was sent)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from types import SimpleNamespace

import aiohttp
import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from shared.http import SessionHolder
from shared.poison import PoisonReplay, ReplayAction
from shared.queues import JobQueues
from shared.runtime import close_process_runtime
from shared.storage import open_storage
from tests.integration.conftest import Stack

from .conftest import RunCli, archive_job

pytestmark = pytest.mark.integration

JOB_ID = "c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18"


def queue(stack: Stack, name: str) -> QueueClient:
    return stack.queues.get_queue_client(name, message_encode_policy=TextBase64EncodePolicy())


def app_queues(stack: Stack) -> JobQueues:
    """The app's own queue writer (its poison wrapper is what the function writes)."""
    return JobQueues(
        jobs=queue(stack, stack.settings.jobs_queue), poison=queue(stack, stack.settings.poison_queue)
    )


async def host_poisons(stack: Stack, text: str) -> None:
    """What the Functions host does after maxDequeueCount failures: the message, as it was."""
    poison = queue(stack, stack.settings.poison_queue)
    with contextlib.suppress(ResourceExistsError):
        await poison.create_queue()
    await poison.send_message(text)


async def poison_texts(stack: Stack) -> list[str]:
    """Visible poison messages, decoded."""
    peeked = await stack.queues.get_queue_client(stack.settings.poison_queue).peek_messages(max_messages=32)
    return [base64.b64decode(m.content).decode() for m in peeked]


async def test_a_message_poisoned_under_a_wrong_setting_is_replayed_once_it_is_fixed_and_archives(
    stack: Stack, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = await stack.submit()
    location = f"{stack.emulator_url}/language/analyze-text/jobs/{job_id}?api-version=2024-11-01"
    original = json.dumps({"operationLocation": location})
    monkeypatch.setenv("LANGUAGE_ENDPOINT", "http://127.0.0.1:9")  # the mistake
    await close_process_runtime()
    await stack.deliver(original)
    [parked] = await stack.poison_messages()
    assert parked["reason"].startswith("foreign-operation-location")
    monkeypatch.setenv("LANGUAGE_ENDPOINT", stack.emulator_url)  # the fix
    await close_process_runtime()

    ran = await run_cli("replay-poison", "--json")

    assert ran.status == 0
    assert ran.objects() == [{"action": "replayed", "jobId": job_id, "reason": parked["reason"]}]
    assert await stack.queue_length(stack.settings.poison_queue) == 0
    text, _ = await stack.next_job_message()
    assert text == original
    await stack.deliver(text)
    assert (await stack.manifest(job_id) or {}).get("status") == "succeeded"


async def test_a_message_the_host_poisoned_is_replayed_as_it_is(stack: Stack, run_cli: RunCli) -> None:
    original = json.dumps({"jobId": JOB_ID, "_poll": {"attempt": 3, "ledgerEtag": '"0x1"'}})
    await host_poisons(stack, original)

    ran = await run_cli("replay-poison", "--json")

    assert ran.objects() == [{"action": "replayed", "jobId": JOB_ID, "reason": None}]
    assert (await stack.next_job_message())[0] == original
    assert await stack.queue_length(stack.settings.poison_queue) == 0


async def test_a_message_that_would_be_poison_again_is_kept_with_its_reason(
    stack: Stack, run_cli: RunCli
) -> None:
    await app_queues(stack).poison(
        reason="invalid-job-id: job id 'x' is not a UUID", original='{"jobId": "x"}'
    )
    wrapped = await poison_texts(stack)

    ran = await run_cli("replay-poison", "--json")

    assert ran.status == 0  # a kept message is reported, not an error
    assert ran.objects() == [
        {"action": "kept", "jobId": None, "reason": "invalid-job-id: job id 'x' is not a UUID"}
    ]
    assert await poison_texts(stack) == wrapped  # still there, and visible again
    assert await stack.queue_length(stack.settings.jobs_queue) == 0


async def test_a_poison_message_that_is_not_base64_is_kept(stack: Stack, run_cli: RunCli) -> None:
    raw = stack.queues.get_queue_client(stack.settings.poison_queue)
    await raw.create_queue()
    await raw.send_message("{not base64}")

    ran = await run_cli("replay-poison", "--json")

    assert ran.objects() == [
        {"action": "kept", "jobId": None, "reason": "unparseable: poison message is not base64"}
    ]


async def test_dry_run_says_what_would_happen_and_changes_nothing(stack: Stack, run_cli: RunCli) -> None:
    await host_poisons(stack, JOB_ID)
    await app_queues(stack).poison(reason="unparseable: message is empty", original="")
    before = await poison_texts(stack)

    ran = await run_cli("replay-poison", "--dry-run", "--json")

    assert ran.objects() == [
        {"action": "would-replay", "jobId": JOB_ID, "reason": None},
        {"action": "kept", "jobId": None, "reason": "unparseable: message is empty"},
    ]
    assert await poison_texts(stack) == before
    assert await stack.queue_length(stack.settings.jobs_queue) == 0


async def test_text_output_ends_with_a_summary(stack: Stack, run_cli: RunCli) -> None:
    await host_poisons(stack, JOB_ID)

    ran = await run_cli("replay-poison")

    assert ran.out.splitlines() == [
        f"replayed: {JOB_ID}",
        f"{stack.settings.poison_queue}: 1 replayed, 0 would be replayed, 0 kept",
    ]


async def test_without_a_poison_queue_there_is_nothing_to_replay(stack: Stack, run_cli: RunCli) -> None:
    ran = await run_cli("replay-poison", "--json")

    assert (ran.status, ran.out) == (0, "")


class Crash(Exception):
    """The process dying between two requests."""


async def test_a_replay_interrupted_between_send_and_delete_loses_nothing(stack: Stack) -> None:
    job_id = await stack.submit()
    await host_poisons(stack, job_id)

    async def crash_on_delete(
        _s: object, _c: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        if params.method == "DELETE":
            raise Crash

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(crash_on_delete)

    async def replay(*, trace_configs: list[aiohttp.TraceConfig]) -> list[ReplayAction]:
        sessions = SessionHolder(trace_configs=trace_configs)
        storage = open_storage(stack.settings.storage, session=await sessions.get(), credential=None)
        try:
            replayer = PoisonReplay(
                poison=storage.queue(stack.settings.poison_queue),
                queues=JobQueues(
                    jobs=storage.queue(stack.settings.jobs_queue),
                    poison=storage.queue(stack.settings.poison_queue),
                ),
                settings=stack.settings,
                lease_seconds=1,
            )
            return [outcome.action async for outcome in replayer.replay(dry_run=False)]
        finally:
            await storage.close()
            await sessions.close()

    with pytest.raises(Crash):
        await replay(trace_configs=[trace])

    # Sent, and still in the poison queue: a crash here duplicates, never loses.
    assert await stack.queue_length(stack.settings.jobs_queue) == 1
    assert await stack.queue_length(stack.settings.poison_queue) == 1
    # Once its lease runs out, the next run replays it again: a duplicate, which the app tolerates.
    for _ in range(40):
        if await poison_texts(stack):
            break
        await asyncio.sleep(0.1)
    assert await replay(trace_configs=[]) == [ReplayAction.REPLAYED]
    assert await stack.queue_length(stack.settings.poison_queue) == 0
    copies = [await stack.next_job_message(), await stack.next_job_message()]
    assert [text for text, _ in copies] == [job_id, job_id]
    for text, _ in copies:
        await stack.deliver(text)
    assert (await stack.manifest(job_id) or {}).get("status") == "succeeded"
    assert len(await stack.blob_names(f"{job_id}/")) == 3  # one archive: two task blobs and the manifest


async def test_a_job_already_archived_is_not_sent_again_and_is_reported(
    stack: Stack, run_cli: RunCli
) -> None:
    job_id = await archive_job(stack)
    await host_poisons(stack, job_id)

    ran = await run_cli("replay-poison", "--json")

    assert ran.status == 0
    assert ran.objects() == [{"action": "already-archived", "jobId": job_id, "reason": None}]
    assert await stack.queue_length(stack.settings.jobs_queue) == 0
    assert await poison_texts(stack) == [job_id]  # left where it was, visible again


async def test_text_output_counts_jobs_already_archived(stack: Stack, run_cli: RunCli) -> None:
    job_id = await archive_job(stack)
    await host_poisons(stack, job_id)

    ran = await run_cli("replay-poison")

    assert ran.out.splitlines() == [
        f"already-archived: {job_id}",
        f"{stack.settings.poison_queue}: 0 replayed, 0 would be replayed, 0 kept, "
        "1 already archived (left on the queue)",
    ]


async def test_a_wrapper_carrying_the_original_as_base64_is_replayed_byte_for_byte(
    stack: Stack, run_cli: RunCli
) -> None:
    original = json.dumps({"jobId": JOB_ID, "displayName": "Zürich ✓"}, ensure_ascii=False)
    wrapper = {"reason": "oversized-wrapper", "messageBase64": base64.b64encode(original.encode()).decode()}
    await host_poisons(stack, json.dumps(wrapper))

    ran = await run_cli("replay-poison", "--json")

    assert ran.objects() == [{"action": "replayed", "jobId": JOB_ID, "reason": "oversized-wrapper"}]
    assert (await stack.next_job_message())[0] == original
    assert await stack.queue_length(stack.settings.poison_queue) == 0


async def test_a_wrapper_whose_base64_is_broken_is_kept_and_the_run_goes_on(
    stack: Stack, run_cli: RunCli
) -> None:
    await host_poisons(stack, json.dumps({"reason": "r", "messageBase64": "not base64!"}))
    await host_poisons(stack, JOB_ID)

    ran = await run_cli("replay-poison", "--json")

    assert ran.status == 0
    assert sorted(ran.objects(), key=lambda o: str(o["action"])) == [
        {
            "action": "kept",
            "jobId": None,
            "reason": "unparseable: the poison wrapper's messageBase64 is not base64",
        },
        {"action": "replayed", "jobId": JOB_ID, "reason": None},
    ]


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param("[" * 40_000, id="deep-array"),
        pytest.param('{"jobId": ' * 3_000, id="deep-object"),
        pytest.param(json.dumps({"reason": "r", "message": "[" * 30_000}), id="deep-in-wrapper"),
        pytest.param('{"jobId": "\\ud83d"}', id="lone-surrogate"),
        pytest.param("\x00\x1b[2J", id="controls"),
    ],
)
async def test_a_message_it_cannot_handle_is_kept_and_reported_and_the_run_goes_on(
    stack: Stack, run_cli: RunCli, hostile: str
) -> None:
    await host_poisons(stack, hostile)
    await host_poisons(stack, JOB_ID)

    ran = await run_cli("replay-poison", "--json")

    assert ran.status == 0
    outcomes = ran.objects()
    assert {"action": "replayed", "jobId": JOB_ID, "reason": None} in outcomes
    [kept] = [outcome for outcome in outcomes if outcome["action"] == "kept"]
    assert kept["jobId"] is None
    assert kept["reason"]
    assert (await stack.next_job_message())[0] == JOB_ID


async def test_a_reason_with_terminal_escapes_is_printed_escaped(stack: Stack, run_cli: RunCli) -> None:
    await host_poisons(stack, json.dumps({"reason": "evil\x1b[2J\x9b31m\u202e", "message": '{"jobId": "x"}'}))
    await host_poisons(stack, json.dumps({"reason": "evil\x1b[2J", "message": JOB_ID}))

    text = await run_cli("replay-poison", "--dry-run")
    as_json = await run_cli("replay-poison", "--dry-run", "--json")

    for ran in (text, as_json):
        assert not {"\x1b", "\x9b", "\u202e"} & set(ran.out + ran.err)
    assert "evil\\x1b[2J" in text.out
    assert {"action": "would-replay", "jobId": JOB_ID, "reason": "evil\x1b[2J"} in as_json.objects()
