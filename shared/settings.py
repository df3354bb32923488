"""App settings: read from the environment once, validated once, immutable afterwards.

Every setting the app reads is declared in ``SETTINGS`` (name, default); nothing else in the code
reads the environment for configuration. A missing or malformed value raises ``SettingsError``
whose message is one line naming the setting and what to do about it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from .urls import Origin, origin

__all__ = [
    "EVENTS_TIME_TO_LIVE_SETTING",
    "SETTINGS",
    "STORAGE_IDENTITY_SUFFIXES",
    "STORAGE_SETTING",
    "SettingSpec",
    "Settings",
    "SettingsError",
    "StorageSettings",
    "bounds",
    "is_loopback_host",
    "load_settings",
]

#: ``AzureWebJobsStorage`` is either a connection string or, identity-based, a family of
#: ``AzureWebJobsStorage__<suffix>`` settings (the host's own convention).
STORAGE_SETTING: Final = "AzureWebJobsStorage"
STORAGE_IDENTITY_SUFFIXES: Final = (
    "blobServiceUri",
    "queueServiceUri",
    "accountName",
    "credential",
    "clientId",
)

EVENTS_TIME_TO_LIVE_SETTING: Final = "EVENTS_TIME_TO_LIVE_SECONDS"

_MAX_QUEUE_VISIBILITY_SECONDS: Final = 7 * 24 * 3600  # the storage queue's hard limit
_DAY_SECONDS: Final = 24 * 3600


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says what to do."""


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """One app setting: its name and default (``None``: required or optional without default)."""

    name: str
    default: str | None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None


SETTINGS: Final[tuple[SettingSpec, ...]] = (
    SettingSpec("LANGUAGE_ENDPOINT", None, required=True),
    SettingSpec("LANGUAGE_API_KEY", None),
    SettingSpec("LANGUAGE_API_VERSION", "2024-11-01"),
    SettingSpec(STORAGE_SETTING, None, required=True),
    SettingSpec("ARCHIVE_CONTAINER", "entity-archive"),
    SettingSpec("JOBS_QUEUE", "language-jobs"),
    # Number settings carry their bounds: wide enough for any real deployment, narrow enough that
    # no arithmetic on them overflows. A job's results live 24 hours: a first delay or a sweep grace
    # longer than that could only let jobs expire unarchived.
    SettingSpec("POLL_INITIAL_DELAY_SECONDS", "5", minimum=0.001, maximum=_DAY_SECONDS),
    SettingSpec("POLL_MAX_DELAY_SECONDS", "300", minimum=0.001, maximum=_MAX_QUEUE_VISIBILITY_SECONDS),
    SettingSpec("SWEEP_SCHEDULE", "0 */5 * * * *"),
    SettingSpec("SWEEP_GRACE_SECONDS", "300", minimum=0, maximum=_DAY_SECONDS),
    # S tier: 1,000 a minute; a raised quota is far below this.
    SettingSpec("LANGUAGE_MAX_REQUESTS_PER_MINUTE", "600", minimum=1, maximum=100_000),
    # The queue that announces every archived job (DESIGN.md, "Archive events"); unset: no events.
    SettingSpec("EVENTS_QUEUE", None),
    # How long an event waits on EVENTS_QUEUE unread: with no consumer (or one that is down) the
    # queue must not keep every event for ever. At least a minute (a consumer polling every minute
    # still sees each), at most 30 days (a consumer down longer replays with 'cli announce').
    SettingSpec(EVENTS_TIME_TO_LIVE_SETTING, "604800", minimum=60, maximum=30 * 24 * 3600),
    # Telemetry to Azure Monitor (OpenTelemetry) when set; unset: no telemetry package is loaded.
    SettingSpec("APPLICATIONINSIGHTS_CONNECTION_STRING", None),
)
_DEFAULTS: Final = {spec.name: spec.default for spec in SETTINGS}
_SPECS: Final = {spec.name: spec for spec in SETTINGS}


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """Where storage is and how to authenticate: a connection string, or service URIs + identity."""

    connection_string: str | None = field(default=None, repr=False)
    blob_service_uri: str | None = None
    queue_service_uri: str | None = None
    credential: str | None = None
    client_id: str | None = None

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The validated configuration of the app (see DESIGN.md, "App settings")."""

    language_endpoint: str
    language_api_key: str | None = field(default=None, repr=False)
    language_api_version: str = "2024-11-01"
    storage: StorageSettings
    archive_container: str = "entity-archive"
    jobs_queue: str = "language-jobs"
    poll_initial_delay_seconds: float = 5.0
    poll_max_delay_seconds: float = 300.0
    sweep_schedule: str = "0 */5 * * * *"
    sweep_grace_seconds: float = 300.0
    language_max_requests_per_minute: int = 600
    events_queue: str | None = None
    events_time_to_live_seconds: int = 604800
    applicationinsights_connection_string: str | None = field(default=None, repr=False)

    @property
    def poison_queue(self) -> str:
        return f"{self.jobs_queue}-poison"

    @property
    def ledger_container(self) -> str:
        """The job ledger lives beside the archive, never inside it."""
        return f"{self.archive_container}-ledger"

    @property
    def endpoint_origin(self) -> Origin:
        """(scheme, host, port) that every Language URL must match before a credential is sent."""
        return origin(urlsplit(self.language_endpoint))


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and validate every setting; raise ``SettingsError`` on the first bad one."""

    def get(name: str) -> str | None:
        value = environ.get(name)
        if value is None or not value.strip():
            return _DEFAULTS.get(name)
        return value.strip()

    jobs_queue = _storage_name("JOBS_QUEUE", get("JOBS_QUEUE"), kind="queue", derived_suffix="-poison")
    initial = _seconds("POLL_INITIAL_DELAY_SECONDS", get("POLL_INITIAL_DELAY_SECONDS"))
    maximum = _seconds("POLL_MAX_DELAY_SECONDS", get("POLL_MAX_DELAY_SECONDS"))
    if maximum < initial:
        raise SettingsError(
            f"POLL_MAX_DELAY_SECONDS ({maximum:g}) is below POLL_INITIAL_DELAY_SECONDS ({initial:g}): "
            "set the cap at least as large as the first delay"
        )
    return Settings(
        language_endpoint=_endpoint(get("LANGUAGE_ENDPOINT")),
        language_api_key=get("LANGUAGE_API_KEY"),
        language_api_version=_api_version(get("LANGUAGE_API_VERSION")),
        storage=_storage(environ),
        archive_container=_storage_name(
            "ARCHIVE_CONTAINER", get("ARCHIVE_CONTAINER"), kind="container", derived_suffix="-ledger"
        ),
        jobs_queue=jobs_queue,
        poll_initial_delay_seconds=initial,
        poll_max_delay_seconds=maximum,
        sweep_schedule=_ncrontab("SWEEP_SCHEDULE", get("SWEEP_SCHEDULE")),
        sweep_grace_seconds=_seconds("SWEEP_GRACE_SECONDS", get("SWEEP_GRACE_SECONDS")),
        language_max_requests_per_minute=_whole(
            "LANGUAGE_MAX_REQUESTS_PER_MINUTE",
            get("LANGUAGE_MAX_REQUESTS_PER_MINUTE"),
            unit="requests a minute",
            example="600 (S tier) or 200 (F0/S0)",
        ),
        events_queue=_events_queue(get("EVENTS_QUEUE"), jobs_queue=jobs_queue),
        events_time_to_live_seconds=_whole(
            EVENTS_TIME_TO_LIVE_SETTING,
            get(EVENTS_TIME_TO_LIVE_SETTING),
            unit="seconds",
            example=str(_SPECS[EVENTS_TIME_TO_LIVE_SETTING].default),
        ),
        applicationinsights_connection_string=_telemetry_connection(
            get("APPLICATIONINSIGHTS_CONNECTION_STRING")
        ),
    )


