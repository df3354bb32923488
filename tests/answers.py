"""Hostile service answers for property tests: valid job states (the spec's examples, or pages the
emulator rendered), mutated the way a misbehaving service or a broken proxy would.

Mutations, applied one to four times at random places of the JSON tree: a field dropped, a value
replaced by another type (null, a number as a string, a huge or non-finite number, a container, a
long string), a value buried in deep nesting, a list enlarged, a lone UTF-16 surrogate put into a
string or a key; then, at the text level, maybe a ``NaN``/``Infinity`` literal, a number beyond a
double, a byte-order mark, nesting 100,000 levels deep, or the body cut short.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.conftest import SHARED_SPEC

Path_ = tuple[str | int, ...]
_MAX_ENLARGED = 20_000

#: A finished two-task job state in the 2024-11-01 shape, for when the spec's examples are absent.
BUILTIN_PAGE: dict[str, Any] = {
    "jobId": "00000000-0000-4000-8000-000000000000",
    "createdDateTime": "2025-01-01T00:00:00Z",
    "lastUpdatedDateTime": "2025-01-01T00:00:05Z",
    "expirationDateTime": "2025-01-02T00:00:00Z",
    "displayName": "hostile",
    "status": "succeeded",
    "errors": [],
    "tasks": {
        "completed": 2,
        "failed": 0,
        "inProgress": 0,
        "total": 2,
        "items": [
            {
                "kind": "EntityRecognitionLROResults",
                "taskName": "people",
                "lastUpdateDateTime": "2025-01-01T00:00:05.0000000Z",
                "status": "succeeded",
                "results": {
                    "errors": [{"id": "3", "error": {"code": "InvalidArgument", "message": "empty"}}],
                    "modelVersion": "2024-04-15",
                    "documents": [
                        {
                            "id": "1",
                            "entities": [
                                {
                                    "text": "Seattle",
                                    "category": "Location",
                                    "offset": 26,
                                    "length": 7,
                                    "confidenceScore": 0.99,
                                    "metadata": {"metadataKind": "X"},
                                }
                            ],
                            "warnings": [],
                        },
                        {"id": "2", "entities": [], "warnings": []},
                    ],
                },
            },
            {
                "kind": "CustomEntityRecognitionLROResults",
                "taskName": "regions",
                "lastUpdateDateTime": "2025-01-01T00:00:05.0000000Z",
                "status": "succeeded",
                "results": {
                    "errors": [],
                    "projectName": "MyProject",
                    "deploymentName": "MyDeployment",
                    "documents": [
                        {
                            "id": "1",
                            "entities": [
                                {
                                    "text": "Pacific Northwest",
                                    "category": "USRegion",
                                    "offset": 52,
                                    "length": 17,
                                    "confidenceScore": 1.0,
                                }
                            ],
                            "warnings": [],
                        }
                    ],
                },
            },
        ],
    },
}


def spec_pages() -> list[dict[str, Any]]:
    """The 200 bodies of the spec's status examples beside the checkout (none when absent)."""
    folder = SHARED_SPEC / "examples"
    pages = []
    for path in sorted(Path(folder).glob("*StatusRequest.json")) if folder.is_dir() else []:
        body = json.loads(path.read_text(encoding="utf-8"))["responses"]["200"]["body"]
        if isinstance(body, dict):
            pages.append(body)
    return pages


def paths(value: Any) -> Iterator[Path_]:
    """Every place in ``value``, the root first (iteratively: mutated values may be deep)."""
    pending: list[tuple[Path_, Any]] = [((), value)]
    while pending:
        path, node = pending.pop()
        yield path
        if isinstance(node, dict):
            pending.extend(((*path, key), item) for key, item in node.items())
        elif isinstance(node, list):
            pending.extend(((*path, index), item) for index, item in enumerate(node))


def _get(value: Any, path: Path_) -> Any:
    for step in path:
        value = value[step]
    return value


def _set(root: Any, path: Path_, new: Any) -> Any:
    if not path:
        return new
    parent = _get(root, path[:-1])
    parent[path[-1]] = new
    return root


