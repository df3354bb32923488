"""JSON from outside, read safely, and JSON the app writes, always valid UTF-8.

One rule for text that is not valid Unicode: a lone UTF-16 surrogate (which a JSON ``\\ud83d``
escape can carry, from a producer that cut a string in the middle of a pair) is replaced by U+FFFD
when the JSON is read. Everything the app writes from it afterwards is then valid UTF-8, never
longer than the escape it came from, and readable by any JSON reader; keeping the escape instead
would have to be repeated by every writer and every reader of the archive.

Nesting depth is measured before parsing (``json.loads`` recurses once per level and raises
``RecursionError`` near Python's recursion limit), and integers too long for ``int`` (Python refuses
more than 4,300 digits) are read as floats instead of failing the whole document.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any, Final

__all__ = [
    "SURROGATE_ESCAPE",
    "TooDeep",
    "UnreadableJson",
    "dumps_compact",
    "loads_bounded",
    "nesting_depth",
    "well_formed",
]

#: An integer literal longer than this is read as a float (infinite beyond float's range).
_MAX_INT_DIGITS: Final = 100
#: Every byte but the five that shape JSON outside its strings: deleted before counting.
_NOT_STRUCTURE: Final = bytes(byte for byte in range(256) if byte not in b'[]{}"')
#: Openings to ``(`` and closings to ``)``: a pair is a pair, whichever its kind.
_PARENS: Final = bytes.maketrans(b"[{]}", b"(())")
#: Levels counted by removing innermost pairs; deeper text is counted bracket by bracket.
_PAIR_ROUNDS: Final = 32
_STEP: Final = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
#: A ``\u`` escape of a UTF-16 surrogate, either case (a pair or a lone one): the only way JSON text
#: decoded from UTF-8 can carry a lone surrogate.
SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class UnreadableJson(ValueError):
    """The text is not JSON the app can read: malformed, or beyond the nesting bound."""


class TooDeep(UnreadableJson):
    """The text nests arrays and objects deeper than the caller's bound (checked before parsing)."""


def nesting_depth(text: str | bytes) -> int:
    """How deeply arrays and objects nest in ``text`` (0 for a scalar), without parsing it.

    Linear in the text and recursion-free. For malformed text (an unterminated string, a stray
    closing bracket) the result may differ from the truth past the first error, never within the
    valid prefix that a parser reads before it stops. UTF-8 bytes are read as the text they decode
    to: no byte of a multi-byte character is a bracket, a quote or a backslash."""
    # Every step is a pass in C over ever shorter bytes; for a 12 KB page of entities, a sixth of
    # what json.loads takes (a character-by-character scan took more than json.loads itself).
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if b"\\" in data:
        # An escape is a backslash and the character after it: without the escaped backslashes,
        # then the escaped quotes, every quote left delimits a string.
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Brackets and quotes only, then the strings out: an empty one goes at once (two adjacent
    # quotes never change which side of a string the rest is on), the others by their quotes.
    skeleton = data.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in skeleton:
        skeleton = b"".join(skeleton.split(b'"')[::2])
    # Balanced brackets lose their innermost pairs once per level, a pass each, as deep as a real
    # document goes; deeper or malformed text is counted a bracket at a time (linear either way).
    level = skeleton.translate(_PARENS)
    for depth in range(_PAIR_ROUNDS):
        if not level:
            return depth
        inner = level.replace(b"()", b"")
        if len(inner) == len(level):
            break  # unbalanced
        level = inner
    return max(0, max(accumulate(map(_STEP.__getitem__, skeleton)), default=0))


def loads_bounded(text: str, *, max_depth: int) -> Any:
    """``json.loads`` for untrusted text: depth checked first, lone surrogates replaced (U+FFFD).

    Raises ``UnreadableJson`` (a ``ValueError``) with a one-line reason, never anything else."""
    depth = nesting_depth(text)
    if depth > max_depth:
        raise TooDeep(f"JSON nested deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_int=_int)
    except json.JSONDecodeError as exc:
        raise UnreadableJson(f"not valid JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # the depth check makes RecursionError unreachable
        raise UnreadableJson(f"not valid JSON ({type(exc).__name__})") from None
    return well_formed(value) if SURROGATE_ESCAPE.search(text) or _SURROGATE.search(text) else value


def well_formed(value: Any) -> Any:
    """``value`` (parsed JSON) with every lone surrogate in its strings and keys replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {well_formed(key): well_formed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [well_formed(item) for item in value]
    return value


def dumps_compact(value: Any) -> str:
    """Compact JSON text with non-ASCII written as itself, never as a longer ``\\u`` escape: what the
    app writes, encoded as UTF-8 (for parsed input, ``well_formed`` made that encoding always work)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _int(digits: str) -> int | float:
    return int(digits) if len(digits) <= _MAX_INT_DIGITS else float(digits)
