"""Invocations as the Python worker runs them, and the runner's bookkeeping of those in flight."""

from __future__ import annotations

import asyncio
import threading

import pytest

from local.host.invocations import Invocations, invoke


async def test_an_async_function_runs_on_the_event_loop() -> None:
    seen: list[threading.Thread] = []

    async def function(msg: str) -> None:
        seen.append(threading.current_thread())

    await invoke(function, {"msg": "x"})

    assert seen == [threading.current_thread()]


async def test_a_sync_function_runs_on_a_worker_thread() -> None:
    seen: list[threading.Thread] = []

    def function(msg: str) -> None:
        seen.append(threading.current_thread())

    await invoke(function, {"msg": "x"})

    assert len(seen) == 1
    assert seen[0] is not threading.current_thread()


async def test_spawned_invocations_are_counted_until_they_end() -> None:
    invocations = Invocations("t")
    release = asyncio.Event()
    task = invocations.spawn(release.wait(), "wait")

    assert len(invocations) == 1
    assert task.get_name() == "t:wait"
    release.set()
    await task
    await asyncio.sleep(0)  # done callbacks run on the next loop iteration
    assert len(invocations) == 0


async def test_a_crashed_invocation_is_raised_once() -> None:
    invocations = Invocations("t")

    async def crash() -> None:
        raise KeyError("bug")

    await asyncio.wait([invocations.spawn(crash(), "crash")])
    await asyncio.sleep(0)

    with pytest.raises(KeyError, match="bug"):
        invocations.raise_crash()
    invocations.raise_crash()  # raised already: nothing more


async def test_cancel_all_ends_every_invocation_in_flight() -> None:
    invocations = Invocations("t")
    tasks = [invocations.spawn(asyncio.Event().wait(), f"hang-{n}") for n in range(3)]

    await invocations.cancel_all()

    assert all(task.cancelled() for task in tasks)
    assert len(invocations) == 0
