"""Telemetry of a faulty run of the real app (in a child process, so that global OpenTelemetry
providers never leak into the test session): records, metrics and spans as the contract names
them; without a connection string no telemetry package is loaded at all."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any, Final

import aiohttp
import pytest

from local.host.azurite import Azurite
from local.upstream import submit_job
from shared.telemetry import (
    ATTEMPT,
    CORRELATION_ID,
    DELAY_SECONDS,
    JOB_ID,
    LAG_SECONDS,
    OUTCOME,
    OUTCOME_RECORD,
    QUEUE,
    REASON,
    RESULT,
    STATUS,
    Metric,
    PollResult,
)
from tests.conftest import EMULATOR_KEY

from .conftest import DEFAULT_TASKS, documents, stack_environ
from .telemetry_probe import LIBRARY_LOGGER, LIBRARY_WARNING, run_probe
from .telemetry_support import TRACK_PATHS, IdleRun, Ingestion, Run

pytestmark = pytest.mark.integration


@pytest.fixture
def run(telemetry_run: Run) -> Run:
    return telemetry_run


@pytest.fixture
def exported(azure_monitor_export: tuple[Run, Ingestion]) -> tuple[Run, Ingestion]:
    return azure_monitor_export


# --- log records -------------------------------------------------------------------------------------


def test_every_record_about_a_job_carries_its_id_and_correlation_id(run: Run) -> None:
    known = {**run.jobs, run.ghost: "order-ghost", run.swept: "order-lost"}
    about_jobs = 0
    for record in run.logs():
        for job_id, correlation_id in known.items():
            if job_id in record["body"]:
                about_jobs += 1
                assert record["attributes"].get(JOB_ID) == job_id, record
                assert record["attributes"].get(CORRELATION_ID) == correlation_id, record
    assert about_jobs >= len(known), "every job has at least its outcome record"


def test_one_outcome_record_per_invocation(run: Run) -> None:
    outcomes = [r for r in run.logs() if r["body"].startswith(OUTCOME_RECORD)]
    invocations = run.spans("archiver.poll_job")
    assert len(outcomes) == len(invocations) >= len(run.messages)
    # Each record is logged inside its invocation's span.
    assert sorted(r["spanId"] for r in outcomes) == sorted(s["spanId"] for s in invocations)


def test_outcome_records_say_outcome_status_and_attempt(run: Run) -> None:
    outcomes = [r["attributes"] for r in run.logs() if r["body"].startswith(OUTCOME_RECORD)]
    archived = [a for a in outcomes if a[OUTCOME] == "archived"]
    assert sorted(a[JOB_ID] for a in archived) == sorted(run.jobs)
    for attributes in archived:
        assert attributes[STATUS] == "succeeded"
        assert attributes[ATTEMPT] >= 1
        assert 0 <= attributes[LAG_SECONDS] < 600
    assert all(isinstance(a[ATTEMPT], int) and a[ATTEMPT] >= 1 for a in outcomes)
    rescheduled = [a for a in outcomes if a[OUTCOME] == "rescheduled"]
    assert run.ghost in {a[JOB_ID] for a in rescheduled}
    assert all(a[JOB_ID] in {*run.jobs, run.ghost} and a[DELAY_SECONDS] > 0 for a in rescheduled)


def test_poisoned_outcome_records_carry_the_reason_and_no_job(run: Run) -> None:
    poisoned = [r for r in run.logs() if r["body"].startswith(OUTCOME_RECORD) and "poisoned" in r["body"]]
    assert sorted(r["attributes"][REASON].split(":")[0] for r in poisoned) == [
        "foreign-operation-location",
        "unparseable",
    ]
    assert all(r["severity"] == "ERROR" and JOB_ID not in r["attributes"] for r in poisoned)


# --- metrics ------------------------------------------------------------------------------------------


def test_jobs_archived_counts_each_job_once_by_status(run: Run) -> None:
    points = run.points(Metric.JOBS_ARCHIVED)
    assert [(p["attributes"], p["value"]) for p in points] == [({STATUS: "succeeded"}, len(run.jobs))]


def test_messages_poisoned_counts_by_reason_code(run: Run) -> None:
    points = run.points(Metric.MESSAGES_POISONED)
    by_reason = {p["attributes"][REASON]: p["value"] for p in points}
    assert by_reason == {"unparseable": 1, "foreign-operation-location": 1}


def test_polls_count_by_result(run: Run) -> None:
    by_result = {p["attributes"][RESULT]: p["value"] for p in run.points(Metric.POLLS)}
    assert set(by_result) <= {r.value for r in PollResult}
    assert by_result[PollResult.ENDED] >= len(run.jobs)
    assert by_result[PollResult.FAILED] >= 1  # the job the service does not know
    # Every poll of a job is one invocation, whatever its result.
    assert sum(by_result.values()) == len(run.spans("archiver.poll_job")) - 2  # not the poison


def test_archive_lag_is_a_histogram_of_one_plausible_value_per_job(run: Run) -> None:
    (point,) = run.points(Metric.ARCHIVE_LAG)
    assert point["attributes"] == {STATUS: "succeeded"}
    assert point["count"] == len(run.jobs)
    assert 0 <= point["min"] <= point["max"] < 600


def test_ledger_gauges_say_what_the_sweep_found(run: Run) -> None:
    (pending,) = run.points(Metric.LEDGER_PENDING)
    (overdue,) = run.points(Metric.LEDGER_OVERDUE)
    assert pending["value"] >= overdue["value"] >= 1  # at least the job whose message was lost


def test_the_sweep_beats_the_heartbeat_once_a_run(run: Run) -> None:
    (runs,) = run.points(Metric.SWEEP_RUNS)
    assert runs["value"] == 1


def test_the_sweep_measures_the_length_and_oldest_message_of_each_queue(run: Run) -> None:
    lengths = {p["attributes"][QUEUE]: p["value"] for p in run.points(Metric.QUEUE_LENGTH)}
    ages = {p["attributes"][QUEUE]: p["value"] for p in run.points(Metric.QUEUE_AGE)}
    assert set(lengths) == set(ages) == {"jobs", "poison"}  # no EVENTS_QUEUE in this run
    assert lengths["poison"] == 2  # the two poison messages, waiting for an operator
    assert 0 < ages["poison"] < 600


# --- spans ---------------------------------------------------------------------------------------------


def ancestors(run: Run, span: dict[str, Any]) -> list[str]:
    by_id = {s["spanId"]: s for s in run.spans()}
    names = []
    parent = by_id.get(span["parentId"])
    while parent is not None:
        names.append(parent["name"])
        parent = by_id.get(parent["parentId"])
    return names


def test_each_job_invocation_span_names_its_job(run: Run) -> None:
    invocations = run.spans("archiver.poll_job")
    assert {s["kind"] for s in invocations} == {"CONSUMER"}
    with_job = Counter(s["attributes"].get(JOB_ID) for s in invocations)
    assert set(with_job) == {*run.jobs, run.ghost, None}  # None: the two poison messages
    assert with_job[None] == 2


def test_language_calls_are_client_spans_under_their_invocation(run: Run) -> None:
    calls = run.spans("Language GET")
    assert len(calls) >= len(run.jobs) + 1
    for span in calls:
        assert span["kind"] == "CLIENT"
        assert span["attributes"][JOB_ID] in {*run.jobs, run.ghost}
        assert ancestors(run, span)[-1] == "archiver.poll_job"
    ghost = [s for s in calls if s["attributes"][JOB_ID] == run.ghost]
    assert ghost
    assert all(s["status"] == "ERROR" for s in ghost)


def test_storage_calls_nest_under_the_invocation_and_the_sweep(run: Run) -> None:
    roots = Counter(
        ancestors(run, span)[-1]
        for span in run.spans()
        if span["name"].startswith(("ContainerClient.", "BlobClient.", "QueueClient."))
        and ancestors(run, span)
    )
    assert roots["archiver.poll_job"] >= len(run.jobs) + 2  # every manifest and poison write
    assert roots["archiver.sweep_ledger"] >= 1  # the listing and the re-drive


def test_the_sweep_is_one_span_with_its_findings(run: Run) -> None:
    (sweep,) = run.spans("archiver.sweep_ledger")
    assert sweep["parentId"] is None
    assert sweep["attributes"]["overdue"] >= 1


# --- off -----------------------------------------------------------------------------------------------


async def test_without_a_connection_string_no_telemetry_package_is_imported(
    azurite: Azurite, emulator: Any
) -> None:
    """Through the real entry points: the runtime's choice of recorder (``shared.runtime``) and every
    module the app imports on the way."""
    job = stack_environ(azurite, emulator.base_url)
    async with aiohttp.ClientSession() as http:
        submitted = await submit_job(
            http, emulator.base_url, key=EMULATOR_KEY, documents=documents(1), tasks=DEFAULT_TASKS
        )
    exported = await run_probe("off", job, messages=[submitted.job_id], jobs=[submitted.job_id])
    assert exported["modules"] == [], f"imported without telemetry: {exported['modules']}"


def test_providers_set_up_before_the_app_are_used_not_configured_again(run: Run) -> None:
    """As when the Functions worker configured the distro itself: exporting twice would double
    every item, so the app only records through the providers it finds."""
    assert "opentelemetry.sdk.trace" in run.exported["modules"]
    assert not any(name.startswith("azure.monitor") for name in run.exported["modules"])


# --- the real exporter ---------------------------------------------------------------------------------


def test_azure_monitor_receives_the_outcome_records_with_job_dimensions(
    exported: tuple[Run, Ingestion],
) -> None:
    run, ingestion = exported
    outcomes = [m for m in ingestion.of_type("MessageData") if m["message"].startswith(OUTCOME_RECORD)]
    archived = {
        m["properties"][JOB_ID]: m["properties"] for m in outcomes if m["properties"][OUTCOME] == "archived"
    }
    assert set(archived) == set(run.jobs)
    for job_id, correlation_id in run.jobs.items():
        assert archived[job_id].get(CORRELATION_ID) == correlation_id
        assert archived[job_id][STATUS] == "succeeded"
        assert float(archived[job_id][LAG_SECONDS]) >= 0


def test_azure_monitor_receives_every_archiver_metric(exported: tuple[Run, Ingestion]) -> None:
    _, ingestion = exported
    names = {metric["name"] for data in ingestion.of_type("MetricData") for metric in data["metrics"]}
    assert {m.value for m in Metric} <= names
    archived = [d for d in ingestion.of_type("MetricData") if d["metrics"][0]["name"] == Metric.JOBS_ARCHIVED]
    assert sum(d["metrics"][0]["value"] for d in archived) == 3
    assert {d["properties"][STATUS] for d in archived} == {"succeeded"}


def test_azure_monitor_receives_the_spans_with_the_distro_s_storage_tracing(
    exported: tuple[Run, Ingestion],
) -> None:
    run, ingestion = exported
    dependencies = ingestion.of_type("RemoteDependencyData")
    language_host = run.environ["LANGUAGE_ENDPOINT"].removeprefix("http://")
    language = [d for d in dependencies if d["type"] == "HTTP" and d["target"] == language_host]
    assert {d["properties"][JOB_ID] for d in language} >= set(run.jobs)
    # HTTP dependencies without the query string (the service's own paging parameters stay out).
    assert all("?" not in d["data"] for d in language)
    # azure-core's plugin, enabled by the distro: blob writes appear as dependencies too.
    assert any(d["name"].startswith("BlobClient.") or "upload_blob" in d["name"] for d in dependencies)
    # The invocation is a consumer span: without a parent (no host here) it is a request.
    invocations = [r for r in ingestion.of_type("RequestData") if r["name"] == "archiver.poll_job"]
    assert {r["properties"].get(JOB_ID) for r in invocations} >= set(run.jobs)


def test_the_distro_is_configured_once_per_process(exported: tuple[Run, Ingestion]) -> None:
    """The probe built the runtime twice; a second configuration would export every record twice."""
    run, _ = exported
    assert run.exported["logHandlers"] == 1
    assert "azure.monitor.opentelemetry" in run.exported["modules"]


def test_only_the_local_ingestion_endpoint_was_called(exported: tuple[Run, Ingestion]) -> None:
    _, ingestion = exported
    assert ingestion.envelopes
    assert {path for path in ingestion.paths if "track" in path} <= {"/v2.1/track", "/v2/track"}


# --- the worker's conditions: root logger at INFO, the real exporter, then idle ------------------------


def is_app_logger(name: str) -> bool:
    return name == "archiver" or name.startswith("archiver.")


#: Application Insights' severity levels below WARNING (``severityLevel`` of MessageData: 0 Verbose,
#: 1 Information, 2 Warning, 3 Error, 4 Critical).
BELOW_WARNING: Final = {0, 1}
WARNING_LEVEL: Final = 2
#: Items one job archived on its first poll may cost, all in its invocation's trace: the request,
#: the outcome record, the Language GET and two dependencies per storage call (the SDK's call and
#: its HTTP request). Measured: 17 (4 jobs, 68 items); metrics are per export, not per job.
ITEMS_PER_ARCHIVED_JOB: Final = 20
#: Live Metrics while no one watches it in the portal: one ping per 5 s, no telemetry.
LIVE_METRICS_PING_INTERVAL: Final = 5.0


def test_no_library_info_record_is_exported_where_the_worker_configured_the_distro(run: Run) -> None:
    """The probe's root logger is at INFO and its handler was installed before the app's first
    invocation, as the Functions worker does: the app filters that handler too."""
    libraries = [
        (r["logger"], r["body"], r["severity"]) for r in run.logs() if not is_app_logger(r["logger"])
    ]
    assert (LIBRARY_LOGGER, LIBRARY_WARNING, "WARN") in libraries
    assert all(severity in {"WARN", "ERROR", "FATAL"} for _, _, severity in libraries), libraries


def test_no_library_info_record_reaches_azure_monitor(exported: tuple[Run, Ingestion]) -> None:
    _, ingestion = exported
    libraries = [
        (r["properties"]["logger_name"], r["message"], r["severityLevel"])
        for r in ingestion.of_type("MessageData")
        if not is_app_logger(r["properties"]["logger_name"])
    ]
    assert (LIBRARY_LOGGER, LIBRARY_WARNING, WARNING_LEVEL) in libraries
    assert all(severity not in BELOW_WARNING for _, _, severity in libraries), libraries


@pytest.fixture
def worker_like(worker_like_export: IdleRun) -> IdleRun:
    return worker_like_export


def test_with_the_root_logger_at_info_no_sdk_or_exporter_info_record_is_exported(
    worker_like: IdleRun,
) -> None:
    records = worker_like.ingestion.of_type("MessageData")
    chatter = [
        (r["properties"]["logger_name"], r["message"])
        for r in records
        if not is_app_logger(r["properties"]["logger_name"]) and r["severityLevel"] in BELOW_WARNING
    ]
    assert chatter == []
    outcomes = [r for r in records if r["message"].startswith(OUTCOME_RECORD)]
    assert sorted(r["properties"][JOB_ID] for r in outcomes) == sorted(worker_like.jobs)


def test_each_archived_job_costs_a_bounded_number_of_items(worker_like: IdleRun) -> None:
    envelopes = worker_like.ingestion.envelopes
    invocations = {
        e["tags"]["ai.operation.id"]
        for e in envelopes
        if e["data"]["baseType"] == "RequestData" and e["data"]["baseData"]["name"] == "archiver.poll_job"
    }
    assert len(invocations) == len(worker_like.jobs)  # each archived on its first poll
    items = Counter(
        e["data"]["baseType"] for e in envelopes if e["tags"].get("ai.operation.id") in invocations
    )
    assert items["MessageData"] == items["RequestData"] == len(worker_like.jobs)
    assert sum(items.values()) <= ITEMS_PER_ARCHIVED_JOB * len(worker_like.jobs), items


def test_an_idle_app_exports_only_metrics_at_the_export_interval(worker_like: IdleRun) -> None:
    idle = worker_like.ingestion.tracks(since=worker_like.idle_from, until=worker_like.idle_to)
    assert idle, "metrics are exported while idle"
    assert all(r.base_types == {"MetricData"} for r in idle), [(r.at, r.base_types) for r in idle]
    # One export per interval, never more often (the timer may slip under load, never run ahead).
    seconds = worker_like.idle_to - worker_like.idle_from
    assert len(idle) <= seconds / worker_like.metric_interval + 1
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(idle)]
    assert all(gap >= worker_like.metric_interval / 2 for gap in gaps), gaps


def test_live_metrics_only_pings_its_own_endpoint_while_no_one_watches(worker_like: IdleRun) -> None:
    live = [r for r in worker_like.ingestion.requests if r.path not in TRACK_PATHS]
    assert live, "Live Metrics is on by default in the distro"
    assert {r.path for r in live} == {"/QuickPulseService.svc/ping"}
    idle = [r for r in live if worker_like.idle_from <= r.at < worker_like.idle_to]
    assert len(idle) <= (worker_like.idle_to - worker_like.idle_from) / LIVE_METRICS_PING_INTERVAL + 1
