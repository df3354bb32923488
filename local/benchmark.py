"""``make bench``: numbers behind the performance and cost claims, measured on this machine.

1. Cold start: wall time to import ``function_app`` in a fresh interpreter (median of several
   runs), and whether the heavy ``azure.identity`` stays off that path when a key is configured.
2. Throughput against the floor: jobs finished at their first poll, archived by
   - the app: the real ``function_app.poll_job`` driven by ``local.runner.QueueRunner`` (the host's
     queue loop: batches of ``batchSize`` from host.json, a new batch at ``newBatchThreshold``, one
     receive per batch and one delete per message), one message per job;
   - the floor: the least I/O that does the same work: one aiohttp session, 16 jobs at once, that
     GETs every page of a job (following ``nextLink``), PUTs its task blobs at once and then the
     manifest (``If-None-Match: *``), with no queue, no ledger, no checks and no SDK.
   Rounds alternate (app, floor, app, floor, ...) on loopback, then through ``local.latency``
   proxies that add a delay to each request (Language and storage apart). Each figure is the
   median of the rounds; app/floor compares the two medians of the same run. Requests per job are
   counted on the app's one aiohttp session.

Azurite and the Language emulator each run in a process of their own, so the benchmark process
holds only the side being measured. Everything runs on loopback; the numbers are for comparison
between changes, not for Azure. ``--profile`` runs extra app rounds under cProfile and prints the
top entries.
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
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from azure.storage.blob import ContainerSasPermissions, generate_container_sas
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueClient

import function_app
from local.azurite import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, Azurite
from local.emulator.cli import READY_PREFIX
from local.latency import LatencyProxy
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


def cold_start(runs: int) -> None:
    samples, identity_loaded, modules = [], set(), set()
    for _ in range(runs):
        out = subprocess.run(  # noqa: S603 - our own interpreter and a fixed probe
            [sys.executable, "-c", _IMPORT_PROBE],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        ).stdout.split()
        samples.append(float(out[0]))
        identity_loaded.add(out[1])
        modules.add(int(out[2]))
    print(
        f"cold start: import function_app  median {statistics.median(samples) * 1000:.0f} ms "
        f"(min {min(samples) * 1000:.0f}, max {max(samples) * 1000:.0f}, {runs} runs), "
        f"{max(modules)} modules, azure.identity imported: {', '.join(sorted(identity_loaded))}"
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
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_url};QueueEndpoint={self.queue_url};"
        )


@dataclass(slots=True)
class Side:
    """Rounds of one side in one scenario: jobs per second and billed requests per job."""

    rates: list[float] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    jobs: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def per_job(self) -> str:
        return ", ".join(f"{name} {count / self.jobs:.2f}" for name, count in sorted(self.calls.items()))


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


class AppSide:
    """The app as deployed: the runner plays the host, function_app does the work."""

    def __init__(self, scenario: Scenario, job_ids: list[str], side: Side) -> None:
        self._scenario = scenario
        self._job_ids = job_ids
        self._side = side
        self._rounds = 0
        self._environ = {
            "LANGUAGE_ENDPOINT": scenario.language_url,
            "LANGUAGE_API_KEY": _KEY,
            "AzureWebJobsStorage": scenario.connection_string,
            "JOBS_QUEUE": f"bench-{scenario.name}",
            "ARCHIVE_CONTAINER": "unused",
            "SWEEP_SCHEDULE": "0 0 0 1 1 *",  # the timer never fires during a round (timer=False too)
        }

    async def round(self, direct: str, *, profile: cProfile.Profile | None = None) -> None:
        self._rounds += 1
        environ = {**self._environ, "ARCHIVE_CONTAINER": f"app-{self._scenario.name}-{self._rounds}"}
        settings = load_settings(environ)
        await _create_container(direct, settings.archive_container)
        calls: Counter[str] = Counter()
        runtime = await build_runtime(settings, trace_configs=[_tracer(calls, _ports(self._scenario))])
        await install_process_runtime(runtime)
        async with QueueClient.from_connection_string(direct, settings.jobs_queue) as queue:
            with contextlib.suppress(Exception):
                await queue.create_queue()
            for job_id in self._job_ids:
                await enqueue(queue, job_message(job_id))
        try:
            async with QueueRunner(
                app=function_app.app, connection_string=self._scenario.connection_string,
                environ=environ,
                timer=False,
            ) as runner:
                target = len(self._job_ids)
                stats = runner.stats

                async def all_done() -> bool:
                    return stats.succeeded + stats.failed >= target

                if profile is not None:
                    profile.enable()
                started = time.perf_counter()
                await runner.run_until(all_done, timeout=_ROUND_TIMEOUT)
                elapsed = time.perf_counter() - started
                if profile is not None:
                    profile.disable()
                if stats.failed:
                    raise RuntimeError(f"app round: {stats.failed} invocations failed")
        finally:
            await close_process_runtime()
        await _expect_archived(direct, settings.archive_container, self._job_ids)
        if profile is None:
            self._side.rates.append(len(self._job_ids) / elapsed)
            self._side.calls.update(calls)
            self._side.jobs += len(self._job_ids)


class FloorSide:
    """The least I/O that archives the same jobs: raw aiohttp, 16 jobs at once, no queue."""

    def __init__(self, scenario: Scenario, job_ids: list[str], side: Side, *, concurrency: int) -> None:
        self._scenario = scenario
        self._job_ids = job_ids
        self._side = side
        self._concurrency = concurrency
        self._rounds = 0

    async def round(self, direct: str) -> None:
        self._rounds += 1
        container = f"floor-{self._scenario.name}-{self._rounds}"
        await _create_container(direct, container)
        sas = generate_container_sas(
            DEV_ACCOUNT_NAME,
            container,
            account_key=DEV_ACCOUNT_KEY,
            permission=ContainerSasPermissions(write=True, create=True),
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )
        calls: Counter[str] = Counter()
        base = f"{self._scenario.blob_url}/{container}"
        gate = asyncio.Semaphore(self._concurrency)
        connector = aiohttp.TCPConnector(limit=64, limit_per_host=32)
        trace = _tracer(calls, _ports(self._scenario))
        async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as http:

            async def one(job_id: str) -> None:
                async with gate:
                    await _floor_job(http, self._scenario.language_url, f"{base}/{job_id}", sas, job_id)

            started = time.perf_counter()
            await asyncio.gather(*(one(job_id) for job_id in self._job_ids))
            elapsed = time.perf_counter() - started
        await _expect_archived(direct, container, self._job_ids)
        self._side.rates.append(len(self._job_ids) / elapsed)
        self._side.calls.update(calls)
        self._side.jobs += len(self._job_ids)


async def _floor_job(http: aiohttp.ClientSession, language: str, prefix: str, sas: str, job_id: str) -> None:
    url: str | None = f"{language}/language/analyze-text/jobs/{job_id}?api-version={_API_VERSION}"
    items: list[dict[str, Any]] = []
    while url is not None:
        async with http.get(url, headers={"Ocp-Apim-Subscription-Key": _KEY}) as response:
            response.raise_for_status()
            page = json.loads(await response.read())
        for index, item in enumerate(page["tasks"]["items"]):
            if index == len(items):
                items.append(item)
            else:
                results, more = items[index]["results"], item["results"]
                results["documents"] += more["documents"]
                results["errors"] += more["errors"]
        url = page.get("nextLink")
    blobs = [
        (f"tasks/{index:02d}-{item['kind']}.json", json.dumps(item, separators=(",", ":")).encode())
        for index, item in enumerate(items)
    ]

    async def put(name: str, data: bytes, **headers: str) -> None:
        async with http.put(
            f"{prefix}/{name}?{sas}",
            data=data,
            headers={
                "x-ms-blob-type": "BlockBlob",
                "x-ms-version": _STORAGE_VERSION,
                "x-ms-blob-content-type": _JSON_TYPE,
                **headers,
            },
        ) as response:
            response.raise_for_status()

    await asyncio.gather(*(put(name, data) for name, data in blobs))
    manifest = {
        "jobId": job_id,
        "status": page["status"],
        "tasks": [
            {"blob": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)} for name, data in blobs
        ],
    }
    await put("manifest.json", json.dumps(manifest).encode(), **{"If-None-Match": "*"})


async def _create_container(connection_string: str, name: str) -> None:
    async with BlobServiceClient.from_connection_string(connection_string) as blobs:
        await blobs.create_container(name)


async def _expect_archived(connection_string: str, container: str, job_ids: list[str]) -> None:
    """Every job has its manifest and two task blobs: a round that skipped work does not count."""
    async with BlobServiceClient.from_connection_string(connection_string) as blobs:
        names = [blob.name async for blob in blobs.get_container_client(container).list_blobs()]
    manifests = {name.split("/")[0] for name in names if name.endswith("/manifest.json")}
    if manifests != set(job_ids) or len(names) != 3 * len(job_ids):
        raise RuntimeError(f"{container}: {len(manifests)} of {len(job_ids)} jobs archived, {len(names)} blobs")


@contextlib.asynccontextmanager
async def _emulator_process() -> AsyncIterator[str]:
    """The Language emulator in a child process of its own; yields its base URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "local.emulator",
        *("--api-key", _KEY, "--not-started-seconds", "0", "--running-seconds", "0"),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), _STARTUP_TIMEOUT)
        if not line.startswith(READY_PREFIX.encode()):
            raise RuntimeError(f"the Language emulator did not start: {line!r}")
        yield line.decode().split()[1]
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


