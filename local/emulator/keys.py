"""Names shared by the HTTP layers: the state's app key, per-request keys and the Language route names."""

from __future__ import annotations

from aiohttp import web

from local.emulator.state import EmulatorState

STATE_KEY = web.AppKey("emulator_state", EmulatorState)
API_VERSION_KEY = web.RequestKey("api_version", str)
JOB_ID_KEY = web.RequestKey("job_id", str)
"""The job a request concerns, for the per-job counts (submit learns it only in the handler)."""
RESET_KEY = web.RequestKey("connection_reset", bool)

SUBMIT, GET_JOB, CANCEL_JOB = "submit", "get_job", "cancel_job"
LANGUAGE_ROUTES = frozenset({SUBMIT, GET_JOB, CANCEL_JOB})
OPERATIONS = {SUBMIT: "POST", GET_JOB: "GET", CANCEL_JOB: "CANCEL"}
"""Route name -> operation name in the per-job counts."""
JOBS_PATH = "/language/analyze-text/jobs"
