"""The commands: each a few lines over the readers and writers in ``shared`` (DESIGN.md,
"Operator command line"). They return the exit status: 0 all good, 1 a problem was found."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any, Final, TextIO

from shared.archive import ArchiveWriter
from shared.archive_reader import ArchiveReader, ManifestUnreadable, Problem, Verification, selected
from shared.backfill import Backfill, LineAction, numbered_lines
from shared.events import EventUnrenderable, archive_events
from shared.export import entity_rows
from shared.ledger import Ledger, is_overdue
from shared.poison import PoisonReplay, ReplayAction
from shared.queues import JobQueues
from shared.settings import Settings
from shared.storage import StorageClients
from shared.streams import each, ordered_map
from shared.timefmt import format_time

from .preflight import require_container, require_queue
from .render import Out, RowWriter, progress

__all__ = ["Context", "announce", "enqueue", "export", "replay_poison", "status", "verify"]

#: Jobs read at once: each is a few sequential blob reads on the one shared session.
_CONCURRENCY: Final = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    settings: Settings
    storage: StorageClients
    out: Out
    clock: Callable[[], datetime]

    def archive(self) -> ArchiveReader:
        return ArchiveReader(container=self.storage.container(self.settings.archive_container))

    def queues(self) -> JobQueues:
        return JobQueues(
            jobs=self.storage.queue(self.settings.jobs_queue),
            poison=self.storage.queue(self.settings.poison_queue),
        )

    async def require_archive(self) -> None:
        """ARCHIVE_CONTAINER must exist: a typo would otherwise read as an empty archive."""
        await require_container(
            self.storage.container(self.settings.archive_container), setting="ARCHIVE_CONTAINER"
        )

    async def require_jobs_queue(self) -> None:
        """JOBS_QUEUE must exist: a send would otherwise create a queue that nothing reads."""
        await require_queue(self.storage.queue(self.settings.jobs_queue), setting="JOBS_QUEUE")

    def invalid_name(self, name: str) -> None:
        """A listed name that is not a job's manifest: reported, never followed."""
        self.out.say(f"skipped {name!r}: not a job's manifest (its folder is not a job id)")


async def status(ctx: Context, job_ids: Sequence[str]) -> int:
    await ctx.require_archive()
    archive = ctx.archive()
    ledger = Ledger(container=ctx.storage.container(ctx.settings.ledger_container), settings=ctx.settings)
    grace = timedelta(seconds=ctx.settings.sweep_grace_seconds)

    async def one(job_id: str) -> tuple[dict[str, Any], str, bool]:
        """(the --json object, the text line, whether it is a problem)."""
        row: dict[str, Any] = {
            "jobId": job_id, "state": "unknown", "status": None, "archivedAt": None, "nextPollAt": None,
            "overdue": None,
        }  # fmt: skip
        try:
            manifest = await archive.manifest(job_id)
        except ManifestUnreadable as exc:
            ctx.out.say(f"{job_id}: its manifest is unreadable ({exc}): run 'python -m cli verify {job_id}'")
            return {**row, "state": "archived"}, f"{job_id}  archived  (manifest unreadable)", True
        if manifest is not None:
            archived_at = format_time(manifest.archived_at)
            row |= {"state": "archived", "status": manifest.status, "archivedAt": archived_at}
            return row, f"{job_id}  archived  {manifest.status}  at {archived_at}", False
        entry = await ledger.lookup(job_id)
        if entry is None:
            return row, f"{job_id}  unknown  (no manifest, not in the ledger)", True
        overdue = is_overdue(entry.next_poll_at, now=ctx.clock(), grace=grace)
        due = format_time(entry.next_poll_at)
        row |= {"state": "pending", "nextPollAt": due, "overdue": overdue}
        late = "  OVERDUE (the sweep re-drives it)" if overdue else ""
        return row, f"{job_id}  pending  next poll {due}{late}", False

    problems = 0
    async for row, text, problem in ordered_map(each(job_ids), one, concurrency=_CONCURRENCY):
        problems += problem
        ctx.out.result(row, text)
    return 1 if problems else 0


