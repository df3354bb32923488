"""The telemetry helpers: reason codes, job attributes on log records, and the OpenTelemetry
recorder on providers of the test's own (never the global ones)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from shared.otel import OtelTelemetry
from shared.telemetry import (
    CORRELATION_ID,
    JOB_ID,
    METER_NAME,
    QUEUE,
    REASON,
    RESULT,
    STATUS,
    LanguageResult,
    Metric,
    PollResult,
    QueueRole,
    job_attributes,
    job_log,
    reason_code,
)

BOUNDED = settings(max_examples=100, deadline=None)
#: Codes as the parser writes them: lowercase words joined by hyphens.
CODES = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8), min_size=1, max_size=3
).map("-".join)


@BOUNDED
@given(code=CODES, detail=st.text())
def test_the_reason_code_is_what_precedes_the_first_colon(code: str, detail: str) -> None:
    assert reason_code(f"{code}: {detail}") == code


@BOUNDED
@given(code=CODES)
def test_a_reason_without_detail_is_its_own_code(code: str) -> None:
    assert reason_code(code) == code


@BOUNDED
@given(job_id=st.none() | st.uuids().map(str), correlation_id=st.none() | st.text(min_size=1))
def test_job_attributes_hold_only_the_known_values(job_id: str | None, correlation_id: str | None) -> None:
    attributes = job_attributes(job_id, correlation_id)

    assert attributes.get(JOB_ID) == job_id
    assert attributes.get(CORRELATION_ID) == correlation_id
    assert None not in attributes.values()  # a custom dimension is never "None"


def test_a_job_log_puts_the_job_on_every_record_and_keeps_the_calls_own_extra(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = job_log(logging.getLogger("archiver.test"), job_id="j-1", correlation_id="c-1")

    with caplog.at_level(logging.INFO, logger="archiver.test"):
        log.info("first")
        log.warning("second", extra={STATUS: "succeeded"})

    first, second = caplog.records
    assert (getattr(first, JOB_ID), getattr(first, CORRELATION_ID)) == ("j-1", "c-1")
    assert (getattr(second, JOB_ID), getattr(second, STATUS)) == ("j-1", "succeeded")


@pytest.fixture
def recorded() -> tuple[OtelTelemetry, InMemoryMetricReader, InMemorySpanExporter]:
    reader, spans = InMemoryMetricReader(), InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = OtelTelemetry(
        meter_provider=MeterProvider(metric_readers=[reader]), tracer_provider=tracer_provider
    )
    return telemetry, reader, spans


def points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, object], object]]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[tuple[dict[str, object], object]]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == METER_NAME
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = (point.count, point.sum)  # type: ignore[union-attr]
                    found.setdefault(metric.name, []).append((dict(point.attributes or {}), value))
    return found


def test_otel_counters_carry_the_contracts_attributes(
    recorded: tuple[OtelTelemetry, InMemoryMetricReader, InMemorySpanExporter],
) -> None:
    telemetry, reader, _ = recorded

    telemetry.polled(PollResult.UNFINISHED)
    telemetry.polled(PollResult.UNFINISHED)
    telemetry.job_archived(status="notFound", lag_seconds=None)
    telemetry.message_poisoned(reason="invalid-job-id: 'x' is not a UUID")

    found = points(reader)
    assert found[Metric.POLLS] == [({RESULT: "unfinished"}, 2)]
    assert found[Metric.JOBS_ARCHIVED] == [({STATUS: "notFound"}, 1)]
    assert found[Metric.MESSAGES_POISONED] == [({REASON: "invalid-job-id"}, 1)]
    assert Metric.ARCHIVE_LAG not in found  # a job the service never dated has no lag


def test_otel_lag_is_a_histogram_by_status_and_the_ledger_gauges_keep_the_last_sweep(
    recorded: tuple[OtelTelemetry, InMemoryMetricReader, InMemorySpanExporter],
) -> None:
    telemetry, reader, _ = recorded

    telemetry.job_archived(status="succeeded", lag_seconds=2.0)
    telemetry.job_archived(status="succeeded", lag_seconds=4.0)
    telemetry.ledger_swept(pending=7, overdue=3)
    telemetry.ledger_swept(pending=5, overdue=0)

    found = points(reader)
    assert found[Metric.ARCHIVE_LAG] == [({STATUS: "succeeded"}, (2, 6.0))]
    assert found[Metric.LEDGER_PENDING] == [({}, 5)]
    assert found[Metric.LEDGER_OVERDUE] == [({}, 0)]


def test_otel_heartbeat_counts_sweep_runs_and_backlog_gauges_keep_the_last_value_per_queue(
    recorded: tuple[OtelTelemetry, InMemoryMetricReader, InMemorySpanExporter],
) -> None:
    telemetry, reader, _ = recorded

    telemetry.sweep_ran()
    telemetry.sweep_ran()
    telemetry.queue_backlog(QueueRole.JOBS, length=9, oldest_age=30.0)
    telemetry.queue_backlog(QueueRole.JOBS, length=4, oldest_age=12.5)
    telemetry.queue_backlog(QueueRole.POISON, length=1, oldest_age=600.0)

    found = points(reader)
    assert found[Metric.SWEEP_RUNS] == [({}, 2)]
    assert sorted(found[Metric.QUEUE_LENGTH], key=str) == [({QUEUE: "jobs"}, 4), ({QUEUE: "poison"}, 1)]
    assert sorted(found[Metric.QUEUE_AGE], key=str) == [({QUEUE: "jobs"}, 12.5), ({QUEUE: "poison"}, 600.0)]


def test_otel_language_requests_count_by_result_and_their_waits_are_a_histogram(
    recorded: tuple[OtelTelemetry, InMemoryMetricReader, InMemorySpanExporter],
) -> None:
    telemetry, reader, _ = recorded

    telemetry.language_request(LanguageResult.OK, waited=0.5)
    telemetry.language_request(LanguageResult.THROTTLED, waited=1.5)
    telemetry.language_request(LanguageResult.OK, waited=0.0)

    found = points(reader)
    assert sorted(found[Metric.LANGUAGE_REQUESTS], key=str) == [
        ({RESULT: "ok"}, 2),
        ({RESULT: "throttled"}, 1),
    ]
    assert found[Metric.LANGUAGE_WAIT] == [({}, (3, 2.0))]


def test_otel_spans_nest_and_record_errors(
    recorded: tuple[OtelTelemetry, InMemoryMetricReader, InMemorySpanExporter],
) -> None:
    telemetry, _, spans = recorded

    with telemetry.span("outer", attributes={JOB_ID: "j"}), telemetry.span("inner", kind="client") as inner:
        inner.set_attribute("http.response.status_code", 503)
        inner.set_error("HTTP 503")

    inner_span, outer_span = spans.get_finished_spans()
    assert inner_span.parent is not None
    assert inner_span.parent.span_id == outer_span.context.span_id
    assert inner_span.kind.name == "CLIENT"
    assert inner_span.status.status_code is StatusCode.ERROR
    assert outer_span.attributes == {JOB_ID: "j"}
