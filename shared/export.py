"""Entity rows out of archived task blobs: the flat shape downstream consumers read.

One row per entity, in the blob's order (documents as the service served them, entities in each
document as returned). Fields the service did not give are ``None``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Final

__all__ = ["EXPORT_FIELDS", "entity_rows"]

#: The row's fields, in the order of the CSV columns (DESIGN.md, "Operator command line").
EXPORT_FIELDS: Final = (
    "jobId",
    "correlationId",
    "taskName",
    "kind",
    "documentId",
    "category",
    "subcategory",
    "text",
    "offset",
    "length",
    "confidenceScore",
)


def entity_rows(task_blob: bytes, *, job_id: str, correlation_id: str | None) -> Iterator[dict[str, Any]]:
    """The rows of one task blob (a task item as archived); a task without results has none."""
    item = json.loads(task_blob)
    if not isinstance(item, Mapping):
        return
    results = item.get("results")
    documents = results.get("documents") if isinstance(results, Mapping) else None
    for document in documents if isinstance(documents, list) else []:
        if not isinstance(document, Mapping) or not isinstance(document.get("entities"), list):
            continue
        for entity in document["entities"]:
            if not isinstance(entity, Mapping):
                continue
            yield {
                "jobId": job_id,
                "correlationId": correlation_id,
                "taskName": item.get("taskName"),
                "kind": item.get("kind"),
                "documentId": document.get("id"),
                "category": entity.get("category"),
                "subcategory": entity.get("subcategory"),
                "text": entity.get("text"),
                "offset": entity.get("offset"),
                "length": entity.get("length"),
                "confidenceScore": entity.get("confidenceScore"),
            }
