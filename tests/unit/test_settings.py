"""App settings (DESIGN.md, "App settings"): defaults, validation, and errors that name the setting."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from shared.settings import SETTINGS, Settings, SettingsError, bounds, load_settings

ENDPOINT = "https://myres.cognitiveservices.azure.com"
BASE = {"LANGUAGE_ENDPOINT": ENDPOINT, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
ACCOUNT_KEY = "c2VjcmV0LWtleS10aGF0LW11c3Qtbm90LWxlYWs="
CONNECTION_STRING = (
    "DefaultEndpointsProtocol=https;AccountName=myaccount;"
    f"AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"
)
API_KEY = "0123456789abcdef0123456789abcdef"


def load(**overrides: str) -> Settings:
    return load_settings({**BASE, **overrides})


def load_without(*names: str, **overrides: str) -> Settings:
    env = {**BASE, **overrides}
    for name in names:
        env.pop(name, None)
    return load_settings(env)


def settings_error(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    return str(caught.value)


# --- defaults ------------------------------------------------------------------------------------


def test_defaults_are_those_of_the_design_table() -> None:
    settings = load()

    assert settings.language_endpoint == ENDPOINT
    assert settings.language_api_key is None
    assert settings.language_api_version == "2024-11-01"
    assert settings.archive_container == "entity-archive"
    assert settings.jobs_queue == "language-jobs"
    assert settings.poll_initial_delay_seconds == 5
    assert settings.poll_max_delay_seconds == 300
    assert settings.sweep_schedule == "0 */5 * * * *"
    assert settings.sweep_grace_seconds == 300
    assert settings.language_max_requests_per_minute == 600
    assert settings.events_queue is None
    assert settings.events_time_to_live_seconds == 7 * 24 * 3600


def test_declared_settings_and_defaults_match_the_design_table() -> None:
    assert {spec.name: spec.default for spec in SETTINGS} == {
        "LANGUAGE_ENDPOINT": None,
        "LANGUAGE_API_KEY": None,
        "LANGUAGE_API_VERSION": "2024-11-01",
        "AzureWebJobsStorage": None,
        "ARCHIVE_CONTAINER": "entity-archive",
        "JOBS_QUEUE": "language-jobs",
        "POLL_INITIAL_DELAY_SECONDS": "5",
        "POLL_MAX_DELAY_SECONDS": "300",
        "SWEEP_SCHEDULE": "0 */5 * * * *",
        "SWEEP_GRACE_SECONDS": "300",
        "LANGUAGE_MAX_REQUESTS_PER_MINUTE": "600",
        "EVENTS_QUEUE": None,
        "EVENTS_TIME_TO_LIVE_SECONDS": "604800",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": None,
    }
    assert {spec.name for spec in SETTINGS if spec.required} == {"LANGUAGE_ENDPOINT", "AzureWebJobsStorage"}


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_optional_setting_falls_back_to_its_default(blank: str) -> None:
    settings = load(JOBS_QUEUE=blank, POLL_INITIAL_DELAY_SECONDS=blank, LANGUAGE_API_KEY=blank)

    assert settings.jobs_queue == "language-jobs"
    assert settings.poll_initial_delay_seconds == 5
    assert settings.language_api_key is None


def test_every_setting_can_be_overridden() -> None:
    settings = load(
        LANGUAGE_API_KEY=API_KEY,
        LANGUAGE_API_VERSION="2023-04-15-preview",
        ARCHIVE_CONTAINER="ner-archive",
        JOBS_QUEUE="ner-jobs",
        POLL_INITIAL_DELAY_SECONDS="2.5",
        POLL_MAX_DELAY_SECONDS="600",
        SWEEP_SCHEDULE="30 */10 * * * *",
        SWEEP_GRACE_SECONDS="0",
    )

    assert settings.language_api_key == API_KEY
    assert settings.language_api_version == "2023-04-15-preview"
    assert settings.archive_container == "ner-archive"
    assert settings.jobs_queue == "ner-jobs"
    assert settings.poll_initial_delay_seconds == 2.5
    assert settings.poll_max_delay_seconds == 600
    assert settings.sweep_schedule == "30 */10 * * * *"
    assert settings.sweep_grace_seconds == 0


def test_values_are_trimmed_of_surrounding_whitespace() -> None:
    settings = load(LANGUAGE_API_KEY=f"  {API_KEY}\n", JOBS_QUEUE=" ner-jobs ")

    assert settings.language_api_key == API_KEY
    assert settings.jobs_queue == "ner-jobs"


def test_poison_queue_is_the_jobs_queue_with_poison_suffix() -> None:
    assert load(JOBS_QUEUE="ner-jobs").poison_queue == "ner-jobs-poison"


def test_ledger_container_sits_beside_the_archive_container() -> None:
    assert load(ARCHIVE_CONTAINER="ner-archive").ledger_container == "ner-archive-ledger"


def test_settings_are_immutable() -> None:
    settings = load()

    with pytest.raises(FrozenInstanceError):
        settings.jobs_queue = "other"  # type: ignore[misc]


# --- required settings ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["LANGUAGE_ENDPOINT", "AzureWebJobsStorage"])
def test_missing_required_setting_is_an_error_naming_it(name: str) -> None:
    env = dict(BASE)
    del env[name]

    message = settings_error(env)

    assert name in message
    assert "missing" in message


@pytest.mark.parametrize("name", ["LANGUAGE_ENDPOINT", "AzureWebJobsStorage"])
def test_blank_required_setting_counts_as_missing(name: str) -> None:
    message = settings_error({**BASE, name: "  "})

    assert name in message
    assert "missing" in message


# --- LANGUAGE_ENDPOINT ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://myres.cognitiveservices.azure.com", "https://myres.cognitiveservices.azure.com"),
        ("https://myres.cognitiveservices.azure.com/", "https://myres.cognitiveservices.azure.com"),
        ("https://myres.cognitiveservices.azure.com//", "https://myres.cognitiveservices.azure.com"),
        ("https://MyRes.CognitiveServices.Azure.com/", "https://myres.cognitiveservices.azure.com"),
        ("https://myres.cognitiveservices.azure.com:8443/", "https://myres.cognitiveservices.azure.com:8443"),
    ],
)
def test_endpoint_is_normalised_to_scheme_and_lowercase_host(value: str, expected: str) -> None:
    assert load(LANGUAGE_ENDPOINT=value).language_endpoint == expected


@pytest.mark.parametrize(
    "value",
    [
        "http://localhost:5000",
        "http://LOCALHOST:5000",
        "http://127.0.0.1:5000",
        "http://127.10.20.30",
        "http://[::1]:5000",
    ],
)
def test_plain_http_is_allowed_for_loopback_hosts(value: str) -> None:
    assert load(LANGUAGE_ENDPOINT=value).language_endpoint == value.lower()


@pytest.mark.parametrize(
    "value",
    [
        "http://myres.cognitiveservices.azure.com",
        "http://10.0.0.4",
        "http://0.0.0.0:5000",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
    ],
)
def test_plain_http_is_rejected_for_other_hosts(value: str) -> None:
    message = settings_error({**BASE, "LANGUAGE_ENDPOINT": value})

    assert "LANGUAGE_ENDPOINT" in message
    assert "https" in message


@pytest.mark.parametrize(
    "value",
    [
        "https://myres.cognitiveservices.azure.com/language",
        "https://myres.cognitiveservices.azure.com/language/analyze-text/jobs",
        "https://myres.cognitiveservices.azure.com/?api-version=2024-11-01",
        "https://myres.cognitiveservices.azure.com/#top",
        "https://user:secret@myres.cognitiveservices.azure.com",
        "https://user@myres.cognitiveservices.azure.com",
        "https://@myres.cognitiveservices.azure.com",
    ],
)
def test_endpoint_with_path_query_fragment_or_credentials_is_rejected(value: str) -> None:
    message = settings_error({**BASE, "LANGUAGE_ENDPOINT": value})

    assert "LANGUAGE_ENDPOINT" in message
    assert "secret" not in message


@pytest.mark.parametrize(
    "value",
    [
        "myres.cognitiveservices.azure.com",
        "ftp://myres.cognitiveservices.azure.com",
        "https://",
        "https://myres.cognitiveservices.azure.com:notaport",
        "https://[::1",
    ],
)
def test_endpoint_that_is_not_an_http_url_is_rejected(value: str) -> None:
    assert "LANGUAGE_ENDPOINT" in settings_error({**BASE, "LANGUAGE_ENDPOINT": value})


def test_endpoint_origin_is_scheme_lowercase_host_and_port() -> None:
    settings = load(LANGUAGE_ENDPOINT="https://MyRes.cognitiveservices.azure.com:8443")

    assert settings.endpoint_origin == ("https", "myres.cognitiveservices.azure.com", 8443)


# --- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["POLL_INITIAL_DELAY_SECONDS", "POLL_MAX_DELAY_SECONDS", "SWEEP_GRACE_SECONDS"]
)
@pytest.mark.parametrize("value", ["five", "5s", "1,5", "nan", "inf", "-1"])
def test_malformed_or_out_of_range_seconds_are_rejected_naming_the_setting(name: str, value: str) -> None:
    assert name in settings_error({**BASE, name: value})


@pytest.mark.parametrize("name", ["POLL_INITIAL_DELAY_SECONDS", "POLL_MAX_DELAY_SECONDS"])
def test_poll_delays_must_be_positive(name: str) -> None:
    assert name in settings_error({**BASE, name: "0"})


@pytest.mark.parametrize("value", ["0", "-1", "ten", "1.5", "nan", "1e3"])
def test_a_request_budget_that_is_not_a_whole_number_from_one_is_rejected_naming_it(value: str) -> None:
    message = settings_error({**BASE, "LANGUAGE_MAX_REQUESTS_PER_MINUTE": value})
    assert message.startswith("LANGUAGE_MAX_REQUESTS_PER_MINUTE")
    assert "\n" not in message


@pytest.mark.parametrize("value", ["59", "2592001", "-1", "0", "a week", "3600.5", "nan"])
def test_an_events_time_to_live_outside_a_minute_to_thirty_days_is_rejected_naming_it(value: str) -> None:
    message = settings_error({**BASE, "EVENTS_TIME_TO_LIVE_SECONDS": value})
    assert message.startswith("EVENTS_TIME_TO_LIVE_SECONDS")
    assert "from 60 to 2592000" in message
    assert "\n" not in message


@pytest.mark.parametrize("value", ["60", "86400", "2592000"])
def test_an_events_time_to_live_within_its_bounds_is_accepted(value: str) -> None:
    assert load(EVENTS_TIME_TO_LIVE_SECONDS=value).events_time_to_live_seconds == int(value)


NUMBER_SETTINGS = [
    "POLL_INITIAL_DELAY_SECONDS",
    "POLL_MAX_DELAY_SECONDS",
    "SWEEP_GRACE_SECONDS",
    "LANGUAGE_MAX_REQUESTS_PER_MINUTE",
    "EVENTS_TIME_TO_LIVE_SECONDS",
]


def test_every_number_setting_declares_finite_bounds() -> None:
    specs = {spec.name: spec for spec in SETTINGS}
    for name in NUMBER_SETTINGS:
        low, high = bounds(name)
        assert (specs[name].minimum, specs[name].maximum) == (low, high)
        assert 0 <= low <= float(specs[name].default or "nan") <= high < float("inf")


@pytest.mark.parametrize(
    ("name", "maximum"),
    [
        ("POLL_INITIAL_DELAY_SECONDS", 86400),
        ("POLL_MAX_DELAY_SECONDS", 604800),
        ("SWEEP_GRACE_SECONDS", 86400),
        ("LANGUAGE_MAX_REQUESTS_PER_MINUTE", 100_000),
        ("EVENTS_TIME_TO_LIVE_SECONDS", 2_592_000),
    ],
)
def test_a_number_setting_at_its_maximum_is_accepted_and_one_above_is_a_one_line_error_naming_its_bounds(
    name: str, maximum: int
) -> None:
    env = {**BASE, "POLL_MAX_DELAY_SECONDS": "604800"}
    load_settings({**env, name: str(maximum)})

    message = settings_error({**env, name: str(maximum + 1)})

    assert message.startswith(f"{name} ")
    assert f"to {maximum}" in message
    assert "\n" not in message


@pytest.mark.parametrize("value", ["3e11", "1e400", "-inf", "NaN", "1" * 5000])
@pytest.mark.parametrize("name", NUMBER_SETTINGS)
def test_huge_or_non_finite_numbers_are_rejected_naming_the_setting(name: str, value: str) -> None:
    message = settings_error({**BASE, name: value})

    assert message.startswith(f"{name} ")
    assert "\n" not in message


def test_a_request_budget_of_one_a_minute_is_accepted() -> None:
    assert load(LANGUAGE_MAX_REQUESTS_PER_MINUTE="1").language_max_requests_per_minute == 1


def test_sweep_grace_may_be_zero() -> None:
    assert load(SWEEP_GRACE_SECONDS="0").sweep_grace_seconds == 0


def test_max_delay_below_initial_delay_is_rejected_naming_both() -> None:
    message = settings_error({**BASE, "POLL_INITIAL_DELAY_SECONDS": "60", "POLL_MAX_DELAY_SECONDS": "30"})

    assert "POLL_MAX_DELAY_SECONDS" in message
    assert "POLL_INITIAL_DELAY_SECONDS" in message


def test_max_delay_equal_to_initial_delay_is_accepted() -> None:
    settings = load(POLL_INITIAL_DELAY_SECONDS="30", POLL_MAX_DELAY_SECONDS="30")

    assert settings.poll_max_delay_seconds == settings.poll_initial_delay_seconds == 30


def test_max_delay_of_exactly_seven_days_is_accepted() -> None:
    assert load(POLL_MAX_DELAY_SECONDS=str(7 * 24 * 3600)).poll_max_delay_seconds == 604800


def test_max_delay_beyond_the_queue_seven_day_visibility_limit_is_rejected() -> None:
    message = settings_error({**BASE, "POLL_MAX_DELAY_SECONDS": str(7 * 24 * 3600 + 1)})

    assert "POLL_MAX_DELAY_SECONDS" in message
    assert "604800" in message  # the queue's 7-day visibility limit


# --- names and formats ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["2024-11-01", "2022-10-01-preview", "2026-05-15-preview"])
def test_api_version_accepts_dates_with_optional_preview(value: str) -> None:
    assert load(LANGUAGE_API_VERSION=value).language_api_version == value


@pytest.mark.parametrize("value", ["latest", "2024-11", "v3.1", "2024-11-01-beta", "2024-11-01?x=1"])
def test_malformed_api_version_is_rejected_naming_the_setting(value: str) -> None:
    assert "LANGUAGE_API_VERSION" in settings_error({**BASE, "LANGUAGE_API_VERSION": value})


@pytest.mark.parametrize("name", ["ARCHIVE_CONTAINER", "JOBS_QUEUE"])
@pytest.mark.parametrize(
    "value",
    [
        "ab",  # too short
        "Entity-Archive",  # uppercase
        "entity_archive",  # underscore
        "-archive",  # leading hyphen
        "archive-",  # trailing hyphen
        "entity--archive",  # consecutive hyphens
        "a" * 57,  # no room left for the "-ledger" / "-poison" suffix
    ],
)
def test_invalid_container_or_queue_name_is_rejected_naming_the_setting(name: str, value: str) -> None:
    assert name in settings_error({**BASE, name: value})


@pytest.mark.parametrize("name", ["ARCHIVE_CONTAINER", "JOBS_QUEUE"])
@pytest.mark.parametrize("value", ["abc", "a1-b2-c3", "a" * 56])
def test_valid_container_and_queue_names_are_accepted(name: str, value: str) -> None:
    settings = load(**{name: value})

    assert getattr(settings, name.lower()) == value


@pytest.mark.parametrize(
    "value", ["0 */5 * * * *", "0 30 9 * * MON-FRI", "0 0 0 1 JAN,JUL *", "*/10 0-30/5 * * * 0,6"]
)
def test_six_field_ncrontab_schedule_is_accepted(value: str) -> None:
    assert load(SWEEP_SCHEDULE=value).sweep_schedule == value


@pytest.mark.parametrize(
    "value",
    [
        "*/5 * * * *",  # five-field Unix cron
        "0 */5 * * * * *",  # seven fields
        "every five minutes",
        "a b c d e f",  # six fields, none of them a cron field
        "0 */5 * * * ?",  # Quartz, not NCRONTAB
        "00:05:00",  # a TimeSpan, not NCRONTAB
    ],
)
def test_malformed_ncrontab_schedule_is_rejected_naming_the_setting(value: str) -> None:
    assert "SWEEP_SCHEDULE" in settings_error({**BASE, "SWEEP_SCHEDULE": value})


# --- storage -------------------------------------------------------------------------------------


def test_development_storage_is_accepted_as_a_connection_string() -> None:
    storage = load().storage

    assert storage.connection_string == "UseDevelopmentStorage=true"
    assert not storage.uses_identity


def test_account_key_connection_string_is_accepted() -> None:
    storage = load(AzureWebJobsStorage=CONNECTION_STRING).storage

    assert storage.connection_string == CONNECTION_STRING
    assert not storage.uses_identity


def test_storage_value_that_is_not_a_connection_string_is_rejected_without_echoing_it() -> None:
    message = settings_error({**BASE, "AzureWebJobsStorage": "not-a-connection-string"})

    assert "AzureWebJobsStorage" in message
    assert "not-a-connection-string" not in message


def test_identity_based_storage_uses_the_service_uris() -> None:
    storage = load_without(
        "AzureWebJobsStorage",
        AzureWebJobsStorage__blobServiceUri="https://myaccount.blob.core.windows.net/",
        AzureWebJobsStorage__queueServiceUri="https://myaccount.queue.core.windows.net",
    ).storage

    assert storage.uses_identity
    assert storage.connection_string is None
    assert storage.blob_service_uri == "https://myaccount.blob.core.windows.net"
    assert storage.queue_service_uri == "https://myaccount.queue.core.windows.net"
    assert storage.credential is None
    assert storage.client_id is None


def test_identity_based_storage_derives_service_uris_from_the_account_name() -> None:
    storage = load_without("AzureWebJobsStorage", AzureWebJobsStorage__accountName="myaccount").storage

    assert storage.uses_identity
    assert storage.blob_service_uri == "https://myaccount.blob.core.windows.net"
    assert storage.queue_service_uri == "https://myaccount.queue.core.windows.net"


def test_identity_based_storage_keeps_an_explicit_uri_over_the_account_name() -> None:
    storage = load_without(
        "AzureWebJobsStorage",
        AzureWebJobsStorage__accountName="myaccount",
        AzureWebJobsStorage__blobServiceUri="https://custom.blob.example.net",
    ).storage

    assert storage.blob_service_uri == "https://custom.blob.example.net"
    assert storage.queue_service_uri == "https://myaccount.queue.core.windows.net"


def test_user_assigned_identity_credential_and_client_id_are_kept() -> None:
    client_id = "6d2e1a0b-9c8f-4e7d-a6b5-c4d3e2f1a0b9"
    storage = load_without(
        "AzureWebJobsStorage",
        AzureWebJobsStorage__accountName="myaccount",
        AzureWebJobsStorage__credential="managedidentity",
        AzureWebJobsStorage__clientId=client_id,
    ).storage

    assert storage.credential == "managedidentity"
    assert storage.client_id == client_id


def test_unsupported_identity_credential_is_rejected_naming_the_setting() -> None:
    env = {
        "LANGUAGE_ENDPOINT": ENDPOINT,
        "AzureWebJobsStorage__accountName": "myaccount",
        "AzureWebJobsStorage__credential": "clientsecret",
    }

    assert "AzureWebJobsStorage__credential" in settings_error(env)


def test_identity_based_storage_with_only_one_service_uri_is_missing_the_other() -> None:
    env = {
        "LANGUAGE_ENDPOINT": ENDPOINT,
        "AzureWebJobsStorage__blobServiceUri": "https://myaccount.blob.core.windows.net",
    }

    message = settings_error(env)

    assert "AzureWebJobsStorage" in message
    assert "queueServiceUri" in message


@pytest.mark.parametrize("suffix", ["blobServiceUri", "queueServiceUri"])
def test_identity_service_uri_over_plain_http_is_rejected_naming_it(suffix: str) -> None:
    env = {
        "LANGUAGE_ENDPOINT": ENDPOINT,
        "AzureWebJobsStorage__blobServiceUri": "https://myaccount.blob.core.windows.net",
        "AzureWebJobsStorage__queueServiceUri": "https://myaccount.queue.core.windows.net",
        f"AzureWebJobsStorage__{suffix}": "http://myaccount.example.net",
    }

    assert f"AzureWebJobsStorage__{suffix}" in settings_error(env)


def test_identity_service_uris_over_http_are_rejected_even_on_loopback() -> None:
    # The storage SDK refuses a token credential over http, so such a setup could never work.
    env = {
        "LANGUAGE_ENDPOINT": "https://myres.cognitiveservices.azure.com",
        "AzureWebJobsStorage__blobServiceUri": "http://127.0.0.1:10000/devstoreaccount1",
        "AzureWebJobsStorage__queueServiceUri": "https://127.0.0.1:10001/devstoreaccount1",
    }

    assert "AzureWebJobsStorage__blobServiceUri" in settings_error(env)


def test_connection_string_wins_over_identity_based_settings() -> None:
    storage = load(AzureWebJobsStorage__accountName="myaccount").storage

    assert storage.connection_string == "UseDevelopmentStorage=true"
    assert storage.blob_service_uri is None


# --- telemetry -------------------------------------------------------------------------------------

TELEMETRY = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://x.example/"


def test_telemetry_is_off_without_a_connection_string() -> None:
    assert load().applicationinsights_connection_string is None


def test_an_application_insights_connection_string_turns_telemetry_on() -> None:
    settings = load(APPLICATIONINSIGHTS_CONNECTION_STRING=TELEMETRY)

    assert settings.applicationinsights_connection_string == TELEMETRY
    assert TELEMETRY not in repr(settings)


def test_a_connection_string_without_instrumentation_key_names_the_setting() -> None:
    with pytest.raises(SettingsError, match=r"^APPLICATIONINSIGHTS_CONNECTION_STRING is not an Application"):
        load(APPLICATIONINSIGHTS_CONNECTION_STRING="https://x.example/")


# --- secrets and message shape -------------------------------------------------------------------


def test_repr_of_settings_never_shows_the_api_key_or_the_account_key() -> None:
    settings = load(LANGUAGE_API_KEY=API_KEY, AzureWebJobsStorage=CONNECTION_STRING)

    for text in (repr(settings), str(settings), repr(settings.storage)):
        assert API_KEY not in text
        assert ACCOUNT_KEY not in text
        assert "AccountKey" not in text


BAD_ENVIRONMENTS = [
    pytest.param({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}, id="no-endpoint"),
    pytest.param({"LANGUAGE_ENDPOINT": ENDPOINT}, id="no-storage"),
    pytest.param({**BASE, "LANGUAGE_ENDPOINT": "http://example.com"}, id="http-endpoint"),
    pytest.param({**BASE, "LANGUAGE_ENDPOINT": "https://example.com/a\nb"}, id="endpoint-path"),
    pytest.param({**BASE, "LANGUAGE_ENDPOINT": "https://example.com:x"}, id="endpoint-port"),
    pytest.param({**BASE, "LANGUAGE_API_VERSION": "2024\n11-01"}, id="api-version"),
    pytest.param({**BASE, "ARCHIVE_CONTAINER": "bad\nname"}, id="container"),
    pytest.param({**BASE, "JOBS_QUEUE": "bad\nname"}, id="queue"),
    pytest.param({**BASE, "POLL_INITIAL_DELAY_SECONDS": "5\nseconds"}, id="initial"),
    pytest.param({**BASE, "POLL_MAX_DELAY_SECONDS": "1"}, id="max-below-initial"),
    pytest.param({**BASE, "POLL_MAX_DELAY_SECONDS": "1e9"}, id="max-above-7-days"),
    pytest.param({**BASE, "SWEEP_GRACE_SECONDS": "-5"}, id="grace"),
    pytest.param({**BASE, "LANGUAGE_MAX_REQUESTS_PER_MINUTE": "6\n00"}, id="budget"),
    pytest.param({**BASE, "SWEEP_SCHEDULE": "0 */5\n* * *"}, id="schedule"),
    pytest.param({**BASE, "AzureWebJobsStorage": "garbage\nvalue"}, id="connection-string"),
    pytest.param(
        {
            "LANGUAGE_ENDPOINT": ENDPOINT,
            "AzureWebJobsStorage__accountName": "acct",
            "AzureWebJobsStorage__credential": "x\ny",
        },
        id="credential",
    ),
    pytest.param(
        {
            "LANGUAGE_ENDPOINT": ENDPOINT,
            "AzureWebJobsStorage__blobServiceUri": "http://a\nb",
            "AzureWebJobsStorage__queueServiceUri": "https://q",
        },
        id="service-uri",
    ),
]


@pytest.mark.parametrize("env", BAD_ENVIRONMENTS)
def test_every_settings_error_is_a_single_line(env: dict[str, str]) -> None:
    message = settings_error(env)

    assert message
    assert "\n" not in message
    assert "\r" not in message


# --- EVENTS_QUEUE ----------------------------------------------------------------------------------


def test_events_queue_is_unset_by_default_so_no_events_are_sent() -> None:
    assert load().events_queue is None
    assert load(EVENTS_QUEUE="  ").events_queue is None


def test_events_queue_is_read_as_a_queue_name() -> None:
    assert load(EVENTS_QUEUE="archive-events").events_queue == "archive-events"


@pytest.mark.parametrize("value", ["Archive-Events", "ev", "a--b", "x" * 64, "events_queue"])
def test_invalid_events_queue_name_is_one_line_naming_the_setting(value: str) -> None:
    message = settings_error({**BASE, "EVENTS_QUEUE": value})

    assert message.startswith("EVENTS_QUEUE ")
    assert "valid queue name" in message
    assert "\n" not in message


@pytest.mark.parametrize("value", ["language-jobs", "language-jobs-poison"])
def test_events_queue_cannot_be_the_jobs_queue_or_its_poison_queue(value: str) -> None:
    message = settings_error({**BASE, "EVENTS_QUEUE": value})

    assert message.startswith("EVENTS_QUEUE ")
    assert "a queue of its own" in message
