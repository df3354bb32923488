"""The service's per-minute rate limit: a sliding 60-s window of accepted requests.

Over the limit a request is refused with 429, ``Retry-After`` in whole seconds (until the window
admits again) and the APIM error body (CONTRACT.md section 4). Whether a refused request counts
against the real window is undocumented (section 4a); here it does NOT: a client that keeps
retrying is refused until the window drains, never locked out for longer. The window runs on real
(monotonic) time, not on the emulator's advanceable lifecycle clock.

Counted: GET job (every page) and cancel, the app's requests. Job submissions are counted only
with ``count_submissions`` (the real service counts them too; a test harness usually does not
want its own setup refused).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class SlidingWindow:
    """Accepted and refused request times; ``admit`` decides and records one request."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.accepted: deque[float] = deque()  # within the last window
        self.refused: deque[float] = deque()
        self.total_accepted = 0
        self.total_refused = 0
        self.max_accepted_in_window = 0
        self.max_requests_in_window = 0  # accepted and refused: what clients sent

    def admit(self, limit: int | None) -> int | None:
        """``None`` when admitted, else the whole seconds until the window would admit it."""
        now = self._clock()
        self._expire(now)
        self.max_requests_in_window = max(
            self.max_requests_in_window, len(self.accepted) + len(self.refused) + 1
        )
        if limit is not None and len(self.accepted) >= limit:
            self.refused.append(now)
            self.total_refused += 1
            # The request that would be admitted next is the one after the (len - limit)-th oldest
            # ages out of the window.
            frees_at = self.accepted[len(self.accepted) - limit] + WINDOW_SECONDS
            return max(1, math.ceil(frees_at - now))
        self.accepted.append(now)
        self.total_accepted += 1
        self.max_accepted_in_window = max(self.max_accepted_in_window, len(self.accepted))
        return None

    def report(self) -> dict[str, int]:
        self._expire(self._clock())
        return {
            "accepted": self.total_accepted,
            "refused": self.total_refused,
            "acceptedInWindow": len(self.accepted),
            "refusedInWindow": len(self.refused),
            "maxAcceptedInWindow": self.max_accepted_in_window,
            "maxRequestsInWindow": self.max_requests_in_window,
        }

    def _expire(self, now: float) -> None:
        for times in (self.accepted, self.refused):
            while times and times[0] <= now - WINDOW_SECONDS:
                times.popleft()
