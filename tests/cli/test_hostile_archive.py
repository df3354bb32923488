"""What the archive hands back is checked before use and shown safely (DESIGN.md, "Bad input"):
announce sends only jobs that verify, names from listings and manifests are never followed out of
a job, CSV cells are inert, control characters are escaped, and ``-o`` replaces its file only when
the command ran to its end."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from shared.export import EXPORT_FIELDS
from shared.settings import STORAGE_SETTING
from tests.integration.conftest import Stack

from .conftest import RunCli, archive_job, cner_item, put_blob

pytestmark = pytest.mark.integration


async def announced(stack: Stack, queue: str) -> list[str]:
    peeked = await stack.queues.get_queue_client(queue).peek_messages(max_messages=32)
    return [json.loads(base64.b64decode(m.content))["id"] for m in peeked]


async def tamper(stack: Stack, job_id: str) -> str:
    """Overwrite the job's first task blob: it no longer matches its manifest."""
    manifest = json.loads(
        await (
            await stack.blobs.get_blob_client(
                stack.settings.archive_container, f"{job_id}/manifest.json"
            ).download_blob()
        ).readall()
    )
    blob: str = manifest["tasks"][0]["blob"]
    await put_blob(stack, blob, b'{"tampered": true}')
    return blob


async def test_announce_sends_only_jobs_whose_archive_verifies_and_names_the_others(
    stack: Stack, run_cli: RunCli
) -> None:
    good, broken = await archive_job(stack), await archive_job(stack)
    blob = await tamper(stack, broken)
    queue = f"events-{uuid.uuid4().hex[:12]}"
    environ = {**stack.environ, "EVENTS_QUEUE": queue}

    ran = await run_cli("announce", "--json", good, broken, environ=environ)

    assert ran.status == 1
    assert ran.objects() == [
        {"jobId": good, "action": "announced"},
        {"jobId": broken, "action": "verify-failed"},
    ]
    assert await announced(stack, queue) == [good]
    assert f"not announced {broken}" in ran.err
    assert blob in ran.err


def manifest_with_blob(job_id: str, blob: str, data: bytes) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 1,
            "jobId": job_id,
            "status": "succeeded",
            "archivedAt": "2026-11-30T12:00:00Z",
            "correlationId": None,
            "tasks": [
                {
                    "taskName": "t",
                    "kind": "EntityRecognitionLROResults",
                    "status": "succeeded",
                    "blob": blob,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data),
                }
            ],
        }
    ).encode()


@pytest.mark.parametrize(
    "tail",
    [
        "tasks/../../{other}/tasks/00-x.json",
        "tasks/./00-x.json",
        "tasks//00-x.json",
        "tasks/00-x.json/..",
        "tasks/00\\..\\x.json",
    ],
)
async def test_a_manifest_naming_a_blob_out_of_its_job_is_unreadable_and_never_followed(
    stack: Stack, run_cli: RunCli, tail: str
) -> None:
    victim = await archive_job(stack, [cner_item("Seattle")])
    job_id, other = str(uuid.uuid4()), victim
    data = await (
        await stack.blobs.get_blob_client(
            stack.settings.archive_container, f"{other}/tasks/00-CustomEntityRecognitionLROResults.json"
        ).download_blob()
    ).readall()
    # The manifest vouches for the other job's blob by its exact hash: only the name check stops it.
    target = f"{job_id}/{tail.format(other=other)}".replace(
        "00-x.json", "00-CustomEntityRecognitionLROResults.json"
    )
    await put_blob(stack, f"{job_id}/manifest.json", manifest_with_blob(job_id, target, data))

    verified = await run_cli("verify", "--json", job_id)
    exported = await run_cli("export", job_id)

    assert verified.status == 1
    assert verified.objects() == [
        {
            "jobId": job_id,
            "ok": False,
            "problems": [{"blob": f"{job_id}/manifest.json", "problem": "manifest-unreadable"}],
        }
    ]
    assert (exported.status, exported.out) == (1, "")
    assert f"left out {job_id}" in exported.err


async def test_a_listed_manifest_whose_folder_is_not_a_job_id_is_reported_and_never_read(
    stack: Stack, run_cli: RunCli
) -> None:
    job_id = await archive_job(stack, [cner_item("Seattle")])
    await put_blob(stack, "not-a-job/manifest.json", manifest_with_blob("not-a-job", "x", b""))

    verified = await run_cli("verify", "--all", "--json")
    exported = await run_cli("export")

    assert verified.status == 1
    assert {"jobId": "not-a-job", "ok": False, "problems": [
        {"blob": "not-a-job/manifest.json", "problem": "invalid-name"}
    ]} in verified.objects()  # fmt: skip
    assert {"jobId": job_id, "ok": True, "problems": []} in verified.objects()
    assert exported.status == 1
    assert [json.loads(line)["text"] for line in exported.out.splitlines()] == ["Seattle"]
    assert "'not-a-job/manifest.json'" in exported.err


