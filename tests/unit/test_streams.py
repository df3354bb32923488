"""``ordered_map``: bounded concurrency, the source's order, failures that stop the rest."""

from __future__ import annotations

import asyncio

import pytest

from shared.streams import each, ordered_map


@pytest.mark.parametrize("concurrency", [1, 3, 8])
async def test_results_come_in_the_sources_order_with_at_most_concurrency_in_flight(concurrency: int) -> None:
    in_flight = peak = 0
    delays = [0.004, 0.0, 0.003, 0.001, 0.0, 0.002, 0.004, 0.0, 0.001, 0.003]

    async def work(index: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(delays[index])
        in_flight -= 1
        return index * 10

    results = [
        result async for result in ordered_map(each(range(len(delays))), work, concurrency=concurrency)
    ]

    assert results == [index * 10 for index in range(len(delays))]
    assert peak == concurrency


async def test_a_failure_propagates_and_cancels_the_work_still_in_flight() -> None:
    cancelled: list[int] = []

    async def work(index: int) -> int:
        if index == 0:
            await asyncio.sleep(0)
            raise RuntimeError("boom")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(index)
            raise
        return index

    with pytest.raises(RuntimeError, match="boom"):
        async for _ in ordered_map(each(range(4)), work, concurrency=4):
            pass

    assert sorted(cancelled) == [1, 2, 3]


async def test_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        async for _ in ordered_map(each([1]), asyncio.sleep, concurrency=0):
            pass
