"""Client for the Language service's analyze-text jobs: GET a job (every page) and cancel it.

Every URL it calls is built from ``LANGUAGE_ENDPOINT`` or checked against it (scheme and host):
the credential is never sent anywhere else. Transient faults get a few quick retries in place,
honouring ``Retry-After`` when it is short; anything longer is handed back to the caller, which
reschedules through the queue instead of sleeping. Every call takes ``give_up_at`` (event-loop
time): no wait for the request budget and no in-place retry goes past it (``BudgetBusy`` from the
budget, or the last failure).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import aiohttp

from .auth import LanguageAuth, LanguageAuthError
from .jobs import MAX_ANSWER_BYTES, JobPage, MalformedJob, parse_answer
from .jsontext import well_formed
from .policy import parse_retry_after
from .request_budget import BudgetBusy, Permits, Unlimited
from .routecheck import RouteCheck, error_of, not_found_body
from .telemetry import JOB_ID, LanguageResult, Telemetry, job_attributes
from .urls import origin

__all__ = [
    "AccessDenied",
    "InPlaceRetry",
    "JobNotFound",
    "LanguageClient",
    "LanguageError",
    "RequestRejected",
    "TransientFailure",
    "UntrustedLink",
    "UnusableResponse",
]

_log = logging.getLogger("archiver.language")
_TRANSIENT_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
_MAX_PAGES: Final = 1000  # a job holds at most 25 documents; this only stops a nextLink loop
_JOBS_PATH: Final = "/language/analyze-text/jobs/"
#: A 429 asking for a second or less is the per-second limit (S allows 1,000 requests a second as
#: well as 1,000 a minute): a momentary refusal that this request's own in-place retry honours.
#: A longer one means the per-minute quota is spent for a while: the whole app pauses and slows.
_PER_SECOND_RETRY_AFTER: Final = 1.0
#: Of an error body that is not an ErrorResponse, only this much is decoded for the summary.
_MAX_ERROR_TEXT: Final = 4096


class LanguageError(Exception):
    """A call to the Language service did not give a usable answer."""

    #: Seconds the service asked us to wait (``Retry-After``), when it said so.
    retry_after: float | None = None


class JobNotFound(LanguageError):
    """404: the job never existed here, or was purged after its expiry; or, when ``unknown_route``,
    the gateway does not know the route at all (``shared.routecheck``): a configuration fault."""

    def __init__(self, message: str, *, unknown_route: bool = False) -> None:
        super().__init__(message)
        self.unknown_route = unknown_route


class AccessDenied(LanguageError):
    """401/403: a configuration fault (key, identity, role, quota); the job is kept."""

    def __init__(self, message: str, *, status: int, retry_after: float | None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class RequestRejected(LanguageError):
    """Another 4xx: the request itself is wrong for this service (api-version, endpoint)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class TransientFailure(LanguageError):
    """429/5xx/timeouts/resets that outlasted the in-place retries."""

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnusableResponse(LanguageError):
    """A 200 whose body never parsed into a job state."""