def _drop(root: Any, path: Path_) -> Any:
    if not path:
        return None
    parent = _get(root, path[:-1])
    if isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])
    return root


SURROGATES = st.sampled_from(["\ud83d", "\ude00", "\udfff", "\ud800"])
#: Values of every JSON type and then some: what a field the app expects may turn out to be.
OTHER_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "1", "0.5", "null", "true", "[]", "{}", "2025-13-45T99:99:99Z", "x" * 5000]),
    st.text(max_size=20),
    st.just([]),
    st.just({}),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@st.composite
def mutated(draw: st.DrawFn, page: dict[str, Any]) -> Any:
    """``page`` (not changed) mutated one to four times."""
    value: Any = copy.deepcopy(page)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        places = list(paths(value))
        path = draw(st.sampled_from(places))
        operation = draw(st.sampled_from(["drop", "retype", "deepen", "enlarge", "surrogate", "null"]))
        if operation == "drop":
            value = _drop(value, path)
        elif operation == "retype":
            value = _set(value, path, draw(OTHER_VALUES))
        elif operation == "null":
            value = _set(value, path, None)
        elif operation == "deepen":
            depth = draw(st.sampled_from([2, 10, 50, 70, 200]))  # deeper: as_text's "deep" fault
            inner = _get(value, path)
            for _level in range(depth):
                inner = [inner] if draw(st.booleans()) else {"x": inner}
            value = _set(value, path, inner)
        elif operation == "enlarge":
            target = _get(value, path)
            copies = draw(st.integers(min_value=2, max_value=50))
            # Bounded, so that four enlargements in a row stay a test, not a memory hog.
            if isinstance(target, list | str) and 0 < len(target) * copies <= _MAX_ENLARGED:
                value = _set(value, path, target * copies)
        else:
            value = _with_surrogate(value, path, draw(SURROGATES), key=draw(st.booleans()))
    return value


def _with_surrogate(root: Any, path: Path_, surrogate: str, *, key: bool) -> Any:
    target = _get(root, path)
    if isinstance(target, str):
        return _set(root, path, target[: len(target) // 2] + surrogate + target[len(target) // 2 :])
    if isinstance(target, dict) and key and target:
        name = next(iter(target))
        target[name + surrogate] = target.pop(name)
        return root
    return _set(root, path, surrogate)


@st.composite
def as_text(draw: st.DrawFn, value: Any) -> bytes:
    """``value`` as the service might send it: JSON (lone surrogates as ``\\u`` escapes, NaN and
    infinities as their non-JSON literals), maybe with a text-level fault."""
    text = json.dumps(value)
    fault = draw(st.sampled_from(["none", "none", "none", "nan", "huge", "cut", "bom", "deep"]))
    if fault == "nan" and ": 1" in text:
        text = text.replace(": 1", ": NaN", 1)
    elif fault == "huge" and ": 0" in text:
        text = text.replace(": 0", ": 1e999", 1)
    elif fault == "cut":
        text = text[: draw(st.integers(min_value=0, max_value=len(text)))]
    elif fault == "bom":
        text = "\ufeff" + text
    elif fault == "deep" and text.startswith("{"):
        # Deeper than json.dumps can write (or json.loads read): built as text.
        depth = draw(st.sampled_from([1_000, 100_000]))
        text = '{"deep": ' + "[" * depth + "]" * depth + ("," if text != "{}" else "") + text[1:]
    return text.encode("utf-8")


def with_job(page: dict[str, Any], job_id: str) -> dict[str, Any]:
    """``page`` as the answer for ``job_id`` (no nextLink: the caller chains its pages)."""
    answer = copy.deepcopy(page)
    answer["jobId"] = job_id
    answer.pop("nextLink", None)
    return answer


def hostile_answers(pages: list[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """The bytes of a mutated answer, from one of ``pages``."""
    return st.sampled_from(pages).flatmap(mutated).flatmap(as_text)
