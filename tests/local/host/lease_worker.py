"""A queue runner in a process of its own whose function never returns, so a test can SIGKILL it in
the middle of an invocation: ``python -m tests.local.host.lease_worker CONN QUEUE HOST_JSON LEASE``.

It prints ``invoked <dequeue count>`` once the invocation has started."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import azure.functions as func

from local.host.runner import QueueRunner
from tests.local.host.testapp import Recorder, make_app


async def main(connection_string: str, queue: str, host_json: Path, lease: int) -> None:
    async def hang(message: func.QueueMessage) -> None:
        print(f"invoked {message.dequeue_count}", flush=True)
        await asyncio.Event().wait()

    runner = QueueRunner(
        app=make_app(Recorder(on_message=hang)),
        connection_string=connection_string,
        environ={"TEST_QUEUE": queue, "TEST_SCHEDULE": "0 0 0 1 1 *"},
        host_json=host_json,
        timer=False,
        name="doomed",
        lease_seconds=lease,
    )
    # Bounded: the test kills it long before this ends.
    await runner.run_until(lambda: False, timeout=60)


if __name__ == "__main__":
    connection, queue_name, host, lease_seconds = sys.argv[1:]
    asyncio.run(main(connection, queue_name, Path(host), int(lease_seconds)))
