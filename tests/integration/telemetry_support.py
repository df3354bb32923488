"""The faulty run behind the telemetry and security tests: the real app in a child process
(``telemetry_probe``), its exported items in memory or at a loopback Azure Monitor endpoint."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import aiohttp
from aiohttp import web
from azure.storage.blob.aio import BlobServiceClient

from local.host.azurite import Azurite
from local.upstream import submit_job
from shared.messages import JobMessage
from shared.telemetry import METER_NAME, Metric
from shared.timefmt import format_time
from tests.conftest import EMULATOR_KEY
from tests.support import serve_local

from .conftest import DEFAULT_TASKS, documents, stack_environ
from .telemetry_probe import run_probe

__all__ = [
    "TRACK_PATHS",
    "IdleRun",
    "Ingestion",
    "Run",
    "exported_to_azure_monitor",
    "in_memory_run",
    "worker_like_run",
]

#: Any connection string: with SDK providers already installed (as the Functions worker does with
#: PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY) the app uses them and configures nothing itself.
UNUSED_CONNECTION: Final = (
    "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/"
)
FAULTS: Final = {"rate5xx": 0.3, "rate429": 0.2, "retryAfterSeconds": 0, "rateReset": 0.1}


@dataclass
class Run:
    """What one faulty run submitted, and what its telemetry says."""

    environ: dict[str, str]
    jobs: dict[str, str | None]  # archived job id -> its message's correlation id
    ghost: str  # a job the service does not know (404): polled, failed, rescheduled
    swept: str  # a job only the sweep knows about (its message was lost)
    messages: list[str]
    exported: dict[str, Any]

    def logs(self) -> list[dict[str, Any]]:
        return list(self.exported["logs"])

    def spans(self, name: str | None = None) -> list[dict[str, Any]]:
        return [s for s in self.exported["spans"] if name is None or s["name"] == name]

    def points(self, metric: Metric) -> list[dict[str, Any]]:
        found = [m for m in self.exported["metrics"] if m["name"] == metric.value]
        assert len(found) == 1, f"{metric.value} exported {len(found)} times"
        assert found[0]["scope"] == METER_NAME
        return list(found[0]["points"])


async def faulty_run(azurite: Azurite, emulator: Any, mode: str, **extra: str) -> Run:
    """Three jobs (each message form, two with a correlation id), a job the service does not know,
    two poison messages and a job whose message was lost, under random 5xx/429/resets; the child
    process runs them until the three are archived, then one sweep."""
    environ = stack_environ(azurite, emulator.base_url, **extra)
    async with aiohttp.ClientSession() as http:

        async def submit() -> str:
            job = await submit_job(
                http, emulator.base_url, key=EMULATOR_KEY, documents=documents(3), tasks=DEFAULT_TASKS
            )
            return job.job_id

        first, second, third, lost = [await submit() for _ in range(4)]
        ghost = str(uuid.uuid4())
        location = f"{emulator.base_url}/language/analyze-text/jobs/{second}?api-version=2024-11-01"
        messages = [
            json.dumps({"jobId": first, "correlationId": "order-1"}),
            json.dumps({"operationLocation": location, "correlationId": "order-2"}),
            third,
            json.dumps({"jobId": ghost, "correlationId": "order-ghost"}),
            "{not json",
            json.dumps({"operationLocation": f"https://evil.example/{EMULATOR_KEY}"}),
        ]
        await put_lost_record(azurite, environ, lost)
        async with http.put(f"{emulator.base_url}/_emulator/faults", json=FAULTS) as response:
            assert response.status < 300
        try:
            exported = await run_probe(mode, environ, messages=messages, jobs=[first, second, third])
        finally:
            async with http.put(f"{emulator.base_url}/_emulator/faults", json={}) as response:
                assert response.status < 300
    return Run(
        environ=environ,
        jobs={first: "order-1", second: "order-2", third: None},
        ghost=ghost,
        swept=lost,
        messages=messages,
        exported=exported,
    )


async def put_lost_record(azurite: Azurite, environ: dict[str, str], job_id: str) -> None:
    """A ledger record ten minutes overdue whose message is nowhere: the sweep must find it."""
    due = datetime.now(UTC) - timedelta(minutes=10)
    message = JobMessage(job_id=job_id, correlation_id="order-lost", first_seen_at=due)
    body = {"jobId": job_id, "nextPollAt": format_time(due), "message": json.loads(message.to_json())}
    async with BlobServiceClient.from_connection_string(azurite.connection_string) as blobs:
        container = blobs.get_container_client(f"{environ['ARCHIVE_CONTAINER']}-ledger")
        await container.create_container()
        await container.upload_blob(
            f"{job_id}.json", json.dumps(body).encode(), metadata={"nextpollat": format_time(due) or ""}
        )


async def in_memory_run(azurite: Azurite, emulator: Any) -> Run:
    """The faulty run recorded by the OpenTelemetry SDK's in-memory exporters."""
    return await faulty_run(
        azurite, emulator, "memory", APPLICATIONINSIGHTS_CONNECTION_STRING=UNUSED_CONNECTION
    )


