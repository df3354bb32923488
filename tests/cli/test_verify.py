"""``verify``: every manifest re-read, every task blob re-hashed and measured."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import Stack

from .conftest import RunCli, archive_job, cner_item, ner_item, put_blob

pytestmark = pytest.mark.integration


async def task_blobs(stack: Stack, job_id: str) -> list[str]:
    return await stack.blob_names(f"{job_id}/tasks/")


async def test_an_intact_job_verifies_ok(stack: Stack, run_cli: RunCli) -> None:
    job_id = await archive_job(stack)

    ran = await run_cli("verify", "--json", job_id)

    assert ran.status == 0
    assert ran.objects() == [{"jobId": job_id, "ok": True, "problems": []}]


async def test_a_corrupted_blob_of_the_same_size_is_a_sha256_mismatch(stack: Stack, run_cli: RunCli) -> None:
    job_id = await archive_job(stack)
    name = (await task_blobs(stack, job_id))[1]
    data = await stack.blob(name)
    assert data is not None
    await put_blob(stack, name, data.replace(b"Pacific", b"Atlantc"))

    ran = await run_cli("verify", "--json", job_id)

    assert ran.status == 1
    assert ran.objects() == [
        {"jobId": job_id, "ok": False, "problems": [{"blob": name, "problem": "sha256-mismatch"}]}
    ]


async def test_a_truncated_blob_is_a_size_and_a_sha256_mismatch(stack: Stack, run_cli: RunCli) -> None:
    job_id = await archive_job(stack)
    name = (await task_blobs(stack, job_id))[0]
    data = await stack.blob(name)
    assert data is not None
    await put_blob(stack, name, data[:-10])

    ran = await run_cli("verify", "--json", job_id)

    assert ran.objects()[0]["problems"] == [
        {"blob": name, "problem": "size-mismatch"},
        {"blob": name, "problem": "sha256-mismatch"},
    ]
    assert ran.status == 1


async def test_a_deleted_blob_is_missing(stack: Stack, run_cli: RunCli) -> None:
    job_id = await archive_job(stack)
    name = (await task_blobs(stack, job_id))[0]
    await stack.blobs.get_blob_client(stack.settings.archive_container, name).delete_blob()

    ran = await run_cli("verify", "--json", job_id)

    assert ran.objects()[0]["problems"] == [{"blob": name, "problem": "missing"}]
    assert ran.status == 1


async def test_a_truncated_manifest_is_unreadable(stack: Stack, run_cli: RunCli) -> None:
    job_id = await archive_job(stack)
    manifest = f"{job_id}/manifest.json"
    data = await stack.blob(manifest)
    assert data is not None
    await put_blob(stack, manifest, data[: len(data) // 2])

    ran = await run_cli("verify", "--json", job_id)

    assert ran.objects() == [
        {"jobId": job_id, "ok": False, "problems": [{"blob": manifest, "problem": "manifest-unreadable"}]}
    ]
    assert ran.status == 1


async def test_a_manifest_that_vouches_for_another_jobs_blob_is_unreadable(
    stack: Stack, run_cli: RunCli
) -> None:
    job_id, other = await archive_job(stack), await archive_job(stack)
    manifest = await stack.manifest(job_id)
    assert manifest is not None
    other_manifest = await stack.manifest(other)
    assert other_manifest is not None
    manifest["tasks"][0] = other_manifest["tasks"][0]
    await put_blob(stack, f"{job_id}/manifest.json", json.dumps(manifest).encode())

    ran = await run_cli("verify", "--json", job_id)

    assert ran.objects()[0]["problems"] == [
        {"blob": f"{job_id}/manifest.json", "problem": "manifest-unreadable"}
    ]


async def test_a_job_without_manifest_is_not_archived(stack: Stack, run_cli: RunCli) -> None:
    job_id = "7f5a2e70-4d3c-4e9f-8a1b-2c3d4e5f6071"

    ran = await run_cli("verify", "--json", job_id)

    assert ran.objects() == [
        {"jobId": job_id, "ok": False, "problems": [{"blob": None, "problem": "not-archived"}]}
    ]
    assert ran.status == 1


async def test_all_verifies_every_archived_job_and_skips_archives_in_progress(
    stack: Stack, run_cli: RunCli
) -> None:
    good = [await archive_job(stack) for _ in range(3)]
    bad = await archive_job(stack, [ner_item("Zürich"), cner_item("東京")])
    name = (await task_blobs(stack, bad))[1]
    await put_blob(stack, name, b"{}")
    # Task blobs without a manifest: an archive still being written, not a verification failure.
    await put_blob(
        stack, "8a6b3f81-5e4d-4fa0-9b2c-3d4e5f607182/tasks/00-EntityRecognitionLROResults.json", b"{}"
    )

    ran = await run_cli("verify", "--all", "--json")

    rows = {row["jobId"]: row for row in ran.objects()}
    assert sorted(rows) == sorted([*good, bad])
    assert all(rows[job_id]["ok"] for job_id in good)
    assert rows[bad]["problems"] == [
        {"blob": name, "problem": "size-mismatch"},
        {"blob": name, "problem": "sha256-mismatch"},
    ]
    assert ran.status == 1


async def test_all_on_an_empty_archive_verifies_nothing_and_succeeds(stack: Stack, run_cli: RunCli) -> None:
    ran = await run_cli("verify", "--all")

    assert ran.status == 0
    assert ran.out == "verified 0 jobs: 0 ok, 0 failed\n"


async def test_all_in_text_names_only_the_failures_then_a_summary(stack: Stack, run_cli: RunCli) -> None:
    await archive_job(stack)
    bad = await archive_job(stack)
    name = (await task_blobs(stack, bad))[0]
    await stack.blobs.get_blob_client(stack.settings.archive_container, name).delete_blob()

    ran = await run_cli("verify", "--all")

    assert ran.out.splitlines() == [f"{bad}  FAILED  {name}: missing", "verified 2 jobs: 1 ok, 1 failed"]


@pytest.mark.parametrize("argv", [["verify"], ["verify", "--all", "7f5a2e70-4d3c-4e9f-8a1b-2c3d4e5f6071"]])
async def test_verify_needs_job_ids_or_all_but_not_both(
    stack: Stack, run_cli: RunCli, argv: list[str]
) -> None:
    ran = await run_cli(*argv)

    assert ran.status == 2
    assert len(ran.err.splitlines()) == 1
    assert "give JOB_IDs or --all" in ran.err
