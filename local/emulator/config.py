"""Emulator configuration: credentials, job timing, paging, fault rates and the custom NER projects."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import TypeGuard

UNKNOWN_API_VERSION_STATUSES = (400, 404)

# The job-level timestamp has been sent under both names by the real service (CONTRACT.md, surprise 1).
JOB_TIMESTAMP_FIELDS = ("lastUpdatedDateTime", "lastUpdateDateTime")

Gazetteer = Mapping[str, tuple[str, ...]]
"""Category -> phrases that a custom NER deployment recognises."""
CustomProjects = Mapping[str, Mapping[str, Gazetteer]]
"""projectName -> deploymentName -> gazetteer."""


def _freeze(projects: dict[str, dict[str, dict[str, tuple[str, ...]]]]) -> CustomProjects:
    return MappingProxyType(
        {
            project: MappingProxyType(
                {
                    deployment: MappingProxyType(dict(gazetteer))
                    for deployment, gazetteer in deployments.items()
                }
            )
            for project, deployments in projects.items()
        }
    )


DEFAULT_CUSTOM_PROJECTS: CustomProjects = _freeze(
    {
        # The project of the spec examples (CONTRACT.md §6).
        "MyProject": {
            "MyDeployment": {
                "USRegion": (
                    "Pacific Northwest",
                    "East Coast",
                    "West Coast",
                    "Midwest",
                    "New England",
                    "Mid-Atlantic",
                    "Gulf Coast",
                    "Great Plains",
                    "Southwest",
                    "Deep South",
                ),
            },
        },
        # A demo contract-extraction project, with the project labels a real custom model would use.
        "ContractsNER": {
            "production": {
                "party_name": (
                    "Contoso Ltd.",
                    "Fabrikam Inc.",
                    "Northwind Traders",
                    "Tailspin Toys",
                    "Woodgrove Bank",
                    "Müller GmbH",
                ),
                "contract_date": (
                    "January 1, 2025",
                    "1 January 2025",
                    "March 15, 2025",
                    "15 March 2025",
                    "June 30, 2025",
                ),
                "amount": ("$250,000", "$1,000,000", "USD 50,000", "EUR 75,000"),
                "jurisdiction": (
                    "State of Washington",
                    "State of New York",
                    "State of Delaware",
                    "England and Wales",
                    "Canton of Zürich",
                ),
            },
        },
    }
)


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _require_seconds(name: str, value: object, *, positive: bool = False) -> None:
    if not _is_number(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


def _require_int(name: str, value: object, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _require_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")


@dataclass(frozen=True)
class Faults:
    """Probabilities of injected failures on GET job and cancel (never on submit or the admin API).

    One uniform draw per request picks at most one fault, so the rates must sum to at most 1.
    """

    rate_429: float = 0.0
    retry_after_seconds: int = 1
    rate_5xx: float = 0.0
    rate_reset: float = 0.0
    rate_slow: float = 0.0
    slow_seconds: float = 30.0
    rate_malformed: float = 0.0

    def __post_init__(self) -> None:
        rates = self.rates()
        for name, rate in rates.items():
            if not _is_number(rate) or not 0 <= rate <= 1:
                raise ValueError(f"{name} must be a number in [0, 1], got {rate!r}")
        if sum(rates.values()) > 1 + 1e-9:
            raise ValueError("fault rates must sum to at most 1")
        _require_int("retry_after_seconds", self.retry_after_seconds, minimum=0)
        _require_seconds("slow_seconds", self.slow_seconds)

    def rates(self) -> dict[str, float]:
        """The fault rates by field name, in the order a draw tests them."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name.startswith("rate_")}


@dataclass(frozen=True)
class RateLimit:
    """The per-minute limit (``local.emulator.ratelimit``); ``requests_per_minute`` None: unlimited."""

    requests_per_minute: int | None = None
    count_submissions: bool = False

    def __post_init__(self) -> None:
        limit = self.requests_per_minute
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise ValueError(f"requests_per_minute must be an integer >= 1 or null, got {limit!r}")
        if not isinstance(self.count_submissions, bool):
            raise ValueError("count_submissions must be a boolean")


@dataclass(frozen=True)
class Timing:
    """Lifecycle durations; a job keeps the timing in force when it was submitted."""

    not_started_seconds: float
    running_seconds: float

    def __post_init__(self) -> None:
        _require_seconds("not_started_seconds", self.not_started_seconds)
        _require_seconds("running_seconds", self.running_seconds)


@dataclass(frozen=True, kw_only=True)
class EmulatorConfig:
    """Everything that shapes one emulator instance; validated on construction."""

    api_key: str | None = "emulator-key"
    bearer_tokens: frozenset[str] = frozenset()
    not_started_seconds: float = 1.0
    running_seconds: float = 2.0
    page_size: int = 20
    expiry_seconds: float = 86400.0
    job_timestamp_field: str = "lastUpdatedDateTime"
    custom_projects: CustomProjects = field(default_factory=lambda: DEFAULT_CUSTOM_PROJECTS)
    faults: Faults = Faults()
    rate_limit: RateLimit = RateLimit()
    seed: int = 0
    #: How the gateway answers an api-version it does not serve: 400 (InvalidRequest, naming the
    #: supported versions) or 404 (its "Resource not found" for a route it does not know).
    unknown_api_version_status: int = 400

    def __post_init__(self) -> None:
        if self.api_key is not None:
            _require_text("api_key", self.api_key)
        if not isinstance(self.bearer_tokens, frozenset):
            raise ValueError("bearer_tokens must be a frozenset of strings")
        for token in self.bearer_tokens:
            _require_text("bearer token", token)
        if self.api_key is None and not self.bearer_tokens:
            raise ValueError("configure api_key or bearer_tokens, or no request could authenticate")
        Timing(self.not_started_seconds, self.running_seconds)
        _require_seconds("expiry_seconds", self.expiry_seconds, positive=True)
        _require_int("page_size", self.page_size, minimum=1)
        if self.job_timestamp_field not in JOB_TIMESTAMP_FIELDS:
            raise ValueError(f"job_timestamp_field must be one of {JOB_TIMESTAMP_FIELDS}")
        _validate_projects(self.custom_projects)
        if not isinstance(self.faults, Faults):
            raise ValueError("faults must be a Faults instance")
        if not isinstance(self.rate_limit, RateLimit):
            raise ValueError("rate_limit must be a RateLimit instance")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        require_unknown_api_version_status(self.unknown_api_version_status)


def require_unknown_api_version_status(value: object) -> None:
    if value not in UNKNOWN_API_VERSION_STATUSES or isinstance(value, bool):
        raise ValueError(f"unknown_api_version_status must be 400 or 404, got {value!r}")


def _validate_projects(projects: CustomProjects) -> None:
    if not isinstance(projects, Mapping):
        raise ValueError("custom_projects must be a mapping")
    for project, deployments in projects.items():
        _require_text("custom project name", project)
        if not isinstance(deployments, Mapping) or not deployments:
            raise ValueError(f"custom project {project!r} needs at least one deployment")
        for deployment, gazetteer in deployments.items():
            _require_text(f"deployment name of {project!r}", deployment)
            if not isinstance(gazetteer, Mapping):
                raise ValueError(f"{project}/{deployment} gazetteer must map categories to phrases")
            for category, phrases in gazetteer.items():
                _require_text(f"category of {project}/{deployment}", category)
                if not isinstance(phrases, tuple) or not phrases:
                    raise ValueError(f"{project}/{deployment}/{category} needs a non-empty tuple of phrases")
                for phrase in phrases:
                    _require_text(f"phrase of {project}/{deployment}/{category}", phrase)
