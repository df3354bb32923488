"""Queue messages: parse what upstream (or the app itself) put on the jobs queue, and write it back.

Accepted forms (DESIGN.md, "Queue message"): a JSON object with ``jobId`` and/or
``operationLocation`` (plus optional ``displayName``, ``correlationId``, ``metadata``), or a bare
body that is only a job id or only an operation-location URL. Anything that can never succeed
raises ``InvalidMessage`` with a reason for the poison queue; nothing about it is sent anywhere else.

The app's own bookkeeping travels under ``_poll`` when it reschedules a job. It is advisory: anyone
who can send to the queue can forge it, so a field that is malformed, out of range or inconsistent
is ignored (a WARNING naming the field, never its value) and the job handled as if it were absent.

Sizes (``MAX_MESSAGE_BYTES``): the limit covers the message's own public fields written as compact
UTF-8 JSON, which is never more than the body the producer sent; the app's ``_poll`` (at most
``MAX_POLL_BYTES``) and the ledger's wrapper come on top and still fit the queue's 48 KiB.
Text that is not valid Unicode (lone UTF-16 surrogates) is replaced by U+FFFD (``shared.jsontext``).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from .jsontext import TooDeep, UnreadableJson, dumps_compact, loads_bounded
from .settings import Settings
from .telemetry import job_attributes
from .timefmt import format_time, parse_time
from .urls import origin

__all__ = [
    "EARLIEST_TIME",
    "LATEST_TIME",
    "MAX_DEPTH",
    "MAX_MESSAGE_BYTES",
    "MAX_POLL_BYTES",
    "QUEUE_MESSAGE_BYTES",
    "InvalidMessage",
    "JobMessage",
    "parse_body",
    "parse_message",
    "sane_time",
]

_log = logging.getLogger("archiver.messages")

#: What one storage queue message can carry: 64 KiB once base64-encoded, i.e. 48 KiB of UTF-8.
#: A body larger than this never came from a queue, and is refused before it is parsed.
QUEUE_MESSAGE_BYTES: Final = 48 * 1024
#: The size limit of a message: its public fields (``jobId``, ``displayName``, ``correlationId``,
#: ``metadata``; an ``operationLocation`` counts as the ``jobId`` it names) as compact UTF-8 JSON.
#: A body of at most this many bytes is always within it, whatever its form (whitespace, escapes,
#: unknown fields and the app's own ``_poll`` are not counted).
MAX_MESSAGE_BYTES: Final = 40 * 1024
#: The most the app's own ``_poll`` member adds to a message it writes (bounded fields, checked by
#: the tests): a rescheduled message and its ledger record stay far below ``QUEUE_MESSAGE_BYTES``.
MAX_POLL_BYTES: Final = 512
#: Arrays and objects nest at most this deep in a message (the schema needs 2).
MAX_DEPTH: Final = 32
#: The app's own times outside this range are ignored: far enough from datetime's ends that adding
#: a day, a week or a grace never overflows, and beyond any date a real job can have.
EARLIEST_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIME: Final = datetime(2999, 12, 31, tzinfo=UTC)
_MAX_METADATA_ENTRIES: Final = 64
_MAX_TEXT_FIELD: Final = 1024
#: The app's own counters are ignored above this (a real job is polled a few thousand times at most).
_MAX_COUNT: Final = 1_000_000
#: An ETag as storage writes it: quoted printable ASCII, bounded; it travels in an If-Match header.
_ETAG: Final = re.compile(r"^[\x21-\x7e]{1,128}$")
_JOB_PATH = re.compile(r"^/language/analyze-text/jobs/([^/]+)/?$")


class InvalidMessage(ValueError):
    """A message that can never succeed; ``reason`` is ``<code>: <detail>`` for the poison queue."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.reason = f"{code}: {detail}"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobMessage:
    """One job to track, with the app's own polling state once it has been rescheduled."""

    job_id: str
    display_name: str | None = None
    correlation_id: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    # The app's own business (DESIGN.md): not part of the public message schema.
    attempt: int = 0
    first_seen_at: datetime | None = None
    seen_at: datetime | None = None  # when the service first answered with the job
    expires_at: datetime | None = None  # the job's expirationDateTime once known
    ledger_etag: str | None = None  # the ledger record this message is entitled to update
    unusable: int = 0  # consecutive polls whose answer could not be used
    due_at: datetime | None = None  # when this poll was due, as the ledger recorded it
    not_found_since: datetime | None = None  # first of the 404s in a row for a job seen before

    def evolve(self, **changes: Any) -> JobMessage:
        return replace(self, **changes)

    def to_json(self) -> str:
        """The message as the app writes it back (compact, UTF-8 as itself)."""
        return dumps_compact(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The message as the app writes it back: its public fields, then ``_poll``."""
        body = self._public()
        body["_poll"] = {
            "attempt": self.attempt,
            "firstSeenAt": format_time(self.first_seen_at),
            "seenAt": format_time(self.seen_at),
            "expiresAt": format_time(self.expires_at),
            "ledgerEtag": self.ledger_etag,
            "unusable": self.unusable,
            "dueAt": format_time(self.due_at),
            "notFoundSince": format_time(self.not_found_since),
        }
        return body

    def public_size(self) -> int:
        """Bytes of the public fields as compact UTF-8 JSON: what ``MAX_MESSAGE_BYTES`` limits."""
        return len(dumps_compact(self._public()).encode("utf-8"))

    def _public(self) -> dict[str, Any]:
        body: dict[str, Any] = {"jobId": self.job_id}
        if self.display_name is not None:
            body["displayName"] = self.display_name
        if self.correlation_id is not None:
            body["correlationId"] = self.correlation_id
        if self.metadata:
            body["metadata"] = dict(self.metadata)
        return body


def parse_body(body: bytes, *, settings: Settings) -> JobMessage:
    """Parse a message as the queue delivers it: exactly what the poll function accepts or poisons."""
    if len(body) > QUEUE_MESSAGE_BYTES:
        raise InvalidMessage(
            "oversized", f"message has {len(body)} bytes, more than a queue message can carry"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidMessage("unparseable", "message is not UTF-8 text") from None
    return parse_message(text, settings=settings)


def parse_message(text: str, *, settings: Settings) -> JobMessage:
    """Parse one queue message body; raise ``InvalidMessage`` for anything that can never succeed."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > QUEUE_MESSAGE_BYTES:
        raise InvalidMessage("oversized", f"message has {size} bytes, more than a queue message can carry")
    stripped = text.strip()
    if not stripped:
        raise InvalidMessage("unparseable", "message is empty")
    if stripped[0] not in '{["':
        message = _from_bare(stripped, settings)
    else:
        try:
            body = loads_bounded(stripped, max_depth=MAX_DEPTH)
        except UnreadableJson as exc:
            code = "too-deep" if isinstance(exc, TooDeep) else "unparseable"
            raise InvalidMessage(code, f"message is {exc}") from None
        if isinstance(body, str):
            message = _from_bare(body.strip(), settings)
        elif isinstance(body, dict):
            message = _from_object(body, settings)
        else:
            raise InvalidMessage(
                "unparseable", "message must be a JSON object, a job id or an operation-location URL"
            )
    public = message.public_size()
    if public > MAX_MESSAGE_BYTES:
        raise InvalidMessage(
            "oversized",
            f"message has {public} bytes of jobId, displayName, correlationId and metadata as compact "
            f"UTF-8 JSON, the limit is {MAX_MESSAGE_BYTES}",
        )
    return message


def _from_bare(value: str, settings: Settings) -> JobMessage:
    if "://" in value:
        return JobMessage(job_id=_job_id_from_location(value, settings))
    return JobMessage(job_id=_job_id(value))


def _from_object(body: dict[str, Any], settings: Settings) -> JobMessage:
    raw_id = body.get("jobId")
    location = body.get("operationLocation")
    if raw_id is None and location is None:
        raise InvalidMessage("missing-job", "message names neither jobId nor operationLocation")
    job_id = None if raw_id is None else _job_id(_text(body, "jobId", raw_id))
    if location is not None:
        located = _job_id_from_location(_text(body, "operationLocation", location), settings)
        if job_id is not None and job_id != located:
            raise InvalidMessage("mismatch", "jobId and operationLocation name different jobs")
        job_id = located
    assert job_id is not None
    message = JobMessage(
        job_id=job_id,
        display_name=_optional_text(body, "displayName"),
        correlation_id=_optional_text(body, "correlationId"),
        metadata=_metadata(body.get("metadata")),
    )
    poll = body.get("_poll")
    return message if poll is None else _with_poll_state(message, poll)


def _job_id(value: str) -> str:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise InvalidMessage("invalid-job-id", f"job id {_excerpt(value)} is not a UUID") from None
    # uuid.UUID also accepts braces, "urn:uuid:" and missing hyphens; the service only knows the
    # canonical form, and a canonical id keeps blob names stable.
    if str(parsed) != value.lower():
        raise InvalidMessage("invalid-job-id", f"job id {_excerpt(value)} is not a canonical UUID")
    return str(parsed)


def _job_id_from_location(url: str, settings: Settings) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise InvalidMessage("invalid-operation-location", "operationLocation is not a valid URL") from None
    if "@" in parts.netloc:
        # Checked first so that the reason (which is logged) never echoes the credentials.
        raise InvalidMessage("invalid-operation-location", "operationLocation carries credentials")
    if origin(parts) != settings.endpoint_origin:
        # Following it would send the credential to another host: never.
        raise InvalidMessage(
            "foreign-operation-location",
            f"operationLocation is on {parts.scheme}://{parts.netloc}, not on LANGUAGE_ENDPOINT",
        )
    match = _JOB_PATH.match(parts.path)
    if match is None:
        raise InvalidMessage("invalid-operation-location", "operationLocation is not an analyze-text job URL")
    return _job_id(match.group(1))


def _text(body: Mapping[str, Any], name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidMessage("invalid-field", f"{name} must be a string")
    return value.strip()


def _optional_text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    text = _text(body, name, value)
    if len(text) > _MAX_TEXT_FIELD:
        raise InvalidMessage("invalid-field", f"{name} is longer than {_MAX_TEXT_FIELD} characters")
    return text


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidMessage("invalid-field", "metadata must be an object of string to string")
    if len(value) > _MAX_METADATA_ENTRIES:
        raise InvalidMessage("invalid-field", f"metadata has more than {_MAX_METADATA_ENTRIES} entries")
    return dict(value)


def sane_time(value: datetime | None) -> datetime | None:
    """``value`` if it lies within [``EARLIEST_TIME``, ``LATEST_TIME``], else ``None``."""
    return value if value is None or EARLIEST_TIME <= value <= LATEST_TIME else None


def _with_poll_state(message: JobMessage, poll: Any) -> JobMessage:
    """The app's own fields that are sound; the others are ignored, as if absent (logged, by name)."""
    if not isinstance(poll, dict):
        _ignored(message.job_id, ["_poll"])
        return message
    changes: dict[str, Any] = {}
    ignored: list[str] = []
    for name, attribute in (("attempt", "attempt"), ("unusable", "unusable")):
        count = poll.get(name)
        if count is None:
            continue
        if type(count) is int and 0 <= count <= _MAX_COUNT:  # bool is not a count
            changes[attribute] = count
        else:
            ignored.append(name)
    if changes.get("unusable", 0) > changes.get("attempt", 0):
        # Each unusable answer was a reschedule: more of them than attempts is not the app's count.
        del changes["unusable"]
        ignored.append("unusable")
    etag = poll.get("ledgerEtag")
    if etag is not None:
        if isinstance(etag, str) and _ETAG.match(etag):
            changes["ledger_etag"] = etag
        else:
            ignored.append("ledgerEtag")
    for name, attribute in (
        ("firstSeenAt", "first_seen_at"),
        ("seenAt", "seen_at"),
        ("expiresAt", "expires_at"),
        ("dueAt", "due_at"),
        ("notFoundSince", "not_found_since"),
    ):
        raw = poll.get(name)
        if raw is None:
            continue
        try:
            when = sane_time(parse_time(raw))
        except (ValueError, OverflowError):
            when = None
        if when is None:
            ignored.append(name)
        else:
            changes[attribute] = when
    if ignored:
        _ignored(message.job_id, ignored)
    return message.evolve(**changes)


def _ignored(job_id: str, names: list[str]) -> None:
    # Names only: the values came from whoever wrote the message and may hold anything.
    _log.warning(
        "job %s: the app's own message field(s) %s malformed or out of range: ignored, as if absent",
        job_id,
        ", ".join(f"_poll.{name}" if name != "_poll" else name for name in names),
        extra=job_attributes(job_id),
    )


def _excerpt(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")