def _endpoint(value: str | None) -> str:
    hint = "set it to https://<resource>.cognitiveservices.azure.com"
    if value is None:
        raise SettingsError(f"LANGUAGE_ENDPOINT is missing: {hint}")
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise SettingsError(f"LANGUAGE_ENDPOINT is not a valid URL: {hint}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise SettingsError(f"LANGUAGE_ENDPOINT is not an http(s) URL: {hint}")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise SettingsError(
            "LANGUAGE_ENDPOINT uses plain http for a non-loopback host; the key would travel in clear: "
            "use https"
        )
    if "@" in parts.netloc or parts.query or parts.fragment or parts.path.strip("/"):
        raise SettingsError(
            f"LANGUAGE_ENDPOINT must be the resource's base URL without path, query or credentials: {hint}"
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _telemetry_connection(value: str | None) -> str | None:
    """An Application Insights connection string names the resource by its instrumentation key."""
    if value is not None and "instrumentationkey=" not in value.lower():
        raise SettingsError(
            "APPLICATIONINSIGHTS_CONNECTION_STRING is not an Application Insights connection string "
            "(no InstrumentationKey=): copy it from the resource's overview, or leave it unset "
            "for no telemetry"
        )
    return value


_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")


def _api_version(value: str | None) -> str:
    assert value is not None  # has a default
    if not _API_VERSION.match(value):
        raise SettingsError(
            f"LANGUAGE_API_VERSION {value!r} is not an api-version: use a date such as 2024-11-01 "
            "(optionally with -preview)"
        )
    return value


# Container and queue names share one rule: 3-63 lowercase letters, digits and single hyphens.
_STORAGE_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")


def _storage_name(name: str, value: str | None, *, kind: str, derived_suffix: str) -> str:
    """A valid container/queue name that still fits once the app derives ``<value><derived_suffix>``."""
    assert value is not None
    longest = 63 - len(derived_suffix)
    if not _STORAGE_NAME.match(value) or len(value) > longest:
        raise SettingsError(
            f"{name} {value!r} is not a valid {kind} name: use 3-{longest} lowercase letters, digits and "
            "single hyphens"
        )
    return value


def _events_queue(value: str | None, *, jobs_queue: str) -> str | None:
    if value is None:
        return None
    name = _storage_name("EVENTS_QUEUE", value, kind="queue", derived_suffix="")
    if name in (jobs_queue, f"{jobs_queue}-poison"):
        # The poll function would read the events as job messages and poison every one.
        raise SettingsError(
            f"EVENTS_QUEUE {value!r} is the jobs queue or its poison queue: name a queue of its own, "
            "e.g. archive-events"
        )
    return name


def bounds(name: str) -> tuple[float, float]:
    """The (minimum, maximum) of a number setting, as its ``SettingSpec`` declares them."""
    spec = _SPECS[name]
    assert spec.minimum is not None, f"{name} is not a number setting"
    assert spec.maximum is not None, f"{name} is not a number setting"
    return spec.minimum, spec.maximum


def _seconds(name: str, value: str | None) -> float:
    assert value is not None
    low, high = bounds(name)
    try:
        seconds = float(value)
    except ValueError:
        raise SettingsError(f"{name} {value!r} is not a number of seconds: use e.g. 5 or 2.5") from None
    if not low <= seconds <= high:  # NaN and inf fail too
        raise SettingsError(f"{name} {value!r} is out of range: use a number from {low:g} to {high:g}")
    return seconds


def _whole(name: str, value: str | None, *, unit: str, example: str) -> int:
    """A whole number of ``unit`` within the bounds its ``SettingSpec`` declares."""
    assert value is not None
    low, high = (int(bound) for bound in bounds(name))  # 2592000, not 2.592e+06
    hint = f"use a whole number of {unit} from {low} to {high}, e.g. {example}"
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name} {value!r} is not a whole number of {unit}: {hint}") from None
    if not low <= number <= high:
        raise SettingsError(f"{name} {value!r} is out of range: {hint}")
    return number


