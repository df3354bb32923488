"""``enqueue``: backfill, each line judged by the app's own parser and sent as the host reads it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.integration.conftest import Stack

from .conftest import RunCli, archive_job

pytestmark = pytest.mark.integration

JOB_ID = "c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18"
OTHER_ID = "1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5"


async def drain(stack: Stack) -> list[str]:
    texts = []
    while await stack.queue_length(stack.settings.jobs_queue):
        texts.append((await stack.next_job_message())[0])
    return texts


async def test_valid_lines_are_sent_as_they_are_and_invalid_ones_reported_by_line_number(
    stack: Stack, run_cli: RunCli, tmp_path: Path
) -> None:
    location = (
        f"{stack.settings.language_endpoint}/language/analyze-text/jobs/{OTHER_ID}?api-version=2024-11-01"
    )
    lines = [
        JOB_ID,
        "",
        '{"jobId": "nope"}',
        location,
        "   ",
        json.dumps({"jobId": OTHER_ID, "correlationId": "Zürich-7"}, ensure_ascii=False),
    ]
    source = tmp_path / "jobs.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")

    ran = await run_cli("enqueue", "--json", str(source))

    assert ran.status == 1
    assert ran.objects() == [
        {"line": 1, "action": "enqueued", "jobId": JOB_ID, "reason": None},
        {
            "line": 3,
            "action": "invalid",
            "jobId": None,
            "reason": "invalid-job-id: job id 'nope' is not a UUID",
        },
        {"line": 4, "action": "enqueued", "jobId": OTHER_ID, "reason": None},
        {"line": 6, "action": "enqueued", "jobId": OTHER_ID, "reason": None},
    ]
    assert sorted(await drain(stack)) == sorted([JOB_ID, location, lines[5]])


async def test_a_file_of_valid_lines_succeeds_with_a_summary(
    stack: Stack, run_cli: RunCli, tmp_path: Path
) -> None:
    source = tmp_path / "jobs.txt"
    source.write_bytes(f"{JOB_ID}\r\n{OTHER_ID}\r\n".encode())

    ran = await run_cli("enqueue", str(source))

    assert ran.status == 0
    assert ran.out.splitlines() == [
        f"line 1: enqueued: {JOB_ID}",
        f"line 2: enqueued: {OTHER_ID}",
        f"{stack.settings.jobs_queue}: 2 enqueued, 0 skipped, 0 invalid",
    ]
    assert sorted(await drain(stack)) == sorted([JOB_ID, OTHER_ID])


async def test_skip_archived_does_not_send_jobs_that_have_a_manifest(
    stack: Stack, run_cli: RunCli, tmp_path: Path
) -> None:
    archived = await archive_job(stack)
    source = tmp_path / "jobs.txt"
    source.write_text(f"{archived}\n{JOB_ID}\n", encoding="utf-8")

    ran = await run_cli("enqueue", "--json", "--skip-archived", str(source))

    assert ran.objects() == [
        {"line": 1, "action": "skipped", "jobId": archived, "reason": "already archived"},
        {"line": 2, "action": "enqueued", "jobId": JOB_ID, "reason": None},
    ]
    assert await drain(stack) == [JOB_ID]
    assert ran.status == 0


async def test_lines_come_from_stdin_by_default(
    stack: Stack, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(f"{JOB_ID}\n".encode())))

    ran = await run_cli("enqueue", "--json")

    assert ran.objects() == [{"line": 1, "action": "enqueued", "jobId": JOB_ID, "reason": None}]


async def test_the_cli_calls_a_line_invalid_exactly_when_the_poll_function_poisons_it(
    stack: Stack, run_cli: RunCli, tmp_path: Path
) -> None:
    bodies = [
        b'{"jobId": "x"}',
        b"[1, 2]",
        b'{"displayName": "no job"}',
        b'{"operationLocation": "https://elsewhere.example/language/analyze-text/jobs/'
        + JOB_ID.encode()
        + b'"}',
        b'{"jobId": "%s", "metadata": {"k": 1}}' % JOB_ID.encode(),
        b'{"jobId": "%s", "operationLocation": "%s/language/analyze-text/jobs/%s"}'
        % (JOB_ID.encode(), stack.settings.language_endpoint.encode(), OTHER_ID.encode()),
        b"\xff\xfe not utf-8",
        b"{" + b" " * 41_000 + b"}",
    ]
    source = tmp_path / "jobs.txt"
    source.write_bytes(b"\n".join(bodies))

    ran = await run_cli("enqueue", "--json", str(source))
    for body in bodies:
        await stack.deliver(body)

    poisoned = [item["reason"] for item in await stack.poison_messages()]
    assert [row["reason"] for row in ran.objects()] == poisoned
    assert [row["action"] for row in ran.objects()] == ["invalid"] * len(bodies)
    assert len(poisoned) == len(bodies)
    assert await stack.queue_length(stack.settings.jobs_queue) == 0


async def test_an_unreadable_input_file_is_a_usage_error(
    stack: Stack, run_cli: RunCli, tmp_path: Path
) -> None:
    ran = await run_cli("enqueue", str(tmp_path / "missing.txt"))

    assert ran.status == 2
    assert ran.err.splitlines() == [
        f"error: cannot read {tmp_path / 'missing.txt'} (No such file or directory): check the path"
    ]


async def test_json_objects_keep_their_fields_on_the_queue(
    stack: Stack, run_cli: RunCli, tmp_path: Path
) -> None:
    body = {"jobId": JOB_ID, "displayName": "Bücher", "metadata": {"tenant": "contoso"}}
    source = tmp_path / "jobs.jsonl"
    source.write_text(json.dumps(body, ensure_ascii=False) + "\n", encoding="utf-8")

    await run_cli("enqueue", str(source))

    assert [json.loads(text) for text in await drain(stack)] == [body]


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param(b"[" * 40_000, id="deep-array"),
        pytest.param(b'{"jobId": ' * 3_000, id="deep-object"),
        pytest.param(b'{"jobId": "\\ud83d"}', id="lone-surrogate"),
        pytest.param(b"\xff\xfe not utf-8", id="not-utf-8"),
        pytest.param(b"x" * (2 * 1024 * 1024), id="two-mib-line"),
        pytest.param(b"ab=c" * (512 * 1024), id="two-mib-of-pairs"),
    ],
)
async def test_a_line_it_cannot_handle_is_reported_and_the_next_lines_are_still_sent(
    stack: Stack, run_cli: RunCli, tmp_path: Path, hostile: bytes
) -> None:
    source = tmp_path / "jobs.txt"
    source.write_bytes(hostile + b"\n" + JOB_ID.encode() + b"\n")

    ran = await run_cli("enqueue", "--json", str(source))

    assert ran.status == 1
    [invalid, sent] = ran.objects()
    assert (invalid["line"], invalid["action"], invalid["jobId"]) == (1, "invalid", None)
    assert invalid["reason"]
    assert sent == {"line": 2, "action": "enqueued", "jobId": JOB_ID, "reason": None}
    assert await drain(stack) == [JOB_ID]


async def test_an_oversized_line_is_reported_with_its_size(
    stack: Stack, run_cli: RunCli, tmp_path: Path
) -> None:
    source = tmp_path / "jobs.txt"
    source.write_bytes(json.dumps({"jobId": JOB_ID, "displayName": "x" * 50_000}).encode() + b"\n")

    ran = await run_cli("enqueue", "--json", str(source))

    [row] = ran.objects()
    assert str(row["reason"]).startswith("oversized: message has 50")
