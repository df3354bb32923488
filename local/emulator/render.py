"""Renders a job's Progress as the AnalyzeTextJobState JSON of a given api-version and page."""

from __future__ import annotations

import math
from dataclasses import dataclass

from local.emulator.clock import format_job_time, format_task_time
from local.emulator.jobs import DocumentOutcome, Job, JobError, Progress, TaskPlan, TaskState
from local.emulator.offsets import to_index_units
from local.emulator.paging import PageRequest, Window, next_link, page_window
from local.emulator.recognizer import Match
from local.emulator.submission import CUSTOM
from local.emulator.versions import ResponseShape, response_shape

Json = dict[str, object]

RESULT_KINDS = {
    "EntityRecognition": "EntityRecognitionLROResults",
    CUSTOM: "CustomEntityRecognitionLROResults",
}
_LANGUAGE_NAMES = {
    "en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian",
    "pt": "Portuguese", "nl": "Dutch", "ja": "Japanese", "zh": "Chinese_Simplified",
}  # fmt: skip
_CHARACTERS_PER_TRANSACTION = 1000


@dataclass(frozen=True)
class RenderContext:
    api_version: str
    page: PageRequest
    page_size: int
    timestamp_field: str
    origin: str
    """scheme://host that nextLink points at."""


def render_job(job: Job, progress: Progress, context: RenderContext) -> Json:
    shape = response_shape(context.api_version)
    window = page_window(len(job.submission.documents), context.page, context.page_size)
    body: Json = {
        "jobId": job.job_id,
        "createdDateTime": format_job_time(job.created_at),
        context.timestamp_field: format_job_time(progress.updated_at),
        "expirationDateTime": format_job_time(job.expires_at),
        "status": progress.status,
    }
    if job.submission.display_name is not None:
        body["displayName"] = job.submission.display_name
    body["errors"] = [_job_error(error) for error in progress.errors]
    if context.page.wants_stats:
        body["statistics"] = _request_statistics(job)
    body["tasks"] = {
        "completed": sum(item.status == "succeeded" for item in progress.items),
        "failed": sum(item.status == "failed" for item in progress.items),
        "inProgress": progress.in_progress,
        "total": len(job.plans),
        "items": [_task_item(job, item, window, shape, context.page.wants_stats) for item in progress.items],
    }
    if window.has_more and any(item.status == "succeeded" for item in progress.items):
        body["nextLink"] = next_link(context.origin, job.job_id, context.api_version, context.page, window)
    return body


def _job_error(error: JobError) -> Json:
    return {"code": error.code, "message": error.message, "target": error.target}


def _task_item(job: Job, item: TaskState, window: Window, shape: ResponseShape, stats: bool) -> Json:
    spec = item.plan.spec
    body: Json = {"kind": RESULT_KINDS[spec.kind]}
    if spec.name is not None:
        body["taskName"] = spec.name
    body["lastUpdateDateTime"] = format_task_time(item.updated_at)
    body["status"] = item.status
    if item.status == "succeeded":
        body["results"] = _results(
            job, item.plan, item.plan.outcomes[window.start : window.stop], shape, stats
        )
    elif item.status == "cancelled":
        body["results"] = _results(job, item.plan, (), shape, stats=False)
    return body


def _results(
    job: Job, plan: TaskPlan, outcomes: tuple[DocumentOutcome, ...], shape: ResponseShape, stats: bool
) -> Json:
    results: Json = {}
    if stats:
        results["statistics"] = _request_statistics(job)
    results["documents"] = [
        _document(plan, outcome, shape, stats) for outcome in outcomes if outcome.matches is not None
    ]
    results["errors"] = [_document_error(outcome) for outcome in outcomes if outcome.matches is None]
    if shape.task_warnings:
        results["warnings"] = []
    if plan.spec.kind == CUSTOM:
        results["projectName"] = plan.spec.project_name
        results["deploymentName"] = plan.spec.deployment_name
    else:
        results["modelVersion"] = plan.spec.model_version
    return results


def _document(plan: TaskPlan, outcome: DocumentOutcome, shape: ResponseShape, stats: bool) -> Json:
    text = outcome.document.text
    custom = plan.spec.kind == CUSTOM
    body: Json = {
        "id": outcome.document.id,
        "entities": [
            _entity(text, match, plan.spec.string_index_type, shape, custom)
            for match in outcome.matches or ()
        ],
        "warnings": [],
    }
    if stats:
        characters = to_index_units(text, 0, len(text), plan.spec.string_index_type)[1]
        body["statistics"] = {"charactersCount": characters, "transactionsCount": _transactions(text)}
    if custom and shape.custom_detected_language:
        language = outcome.document.language or "en"
        body["detectedLanguage"] = {
            "name": _LANGUAGE_NAMES.get(language.split("-")[0], language),
            "iso6391Name": language,
            "confidenceScore": 1.0,
        }
    return body


def _entity(text: str, match: Match, index_type: str, shape: ResponseShape, custom: bool) -> Json:
    offset, length = to_index_units(text, match.start, match.end, index_type)
    label = match.label
    tagged = shape.tagged_entities and not custom
    entity: Json = {"text": text[match.start : match.end]}
    if tagged:
        entity["category"] = label.coarse_category
        entity["type"] = label.type
    else:
        entity["category"] = label.category
        if label.subcategory is not None:
            entity["subcategory"] = label.subcategory
    entity.update(offset=offset, length=length, confidenceScore=label.confidence)
    if tagged:
        entity["tags"] = [{"name": tag, "confidenceScore": label.confidence} for tag in label.tags]
        if shape.entity_metadata and match.metadata is not None:
            entity["metadata"] = dict(match.metadata)
    return entity


def _document_error(outcome: DocumentOutcome) -> Json:
    return {
        "id": outcome.document.id,
        "error": {
            "code": "InvalidArgument",
            "message": "Invalid Document in request.",
            "innererror": {"code": "InvalidDocument", "message": "Document text is empty."},
        },
    }


def _transactions(text: str) -> int:
    return max(1, math.ceil(len(text) / _CHARACTERS_PER_TRANSACTION))


def _request_statistics(job: Job) -> Json:
    """RequestStatistics over the whole job (not the page); validity is per document, so per task too."""
    documents = job.submission.documents
    valid = [document for document in documents if document.text.strip()]
    return {
        "documentsCount": len(documents),
        "validDocumentsCount": len(valid),
        "erroneousDocumentsCount": len(documents) - len(valid),
        "transactionsCount": sum(_transactions(document.text) for document in valid),
    }
