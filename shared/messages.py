"""Queue messages: parse what upstream (or the app itself) put on the jobs queue, and write it back.

Accepted forms (DESIGN.md, "Queue message"): a JSON object with ``jobId`` and/or
``operationLocation`` (plus optional ``displayName``, ``correlationId``, ``metadata``), or a bare
body that is only a job id or only an operation-location URL. The app's own bookkeeping travels
under ``_poll`` when it reschedules a job. Anything that can never succeed raises
``InvalidMessage`` with a reason for the poison queue; nothing about it is sent anywhere else.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from .settings import Settings
from .timefmt import format_time, parse_time
from .urls import origin

__all__ = [
    "MAX_MESSAGE_BYTES",
    "InvalidMessage",
    "JobMessage",
    "parse_body",
    "parse_message",
]

#: A storage queue message is at most 64 KiB once base64-encoded, i.e. 48 KiB of UTF-8; the app
#: must be able to write a rescheduled copy (slightly larger) back onto the queue.
MAX_MESSAGE_BYTES: Final = 40 * 1024
_MAX_METADATA_ENTRIES: Final = 64
_MAX_TEXT_FIELD: Final = 1024
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
        body: dict[str, Any] = {"jobId": self.job_id}
        if self.display_name is not None:
            body["displayName"] = self.display_name
        if self.correlation_id is not None:
            body["correlationId"] = self.correlation_id
        if self.metadata:
            body["metadata"] = dict(self.metadata)
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
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def parse_body(body: bytes, *, settings: Settings) -> JobMessage:
    """Parse a message as the queue delivers it: exactly what the poll function accepts or poisons."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidMessage("unparseable", "message is not UTF-8 text") from None
    return parse_message(text, settings=settings)


def parse_message(text: str, *, settings: Settings) -> JobMessage:
    """Parse one queue message body; raise ``InvalidMessage`` for anything that can never succeed."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise InvalidMessage("oversized", f"message has {size} bytes, the limit is {MAX_MESSAGE_BYTES}")
    stripped = text.strip()
    if not stripped:
        raise InvalidMessage("unparseable", "message is empty")
    if stripped[0] not in '{["':
        return _from_bare(stripped, settings)
    try:
        body = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise InvalidMessage("unparseable", f"message is not valid JSON ({exc.msg})") from None
    if isinstance(body, str):
        return _from_bare(body.strip(), settings)
    if not isinstance(body, dict):
        raise InvalidMessage(
            "unparseable", "message must be a JSON object, a job id or an operation-location URL"
        )
    return _from_object(body, settings)


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


def _with_poll_state(message: JobMessage, poll: Any) -> JobMessage:
    try:
        if not isinstance(poll, dict):
            raise TypeError("not an object")
        attempt, unusable = poll.get("attempt", 0), poll.get("unusable", 0)
        etag = poll.get("ledgerEtag")
        if not all(type(n) is int and n >= 0 for n in (attempt, unusable)):  # bool is not a count
            raise TypeError("counters must be non-negative integers")
        if etag is not None and not isinstance(etag, str):
            raise TypeError("ledgerEtag must be a string")
        return message.evolve(
            attempt=attempt,
            unusable=unusable,
            ledger_etag=etag,
            first_seen_at=parse_time(poll.get("firstSeenAt")),
            seen_at=parse_time(poll.get("seenAt")),
            expires_at=parse_time(poll.get("expiresAt")),
            due_at=parse_time(poll.get("dueAt")),
            not_found_since=parse_time(poll.get("notFoundSince")),
        )
    except (TypeError, ValueError) as exc:
        raise InvalidMessage("invalid-field", f"_poll is malformed ({exc})") from None


def _excerpt(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")
