"""Queue messages (DESIGN.md, "Queue message"): the accepted forms, and the poison reasons for the rest."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.messages import (
    LATEST_TIME as LATEST,
)
from shared.messages import (
    MAX_DEPTH,
    MAX_MESSAGE_BYTES,
    MAX_POLL_BYTES,
    QUEUE_MESSAGE_BYTES,
    InvalidMessage,
    JobMessage,
    parse_message,
)
from shared.settings import load_settings

SETTINGS = load_settings(
    {
        "LANGUAGE_ENDPOINT": "https://myres.cognitiveservices.azure.com",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    }
)
JOB_ID = "c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18"
OTHER_JOB_ID = "8f1d4b4e-2c3a-4d5e-9f60-718293a4b5c6"
JOBS = "https://myres.cognitiveservices.azure.com/language/analyze-text/jobs"
LOCATION = f"{JOBS}/{JOB_ID}?api-version=2024-11-01"


def parse(text: str) -> JobMessage:
    return parse_message(text, settings=SETTINGS)


def parse_object(body: object) -> JobMessage:
    return parse(json.dumps(body))


def poison(text: str) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as caught:
        parse(text)
    return caught.value


def poison_code(text: str) -> str:
    error = poison(text)
    assert error.reason.startswith(f"{error.code}: ")
    return error.code


# --- accepted forms ------------------------------------------------------------------------------


def test_object_with_job_id_names_the_job() -> None:
    assert parse_object({"jobId": JOB_ID}) == JobMessage(job_id=JOB_ID)


def test_object_with_operation_location_names_the_job_in_its_path() -> None:
    assert parse_object({"operationLocation": LOCATION}).job_id == JOB_ID


def test_object_with_job_id_and_operation_location_of_the_same_job_is_accepted() -> None:
    assert parse_object({"jobId": JOB_ID, "operationLocation": LOCATION}).job_id == JOB_ID


def test_object_with_job_id_and_operation_location_of_different_jobs_is_a_mismatch() -> None:
    body = json.dumps({"jobId": OTHER_JOB_ID, "operationLocation": LOCATION})

    assert poison_code(body) == "mismatch"


@pytest.mark.parametrize(
    "text",
    [
        JOB_ID,
        f"  {JOB_ID}\n",
        LOCATION,
        f"{JOBS}/{JOB_ID}",
        f"{JOBS}/{JOB_ID}/",
        json.dumps(JOB_ID),
        json.dumps(LOCATION),
    ],
    ids=["bare-id", "bare-id-padded", "bare-url", "url-no-query", "url-slash", "json-id", "json-url"],
)
def test_bare_job_id_or_operation_location_is_accepted(text: str) -> None:
    assert parse(text) == JobMessage(job_id=JOB_ID)


@pytest.mark.parametrize(
    "text",
    [
        JOB_ID.upper(),
        json.dumps({"jobId": JOB_ID.upper()}),
        json.dumps({"operationLocation": f"{JOBS}/{JOB_ID.upper()}"}),
        f"{JOBS}/{JOB_ID.upper()}",
    ],
)
def test_uppercase_job_id_is_normalised_to_lowercase(text: str) -> None:
    assert parse(text).job_id == JOB_ID


def test_operation_location_host_is_compared_case_insensitively() -> None:
    location = f"https://MYRES.CognitiveServices.Azure.com/language/analyze-text/jobs/{JOB_ID}"

    assert parse_object({"operationLocation": location}).job_id == JOB_ID


def test_optional_fields_are_read() -> None:
    message = parse_object(
        {
            "jobId": JOB_ID,
            "displayName": "Extracting Location & US Region",
            "correlationId": "order-4711",
            "metadata": {"tenant": "contoso", "batch": "2024-11-01"},
        }
    )

    assert message.display_name == "Extracting Location & US Region"
    assert message.correlation_id == "order-4711"
    assert message.metadata == {"tenant": "contoso", "batch": "2024-11-01"}


def test_optional_fields_default_to_none_and_empty_metadata() -> None:
    message = parse_object({"jobId": JOB_ID})

    assert message.display_name is None
    assert message.correlation_id is None
    assert message.metadata == {}


def test_null_optional_fields_are_treated_as_absent() -> None:
    message = parse_object({"jobId": JOB_ID, "displayName": None, "correlationId": None, "metadata": None})

    assert (message.display_name, message.correlation_id, message.metadata) == (None, None, {})


def test_unknown_fields_are_ignored() -> None:
    assert parse_object({"jobId": JOB_ID, "submittedBy": "upstream", "priority": 3}).job_id == JOB_ID


def test_fresh_message_starts_with_empty_poll_state() -> None:
    message = parse_object({"jobId": JOB_ID})

    assert message.attempt == 0
    assert message.unusable == 0
    assert message.first_seen_at is None
    assert message.seen_at is None
    assert message.expires_at is None
    assert message.ledger_etag is None


# --- poison: unparseable, missing, ids -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "unparseable"),
        ("   \n", "unparseable"),
        ('{"jobId": ', "unparseable"),
        ("[1, 2]", "unparseable"),
        (json.dumps([JOB_ID]), "unparseable"),
        ('"unterminated', "unparseable"),
        # A number or literal is indistinguishable from a bare job id that is not a UUID.
        ("42", "invalid-job-id"),
        ("3.14", "invalid-job-id"),
        ("null", "invalid-job-id"),
        ("true", "invalid-job-id"),
    ],
)
def test_body_that_is_not_an_object_id_or_url_is_poison(text: str, code: str) -> None:
    assert poison_code(text) == code


@pytest.mark.parametrize("body", [{}, {"displayName": "x"}, {"jobId": None, "operationLocation": None}])
def test_object_naming_no_job_is_missing_job(body: dict[str, object]) -> None:
    assert poison_code(json.dumps(body)) == "missing-job"


@pytest.mark.parametrize(
    "job_id",
    [
        "not-a-uuid",
        "12345",
        "c0f2a446-05d9-48fc-ba8f-3ef4af8d0b1",  # one digit short
        "c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18x",
        "g0f2a446-05d9-48fc-ba8f-3ef4af8d0b18",
        JOB_ID.replace("-", ""),  # no hyphens
        f"urn:uuid:{JOB_ID}",
        "c0f2a44605d9-48fc-ba8f-3ef4-af8d0b18",  # hyphens in the wrong places
        f"{JOB_ID}/../other",
    ],
)
@pytest.mark.parametrize("form", ["object", "bare"])
def test_job_id_that_is_not_a_canonical_uuid_is_invalid(job_id: str, form: str) -> None:
    text = json.dumps({"jobId": job_id}) if form == "object" else job_id

    assert poison_code(text) == "invalid-job-id"


def test_braced_uuid_in_object_is_invalid_job_id() -> None:
    assert poison_code(json.dumps({"jobId": f"{{{JOB_ID}}}"})) == "invalid-job-id"


def test_bare_braced_uuid_reads_as_broken_json_and_is_unparseable() -> None:
    assert poison_code(f"{{{JOB_ID}}}") == "unparseable"


def test_operation_location_whose_job_segment_is_not_a_uuid_is_invalid_job_id() -> None:
    assert poison_code(json.dumps({"operationLocation": f"{JOBS}/not-a-uuid"})) == "invalid-job-id"


# --- poison: operation-location ------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        f"https://evil.example.com/language/analyze-text/jobs/{JOB_ID}",
        f"https://otherres.cognitiveservices.azure.com/language/analyze-text/jobs/{JOB_ID}",
        f"https://myres.cognitiveservices.azure.com.evil.example/language/analyze-text/jobs/{JOB_ID}",
        f"http://myres.cognitiveservices.azure.com/language/analyze-text/jobs/{JOB_ID}",
        f"https://myres.cognitiveservices.azure.com:8443/language/analyze-text/jobs/{JOB_ID}",
        f"ftp://myres.cognitiveservices.azure.com/language/analyze-text/jobs/{JOB_ID}",
    ],
    ids=["other-host", "other-resource", "suffix-host", "http", "other-port", "ftp"],
)
@pytest.mark.parametrize("form", ["object", "bare"])
def test_operation_location_off_the_configured_endpoint_is_rejected_as_foreign(
    location: str, form: str
) -> None:
    text = json.dumps({"operationLocation": location}) if form == "object" else location

    assert poison_code(text) == "foreign-operation-location"


def test_operation_location_spelling_out_the_default_port_is_on_the_endpoint() -> None:
    location = f"https://MyRes.cognitiveservices.azure.com:443/language/analyze-text/jobs/{JOB_ID}"

    assert parse(location).job_id == JOB_ID


@pytest.mark.parametrize(
    "location",
    [
        f"https://user:secret@myres.cognitiveservices.azure.com/language/analyze-text/jobs/{JOB_ID}",
        f"https://secret@myres.cognitiveservices.azure.com/language/analyze-text/jobs/{JOB_ID}",
        f"https://:secret@myres.cognitiveservices.azure.com/language/analyze-text/jobs/{JOB_ID}",
    ],
)
def test_operation_location_with_userinfo_is_invalid_and_the_reason_hides_it(location: str) -> None:
    error = poison(json.dumps({"operationLocation": location}))

    assert error.code == "invalid-operation-location"
    assert "secret" not in error.reason


@pytest.mark.parametrize(
    "location",
    [
        f"https://myres.cognitiveservices.azure.com/language/analyze-conversations/jobs/{JOB_ID}",
        f"https://myres.cognitiveservices.azure.com/text/analytics/v3.1/analyze/jobs/{JOB_ID}",
        f"https://myres.cognitiveservices.azure.com/language/analyze-text/jobs/{JOB_ID}/extra",
        "https://myres.cognitiveservices.azure.com/language/analyze-text/jobs",
        "https://myres.cognitiveservices.azure.com/",
        f"https://myres.cognitiveservices.azure.com/{JOB_ID}",
    ],
)
def test_operation_location_that_is_not_an_analyze_text_job_url_is_invalid(location: str) -> None:
    assert poison_code(json.dumps({"operationLocation": location})) == "invalid-operation-location"


def test_operation_location_with_a_malformed_port_is_invalid() -> None:
    location = f"https://myres.cognitiveservices.azure.com:99999/language/analyze-text/jobs/{JOB_ID}"

    assert poison_code(json.dumps({"operationLocation": location})) == "invalid-operation-location"


# --- poison: fields ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"jobId": 42},
        {"jobId": [JOB_ID]},
        {"operationLocation": {"href": LOCATION}},
        {"jobId": JOB_ID, "displayName": 7},
        {"jobId": JOB_ID, "correlationId": ["a"]},
        {"jobId": JOB_ID, "displayName": "x" * 1025},
        {"jobId": JOB_ID, "metadata": "tenant=contoso"},
        {"jobId": JOB_ID, "metadata": ["tenant", "contoso"]},
        {"jobId": JOB_ID, "metadata": {"tenant": 1}},
        {"jobId": JOB_ID, "metadata": {"tenant": None}},
        {"jobId": JOB_ID, "metadata": {"tenant": {"name": "contoso"}}},
        {"jobId": JOB_ID, "metadata": {f"k{i}": "v" for i in range(65)}},
    ],
    ids=[
        "id-number",
        "id-list",
        "location-object",
        "display-number",
        "correlation-list",
        "display-too-long",
        "metadata-string",
        "metadata-list",
        "metadata-number-value",
        "metadata-null-value",
        "metadata-nested",
        "metadata-too-many",
    ],
)
def test_field_of_the_wrong_type_or_size_is_invalid_field(body: dict[str, object]) -> None:
    assert poison_code(json.dumps(body)) == "invalid-field"


# --- poison: size --------------------------------------------------------------------------------


def compact_of(size: int, *, char: str = "x") -> str:
    """A compact message of exactly ``size`` UTF-8 bytes: its metadata value is ``char`` repeated,
    topped up with ASCII to the byte."""

    def text(note: str) -> str:
        return json.dumps(
            {"jobId": JOB_ID, "metadata": {"note": note}}, ensure_ascii=False, separators=(",", ":")
        )

    room = size - len(text("").encode())
    width = len(char.encode())
    result = text(char * (room // width) + "x" * (room % width))
    assert len(result.encode()) == size
    return result


@pytest.mark.parametrize("char", ["x", "é", "€", "🗂"], ids=["ascii", "2-byte", "3-byte", "4-byte"])
def test_compact_message_of_exactly_the_size_limit_is_accepted(char: str) -> None:
    text = compact_of(MAX_MESSAGE_BYTES, char=char)

    assert parse(text).public_size() == len(text.encode()) == MAX_MESSAGE_BYTES


def test_compact_message_one_byte_over_the_size_limit_is_oversized() -> None:
    assert poison_code(compact_of(MAX_MESSAGE_BYTES + 1)) == "oversized"


def test_size_limit_counts_utf8_bytes_not_characters() -> None:
    # Each "é" is one character but two bytes: under the limit in characters, over it in bytes.
    text = json.dumps(
        {"jobId": JOB_ID, "metadata": {"note": "é" * (MAX_MESSAGE_BYTES // 2)}}, ensure_ascii=False
    )
    assert len(text) < MAX_MESSAGE_BYTES < len(text.encode())

    assert poison_code(text) == "oversized"


def test_escaped_non_ascii_counts_as_its_utf8_not_as_its_escape() -> None:
    # "\u00e9" is 6 bytes in the body and 2 in what the app writes: the limit is on the latter.
    text = json.dumps({"jobId": JOB_ID, "metadata": {"note": "é" * (MAX_MESSAGE_BYTES // 6 + 500)}})
    assert len(text.encode()) > MAX_MESSAGE_BYTES

    assert parse(text).public_size() <= MAX_MESSAGE_BYTES


def test_whitespace_unknown_fields_and_the_apps_poll_state_are_not_counted() -> None:
    text = compact_of(MAX_MESSAGE_BYTES)
    body = json.loads(text)
    body["producerNote"] = "y" * 2000
    body["_poll"] = {"attempt": 3, "firstSeenAt": "2024-11-01T12:00:00Z"}
    padded = json.dumps(body, indent=4, ensure_ascii=False)

    assert parse(padded).public_size() == MAX_MESSAGE_BYTES


def test_body_larger_than_a_queue_message_is_oversized_before_parsing() -> None:
    assert poison_code(" " * (QUEUE_MESSAGE_BYTES + 1) + "{") == "oversized"


def test_rescheduled_message_of_a_message_at_the_limit_fits_the_queue_with_room_to_spare() -> None:
    message = parse(compact_of(MAX_MESSAGE_BYTES, char="é")).evolve(
        attempt=999_999,
        unusable=999_999,
        first_seen_at=LATEST,
        seen_at=LATEST,
        expires_at=LATEST,
        due_at=LATEST,
        ledger_etag='"' + "e" * 126 + '"',
    )

    written = message.to_json().encode()

    assert len(written) <= message.public_size() + MAX_POLL_BYTES <= QUEUE_MESSAGE_BYTES - 1024
    assert parse(written.decode()) == message


# --- the app's own poll state --------------------------------------------------------------------


FIRST_SEEN = datetime(2024, 11, 1, 12, 0, 0, tzinfo=UTC)


def full_message() -> JobMessage:
    return JobMessage(
        job_id=JOB_ID,
        display_name="Extracting Location & US Region — ünïcode",
        correlation_id="order-4711",
        metadata={"tenant": "contoso", "émoji": "🗂"},
        attempt=7,
        first_seen_at=FIRST_SEEN,
        seen_at=FIRST_SEEN + timedelta(seconds=5, microseconds=250_000),
        expires_at=FIRST_SEEN + timedelta(hours=24),
        ledger_etag='"0x8DCF1A2B3C4D5E6"',
        unusable=2,
        due_at=FIRST_SEEN + timedelta(seconds=40),
        not_found_since=FIRST_SEEN + timedelta(minutes=2),
    )


def test_to_json_then_parse_round_trips_every_field() -> None:
    message = full_message()

    assert parse(message.to_json()) == message


def test_to_json_of_a_fresh_message_round_trips() -> None:
    message = JobMessage(job_id=JOB_ID)

    assert parse(message.to_json()) == message


def test_round_trip_keeps_the_instant_of_a_non_utc_time() -> None:
    local = datetime(2024, 11, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    message = JobMessage(job_id=JOB_ID, first_seen_at=local)

    parsed = parse(message.to_json())

    assert parsed.first_seen_at == FIRST_SEEN
    assert parsed.first_seen_at is not None
    assert parsed.first_seen_at.utcoffset() == timedelta(0)


def test_to_json_writes_the_public_fields_and_poll_state_under_underscore_poll() -> None:
    body = json.loads(full_message().to_json())

    assert body == {
        "jobId": JOB_ID,
        "displayName": "Extracting Location & US Region — ünïcode",
        "correlationId": "order-4711",
        "metadata": {"tenant": "contoso", "émoji": "🗂"},
        "_poll": {
            "attempt": 7,
            "firstSeenAt": "2024-11-01T12:00:00Z",
            "seenAt": "2024-11-01T12:00:05.250000Z",
            "expiresAt": "2024-11-02T12:00:00Z",
            "ledgerEtag": '"0x8DCF1A2B3C4D5E6"',
            "unusable": 2,
            "dueAt": "2024-11-01T12:00:40Z",
            "notFoundSince": "2024-11-01T12:02:00Z",
        },
    }


def test_to_json_omits_absent_optional_fields() -> None:
    body = json.loads(JobMessage(job_id=JOB_ID).to_json())

    assert set(body) == {"jobId", "_poll"}


def test_evolve_returns_a_changed_copy() -> None:
    message = JobMessage(job_id=JOB_ID)

    evolved = message.evolve(attempt=3)

    assert evolved.attempt == 3
    assert message.attempt == 0


def test_partial_poll_state_defaults_the_missing_counters() -> None:
    message = parse_object({"jobId": JOB_ID, "_poll": {"firstSeenAt": "2024-11-01T12:00:00Z"}})

    assert message.first_seen_at == FIRST_SEEN
    assert message.attempt == 0
    assert message.unusable == 0


@pytest.mark.parametrize(
    ("poll", "ignored"),
    [
        ("attempt=3", "_poll"),
        ([3], "_poll"),
        ({"attempt": -1}, "attempt"),
        ({"attempt": "3"}, "attempt"),
        ({"attempt": 1.5}, "attempt"),
        ({"attempt": True}, "attempt"),
        ({"attempt": 10**30}, "attempt"),
        ({"attempt": 1, "unusable": -2}, "unusable"),
        ({"attempt": 1, "unusable": False}, "unusable"),
        ({"attempt": 1, "unusable": 2}, "unusable"),
        ({"ledgerEtag": 123}, "ledgerEtag"),
        ({"ledgerEtag": '"etag"\r\nX-Header: 1'}, "ledgerEtag"),
        ({"ledgerEtag": "e" * 129}, "ledgerEtag"),
        ({"firstSeenAt": "yesterday"}, "firstSeenAt"),
        ({"seenAt": 1730462400}, "seenAt"),
        ({"expiresAt": "2024-13-01T00:00:00Z"}, "expiresAt"),
        ({"dueAt": "9999-12-31T23:59:59Z"}, "dueAt"),
        ({"firstSeenAt": "0001-01-01T00:00:00Z"}, "firstSeenAt"),
        ({"seenAt": "9999-12-31T23:59:59-05:00"}, "seenAt"),
    ],
    ids=[
        "string",
        "list",
        "negative-attempt",
        "string-attempt",
        "float-attempt",
        "bool-attempt",
        "huge-attempt",
        "negative-unusable",
        "bool-unusable",
        "unusable-above-attempts",
        "numeric-etag",
        "etag-with-header-injection",
        "etag-too-long",
        "unparseable-time",
        "numeric-time",
        "impossible-month",
        "time-at-datetime-max",
        "time-at-datetime-min",
        "time-overflowing-to-utc",
    ],
)
def test_malformed_poll_field_is_ignored_as_if_absent_with_a_warning_naming_it(
    poll: object, ignored: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="archiver.messages"):
        message = parse_object({"jobId": JOB_ID, "displayName": "kept", "_poll": poll})

    # The same as the message without the field (the whole _poll when that is what is malformed).
    sound = {k: v for k, v in (poll.items() if isinstance(poll, dict) else ()) if k != ignored}
    assert message == parse_object({"jobId": JOB_ID, "displayName": "kept", "_poll": sound})
    [record] = caplog.records
    assert ignored in record.getMessage()
    assert record.levelno == logging.WARNING
    assert record.jobId == JOB_ID  # type: ignore[attr-defined]


def test_poll_warning_never_carries_the_fields_value(caplog: pytest.LogCaptureFixture) -> None:
    secret = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq"
    with caplog.at_level(logging.WARNING, logger="archiver.messages"):
        parse_object({"jobId": JOB_ID, "_poll": {"ledgerEtag": secret + "\n", "firstSeenAt": secret}})

    assert caplog.records
    assert all(secret not in record.getMessage() for record in caplog.records)


def test_a_sound_field_beside_a_malformed_one_is_kept() -> None:
    message = parse_object({"jobId": JOB_ID, "_poll": {"attempt": 4, "seenAt": "soon"}})

    assert (message.attempt, message.seen_at) == (4, None)


# --- text that is not valid Unicode, depth, numbers -------------------------------------------


def with_job_id(members: str) -> str:
    """A JSON object text naming the job, then ``members`` as written."""
    return '{"jobId": "' + JOB_ID + '", ' + members + "}"


def test_lone_surrogates_are_replaced_by_the_replacement_character() -> None:
    text = with_job_id(
        '"displayName": "cut \\ud83d", "correlationId": "\\ude00x", '
        '"metadata": {"k\\udc00": "v\\ud800\\ud800"}'
    )

    message = parse(text)

    assert message.display_name == "cut \ufffd"
    assert message.correlation_id == "\ufffdx"
    assert dict(message.metadata) == {"k\ufffd": "v\ufffd\ufffd"}
    assert message.to_json().encode("utf-8")  # writable as UTF-8: no UnicodeEncodeError


def test_a_valid_surrogate_pair_escape_is_the_character_it_encodes() -> None:
    message = parse(with_job_id('"displayName": "\\ud83d\\uddc2"'))

    assert message.display_name == "🗂"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_nesting_deeper_than_the_bound_is_too_deep(depth: int) -> None:
    text = with_job_id('"x": ' + "[" * (depth - 1) + "]" * (depth - 1))

    assert poison_code(text[:QUEUE_MESSAGE_BYTES]) in {"too-deep"}


def test_nesting_at_the_bound_is_accepted() -> None:
    text = with_job_id('"x": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))

    assert parse(text).job_id == JOB_ID


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"jobId": JOB_ID, "displayName": "[" * 1000, "metadata": {"k": "{" * 1000}})

    assert parse(text).display_name == "[" * 1000


@pytest.mark.parametrize("number", ["1" * 5000, "1e999999", "-1e400", "NaN", "Infinity"])
def test_huge_or_odd_numbers_in_unknown_fields_are_harmless(number: str) -> None:
    assert parse(with_job_id('"x": ' + number)).job_id == JOB_ID


def test_a_huge_number_as_the_attempt_count_is_ignored() -> None:
    assert parse(with_job_id('"_poll": {"attempt": ' + "9" * 5000 + "}")).attempt == 0
