"""Job models: one page of ``GET .../jobs/{id}`` and the merge of every page into task items.

The service's JSON is kept verbatim (unknown fields included) for the archive; only what the app
decides on is read out: status, timestamps (either job-level spelling), ``nextLink`` and the
task items. See CONTRACT.md §2-3 and "Surprises".
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from .jsontext import SURROGATE_ESCAPE, nesting_depth, well_formed
from .timefmt import parse_time

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_ANSWER_DEPTH",
    "TERMINAL_STATUSES",
    "UNFINISHED_STATUSES",
    "JobPage",
    "MalformedJob",
    "merge_task_items",
    "parse_answer",
    "parse_job_page",
]

#: The largest page the app reads. A job holds at most 25 documents and 125,000 characters
#: (CONTRACT.md §3), a few megabytes of entities per task at the very worst; beyond this an answer
#: is not a job state, and parsing it would only cost memory (a batch polls 16 jobs at once).
MAX_ANSWER_BYTES: Final = 16 * 1024 * 1024
#: The deepest nesting of arrays and objects the app parses; a real job state nests about a dozen
#: levels (job, tasks, items, results, documents, entities, metadata, errors with innererror).
MAX_ANSWER_DEPTH: Final = 64

_MAX_STATUS_CHARS: Final = 64
_EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST: Final = datetime(2200, 1, 1, tzinfo=UTC)

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


def parse_answer(body: bytes, *, job_id: str) -> JobPage:
    """A page as the service sent it (the bytes of a 200): bounded, strict JSON, then the job state.

    Raises ``MalformedJob`` (and nothing else) for anything unusable. Lone surrogates in the
    text are replaced by U+FFFD (``shared.jsontext``), so whatever is archived encodes as UTF-8.
    """
    if len(body) > MAX_ANSWER_BYTES:
        raise MalformedJob(f"the answer has {len(body)} bytes, more than the {MAX_ANSWER_BYTES} allowed")
    if nesting_depth(body) > MAX_ANSWER_DEPTH:
        raise MalformedJob(f"the answer nests deeper than the {MAX_ANSWER_DEPTH} levels allowed")
    # Bytes that are not UTF-8 become U+FFFD too; a byte-order mark is not part of the JSON.
    text = body.decode("utf-8-sig", "replace")
    try:
        value = json.loads(text, parse_constant=_not_a_number, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise MalformedJob(f"the answer is not valid JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # a number JSON cannot hold; the depth check
        raise MalformedJob(f"the answer is not valid JSON ({exc})") from None
    if SURROGATE_ESCAPE.search(text):  # the only way decoded text can carry a lone surrogate
        value = well_formed(value)
    return parse_job_page(value, job_id=job_id)


def _not_a_number(name: str) -> Any:
    # NaN and Infinity are not JSON; archived, they would make blobs no strict reader can parse.
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is beyond a double")
    return value


def parse_job_page(body: Any, *, job_id: str) -> JobPage:
    """Read the fields the app decides on; raise ``MalformedJob`` when they are unusable.

    What the app decides on or counts must have its type: ``status`` and ``nextLink`` strings,
    ``tasks.items`` a list of objects whose ``kind`` and ``taskName`` are strings (or absent),
    ``results`` an object (or absent) whose ``documents`` and ``errors`` are lists of objects, each
    document's ``entities`` a list. Everything else is archived as served.
    """
    if not isinstance(body, dict):
        raise MalformedJob("job state is not a JSON object")
    served_id = body.get("jobId")
    if served_id is not None and str(served_id).lower() != job_id:
        raise MalformedJob("job state names another job")
    status = body.get("status")
    if not isinstance(status, str) or not status:
        raise MalformedJob("job state has no status")
    if len(status) > _MAX_STATUS_CHARS:
        raise MalformedJob("job state's status is not a status (too long)")
    tasks = body.get("tasks")
    if tasks is not None and not isinstance(tasks, dict):
        raise MalformedJob("tasks is not an object")
    items: Any = (tasks or {}).get("items")
    if items is None:
        items = []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise MalformedJob("tasks.items is not a list of objects")
    for item in items:
        _check_item(item)
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
            created=_time(body.get("createdDateTime")),
            # The spec says lastUpdatedDateTime; the service has also sent lastUpdateDateTime.
            last_updated=_time(body.get("lastUpdatedDateTime") or body.get("lastUpdateDateTime")),
            expires=_time(body.get("expirationDateTime")),
            display_name=display_name if isinstance(display_name, str) else None,
            errors=errors,
            items=items,
            next_link=next_link or None,
        )
    except (ValueError, OverflowError) as exc:
        raise MalformedJob(f"job state has a malformed timestamp ({exc})") from None


def _time(value: Any) -> datetime | None:
    """A timestamp of the job, within years the app can compute with (``created`` + 24 h and the
    like never overflow); ``ValueError`` outside them."""
    parsed = parse_time(value)
    if parsed is not None and not (_EARLIEST <= parsed < _LATEST):
        raise ValueError(f"{parsed.isoformat()} is outside {_EARLIEST.year}-{_LATEST.year - 1}")
    return parsed


def _check_item(item: dict[str, Any]) -> None:
    for name in ("kind", "taskName"):
        if item.get(name) is not None and not isinstance(item[name], str):
            raise MalformedJob(f"a task's {name} is not a string")
    results = item.get("results")
    if results is None:
        return
    if not isinstance(results, dict):
        raise MalformedJob(f"results of task {item.get('taskName')!r} is not an object")
    for name in ("documents", "errors"):
        entries = results.get(name)
        if entries is not None and (
            not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries)
        ):
            raise MalformedJob(f"results.{name} of task {item.get('taskName')!r} is not a list of objects")
    for document in results.get("documents") or ():
        entities = document.get("entities")
        if entities is not None and not isinstance(entities, list):
            raise MalformedJob(f"entities of a document of task {item.get('taskName')!r} is not a list")


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
                if not extra:
                    continue
                results = target.get("results")
                if not isinstance(results, dict):  # absent or null on the first page
                    results = target["results"] = {}
                results[name] = [*(results.get(name) or ()), *extra]
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
    if isinstance(results, dict):  # parse_job_page checked it and its lists
        copy["results"] = dict(results)
    return copy
