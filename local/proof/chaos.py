"""``make chaos``: nothing is lost when the machine dies, shown on this machine.

Azurite keeps its data on disk and sits behind latency proxies (a few ms per request, so that kills
land between two storage writes); the Language emulator injects 429s, 5xx, resets, slow and cut-off
answers. Jobs of varied lifecycles (finished at the first poll, running for several polls, paged
results, failed, partiallyCompleted, a few the service no longer knows) are enqueued with 10 % duplicate
deliveries and a few malformed messages. Two or more worker processes run the real
``function_app`` through the local queue runner (``local.host.worker``); they are SIGKILLed at
random instants while an invocation is in flight and restarted, the sweep fires every few seconds,
and Azurite is stopped for several seconds, more than once. The run ends when the work is done,
and is judged by storage alone (``local.proof.judge``).

    python -m local.proof.chaos --jobs 1000          # what `make chaos` runs
    python -m local.proof.chaos --jobs 80 --kills 3 --outages 1

Exit status 0 only when nothing was lost or corrupt and every planned kill and outage happened.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import aiohttp
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient, ContainerClient
from azure.storage.queue.aio import QueueClient

from local.bench.latency import LatencyProxy
from local.emulator import EmulatorConfig, serve
from local.host.azurite import Azurite, connection_string
from local.host.process import WorkerProcess, run_folder
from local.proof.judge import Expectation, Verdict, judge
from local.proof.plan import API_KEY, BAD_MESSAGES, FAULTS, ChaosPlan, ChaosReport
from local.proof.workload import drop_app_message, enqueue_messages, purge, submit_jobs

__all__ = ["run_chaos"]

_log = logging.getLogger("local.chaos")

_PAGE_SIZE: Final = 10
_STATUS_WAIT_SECONDS: Final = 2.0  # how long a kill waits for a worker with an invocation in flight
_CHECK_SECONDS: Final = 1.0


async def run_chaos(plan: ChaosPlan, *, workdir: Path) -> ChaosReport:
    """Run the whole crash-chaos scenario in ``workdir`` (Azurite's data and the workers' logs)."""
    rng = random.Random(plan.seed)
    azurite = await asyncio.to_thread(Azurite.start_sync, location=workdir / "azurite")
    try:
        config = EmulatorConfig(
            api_key=API_KEY,
            faults=FAULTS,
            seed=plan.seed,
            not_started_seconds=0,
            running_seconds=0,
            page_size=_PAGE_SIZE,
        )
        async with (
            LatencyProxy.start(upstream_port=azurite.blob_port, delay=plan.storage_latency) as blob_proxy,
            LatencyProxy.start(upstream_port=azurite.queue_port, delay=plan.storage_latency) as queue_proxy,
            serve(config) as emulator,
            aiohttp.ClientSession() as http,
        ):
            environ = {
                "LANGUAGE_ENDPOINT": emulator.base_url,
                "LANGUAGE_API_KEY": API_KEY,
                "AzureWebJobsStorage": connection_string(blob_proxy.port, queue_proxy.port),
                "ARCHIVE_CONTAINER": "chaos-archive",
                "JOBS_QUEUE": "chaos-jobs",
                "EVENTS_QUEUE": "chaos-events",
                "POLL_INITIAL_DELAY_SECONDS": "1",
                "POLL_MAX_DELAY_SECONDS": "4",
                "SWEEP_SCHEDULE": plan.sweep_schedule,
                "SWEEP_GRACE_SECONDS": str(plan.sweep_grace_seconds),
                # Crash safety, not the budget, is judged here: its blob is in play, its limit is not.
                "LANGUAGE_MAX_REQUESTS_PER_MINUTE": "60000",
            }
            jobs = await submit_jobs(http, emulator.base_url, plan)
            await purge(http, emulator.base_url, [job_id for job_id, cycle in jobs.items() if cycle.purge])
            expected = {
                job_id: Expectation(statuses=cycle.statuses, documents=cycle.documents)
                for job_id, cycle in jobs.items()
            }
            messages = await enqueue_messages(
                azurite.connection_string, environ["JOBS_QUEUE"], list(jobs), plan, rng
            )
            report = ChaosReport(
                plan=plan,
                verdict=Verdict(jobs=len(jobs)),
                messages=messages,
                lifecycles={cycle.name: sum(c is cycle for c in jobs.values()) for cycle in plan.lifecycles},
            )
            workers = [
                WorkerProcess(
                    name=f"worker-{n}",
                    workdir=workdir,
                    environ=environ,
                    timer=n == 0,
                    lease=plan.lease_seconds,
                )
                for n in range(plan.workers)
            ]
            started = time.monotonic()
            try:
                for worker in workers:
                    await worker.start()
                last_fault = await _orchestrate(
                    plan,
                    rng,
                    azurite,
                    workers,
                    report,
                    http=http,
                    emulator_url=emulator.base_url,
                    environ=environ,
                )
            finally:
                await asyncio.gather(*(worker.stop() for worker in workers))
                report.elapsed = time.monotonic() - started
            report.verdict = await judge(
                connection_string=azurite.connection_string,
                archive_container=environ["ARCHIVE_CONTAINER"],
                ledger_container=f"{environ['ARCHIVE_CONTAINER']}-ledger",
                jobs_queue=environ["JOBS_QUEUE"],
                expected=expected,
                bad_messages=BAD_MESSAGES,
                events=(environ["EVENTS_QUEUE"], _container_url(environ)),
            )
            last_archive = await _last_archive(azurite.connection_string, environ["ARCHIVE_CONTAINER"])
            if last_archive is not None:
                report.last_fault_to_last_archive = max(0.0, last_archive - last_fault)
            if not report.verdict.ok:
                for worker in workers:
                    _log.warning("last lines of %s:\n%s", worker.name, worker.log_tail())
            return report
    finally:
        await asyncio.to_thread(azurite.stop)


async def _orchestrate(
    plan: ChaosPlan,
    rng: random.Random,
    azurite: Azurite,
    workers: Sequence[WorkerProcess],
    report: ChaosReport,
    *,
    http: aiohttp.ClientSession,
    emulator_url: str,
    environ: Mapping[str, str],
) -> float:
    """Kill, restart, take storage down and purge jobs until the work is over or time is up.

    Returns the wall-clock time of the last fault."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + plan.timeout
    next_kill = started + rng.expovariate(1 / plan.kill_every)
    next_outage = started + plan.first_outage_after
    next_drop = started + rng.expovariate(1 / plan.drop_every)
    next_check = started
    last_fault = time.time()
    restarts: set[asyncio.Task[None]] = set()
    progress = _Progress(
        connection_string=azurite.connection_string,
        environ=environ,
        jobs=report.verdict.jobs,
        stall=plan.lease_seconds + plan.sweep_grace_seconds + 10,
    )
    while loop.time() < deadline:
        now = loop.time()
        faulting = report.kills < plan.kills or report.outages < plan.outages or report.drops < plan.drops
        if faulting and report.outages < plan.outages and now >= next_outage:
            # Storage down for a while: every worker's requests fail (after the SDK's own retries).
            await asyncio.to_thread(azurite.suspend)
            await asyncio.sleep(plan.outage_seconds)
            await asyncio.to_thread(azurite.resume)
            report.outages += 1
            last_fault = time.time()
            next_outage = loop.time() + plan.outage_every
            _log.info("outage %d: storage was down for %g s", report.outages, plan.outage_seconds)
            continue
        if faulting and report.kills < plan.kills and now >= next_kill:
            worker, mid_invocation = await pick_victim(workers, rng)
            if worker is not None:  # else every worker is down, waiting for its restart
                await worker.kill()
                report.kills += 1
                report.kills_in_flight += mid_invocation
                last_fault = time.time()
                _log.info("kill %d: %s (mid-invocation: %s)", report.kills, worker.name, mid_invocation)
                restart = asyncio.create_task(restart_after(worker, rng.uniform(0.2, 1.5)))
                restarts.add(restart)
                restart.add_done_callback(restarts.discard)
            next_kill = loop.time() + rng.expovariate(1 / plan.kill_every)
        if faulting and report.drops < plan.drops and now >= next_drop:
            if await drop_app_message(azurite.connection_string, environ["JOBS_QUEUE"]):
                report.drops += 1
                last_fault = time.time()
            next_drop = loop.time() + rng.expovariate(1 / plan.drop_every)
        if loop.time() >= next_check:
            if await progress.over():
                break  # a run too short for its planned faults fails on their count
            next_check = loop.time() + _CHECK_SECONDS
        await asyncio.sleep(
            min(_CHECK_SECONDS, max(0.05, min(next_kill, next_outage, next_drop) - loop.time()))
        )
    if restarts:
        await asyncio.wait(restarts)
    return last_fault