async def verify(ctx: Context, job_ids: Sequence[str], *, all_jobs: bool) -> int:
    await ctx.require_archive()
    archive = ctx.archive()
    checked = failed = 0

    def invalid(name: str) -> None:
        nonlocal checked, failed
        checked, failed = checked + 1, failed + 1
        folder = name.rpartition("/")[0]
        problems = [{"blob": name, "problem": str(Problem.INVALID_NAME)}]
        ctx.out.result(
            {"jobId": folder, "ok": False, "problems": problems},
            f"{folder!r}  FAILED  {name!r}: {Problem.INVALID_NAME} (not a job id: not followed)",
        )

    source = archive.archived_jobs(on_invalid=invalid) if all_jobs else each(job_ids)
    with progress("verify", unit="job") as bar:
        async for result in ordered_map(source, archive.verify, concurrency=_CONCURRENCY):
            checked += 1
            failed += not result.ok
            bar.update()
            # Over a whole archive, text mode names only the failures; --json has every job.
            text = _verification_text(result) if not (all_jobs and result.ok) else None
            ctx.out.result(
                {
                    "jobId": result.job_id,
                    "ok": result.ok,
                    "problems": [{"blob": f.blob, "problem": str(f.problem)} for f in result.problems],
                },
                text,
            )
    ctx.out.summary(f"verified {checked} jobs: {checked - failed} ok, {failed} failed")
    return 1 if failed else 0


def _verification_text(result: Verification) -> str:
    if result.ok:
        return f"{result.job_id}  ok"
    problems = "; ".join(f"{f.blob or '-'}: {f.problem}" for f in result.problems)
    return f"{result.job_id}  FAILED  {problems}"


async def replay_poison(ctx: Context, *, dry_run: bool) -> int:
    await ctx.require_jobs_queue()
    await ctx.require_archive()
    replay = PoisonReplay(
        poison=ctx.storage.queue(ctx.settings.poison_queue),
        queues=ctx.queues(),
        settings=ctx.settings,
        archive=ArchiveWriter(container=ctx.storage.container(ctx.settings.archive_container)),
    )
    counts = dict.fromkeys(ReplayAction, 0)
    with progress("replay-poison", unit="message") as bar:
        async for outcome in replay.replay(dry_run=dry_run):
            # The reason may quote the message cut short: what looks like a key in it is masked whole.
            ctx.out.redactor.guard(outcome.original.decode("utf-8", "replace"))
            counts[outcome.action] += 1
            bar.update()
            was = f"  (poisoned: {outcome.reason})" if outcome.reason else ""
            text = (
                f"kept: would be poison again: {outcome.reason}"
                if outcome.action is ReplayAction.KEPT
                else f"{outcome.action}: {outcome.job_id}{was}"
            )
            ctx.out.result(
                {"action": str(outcome.action), "jobId": outcome.job_id, "reason": outcome.reason}, text
            )
    archived = counts[ReplayAction.ALREADY_ARCHIVED]
    ctx.out.summary(
        f"{ctx.settings.poison_queue}: {counts[ReplayAction.REPLAYED]} replayed, "
        f"{counts[ReplayAction.WOULD_REPLAY]} would be replayed, {counts[ReplayAction.KEPT]} kept"
        + (f", {archived} already archived (left on the queue)" if archived else "")
        + (" (dry run: nothing sent or deleted)" if dry_run else "")
    )
    return 0


async def enqueue(ctx: Context, source: IO[bytes], *, skip_archived: bool) -> int:
    await ctx.require_jobs_queue()
    archive = None
    if skip_archived:
        await ctx.require_archive()
        archive = ArchiveWriter(container=ctx.storage.container(ctx.settings.archive_container))
    backfill = Backfill(queues=ctx.queues(), settings=ctx.settings, archive=archive)
    counts = dict.fromkeys(LineAction, 0)
    with progress("enqueue", unit="line") as bar:
        async for outcome in backfill.run(_guarded(ctx.out, numbered_lines(source))):
            counts[outcome.action] += 1
            bar.update()
            detail = outcome.reason if outcome.action is LineAction.INVALID else outcome.job_id
            ctx.out.result(
                {
                    "line": outcome.line,
                    "action": str(outcome.action),
                    "jobId": outcome.job_id,
                    "reason": outcome.reason,
                },
                f"line {outcome.line}: {outcome.action}: {detail}",
            )
    ctx.out.summary(
        f"{ctx.settings.jobs_queue}: {counts[LineAction.ENQUEUED]} enqueued, "
        f"{counts[LineAction.SKIPPED]} skipped, {counts[LineAction.INVALID]} invalid"
    )
    return 1 if counts[LineAction.INVALID] else 0


async def _guarded(out: Out, lines: AsyncIterator[tuple[int, bytes]]) -> AsyncIterator[tuple[int, bytes]]:
    """Each line as read, after what looks like a key in it is registered to be masked (the
    reason for an invalid line quotes it cut short)."""
    async for number, line in lines:
        out.redactor.guard(line.decode("utf-8", "replace"))
        yield number, line


