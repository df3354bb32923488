"""QueueRunner against a real Azurite: the Functions host's queue and timer semantics."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from pathlib import Path

import azure.functions as func
import pytest
from azure.functions.decorators.function_app import Function

from local.host.azurite import Azurite
from local.host.functions import functions_of
from local.host.runner import QueueRunner
from tests.conftest import REPO_ROOT
from tests.local.host.conftest import MakeSetup, encode, write_host_json
from tests.local.host.testapp import Recorder, make_app


async def fail(_: object) -> None:
    raise RuntimeError("boom")


async def test_base64_message_is_decoded_and_dequeue_count_passed(make_setup: MakeSetup) -> None:
    setup = await make_setup()
    await setup.send('{"jobId": "42"}')

    await setup.runner.run_until(lambda: bool(setup.recorder.messages), timeout=10)

    (message,) = setup.recorder.messages
    assert message.get_body() == b'{"jobId": "42"}'
    assert message.get_json() == {"jobId": "42"}
    assert message.dequeue_count == 1
    assert message.id
    assert message.pop_receipt
    assert message.insertion_time is not None
    assert message.expiration_time is not None


async def test_message_is_deleted_after_success(make_setup: MakeSetup) -> None:
    setup = await make_setup()
    await setup.send("hello")

    await setup.runner.run_until(lambda: setup.runner.stats.succeeded == 1, timeout=10)

    assert await setup.count() == 0
    assert setup.runner.stats.invoked == 1


async def test_failing_message_is_retried_then_poisoned_with_its_original_text(make_setup: MakeSetup) -> None:
    setup = await make_setup(Recorder(on_message=fail))
    await setup.send("doomed")

    async def poisoned() -> bool:
        return bool(await setup.poison_texts())

    await setup.runner.run_until(poisoned, timeout=15)

    assert [message.dequeue_count for message in setup.recorder.messages] == [1, 2, 3]
    assert await setup.poison_texts() == [encode("doomed")]
    assert await setup.count() == 0
    assert setup.runner.stats.failed == 3
    assert setup.runner.stats.poisoned == 1


async def test_retry_waits_for_the_visibility_timeout(make_setup: MakeSetup) -> None:
    setup = await make_setup(Recorder(on_message=fail))
    await setup.send("retry me")

    await setup.runner.run_until(lambda: len(setup.recorder.messages) == 2, timeout=10)

    first, second = setup.recorder.loop_times
    assert second - first >= 0.9  # visibilityTimeout is 00:00:01 in the test host.json


async def test_failure_is_logged_with_message_id_and_dequeue_count(
    make_setup: MakeSetup, caplog: pytest.LogCaptureFixture
) -> None:
    setup = await make_setup(Recorder(on_message=fail))
    await setup.send("noisy")

    await setup.runner.run_until(lambda: setup.runner.stats.failed == 1, timeout=10)

    (message,) = setup.recorder.messages
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert any(
        str(message.id) in line and "dequeue count 1 of 3" in line and "RuntimeError: boom" in line
        for line in errors
    ), errors


async def test_batch_is_processed_concurrently_but_bounded(make_setup: MakeSetup) -> None:
    running = 0
    peak = 0

    async def slow(_: func.QueueMessage) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.3)
        running -= 1

    setup = await make_setup(Recorder(on_message=slow))
    for n in range(12):
        await setup.send(f"m{n}")

    await setup.runner.drain(timeout=15)

    assert sorted(setup.recorder.bodies()) == sorted(f"m{n}" for n in range(12))
    # batchSize 4 + newBatchThreshold 2 is the host's ceiling on concurrent invocations.
    assert 2 <= peak <= 6


async def test_no_new_batch_while_in_flight_is_above_the_threshold(make_setup: MakeSetup) -> None:
    release = asyncio.Event()

    async def blocked(_: func.QueueMessage) -> None:
        await release.wait()

    setup = await make_setup(Recorder(on_message=blocked))
    for n in range(10):
        await setup.send(f"m{n}")
    seen_while_blocked: list[int] = []

    async def first_batch_held() -> bool:
        if len(setup.recorder.messages) < 4:
            return False
        await asyncio.sleep(0.6)  # three polling intervals: time enough to over-fetch, if it would
        seen_while_blocked.append(len(setup.recorder.messages))
        release.set()
        return True

    await setup.runner.run_until(first_batch_held, timeout=10)
    await setup.runner.drain(timeout=10)

    # 4 in flight stays above newBatchThreshold 2, so the second batch waited for the first.
    assert seen_while_blocked == [4]
    assert sorted(setup.recorder.bodies()) == sorted(f"m{n}" for n in range(10))


async def test_visibility_delay_is_honoured(make_setup: MakeSetup) -> None:
    setup = await make_setup()
    loop = asyncio.get_running_loop()
    sent = loop.time()
    await setup.send("later", visibility_timeout=2)

    await setup.runner.run_until(lambda: bool(setup.recorder.messages), timeout=10)

    assert setup.recorder.loop_times[0] - sent >= 1.9


async def test_drain_waits_for_messages_the_function_schedules(make_setup: MakeSetup) -> None:
    async def reschedule_once(message: func.QueueMessage) -> None:
        if message.get_body() == b"first":
            await setup.send("follow-up", visibility_timeout=1)

    setup = await make_setup(Recorder(on_message=reschedule_once))
    await setup.send("first")

    await setup.runner.drain(timeout=10)

    assert setup.recorder.bodies() == ["first", "follow-up"]
    assert await setup.count() == 0


async def test_message_over_max_dequeue_count_is_poisoned_without_invocation(make_setup: MakeSetup) -> None:
    setup = await make_setup()
    await setup.send("worn out")
    for _ in range(3):  # three deliveries that never settled, as if workers had died
        async for message in setup.queue.receive_messages(max_messages=1, visibility_timeout=30):
            await setup.queue.update_message(message, visibility_timeout=0)

    async def poisoned() -> bool:
        return bool(await setup.poison_texts())

    await setup.runner.run_until(poisoned, timeout=10)

    assert setup.recorder.messages == []
    assert await setup.poison_texts() == [encode("worn out")]
    assert await setup.count() == 0


async def test_undecodable_message_is_poisoned_without_invocation(make_setup: MakeSetup) -> None:
    setup = await make_setup()
    await setup.queue.send_message("not base64 {}")

    async def poisoned() -> bool:
        return bool(await setup.poison_texts())

    await setup.runner.run_until(poisoned, timeout=10)

    assert setup.recorder.messages == []
    assert await setup.poison_texts() == ["not base64 {}"]


async def test_none_encoding_passes_the_raw_text(make_setup: MakeSetup, tmp_path: Path) -> None:
    setup = await make_setup(host_json=write_host_json(tmp_path / "host.json", messageEncoding="none"))
    await setup.queue.send_message("plain text é")

    await setup.runner.run_until(lambda: bool(setup.recorder.messages), timeout=10)

    assert setup.recorder.messages[0].get_body() == "plain text é".encode()


async def test_timeout_cancels_and_releases_the_message_in_flight(make_setup: MakeSetup) -> None:
    async def hang(_: func.QueueMessage) -> None:
        await asyncio.Event().wait()

    setup = await make_setup(Recorder(on_message=hang))
    await setup.send("stuck")

    with pytest.raises(TimeoutError, match="condition not met within 1 s"):
        await setup.runner.run_until(lambda: False, timeout=1)

    assert setup.runner.in_flight == 0
    # Released, not left invisible for the 10-minute lease: another worker can have it at once.
    (message,) = await setup.queue.peek_messages(max_messages=1)
    assert message.content == encode("stuck")


async def test_cancelled_run_hands_its_message_to_another_runner(make_setup: MakeSetup) -> None:
    started = asyncio.Event()

    async def hang(_: func.QueueMessage) -> None:
        started.set()
        await asyncio.Event().wait()

    crashed = await make_setup(Recorder(on_message=hang), name="crashed")
    survivor = await make_setup(name="survivor")
    await crashed.send("handed over")
    run = asyncio.create_task(crashed.runner.run_until(lambda: False, timeout=30))
    await started.wait()

    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await survivor.runner.run_until(lambda: bool(survivor.recorder.messages), timeout=5)

    (message,) = survivor.recorder.messages
    assert message.get_body() == b"handed over"
    assert message.dequeue_count == 2


async def test_two_runners_share_a_queue_and_each_message_runs_once(make_setup: MakeSetup) -> None:
    recorder = Recorder()
    first = await make_setup(recorder, name="first")
    second = await make_setup(recorder, name="second")
    for n in range(20):
        await first.send(f"m{n}")

    await asyncio.gather(first.runner.drain(timeout=15), second.runner.drain(timeout=15))

    assert sorted(recorder.bodies()) == sorted(f"m{n}" for n in range(20))
    assert first.runner.stats.succeeded + second.runner.stats.succeeded == 20


async def test_timer_fires_on_schedule_with_a_timer_request(make_setup: MakeSetup) -> None:
    setup = await make_setup(timer=True)

    await setup.runner.run_until(lambda: len(setup.recorder.timers) >= 2, timeout=5)

    assert all(isinstance(timer, func.TimerRequest) for timer in setup.recorder.timers)
    assert [timer.past_due for timer in setup.recorder.timers] == [False, False]
    assert setup.runner.stats.timer_fired == 2


async def test_timer_failure_is_counted_and_the_runner_keeps_running(make_setup: MakeSetup) -> None:
    setup = await make_setup(Recorder(on_timer=fail), timer=True)
    await setup.send("still served")

    await setup.runner.run_until(
        lambda: setup.runner.stats.timer_failed >= 2 and setup.runner.stats.succeeded == 1, timeout=5
    )

    assert setup.recorder.bodies() == ["still served"]


async def test_fire_timer_invokes_the_timer_function_now(make_setup: MakeSetup) -> None:
    setup = await make_setup()

    assert await setup.runner.fire_timer() is True

    (timer,) = setup.recorder.timers
    assert timer.past_due is False


async def test_get_functions_is_called_once_per_app(
    runner_azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(Recorder())
    calls = 0
    original = app.get_functions

    def counting() -> list[Function]:
        nonlocal calls
        calls += 1
        return original()

    monkeypatch.setattr(app, "get_functions", counting)
    environ = {"TEST_QUEUE": "unused", "TEST_SCHEDULE": "0 0 0 * * *"}

    for name in ("one", "two"):
        runner = QueueRunner(
            app=app, connection_string=runner_azurite.connection_string, environ=environ, name=name
        )
        await runner.aclose()

    assert calls == 1
    assert [f.get_function_name() for f in functions_of(app)] == ["on_message", "on_timer"]


def test_missing_app_setting_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="needs app setting TEST_QUEUE, which is not set"):
        QueueRunner(
            app=make_app(Recorder()),
            connection_string="UseDevelopmentStorage=true",
            environ={"TEST_SCHEDULE": "* * * * * *"},
        )


def test_bad_schedule_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="function on_timer: NCRONTAB '0 0 25 \\* \\* \\*': hour"):
        QueueRunner(
            app=make_app(Recorder()),
            connection_string="UseDevelopmentStorage=true",
            environ={"TEST_QUEUE": "q", "TEST_SCHEDULE": "0 0 25 * * *"},
        )


def test_app_indexed_elsewhere_is_a_clear_error() -> None:
    app = make_app(Recorder())
    app.get_functions()

    with pytest.raises(RuntimeError, match="functions_of"):
        functions_of(app)


async def test_a_message_leased_by_a_killed_worker_returns_after_its_lease_with_dequeue_count_raised(
    make_setup: MakeSetup, runner_azurite: Azurite, host_json: Path
) -> None:
    setup = await make_setup()
    await setup.send("crash me")
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "tests.local.host.lease_worker", runner_azurite.connection_string, setup.queue.queue_name),
        *(str(host_json), "3"),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert worker.stdout is not None
        # The worker prints the dequeue count it was handed once its function is running.
        started = await asyncio.wait_for(worker.stdout.readline(), 30)
        assert started == b"invoked 1\n", "the worker never invoked its function"
        worker.send_signal(signal.SIGKILL)  # mid-invocation: no chance to hand the message back
        await asyncio.wait_for(worker.wait(), 10)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    killed_at = time.monotonic()

    assert await setup.queue.peek_messages() == []  # still leased by the dead process
    await setup.runner.run_until(lambda: bool(setup.recorder.messages), timeout=15)

    (message,) = setup.recorder.messages
    assert message.get_body() == b"crash me"
    assert message.dequeue_count == 2
    assert time.monotonic() - killed_at < 3 + 2  # back once the 3 s lease ran out, not 10 minutes


async def test_an_invocation_longer_than_the_lease_keeps_its_message_from_other_runners(
    make_setup: MakeSetup, runner_azurite: Azurite, host_json: Path
) -> None:
    invoked = asyncio.Event()

    async def slow(_: object) -> None:
        invoked.set()
        await asyncio.sleep(3.5)

    first = await make_setup(Recorder(on_message=slow), name="first")
    first_runner = QueueRunner(
        app=make_app(first.recorder),
        connection_string=runner_azurite.connection_string,
        environ={"TEST_QUEUE": first.queue.queue_name, "TEST_SCHEDULE": "0 0 0 1 1 *"},
        host_json=host_json,
        timer=False,
        name="first",
        lease_seconds=1,
    )
    second = await make_setup(name="second")
    await first.send("long one")
    try:
        running = asyncio.create_task(
            first_runner.run_until(lambda: first_runner.stats.succeeded == 1, timeout=10)
        )
        await asyncio.wait_for(invoked.wait(), 10)
        # The second runner polls for the whole invocation, well past the 1 s lease.
        await second.runner.run_until(running.done, timeout=10)
        await running
    finally:
        await first_runner.aclose()

    assert second.recorder.messages == []  # renewed at half the lease, never visible meanwhile
    assert await first.count() == 0


async def test_proxy_settings_in_the_environment_do_not_divert_the_runner(
    make_setup: MakeSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = await make_setup()
    await setup.send("through no proxy")
    # A proxy that does not exist: a client that read the environment would fail to reach Azurite.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)

    await setup.runner.run_until(lambda: setup.runner.stats.succeeded == 1, timeout=10)

    assert [message.get_body() for message in setup.recorder.messages] == [b"through no proxy"]
