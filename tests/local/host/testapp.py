"""A tiny v2 FunctionApp for the runner's tests: its functions record what the runner hands them.

Each test builds its own app (``make_app``), so recorded calls and the get_functions cache never leak
between tests; what a function does beyond recording is the test's ``on_message``/``on_timer``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import azure.functions as func


async def _nothing(_: object) -> None:
    return None


@dataclass
class Recorder:
    """What the test app's functions received, and what they do with it."""

    on_message: Callable[[func.QueueMessage], Awaitable[None]] = _nothing
    on_timer: Callable[[func.TimerRequest], Awaitable[None]] = _nothing
    messages: list[func.QueueMessage] = field(default_factory=list)
    timers: list[func.TimerRequest] = field(default_factory=list)
    loop_times: list[float] = field(default_factory=list)  # when each message arrived

    def bodies(self) -> list[str]:
        return [message.get_body().decode("utf-8") for message in self.messages]


def make_app(recorder: Recorder) -> func.FunctionApp:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="%TEST_QUEUE%", connection="AzureWebJobsStorage")
    async def on_message(msg: func.QueueMessage) -> None:
        recorder.messages.append(msg)
        recorder.loop_times.append(asyncio.get_running_loop().time())
        await recorder.on_message(msg)

    @app.timer_trigger(schedule="%TEST_SCHEDULE%", arg_name="timer", run_on_startup=False)
    async def on_timer(timer: func.TimerRequest) -> None:
        recorder.timers.append(timer)
        await recorder.on_timer(timer)

    return app
