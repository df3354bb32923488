"""``make up``: a local playground that stays up until Ctrl-C.

Starts Azurite (storage, in memory), the Language emulator and the real ``function_app`` under the
local host (the jobs queue trigger and the sweep timer), writes the settings as an env file and prints
it, then serves until SIGINT or SIGTERM (or ``--timeout``), and stops everything it started. With the
env file, in another terminal::

    .venv/bin/python -m local.upstream --env-file .playground/env --jobs 5
    .venv/bin/python -m cli status --env-file .playground/env JOB_ID
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import function_app
from local.emulator import EmulatorConfig, serve
from local.host.azurite import Azurite
from local.host.runner import QueueRunner
from shared.runtime import close_process_runtime

DEFAULT_DIR: Final = Path(".playground")
#: A playground serves until told to stop; this bounds a forgotten one (seconds).
DEFAULT_TIMEOUT: Final = 12 * 3600.0
READY: Final = "playground: ready"


def playground_settings(*, azurite: Azurite, emulator_url: str, key: str) -> dict[str, str]:
    """The app's settings against the local services: quick polls, a sweep every 30 s, events on."""
    return {
        "LANGUAGE_ENDPOINT": emulator_url,
        "LANGUAGE_API_KEY": key,
        "LANGUAGE_API_VERSION": "2024-11-01",
        "AzureWebJobsStorage": azurite.connection_string,
        "ARCHIVE_CONTAINER": "entity-archive",
        "JOBS_QUEUE": "language-jobs",
        "EVENTS_QUEUE": "archive-events",
        "POLL_INITIAL_DELAY_SECONDS": "1",
        "POLL_MAX_DELAY_SECONDS": "10",
        "SWEEP_SCHEDULE": "*/30 * * * * *",
        "SWEEP_GRACE_SECONDS": "30",
    }


def env_file_text(settings: Mapping[str, str]) -> str:
    """``KEY="VALUE"`` lines, as ``azd env get-values`` prints them (``--env-file`` reads both)."""
    lines = [
        "# make up: the playground's settings, for --env-file of python -m cli and python -m local.upstream"
    ]
    for name, value in settings.items():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{name}="{escaped}"')
    return "\n".join(lines) + "\n"


def write_env_file(directory: Path, settings: Mapping[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    env_file = directory / "env"
    env_file.touch(mode=0o600)  # it holds the emulator's key
    env_file.write_text(env_file_text(settings), encoding="utf-8")
    return env_file


async def run(*, directory: Path, timeout: float) -> None:  # noqa: ASYNC109 - a bound, not a cancel scope
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print("playground: starting Azurite (storage) and the Language emulator ...", flush=True)
    async with Azurite.start() as azurite:
        key = secrets.token_hex(16)
        config = EmulatorConfig(api_key=key, not_started_seconds=2.0, running_seconds=5.0)
        async with serve(config) as emulator:
            settings = playground_settings(azurite=azurite, emulator_url=emulator.base_url, key=key)
            os.environ.update(settings)  # the app reads its settings from the environment
            env_file = await asyncio.to_thread(write_env_file, directory, settings)
            print(f"playground: settings in {env_file}:\n")
            print(env_file_text(settings))
            print(
                "In another terminal:\n"
                f"  .venv/bin/python -m local.upstream --env-file {env_file} --jobs 5\n"
                f"  .venv/bin/python -m cli status --env-file {env_file} JOB_ID\n"
                f"  .venv/bin/python -m cli verify --all --env-file {env_file}\n"
                "Ctrl-C stops Azurite, the emulator and the app.\n"
            )
            async with QueueRunner(
                app=function_app.app, connection_string=azurite.connection_string, environ=settings
            ) as runner:
                print(
                    f"{READY} (app on queue {settings['JOBS_QUEUE']!r}, sweep {settings['SWEEP_SCHEDULE']!r})"
                )
                sys.stdout.flush()
                try:
                    await runner.run_until(stop.is_set, timeout=timeout)
                except TimeoutError:
                    print(f"playground: {timeout:g} s are up, stopping")
                finally:
                    await close_process_runtime()
    print("playground: stopped Azurite, the emulator and the app", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.playground",
        description="Azurite, the Language emulator and the app under the local host, until Ctrl-C.",
    )
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where to write the env file")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="stop after this many seconds at the latest"
    )
    args = parser.parse_args(argv)
    # The app's own one-line outcomes show what happens; the SDKs' request logs would drown them.
    logging.basicConfig(level=logging.INFO, format="  %(levelname)s %(name)s: %(message)s")
    for noisy in ("azure", "local.emulator", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(run(directory=args.dir, timeout=args.timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
