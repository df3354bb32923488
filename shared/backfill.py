"""Backfill: put job messages on the jobs queue from lines of text, judged by the app's own parser.

Each non-empty line is a message body as the queue accepts it (a bare job id, an operation-location
URL, or a JSON object). A line the poll function would poison is reported with its reason and not
sent; with ``skip_archived`` a job that already has a manifest is not sent either.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Final

from .archive import ArchiveWriter
from .messages import InvalidMessage, parse_body
from .queues import JobQueues
from .settings import Settings
from .streams import ordered_map

__all__ = ["Backfill", "LineAction", "LineOutcome", "numbered_lines"]

_CONCURRENCY: Final = 16


class LineAction(StrEnum):
    ENQUEUED = "enqueued"
    INVALID = "invalid"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class LineOutcome:
    line: int  # 1-based, blank lines counted
    action: LineAction
    job_id: str | None
    reason: str | None  # invalid: the poison reason; skipped: why


#: A line is read up to this many bytes (far beyond any message, so the parser's reason states its
#: true size); a longer line comes as its head, oversized all the same, its rest never held in memory.
_LINE_LIMIT: Final = 1024 * 1024


async def numbered_lines(source: IO[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """The non-blank lines with their 1-based numbers (blank ones counted), line endings removed.

    A line longer than a message can be comes as its first ``_LINE_LIMIT`` bytes, which the parser
    refuses as oversized; the rest of it is read and dropped.
    """
    number = 0
    while line := source.readline(_LINE_LIMIT):
        number += 1
        if not line.endswith(b"\n"):
            while (rest := source.readline(_LINE_LIMIT)) and not rest.endswith(b"\n"):
                pass
        body = line.rstrip(b"\r\n")
        if body.strip():
            yield number, body


class Backfill:
    def __init__(
        self, *, queues: JobQueues, settings: Settings, archive: ArchiveWriter | None = None
    ) -> None:
        """``archive``, when given, is asked whether each job is already archived (``--skip-archived``)."""
        self._queues = queues
        self._settings = settings
        self._archive = archive

    def run(self, lines: AsyncIterable[tuple[int, bytes]]) -> AsyncIterator[LineOutcome]:
        """An outcome per line, in input order; lines are sent with bounded concurrency."""
        return ordered_map(lines, self._one, concurrency=_CONCURRENCY)

    async def _one(self, numbered: tuple[int, bytes]) -> LineOutcome:
        number, body = numbered
        try:
            job = parse_body(body, settings=self._settings)
        except InvalidMessage as exc:
            return LineOutcome(number, LineAction.INVALID, None, exc.reason)
        except RecursionError:  # whatever the parser lets through: reported, the run goes on
            return LineOutcome(number, LineAction.INVALID, None, "unparseable: nested too deep")
        if self._archive is not None and await self._archive.is_archived(job.job_id):
            return LineOutcome(number, LineAction.SKIPPED, job.job_id, "already archived")
        await self._queues.submit(body.decode("utf-8").strip())
        return LineOutcome(number, LineAction.ENQUEUED, job.job_id, None)
