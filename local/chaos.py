"""``make chaos``: nothing is lost when the machine dies, shown on this machine.

Azurite keeps its data on disk and sits behind latency proxies (a few ms per request, so that kills
land between two storage writes); the Language emulator injects 429s, 5xx, resets, slow and cut-off
answers. Jobs of varied lifecycles (finished at the first poll, running for several polls, paged
results, failed, partiallyCompleted, a few purged while tracked) are enqueued with 10 % duplicate
deliveries and a few malformed messages. Two or more worker processes run the real
``function_app`` through the local queue runner (``local.chaos_worker``); they are SIGKILLed at
random instants while an invocation is in flight and restarted, the sweep fires every few seconds,
and Azurite is stopped for several seconds, more than once. The run ends when the work is done,
and is judged by storage alone (``local.judge``).

    python -m local.chaos --jobs 1000          # what `make chaos` runs
    python -m local.chaos --jobs 80 --kills 3 --outages 1

Exit status 0 only when nothing was lost or corrupt and every planned kill and outage happened.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import aiohttp
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient, ContainerClient
from azure.storage.queue.aio import QueueClient

from local.azurite import Azurite, connection_string
from local.emulator import EmulatorConfig, Faults, serve
from local.judge import Expectation, Verdict, judge
from local.latency import LatencyProxy
from local.upstream import enqueue, submit_job

__all__ = ["LIFECYCLES", "ChaosPlan", "ChaosReport", "Lifecycle", "WorkerProcess", "run_chaos"]

_log = logging.getLogger("local.chaos")

_KEY: Final = "chaos-key-0123456789abcdef"
_TEXT: Final = "Contoso Ltd. shipped to Seattle and the Pacific Northwest on March 15, 2025."
_PREBUILT: Final = {
    "kind": "EntityRecognition",
    "taskName": "prebuilt",
    "parameters": {"modelVersion": "latest"},
}
_CUSTOM: Final = {
    "kind": "CustomEntityRecognition",
    "taskName": "regions",
    "parameters": {"projectName": "MyProject", "deploymentName": "MyDeployment"},
}
_MISSING_PROJECT: Final = {
    "kind": "CustomEntityRecognition",
    "taskName": "missing",
    "parameters": {"projectName": "NoSuchProject", "deploymentName": "none"},
}
BAD_MESSAGES: Final = (
    "not-a-uuid",
    '{"jobId": "7"}',
    "{broken",
    json.dumps({"operationLocation": f"https://evil.example/language/analyze-text/jobs/{uuid.UUID(int=7)}"}),
)
# Language-side faults on every GET: rare enough that the run ends, frequent enough to matter.
FAULTS: Final = Faults(
    rate_429=0.03,
    retry_after_seconds=1,
    rate_5xx=0.03,
    rate_reset=0.02,
    rate_slow=0.005,
    slow_seconds=2.0,
    rate_malformed=0.02,
)
_PAGE_SIZE: Final = 10
_CHECK_SECONDS: Final = 1.0
_STATUS_WAIT_SECONDS: Final = 2.0  # how long a kill waits for a worker with an invocation in flight
_STOP_SECONDS: Final = 20.0


@dataclass(frozen=True, kw_only=True)
class Lifecycle:
    """One kind of job: its share of the run, what is submitted, how long it runs, how it must end."""

    name: str
    share: float
    documents: int
    tasks: tuple[Mapping[str, Any], ...]
    statuses: frozenset[str]
    not_started_seconds: float = 0.0
    running_seconds: float = 0.0
    purge: bool = False  # purged by the service once the app has seen it running


LIFECYCLES: Final = (
    Lifecycle(
        name="first-poll",
        share=0.50,
        documents=3,
        tasks=(_PREBUILT, _CUSTOM),
        statuses=frozenset({"succeeded"}),
    ),
    Lifecycle(
        name="running",
        share=0.08,
        documents=3,
        tasks=(_PREBUILT, _CUSTOM),
        statuses=frozenset({"succeeded"}),
        not_started_seconds=2,
        running_seconds=10,
    ),
    Lifecycle(
        name="running-long",
        share=0.07,
        documents=3,
        tasks=(_PREBUILT, _CUSTOM),
        statuses=frozenset({"succeeded"}),
        not_started_seconds=3,
        running_seconds=40,
    ),
    # 25 documents (a submission's most) at 10 a page: three result pages per poll, merged.
    Lifecycle(
        name="paged",
        share=0.12,
        documents=25,
        tasks=(_PREBUILT, _CUSTOM),
        statuses=frozenset({"succeeded"}),
        running_seconds=3,
    ),
    Lifecycle(
        name="failed", share=0.06, documents=3, tasks=(_MISSING_PROJECT,), statuses=frozenset({"failed"})
    ),
    Lifecycle(
        name="partial",
        share=0.14,
        documents=3,
        tasks=(_PREBUILT, _MISSING_PROJECT),
        statuses=frozenset({"partiallyCompleted"}),
        running_seconds=2,
    ),
    # Seen running by the app (its ledger record says so), then purged by the service: expired.
    Lifecycle(
        name="purged",
        share=0.03,
        documents=3,
        tasks=(_PREBUILT, _CUSTOM),
        statuses=frozenset({"expired"}),
        running_seconds=3600,
        purge=True,
    ),
)


@dataclass(frozen=True, kw_only=True)
class ChaosPlan:
    jobs: int = 1000
    workers: int = 2
    duplicate_share: float = 0.10
    kills: int = 12  # at least this many SIGKILLs before the faults stop
    kill_every: float = 2.0  # mean seconds between kills
    drops: int = 15  # at most, of the app's own next-poll messages deleted behind its back (lost)
    drop_every: float = 2.0  # mean seconds between drops
    outages: int = 2
    outage_seconds: float = 4.0
    first_outage_after: float = 8.0
    outage_every: float = 15.0
    storage_latency: float = 0.003  # added to each storage request
    lease_seconds: int = 8
    sweep_schedule: str = "*/4 * * * * *"
    sweep_grace_seconds: int = 6
    timeout: float = 540.0
    seed: int = 20261202
    lifecycles: tuple[Lifecycle, ...] = LIFECYCLES


@dataclass(kw_only=True)
class ChaosReport:
    plan: ChaosPlan
    verdict: Verdict
    kills: int = 0
    kills_in_flight: int = 0  # kills that hit a worker with an invocation running
    drops: int = 0
    outages: int = 0
    messages: int = 0
    elapsed: float = 0.0
    last_fault_to_last_archive: float | None = None
    lifecycles: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        # Drops are best effort (only a message visible at that instant can be taken), so they
        # are reported but not required.
        return self.verdict.ok and self.kills >= self.plan.kills and self.outages >= self.plan.outages

    def summary(self) -> str:
        v = self.verdict
        settle = (
            "n/a" if self.last_fault_to_last_archive is None else f"{self.last_fault_to_last_archive:.1f} s"
        )
        return "\n".join(
            [
                f"chaos: {v.jobs} jobs ({', '.join(f'{n} {k}' for k, n in self.lifecycles.items())}), "
                f"{self.messages} messages, {self.plan.workers} workers, "
                f"+{self.plan.storage_latency * 1000:g} ms per storage request",
                f"kills {self.kills} ({self.kills_in_flight} mid-invocation), outages {self.outages} "
                f"({self.plan.outage_seconds:g} s each), app messages dropped {self.drops}, "
                f"jobs {v.jobs}, archived {v.archived}, "
                f"lost {len(v.lost)}, corrupt {len(v.corrupt)}",
                f"manifests {v.manifests}, pending ledger records {len(v.pending)}, left on the jobs queue "
                f"{v.queued}, poison {v.poisoned} (unaccounted {len(v.unaccounted_poison)})",
                f"last fault -> last archive {settle}, whole run {self.elapsed:.1f} s: "
                + ("PASS" if self.ok else "FAIL"),
            ]
        )


class WorkerProcess:
    """A ``local.chaos_worker`` process that can be killed and started again."""

    def __init__(
        self, *, name: str, workdir: Path, environ: Mapping[str, str], timer: bool, lease: int
    ) -> None:
        self.name = name
        self._status = workdir / f"{name}.status.json"
        self._log_path = workdir / f"{name}.log"
        self._environ = dict(environ)
        self._timer = timer
        self._lease = lease
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running: a second process would be orphaned")
        self._status.unlink(missing_ok=True)
        self._log = self._log or self._log_path.open("ab")  # closed by stop()
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "local.chaos_worker", "--name", self.name, "--status", str(self._status)),
            *("--lease-seconds", str(self._lease), *(["--timer"] if self._timer else [])),
            env={**os.environ, **self._environ},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )

    def status(self) -> dict[str, int]:
        """What the running process last reported (see ``local.chaos_worker``); empty when unknown."""
        if self._process is None:
            return {}
        try:
            status: dict[str, int] = json.loads(self._status.read_text())
        except (OSError, ValueError):
            return {}
        return status if status.get("pid") == self._process.pid else {}

    def in_flight(self) -> int:
        """Invocations running now, as the worker last reported them (0 when unknown)."""
        return self.status().get("inFlight", 0)

    async def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGKILL)
            await self._process.wait()

    async def stop(self) -> None:
        """SIGTERM (graceful: in-flight work finishes), SIGKILL after a while; closes the log."""
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._process.wait(), _STOP_SECONDS)
            except TimeoutError:
                await self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


async def run_chaos(plan: ChaosPlan, *, workdir: Path) -> ChaosReport:
    """Run the whole crash-chaos scenario in ``workdir`` (Azurite's data and the workers' logs)."""
    rng = random.Random(plan.seed)
    azurite = await asyncio.to_thread(Azurite.start_sync, location=workdir / "azurite")
    try:
        config = EmulatorConfig(
            api_key=_KEY,
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
                "LANGUAGE_API_KEY": _KEY,
                "AzureWebJobsStorage": connection_string(blob_proxy.port, queue_proxy.port),
                "ARCHIVE_CONTAINER": "chaos-archive",
                "JOBS_QUEUE": "chaos-jobs",
                "POLL_INITIAL_DELAY_SECONDS": "1",
                "POLL_MAX_DELAY_SECONDS": "4",
                "SWEEP_SCHEDULE": plan.sweep_schedule,
                "SWEEP_GRACE_SECONDS": str(plan.sweep_grace_seconds),
                # Crash safety, not the budget, is judged here: its blob is in play, its limit is not.
                "LANGUAGE_MAX_REQUESTS_PER_MINUTE": "60000",
            }
            jobs = await _submit(http, emulator.base_url, plan)
            expected = {
                job_id: Expectation(statuses=cycle.statuses, documents=cycle.documents)
                for job_id, cycle in jobs.items()
            }
            messages = await _enqueue(azurite.connection_string, environ["JOBS_QUEUE"], list(jobs), plan, rng)
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
            purged = [job_id for job_id, cycle in jobs.items() if cycle.purge]
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
                    purged=purged,
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
    purged: Sequence[str],
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
    to_purge = set(purged)
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
            worker, mid_invocation = await _victim(workers, rng)
            if worker is not None:  # else every worker is down, waiting for its restart
                await worker.kill()
                report.kills += 1
                report.kills_in_flight += mid_invocation
                last_fault = time.time()
                _log.info("kill %d: %s (mid-invocation: %s)", report.kills, worker.name, mid_invocation)
                restart = asyncio.create_task(_restart(worker, rng.uniform(0.2, 1.5)))
                restarts.add(restart)
                restart.add_done_callback(restarts.discard)
            next_kill = loop.time() + rng.expovariate(1 / plan.kill_every)
        if faulting and report.drops < plan.drops and now >= next_drop:
            if await _drop_app_message(azurite.connection_string, environ["JOBS_QUEUE"]):
                report.drops += 1
                last_fault = time.time()
            next_drop = loop.time() + rng.expovariate(1 / plan.drop_every)
        if to_purge:
            to_purge -= await _purge_seen(http, emulator_url, azurite.connection_string, environ, to_purge)
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


async def _drop_app_message(connection_string: str, queue_name: str) -> bool:
    """Delete one of the app's own next-poll messages, as if the queue had lost it; True if one was.

    Others received on the way are handed back at once (visible again, one more dequeue each). The
    app's messages wait invisible for their delay, so an attempt often finds none.
    """
    try:
        async with QueueClient.from_connection_string(connection_string, queue_name, retry_total=0) as queue:
            batch = [m async for m in queue.receive_messages(max_messages=32, visibility_timeout=30)]
            dropped = False
            for message in batch:
                text = base64.b64decode(str(message.content)).decode("utf-8", "replace")
                if not dropped and '"_poll"' in text:
                    await queue.delete_message(message)
                    dropped = True
                else:
                    await queue.update_message(message, visibility_timeout=0)
            return dropped
    except AzureError:
        return False  # storage is down: the leased ones come back after 30 s


async def _victim(workers: Sequence[WorkerProcess], rng: random.Random) -> tuple[WorkerProcess | None, bool]:
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


async def _restart(worker: WorkerProcess, after: float) -> None:
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
                ledger = blobs.get_container_client(f"{self._archive}-ledger")
                if [b async for b in ledger.list_blobs() if b.name.endswith(".json")]:  # not the budget's
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


async def _last_archive(connection_string: str, container: str) -> float | None:
    """When the last manifest was written (storage keeps it to the second)."""
    async with BlobServiceClient.from_connection_string(connection_string) as blobs:
        times = [
            b.last_modified.timestamp()
            async for b in blobs.get_container_client(container).list_blobs()
            if b.name.endswith("/manifest.json")
        ]
    return max(times, default=None)


async def _purge_seen(
    http: aiohttp.ClientSession,
    emulator_url: str,
    connection_string: str,
    environ: Mapping[str, str],
    job_ids: set[str],
) -> set[str]:
    """Purge those of ``job_ids`` whose ledger record shows the app has seen them; the ones purged."""
    seen: set[str] = set()
    try:
        async with ContainerClient.from_connection_string(
            connection_string, f"{environ['ARCHIVE_CONTAINER']}-ledger", retry_total=0
        ) as ledger:
            for job_id in job_ids:
                with contextlib.suppress(ResourceNotFoundError):
                    record = json.loads(await (await ledger.download_blob(f"{job_id}.json")).readall())
                    if record["message"].get("_poll", {}).get("seenAt"):
                        seen.add(job_id)
    except AzureError:
        return set()  # storage is down: next time
    for job_id in seen:
        async with http.post(
            f"{emulator_url}/_emulator/jobs/{job_id}/overrides", json={"purge": True}
        ) as response:
            response.raise_for_status()
    return seen


async def _submit(http: aiohttp.ClientSession, emulator_url: str, plan: ChaosPlan) -> dict[str, Lifecycle]:
    """Submit the jobs, lifecycle by lifecycle (the emulator's timing applies to what is submitted next)."""
    counts = [int(plan.jobs * cycle.share) for cycle in plan.lifecycles]
    counts[0] += plan.jobs - sum(counts)
    gate = asyncio.Semaphore(16)
    jobs: dict[str, Lifecycle] = {}
    for cycle, count in zip(plan.lifecycles, counts, strict=True):
        timing = {"notStartedSeconds": cycle.not_started_seconds, "runningSeconds": cycle.running_seconds}
        async with http.put(f"{emulator_url}/_emulator/timing", json=timing) as response:
            response.raise_for_status()
        documents = [{"id": str(n), "language": "en", "text": _TEXT} for n in range(cycle.documents)]

        async def one(cycle: Lifecycle = cycle, documents: list[dict[str, str]] = documents) -> str:
            async with gate:
                job = await submit_job(http, emulator_url, key=_KEY, documents=documents, tasks=cycle.tasks)
            return job.job_id

        for job_id in await asyncio.gather(*(one() for _ in range(count))):
            jobs[job_id] = cycle
    return jobs


async def _enqueue(
    connection_string: str, queue_name: str, job_ids: list[str], plan: ChaosPlan, rng: random.Random
) -> int:
    """One message per job, duplicates of some, and the bad ones, in random order; their count."""
    messages = [
        json.dumps({"jobId": job_id, "correlationId": f"chaos-{n}"}) for n, job_id in enumerate(job_ids)
    ]
    messages += rng.sample(messages, int(len(job_ids) * plan.duplicate_share))
    messages += BAD_MESSAGES
    rng.shuffle(messages)
    gate = asyncio.Semaphore(16)
    async with QueueClient.from_connection_string(connection_string, queue_name) as queue:
        with contextlib.suppress(AzureError):
            await queue.create_queue()

        async def send(text: str) -> None:
            async with gate:
                await enqueue(queue, text)

        await asyncio.gather(*(send(text) for text in messages))
    return len(messages)


@contextlib.asynccontextmanager
async def _workdir(keep: bool) -> AsyncIterator[Path]:
    if keep:
        yield Path(tempfile.mkdtemp(prefix="chaos-"))
        return
    with tempfile.TemporaryDirectory(prefix="chaos-") as name:
        yield Path(name)


async def _main(plan: ChaosPlan, keep: bool) -> int:
    async with _workdir(keep) as workdir:
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
