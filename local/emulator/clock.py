"""The emulator's clock: wall time that tests can move forward, and the service's timestamp formats."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta


class EmulatorClock:
    """UTC time that follows the real clock plus an offset that only ever grows."""

    def __init__(self) -> None:
        self._origin = datetime.now(UTC)
        # Monotonic, so a host clock step cannot move jobs backwards through their lifecycle.
        self._origin_monotonic = time.monotonic()
        self._offset = timedelta(0)

    def now(self) -> datetime:
        elapsed = timedelta(seconds=time.monotonic() - self._origin_monotonic)
        return self._origin + elapsed + self._offset

    def advance(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError("the clock only moves forward: seconds must be finite and >= 0")
        self._offset += timedelta(seconds=seconds)


def format_job_time(moment: datetime) -> str:
    """Job-level timestamps: whole seconds, e.g. 2022-10-17T18:50:10Z (as in real responses)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_task_time(moment: datetime) -> str:
    """Task-level timestamps: seven fractional digits, e.g. 2022-07-13T23:01:52.5390094Z (real traffic)."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond:06d}0Z"
