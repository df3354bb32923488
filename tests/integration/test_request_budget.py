"""The request budget shared through a blob in Azurite: instances share one bucket, a 429 pauses
every instance, waiters go nearest-deadline first, and a lost blob starts afresh."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from azure.storage.blob.aio import ContainerClient

from shared.budget import BudgetLimits
from shared.request_budget import BlobBudgetStore, RequestBudget, budget_blob

from .conftest import Stack

pytestmark = pytest.mark.integration

LIMITS = BudgetLimits(per_minute=600)  # 10 a second, a bucket of 25, batches of 12
BLOB = budget_blob("archive")


def container(stack: Stack) -> ContainerClient:
    return stack.blobs.get_container_client(f"budget-{uuid.uuid4().hex[:12]}")


def instance(where: ContainerClient) -> RequestBudget:
    return RequestBudget(store=BlobBudgetStore(container=where, name=BLOB), limits=LIMITS)


async def test_two_instances_share_one_bucket(stack: Stack) -> None:
    where = container(stack)
    first, second = instance(where), instance(where)
    started = time.monotonic()

    await asyncio.gather(*(budget.acquire() for budget in (first, second) for _ in range(30)))

    # 60 permits from an empty bucket at 10 a second: no instance could go faster on its own.
    assert time.monotonic() - started >= 60 / LIMITS.rate * 0.9


async def test_a_429_at_one_instance_pauses_the_other(stack: Stack) -> None:
    where = container(stack)
    first, second = instance(where), instance(where)
    await first.acquire()  # creates the shared state

    await first.throttled(2.0)
    started = time.monotonic()
    await second.acquire()

    assert time.monotonic() - started >= 1.9
    state = second.state
    assert state is not None
    assert state.factor < 1.0


async def test_waiters_go_nearest_deadline_first(stack: Stack) -> None:
    budget = instance(container(stack))
    served: list[float] = []

    async def wait(deadline: float) -> None:
        await budget.acquire(deadline=deadline)
        served.append(deadline)

    await asyncio.gather(*(wait(deadline) for deadline in (300.0, 100.0, 200.0, 50.0)))

    assert served == [50.0, 100.0, 200.0, 300.0]


async def test_a_cancelled_waiter_does_not_hold_up_the_others(stack: Stack) -> None:
    budget = instance(container(stack))
    stuck = asyncio.create_task(budget.acquire(deadline=1.0))
    await asyncio.sleep(0)
    stuck.cancel()

    waited = await asyncio.wait_for(budget.acquire(deadline=2.0), timeout=10)

    assert waited >= 0
    assert stuck.cancelled()


async def test_the_sweeps_count_of_pending_jobs_sets_the_cycle(stack: Stack) -> None:
    where = container(stack)
    sweep, worker = instance(where), instance(where)
    await worker.acquire()

    await sweep.set_pending(1200)
    worker.jobs_changed(-200)
    await asyncio.sleep(LIMITS.hold_seconds)  # the worker's tokens expire: its next request takes
    await worker.acquire()

    assert worker.cycle_seconds() == pytest.approx(1000 / LIMITS.rate)


async def test_an_unreadable_blob_is_started_afresh(stack: Stack) -> None:
    where = container(stack)
    await where.create_container()
    await where.upload_blob(BLOB, b"not json")

    assert await asyncio.wait_for(instance(where).acquire(), timeout=10) >= 0
