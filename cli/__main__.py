"""Entry point of ``python -m cli``."""

import asyncio
import io
import os
import sys

from shared.auth import close_credentials

from .main import main


async def _run() -> int:
    try:
        return await main(sys.argv[1:])
    finally:
        await close_credentials()  # the operator's DefaultAzureCredential, if identity-based


if __name__ == "__main__":
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(encoding="utf-8")  # entity text is Unicode, whatever the locale
    try:
        sys.exit(asyncio.run(_run()))
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (`export | head`): stop quietly. stdout now points nowhere, so the
        # interpreter's final flush cannot fail again (Python's documented recipe for SIGPIPE).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
