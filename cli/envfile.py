"""``--env-file``: settings from ``azd env get-values`` output or from a ``local.settings.json``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Final

__all__ = ["EnvFileError", "parse_env_lines", "read_env_file"]

_LINE: Final = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$")
# What azd's (godotenv's) double-quoted values escape; any other escaped character stands for itself.
_ESCAPES: Final = {"n": "\n", "r": "\r", "t": "\t"}


class EnvFileError(ValueError):
    """The file cannot be read as settings; the message names the file (and line) and what is wrong."""


def read_env_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvFileError(
            f"--env-file {path} cannot be read ({type(exc).__name__}): check the path"
        ) from None
    if text.lstrip().startswith("{"):
        return _local_settings(text, path)
    return parse_env_lines(text, source=str(path))


def parse_env_lines(text: str, *, source: str = "--env-file") -> dict[str, str]:
    """``KEY=VALUE`` lines: blank lines and ``#`` comments skipped, values quoted as azd prints them."""
    values = {}
    # Only \n (or \r\n) ends a line: str.splitlines would also split at \x1e, \x85, \u2028, ...
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise EnvFileError(f"{source}:{number}: not a KEY=VALUE line")
        key, value = match.groups()
        values[key] = _unquote(value.strip(), f"{source}:{number}")
    return values


def _unquote(value: str, where: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if not value.startswith('"'):
        return value
    if len(value) < 2 or not value.endswith('"'):
        raise EnvFileError(f"{where}: the quoted value has no closing quote")
    out, chars = [], iter(value[1:-1])
    for char in chars:
        if char == "\\":
            escaped = next(chars, "\\")
            out.append(_ESCAPES.get(escaped, escaped))
        else:
            out.append(char)
    return "".join(out)


def _local_settings(text: str, path: Path) -> dict[str, str]:
    try:
        values = json.loads(text).get("Values")
    except (json.JSONDecodeError, AttributeError):
        raise EnvFileError(f'--env-file {path} is not a local.settings.json (JSON with "Values")') from None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise EnvFileError(f'--env-file {path}: "Values" must be an object of strings')
    return dict(values)
