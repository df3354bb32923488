"""Validation of the submit body (AnalyzeTextJobsInput) into an immutable job request."""

from __future__ import annotations

import json
from dataclasses import dataclass

from local.emulator.offsets import DEFAULT_STRING_INDEX_TYPE, STRING_INDEX_TYPES

MAX_DOCUMENTS = 25
MAX_TOTAL_CHARACTERS = 125_000
PREBUILT = "EntityRecognition"
CUSTOM = "CustomEntityRecognition"
# Model versions the prebuilt NER accepted in real traffic; "latest" resolves to the newest.
MODEL_VERSIONS = ("latest", "2020-04-01", "2021-01-15", "2021-06-01")
LATEST_MODEL_VERSION = "2021-06-01"


class InvalidSubmission(ValueError):
    """The body is rejected with 400 InvalidRequest; the attributes fill the ErrorResponse."""

    def __init__(self, inner_code: str, inner_message: str, *, message: str = "Invalid Request.") -> None:
        super().__init__(inner_message)
        self.message = message
        self.inner_code = inner_code
        self.inner_message = inner_message


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    language: str | None


@dataclass(frozen=True)
class TaskSpec:
    kind: str
    name: str | None
    string_index_type: str
    model_version: str | None = None
    project_name: str | None = None
    deployment_name: str | None = None


@dataclass(frozen=True)
class Submission:
    display_name: str | None
    documents: tuple[Document, ...]
    tasks: tuple[TaskSpec, ...]


def parse_submission(raw: bytes) -> Submission:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidSubmission("InvalidRequestBodyFormat", f"Request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidSubmission("InvalidRequestBodyFormat", "Request body must be a JSON object.")
    display_name = body.get("displayName")
    if display_name is not None and not isinstance(display_name, str):
        raise _bad_parameter("displayName must be a string.")
    return Submission(display_name, _documents(body.get("analysisInput")), _tasks(body.get("tasks")))


def _bad_parameter(detail: str) -> InvalidSubmission:
    return InvalidSubmission("InvalidParameterValue", detail, message="Invalid parameter in request")


def _bad_document(detail: str) -> InvalidSubmission:
    return InvalidSubmission("InvalidDocument", detail, message="Invalid document in request.")


def _documents(analysis_input: object) -> tuple[Document, ...]:
    raw_documents = analysis_input.get("documents") if isinstance(analysis_input, dict) else None
    if not isinstance(raw_documents, list) or not raw_documents:
        raise InvalidSubmission("MissingInputDocuments", "Missing input documents.")
    if len(raw_documents) > MAX_DOCUMENTS:
        raise InvalidSubmission(
            "InvalidDocumentBatch",
            f"Batch request contains too many records. Max {MAX_DOCUMENTS} records are permitted.",
            message="Invalid document in request.",
        )
    documents = tuple(_document(raw) for raw in raw_documents)
    if len({document.id for document in documents}) != len(documents):
        raise _bad_document("Request contains duplicated Ids. Make sure each document has a unique Id.")
    if sum(len(document.text) for document in documents) > MAX_TOTAL_CHARACTERS:
        raise InvalidSubmission(
            "InvalidDocumentBatch",
            f"Request payload exceeds {MAX_TOTAL_CHARACTERS} characters in total.",
            message="Invalid document in request.",
        )
    return documents


def _document(raw: object) -> Document:
    if not isinstance(raw, dict):
        raise _bad_document("Each document must be a JSON object.")
    doc_id, text, language = raw.get("id"), raw.get("text"), raw.get("language")
    if not isinstance(doc_id, str) or not doc_id:
        raise _bad_document("Document id must be a non-empty string.")
    if not isinstance(text, str):
        raise _bad_document(f"Document {doc_id} must have a string text.")
    if language is not None and not isinstance(language, str):
        raise _bad_document(f"Document {doc_id} language must be a string.")
    return Document(doc_id, text, language)


def _tasks(raw_tasks: object) -> tuple[TaskSpec, ...]:
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise _bad_parameter("At least one task is required.")
    return tuple(_task(raw) for raw in raw_tasks)


def _task(raw: object) -> TaskSpec:
    if not isinstance(raw, dict):
        raise _bad_parameter("Each task must be a JSON object.")
    kind, name, parameters = raw.get("kind"), raw.get("taskName"), raw.get("parameters", {})
    if kind not in (PREBUILT, CUSTOM):
        raise _bad_parameter(f"Task kind {kind!r} is not supported; use {PREBUILT} or {CUSTOM}.")
    if name is not None and not isinstance(name, str):
        raise _bad_parameter("taskName must be a string.")
    if not isinstance(parameters, dict):
        raise _bad_parameter("Task parameters must be a JSON object.")
    index_type = parameters.get("stringIndexType", DEFAULT_STRING_INDEX_TYPE)
    if index_type not in STRING_INDEX_TYPES:
        raise _bad_parameter(f"stringIndexType must be one of {', '.join(STRING_INDEX_TYPES)}.")
    if kind == PREBUILT:
        model_version = parameters.get("modelVersion", "latest")
        if model_version not in MODEL_VERSIONS:
            raise _bad_parameter(
                f"Job task parameter value {model_version} is not supported for model-version parameter "
                f"for job task type NamedEntityRecognition. Supported values {','.join(MODEL_VERSIONS)}."
            )
        resolved = LATEST_MODEL_VERSION if model_version == "latest" else model_version
        return TaskSpec(kind, name, index_type, model_version=resolved)
    project, deployment = parameters.get("projectName"), parameters.get("deploymentName")
    if not isinstance(project, str) or not project or not isinstance(deployment, str) or not deployment:
        raise _bad_parameter(f"{CUSTOM} tasks require parameters.projectName and parameters.deploymentName.")
    return TaskSpec(kind, name, index_type, project_name=project, deployment_name=deployment)