# Per field: digits and * , - / ; month and day-of-week also take English names (JAN, MON, ...).
_NCRONTAB_NUMERIC: Final = re.compile(r"[0-9*,/-]+")
_NCRONTAB_NAMED: Final = re.compile(r"[0-9A-Za-z*,/-]+")
_NCRONTAB_FIELDS: Final = (_NCRONTAB_NUMERIC,) * 4 + (_NCRONTAB_NAMED,) * 2


def _ncrontab(name: str, value: str | None) -> str:
    assert value is not None
    fields = value.split()
    if len(fields) != 6 or not all(p.fullmatch(f) for p, f in zip(_NCRONTAB_FIELDS, fields, strict=True)):
        raise SettingsError(
            f"{name} {value!r} is not an NCRONTAB expression: use six fields "
            "'{second} {minute} {hour} {day} {month} {day-of-week}', e.g. '0 */5 * * * *'"
        )
    return value


def _storage(environ: Mapping[str, str]) -> StorageSettings:
    connection = (environ.get(STORAGE_SETTING) or "").strip()
    if connection:
        if connection != "UseDevelopmentStorage=true" and "=" not in connection:
            raise SettingsError(
                f"{STORAGE_SETTING} is not a storage connection string: use "
                "'DefaultEndpointsProtocol=https;AccountName=...' or UseDevelopmentStorage=true"
            )
        return StorageSettings(connection_string=connection)

    def part(suffix: str) -> str | None:
        value = (environ.get(f"{STORAGE_SETTING}__{suffix}") or "").strip()
        return value or None

    blob, queue, account = part("blobServiceUri"), part("queueServiceUri"), part("accountName")
    if account and not (blob and queue):
        blob = blob or f"https://{account}.blob.core.windows.net"
        queue = queue or f"https://{account}.queue.core.windows.net"
    if not (blob and queue):
        raise SettingsError(
            f"{STORAGE_SETTING} is missing: set a connection string, or "
            f"{STORAGE_SETTING}__blobServiceUri and {STORAGE_SETTING}__queueServiceUri for a managed identity"
        )
    for suffix, uri in (("blobServiceUri", blob), ("queueServiceUri", queue)):
        # No loopback exception here: the storage SDK refuses a token credential over plain http.
        if urlsplit(uri).scheme != "https":
            raise SettingsError(
                f"{STORAGE_SETTING}__{suffix} must be an https URL (tokens are only sent over https), "
                f"got {uri!r}; for Azurite use a connection string"
            )
    credential = part("credential")
    if credential is not None and credential.lower() != "managedidentity":
        raise SettingsError(
            f"{STORAGE_SETTING}__credential {credential!r} is not supported: "
            "use managedidentity or leave it unset"
        )
    return StorageSettings(
        blob_service_uri=blob.rstrip("/"),
        queue_service_uri=queue.rstrip("/"),
        credential=credential,
        client_id=part("clientId"),
    )