async def test_announce_reports_a_listed_name_that_is_not_a_job_and_announces_the_rest(
    stack: Stack, run_cli: RunCli
) -> None:
    job_id = await archive_job(stack)
    await put_blob(stack, f"{job_id.upper()}/manifest.json", b"{}")

    queue = f"events-{uuid.uuid4().hex[:12]}"
    ran = await run_cli("announce", "--json", environ={**stack.environ, "EVENTS_QUEUE": queue})

    assert ran.status == 1
    assert ran.objects() == [{"jobId": job_id, "action": "announced"}]
    assert f"{job_id.upper()}/manifest.json" in ran.err
    assert await announced(stack, queue) == [job_id]


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR", "plain"]


def csv_texts(text: str) -> list[str]:
    rows = list(csv.reader(text.splitlines(keepends=True)))
    return [row[EXPORT_FIELDS.index("text")] for row in rows[1:]]


async def test_export_csv_makes_cells_that_start_a_formula_inert(stack: Stack, run_cli: RunCli) -> None:
    job_id = await archive_job(stack, [cner_item(*FORMULAS)])

    ran = await run_cli("export", "--format", "csv", job_id)

    assert ran.status == 0
    assert csv_texts(ran.out) == ["'" + text for text in FORMULAS[:-1]] + ["plain"]


async def test_export_csv_neutralizes_every_text_column_not_only_the_entity(
    stack: Stack, run_cli: RunCli
) -> None:
    item: dict[str, Any] = cner_item("x")
    item["taskName"] = "=cmd|'/c calc'!A1"
    item["results"]["documents"][0]["id"] = "@doc"
    job_id = await archive_job(stack, [item], correlation_id="+corr")

    ran = await run_cli("export", "--format", "csv", job_id)

    [row] = list(csv.DictReader(ran.out.splitlines()))
    assert (row["taskName"], row["documentId"], row["correlationId"]) == (
        "'=cmd|'/c calc'!A1",
        "'@doc",
        "'+corr",
    )


async def test_export_jsonl_keeps_the_text_as_archived(stack: Stack, run_cli: RunCli) -> None:
    job_id = await archive_job(stack, [cner_item(*FORMULAS)])

    ran = await run_cli("export", job_id)

    assert [json.loads(line)["text"] for line in ran.out.splitlines()] == FORMULAS


async def test_export_jsonl_escapes_terminal_controls_and_keeps_their_meaning(
    stack: Stack, run_cli: RunCli
) -> None:
    text = "red\x1b[31m \x9b2J \u202eevil"
    job_id = await archive_job(stack, [cner_item(text)])

    ran = await run_cli("export", job_id)

    assert not {"\x1b", "\x9b", "\u202e"} & set(ran.out)
    assert [json.loads(line)["text"] for line in ran.out.splitlines()] == [text]


async def test_output_file_is_replaced_when_the_export_ran_to_its_end(
    stack: Stack, run_cli: RunCli, tmp_path: Path
) -> None:
    job_id = await archive_job(stack, [cner_item("Seattle")])
    target = tmp_path / "entities.jsonl"
    target.write_text("previous\n")

    ran = await run_cli("export", "-o", str(target), job_id)

    assert ran.status == 0
    assert [json.loads(line)["text"] for line in target.read_text().splitlines()] == ["Seattle"]
    assert listing(tmp_path) == ["entities.jsonl"]


async def test_output_file_is_left_as_it_was_when_storage_cannot_be_reached(
    stack: Stack, run_cli: RunCli, tmp_path: Path
) -> None:
    target = tmp_path / "entities.jsonl"
    target.write_text("previous\n")
    unreachable = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1"
    )
    environ = {**stack.environ, STORAGE_SETTING: unreachable}

    ran = await run_cli("export", "-o", str(target), environ=environ, provisioned=False)

    assert ran.status == 2
    assert target.read_text() == "previous\n"
    assert listing(tmp_path) == ["entities.jsonl"]


async def test_output_file_is_left_as_it_was_on_a_settings_error(
    stack: Stack, run_cli: RunCli, tmp_path: Path
) -> None:
    target = tmp_path / "entities.csv"
    target.write_text("previous\n")

    ran = await run_cli("export", "--status", "bogus", "-o", str(target))

    assert ran.status == 2
    assert target.read_text() == "previous\n"
    assert listing(tmp_path) == ["entities.csv"]


async def test_a_new_output_file_gets_the_usual_permissions(
    stack: Stack, run_cli: RunCli, tmp_path: Path
) -> None:
    job_id = await archive_job(stack)
    reference, target = tmp_path / "reference", tmp_path / "entities.jsonl"
    reference.write_text("")

    await run_cli("export", "-o", str(target), job_id)

    assert target.stat().st_mode == reference.stat().st_mode
