"""Where the process is wired: the choice of telemetry recorder, made once, from the settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Final

from shared.runtime import configure_telemetry
from shared.settings import load_settings
from shared.telemetry import JOB_ID, LanguageResult, PollResult, Telemetry

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
SETTINGS: Final = {"LANGUAGE_ENDPOINT": "https://x.cognitiveservices.azure.com", "AzureWebJobsStorage": "x=y"}


def test_without_a_connection_string_telemetry_records_nothing() -> None:
    settings_ = load_settings(SETTINGS)
    telemetry = configure_telemetry(settings_)

    assert type(telemetry) is Telemetry
    with telemetry.span("anything", attributes={JOB_ID: "j"}) as span:
        span.set_attribute("k", 1)
        span.set_error("nothing happens")
    telemetry.polled(PollResult.ENDED)
    telemetry.job_archived(status="succeeded", lag_seconds=1.0)
    telemetry.message_poisoned(reason="unparseable: x")
    telemetry.ledger_swept(pending=1, overdue=0)
    telemetry.language_request(LanguageResult.OK, waited=0.0)
    telemetry.flush()


def test_without_a_connection_string_choosing_telemetry_imports_no_telemetry_module() -> None:
    """In a fresh interpreter (this one has OpenTelemetry loaded by other tests)."""
    script = (
        "import json, sys; from shared.runtime import configure_telemetry; "
        "from shared.settings import load_settings; "
        f"configure_telemetry(load_settings({SETTINGS!r})); "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.startswith(('opentelemetry', 'azure.monitor', 'shared.otel')))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True
    )

    assert json.loads(done.stdout) == []


def test_importing_the_function_app_leaves_the_sweep_for_its_first_run() -> None:
    """The cold start of a poll, the common one, does not load the timer's code (a fresh interpreter)."""
    script = (
        "import json, sys; import function_app; "
        "print(json.dumps(sorted(m for m in sys.modules if m in ('shared.sweep', 'shared.backlog'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True
    )

    assert json.loads(done.stdout) == []
