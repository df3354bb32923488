"""One Functions worker process: the real ``function_app`` through the local queue runner.

``python -m local.host.worker --name w1 --status FILE [--timer] [--lease-seconds 10]`` reads the
app settings from the environment like the Functions host, serves the jobs queue (and the sweep
timer with ``--timer``) until SIGTERM, or until SIGKILL when a chaos run kills it. Every
``_STATUS_SECONDS`` it replaces FILE with ``{"inFlight": n, "invoked": n, "pid": n, ...}``, so the
run can time its kills while an invocation is in flight (and the throttle bench read the longest
invocation).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import signal
import sys
from pathlib import Path
from typing import Final

import function_app
from local.host.runner import QueueRunner
from shared.runtime import close_process_runtime

_STATUS_SECONDS: Final = 0.05
# A worker serves until told to stop; this bounds a forgotten one.
_MAX_SECONDS: Final = 3600.0


async def serve(*, name: str, status: Path, timer: bool, lease_seconds: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    runner = QueueRunner(
        app=function_app.app,
        connection_string=os.environ["AzureWebJobsStorage"],  # noqa: SIM112 - the host's own name
        environ=os.environ,
        timer=timer,
        name=name,
        lease_seconds=lease_seconds,
    )

    parent = os.getppid()

    async def report() -> None:
        temporary = status.with_suffix(".tmp")
        while True:
            if os.getppid() != parent:
                stop.set()  # the run that started us is gone: never outlive it
            body = {
                "inFlight": runner.in_flight,
                "invoked": runner.stats.invoked,
                "succeeded": runner.stats.succeeded,
                "longestInvocationMs": round(runner.stats.longest * 1000),
                "pid": os.getpid(),
                "rssKiB": _rss_kib(),
                "peakRssKiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,  # KiB on Linux
            }
            await asyncio.to_thread(temporary.write_text, json.dumps(body))
            await asyncio.to_thread(temporary.replace, status)  # atomic: never half a file
            await asyncio.sleep(_STATUS_SECONDS)

    reporting = asyncio.create_task(report())
    try:
        async with runner:
            await runner.run_until(stop.is_set, timeout=_MAX_SECONDS)
    finally:
        reporting.cancel()
        await close_process_runtime()


def _rss_kib() -> int:
    """Resident memory now (Linux: the second field of /proc/self/statm, in pages)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def main() -> int:
    parser = argparse.ArgumentParser(description="A worker process: function_app through the queue runner.")
    parser.add_argument("--name", required=True)
    parser.add_argument("--status", type=Path, required=True, help="file to keep the in-flight count in")
    parser.add_argument("--timer", action="store_true", help="run the sweep timer too")
    parser.add_argument("--lease-seconds", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING, format=f"%(asctime)s {args.name} %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(name=args.name, status=args.status, timer=args.timer, lease_seconds=args.lease_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