async def pick_victim(
    workers: Sequence[WorkerProcess], rng: random.Random
) -> tuple[WorkerProcess | None, bool]:
    """A running worker with an invocation in flight, if one shows up soon; else any running one."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + _STATUS_WAIT_SECONDS
    while loop.time() < give_up:
        busy = [worker for worker in workers if worker.alive and worker.in_flight() > 0]
        if busy:
            return rng.choice(busy), True
        await asyncio.sleep(0.01)
    alive = [worker for worker in workers if worker.alive]
    return (rng.choice(alive) if alive else None), False


async def restart_after(worker: WorkerProcess, after: float) -> None:
    await asyncio.sleep(after)
    await worker.start()


class _Progress:
    """Whether the work is over, read from storage directly (not through the latency proxies).

    Over when every job has its manifest and nothing is pending or queued; or when nothing has been
    pending or queued for ``stall`` seconds although manifests are missing (those jobs are lost).
    """

    def __init__(
        self, *, connection_string: str, environ: Mapping[str, str], jobs: int, stall: float
    ) -> None:
        self._connection_string = connection_string
        self._archive = environ["ARCHIVE_CONTAINER"]
        self._queue = environ["JOBS_QUEUE"]
        self._jobs = jobs
        self._stall = stall
        self._idle_since: float | None = None

    async def over(self) -> bool:
        now = asyncio.get_running_loop().time()
        try:
            async with QueueClient.from_connection_string(
                self._connection_string, self._queue, retry_total=0
            ) as queue:
                queued = (await queue.get_queue_properties()).approximate_message_count or 0
            if queued:
                self._idle_since = None
                return False
            async with BlobServiceClient.from_connection_string(
                self._connection_string, retry_total=0
            ) as blobs:
                if [b async for b in blobs.get_container_client(f"{self._archive}-ledger").list_blobs()]:
                    self._idle_since = None
                    return False
                archive = blobs.get_container_client(self._archive)
                manifests = len([b async for b in archive.list_blobs() if b.name.endswith("/manifest.json")])
        except ResourceNotFoundError:
            return False
        except AzureError:
            return False  # storage is down right now
        if manifests >= self._jobs:
            return True
        self._idle_since = self._idle_since if self._idle_since is not None else now
        return now - self._idle_since >= self._stall


def _container_url(environ: Mapping[str, str]) -> str:
    """The archive container's URL as the app addresses it (through the latency proxy)."""
    return ContainerClient.from_connection_string(
        environ["AzureWebJobsStorage"], environ["ARCHIVE_CONTAINER"]
    ).url.rstrip("/")


