"""One run of the real ``function_app`` in a process of its own, for the telemetry tests.

``python -m tests.integration.telemetry_probe MODE`` reads the app's settings from the environment
and ``{"messages": [...], "jobs": [...], "idleSeconds": ...}`` on stdin; with the root logger at
INFO, as the Functions Python worker sets it, it enqueues the messages, runs them through the
local queue runner until every named job is archived, fires the sweep once, optionally flushes
telemetry and stays idle (the runtime open, no work) for ``idleSeconds``, closes the runtime
(which flushes telemetry) and prints one JSON object on stdout. Global OpenTelemetry providers
and instrumentations stay in this process, never in the test session's.

Modes:
- ``off``: as configured (no connection string): prints the telemetry modules that got imported.
- ``memory``: the OpenTelemetry SDK's in-memory exporters as the global providers, set up before the
  app's first invocation as the Functions worker would; prints every span, metric point and log
  record exported.
- ``azure``: as configured (a connection string to a local ingestion endpoint): the real distro.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from azure.functions.timer import TimerRequest
from azure.storage.queue.aio import QueueServiceClient

import function_app
from local.host.functions import functions_of
from local.host.runner import QueueRunner
from local.upstream import enqueue
from shared.language import InPlaceRetry
from shared.runtime import build_runtime, close_process_runtime, install_process_runtime, process_runtime
from shared.settings import load_settings

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
TELEMETRY_PREFIXES: Final = ("opentelemetry", "azure.monitor", "shared.otel")
RUN_TIMEOUT: Final = 60.0
#: A library logger that logs at INFO (as azure-core does for every request); the probe logs one
#: INFO record and one warning through it once the app configured telemetry.
LIBRARY_LOGGER: Final = "azure.storage.blob"
LIBRARY_INFO: Final = "Request URL: 'http://127.0.0.1/devstoreaccount1/probe'"
LIBRARY_WARNING: Final = "probe: a library's warning"
_PROXIES: Final = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


async def run_probe(
    mode: str,
    environ: Mapping[str, str],
    *,
    messages: Sequence[str],
    jobs: Sequence[str],
    idle_seconds: float = 0.0,
) -> dict[str, Any]:
    """Run this module in a child process (the test session's side); its JSON output."""
    env = {
        k: v for k, v in os.environ.items() if k not in _PROXIES and not k.startswith("APPLICATIONINSIGHTS")
    }
    env |= {**environ, "PYTHONDONTWRITEBYTECODE": "1"}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        mode,
        cwd=REPO_ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    spec = json.dumps({"messages": list(messages), "jobs": list(jobs), "idleSeconds": idle_seconds}).encode()
    deadline = RUN_TIMEOUT + idle_seconds + 30
    try:
        async with asyncio.timeout(deadline):
            out, err = await child.communicate(spec)
    except TimeoutError:
        child.kill()  # never left running after the test
        await child.wait()
        raise AssertionError(f"probe {mode} did not finish in {deadline:.0f} s") from None
    assert child.returncode == 0, f"probe {mode} failed ({child.returncode}):\n{err.decode()[-4000:]}"
    result: dict[str, Any] = json.loads(out)
    return result


def telemetry_modules() -> list[str]:
    return sorted(name for name in sys.modules if name.startswith(TELEMETRY_PREFIXES))


async def run(spec: dict[str, Any]) -> dict[str, float]:
    """The run; when it stayed idle, from when to when (``time.time()``)."""
    environ = dict(os.environ)
    connection = environ["AzureWebJobsStorage"]
    async with QueueServiceClient.from_connection_string(connection) as service:
        queue = service.get_queue_client(environ["JOBS_QUEUE"])
        await queue.create_queue()
        for text in spec["messages"]:
            await enqueue(queue, text)
    jobs: list[str] = spec["jobs"]
    # Quick in-place retries, so that the faults cost milliseconds; telemetry as the settings say.
    quick = InPlaceRetry(attempts=3, base_delay=0.02, max_wait=1.0)
    await install_process_runtime(await build_runtime(load_settings(environ), retry=quick))
    async with QueueRunner(
        app=function_app.app, connection_string=connection, environ=environ, timer=False, poll_interval=0.05
    ) as runner:

        async def archived() -> bool:
            archive = (await process_runtime()).archive
            return all([await archive.is_archived(job_id) for job_id in jobs])

        # Stops gracefully: the invocations in flight finish (jobs still pending stay queued).
        await runner.run_until(archived, timeout=RUN_TIMEOUT)
    sweep = next(f for f in functions_of(function_app.app) if f.get_function_name() == "sweep_ledger")
    await sweep.get_user_function()(TimerRequest(past_due=False))
    logging.getLogger(LIBRARY_LOGGER).info(LIBRARY_INFO)
    logging.getLogger(LIBRARY_LOGGER).warning(LIBRARY_WARNING)
    idle: dict[str, float] = {}
    if spec.get("idleSeconds"):
        # What the work produced is exported now; what follows is what an idle app exports.
        (await process_runtime()).telemetry.flush()
        idle["idleFrom"] = time.time()
        await asyncio.sleep(spec["idleSeconds"])
        idle["idleTo"] = time.time()
    await close_process_runtime()
    # A runtime built again (settings read afresh) must not configure telemetry a second time.
    await process_runtime()
    await close_process_runtime()
    return idle


def log_exporting_handlers() -> int:
    """OpenTelemetry handlers on the root logger: one per configuration of the logs pipeline."""
    return sum(type(h).__name__ == "LoggingHandler" for h in logging.getLogger().handlers)


def install_in_memory() -> Any:
    """Global SDK providers with in-memory exporters, and the storage SDK's spans through them."""
    from azure.core.settings import settings  # noqa: PLC0415
    from opentelemetry import _logs, metrics, trace  # noqa: PLC0415
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler  # noqa: PLC0415
    from opentelemetry.sdk._logs.export import InMemoryLogExporter, SimpleLogRecordProcessor  # noqa: PLC0415
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: PLC0415

    logs = InMemoryLogExporter()  # type: ignore[no-untyped-call]
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    _logs.set_logger_provider(logger_provider)
    logging.getLogger().addHandler(LoggingHandler(logger_provider=logger_provider))
    settings.tracing_implementation = "opentelemetry"
    return spans, logs, reader


def dump_in_memory(spans: Any, logs: Any, reader: Any) -> dict[str, Any]:
    def hexid(value: int | None, width: int) -> str | None:
        return None if not value else f"{value:0{width}x}"

    exported_spans = [
        {
            "name": span.name,
            "kind": span.kind.name,
            "traceId": hexid(span.context.trace_id, 32),
            "spanId": hexid(span.context.span_id, 16),
            "parentId": hexid(span.parent.span_id if span.parent else None, 16),
            "attributes": dict(span.attributes or {}),
            "status": span.status.status_code.name,
            "description": span.status.description,
            "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
        }
        for span in spans.get_finished_spans()
    ]
    exported_logs = [
        {
            "logger": item.instrumentation_scope.name if item.instrumentation_scope else None,
            "body": str(item.log_record.body),
            "severity": item.log_record.severity_text,
            "attributes": dict(item.log_record.attributes or {}),
            "spanId": hexid(item.log_record.span_id, 16),
        }
        for item in logs.get_finished_logs()
    ]
    exported_metrics = []
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                points = []
                for point in metric.data.data_points:
                    value = {"attributes": dict(point.attributes or {})}
                    if hasattr(point, "count"):
                        value |= {"count": point.count, "sum": point.sum, "min": point.min, "max": point.max}
                    else:
                        value["value"] = point.value
                    points.append(value)
                exported_metrics.append(
                    {"scope": scope.scope.name, "name": metric.name, "unit": metric.unit, "points": points}
                )
    return {"spans": exported_spans, "logs": exported_logs, "metrics": exported_metrics}


def main() -> int:
    mode = sys.argv[1]
    spec = json.load(sys.stdin)
    # The Functions Python worker's root level: libraries' INFO records reach the root's handlers.
    logging.getLogger().setLevel(logging.INFO)
    exporters = install_in_memory() if mode == "memory" else None
    idle = asyncio.run(run(spec))
    out: dict[str, Any] = {"modules": telemetry_modules(), "logHandlers": log_exporting_handlers(), **idle}
    if exporters is not None:
        out |= dump_in_memory(*exporters)
    json.dump(out, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
