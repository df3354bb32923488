"""The command line as a program: the real entry point, settings and --env-file, help, exit
statuses, one-line errors, keyless storage, and no secret ever printed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.settings import STORAGE_SETTING
from tests.conftest import EMULATOR_KEY, REPO_ROOT
from tests.integration.conftest import Stack
from tests.support import IdentityEndpoint

from .conftest import RunCli, archive_job, cner_item

pytestmark = pytest.mark.integration

JOB_ID = "c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18"
COMMANDS = ("status", "verify", "replay-poison", "enqueue", "export")


async def python_m_cli(*argv: str, environ: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """``python -m cli`` in a child process (off the loop: the test session's loop keeps serving)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LANGUAGE_", STORAGE_SETTING, "JOBS_", "ARCHIVE_"))
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli", *argv],
        cwd=REPO_ROOT,
        env={**base, **environ, "LC_ALL": "C", "PYTHONIOENCODING": ""},
        capture_output=True,
        timeout=60,
        check=False,
    )


async def test_the_entry_point_exports_utf8_json_lines_whatever_the_locale(stack: Stack) -> None:
    job_id = await archive_job(stack, [cner_item("Zürich")])

    exported = await python_m_cli("export", environ=stack.environ)

    assert (exported.returncode, exported.stderr) == (0, b"")
    assert [(row["jobId"], row["text"]) for row in map(json.loads, exported.stdout.splitlines())] == [
        (job_id, "Zürich")
    ]
    assert "Zürich".encode() in exported.stdout  # UTF-8 bytes under LC_ALL=C, not \u escapes


async def test_a_missing_setting_is_one_line_naming_it_and_exit_2(stack: Stack) -> None:
    environ = {k: v for k, v in stack.environ.items() if k != STORAGE_SETTING}

    ran = await python_m_cli("status", JOB_ID, environ=environ)

    assert ran.returncode == 2
    assert ran.stdout == b""
    assert ran.stderr.decode().splitlines() == [
        "error: AzureWebJobsStorage is missing: set a connection string, or "
        "AzureWebJobsStorage__blobServiceUri and AzureWebJobsStorage__queueServiceUri for a managed identity"
    ]


@pytest.mark.parametrize(
    "argv", [["frobnicate"], ["status", "--bogus", JOB_ID], [], ["export", "--format", "xml"]]
)
async def test_a_usage_error_is_one_line_and_exit_2(stack: Stack, run_cli: RunCli, argv: list[str]) -> None:
    ran = await run_cli(*argv)

    assert ran.status == 2
    assert ran.out == ""
    [line] = ran.err.splitlines()
    assert line.startswith("error: python -m cli")
    assert line.endswith("--help)")


@pytest.mark.parametrize("command", COMMANDS)
async def test_every_command_has_help_with_an_example_and_needs_no_setting(
    run_cli: RunCli, command: str
) -> None:
    ran = await run_cli(command, "--help", environ={})

    assert ran.status == 0
    assert "example: python -m cli " + command in ran.out


async def test_help_exits_0_without_any_setting(run_cli: RunCli) -> None:
    ran = await run_cli("--help", environ={})

    assert ran.status == 0
    assert "example:" in ran.out


async def test_env_file_reads_azd_env_get_values_output(
    stack: Stack, run_cli: RunCli, tmp_path: Path
) -> None:
    job_id = await archive_job(stack)
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f'{k}="{v}"\n' for k, v in stack.environ.items()), encoding="utf-8")

    ran = await run_cli("status", "--json", "--env-file", str(env_file), job_id, environ={})

    assert ran.status == 0
    assert ran.objects()[0]["state"] == "archived"


async def test_env_file_reads_a_local_settings_json_and_wins_over_the_environment(
    stack: Stack, run_cli: RunCli, tmp_path: Path
) -> None:
    job_id = await archive_job(stack)
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": stack.environ}), encoding="utf-8")

    ran = await run_cli(
        "status",
        "--json",
        "--env-file",
        str(settings),
        job_id,
        environ={**stack.environ, "ARCHIVE_CONTAINER": "elsewhere"},
    )

    assert ran.objects()[0]["state"] == "archived"