@contextlib.asynccontextmanager
async def _latency(
    direct: Scenario, *, language_delay: float, storage_delay: float
) -> AsyncIterator[Scenario]:
    def port(url: str) -> int:
        number = urlsplit(url).port
        assert number is not None
        return number

    def via(url: str, proxy: LatencyProxy) -> str:
        parts = urlsplit(url)
        return parts._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()

    async with (
        LatencyProxy.start(upstream_port=port(direct.language_url), delay=language_delay) as language,
        LatencyProxy.start(upstream_port=port(direct.blob_url), delay=storage_delay) as blob,
        LatencyProxy.start(upstream_port=port(direct.queue_url), delay=storage_delay) as queue,
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
    async with Azurite.start() as azurite, _emulator_process() as language_url:
        direct = Scenario(
            name="loopback",
            language_url=language_url,
            blob_url=azurite.blob_endpoint,
            queue_url=azurite.queue_endpoint,
        )
        job_ids = await _submit(language_url, options.jobs, options.documents)
        print(
            f"throughput: {options.jobs} jobs x {options.documents} documents x 2 tasks, finished at their "
            f"first poll; median of {options.rounds} alternating rounds (app, floor, ...)"
        )
        print(
            "  app:   function_app.poll_job under local.runner.QueueRunner (host.json batchSize/"
            "newBatchThreshold), one message per job: receive, poll, archive, delete"
        )
        print(
            f"  floor: one aiohttp session, {options.concurrency} jobs at once: GET every page, "
            "PUT the task blobs at once, then the manifest; no queue"
        )
        if options.profile:
            await _profile(direct, job_ids, azurite.connection_string)
            return
        await _compare(direct, job_ids, azurite.connection_string, options)
        async with _latency(
            direct, language_delay=options.language_delay, storage_delay=options.storage_delay
        ) as proxied:
            print(
                f"  latency: +{options.language_delay * 1000:g} ms per Language request, "
                f"+{options.storage_delay * 1000:g} ms per blob/queue request (local.latency proxies)"
            )
            await _compare(proxied, job_ids, azurite.connection_string, options)


async def _compare(scenario: Scenario, job_ids: list[str], direct: str, options: Options) -> None:
    app, floor = Side(), Side()
    app_side = AppSide(scenario, job_ids, app)
    floor_side = FloorSide(scenario, job_ids, floor, concurrency=options.concurrency)
    rounds: list[Callable[[], Awaitable[None]]] = []
    for _ in range(options.rounds):
        rounds += [lambda: app_side.round(direct), lambda: floor_side.round(direct)]
    for run in rounds:
        await run()
    app_rates = " ".join(f"{rate:.0f}" for rate in app.rates)
    floor_rates = " ".join(f"{rate:.0f}" for rate in floor.rates)
    print(
        f"{scenario.name:>9}: app {app.median:.0f} jobs/s [{app_rates}], floor {floor.median:.0f} jobs/s "
        f"[{floor_rates}]  app/floor {app.median / floor.median:.2f}"
    )
    print(f"{'':>9}  requests per job: app {app.per_job()}; floor {floor.per_job()}")


async def _profile(scenario: Scenario, job_ids: list[str], direct: str) -> None:
    profile = cProfile.Profile()
    app_side = AppSide(scenario, job_ids, Side())
    for _ in range(2):
        await app_side.round(direct, profile=profile)
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    print(out.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--documents", type=int, default=25)
    parser.add_argument("--concurrency", type=int, default=16, help="jobs at once on the floor side")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side and scenario (median)")
    parser.add_argument("--language-latency-ms", type=float, default=80.0)
    parser.add_argument("--storage-latency-ms", type=float, default=15.0)
    parser.add_argument("--import-runs", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="profile two app rounds (cProfile) instead")
    args = parser.parse_args()
    if not args.profile:
        cold_start(args.import_runs)
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
