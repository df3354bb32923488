"""Export rows (DESIGN.md, "Operator command line"): one per entity, every field, in CSV or JSONL."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cli.render import RowWriter
from cli.sanitize import neutralize_cell
from shared.archive import render_tasks
from shared.export import EXPORT_FIELDS, entity_rows
from tests.support import BOUNDED

JOB_ID = "c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18"
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
ENTITY = st.fixed_dictionaries(
    {"text": TEXT, "category": TEXT, "offset": st.integers(0, 10**6), "length": st.integers(0, 100)},
    optional={"subcategory": TEXT, "confidenceScore": st.floats(0, 1)},
)
DOCUMENT = st.fixed_dictionaries(
    {"id": TEXT, "entities": st.lists(ENTITY, max_size=4), "warnings": st.just([])}
)
ITEM = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["EntityRecognitionLROResults", "CustomEntityRecognitionLROResults"]),
        "taskName": TEXT,
        "status": st.just("succeeded"),
        "results": st.fixed_dictionaries(
            {"documents": st.lists(DOCUMENT, max_size=4), "errors": st.just([])}
        ),
    }
)


@BOUNDED
@given(st.lists(ITEM, min_size=1, max_size=3), st.none() | TEXT)
def test_one_row_per_entity_the_manifest_counts_each_with_every_field(
    items: list[dict[str, Any]], correlation_id: str | None
) -> None:
    for task in render_tasks(JOB_ID, items):
        rows = list(entity_rows(task.data, job_id=JOB_ID, correlation_id=correlation_id))

        assert len(rows) == task.entry["entityCount"]
        assert all(tuple(row) == EXPORT_FIELDS for row in rows)
        assert {(row["jobId"], row["correlationId"], row["kind"]) for row in rows} <= {
            (JOB_ID, correlation_id, task.entry["kind"])
        }


@BOUNDED
@given(st.lists(ITEM, min_size=1, max_size=2))
def test_csv_and_jsonl_read_back_as_the_rows_with_unicode_intact_and_formulas_inert(
    items: list[dict[str, Any]],
) -> None:
    rows = [
        row
        for task in render_tasks(JOB_ID, items)
        for row in entity_rows(task.data, job_id=JOB_ID, correlation_id=None)
    ]
    as_csv, as_jsonl = io.StringIO(newline=""), io.StringIO()

    RowWriter(as_csv, fmt="csv").write(rows)
    RowWriter(as_jsonl, fmt="jsonl").write(rows)

    table = list(csv.reader(io.StringIO(as_csv.getvalue(), newline="")))
    assert table[0] == list(EXPORT_FIELDS)
    assert [row[EXPORT_FIELDS.index("text")] for row in table[1:]] == [
        neutralize_cell(row["text"]) for row in rows
    ]
    # Lines end at \n only (U+0085, U+2028 stay raw inside JSON strings, as JSON Lines allows).
    assert [json.loads(line) for line in as_jsonl.getvalue().split("\n")[:-1]] == rows


def test_a_task_without_results_has_no_rows() -> None:
    [task] = render_tasks(JOB_ID, [{"kind": "CustomEntityRecognitionLROResults", "status": "failed"}])

    assert list(entity_rows(task.data, job_id=JOB_ID, correlation_id=None)) == []
