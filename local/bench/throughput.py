"""Throughput against the floor: alternating rounds of each side, on loopback and through latency proxies."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from local.bench.instruments import CpuClock, Scenario, Side, cpu_ratio, ratio
from local.bench.profiling import profile_app
from local.bench.rounds import Round, app_round, floor_round, plain_round, queued_floor_round
from local.bench.services import emulator_process, latency_proxies, submit_jobs
from local.host.azurite import Azurite

__all__ = ["Options", "throughput"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    jobs: int
    documents: int
    concurrency: int
    rounds: int
    language_delay: float
    storage_delay: float
    profile: bool


async def throughput(options: Options) -> None:
    # Azurite on a temporary directory, not in memory: in memory, its queue service's garbage
    # collection (every 60 s) stalls both its services for seconds once thousands of messages have
    # come and gone (33 s after 6,000), and the round it meets, of any side, runs at a fifth.
    with tempfile.TemporaryDirectory(prefix="bench-azurite-") as data:
        await _throughput(options, Path(data))


async def _throughput(options: Options, data: Path) -> None:
    async with (
        Azurite.start(location=data) as azurite,
        emulator_process() as (language_url, language_pid),
    ):
        clock = CpuClock({"azurite": azurite.pid, "language": language_pid})
        direct = Scenario(
            name="loopback",
            language_url=language_url,
            blob_url=azurite.blob_endpoint,
            queue_url=azurite.queue_endpoint,
        )
        job_ids = await submit_jobs(language_url, options.jobs, options.documents)
        print(
            f"throughput: {options.jobs} jobs x {options.documents} documents x 2 tasks, finished at their "
            f"first poll; medians of {options.rounds} alternating rounds; CPU per job of this process "
            "(bench), Azurite and the Language emulator"
        )
        print(
            "  app:          function_app.poll_job under local.host.runner.QueueRunner (host.json "
            "batchSize and newBatchThreshold), one message per job: receive, poll, archive, delete"
        )
        print(
            f"  floor:        one aiohttp session, {options.concurrency} jobs at once: GET every page, "
            "PUT the task blobs at once, then the manifest; no queue, no SDK"
        )
        print("  queued floor: the floor's work as the function under the same runner: the app's ceiling")
        if options.profile:
            await profile_app(direct, job_ids, azurite.connection_string, clock)
            return
        await compare(direct, job_ids, azurite.connection_string, clock, options)
        async with latency_proxies(
            direct, language_delay=options.language_delay, storage_delay=options.storage_delay
        ) as proxied:
            print(
                f"  latency: +{options.language_delay * 1000:g} ms per Language request, "
                f"+{options.storage_delay * 1000:g} ms per blob/queue request (local.bench.latency proxies)"
            )
            await compare(proxied, job_ids, azurite.connection_string, clock, options)


async def compare(
    scenario: Scenario, job_ids: list[str], direct: str, clock: CpuClock, options: Options
) -> None:
    app, plain, floor, queued = Side("app"), Side("plain"), Side("floor"), Side("queued floor")
    for number in range(1, options.rounds + 1):
        round_ = Round(scenario=scenario, job_ids=job_ids, direct=direct, number=number, clock=clock)
        await app_round(round_, app)
        await plain_round(round_, plain)
        await floor_round(round_, floor, concurrency=options.concurrency)
        await queued_floor_round(round_, queued)
    print(f"{scenario.name}:")
    for side in (app, plain, floor, queued):
        print(f"  {side.summary()}")
    print(
        f"  app/plain {ratio(app, plain):.2f} (CPU {cpu_ratio(app, plain):.2f})   "
        f"app/floor {ratio(app, floor):.2f}   app/queued floor {ratio(app, queued):.2f}   "
        f"queued floor/floor {ratio(queued, floor):.2f}   (medians of the rounds' own ratios)"
    )