TRACK_PATHS: Final = ("/v2.1/track", "/v2/track")


@dataclass(frozen=True)
class Received:
    """One request to the ingestion endpoint: when (``time.time()``), where, the envelopes it held."""

    at: float
    path: str
    envelopes: list[dict[str, Any]]

    @property
    def base_types(self) -> set[str]:
        return {e["data"]["baseType"] for e in self.envelopes}


@dataclass
class Ingestion:
    """A loopback stand-in for Application Insights' ingestion (and live metrics) endpoint."""

    paths: list[str] = field(default_factory=list)
    envelopes: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        # The exporter joins "v2.1/track" to the endpoint with a slash of its own.
        path = "/" + request.path.lstrip("/")
        self.paths.append(path)
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.raw.append(body)
        received: list[dict[str, Any]] = []
        self.requests.append(Received(at=time.time(), path=path, envelopes=received))
        if path in TRACK_PATHS:
            received.extend(json.loads(body))
            self.envelopes.extend(received)
            accepted = {"itemsReceived": len(received), "itemsAccepted": len(received), "errors": []}
            return web.json_response(accepted)
        return web.json_response({})  # live metrics: not subscribed

    def of_type(self, base_type: str) -> list[dict[str, Any]]:
        return [e["data"]["baseData"] for e in self.envelopes if e["data"]["baseType"] == base_type]

    def tracks(self, since: float = 0.0, until: float = float("inf")) -> list[Received]:
        """The requests to the ingestion endpoint (not Live Metrics) received in ``[since, until)``."""
        return [r for r in self.requests if r.path in TRACK_PATHS and since <= r.at < until]


def azure_monitor_environ(url: str, **extra: str) -> dict[str, str]:
    """The settings that send telemetry to the loopback endpoint at ``url``, Live Metrics included."""
    return {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            f"InstrumentationKey={uuid.uuid4()};IngestionEndpoint={url}/;LiveEndpoint={url}/"
        ),
        # Nothing leaves the machine: no statsbeat, no settings from Microsoft's control plane.
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
        # The distro's default samples traces at a rate; the environment overrides it (README).
        "OTEL_TRACES_SAMPLER": "always_on",
        **extra,
    }


async def exported_to_azure_monitor(azurite: Azurite, emulator: Any) -> tuple[Run, Ingestion]:
    """The faulty run through the real distro and exporter, to a loopback ingestion endpoint."""
    ingestion = Ingestion()
    async with serve_local(ingestion.handle) as url:
        run = await faulty_run(azurite, emulator, "azure", **azure_monitor_environ(url))
    return run, ingestion


@dataclass(frozen=True)
class IdleRun:
    """A few jobs archived through the real exporter, then the app idle, as the ingestion saw it."""

    jobs: list[str]
    ingestion: Ingestion
    idle_from: float  # time.time(): the work's telemetry flushed
    idle_to: float
    metric_interval: float  # seconds: OTEL_METRIC_EXPORT_INTERVAL of the run


async def worker_like_run(
    azurite: Azurite, emulator: Any, *, jobs: int, idle_seconds: float, metric_interval: float
) -> IdleRun:
    """``jobs`` jobs archived (no faults) by the real distro with the root logger at INFO, as in the
    Functions worker, then ``idle_seconds`` without work, the metric export interval shortened."""
    ingestion = Ingestion()
    async with aiohttp.ClientSession() as http:
        submitted = [
            (
                await submit_job(
                    http, emulator.base_url, key=EMULATOR_KEY, documents=documents(2), tasks=DEFAULT_TASKS
                )
            ).job_id
            for _ in range(jobs)
        ]
    async with serve_local(ingestion.handle) as url:
        environ = stack_environ(
            azurite,
            emulator.base_url,
            **azure_monitor_environ(url, OTEL_METRIC_EXPORT_INTERVAL=str(round(metric_interval * 1000))),
        )
        exported = await run_probe(
            "azure", environ, messages=submitted, jobs=submitted, idle_seconds=idle_seconds
        )
    return IdleRun(
        jobs=submitted,
        ingestion=ingestion,
        idle_from=exported["idleFrom"],
        idle_to=exported["idleTo"],
        metric_interval=metric_interval,
    )
