"""A contract-faithful emulator of Azure AI Language analyze-text jobs (dev and tests only).
The rest of ``local/`` and the tests may import it; it imports nothing of the app (``shared/``).

A real aiohttp HTTP server implementing the REST contract in ../shared/language-api/CONTRACT.md
(beside the checkout) for EntityRecognition and CustomEntityRecognition. It deliberately shares no code
with the app's `shared` package, so a parsing bug in the client cannot be mirrored (and hidden) here.

Language API (auth: `Ocp-Apim-Subscription-Key` or `Authorization: Bearer <token>`):
  POST /language/analyze-text/jobs?api-version=V                 -> 202 + operation-location
  GET  /language/analyze-text/jobs/{jobId}?api-version=V[&top&skip&showStats]
  POST /language/analyze-text/jobs/{jobId}:cancel?api-version=V  -> 202 + operation-location

Lifecycle, on the emulator clock: notStarted for `not_started_seconds`, then running for
`running_seconds` while tasks finish one by one, then succeeded / partiallyCompleted / failed.
A cancel moves the job to cancelling, then cancelled 0.5 s later. After `expirationDateTime` the job is
purged (404). Job-level timestamps have whole seconds, task-level ones seven fractional digits, as in
real traffic; all are UTC with "Z".

Offsets: entities are found in code points and reported in the task's `stringIndexType` units:
UnicodeCodePoint (Python `str` indices), Utf16CodeUnit, or TextElements_v8 (the default; grapheme
clusters approximated by merging combining marks, ZWJ sequences, variation selectors, emoji modifiers,
CRLF and flag pairs into their base character).

Admin API (no auth, no faults, not counted in the stats; JSON bodies):
  PUT  /_emulator/faults   Faults fields, camelCase (rate429, retryAfterSeconds, rate5xx, rateReset,
                           rateSlow, slowSeconds, rateMalformed) or the snake_case field names.
                           Replaces all fault settings: omitted fields take their defaults.
  PUT  /_emulator/timing   {"notStartedSeconds": s, "runningSeconds": s}; either may be omitted.
                           Applies to jobs submitted afterwards.
  POST /_emulator/clock    {"advanceSeconds": s} -> {"now": timestamp}; moves lifecycle, timestamps
                           and expiry forward.
  POST /_emulator/jobs/{jobId}/overrides  any of {"nextLinkBase": "https://host" | null,
                           "malformedPages": bool, "cannedPages": ["<body>", ...] | null,
                           "status": "<any status>" | null, "purge": true}. cannedPages are served
                           verbatim with 200, the one the GET's `cannedPage` query parameter names
                           (default 0; past the end, the last one): a misbehaving service's answers.
                           A forced status freezes the tasks at that moment ("failed" fails the
                           unfinished ones, "cancelled" cancels them); any other string is reported verbatim.
  PUT  /_emulator/gateway  {"unknownApiVersionStatus": 400 | 404}: an unsupported api-version gets
                           400 InvalidRequest (the default) or the gateway's 404 for an unknown route,
                           {"error": {"code": "404", "message": "Resource not found"}}, as any
                           unknown path does.
  GET  /_emulator/stats    {"requests": [{"method", "route", "status", "count"}],
                           "byJob": {jobId: {"POST", "GET", "CANCEL"}}}; status null = connection reset.
  GET  /_emulator/jobs     {"jobs": [{"jobId", "status", "createdDateTime", "expirationDateTime"}]}
  PUT  /_emulator/rate-limit  {"requestsPerMinute": n | null, "countSubmissions": bool}: the service's
                           per-minute limit from now on (null: unlimited; see local.emulator.ratelimit:
                           sliding 60-s window, refused requests not counted, 429 + Retry-After).
  GET  /_emulator/rate-limit  the limit and its counts: {"requestsPerMinute", "countSubmissions",
                           "accepted", "refused", "acceptedInWindow", "refusedInWindow",
                           "maxAcceptedInWindow", "maxRequestsInWindow"} (max: over every sliding
                           window so far; requests: accepted and refused alike)
In process, `serve(...).state` exposes the same data (`jobs`, `requests`, `by_job`, `stats()`,
`job_summaries()`, `clock`, `faults`, `timing`).
"""

from local.emulator.config import EmulatorConfig, Faults, RateLimit
from local.emulator.server import create_app, serve

__all__ = ["EmulatorConfig", "Faults", "RateLimit", "create_app", "serve"]
