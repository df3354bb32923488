"""The host's poison rule, and the move of a message to ``<queue>-poison``."""

from __future__ import annotations

import uuid

from azure.storage.queue.aio import QueueServiceClient
from hypothesis import given
from hypothesis import strategies as st

from local.host.poison import poison_after_failure, poison_before_invocation, poison_queue, send_to_poison

limits = st.integers(min_value=1, max_value=1000)


def test_message_within_max_dequeue_count_is_invoked() -> None:
    assert not poison_before_invocation(5, 5)


def test_message_dequeued_more_than_max_dequeue_count_is_poisoned_before_invocation() -> None:
    assert poison_before_invocation(6, 5)


def test_failure_before_the_last_allowed_delivery_retries() -> None:
    assert not poison_after_failure(4, 5)


def test_failure_on_the_last_allowed_delivery_poisons() -> None:
    assert poison_after_failure(5, 5)


@given(limit=limits)
def test_a_message_that_always_fails_is_invoked_exactly_max_dequeue_count_times(limit: int) -> None:
    invocations, dequeue_count = 0, 0
    while True:
        dequeue_count += 1
        if poison_before_invocation(dequeue_count, limit):
            break
        invocations += 1
        if poison_after_failure(dequeue_count, limit):
            break
    assert invocations == limit


@given(dequeue_count=st.integers(min_value=0, max_value=2000), limit=limits)
def test_a_message_poisoned_uninvoked_would_have_been_poisoned_on_its_previous_failure(
    dequeue_count: int, limit: int
) -> None:
    if poison_before_invocation(dequeue_count, limit):
        assert poison_after_failure(dequeue_count - 1, limit)


def test_poison_queue_is_named_after_the_trigger_queue() -> None:
    assert poison_queue("jobs") == "jobs-poison"


async def test_send_to_poison_creates_the_poison_queue_and_copies_the_original_text(
    queue_service: QueueServiceClient,
) -> None:
    name = f"p-{uuid.uuid4().hex[:16]}"

    await send_to_poison(queue_service, name, "bm90IGRlY29kZWQ=")
    await send_to_poison(queue_service, name, "c2Vjb25k")

    poison = queue_service.get_queue_client(f"{name}-poison")
    try:
        texts = [message.content for message in await poison.peek_messages(max_messages=32)]
        assert texts == ["bm90IGRlY29kZWQ=", "c2Vjb25k"]
    finally:
        await poison.delete_queue()
