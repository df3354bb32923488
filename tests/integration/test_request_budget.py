"""The request budget shared through a blob in Azurite: instances share one bucket, a 429 pauses
every instance, waiters go nearest-deadline first, and a lost blob starts afresh."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from azure.storage.blob.aio import ContainerClient
from yarl import URL

from local.bench.latency import LatencyProxy
from local.host.azurite import connection_string
from shared.budget import (
    CLOCK_TOLERANCE_SECONDS,
    REFILL_MIN_SPENT,
    BudgetLimits,
    BudgetState,
    state_from_json,
    state_to_json,
)
from shared.request_budget import BlobBudgetStore, BudgetBusy, RequestBudget, budget_blob
from shared.settings import StorageSettings
from shared.storage import open_storage
from tests.support import LocalServers

from .conftest import Stack

pytestmark = pytest.mark.integration

LIMITS = BudgetLimits(per_minute=600)  # 10 a second, a bucket of 25, batches of 12
BLOB = budget_blob("archive")
#: Far below the SDK's first backoff (15 s and more) and the clients' read timeout (30 s).
AT_ONCE_SECONDS = 5.0


def container(stack: Stack) -> ContainerClient:
    return stack.blobs.get_container_client(f"budget-{uuid.uuid4().hex[:12]}")


def instance(
    where: ContainerClient, limits: BudgetLimits = LIMITS, clock: Callable[[], float] = time.time
) -> RequestBudget:
    return RequestBudget(store=BlobBudgetStore(container=where, name=BLOB), limits=limits, clock=clock)


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
    assert state.throttled_until > 0


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


async def test_no_waiter_waits_past_its_give_up_time(stack: Stack) -> None:
    budget = instance(container(stack), BudgetLimits(per_minute=60))  # one a second
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + 1.5

    async def wait() -> tuple[float, float | None]:
        try:
            await budget.acquire(give_up_at=give_up_at)
        except BudgetBusy as busy:
            return loop.time(), busy.wait
        return loop.time(), None

    ended = await asyncio.gather(*(wait() for _ in range(10)))

    assert max(at for at, _ in ended) <= give_up_at + 0.5
    busy = [wait for _, wait in ended if wait is not None]
    assert 5 <= len(busy) < 10
    assert min(busy) >= 1.0


async def test_a_pause_longer_than_the_wait_allowed_answers_busy_at_once(stack: Stack) -> None:
    budget = instance(container(stack))
    await budget.acquire()
    await budget.throttled(40.0)
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(BudgetBusy) as busy:
        await budget.acquire(give_up_at=started + 30.0)

    assert loop.time() - started < 1.0
    assert busy.value.wait >= 39.0


@pytest.mark.parametrize(
    "data", [b'{"tokens": NaN, "stamp": 1}', b'{"tokens": 1, "stamp": 1, "factor": -2}', b'{"tokens": "x"}']
)
async def test_a_blob_that_holds_nonsense_is_reset_with_a_warning(
    stack: Stack, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    where = container(stack)
    await where.create_container()
    await where.upload_blob(BLOB, data)
    budget = instance(where)

    with caplog.at_level(logging.WARNING, logger="archiver.budget"):
        assert await asyncio.wait_for(budget.acquire(), timeout=10) >= 0

    assert "unusable" in caplog.text
    stored = await (await where.download_blob(BLOB)).readall()
    assert state_from_json(LIMITS, stored, time.time()).stamp <= time.time() + 1


async def test_a_clock_running_an_hour_ahead_neither_pushes_the_state_ahead_nor_starves_the_others(
    stack: Stack,
) -> None:
    where = container(stack)
    ahead = instance(where, clock=lambda: time.time() + 3600.0)
    await ahead.acquire()  # the read before its first write (a 404) shows the service's time

    assert ahead.clock_offset == pytest.approx(-3600.0, abs=CLOCK_TOLERANCE_SECONDS + 2.0)
    stored = state_from_json(LIMITS, await (await where.download_blob(BLOB)).readall(), time.time() + 3600)
    assert stored.stamp <= time.time() + CLOCK_TOLERANCE_SECONDS + 1.5
    started = time.monotonic()
    await asyncio.wait_for(instance(where).acquire(), timeout=10)
    assert time.monotonic() - started < 5.0


async def test_a_budget_of_one_a_minute_spends_the_token_it_has_within_the_wait_bound(stack: Stack) -> None:
    where = container(stack)
    await where.create_container()
    await where.upload_blob(BLOB, state_to_json(BudgetState(tokens=1.0, stamp=time.time())))
    budget = instance(where, BudgetLimits(per_minute=1))
    loop = asyncio.get_running_loop()

    waited = await asyncio.wait_for(budget.acquire(give_up_at=loop.time() + 30.0), timeout=10)

    assert waited < 5.0
    assert budget.estimated_wait() > 30.0  # the next one is a minute away: the worker reschedules it


async def test_a_poll_may_come_one_cycle_of_the_pending_jobs_late_and_still_only_wait_its_turn(
    stack: Stack,
) -> None:
    where = container(stack)
    await instance(where).set_pending(300)  # 30 s of polls at 10 a second

    late = await instance(where).lateness()

    assert late == pytest.approx(300 / LIMITS.rate, abs=0.5)


class SlowStore:
    """The blob store behind a slow network: every read and write takes ``delay`` more."""

    def __init__(self, inner: BlobBudgetStore, delay: float) -> None:
        self.inner, self.delay, self.swaps = inner, delay, 0

    async def load(self) -> tuple[bytes | None, str | None, float | None]:
        await asyncio.sleep(self.delay)
        return await self.inner.load()

    async def swap(self, data: bytes, etag: str | None) -> tuple[str, float | None] | None:
        self.swaps += 1
        await asyncio.sleep(self.delay)
        return await self.inner.swap(data, etag)


async def test_a_new_buckets_first_take_waits_for_its_tokens_and_creates_the_blob_with_them(
    stack: Stack,
) -> None:
    where = container(stack)
    store = SlowStore(BlobBudgetStore(container=where, name=BLOB), delay=0.0)
    budget = RequestBudget(store=store, limits=LIMITS)

    await budget.acquire()

    assert store.swaps == 1  # not a create with an empty bucket, then a take
    data = await (await where.get_blob_client(BLOB).download_blob()).readall()
    assert state_from_json(LIMITS, data, time.time()).tokens < LIMITS.batch


async def test_a_busy_instance_far_from_the_limit_never_waits_for_a_take(stack: Stack) -> None:
    # 1,000 a second, tokens held 1 s: a take at need would stop requests for the store's 0.25 s
    # every second; taken ahead, the next batch is there when the held one expires.
    limits = BudgetLimits(per_minute=60_000, burst_seconds=2.5, hold_seconds=1.0)
    store = SlowStore(BlobBudgetStore(container=container(stack), name=BLOB), delay=0.25)
    budget = RequestBudget(store=store, limits=limits)
    await budget.acquire()  # the first take is at need: nothing was held
    loop = asyncio.get_running_loop()
    waits = []
    until = loop.time() + 2.6  # across two expiries of a held batch
    while loop.time() < until:
        started = loop.time()
        await budget.acquire()
        waits.append(loop.time() - started)
        await asyncio.sleep(0.01)

    assert max(waits) < 0.1
    assert store.swaps <= 8  # a take per held batch, not one per request


async def test_a_429_drops_the_batch_taken_ahead_as_well(stack: Stack) -> None:
    limits = BudgetLimits(per_minute=60_000, burst_seconds=2.5, hold_seconds=1.0)
    budget = RequestBudget(store=BlobBudgetStore(container=container(stack), name=BLOB), limits=limits)
    for _ in range(REFILL_MIN_SPENT + 1):
        await budget.acquire()
    await asyncio.sleep(0.6)  # the held batch is near its expiry: the next one is taken ahead...
    await budget.acquire()
    await asyncio.sleep(0.3)  # ...and has arrived
    loop = asyncio.get_running_loop()

    await budget.throttled(1.5)
    started = loop.time()
    await budget.acquire()

    assert loop.time() - started >= 1.4


# -- storage in trouble: the instance goes on alone within seconds -----------------------------


@asynccontextmanager
async def budget_on(endpoint: str) -> AsyncIterator[RequestBudget]:
    """A budget whose blob storage is at ``endpoint`` (the app's own clients, its retry policy)."""
    async with aiohttp.ClientSession() as session:
        clients = open_storage(
            StorageSettings(connection_string=connection_string(URL(endpoint).port or 0, 1)),
            session=session,
            credential=None,
        )
        store = BlobBudgetStore(container=clients.container("budget"), name=BLOB)
        budget = RequestBudget(store=store, limits=LIMITS)
        try:
            yield budget
        finally:
            await budget.aclose()
            await clients.close()


async def test_storage_that_answers_503_is_asked_once_and_the_instance_goes_on_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def busy(_: web.Request) -> web.Response:
        return web.Response(status=503, headers={"x-ms-error-code": "ServerBusy"})

    async with LocalServers() as servers:
        storage = await servers.start(busy, path="/devstoreaccount1")
        async with budget_on(storage.url) as budget:
            with caplog.at_level(logging.WARNING, logger="shared.request_budget"):
                await asyncio.wait_for(budget.acquire(), timeout=AT_ONCE_SECONDS)

    assert len(storage.seen) == 1  # no retry after the SDK's 15-s backoff
    assert "going on alone" in caplog.text


async def test_storage_that_drops_every_connection_is_tried_at_once_and_the_instance_goes_on_alone() -> None:
    async with (
        LatencyProxy.start(upstream_port=1, delay=0, drop_first=1_000) as storage,
        budget_on(storage.account_endpoint) as budget,
    ):
        await asyncio.wait_for(budget.acquire(), timeout=AT_ONCE_SECONDS)

        # aiohttp sends an idempotent request (the GET) once more on a new connection, and the
        # retry policy sends it once more at once: two requests, four connections, no backoff.
        assert storage.connections == 4


async def test_storage_that_never_answers_holds_a_take_for_its_read_timeout_not_the_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same options as deployed but a shorter read timeout, so that the test runs in a second:
    # the clients' own read timeout (30 s) and the SDK's backoff would hold it far past the bound.
    shorter = {**BlobBudgetStore.REQUEST_OPTIONS, "read_timeout": 0.3}
    monkeypatch.setattr(BlobBudgetStore, "REQUEST_OPTIONS", shorter)
    answer = asyncio.Event()

    async def silent(_: web.Request) -> web.Response:
        await answer.wait()
        return web.Response(status=503)

    async with LocalServers() as servers:
        storage = await servers.start(silent, path="/devstoreaccount1")
        try:
            async with budget_on(storage.url) as budget:
                await asyncio.wait_for(budget.acquire(), timeout=AT_ONCE_SECONDS)
        finally:
            answer.set()
