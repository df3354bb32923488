"""Command line: serve the emulator until SIGTERM/SIGINT, announcing the URL on stdout."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from local.emulator.config import JOB_TIMESTAMP_FIELDS, EmulatorConfig, RateLimit
from local.emulator.server import serve

READY_PREFIX = "EMULATOR_READY"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(prog="python -m local.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=defaults.api_key)
    parser.add_argument("--not-started-seconds", type=float, default=defaults.not_started_seconds)
    parser.add_argument("--running-seconds", type=float, default=defaults.running_seconds)
    parser.add_argument("--page-size", type=int, default=defaults.page_size)
    parser.add_argument("--expiry-seconds", type=float, default=defaults.expiry_seconds)
    parser.add_argument(
        "--job-timestamp-field", choices=JOB_TIMESTAMP_FIELDS, default=defaults.job_timestamp_field
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=None,
        metavar="PER_MINUTE",
        help="429 for GET job and cancel beyond this many a minute (sliding window); default unlimited",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    return parser.parse_args(argv)


async def run(config: EmulatorConfig, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serve(config, host=host, port=port) as server:
        # The one line on stdout: whoever started us waits for it to learn the URL.
        print(f"{READY_PREFIX} {server.base_url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config = EmulatorConfig(
            api_key=args.api_key,
            not_started_seconds=args.not_started_seconds,
            running_seconds=args.running_seconds,
            page_size=args.page_size,
            expiry_seconds=args.expiry_seconds,
            job_timestamp_field=args.job_timestamp_field,
            seed=args.seed,
            rate_limit=RateLimit(requests_per_minute=args.rate_limit),
        )
    except ValueError as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        return 2
    asyncio.run(run(config, args.host, args.port))
    return 0