async def _last_archive(connection_string: str, container: str) -> float | None:
    """When the last manifest was written (storage keeps it to the second)."""
    async with BlobServiceClient.from_connection_string(connection_string) as blobs:
        times = [
            b.last_modified.timestamp()
            async for b in blobs.get_container_client(container).list_blobs()
            if b.name.endswith("/manifest.json")
        ]
    return max(times, default=None)


async def _main(plan: ChaosPlan, keep: bool) -> int:
    with run_folder("chaos-", keep=keep) as workdir:
        report = await run_chaos(plan, workdir=workdir)
        print(report.summary())
        for line in report.verdict.problems():
            print(f"  {line}")
        if keep:
            print(f"kept: {workdir}")
    return 0 if report.ok else 1


def main() -> int:
    defaults = ChaosPlan()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=defaults.jobs)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--kills", type=int, default=defaults.kills, help="SIGKILLs at least")
    parser.add_argument("--outages", type=int, default=defaults.outages, help="storage outages")
    parser.add_argument("--latency-ms", type=float, default=defaults.storage_latency * 1000)
    parser.add_argument("--timeout", type=float, default=defaults.timeout, help="seconds for the whole run")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--keep", action="store_true", help="keep Azurite's data and the workers' logs")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every kill and outage")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    _log.setLevel(logging.INFO if args.verbose else logging.WARNING)
    plan = ChaosPlan(
        jobs=args.jobs,
        workers=args.workers,
        kills=args.kills,
        outages=args.outages,
        storage_latency=args.latency_ms / 1000,
        timeout=args.timeout,
        seed=args.seed,
    )
    return asyncio.run(_main(plan, args.keep))


if __name__ == "__main__":
    sys.exit(main())
