"""Fixtures of the runner's tests: an Azurite of their own, a host.json with small timeouts, and a
factory of runners on fresh queues that are closed after each test."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from local.host.azurite import Azurite
from local.host.runner import QueueRunner
from tests.local.host.testapp import Recorder, make_app

FAST_QUEUES: dict[str, Any] = {
    "batchSize": 4,
    "newBatchThreshold": 2,
    "maxDequeueCount": 3,
    "visibilityTimeout": "00:00:01",
    "maxPollingInterval": "00:00:00.2",
    "messageEncoding": "base64",
}


def write_host_json(path: Path, **queues: Any) -> Path:
    path.write_text(json.dumps({"version": "2.0", "extensions": {"queues": {**FAST_QUEUES, **queues}}}))
    return path


def encode(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


@pytest.fixture(scope="session")
def runner_azurite() -> Iterator[Azurite]:
    with Azurite.start_sync() as azurite:
        yield azurite


@pytest.fixture(scope="session")
async def queue_service(runner_azurite: Azurite) -> AsyncIterator[QueueServiceClient]:
    async with QueueServiceClient.from_connection_string(runner_azurite.connection_string) as service:
        yield service


@pytest.fixture(scope="session")
def host_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_host_json(tmp_path_factory.mktemp("host") / "host.json")


@dataclass
class Setup:
    """One test's runner, its recorder, and clients on its queue and poison queue."""

    runner: QueueRunner
    recorder: Recorder
    queue: QueueClient
    poison: QueueClient

    async def send(self, text: str, *, visibility_timeout: int | None = None) -> None:
        """Put ``text`` on the queue base64-encoded, as the host's producers do."""
        await self.queue.send_message(encode(text), visibility_timeout=visibility_timeout)

    async def count(self, client: QueueClient | None = None) -> int:
        """Messages on the queue (or ``client``'s), visible or not; 0 for a missing queue."""
        try:
            properties = await (client or self.queue).get_queue_properties()
        except ResourceNotFoundError:
            return 0
        return int(properties.approximate_message_count or 0)

    async def poison_texts(self) -> list[str]:
        try:
            return [str(message.content) for message in await self.poison.peek_messages(max_messages=32)]
        except ResourceNotFoundError:
            return []


class MakeSetup(Protocol):
    async def __call__(
        self,
        recorder: Recorder | None = None,
        *,
        host_json: Path | None = None,
        timer: bool = False,
        name: str = "runner",
    ) -> Setup: ...


@pytest.fixture
async def make_setup(
    runner_azurite: Azurite, queue_service: QueueServiceClient, host_json: Path
) -> AsyncIterator[MakeSetup]:
    """Runners on one fresh queue per test (several calls share it, as two workers would)."""
    queue_name = f"t-{uuid.uuid4().hex[:16]}"
    queue = queue_service.get_queue_client(queue_name)
    await queue.create_queue()
    default_host_json = host_json
    runners: list[QueueRunner] = []

    async def make(
        recorder: Recorder | None = None,
        *,
        host_json: Path | None = None,
        timer: bool = False,
        name: str = "runner",
    ) -> Setup:
        recorder = recorder or Recorder()
        runner = QueueRunner(
            app=make_app(recorder),
            connection_string=runner_azurite.connection_string,
            environ={"TEST_QUEUE": queue_name, "TEST_SCHEDULE": "*/1 * * * * *"},
            host_json=host_json or default_host_json,
            timer=timer,
            name=name,
        )
        runners.append(runner)
        poison = queue_service.get_queue_client(f"{queue_name}-poison")
        return Setup(runner=runner, recorder=recorder, queue=queue, poison=poison)

    yield make
    for runner in runners:
        await runner.aclose()
