"""host.json's queue settings, which drive the local runner as they drive the Functions host."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from local.host.settings import HOST_JSON, HostQueueSettings, parse_timespan


def host_json(tmp_path: Path, queues: object) -> Path:
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"version": "2.0", "extensions": {"queues": queues}}))
    return path


def test_repository_host_json_is_read() -> None:
    assert HostQueueSettings.from_host_json(HOST_JSON) == HostQueueSettings(
        batch_size=16,
        new_batch_threshold=8,
        max_dequeue_count=5,
        visibility_timeout=timedelta(seconds=30),
        max_polling_interval=timedelta(seconds=2),
        message_encoding="base64",
    )


def test_missing_settings_take_the_host_defaults(tmp_path: Path) -> None:
    settings = HostQueueSettings.from_host_json(host_json(tmp_path, {"batchSize": 10}))
    assert settings == HostQueueSettings(
        batch_size=10,
        new_batch_threshold=5,  # half the batch size
        max_dequeue_count=5,
        visibility_timeout=timedelta(0),
        max_polling_interval=timedelta(minutes=1),
        message_encoding="base64",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:30", timedelta(seconds=30)),
        ("00:00:00.2", timedelta(milliseconds=200)),
        ("01:02:03.1234567", timedelta(hours=1, minutes=2, seconds=3, microseconds=123456)),
        ("2.00:00:01", timedelta(days=2, seconds=1)),
        ("0:5:0", timedelta(minutes=5)),
    ],
)
def test_timespans_are_parsed(text: str, expected: timedelta) -> None:
    assert parse_timespan(text) == expected


@pytest.mark.parametrize("text", ["30", "00:30", "00:60:00", "00:00:01.", "-00:00:01", "00:00:01 "])
def test_malformed_timespan_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="timespan"):
        parse_timespan(text)


@pytest.mark.parametrize(
    ("queues", "message"),
    [
        ({"batchSize": 64}, "extensions.queues.batchSize = 64 is outside 1-32"),
        ({"maxDequeueCount": 0}, "extensions.queues.maxDequeueCount = 0 is outside 1-1000"),
        ({"messageEncoding": "utf8"}, "messageEncoding 'utf8' is neither 'base64' nor 'none'"),
        ({"visibilityTimeout": "30s"}, "timespan '30s'"),
        ({"maxPollingInterval": "00:00:00.05"}, "maxPollingInterval must be at least 00:00:00.1"),
        ({"batchSize": "many"}, "invalid literal"),
    ],
)
def test_bad_setting_is_a_value_error_naming_it(tmp_path: Path, queues: object, message: str) -> None:
    with pytest.raises(ValueError, match=r"host\.json") as raised:
        HostQueueSettings.from_host_json(host_json(tmp_path, queues))
    assert message in str(raised.value)


def test_missing_host_json_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"nowhere\.json"):
        HostQueueSettings.from_host_json(tmp_path / "nowhere.json")


def test_base64_messages_are_decoded() -> None:
    assert HostQueueSettings(message_encoding="base64").decode("aGVsbG8=") == b"hello"


def test_messages_without_encoding_are_taken_as_utf8_text() -> None:
    assert HostQueueSettings(message_encoding="none").decode("h\u00e9llo") == "h\u00e9llo".encode()


def test_a_message_that_is_not_base64_cannot_be_decoded() -> None:
    with pytest.raises(ValueError, match="not valid base64"):
        HostQueueSettings(message_encoding="base64").decode("not base64!")
