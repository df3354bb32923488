"""Offsets and lengths in the unit a task asked for (`parameters.stringIndexType`)."""

from __future__ import annotations

import unicodedata
from itertools import accumulate

STRING_INDEX_TYPES = ("TextElements_v8", "UnicodeCodePoint", "Utf16CodeUnit")
DEFAULT_STRING_INDEX_TYPE = "TextElements_v8"

_ZWJ = "\u200d"


def to_index_units(text: str, start: int, end: int, index_type: str) -> tuple[int, int]:
    """(offset, length) of the code-point span text[start:end] in `index_type` units."""
    if index_type == "UnicodeCodePoint":
        return start, end - start
    if index_type == "Utf16CodeUnit":
        offset = _utf16_length(text[:start])
        return offset, _utf16_length(text[start:end])
    if index_type == "TextElements_v8":
        starts = [0, *accumulate(_grapheme_starts(text))]
        return starts[start], starts[end] - starts[start]
    raise ValueError(f"unknown stringIndexType {index_type!r}")


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _grapheme_starts(text: str) -> list[int]:
    """1 where a code point starts a text element, else 0.

    An approximation of UAX #29 extended grapheme clusters that covers what shifts offsets in practice:
    combining marks, variation selectors, emoji modifiers and tags, ZWJ sequences, CRLF and flag pairs.
    """
    marks: list[int] = []
    regional_run = 0
    for index, char in enumerate(text):
        previous = text[index - 1] if index else ""
        joins = _extends(char) or previous == _ZWJ or (previous == "\r" and char == "\n")
        if _is_regional_indicator(char):
            joins = joins or regional_run % 2 == 1
            regional_run += 1
        else:
            regional_run = 0
        marks.append(0 if joins and index else 1)
    return marks


def _extends(char: str) -> bool:
    code = ord(char)
    return (
        unicodedata.category(char) in {"Mn", "Me", "Mc"}
        or char == _ZWJ
        or 0xFE00 <= code <= 0xFE0F
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF
