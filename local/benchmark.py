"""``make bench``: numbers behind the performance and cost claims, measured on this machine.

1. Cold start: wall time to import ``function_app`` in a fresh interpreter (median of several
   runs), and whether the heavy ``azure.identity`` stays off that path when a key is configured.
2. Throughput: jobs finished at their first poll, archived through the real worker on Azurite and
   the Language emulator with bounded concurrency: jobs per second, latency percentiles, and
   requests per job counted on the app's one aiohttp session.

Everything runs on loopback; the numbers are for comparison between changes, not for Azure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from azure.storage.blob.aio import BlobServiceClient

from local.azurite import Azurite
from local.emulator import EmulatorConfig, serve
from local.upstream import submit_job
from shared.runtime import build_runtime
from shared.settings import load_settings
from shared.worker import Outcome, handle_message

REPO_ROOT = Path(__file__).resolve().parents[1]
_IMPORT_PROBE = (
    "import sys, time; t = time.perf_counter(); import function_app; "
    "print(time.perf_counter() - t, 'azure.identity' in sys.modules, len(sys.modules))"
)


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
            out = subprocess.run(  # noqa: S603 - our own interpreter and a fixed probe
                [sys.executable, "-c", _TELEMETRY_PROBE],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                check=True,
                env=env,
            ).stdout.split()
            imports.append(float(out[0]))
            configures.append(float(out[1]))
            loaded.add(out[2])
        print(
            f"telemetry {label} APPLICATIONINSIGHTS_CONNECTION_STRING: import function_app median "
            f"{statistics.median(imports) * 1000:.0f} ms, first-invocation telemetry setup median "
            f"{statistics.median(configures) * 1000:.0f} ms ({runs} runs), "
            f"opentelemetry imported: {', '.join(sorted(loaded))}"
        )


async def throughput(jobs: int, documents: int, concurrency: int) -> None:
    key = "bench-key"
    emulator_config = EmulatorConfig(api_key=key, not_started_seconds=0, running_seconds=0)
    async with Azurite.start() as azurite, serve(emulator_config) as emulator:
        settings = load_settings(
            {
                "LANGUAGE_ENDPOINT": emulator.base_url,
                "LANGUAGE_API_KEY": key,
                "AzureWebJobsStorage": azurite.connection_string,
            }
        )
        calls: Counter[str] = Counter()
        services = {urlsplit(emulator.base_url).port: "language"}
        services[urlsplit(azurite.blob_endpoint).port] = "blob"
        services[urlsplit(azurite.queue_endpoint).port] = "queue"

        async def count(_s: object, _c: SimpleNamespace, params: aiohttp.TraceRequestStartParams) -> None:
            calls[f"{services.get(params.url.port, 'other')} {params.method}"] += 1

        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(count)
        async with BlobServiceClient.from_connection_string(azurite.connection_string) as blobs:
            await blobs.create_container(settings.archive_container)
        job_ids = await _submit(emulator.base_url, key, jobs, documents)
        runtime = await build_runtime(settings, trace_configs=[trace])
        gate = asyncio.Semaphore(concurrency)
        latencies: list[float] = []

        async def one(job_id: str) -> None:
            async with gate:
                started = time.perf_counter()
                result = await handle_message(
                    json.dumps({"jobId": job_id}).encode(), dequeue_count=1, runtime=runtime
                )
                latencies.append(time.perf_counter() - started)
                assert result.outcome is Outcome.ARCHIVED, result

        started = time.perf_counter()
        await asyncio.gather(*(one(job_id) for job_id in job_ids))
        elapsed = time.perf_counter() - started
        await runtime.aclose()
    latencies.sort()
    per_job = ", ".join(f"{name} {count / jobs:.2f}" for name, count in sorted(calls.items()))
    print(
        f"throughput: {jobs} jobs x {documents} documents x 2 tasks, concurrency {concurrency}: "
        f"{jobs / elapsed:.0f} jobs/s ({elapsed:.2f} s)"
    )
    print(
        f"latency per job: p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
    )
    print(f"requests per job: {per_job}")


async def _submit(base_url: str, key: str, jobs: int, documents: int) -> list[str]:
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
    async with aiohttp.ClientSession() as http:
        submitted = await asyncio.gather(
            *(submit_job(http, base_url, key=key, documents=docs, tasks=tasks) for _ in range(jobs))
        )
    return [job.job_id for job in submitted]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--documents", type=int, default=25)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--import-runs", type=int, default=7)
    args = parser.parse_args()
    cold_start(args.import_runs)
    telemetry_cold_start(args.import_runs)
    asyncio.run(throughput(args.jobs, args.documents, args.concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
