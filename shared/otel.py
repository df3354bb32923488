"""OpenTelemetry behind ``shared.telemetry.Telemetry``: the ``archiver`` meter and tracer, and the
Azure Monitor distro. Imported only when telemetry is on (``shared.runtime.configure_telemetry``).

The distro reads its own settings from the environment: ``APPLICATIONINSIGHTS_CONNECTION_STRING``,
``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` (Entra: the managed identity's token),
``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` (the trace sampler; left to the operator).
It also routes the storage SDK's spans through azure-core's OpenTelemetry plugin. Of the log
records it exports the app's own (logger ``archiver`` and below; record attributes become custom
dimensions) and WARNING and above from libraries (``exported_record``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Final

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

from .telemetry import (
    METER_NAME,
    QUEUE,
    REASON,
    RESULT,
    STATUS,
    AttributeValue,
    LanguageResult,
    Metric,
    PollResult,
    QueueRole,
    SpanKindName,
    SpanRecorder,
    Telemetry,
    reason_code,
)

__all__ = ["OtelTelemetry", "azure_monitor_telemetry", "exported_record", "filter_exported_records"]

# The Functions worker's own choice when it configures the distro: the Azure VM detector would
# probe the instance metadata endpoint, which a Functions instance does not serve.
_RESOURCE_DETECTORS: Final = ("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", "azure_functions")


#: Loggers of the telemetry pipeline itself (the exporter, Live Metrics, the OpenTelemetry SDK): their
#: records report on the export, so exporting them through it would feed it at every export; a
#: failing export would log and export again. They still reach the worker's other handlers.
_PIPELINE_LOGGERS: Final = ("azure.monitor.opentelemetry", "opentelemetry")
#: The distro's setting for the logger it puts its handler on (the root logger when unset).
_LOGGER_NAME_SETTING: Final = "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME"


def _within(name: str, loggers: tuple[str, ...]) -> bool:
    return any(name == logger or name.startswith(f"{logger}.") for logger in loggers)


def exported_record(logger_name: str, level: int) -> bool:
    """Whether a record goes to Azure Monitor: the app's own (``archiver`` and below) at any level it
    is logged at, else WARNING and above, never the telemetry pipeline's own."""
    if _within(logger_name, (METER_NAME,)):
        return True
    return level >= logging.WARNING and not _within(logger_name, _PIPELINE_LOGGERS)


class _ExportedRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return exported_record(record.name, record.levelno)


_EXPORTED_RECORDS: Final = _ExportedRecords()


def filter_exported_records(*loggers: logging.Logger) -> None:
    """Put the export filter on every OpenTelemetry logging handler of ``loggers`` (by default the
    root logger, where the distro and the Functions worker put theirs, and the logger the distro's
    ``PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME`` names); idempotent.

    A filter on the exporting handler, not a level on a logger: the Python worker sets the root
    logger to INFO and other code in the same worker (the records it forwards to the host, other
    functions) may rely on that. Unfiltered, the Azure SDK's INFO record of every request and the
    exporter's of every transmission would be exported, and each export would log again.
    """
    if not loggers:
        loggers = (logging.getLogger(), logging.getLogger(os.environ.get(_LOGGER_NAME_SETTING, "")))
    for logger in loggers:
        for handler in logger.handlers:
            if type(handler).__module__.startswith("opentelemetry."):
                handler.addFilter(_EXPORTED_RECORDS)  # a no-op when it is there already


_KINDS: Final[dict[SpanKindName, SpanKind]] = {
    "internal": SpanKind.INTERNAL,
    "client": SpanKind.CLIENT,
    "consumer": SpanKind.CONSUMER,
}


class _Span:
    __slots__ = ("_span",)

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self._span.set_attribute(key, value)

    def set_error(self, description: str) -> None:
        self._span.set_status(Status(StatusCode.ERROR, description))


