"""Keys never leave the configured endpoint and never appear in logs, blobs, queues or errors."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import traceback

import pytest
from azure.core.exceptions import ResourceNotFoundError

import function_app
from local.host.azurite import DEV_ACCOUNT_KEY
from local.host.runner import QueueRunner
from local.upstream import enqueue
from shared.runtime import close_process_runtime
from tests.conftest import EMULATOR_KEY

from .conftest import SetFaults, Stack, documents
from .telemetry_support import Ingestion, Run

pytestmark = pytest.mark.integration

WRONG_KEY = "wrong-key-fedcba9876543210-must-not-leak"
#: Whatever authenticated a request: the Language key, the storage account key, an auth header.
SECRETS = (EMULATOR_KEY, DEV_ACCOUNT_KEY, "SharedKey ", "Bearer ", "Ocp-Apim-Subscription-Key")


@pytest.fixture
async def flaky_service(faults: SetFaults) -> None:
    await faults(rate_5xx=0.3, rate_429=0.2, retry_after_seconds=1, rate_reset=0.1)


def everything_logged(records: list[logging.LogRecord]) -> str:
    parts = []
    for record in records:
        parts.append(record.getMessage())
        if record.exc_info:
            parts.extend(traceback.format_exception(*record.exc_info))
    return "\n".join(parts)


async def everything_stored(stack: Stack) -> str:
    parts = []
    for container in (stack.settings.archive_container, stack.settings.ledger_container):
        for name in await stack.blob_names(container=container):
            parts.append((await stack.blob(name, container=container) or b"").decode("utf-8"))
    for queue_name in (stack.settings.jobs_queue, stack.settings.poison_queue):
        queue = stack.queues.get_queue_client(queue_name)
        with contextlib.suppress(ResourceNotFoundError):
            parts.extend(
                base64.b64decode(m.content).decode() for m in await queue.peek_messages(max_messages=32)
            )
    return "\n".join(parts)


@pytest.mark.usefixtures("flaky_service")
async def test_a_full_run_with_faults_and_bad_input_never_reveals_the_key(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = [await stack.submit(documents(n)) for n in (1, 22, 25)]
    queue = stack.queues.get_queue_client(stack.settings.jobs_queue)
    await queue.create_queue()
    bad = ["not-a-job", json.dumps({"operationLocation": f"https://evil.example/{EMULATOR_KEY}"})]
    for text in [json.dumps({"jobId": job_id}) for job_id in jobs] + bad:
        await enqueue(queue, text)

    with caplog.at_level(logging.DEBUG):
        async with QueueRunner(
            app=function_app.app,
            connection_string=stack.environ["AzureWebJobsStorage"],
            environ=stack.environ,
        ) as runner:

            async def archived() -> bool:
                return all([await stack.manifest(job_id) is not None for job_id in jobs])

            await runner.run_until(archived, timeout=60)

    logged = everything_logged(caplog.records)
    assert "archiver.outcome" in logged  # the capture did see the app's logs
    assert EMULATOR_KEY not in logged
    stored = await everything_stored(stack)
    assert EMULATOR_KEY not in stored.replace(f"https://evil.example/{EMULATOR_KEY}", "")


async def test_a_rejected_key_never_appears_in_logs_or_the_ledger(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = await stack.submit()
    monkeypatch.setenv("LANGUAGE_API_KEY", WRONG_KEY)
    await close_process_runtime()

    with caplog.at_level(logging.DEBUG):
        await stack.deliver({"jobId": job_id})

    assert "LANGUAGE_API_KEY" in everything_logged(caplog.records)
    assert WRONG_KEY not in everything_logged(caplog.records)
    assert WRONG_KEY not in await everything_stored(stack)


async def test_settings_repr_hides_the_key(stack: Stack) -> None:
    assert EMULATOR_KEY not in repr(stack.settings)
    assert EMULATOR_KEY not in str(stack.settings)


def test_no_exported_span_metric_or_log_record_of_a_faulty_run_carries_a_key(telemetry_run: Run) -> None:
    """Every item the OpenTelemetry SDK exported (spans with their attributes and events, metric
    points with their attributes, log records with theirs) of a run with faults and a poison
    message that tried to carry the key off."""
    exported = telemetry_run.exported
    items = [*exported["spans"], *exported["logs"], *exported["metrics"]]
    assert len(exported["spans"]) > 10
    assert exported["logs"]
    assert exported["metrics"]
    for item in items:
        text = json.dumps(item)
        for secret in SECRETS:
            assert secret not in text, item


def test_nothing_sent_to_azure_monitor_carries_a_key(azure_monitor_export: tuple[Run, Ingestion]) -> None:
    """The envelopes as the real exporter sent them (traces, dependencies, metrics), byte for byte."""
    _, ingestion = azure_monitor_export
    assert ingestion.envelopes
    for body in ingestion.raw:
        text = body.decode("utf-8", "replace")
        for secret in SECRETS:
            assert secret not in text
