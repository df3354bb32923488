"""Job models: one page of ``GET .../jobs/{id}`` and the merge of every page into task items.

The service's JSON is kept verbatim (unknown fields included) for the archive; only what the app
decides on is read out: status, timestamps (either job-level spelling), ``nextLink`` and the
task items. See CONTRACT.md §2-3 and "Surprises".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from .timefmt import parse_time

__all__ = [
    "TERMINAL_STATUSES",
    "UNFINISHED_STATUSES",
    "JobPage",
    "MalformedJob",
    "merge_task_items",
    "parse_job_page",
]

TERMINAL_STATUSES: Final = frozenset({"succeeded", "partiallyCompleted", "failed", "cancelled"})
UNFINISHED_STATUSES: Final = frozenset({"notStarted", "running", "cancelling"})


class MalformedJob(ValueError):
    """A 200 response whose body is not a usable job state."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobPage:
    """One page of a job's state, with the raw JSON it came from."""

    raw: dict[str, Any]
    job_id: str
    status: str
    created: datetime | None
    last_updated: datetime | None
    expires: datetime | None
    display_name: str | None
    errors: list[Any]
    items: list[dict[str, Any]]
    next_link: str | None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_known_unfinished(self) -> bool:
        return self.status in UNFINISHED_STATUSES


def parse_job_page(body: Any, *, job_id: str) -> JobPage:
    """Read the fields the app decides on; raise ``MalformedJob`` when they are unusable."""
    if not isinstance(body, dict):
        raise MalformedJob("job state is not a JSON object")
    served_id = body.get("jobId")
    if served_id is not None and str(served_id).lower() != job_id:
        raise MalformedJob("job state names another job")
    status = body.get("status")
    if not isinstance(status, str) or not status:
        raise MalformedJob("job state has no status")
    tasks = body.get("tasks")
    if tasks is not None and not isinstance(tasks, dict):
        raise MalformedJob("tasks is not an object")
    items: Any = (tasks or {}).get("items")
    if items is None:
        items = []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise MalformedJob("tasks.items is not a list of objects")
    errors = body.get("errors") or []
    if not isinstance(errors, list):
        raise MalformedJob("errors is not a list")
    next_link = body.get("nextLink")
    if next_link is not None and not isinstance(next_link, str):
        raise MalformedJob("nextLink is not a string")
    display_name = body.get("displayName")
    try:
        return JobPage(
            raw=body,
            job_id=job_id,
            status=status,
            created=parse_time(body.get("createdDateTime")),
            # The spec says lastUpdatedDateTime; the service has also sent lastUpdateDateTime.
            last_updated=parse_time(body.get("lastUpdatedDateTime") or body.get("lastUpdateDateTime")),
            expires=parse_time(body.get("expirationDateTime")),
            display_name=display_name if isinstance(display_name, str) else None,
            errors=errors,
            items=items,
            next_link=next_link or None,
        )
    except ValueError as exc:
        raise MalformedJob(f"job state has a malformed timestamp ({exc})") from None


def merge_task_items(pages: Sequence[JobPage]) -> list[dict[str, Any]]:
    """Every task item of the first page, with ``results.documents`` and ``results.errors`` of
    all pages concatenated in the service's order.

    Pages window over documents and every page lists the same tasks, so items are matched by
    (``kind``, ``taskName``) and, for repeated keys, by their order among equals.
    """
    if not pages:
        return []
    merged = [_copy_item(item) for item in pages[0].items]
    for page in pages[1:]:
        slots = _index(merged)
        seen: dict[tuple[Any, Any], int] = {}
        for item in page.items:
            key = (item.get("kind"), item.get("taskName"))
            nth = seen.get(key, 0)
            seen[key] = nth + 1
            candidates = slots.get(key, [])
            if nth >= len(candidates):
                raise MalformedJob(f"a later page has a task the first page lacks: {key[0]}/{key[1]}")
            target = merged[candidates[nth]]
            for name in ("documents", "errors"):
                extra = _results(item).get(name)
                if extra:
                    if not isinstance(extra, list):
                        raise MalformedJob(f"results.{name} is not a list")
                    target.setdefault("results", {}).setdefault(name, []).extend(extra)
    return merged


def _index(items: list[dict[str, Any]]) -> dict[tuple[Any, Any], list[int]]:
    slots: dict[tuple[Any, Any], list[int]] = {}
    for position, item in enumerate(items):
        slots.setdefault((item.get("kind"), item.get("taskName")), []).append(position)
    return slots


def _results(item: dict[str, Any]) -> dict[str, Any]:
    results = item.get("results")
    return results if isinstance(results, dict) else {}


def _copy_item(item: dict[str, Any]) -> dict[str, Any]:
    """Copy deep enough that merging never mutates the page it came from."""
    copy = dict(item)
    results = item.get("results")
    if isinstance(results, dict):
        copy["results"] = dict(results)
        for name in ("documents", "errors"):
            value = results.get(name)
            if isinstance(value, list):
                copy["results"][name] = list(value)
            elif value is not None:
                raise MalformedJob(f"results.{name} is not a list")
    return copy