class OtelTelemetry(Telemetry):
    """Metrics and spans through OpenTelemetry (the global providers unless given others)."""

    def __init__(
        self,
        *,
        meter_provider: metrics.MeterProvider | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self._meter_provider = meter_provider
        self._tracer_provider = tracer_provider
        meter = metrics.get_meter(METER_NAME, meter_provider=meter_provider)
        self._tracer = trace.get_tracer(METER_NAME, tracer_provider=tracer_provider)
        self._archived = meter.create_counter(
            Metric.JOBS_ARCHIVED, unit="{job}", description="Jobs archived (manifest committed), by status"
        )
        self._poisoned = meter.create_counter(
            Metric.MESSAGES_POISONED, unit="{message}", description="Messages poisoned, by reason code"
        )
        self._polls = meter.create_counter(
            Metric.POLLS, unit="{poll}", description="GETs of a job's state, by result"
        )
        self._lag = meter.create_histogram(
            Metric.ARCHIVE_LAG, unit="s", description="Job's lastUpdatedDateTime to archivedAt"
        )
        self._pending = meter.create_gauge(
            Metric.LEDGER_PENDING, unit="{job}", description="Ledger records the last sweep found"
        )
        self._overdue = meter.create_gauge(
            Metric.LEDGER_OVERDUE, unit="{job}", description="Overdue ledger records the last sweep found"
        )

        self._language = meter.create_counter(
            Metric.LANGUAGE_REQUESTS,
            unit="{request}",
            description="Language requests, by result",
        )
        self._wait = meter.create_histogram(
            Metric.LANGUAGE_WAIT,
            unit="s",
            description="Seconds a Language request waited for the budget",
        )
        self._sweeps = meter.create_counter(
            Metric.SWEEP_RUNS, unit="{run}", description="Sweep runs: the heartbeat"
        )
        self._queue_length = meter.create_gauge(
            Metric.QUEUE_LENGTH, unit="{message}", description="Approximate messages of a queue, by queue"
        )
        self._queue_age = meter.create_gauge(
            Metric.QUEUE_AGE, unit="s", description="Age of a queue's first visible message, by queue"
        )

    @contextmanager
    def span(
        self,
        name: str,
        *,
        kind: SpanKindName = "internal",
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> Iterator[SpanRecorder]:
        with self._tracer.start_as_current_span(name, kind=_KINDS[kind], attributes=attributes) as span:
            yield _Span(span)

    def polled(self, result: PollResult) -> None:
        self._polls.add(1, {RESULT: result.value})

    def job_archived(self, *, status: str, lag_seconds: float | None) -> None:
        self._archived.add(1, {STATUS: status})
        if lag_seconds is not None:
            self._lag.record(lag_seconds, {STATUS: status})

    def message_poisoned(self, *, reason: str) -> None:
        self._poisoned.add(1, {REASON: reason_code(reason)})

    def ledger_swept(self, *, pending: int, overdue: int) -> None:
        self._pending.set(pending)
        self._overdue.set(overdue)

    def language_request(self, result: LanguageResult, *, waited: float) -> None:
        self._language.add(1, {RESULT: result.value})
        self._wait.record(waited)

    def sweep_ran(self) -> None:
        self._sweeps.add(1)

    def queue_backlog(self, queue: QueueRole, *, length: int, oldest_age: float) -> None:
        self._queue_length.set(length, {QUEUE: queue.value})
        self._queue_age.set(oldest_age, {QUEUE: queue.value})

    def flush(self) -> None:
        for provider in (
            self._tracer_provider or trace.get_tracer_provider(),
            self._meter_provider or metrics.get_meter_provider(),
            _logs.get_logger_provider(),
        ):
            force_flush = getattr(provider, "force_flush", None)
            if callable(force_flush):
                force_flush()


_lock: Final = threading.Lock()
_configured: OtelTelemetry | None = None


def azure_monitor_telemetry(connection_string: str) -> OtelTelemetry:
    """Configure the Azure Monitor distro once per process and record through it.

    If the Functions worker configured the distro already (``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY``),
    its providers are used as they are: configuring twice would export everything twice. Either way
    the records exported are filtered (``filter_exported_records``).
    """
    global _configured  # noqa: PLW0603 - one telemetry pipeline per process, by design
    with _lock:
        if _configured is None:
            if not isinstance(trace.get_tracer_provider(), SdkTracerProvider):
                from azure.monitor.opentelemetry import configure_azure_monitor  # noqa: PLC0415

                os.environ.setdefault(*_RESOURCE_DETECTORS)
                configure_azure_monitor(connection_string=connection_string)
            filter_exported_records()
            # Outcome records are INFO: a root logger left at WARNING must not drop them on the way
            # to the exporter's handler.
            app_logger = logging.getLogger(METER_NAME)
            if app_logger.level == logging.NOTSET:
                app_logger.setLevel(logging.INFO)
            _configured = OtelTelemetry()
    return _configured
