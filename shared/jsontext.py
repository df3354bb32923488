"""JSON from outside, read within bounds: size and nesting checked before parsing, strict numbers,
and one rule for text that is not valid Unicode.

``json.loads`` recurses once per nesting level (a body of 100,000 ``[`` raises ``RecursionError``,
not ``ValueError``), turns ``1e999`` into ``inf`` and accepts ``NaN``, neither of which the app can
write back as JSON, and keeps lone UTF-16 surrogates (``"\\ud83d"``) that no UTF-8 encoder takes.
``loads`` refuses the first three with ``JsonRejected`` and applies the Unicode rule to the last:
every lone surrogate, in a value or a key, is replaced by U+FFFD (REPLACEMENT CHARACTER), as are
bytes that are not UTF-8. Whatever it returns can be written as UTF-8 JSON without an exception.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

__all__ = ["JsonRejected", "clean_text", "loads", "nesting_depth"]

#: A JSON string token (escapes included); nothing outside one can be a quote.
_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET: Final = re.compile(r"[\[\]{}]")
#: A \u escape of a UTF-16 surrogate, in either case; decoded text can only get one that way.
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_REPLACEMENT: Final = "\ufffd"


class JsonRejected(ValueError):
    """JSON text the app will not use: too large, too deep, not JSON, or a number JSON cannot hold."""


def nesting_depth(text: str, *, limit: int | None = None) -> int:
    """How deep arrays and objects nest in ``text`` (0 for a scalar), without recursion.

    Strings are skipped, so brackets inside them do not count. With ``limit`` the scan stops as
    soon as the depth exceeds it (and returns that depth): a hostile body costs one pass at most.
    """
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if limit is not None and deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def loads(data: bytes | str, *, max_bytes: int, max_depth: int) -> Any:
    """Parse ``data`` (UTF-8 bytes, or text) as JSON within the bounds; raise ``JsonRejected``.

    A leading byte-order mark is ignored. The result holds no lone surrogate, no NaN and no
    infinity: it can always be written back with ``json.dumps(..., ensure_ascii=False)`` as UTF-8.
    """
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise JsonRejected(f"it has {size} bytes, more than the {max_bytes} allowed")
    text = data.decode("utf-8-sig", "replace") if isinstance(data, bytes) else data.removeprefix("\ufeff")
    depth = nesting_depth(text, limit=max_depth)
    if depth > max_depth:
        raise JsonRejected(f"it nests deeper than the {max_depth} levels allowed")
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:  # not reachable within max_depth; kept so that no bound setting can crash
        raise JsonRejected("it nests too deep to parse") from None
    except ValueError as exc:  # JSONDecodeError, a rejected number, an integer of over 4300 digits
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise JsonRejected(f"it is not valid JSON ({detail})") from None
    if _SURROGATE_ESCAPE.search(text) or (isinstance(data, str) and _SURROGATE.search(text)):
        value = _replace_surrogates(value)
    return value


def clean_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (text taken from outside, for output)."""
    return _SURROGATE.sub(_REPLACEMENT, text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large for a double")
    return value


def _replace_surrogates(value: Any) -> Any:
    """Clean every string of a parsed value in place, iteratively (the nesting is bounded, the
    walk does not need to be). Valid pairs were already joined by the parser: what is left is lone."""
    if isinstance(value, str):
        return clean_text(value)
    pending = [value]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            for index, item in enumerate(node):
                if isinstance(item, str):
                    node[index] = clean_text(item)
                elif isinstance(item, list | dict):
                    pending.append(item)
        elif isinstance(node, dict):
            entries = [(clean_text(key), item) for key, item in node.items()]
            node.clear()  # rebuilt in order: a cleaned key keeps its place
            for key, item in entries:
                if isinstance(item, list | dict):
                    pending.append(item)
                node[key] = clean_text(item) if isinstance(item, str) else item
    return value
