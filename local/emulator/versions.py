"""Supported api-versions and how each one shapes the job results."""

from __future__ import annotations

from dataclasses import dataclass

# The versions of the saved spec examples, the GA versions named in CONTRACT.md §7, and
# 2023-11-15-preview (the version the cancel examples' Operation-Location points at).
SUPPORTED_API_VERSIONS = frozenset(
    {
        "2022-05-01",
        "2022-10-01-preview",
        "2023-04-01",
        "2023-04-15-preview",
        "2023-11-15-preview",
        "2024-11-01",
        "2024-11-15-preview",
        "2025-05-15-preview",
        "2025-11-01",
        "2026-05-01",
    }
)


@dataclass(frozen=True)
class ResponseShape:
    """Version-dependent parts of the AnalyzeTextJobState body."""

    tagged_entities: bool
    """Prebuilt entities carry `type` + `tags` and a coarse `category` instead of `subcategory`."""
    entity_metadata: bool
    """Prebuilt entities carry `metadata` where the value is resolvable (EntityWithMetadata)."""
    custom_detected_language: bool
    """Custom NER documents carry `detectedLanguage`."""
    task_warnings: bool
    """Task `results` carry `warnings: []`, as in the 2022-10-01-preview swagger example."""


def response_shape(api_version: str) -> ResponseShape:
    """Shape of the results for a supported api-version."""
    released = api_version[:10]  # ISO dates order lexicographically
    return ResponseShape(
        tagged_entities=released >= "2023-04-15",
        entity_metadata=released >= "2024-11-01",
        custom_detected_language=released >= "2025-05-15",
        task_warnings=api_version == "2022-10-01-preview",
    )
