"""Bounded, order-preserving concurrency over a stream too large to hold in memory."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import TypeVar

__all__ = ["each", "ordered_map"]

T = TypeVar("T")
R = TypeVar("R")


async def ordered_map(
    source: AsyncIterable[T], work: Callable[[T], Awaitable[R]], *, concurrency: int
) -> AsyncIterator[R]:
    """``work(item)`` for each item, at most ``concurrency`` at a time, results in the source's order.

    At most ``concurrency`` items are held at once, so memory does not grow with the stream. A
    failure of ``work`` propagates and cancels the items still in flight.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    pending: deque[asyncio.Future[R]] = deque()
    try:
        async for item in source:
            pending.append(asyncio.ensure_future(work(item)))
            if len(pending) >= concurrency:
                yield await pending.popleft()
        while pending:
            yield await pending.popleft()
    finally:
        for future in pending:
            future.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def each(items: Iterable[T]) -> AsyncIterator[T]:
    """``items`` as an async stream (for ``ordered_map`` over a list or a file)."""
    for item in items:
        yield item
