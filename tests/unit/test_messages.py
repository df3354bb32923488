"""Queue messages (DESIGN.md, "Queue message"): the accepted forms, and the poison reasons for the rest."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.messages import MAX_MESSAGE_BYTES, InvalidMessage, JobMessage, parse_message
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


def padded_to(size: int) -> str:
    """A valid message of exactly ``size`` UTF-8 bytes (trailing whitespace is allowed)."""
    text = json.dumps({"jobId": JOB_ID})
    return text + " " * (size - len(text.encode()))


def test_message_of_exactly_the_size_limit_is_accepted() -> None:
    assert parse(padded_to(MAX_MESSAGE_BYTES)).job_id == JOB_ID


def test_message_one_byte_over_the_size_limit_is_oversized() -> None:
    assert poison_code(padded_to(MAX_MESSAGE_BYTES + 1)) == "oversized"


def test_size_limit_counts_utf8_bytes_not_characters() -> None:
    # Each "é" is one character but two bytes: under the limit in characters, over it in bytes.
    text = json.dumps(
        {"jobId": JOB_ID, "metadata": {"note": "é" * (MAX_MESSAGE_BYTES // 2)}}, ensure_ascii=False
    )
    assert len(text) < MAX_MESSAGE_BYTES < len(text.encode())

    assert poison_code(text) == "oversized"


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
    "poll",
    [
        "attempt=3",
        [3],
        {"attempt": -1},
        {"attempt": "3"},
        {"attempt": 1.5},
        {"attempt": True},
        {"unusable": -2},
        {"unusable": False},
        {"ledgerEtag": 123},
        {"firstSeenAt": "yesterday"},
        {"seenAt": 1730462400},
        {"expiresAt": "2024-13-01T00:00:00Z"},
    ],
    ids=[
        "string",
        "list",
        "negative-attempt",
        "string-attempt",
        "float-attempt",
        "bool-attempt",
        "negative-unusable",
        "bool-unusable",
        "numeric-etag",
        "unparseable-time",
        "numeric-time",
        "impossible-month",
    ],
)
def test_malformed_poll_state_is_invalid_field(poll: object) -> None:
    assert poison_code(json.dumps({"jobId": JOB_ID, "_poll": poll})) == "invalid-field"
