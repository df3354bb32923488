"""``make bench``: numbers behind the performance and cost claims, measured on this machine.

1. Cold start: wall time to import ``function_app`` in a fresh interpreter (median of several
   runs), and whether the heavy ``azure.identity`` stays off that path when a key is configured.
2. Throughput against the floor: jobs finished at their first poll, archived by
   - the app: the real ``function_app.poll_job`` driven by ``local.runner.QueueRunner`` (the host's
     queue loop: batches of ``batchSize`` from host.json, a new batch at ``newBatchThreshold``, one
     receive per batch and one delete per message), one message per job;
   - the floor: the least I/O that does the same work: one aiohttp session, 16 jobs at once, that
     GETs every page of a job (following ``nextLink``), PUTs its task blobs at once and then the
     manifest (``If-None-Match: *``), with no queue, no ledger, no checks and no SDK;
   - the queued floor: the floor's work as the function under the same runner, i.e. what the
     queue's own receive and delete leave of the floor: the most the app can reach.
   Rounds alternate (app, floor, queued floor, app, ...) on loopback, then through ``local.latency``
   proxies that add a delay to each request (Language and storage apart). Each side's figure is
   the median of its rounds; a ratio is the median of the rounds' own ratios (a round's sides ran
   back to back, under the same load from the rest of the machine). Requests per job are counted
   on each side's aiohttp session; CPU per job is read for this process, Azurite and the emulator.

Azurite, the Language emulator and the proxies each run in a process of their own, so the
benchmark process holds only the side being measured. Everything runs on loopback; the numbers are
for comparison between changes, not for Azure. ``--profile`` runs two app rounds under cProfile
and prints the app's CPU by package and its top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import ContainerSasPermissions, generate_container_sas
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueClient

import function_app
from local.azurite import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, Azurite
from local.azurite import connection_string as dev_connection_string
from local.emulator.cli import READY_PREFIX
from local.runner import QueueRunner
from local.upstream import enqueue, job_message, submit_job
from shared.runtime import build_runtime, close_process_runtime, install_process_runtime
from shared.settings import load_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
_IMPORT_PROBE = (
    "import sys, time; t = time.perf_counter(); import function_app; "
    "print(time.perf_counter() - t, 'azure.identity' in sys.modules, len(sys.modules))"
)
_KEY = "bench-key"
_API_VERSION = "2024-11-01"
_JSON_TYPE = "application/json; charset=utf-8"
_STORAGE_VERSION = "2025-01-05"
_ROUND_TIMEOUT = 300.0
_STARTUP_TIMEOUT = 30.0


def _probe(source: str, env: Mapping[str, str]) -> list[str]:
    """Run ``source`` in a fresh interpreter at the project root; the words it printed."""
    return subprocess.run(  # noqa: S603 - our own interpreter and a fixed probe
        [sys.executable, "-c", source], cwd=REPO_ROOT, capture_output=True, text=True, check=True, env=env
    ).stdout.split()


def cold_start(runs: int) -> None:
    samples, identity_loaded, modules = [], set(), set()
    for _ in range(runs):
        out = _probe(_IMPORT_PROBE, {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        samples.append(float(out[0]))
        identity_loaded.add(out[1])
        modules.add(int(out[2]))
    print(
        f"cold start: import function_app  median {statistics.median(samples) * 1000:.0f} ms "
        f"(min {min(samples) * 1000:.0f}, max {max(samples) * 1000:.0f}, {runs} runs), "
        f"{max(modules)} modules, azure.identity imported: {', '.join(sorted(identity_loaded))}"
    )


_TELEMETRY_PROBE = (
    "import os, sys, time; t = time.perf_counter(); import function_app; i = time.perf_counter() - t; "
    "from shared.settings import load_settings; from shared.telemetry import configure_telemetry; "
    "t = time.perf_counter(); configure_telemetry(load_settings(os.environ)); "
    "print(i, time.perf_counter() - t, any(m.startswith('opentelemetry') for m in sys.modules))"
)


def telemetry_cold_start(runs: int) -> None:
    """Import time without and with APPLICATIONINSIGHTS_CONNECTION_STRING, and what configuring the
    Azure Monitor distro adds to the first invocation (export to a closed loopback port)."""
    base = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANGUAGE_ENDPOINT": "https://example.cognitiveservices.azure.com",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    }
    base.pop("APPLICATIONINSIGHTS_CONNECTION_STRING", None)
    telemetry = {
        **base,
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            "IngestionEndpoint=http://127.0.0.1:9/;LiveEndpoint=http://127.0.0.1:9/"
        ),
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
    }
    for label, env in (("without", base), ("with", telemetry)):
        imports, configures, loaded = [], [], set()
        for _ in range(runs):
            out = _probe(_TELEMETRY_PROBE, env)
            imports.append(float(out[0]))
            configures.append(float(out[1]))
            loaded.add(out[2])
        print(
            f"telemetry {label} APPLICATIONINSIGHTS_CONNECTION_STRING: import function_app median "
            f"{statistics.median(imports) * 1000:.0f} ms, first-invocation telemetry setup median "
            f"{statistics.median(configures) * 1000:.0f} ms ({runs} runs), "
            f"opentelemetry imported: {', '.join(sorted(loaded))}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """Where the requests go: straight to the services, or through latency proxies."""

    name: str
    language_url: str
    blob_url: str
    queue_url: str

    @property
    def connection_string(self) -> str:
        blob_port, queue_port = urlsplit(self.blob_url).port, urlsplit(self.queue_url).port
        assert blob_port is not None, "loopback endpoints name their ports"
        assert queue_port is not None, "loopback endpoints name their ports"
        return dev_connection_string(blob_port, queue_port)


@dataclass(slots=True)
class Side:
    """Rounds of one side in one scenario: jobs per second, CPU and billed requests per job."""

    name: str
    rates: list[float] = field(default_factory=list)
    cpu: dict[str, list[float]] = field(default_factory=dict)  # CPU seconds per job, per process
    calls: Counter[str] = field(default_factory=Counter)
    jobs: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def record(self, *, jobs: int, elapsed: float, cpu: Mapping[str, float], calls: Counter[str]) -> None:
        self.rates.append(jobs / elapsed)
        for process, seconds in cpu.items():
            self.cpu.setdefault(process, []).append(seconds / jobs)
        self.calls.update(calls)
        self.jobs += jobs

    def summary(self) -> str:
        rates = " ".join(f"{rate:.0f}" for rate in self.rates)
        per_job = ", ".join(f"{name} {count / self.jobs:.2f}" for name, count in sorted(self.calls.items()))
        cpu = " + ".join(f"{name} {statistics.median(v) * 1000:.1f}" for name, v in self.cpu.items())
        return f"{self.name:<13} {self.median:5.0f} jobs/s [{rates}]  CPU ms/job: {cpu}  reqs/job: {per_job}"


class CpuClock:
    """CPU seconds used by this process and by the services' processes (Linux ``/proc``), so that a
    side's cost shows even when the machine is busy and its wall time says little."""

    def __init__(self, services: Mapping[str, int]) -> None:
        self._services = dict(services)
        self._tick = os.sysconf("SC_CLK_TCK")

    def read(self) -> dict[str, float]:
        now = {"bench": time.process_time()}
        for name, pid in self._services.items():
            with contextlib.suppress(OSError):  # no /proc here: that column is left out
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                now[name] = (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime
        return now

    def since(self, start: Mapping[str, float]) -> dict[str, float]:
        return {name: seconds - start[name] for name, seconds in self.read().items() if name in start}


def _tracer(calls: Counter[str], ports: dict[int | None, str]) -> aiohttp.TraceConfig:
    async def count(_s: object, _c: SimpleNamespace, params: aiohttp.TraceRequestStartParams) -> None:
        calls[f"{ports.get(params.url.port, 'other')} {params.method}"] += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(count)
    return trace


def _ports(scenario: Scenario) -> dict[int | None, str]:
    return {
        urlsplit(scenario.language_url).port: "language",
        urlsplit(scenario.blob_url).port: "blob",
        urlsplit(scenario.queue_url).port: "queue",
    }


class Floor:
    """The least I/O that archives one job: raw aiohttp on one session, a container SAS, no SDK.

    GET every page (following ``nextLink``), PUT the task blobs at once, then the manifest with
    ``If-None-Match: *``; no checks, no ledger, no sorting.
    """

    def __init__(
        self, *, http: aiohttp.ClientSession, language_url: str, key: str, blob_url: str, container: str
    ) -> None:
        self._http = http
        self._language = language_url
        self._key = key
        self._prefix = f"{blob_url}/{container}"
        self._sas = generate_container_sas(
            DEV_ACCOUNT_NAME,
            container,
            account_key=DEV_ACCOUNT_KEY,
            permission=ContainerSasPermissions(write=True, create=True),
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )

    async def archive(self, job_id: str) -> None:
        url: str | None = f"{self._language}/language/analyze-text/jobs/{job_id}?api-version={_API_VERSION}"
        items: list[dict[str, Any]] = []
        status = None
        while url is not None:
            async with self._http.get(url, headers={"Ocp-Apim-Subscription-Key": self._key}) as response:
                response.raise_for_status()
                page = json.loads(await response.read())
            for index, item in enumerate(page["tasks"]["items"]):
                if index == len(items):
                    items.append(item)
                else:
                    results, more = items[index]["results"], item["results"]
                    results["documents"] += more["documents"]
                    results["errors"] += more["errors"]
            url, status = page.get("nextLink"), page["status"]
        blobs = [
            (
                f"{job_id}/tasks/{index:02d}-{item['kind']}.json",
                json.dumps(item, separators=(",", ":")).encode(),
            )
            for index, item in enumerate(items)
        ]
        await asyncio.gather(*(self._put(name, data) for name, data in blobs))
        manifest = {
            "jobId": job_id,
            "status": status,
            "tasks": [
                {"blob": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                for name, data in blobs
            ],
        }
        await self._put(f"{job_id}/manifest.json", json.dumps(manifest).encode(), create_only=True)

    async def _put(self, name: str, data: bytes, *, create_only: bool = False) -> None:
        headers = {
            "x-ms-blob-type": "BlockBlob",
            "x-ms-version": _STORAGE_VERSION,
            "x-ms-blob-content-type": _JSON_TYPE,
        }
        if create_only:
            headers["If-None-Match"] = "*"
        async with self._http.put(
            f"{self._prefix}/{name}?{self._sas}", data=data, headers=headers
        ) as response:
            response.raise_for_status()


@dataclass(frozen=True, slots=True, kw_only=True)
class Round:
    """What one round needs: where to send requests, which jobs, and the direct connection string
    (setup and checks go straight to Azurite, outside the measurement)."""

    scenario: Scenario
    job_ids: list[str]
    direct: str
    number: int
    clock: CpuClock

    def container(self, side: str) -> str:
        return f"{side}-{self.scenario.name}-{self.number}"

    @property
    def environ(self) -> dict[str, str]:
        return {
            "LANGUAGE_ENDPOINT": self.scenario.language_url,
            "LANGUAGE_API_KEY": _KEY,
            "AzureWebJobsStorage": self.scenario.connection_string,
            "JOBS_QUEUE": f"bench-{self.scenario.name}",
            "ARCHIVE_CONTAINER": self.container("app"),
            "SWEEP_SCHEDULE": "0 0 0 1 1 *",  # never due during a round (the runner's timer is off too)
            "LANGUAGE_MAX_REQUESTS_PER_MINUTE": "1000000",  # throughput, not the budget, is measured
        }


async def app_round(round_: Round, side: Side, *, profile: cProfile.Profile | None = None) -> None:
    """The app as deployed: function_app.poll_job under the queue runner, one message per job."""
    settings = load_settings(round_.environ)
    await _create_container(round_.direct, settings.archive_container)
    calls: Counter[str] = Counter()
    runtime = await build_runtime(settings, trace_configs=[_tracer(calls, _ports(round_.scenario))])
    await install_process_runtime(runtime)
    try:
        elapsed, cpu = await _run_queued(round_, function_app.app, profile=profile)
    finally:
        await close_process_runtime()
    await _expect_archived(round_.direct, settings.archive_container, round_.job_ids)
    if profile is None:
        side.record(jobs=len(round_.job_ids), elapsed=elapsed, cpu=cpu, calls=calls)


async def floor_round(round_: Round, side: Side, *, concurrency: int) -> None:
    """The floor: ``concurrency`` jobs at once on one session, no queue."""
    container = round_.container("floor")
    await _create_container(round_.direct, container)
    calls: Counter[str] = Counter()
    gate = asyncio.Semaphore(concurrency)
    async with _session(round_.scenario, calls) as http:
        floor = _floor(http, round_.scenario, container)

        async def one(job_id: str) -> None:
            async with gate:
                await floor.archive(job_id)

        started, cpu = time.perf_counter(), round_.clock.read()
        await asyncio.gather(*(one(job_id) for job_id in round_.job_ids))
        elapsed, used = time.perf_counter() - started, round_.clock.since(cpu)
    await _expect_archived(round_.direct, container, round_.job_ids)
    side.record(jobs=len(round_.job_ids), elapsed=elapsed, cpu=used, calls=calls)


async def queued_floor_round(round_: Round, side: Side) -> None:
    """The floor's work as the function under the same queue runner: what the host's own receive
    and delete leave of the floor, i.e. the most the app can reach under that loop."""
    container = round_.container("qfloor")
    await _create_container(round_.direct, container)
    calls: Counter[str] = Counter()
    async with _session(round_.scenario, calls) as http:
        floor = _floor(http, round_.scenario, container)
        app = func.FunctionApp()

        @app.function_name("floor_job")
        @app.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%", connection="AzureWebJobsStorage")
        async def floor_job(msg: func.QueueMessage) -> None:
            await floor.archive(json.loads(msg.get_body())["jobId"])

        elapsed, cpu = await _run_queued(round_, app)
    await _expect_archived(round_.direct, container, round_.job_ids)
    side.record(jobs=len(round_.job_ids), elapsed=elapsed, cpu=cpu, calls=calls)


async def _run_queued(
    round_: Round, app: func.FunctionApp, *, profile: cProfile.Profile | None = None
) -> tuple[float, dict[str, float]]:
    """Enqueue one message per job (untimed), then time the runner until every one succeeded."""
    environ = round_.environ
    async with QueueClient.from_connection_string(round_.direct, environ["JOBS_QUEUE"]) as queue:
        with contextlib.suppress(ResourceExistsError):
            await queue.create_queue()
        for job_id in round_.job_ids:
            await enqueue(queue, job_message(job_id))
    async with QueueRunner(
        app=app, connection_string=round_.scenario.connection_string, environ=environ, timer=False
    ) as runner:
        stats, target = runner.stats, len(round_.job_ids)

        def all_done() -> bool:
            return stats.succeeded + stats.failed >= target

        if profile is not None:
            profile.enable()
        started, cpu = time.perf_counter(), round_.clock.read()
        await runner.run_until(all_done, timeout=_ROUND_TIMEOUT)
        elapsed, used = time.perf_counter() - started, round_.clock.since(cpu)
        if profile is not None:
            profile.disable()
    if stats.failed:
        raise RuntimeError(f"{stats.failed} invocations failed in a benchmark round")
    return elapsed, used


def _floor(http: aiohttp.ClientSession, scenario: Scenario, container: str) -> Floor:
    return Floor(
        http=http,
        language_url=scenario.language_url,
        key=_KEY,
        blob_url=scenario.blob_url,
        container=container,
    )


@contextlib.asynccontextmanager
async def _session(scenario: Scenario, calls: Counter[str]) -> AsyncIterator[aiohttp.ClientSession]:
    # The app's own connection limits (shared.http), so that pooling is not what differs.
    connector = aiohttp.TCPConnector(limit=64, limit_per_host=32)
    async with aiohttp.ClientSession(
        connector=connector, trace_configs=[_tracer(calls, _ports(scenario))]
    ) as http:
        yield http


async def _create_container(connection_string: str, name: str) -> None:
    async with BlobServiceClient.from_connection_string(connection_string) as blobs:
        await blobs.create_container(name)


async def _expect_archived(connection_string: str, container: str, job_ids: list[str]) -> None:
    """Every job has its manifest and two task blobs: a round that skipped work does not count."""
    async with BlobServiceClient.from_connection_string(connection_string) as blobs:
        names = [blob.name async for blob in blobs.get_container_client(container).list_blobs()]
    manifests = {name.split("/")[0] for name in names if name.endswith("/manifest.json")}
    if manifests != set(job_ids) or len(names) != 3 * len(job_ids):
        raise RuntimeError(
            f"{container}: {len(manifests)} of {len(job_ids)} jobs archived, {len(names)} blobs"
        )


@contextlib.asynccontextmanager
async def _child(*args: str, ready: str) -> AsyncIterator[tuple[str, int]]:
    """``python -m <args>`` as a child process; yields the first word after ``ready`` on its stdout
    and the child's pid."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), _STARTUP_TIMEOUT)).decode()
        if not line.startswith(ready):
            raise RuntimeError(f"python -m {args[0]} did not start: {line!r}")
        yield line.removeprefix(ready).split()[0], process.pid
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


def _emulator_process() -> contextlib.AbstractAsyncContextManager[tuple[str, int]]:
    """The Language emulator in a process of its own; yields its base URL and pid."""
    return _child(
        "local.emulator",
        *("--api-key", _KEY, "--not-started-seconds", "0", "--running-seconds", "0"),
        ready=READY_PREFIX + " ",
    )


@contextlib.asynccontextmanager
async def _latency(
    direct: Scenario, *, language_delay: float, storage_delay: float
) -> AsyncIterator[Scenario]:
    """The same services behind ``local.latency`` proxies, each in a process of its own: the delay
    they add costs the measured process nothing, as a real network would."""

    def proxy(url: str, delay: float) -> contextlib.AbstractAsyncContextManager[tuple[str, int]]:
        upstream = str(urlsplit(url).port)
        return _child(
            "local.latency",
            "--upstream-port",
            upstream,
            "--delay-ms",
            f"{delay * 1000:g}",
            ready="latency proxy: ",
        )

    def via(url: str, child: tuple[str, int]) -> str:
        return urlsplit(url)._replace(netloc=child[0]).geturl()

    async with (
        proxy(direct.language_url, language_delay) as language,
        proxy(direct.blob_url, storage_delay) as blob,
        proxy(direct.queue_url, storage_delay) as queue,
    ):
        yield Scenario(
            name="latency",
            language_url=via(direct.language_url, language),
            blob_url=via(direct.blob_url, blob),
            queue_url=via(direct.queue_url, queue),
        )


async def _submit(base_url: str, jobs: int, documents: int) -> list[str]:
    text = "Contoso Ltd. shipped to Seattle and the Pacific Northwest on March 15, 2025."
    tasks: list[dict[str, Any]] = [
        {"kind": "EntityRecognition", "taskName": "prebuilt"},
        {
            "kind": "CustomEntityRecognition",
            "taskName": "regions",
            "parameters": {"projectName": "MyProject", "deploymentName": "MyDeployment"},
        },
    ]
    docs = [{"id": str(n), "text": text} for n in range(documents)]
    gate = asyncio.Semaphore(16)

    async def one(http: aiohttp.ClientSession) -> str:
        async with gate:
            return (await submit_job(http, base_url, key=_KEY, documents=docs, tasks=tasks)).job_id

    async with aiohttp.ClientSession() as http:
        return list(await asyncio.gather(*(one(http) for _ in range(jobs))))


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
    async with Azurite.start() as azurite, _emulator_process() as (language_url, language_pid):
        clock = CpuClock({"azurite": azurite.pid, "language": language_pid})
        direct = Scenario(
            name="loopback",
            language_url=language_url,
            blob_url=azurite.blob_endpoint,
            queue_url=azurite.queue_endpoint,
        )
        job_ids = await _submit(language_url, options.jobs, options.documents)
        print(
            f"throughput: {options.jobs} jobs x {options.documents} documents x 2 tasks, finished at their "
            f"first poll; medians of {options.rounds} alternating rounds; CPU per job of this process "
            "(bench), Azurite and the Language emulator"
        )
        print(
            "  app:          function_app.poll_job under local.runner.QueueRunner (host.json batchSize and "
            "newBatchThreshold), one message per job: receive, poll, archive, delete"
        )
        print(
            f"  floor:        one aiohttp session, {options.concurrency} jobs at once: GET every page, "
            "PUT the task blobs at once, then the manifest; no queue, no SDK"
        )
        print("  queued floor: the floor's work as the function under the same runner: the app's ceiling")
        if options.profile:
            await _profile(direct, job_ids, azurite.connection_string, clock)
            return
        await _compare(direct, job_ids, azurite.connection_string, clock, options)
        async with _latency(
            direct, language_delay=options.language_delay, storage_delay=options.storage_delay
        ) as proxied:
            print(
                f"  latency: +{options.language_delay * 1000:g} ms per Language request, "
                f"+{options.storage_delay * 1000:g} ms per blob/queue request (local.latency proxies)"
            )
            await _compare(proxied, job_ids, azurite.connection_string, clock, options)


async def _compare(
    scenario: Scenario, job_ids: list[str], direct: str, clock: CpuClock, options: Options
) -> None:
    app, floor, queued = Side("app"), Side("floor"), Side("queued floor")
    for number in range(1, options.rounds + 1):
        round_ = Round(scenario=scenario, job_ids=job_ids, direct=direct, number=number, clock=clock)
        await app_round(round_, app)
        await floor_round(round_, floor, concurrency=options.concurrency)
        await queued_floor_round(round_, queued)
    print(f"{scenario.name}:")
    for side in (app, floor, queued):
        print(f"  {side.summary()}")
    print(
        f"  app/floor {ratio(app, floor):.2f}   app/queued floor {ratio(app, queued):.2f}   "
        f"queued floor/floor {ratio(queued, floor):.2f}   (medians of the rounds' own ratios)"
    )


def ratio(side: Side, other: Side) -> float:
    """The median of round-by-round ratios: the rounds of one number ran back to back, under the same
    load from the rest of the machine, so each ratio compares like with like."""
    return statistics.median(mine / theirs for mine, theirs in zip(side.rates, other.rates, strict=True))


async def _profile(scenario: Scenario, job_ids: list[str], direct: str, clock: CpuClock) -> None:
    profile = cProfile.Profile()
    side = Side("app")
    for number in range(1, 3):
        await app_round(
            Round(scenario=scenario, job_ids=job_ids, direct=direct, number=number, clock=clock),
            side,
            profile=profile,
        )
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    print(f"CPU by package (own time, {len(job_ids) * 2} jobs):")
    for package, seconds in _by_package(stats).most_common(15):
        print(f"  {seconds * 1000 / (len(job_ids) * 2):7.3f} ms/job  {package}")
    stats.strip_dirs().sort_stats("tottime").print_stats(30)
    print(out.getvalue())


def _by_package(stats: pstats.Stats) -> Counter[str]:
    """Own time summed per top-level package (``azure.storage.blob``, ``shared``, ``json``, ...)."""
    totals: Counter[str] = Counter()
    for (filename, _, function), row in stats.stats.items():  # type: ignore[attr-defined]
        totals[_package(filename, function)] += row[2]
    return totals


def _package(filename: str, function: str) -> str:
    path = Path(filename)
    if filename.startswith("~") or not path.is_absolute():
        return f"builtins ({function})" if "method" in function or "built-in" in function else "builtins"
    parts = path.parts
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1 :]
        depth = 3 if rest[0] == "azure" else 1
        return ".".join(rest[:depth]).removesuffix(".py")
    if path.is_relative_to(REPO_ROOT):
        return ".".join(path.relative_to(REPO_ROOT).parts[:2]).removesuffix(".py")
    return f"stdlib {path.parent.name if path.parent.name != 'lib' else ''}/{path.stem}".strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=150)
    parser.add_argument("--documents", type=int, default=25)
    parser.add_argument("--concurrency", type=int, default=16, help="jobs at once on the floor side")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per side and scenario (median)")
    parser.add_argument("--language-latency-ms", type=float, default=80.0)
    parser.add_argument("--storage-latency-ms", type=float, default=15.0)
    parser.add_argument("--import-runs", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="profile two app rounds (cProfile) instead")
    args = parser.parse_args()
    if not args.profile:
        cold_start(args.import_runs)
        telemetry_cold_start(args.import_runs)
    options = Options(
        jobs=args.jobs,
        documents=args.documents,
        concurrency=args.concurrency,
        rounds=args.rounds,
        language_delay=args.language_latency_ms / 1000,
        storage_delay=args.storage_latency_ms / 1000,
        profile=args.profile,
    )
    asyncio.run(throughput(options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
