"""``extensions.queues`` of host.json: the settings that drive the queue trigger, as the host reads them."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

__all__ = ["HOST_JSON", "HostQueueSettings", "parse_timespan"]

HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"

_TIMESPAN = re.compile(
    r"^(?:(?P<days>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2}):(?P<s>\d{1,2})(?:\.(?P<frac>\d{1,7}))?$"
)


def parse_timespan(text: str) -> timedelta:
    """A .NET TimeSpan as host.json writes it: ``[d.]hh:mm:ss[.fffffff]``."""
    match = _TIMESPAN.match(text)
    if match is None:
        raise ValueError(f"timespan {text!r} is not [d.]hh:mm:ss[.fffffff]")
    minutes, seconds = int(match["m"]), int(match["s"])
    if minutes > 59 or seconds > 59:
        raise ValueError(f"timespan {text!r}: minutes and seconds must be below 60")
    return timedelta(
        days=int(match["days"] or 0),
        hours=int(match["h"]),
        minutes=minutes,
        seconds=seconds,
        microseconds=int((match["frac"] or "0").ljust(7, "0")) // 10,
    )


@dataclass(frozen=True)
class HostQueueSettings:
    """``extensions.queues`` of host.json, with the host's defaults for what it leaves out."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: timedelta = timedelta(0)
    max_polling_interval: timedelta = timedelta(minutes=1)
    message_encoding: Literal["base64", "none"] = "base64"

    @classmethod
    def from_host_json(cls, path: Path) -> HostQueueSettings:
        """Read and validate the settings; a bad one is a ValueError naming the file and the setting."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            queues = document.get("extensions", {}).get("queues", {})
            batch_size = int(queues.get("batchSize", cls.batch_size))
            settings = cls(
                batch_size=batch_size,
                # The host's default threshold is half the batch size.
                new_batch_threshold=int(queues.get("newBatchThreshold", batch_size // 2)),
                max_dequeue_count=int(queues.get("maxDequeueCount", cls.max_dequeue_count)),
                visibility_timeout=parse_timespan(queues.get("visibilityTimeout", "00:00:00")),
                max_polling_interval=parse_timespan(queues.get("maxPollingInterval", "00:01:00")),
                message_encoding=_encoding(queues.get("messageEncoding", "base64")),
            )
        except (OSError, ValueError, TypeError, AttributeError) as error:
            raise ValueError(f"{path}: extensions.queues: {error}") from error
        for name, value, low, high in (
            ("batchSize", settings.batch_size, 1, 32),
            ("newBatchThreshold", settings.new_batch_threshold, 0, 1000),
            ("maxDequeueCount", settings.max_dequeue_count, 1, 1000),
        ):
            if not low <= value <= high:
                raise ValueError(f"{path}: extensions.queues.{name} = {value} is outside {low}-{high}")
        if settings.max_polling_interval < timedelta(milliseconds=100):
            raise ValueError(f"{path}: extensions.queues.maxPollingInterval must be at least 00:00:00.1")
        return settings

    def decode(self, content: object) -> bytes:
        """A message's body in ``messageEncoding``; ValueError when the host could not decode it either."""
        text = "" if content is None else str(content)
        if self.message_encoding == "none":
            return text.encode("utf-8")
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error as error:
            raise ValueError(f"not valid base64: {error}") from None


def _encoding(value: object) -> Literal["base64", "none"]:
    text = str(value).lower()
    if text == "base64":
        return "base64"
    if text == "none":
        return "none"
    raise ValueError(f"messageEncoding {value!r} is neither 'base64' nor 'none'")