class UntrustedLink(LanguageError):
    """A ``nextLink`` off the configured endpoint or job: it is not followed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InPlaceRetry:
    """Quick retries inside one invocation; longer waits go through the queue instead."""

    attempts: int = 3
    base_delay: float = 0.5
    max_wait: float = 5.0  # a Retry-After above this is not slept on

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_delay < 0 or self.max_wait < 0:
            raise ValueError("InPlaceRetry needs attempts >= 1 and non-negative delays")


_DEFAULT_TIMEOUT: Final = aiohttp.ClientTimeout(total=30, sock_connect=10, sock_read=25)


class LanguageClient:
    """GET and cancel analyze-text jobs on one endpoint, over the process's shared session."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        endpoint: str,
        api_version: str,
        auth: LanguageAuth,
        timeout: aiohttp.ClientTimeout | None = None,
        retry: InPlaceRetry = InPlaceRetry(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        telemetry: Telemetry = Telemetry(),  # noqa: B008 - stateless, records nothing
        budget: Permits | None = None,
    ) -> None:
        self._session = session
        self._endpoint = endpoint.rstrip("/")
        parts = urlsplit(self._endpoint)
        self._origin = origin(parts)
        self._api_version = api_version
        self._auth = auth
        self._timeout = timeout or _DEFAULT_TIMEOUT
        self._retry = retry
        self._sleep = sleep
        self._rand = rand
        self._telemetry = telemetry
        self._budget: Permits = budget or Unlimited()
        self._route = RouteCheck()

    def job_url(self, job_id: str) -> str:
        return f"{self._endpoint}{_JOBS_PATH}{job_id}?{urlencode({'api-version': self._api_version})}"

    async def get_job(
        self, job_id: str, *, deadline: float | None = None, give_up_at: float | None = None
    ) -> JobPage:
        """The first page of a job's state.

        ``deadline`` (epoch seconds, the job's expiry margin) ranks this request among those
        waiting for the request budget: nearest first."""
        return await self._get_page(self.job_url(job_id), job_id, deadline, give_up_at)

    async def get_remaining_pages(
        self, first: JobPage, *, deadline: float | None = None, give_up_at: float | None = None
    ) -> list[JobPage]:
        """Every page after ``first``, following ``nextLink`` only on the configured endpoint."""
        pages: list[JobPage] = []
        seen: set[str] = set()
        link, current = first.next_link, self.job_url(first.job_id)
        while link is not None:
            url = current = self._pinned(link, first.job_id, base=current)
            if url in seen or len(pages) >= _MAX_PAGES:
                raise UnusableResponse("nextLink repeats itself; the pages never end")
            seen.add(url)
            page = await self._get_page(url, first.job_id, deadline, give_up_at)
            pages.append(page)
            link = page.next_link
        return pages

    async def cancel(
        self, job_id: str, *, deadline: float | None = None, give_up_at: float | None = None
    ) -> bool:
        """Ask the service to cancel (best effort); ``True`` when it accepted."""
        url = f"{self._endpoint}{_JOBS_PATH}{job_id}:cancel?{urlencode({'api-version': self._api_version})}"
        try:
            status, _ = await self._send("POST", url, job_id, deadline, give_up_at)
        except (LanguageError, BudgetBusy) as exc:
            _log.warning("cancel of job %s failed: %s", job_id, exc, extra=job_attributes(job_id))
            return False
        return status == 202

    def _pinned(self, link: str, job_id: str, *, base: str) -> str:
        """The absolute URL of ``link`` (relative ones resolve against the page it came from, as
        URLs do) if it stays on our endpoint and job, else ``UntrustedLink``."""
        try:
            parts = urlsplit(urljoin(base, link))
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise UntrustedLink("nextLink is not a valid URL") from None
        if origin(parts) != self._origin or "@" in parts.netloc:
            raise UntrustedLink(
                f"nextLink points to {parts.scheme}://{parts.hostname}, not to LANGUAGE_ENDPOINT"
            )
        if parts.path.rstrip("/") != f"{_JOBS_PATH}{job_id}":
            raise UntrustedLink("nextLink points to another resource than this job")
        query = parse_qsl(parts.query, keep_blank_values=True)
        if not any(name == "api-version" for name, _ in query):
            query.append(("api-version", self._api_version))
        return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))

    async def _get_page(
        self, url: str, job_id: str, deadline: float | None, give_up_at: float | None
    ) -> JobPage:
        last: MalformedJob | None = None
        for attempt in range(self._retry.attempts):
            _, body = await self._send("GET", url, job_id, deadline, give_up_at)
            try:
                if body is None:
                    raise MalformedJob(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
                return parse_answer(body, job_id=job_id)
            except MalformedJob as exc:
                last = exc
                pause = self._backoff(attempt)
                if attempt + 1 == self._retry.attempts or _past(give_up_at, pause):
                    break
                await self._sleep(pause)
        raise UnusableResponse(f"job {job_id}: {last}")

    async def _send(
        self, method: str, url: str, job_id: str, deadline: float | None, give_up_at: float | None
    ) -> tuple[int, bytes | None]:
        """One call with in-place retries of transient faults; returns (status, body) of a 2xx,
        the body ``None`` when it is larger than ``MAX_ANSWER_BYTES`` (never read further).

        Every attempt first waits for a permit of the request budget (``BudgetBusy`` past
        ``give_up_at``); no retry sleeps past ``give_up_at`` either. Each attempt is a client span
        (a dependency in Application Insights) with the URL's path only: the query is the
        service's, and nothing of the request's headers is recorded."""
        retry_after: float | None = None
        detail = ""
        for attempt in range(self._retry.attempts):
            waited = await self._budget.acquire(deadline=deadline, give_up_at=give_up_at)
            try:
                credentials = await self._auth.headers()
            except LanguageAuthError as exc:
                # No usable token is a configuration fault like a 401: keep the job, retry later.
                raise AccessDenied(str(exc), status=401, retry_after=None) from exc
            headers = {"Accept": "application/json", **credentials}
            status: int | None = None  # None: no answer (timeout, reset)
            body: bytes | None = None
            with self._telemetry.span(
                f"Language {method}", kind="client", attributes=self._span_attributes(method, url, job_id)
            ) as span:
                try:
                    async with self._session.request(
                        method, url, headers=headers, timeout=self._timeout, allow_redirects=False
                    ) as response:
                        body = await _read_bounded(response)
                        status = response.status
                        retry_after = parse_retry_after(
                            response.headers.get("Retry-After"), now=datetime.now(UTC)
                        )
                except (aiohttp.ClientError, TimeoutError) as exc:
                    detail = _redact(
                        f"{type(exc).__name__}{': ' + str(exc) if str(exc) else ''}", credentials
                    )
                    retry_after = None
                    span.set_error(detail)
                else:
                    span.set_attribute("http.response.status_code", status)
                    if status >= 400:
                        span.set_error(f"HTTP {status}")
            unknown_route = False
            if status == 404:
                unknown_route = self._route.unknown_route(job_id, not_found_body(body or b""))
            elif status is not None and 200 <= status < 300 and method == "GET":
                self._route.answered()
            self._telemetry.language_request(
                LanguageResult.UNKNOWN_ROUTE if unknown_route else _result_of(status), waited=waited
            )
            if status == 429 and (retry_after is None or retry_after > _PER_SECOND_RETRY_AFTER):
                # The per-minute quota is spent: everyone slows down, not only this request. The
                # budget pauses every instance for Retry-After and halves the app's rate (an
                # in-place retry below then waits for its permit after the pause).
                await self._budget.throttled(retry_after)
            if status is not None:
                if 200 <= status < 300:
                    return status, body
                detail = f"HTTP {status} {_error_summary(body, credentials)}"
                if status == 404:
                    raise JobNotFound(detail, unknown_route=unknown_route)
                if status in (401, 403):
                    raise AccessDenied(detail, status=status, retry_after=retry_after)
                if status not in _TRANSIENT_STATUSES:
                    raise RequestRejected(detail, status=status)
            pause = max(retry_after or 0.0, self._backoff(attempt))
            if (
                attempt + 1 == self._retry.attempts
                or (retry_after or 0) > self._retry.max_wait
                or _past(give_up_at, pause)
            ):
                break
            await self._sleep(pause)
        raise TransientFailure(f"{method} job: {detail}", retry_after=retry_after)

    def _span_attributes(self, method: str, url: str, job_id: str) -> dict[str, str | int]:
        parts = urlsplit(url)
        return {
            "http.request.method": method,
            "server.address": parts.hostname or "",
            "server.port": parts.port or (443 if parts.scheme == "https" else 80),
            # Without the query: only what LANGUAGE_ENDPOINT and the job id already say.
            "url.full": urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
            JOB_ID: job_id,
        }

    def _backoff(self, attempt: int) -> float:
        return self._retry.base_delay * (2.0**attempt) * (0.5 + self._rand() / 2)


def _past(give_up_at: float | None, pause: float) -> bool:
    """Whether sleeping ``pause`` seconds would end after ``give_up_at`` (event-loop time)."""
    return give_up_at is not None and asyncio.get_running_loop().time() + pause > give_up_at


def _result_of(status: int | None) -> LanguageResult:
    if status == 429:
        return LanguageResult.THROTTLED
    # A 404 is an answer too: the job is gone.
    if status is not None and (200 <= status < 300 or status == 404):
        return LanguageResult.OK
    return LanguageResult.ERROR


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes | None:
    """The body, or ``None`` as soon as it proves larger than ``MAX_ANSWER_BYTES``: a hostile or
    broken answer never costs more memory than that (the rest is not read; the connection closes)."""
    if (response.content_length or 0) > MAX_ANSWER_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_ANSWER_BYTES:
        chunk = await response.content.read(MAX_ANSWER_BYTES + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    return None


def _error_summary(body: bytes | None, credentials: Mapping[str, str]) -> str:
    """``code: message`` of an ErrorResponse, cut short; never headers (they may carry keys)."""
    if body is None:
        return f"(a body larger than {MAX_ANSWER_BYTES} bytes)"
    error = error_of(body)
    if error is not None:
        text = f"{error.get('code')}: {error.get('message')}"
    else:
        text = body[:_MAX_ERROR_TEXT].decode("utf-8", "replace")
    # Redacted before it is cut, so that no fragment of a credential survives the cut; the
    # service's text may carry lone surrogates, and it ends up in a manifest's errors.
    summary: str = well_formed(_redact(text, credentials)[:300])
    return summary


def _redact(text: str, credentials: Mapping[str, str]) -> str:
    """``text`` without the credentials just sent: a gateway or proxy may echo request headers."""
    for value in credentials.values():
        # The whole value, then its last word alone ("Bearer <token>" -> "<token>").
        for secret in (value, value.rsplit(" ", 1)[-1]):
            if secret.strip():
                text = text.replace(secret, "<redacted>")
    return text
