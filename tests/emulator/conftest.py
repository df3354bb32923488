"""Fixtures: emulators on real ports (stopped after each test) and one aiohttp client session per test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from local.emulator import EmulatorConfig, serve
from local.emulator.server import RunningEmulator
from tests.emulator.support import StartEmulator


@pytest.fixture
async def start_emulator() -> AsyncIterator[StartEmulator]:
    """Starts emulators with EmulatorConfig keyword overrides; all stop when the test ends."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> RunningEmulator:
            return await stack.enter_async_context(serve(EmulatorConfig(**overrides)))

        yield start


@pytest.fixture
async def emulator(start_emulator: StartEmulator) -> RunningEmulator:
    """Default configuration: 1 s notStarted, 2 s running; tests move the clock instead of sleeping."""
    return await start_emulator()


@pytest.fixture
async def instant(start_emulator: StartEmulator) -> RunningEmulator:
    """Jobs are terminal as soon as they are submitted."""
    return await start_emulator(not_started_seconds=0.0, running_seconds=0.0)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