async def export(
    ctx: Context,
    job_ids: Sequence[str],
    *,
    statuses: Collection[str],
    since: datetime | None,
    fmt: str,
    output: TextIO,
) -> int:
    await ctx.require_archive()
    archive = ctx.archive()
    invalid: list[str] = []
    source = _jobs(ctx, archive, job_ids, since=since, invalid=invalid)

    async def one(job_id: str) -> tuple[str, list[dict[str, Any]], str | None]:
        """(job, its rows, why it is left out or None)."""
        try:
            manifest = await archive.manifest(job_id)
        except ManifestUnreadable:
            return job_id, [], "its manifest is unreadable"
        if manifest is None:
            return job_id, [], "it is not archived"
        if not selected(manifest, statuses=statuses, since=since):
            return job_id, [], None  # filtered out, not a problem
        checked = await archive.check_tasks(manifest)
        if checked.problems:
            found = "; ".join(f"{f.blob}: {f.problem}" for f in checked.problems)
            return job_id, [], f"a task blob fails its manifest ({found})"
        rows = [
            row
            for _, data in checked.blobs
            for row in entity_rows(data, job_id=job_id, correlation_id=manifest.correlation_id)
        ]
        return job_id, rows, None

    writer = RowWriter(output, fmt=fmt)
    left_out = 0
    with progress("export", unit="job") as bar:
        async for job_id, rows, problem in ordered_map(source, one, concurrency=_CONCURRENCY):
            bar.update()
            if problem is not None:
                left_out += 1
                ctx.out.say(f"left out {job_id}: {problem}")
            writer.write(rows)
    output.flush()
    return 1 if left_out or invalid else 0


async def announce(
    ctx: Context, job_ids: Sequence[str], *, statuses: Collection[str], since: datetime | None
) -> int:
    events = archive_events(ctx.settings, ctx.storage)
    assert events is not None, "main refuses the command without EVENTS_QUEUE"
    await ctx.require_archive()
    await require_queue(ctx.storage.queue(events.queue_name), setting="EVENTS_QUEUE")
    archive = ctx.archive()
    invalid: list[str] = []
    source = _jobs(ctx, archive, job_ids, since=since, invalid=invalid)

    async def one(job_id: str) -> tuple[str, str | None]:
        """(job, what was done: announced, not-archived, manifest-unreadable or verify-failed;
        None: filtered out)."""
        try:
            manifest = await archive.manifest(job_id)
            if manifest is None:
                return job_id, "not-archived"
            if not selected(manifest, statuses=statuses, since=since):
                return job_id, None
            # A consumer is sent to read the archive: only one that checks against its manifest.
            checked = await archive.check_tasks(manifest)
            if checked.problems:
                found = "; ".join(f"{f.blob}: {f.problem}" for f in checked.problems)
                ctx.out.say(
                    f"not announced {job_id}: a task blob fails its manifest ({found}): "
                    f"run 'python -m cli verify {job_id}'"
                )
                return job_id, "verify-failed"
            await events.announce(manifest.document)
        except (ManifestUnreadable, EventUnrenderable) as exc:
            ctx.out.say(f"{job_id}: its manifest is unreadable ({exc}): run 'python -m cli verify {job_id}'")
            return job_id, "manifest-unreadable"
        return job_id, "announced"

    counts: dict[str, int] = {}
    with progress("announce", unit="job") as bar:
        async for job_id, action in ordered_map(source, one, concurrency=_CONCURRENCY):
            bar.update()
            if action is None:
                continue
            counts[action] = counts.get(action, 0) + 1
            ctx.out.result({"jobId": job_id, "action": action}, f"{job_id}  {action}")
    announced = counts.pop("announced", 0)
    ctx.out.summary(
        f"{events.queue_name}: {announced} announced"
        + "".join(f", {count} {action}" for action, count in sorted(counts.items()))
        + (f", {len(invalid)} invalid names skipped" if invalid else "")
    )
    return 1 if counts or invalid else 0


def _jobs(
    ctx: Context,
    archive: ArchiveReader,
    job_ids: Sequence[str],
    *,
    since: datetime | None,
    invalid: list[str],
) -> AsyncIterator[str]:
    """The named jobs, or every archived one (listed names that are not job ids: reported in
    ``invalid`` and on stderr, never followed)."""

    def report(name: str) -> None:
        invalid.append(name)
        ctx.invalid_name(name)

    return each(job_ids) if job_ids else archive.archived_jobs(modified_since=since, on_invalid=report)
