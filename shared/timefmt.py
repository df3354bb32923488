"""ISO 8601 timestamps as the Language service writes them (UTC, ``Z``), parsed leniently."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["format_time", "parse_time"]


def format_time(value: datetime | None) -> str | None:
    """UTC, second precision unless sub-second, with ``Z``: the service's own spelling."""
    if value is None:
        return None
    if value.tzinfo is None:  # naive means UTC, as in parse_time (astimezone would assume local time)
        value = value.replace(tzinfo=UTC)
    utc = value.astimezone(UTC)
    text = utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def parse_time(value: Any) -> datetime | None:
    """Parse an ISO 8601 timestamp (``Z`` or offset; up to 7 fractional digits); ``None`` stays ``None``.

    Raises ``ValueError`` for anything else, so callers decide whether that is fatal.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"timestamp must be a string, got {type(value).__name__}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # .NET writes 7 fractional digits; Python's parser takes at most 6.
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction, tail = rest[:digits], rest[digits:]
        text = f"{head}.{fraction[:6].ljust(6, '0')}{tail}"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
