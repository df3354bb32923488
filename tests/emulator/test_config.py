"""EmulatorConfig and Faults validate on construction."""

from __future__ import annotations

from typing import Any

import pytest

from local.emulator import EmulatorConfig, Faults


def test_defaults_match_the_service() -> None:
    config = EmulatorConfig()

    assert (config.page_size, config.expiry_seconds, config.job_timestamp_field) == (
        20,
        86400.0,
        "lastUpdatedDateTime",
    )
    assert config.custom_projects["MyProject"]["MyDeployment"]["USRegion"][:2] == (
        "Pacific Northwest",
        "East Coast",
    )


def test_config_is_frozen_and_keyword_only() -> None:
    config = EmulatorConfig()

    with pytest.raises(AttributeError):
        config.page_size = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        EmulatorConfig("key")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "overrides",
    [
        {"api_key": ""},
        {"api_key": None},
        {"bearer_tokens": {"t"}},
        {"not_started_seconds": -1},
        {"running_seconds": float("nan")},
        {"page_size": 0},
        {"expiry_seconds": 0},
        {"job_timestamp_field": "updated"},
        {"custom_projects": {"P": {}}},
        {"custom_projects": {"P": {"D": {"cat": ["phrase"]}}}},
        {"faults": None},
    ],
)
def test_invalid_config_is_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(**overrides)


@pytest.mark.parametrize(
    "fields",
    [
        {"rate_429": 1.5},
        {"rate_5xx": -0.1},
        {"rate_reset": 0.5, "rate_slow": 0.6},
        {"retry_after_seconds": 1.5},
        {"slow_seconds": -1},
    ],
)
def test_invalid_faults_are_rejected(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Faults(**fields)


def test_bearer_only_config_is_valid() -> None:
    assert EmulatorConfig(api_key=None, bearer_tokens=frozenset({"token"})).api_key is None
