"""Property tests of the ARM type walk (``arm_types.check_value``): any value built to a resource body
schema passes, and turning any one typed leaf of it into a value of another kind is reported at that
leaf's path."""

from __future__ import annotations

import copy
import string
from collections.abc import Iterator
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.infra.arm_types import SCHEMAS_PATH, Schemas, check_value

pytestmark = [
    pytest.mark.infra,
    pytest.mark.skipif(
        not SCHEMAS_PATH.is_file(),
        reason=f"{SCHEMAS_PATH} is absent (the read-only ../shared reference data): ARM types not checked",
    ),
]

MAX_DEPTH = 3  # optional properties, extra keys and array items only this deep: bounded values
SCHEMAS = Schemas.load() if SCHEMAS_PATH.is_file() else None
BODIES = sorted(SCHEMAS.data["resources"]) if SCHEMAS else []
Path = tuple[str | int, ...]


def _schemas() -> Schemas:
    assert SCHEMAS is not None
    return SCHEMAS


@cache
def conforming(index: int, depth: int = 0) -> st.SearchStrategy[object]:
    """Values that schema type ``index`` accepts (read-only properties never set)."""
    schema = _schemas().type(index)
    kind = schema["k"]
    deeper = depth < MAX_DEPTH
    if kind == "any":
        return st.none() | st.integers() | st.text(max_size=3)
    if kind == "string":
        low = int(schema.get("minLen", 0))
        return st.text(
            string.ascii_lowercase, min_size=low, max_size=max(low, min(int(schema.get("maxLen", 8)), 8))
        )
    if kind == "int":
        return st.integers(min_value=schema.get("min"), max_value=schema.get("max"))
    if kind == "bool":
        return st.booleans()
    if kind == "enum":
        return st.sampled_from(list(schema["v"]))
    if kind == "array":
        return st.lists(conforming(int(schema["item"]), depth + 1), max_size=2 if deeper else 0)
    if kind == "dobj":
        return st.one_of([conforming(int(variant), depth) for variant in schema["el"].values()])
    assert kind == "object", kind
    properties = {name: spec for name, spec in schema.get("p", {}).items() if "O" not in spec[1]}
    required = {n: conforming(int(t), depth + 1) for n, (t, flags) in properties.items() if "R" in flags}
    optional = {n: conforming(int(t), depth + 1) for n, (t, flags) in properties.items() if "R" not in flags}
    fixed = st.fixed_dictionaries(required, optional=optional if deeper else {})
    if "ap" not in schema or not deeper:
        return fixed
    extra = st.dictionaries(
        st.text(string.ascii_lowercase, min_size=1, max_size=4).map(lambda key: f"x_{key}"),
        conforming(int(schema["ap"]), depth + 1),
        max_size=2,
    )
    return st.tuples(fixed, extra).map(lambda parts: {**parts[1], **parts[0]})


def typed_leaves(value: object, index: int, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """(path, kind) of every leaf whose kind the walk checks: string, int, bool, enum."""
    schema = _schemas().type(index)
    kind = schema["k"]
    if kind in {"string", "int", "bool", "enum"}:
        yield path, kind
    elif kind == "array" and isinstance(value, list):
        for position, item in enumerate(value):
            yield from typed_leaves(item, int(schema["item"]), (*path, position))
    elif kind == "dobj" and isinstance(value, dict):
        yield from typed_leaves(value, int(schema["el"][value[schema["d"]]]), path)
    elif kind == "object" and isinstance(value, dict):
        properties = schema.get("p", {})
        for name, item in value.items():
            child = properties[name][0] if name in properties else schema["ap"]
            yield from typed_leaves(item, int(child), (*path, name))


def _dotted(path: Path) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def _replace(value: object, path: Path, new: object) -> object:
    changed = copy.deepcopy(value)
    parent = changed
    for step in path[:-1]:
        parent = parent[step]  # type: ignore[index]
    parent[path[-1]] = new  # type: ignore[index]
    return changed


WRONG_KIND = {"string": 7, "enum": 7, "int": "7", "bool": "true"}


@settings(max_examples=60, deadline=None)
@given(data=st.data(), resource=st.sampled_from(BODIES or ["<none>"]))
def test_a_value_built_to_the_schema_passes(data: st.DataObject, resource: str) -> None:
    body = int(_schemas().data["resources"][resource]["body"])
    value = data.draw(conforming(body))
    assert check_value(value, body, _schemas()) == []


@settings(max_examples=60, deadline=None)
@given(data=st.data(), resource=st.sampled_from(BODIES or ["<none>"]))
def test_a_leaf_of_the_wrong_kind_is_reported_at_its_path(data: st.DataObject, resource: str) -> None:
    body = int(_schemas().data["resources"][resource]["body"])
    value = data.draw(conforming(body))
    path, kind = data.draw(st.sampled_from(list(typed_leaves(value, body))))
    findings = check_value(_replace(value, path, WRONG_KIND[kind]), body, _schemas())
    assert any(finding.message.startswith(f"{_dotted(path)}: ") for finding in findings), findings
