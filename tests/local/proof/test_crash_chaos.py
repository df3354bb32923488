"""The crash-chaos run, small enough for every `make test` (`make chaos` runs 1,000 jobs): worker
processes SIGKILLed mid-invocation and restarted, storage stopped and restarted, some of the app's
own messages lost, duplicates, Language faults, with EVENTS_QUEUE set; judged by storage alone
(archive and events). The full run's numbers are in the README."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from local.host.azurite import Azurite
from local.host.process import WorkerProcess
from local.proof.chaos import run_chaos
from local.proof.plan import LIFECYCLES, ChaosPlan

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

# The same lifecycles, the long-running ones shorter, so the run takes about half a minute.
QUICK_LIFECYCLES = tuple(
    dataclasses.replace(cycle, running_seconds=min(cycle.running_seconds, 8.0)) for cycle in LIFECYCLES
)
PLAN = ChaosPlan(
    jobs=80,
    kills=5,
    kill_every=1.5,
    drops=3,
    drop_every=1.5,
    outages=1,
    outage_seconds=3.0,
    first_outage_after=4.0,
    timeout=90.0,
    lifecycles=QUICK_LIFECYCLES,
)


async def test_nothing_is_lost_or_corrupt_when_workers_are_killed_and_storage_goes_down(
    tmp_path: Path,
) -> None:
    report = await run_chaos(PLAN, workdir=tmp_path)

    print(report.summary())
    verdict = report.verdict
    assert verdict.lost == []
    assert verdict.corrupt == {}
    assert verdict.ok, verdict.problems()
    assert verdict.archived == PLAN.jobs
    events = verdict.events  # EVENTS_QUEUE is set: every archived job announced, each event sound
    assert events is not None
    assert events.announced == PLAN.jobs
    assert events.unannounced == []
    assert events.malformed == []
    assert events.orphans == []
    assert events.duplicates <= PLAN.jobs / 2
    assert report.kills >= PLAN.kills
    assert report.kills_in_flight >= 1, "no kill landed while an invocation was running"
    assert report.outages >= PLAN.outages
    assert report.drops >= 1, "no next-poll message was lost: the sweep's re-drive went unexercised"
    assert report.ok


async def test_a_worker_is_never_started_twice_so_no_process_is_orphaned(
    tmp_path: Path, azurite: Azurite
) -> None:
    environ = {
        "LANGUAGE_ENDPOINT": "http://127.0.0.1:9",
        "LANGUAGE_API_KEY": "unused",
        "AzureWebJobsStorage": azurite.connection_string,
        "JOBS_QUEUE": "never-started-twice",
    }
    worker = WorkerProcess(name="once", workdir=tmp_path, environ=environ, timer=False, lease=5)
    await worker.start()
    try:
        assert worker.alive
        with pytest.raises(RuntimeError, match="already running"):
            await worker.start()
    finally:
        await worker.stop()

    assert not worker.alive
