"""Entry point of ``python -m cli``."""

import asyncio
import io
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
