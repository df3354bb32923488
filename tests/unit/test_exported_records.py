"""Which log records reach Azure Monitor: the app's own and libraries' warnings, never the Azure
SDK's or the exporter's INFO chatter, with the root logger left at INFO as the Functions worker
sets it. Handlers and providers of the test's own (never the global ones)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs import LoggingHandler as SdkLoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from shared.otel import exported_record, filter_exported_records

BOUNDED = settings(max_examples=100, deadline=None)
LEVELS = st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL])
WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)


def children(parent: str) -> st.SearchStrategy[str]:
    """Child loggers of ``parent``: "parent.a", "parent.a.b", ..."""
    return st.lists(WORDS, min_size=1, max_size=3).map(lambda parts: ".".join([parent, *parts]))


#: Library loggers that are neither the app's nor the telemetry pipeline's.
LIBRARIES = (
    st.sampled_from(
        ["azure", "azure.core.pipeline.policies.http_logging_policy", "azure.identity", "aiohttp"]
    )
    | children("azure.storage")
    | WORDS.filter(lambda name: not name.startswith(("archiver", "opentelemetry")))
)
PIPELINE = st.sampled_from(["azure.monitor.opentelemetry", "opentelemetry"]).flatmap(
    lambda root: st.just(root) | children(root)
)


@BOUNDED
@given(name=st.just("archiver") | children("archiver"), level=LEVELS)
def test_the_apps_records_are_exported_at_any_level(name: str, level: int) -> None:
    assert exported_record(name, level)


@BOUNDED
@given(name=LIBRARIES, level=LEVELS)
def test_a_librarys_records_are_exported_from_warning_up(name: str, level: int) -> None:
    assert exported_record(name, level) is (level >= logging.WARNING)


@BOUNDED
@given(name=PIPELINE, level=LEVELS)
def test_the_telemetry_pipelines_own_records_are_never_exported(name: str, level: int) -> None:
    assert not exported_record(name, level)


def test_a_logger_that_only_shares_the_apps_prefix_is_a_library() -> None:
    assert not exported_record("archiverx", logging.INFO)
    assert not exported_record("archiver_tools.cli", logging.INFO)


@pytest.fixture
def exporter() -> Iterator[InMemoryLogRecordExporter]:
    """An OpenTelemetry handler on the root logger, the root at INFO (the worker's conditions)."""
    root = logging.getLogger()
    level = root.level
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    handler = LoggingHandler(logger_provider=provider)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield logs
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        provider.shutdown()


def exported_bodies(logs: InMemoryLogRecordExporter) -> list[tuple[str | None, str]]:
    return [
        (item.instrumentation_scope.name if item.instrumentation_scope else None, str(item.log_record.body))
        for item in logs.get_finished_logs()
    ]


def test_with_the_root_at_info_only_app_records_and_library_warnings_are_exported(
    exporter: InMemoryLogRecordExporter,
) -> None:
    filter_exported_records()

    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").info("Request URL: 'https://x'")
    logging.getLogger("azure.monitor.opentelemetry.exporter.export._base").info("Transmission succeeded")
    logging.getLogger("archiver.sweep").info("archiver.sweep done")
    logging.getLogger("azure.storage.blob").warning("slow")

    assert exported_bodies(exporter) == [
        ("archiver.sweep", "archiver.sweep done"),
        ("azure.storage.blob", "slow"),
    ]
    assert logging.getLogger().level == logging.INFO  # the worker's level stays as it set it


def test_the_filter_keeps_the_root_levels_other_handlers_as_they_were(
    exporter: InMemoryLogRecordExporter, caplog: pytest.LogCaptureFixture
) -> None:
    filter_exported_records()

    with caplog.at_level(logging.INFO):
        logging.getLogger("azure.identity").info("token acquired")

    assert [r.getMessage() for r in caplog.records] == ["token acquired"]
    assert exported_bodies(exporter) == []


# The SDK's handler is deprecated for the instrumentation's, but a Functions worker may still use it.
@pytest.mark.filterwarnings("ignore:.*LoggingHandler.*:DeprecationWarning")
def test_every_opentelemetry_handler_is_filtered_once_and_other_handlers_are_not() -> None:
    logger = logging.getLogger("tests.exported_records.handlers")
    distro, sdk, stream = LoggingHandler(), SdkLoggingHandler(), logging.StreamHandler()
    for handler in (distro, sdk, stream):
        logger.addHandler(handler)
    try:
        filter_exported_records(logger)
        filter_exported_records(logger)  # as when the runtime is built again
    finally:
        for handler in (distro, sdk, stream):
            logger.removeHandler(handler)

    assert len(distro.filters) == len(sdk.filters) == 1
    assert stream.filters == []


def test_the_logger_the_distro_setting_names_is_filtered_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME", "tests.exported_records.named")
    logger = logging.getLogger("tests.exported_records.named")
    handler = LoggingHandler()
    logger.addHandler(handler)
    try:
        filter_exported_records()
    finally:
        logger.removeHandler(handler)

    assert len(handler.filters) == 1
