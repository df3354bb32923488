"""``python -m cli``: argument parsing, settings, clients, and the mapping of errors to exit statuses.

Exit statuses (DESIGN.md): 0 all good, 1 the command ran and found a problem, 2 a usage or settings
error (or storage that cannot be reached or refuses the operator), always as one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final, NoReturn
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError, ClientAuthenticationError, ServiceRequestError

from shared.archive_reader import ARCHIVE_STATUSES
from shared.auth import storage_credential
from shared.http import SessionHolder
from shared.messages import InvalidMessage, parse_message
from shared.settings import SETTINGS, STORAGE_SETTING, Settings, SettingsError, load_settings
from shared.storage import StorageClients, open_storage
from shared.timefmt import parse_time

from . import commands
from .atomic import ReplacingFile
from .envfile import EnvFileError, read_env_file
from .preflight import check_connection_string
from .render import Out
from .sanitize import Redactor, secret_tokens

__all__ = ["build_parser", "main"]

PROG: Final = "python -m cli"
#: The storage SDK waits 15 s and more between retries, made for unattended workers. At a terminal:
#: a few quick retries of a dropped or throttled request, and none of a connection that cannot be
#: made (a wrong endpoint, a firewall): that is reported at once, in one line.
_RETRY: Final = {
    "retry_total": 3,
    "retry_connect": 0,
    "initial_backoff": 0.5,
    "increment_base": 2,
    "random_jitter_range": 0.5,
}


#: Commands that send nothing to the Language service, so LANGUAGE_ENDPOINT need not be set for them
#: (replay-poison and enqueue need it: a message's operation-location must be on that host).
_ENDPOINT_FREE: Final = frozenset({"status", "verify", "export", "announce"})
#: Stands in for LANGUAGE_ENDPOINT where a command never uses it (a reserved, unresolvable name).
_NO_ENDPOINT: Final = "https://language-endpoint.invalid"
_SETTING_NAMES: Final = frozenset(spec.name for spec in SETTINGS)


class UsageError(Exception):
    """Bad arguments; the message is the one line to show."""


class _Exit(Exception):
    """Not an error: --help and friends end the run with ``status``."""

    def __init__(self, status: int) -> None:
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse, minus its exits: errors become one line, exits return a status to ``main``."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


_EPILOG: Final = {
    "status": "example: python -m cli status --json c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18",
    "verify": "example: python -m cli verify --all\n"
    "example: python -m cli verify --json c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18",
    "replay-poison": "example: python -m cli replay-poison --dry-run --env-file .azure/prod/.env",
    "enqueue": "example: python -m cli enqueue --skip-archived job-ids.txt",
    "announce": "example: python -m cli announce --since 2026-12-01 --status succeeded\n"
    "example: python -m cli announce --json c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18",
    "export": "example: python -m cli export --status succeeded --since 2026-12-01 --format csv "
    "-o entities.csv",
}


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--env-file",
        type=Path,
        metavar="FILE",
        help="read settings from FILE (azd env get-values output, or a local.settings.json); "
        "its values win over the environment",
    )
    as_json = _Parser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="JSON Lines on stdout, one object per result")
    parser = _Parser(
        prog=PROG,
        description="Operate the Language job archive: what became of a job, is the archive intact, "
        "replay the poison queue, backfill job ids, export the entities, announce archived jobs "
        "again. Settings come from the "
        "environment (the app's own names), or --env-file.",
        epilog="example: python -m cli status --env-file .env c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18\n\n"
        "Exit status: 0 all good, 1 a problem was found, 2 a usage or settings error.\n"
        "Run 'python -m cli COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, parents: list[_Parser]) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=parents,
            epilog=_EPILOG[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    status = command("status", "what became of each job: archived, pending or unknown", [common, as_json])
    status.add_argument("job_ids", nargs="+", metavar="JOB_ID", help="a job id or operation-location URL")

    verify = command(
        "verify", "re-read manifests and task blobs, recompute sha256 and size", [common, as_json]
    )
    verify.add_argument("job_ids", nargs="*", metavar="JOB_ID")
    verify.add_argument("--all", action="store_true", help="every archived job (streams the whole archive)")

    replay = command(
        "replay-poison", "put poison messages that can now succeed back on JOBS_QUEUE", [common, as_json]
    )
    replay.add_argument(
        "--dry-run", action="store_true", help="say what would happen; send and delete nothing"
    )

    enqueue = command(
        "enqueue", "backfill: one message per non-empty line (job id, operation-location URL or JSON)",
        [common, as_json],
    )  # fmt: skip
    enqueue.add_argument("file", nargs="?", default="-", metavar="FILE", help="the lines; - or none: stdin")
    enqueue.add_argument("--skip-archived", action="store_true", help="do not send jobs that have a manifest")

    export = command("export", "one row per entity of archived jobs, each blob checked first", [common])
    export.add_argument("job_ids", nargs="*", metavar="JOB_ID", help="only these jobs (default: all)")
    _add_filters(export)
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of stdout")

    announce = command(
        "announce", "send the archive events of archived jobs again on EVENTS_QUEUE", [common, as_json]
    )
    announce.add_argument("job_ids", nargs="*", metavar="JOB_ID", help="only these jobs (default: all)")
    _add_filters(announce)
    return parser


def _add_filters(command: argparse.ArgumentParser) -> None:
    """``--status`` and ``--since``, as ``export`` and ``announce`` take them."""
    command.add_argument(
        "--status",
        action="append",
        default=[],
        metavar="S",
        help="only jobs whose manifest status is S (repeatable)",
    )
    command.add_argument(
        "--since", metavar="T", help="only jobs archived at or after T (ISO 8601, UTC if no offset)"
    )


async def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Run one command; returns its exit status (errors are one line on stderr, never a traceback)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    redactor = Redactor()
    for argument in arguments:
        redactor.guard(argument)  # a key pasted as an argument is masked even where it is cut short
    out = Out(json_lines=False, redactor=redactor)
    try:
        args = build_parser().parse_args(arguments)
        values = dict(os.environ if environ is None else environ)
        if args.env_file is not None:
            values.update(read_env_file(args.env_file))
        redactor.add(*_secrets(values))
        if args.command in _ENDPOINT_FREE:
            values["LANGUAGE_ENDPOINT"] = _NO_ENDPOINT
        settings = load_settings(values)
        check_connection_string(settings.storage.connection_string)
        out = Out(json_lines=getattr(args, "json", False), redactor=redactor)
        with contextlib.ExitStack() as files:
            run = _command(args, settings, files)
            async with _storage(settings) as storage:
                return await run(commands.Context(settings=settings, storage=storage, out=out, clock=clock))
    except _Exit as done:
        return done.status
    except (UsageError, SettingsError, EnvFileError) as exc:
        out.say(f"error: {exc}")
    except ClientAuthenticationError as exc:
        out.say(
            f"error: storage refused the request ({_first_line(exc)}): sign in with 'az login' "
            "and check your Storage Blob/Queue Data role on the account, or AzureWebJobsStorage"
        )
    except ServiceRequestError as exc:
        reason = _first_line(exc)
        out.say(f"error: storage cannot be reached ({reason}): check AzureWebJobsStorage and the network")
    except AzureError as exc:
        out.say(f"error: storage request failed: {type(exc).__name__}: {_first_line(exc)}")
    return 2


def _command(
    args: argparse.Namespace, settings: Settings, files: contextlib.ExitStack
) -> Callable[[commands.Context], Awaitable[int]]:
    """The command bound to its checked arguments; usage errors surface before any request."""
    name = args.command
    if name == "status":
        ids = _job_ids(args.job_ids, settings, endpoint=False)
        return lambda ctx: commands.status(ctx, ids)
    if name == "verify":
        if bool(args.job_ids) == args.all:
            raise UsageError(f"{PROG} verify: give JOB_IDs or --all, one of the two (see --help)")
        ids = _job_ids(args.job_ids, settings, endpoint=False)
        return lambda ctx: commands.verify(ctx, ids, all_jobs=args.all)
    if name == "replay-poison":
        return lambda ctx: commands.replay_poison(ctx, dry_run=args.dry_run)
    if name == "enqueue":
        source = _open_input(args.file, files)
        return lambda ctx: commands.enqueue(ctx, source, skip_archived=args.skip_archived)
    if name == "announce":
        if settings.events_queue is None:
            raise SettingsError(
                "EVENTS_QUEUE is not set: set it to the queue the app announces archived jobs on "
                "(e.g. archive-events), in the environment or --env-file"
            )
        ids, since = _job_ids(args.job_ids, settings, endpoint=False), _since(args.since)
        statuses = _statuses(args.status)
        return lambda ctx: commands.announce(ctx, ids, statuses=statuses, since=since)
    assert name == "export"
    ids = _job_ids(args.job_ids, settings, endpoint=False)
    since, statuses = _since(args.since), _statuses(args.status)
    output = _open_output(args.output, files)

    async def export(ctx: commands.Context) -> int:
        stream = sys.stdout if output is None else output.stream
        status = await commands.export(
            ctx, ids, statuses=statuses, since=since, fmt=args.format, output=stream
        )
        if output is not None:
            output.commit()  # it ran to its end (a job left out is named on stderr and in the status)
        return status

    return export


def _job_ids(values: Sequence[str], settings: Settings, *, endpoint: bool) -> list[str]:
    """Job ids as the queue accepts them bare (an id or an operation-location URL), canonical.

    Without ``endpoint`` (a command that sends nothing to the service) an operation-location names
    its job whatever its host: the URL is only read, never followed.
    """
    ids = []
    for value in values:
        try:
            judged = settings if endpoint else _own_endpoint(value, settings)
            ids.append(parse_message(value, settings=judged).job_id)
        except InvalidMessage as exc:
            raise UsageError(f"{value!r} is not a job: {exc.reason}") from None
    return ids


def _own_endpoint(value: str, settings: Settings) -> Settings:
    """``settings`` as if LANGUAGE_ENDPOINT were the origin of ``value`` (when it is a URL)."""
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return settings  # the parser says what is wrong with it
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return settings
    return dataclasses.replace(settings, language_endpoint=f"{parts.scheme}://{parts.netloc}")


def _since(value: str | None) -> datetime | None:
    try:
        return parse_time(value)
    except (ValueError, OverflowError):
        raise UsageError(
            f"--since {value!r} is not a time: use ISO 8601, e.g. 2026-12-01T00:00:00Z"
        ) from None


def _statuses(values: Sequence[str]) -> frozenset[str]:
    """``--status`` values, each one the archive knows (a typo would silently match nothing)."""
    for value in values:
        if value not in ARCHIVE_STATUSES:
            known = ", ".join(sorted(ARCHIVE_STATUSES, key=str.lower))
            raise UsageError(f"--status {value!r} is not a status of the archive: use one of {known}")
    return frozenset(values)


def _open_input(name: str, files: contextlib.ExitStack) -> IO[bytes]:
    if name == "-":
        return sys.stdin.buffer
    try:
        return files.enter_context(Path(name).open("rb"))
    except OSError as exc:
        raise UsageError(f"cannot read {name} ({exc.strerror}): check the path") from None


def _open_output(path: Path | None, files: contextlib.ExitStack) -> ReplacingFile | None:
    if path is None:
        return None
    try:
        return files.enter_context(ReplacingFile(path))
    except OSError as exc:
        raise UsageError(f"cannot write {path} ({exc.strerror}): check the path") from None


@asynccontextmanager
async def _storage(settings: Settings) -> AsyncIterator[StorageClients]:
    """The storage clients on one aiohttp session; identity-based settings use the operator's login."""
    sessions = SessionHolder()
    storage = open_storage(
        settings.storage,
        session=await sessions.get(),
        credential=storage_credential(settings) if settings.storage.uses_identity else None,
        retry=_RETRY,
    )
    try:
        yield storage
    finally:
        await storage.close()
        await sessions.close()


def _secrets(values: Mapping[str, str]) -> list[str]:
    """Values that must never be printed, from the raw settings (so that even an error about a
    malformed setting cannot show one): the Language key, the connection strings' keys and
    signatures, and whatever looks like a key in any of the app's settings."""
    found = [(values.get("LANGUAGE_API_KEY") or "").strip()]
    for name in (STORAGE_SETTING, "APPLICATIONINSIGHTS_CONNECTION_STRING"):
        for part in (values.get(name) or "").split(";"):
            key, _, value = part.partition("=")
            if key.strip().lower() in ("accountkey", "sharedaccesssignature"):
                found.append(value.strip())
    for name, value in values.items():
        if name in _SETTING_NAMES or name.startswith(STORAGE_SETTING):
            found.extend(secret_tokens(value))
    return [value for value in found if value]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
