"""Where a URL points, for the one rule that guards the credential: it goes only to the endpoint."""

from __future__ import annotations

from typing import Final
from urllib.parse import SplitResult

__all__ = ["Origin", "origin"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

Origin = tuple[str, str, int | None]


def origin(parts: SplitResult) -> Origin:
    """(scheme, host, port) with the scheme's default port made explicit, so that
    ``https://host`` and ``https://host:443`` are one origin and ``https://host:8443`` another.

    Raises ``ValueError`` for a malformed port.
    """
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)