async def test_an_env_file_that_cannot_be_read_is_one_line_and_exit_2(
    run_cli: RunCli, tmp_path: Path
) -> None:
    ran = await run_cli("status", "--env-file", str(tmp_path / "nope.env"), JOB_ID, environ={})

    assert ran.status == 2
    assert ran.err.splitlines() == [
        f"error: --env-file {tmp_path / 'nope.env'} cannot be read (FileNotFoundError): check the path"
    ]


async def test_storage_that_cannot_be_reached_is_one_line_and_exit_2_without_its_key(
    stack: Stack, run_cli: RunCli
) -> None:
    account_key = stack.environ[STORAGE_SETTING].split("AccountKey=")[1].split(";")[0]
    closed = (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={account_key};"
        "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1"
    )

    ran = await run_cli("status", JOB_ID, environ={**stack.environ, STORAGE_SETTING: closed})

    assert ran.status == 2
    [line] = ran.err.splitlines()
    assert line.startswith("error: storage cannot be reached (")
    assert line.endswith("check AzureWebJobsStorage and the network")
    assert account_key not in line


async def test_no_command_ever_prints_the_language_key_or_the_storage_key(
    stack: Stack, run_cli: RunCli, tmp_path: Path
) -> None:
    account_key = stack.environ[STORAGE_SETTING].split("AccountKey=")[1].split(";")[0]
    job_id = await archive_job(stack)
    lines = tmp_path / "lines.txt"
    lines.write_text(f'{job_id}\n{EMULATOR_KEY}\n{{"jobId": "{account_key}"}}\n', encoding="utf-8")
    runs = [
        await run_cli("status", job_id, EMULATOR_KEY),
        await run_cli("status", "--json", job_id),
        await run_cli("verify", "--all"),
        await run_cli("enqueue", str(lines)),
        await run_cli("replay-poison", "--dry-run"),
        await run_cli("export", "--format", "csv"),
        await run_cli("export", job_id, environ={**stack.environ, "LANGUAGE_ENDPOINT": "http://10.0.0.1"}),
    ]

    for ran in runs:
        assert ran.out or ran.err
        assert EMULATOR_KEY not in ran.out + ran.err
        assert account_key not in ran.out + ran.err


async def test_identity_based_storage_asks_the_managed_identity_for_a_storage_token(
    stack: Stack, run_cli: RunCli, identity_endpoint: IdentityEndpoint
) -> None:
    environ = {k: v for k, v in stack.environ.items() if k != STORAGE_SETTING}
    environ |= {
        f"{STORAGE_SETTING}__blobServiceUri": "https://127.0.0.1:9",
        f"{STORAGE_SETTING}__queueServiceUri": "https://127.0.0.1:9",
        f"{STORAGE_SETTING}__credential": "managedidentity",
    }

    ran = await run_cli("status", JOB_ID, environ=environ)

    assert [hit["resource"] for hit in identity_endpoint.hits][:1] == ["https://storage.azure.com"]
    assert ran.status == 2
    assert ran.err.startswith("error: storage cannot be reached")
    assert identity_endpoint.token not in ran.err


async def test_a_reader_that_stops_early_ends_the_export_quietly(stack: Stack) -> None:
    # One task of 300 long entities: more output than a pipe buffers, so the writer meets the closed end.
    await archive_job(stack, [cner_item(*(f"entity {n} " * 40 for n in range(300)))])
    base = {k: v for k, v in os.environ.items() if k not in stack.environ}

    def export_into_a_closed_pipe() -> tuple[int, bytes]:
        with subprocess.Popen(
            [sys.executable, "-m", "cli", "export"],
            cwd=REPO_ROOT,
            env={**base, **stack.environ},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as child:
            assert child.stdout is not None
            assert child.stderr is not None
            child.stdout.readline()  # like `head -n 1`
            child.stdout.close()
            return child.wait(timeout=60), child.stderr.read()

    status, stderr = await asyncio.to_thread(export_into_a_closed_pipe)

    assert (status, stderr) == (1, b"")
