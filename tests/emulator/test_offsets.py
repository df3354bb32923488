"""Entity offsets/lengths honour parameters.stringIndexType on non-ASCII text."""

from __future__ import annotations

import aiohttp

from local.emulator.server import RunningEmulator
from tests.emulator.support import Json, custom_task, get_json, job_body, prebuilt_task, submit

TEXT = "😀 Grüße aus Zürich: trip to São Paulo next week, then the 🇺🇸 East Coast 👩‍👩‍👧 on Friday."


async def _entities(http: aiohttp.ClientSession, emulator: RunningEmulator, index_type: str) -> list[Json]:
    tasks = [prebuilt_task("ner", index_type), custom_task("regions", index_type=index_type)]
    job = await get_json(http, await submit(http, emulator, job_body([TEXT], tasks)))
    return [
        entity for item in job["tasks"]["items"] for entity in item["results"]["documents"][0]["entities"]
    ]


async def test_code_point_offsets_index_python_strings(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    entities = await _entities(http, instant, "UnicodeCodePoint")

    assert {e["text"] for e in entities} >= {
        "Zürich",
        "trip",
        "São Paulo",
        "next week",
        "East Coast",
        "Friday",
    }
    for entity in entities:
        assert TEXT[entity["offset"] : entity["offset"] + entity["length"]] == entity["text"]


async def test_utf16_offsets_count_surrogate_pairs(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    entities = await _entities(http, instant, "Utf16CodeUnit")
    utf16 = TEXT.encode("utf-16-le")

    assert entities
    for entity in entities:
        start, stop = 2 * entity["offset"], 2 * (entity["offset"] + entity["length"])
        assert utf16[start:stop].decode("utf-16-le") == entity["text"]
    zurich = next(e for e in entities if e["text"] == "Zürich")
    assert zurich["offset"] == TEXT.index("Zürich") + 1  # the leading emoji is two UTF-16 code units


async def test_default_text_elements_count_grapheme_clusters(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    tasks = [{"kind": "EntityRecognition", "taskName": "ner"}]
    job = await get_json(http, await submit(http, instant, job_body([TEXT], tasks)))
    friday = next(
        e for e in job["tasks"]["items"][0]["results"]["documents"][0]["entities"] if e["text"] == "Friday"
    )

    # The flag is 2 code points and the family emoji 5 (3 people joined by 2 ZWJ); each is 1 element.
    assert friday["offset"] == TEXT.index("Friday") - 1 - 4
    assert friday["length"] == 6
