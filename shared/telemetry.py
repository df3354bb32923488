"""Telemetry names, the job logging helper, and the recorder of metrics and spans.

Every metric, attribute and record name the app emits (and the alerts and the workbook in
``infra/`` query) is defined here, once. This module imports no telemetry package, nor
``shared.otel``, which depends on these names: without ``APPLICATIONINSIGHTS_CONNECTION_STRING``
the app records through the base ``Telemetry``, which does nothing, and the cold start stays as it
is. Where the process is wired (``shared.runtime.configure_telemetry``) the connection string
chooses between that and ``shared.otel`` (OpenTelemetry and the Azure Monitor distro).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, Final, Literal, Protocol

__all__ = [
    "ATTEMPT",
    "CONNECTION_STRING_SETTING",
    "CORRELATION_ID",
    "DELAY_SECONDS",
    "DEQUEUE_COUNT",
    "JOB_ID",
    "LAG_SECONDS",
    "METER_NAME",
    "OUTCOME",
    "OUTCOME_RECORD",
    "QUEUE",
    "REASON",
    "RESULT",
    "STATUS",
    "AttributeValue",
    "JobLog",
    "LanguageResult",
    "Metric",
    "PollResult",
    "QueueRole",
    "SpanKindName",
    "SpanRecorder",
    "Telemetry",
    "job_attributes",
    "job_log",
    "reason_code",
]

#: The app setting that turns telemetry on (Application Insights' own name).
CONNECTION_STRING_SETTING: Final = "APPLICATIONINSIGHTS_CONNECTION_STRING"
#: The OpenTelemetry meter (and tracer) of the app.
METER_NAME: Final = "archiver"


class Metric(StrEnum):
    """The app's metrics (DESIGN.md, "Telemetry"); Application Insights stores them by these names."""

    JOBS_ARCHIVED = "archiver.jobs.archived"  # counter, attribute STATUS
    MESSAGES_POISONED = "archiver.messages.poisoned"  # counter, attribute REASON (the code)
    POLLS = "archiver.polls"  # counter, attribute RESULT
    ARCHIVE_LAG = "archiver.archive.lag"  # histogram, seconds: lastUpdatedDateTime -> archivedAt
    LEDGER_PENDING = "archiver.ledger.pending"  # gauge, records the sweep found
    LEDGER_OVERDUE = "archiver.ledger.overdue"  # gauge, overdue records the sweep found
    LANGUAGE_REQUESTS = "archiver.language.requests"  # counter, attribute RESULT (LanguageResult)
    LANGUAGE_WAIT = "archiver.language.wait"  # histogram, seconds a request waited for the budget
    #: The heartbeat: one per sweep run, whatever it finds. Its absence is the alert "the app is dead".
    SWEEP_RUNS = "archiver.sweep.runs"  # counter
    QUEUE_LENGTH = "archiver.queue.length"  # gauge, approximate messages, attribute QUEUE
    #: gauge, seconds the queue's first visible message has waited since insertion, attribute QUEUE
    QUEUE_AGE = "archiver.queue.age"


class PollResult(StrEnum):
    """What one GET of a job's state told: attribute RESULT of ``archiver.polls``."""

    UNFINISHED = "unfinished"
    ENDED = "ended"
    FAILED = "failed"


class LanguageResult(StrEnum):
    """How one request to the Language resource went: attribute RESULT of ``archiver.language.requests``."""

    OK = "ok"  # an answer about the job (2xx, or 404: the job is gone)
    THROTTLED = "throttled"  # 429
    ERROR = "error"  # 5xx, other 4xx, timeouts, resets
    #: 404 from the gateway for the route itself, not the job (a wrong LANGUAGE_API_VERSION or
    #: endpoint path, ``shared.routecheck``): a configuration fault, the job is kept.
    UNKNOWN_ROUTE = "unknownRoute"


class QueueRole(StrEnum):
    """Which of the app's queues a backlog metric is about: attribute QUEUE (the role, not the
    configured name, so that the alerts need no queue names)."""

    JOBS = "jobs"
    POISON = "poison"
    EVENTS = "events"


# Attribute names: of log records (Application Insights custom dimensions), metrics and spans.
JOB_ID: Final = "jobId"
CORRELATION_ID: Final = "correlationId"
OUTCOME: Final = "outcome"
STATUS: Final = "status"
ATTEMPT: Final = "attempt"
DEQUEUE_COUNT: Final = "dequeueCount"
#: On the outcome record of an archived job: Application Insights keeps histograms as
#: count/sum/min/max only, so the p95 lag alert computes percentiles over this attribute.
LAG_SECONDS: Final = "lagSeconds"
#: On the outcome record of a rescheduled job: the wait before its next poll.
DELAY_SECONDS: Final = "delaySeconds"
REASON: Final = "reason"
RESULT: Final = "result"
QUEUE: Final = "queue"
#: The first word of the one outcome record per invocation (its attributes say the rest).
OUTCOME_RECORD: Final = "archiver.outcome"

AttributeValue = str | bool | int | float
#: internal: work inside the app; client: a call to another service (an Application Insights
#: dependency); consumer: the processing of a queue message (a request when it has no parent).
SpanKindName = Literal["internal", "client", "consumer"]


def reason_code(reason: str) -> str:
    """The code of a poison reason (``"invalid-job-id: ..."`` -> ``"invalid-job-id"``)."""
    return reason.split(":", 1)[0].strip()


def job_attributes(job_id: str | None, correlation_id: str | None = None) -> dict[str, str]:
    """The record attributes of a log record about a job (``extra=`` of a logging call)."""
    attributes = {} if job_id is None else {JOB_ID: job_id}
    if correlation_id is not None:
        attributes[CORRELATION_ID] = correlation_id
    return attributes


class JobLog(logging.LoggerAdapter[logging.Logger]):
    """A logger whose every record carries the job's attributes, merged with the call's ``extra``."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def job_log(logger: logging.Logger, *, job_id: str | None, correlation_id: str | None = None) -> JobLog:
    return JobLog(logger, job_attributes(job_id, correlation_id))


class SpanRecorder(Protocol):
    """The part of a span the app writes to."""

    def set_attribute(self, key: str, value: AttributeValue) -> None: ...

    def set_error(self, description: str) -> None: ...


class _NoSpan:
    def set_attribute(self, key: str, value: AttributeValue) -> None:
        pass

    def set_error(self, description: str) -> None:
        pass


_NO_SPAN: Final = _NoSpan()


class Telemetry:
    """Where the app's metrics and spans go. This base records nothing: telemetry is off."""

    @contextmanager
    def span(
        self,
        name: str,
        *,
        kind: SpanKindName = "internal",
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> Iterator[SpanRecorder]:
        """A span around the block, current inside it."""
        yield _NO_SPAN

    def polled(self, result: PollResult) -> None:
        """One GET of a job's state."""

    def job_archived(self, *, status: str, lag_seconds: float | None) -> None:
        """A manifest committed by this process."""

    def message_poisoned(self, *, reason: str) -> None:
        """A message sent to the poison queue (``reason`` as written there)."""

    def ledger_swept(self, *, pending: int, overdue: int) -> None:
        """What one sweep found in the ledger."""

    def language_request(self, result: LanguageResult, *, waited: float) -> None:
        """One request to the Language resource, after ``waited`` seconds for the request budget."""

    def sweep_ran(self) -> None:
        """The heartbeat: the timer fired and a sweep runs."""

    def queue_backlog(self, queue: QueueRole, *, length: int, oldest_age: float) -> None:
        """A queue's approximate length and the age of its first visible message (0: none)."""

    def flush(self) -> None:
        """Export what is buffered (a clean shutdown)."""
