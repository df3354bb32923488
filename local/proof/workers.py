"""The chaos run's worker processes (``local.proof.chaos_worker``): started, SIGKILLed mid-invocation,
restarted, and the choice of which one to kill.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Final

__all__ = ["WorkerProcess", "pick_victim", "restart_after"]

_STATUS_WAIT_SECONDS: Final = 2.0  # how long a kill waits for a worker with an invocation in flight
_STOP_SECONDS: Final = 20.0


class WorkerProcess:
    """A ``local.proof.chaos_worker`` process that can be killed and started again."""

    def __init__(
        self, *, name: str, workdir: Path, environ: Mapping[str, str], timer: bool, lease: int
    ) -> None:
        self.name = name
        self._status = workdir / f"{name}.status.json"
        self._log_path = workdir / f"{name}.log"
        self._environ = dict(environ)
        self._timer = timer
        self._lease = lease
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running: a second process would be orphaned")
        self._status.unlink(missing_ok=True)
        self._log = self._log or self._log_path.open("ab")  # closed by stop()
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "local.proof.chaos_worker", "--name", self.name, "--status", str(self._status)),
            *("--lease-seconds", str(self._lease), *(["--timer"] if self._timer else [])),
            env={**os.environ, **self._environ},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )

    def status(self) -> dict[str, int]:
        """What the running process last reported (see ``local.proof.chaos_worker``); empty when unknown."""
        if self._process is None:
            return {}
        try:
            status: dict[str, int] = json.loads(self._status.read_text())
        except (OSError, ValueError):
            return {}
        return status if status.get("pid") == self._process.pid else {}

    def in_flight(self) -> int:
        """Invocations running now, as the worker last reported them (0 when unknown)."""
        return self.status().get("inFlight", 0)

    async def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGKILL)
            await self._process.wait()

    async def stop(self) -> None:
        """SIGTERM (graceful: in-flight work finishes), SIGKILL after a while; closes the log."""
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._process.wait(), _STOP_SECONDS)
            except TimeoutError:
                await self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


async def pick_victim(
    workers: Sequence[WorkerProcess], rng: random.Random
) -> tuple[WorkerProcess | None, bool]:
    """A running worker with an invocation in flight, if one shows up soon; else any running one."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + _STATUS_WAIT_SECONDS
    while loop.time() < give_up:
        busy = [worker for worker in workers if worker.alive and worker.in_flight() > 0]
        if busy:
            return rng.choice(busy), True
        await asyncio.sleep(0.01)
    alive = [worker for worker in workers if worker.alive]
    return (rng.choice(alive) if alive else None), False


async def restart_after(worker: WorkerProcess, after: float) -> None:
    await asyncio.sleep(after)
    await worker.start()
