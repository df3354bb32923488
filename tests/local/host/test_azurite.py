"""The Azurite wrapper: starts on free ports, serves the connection string it gives, and leaves no
process behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient as SyncBlobServiceClient
from azure.storage.queue import QueueServiceClient as SyncQueueServiceClient
from azure.storage.queue.aio import QueueServiceClient

from local.host.azurite import Azurite, AzuriteError


def gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake-azurite"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_sync_start_serves_the_connection_string_and_stop_leaves_no_process() -> None:
    with Azurite.start_sync() as azurite:
        pid = azurite.pid
        with SyncQueueServiceClient.from_connection_string(azurite.connection_string) as service:
            service.create_queue("sync-start")
            assert [queue.name for queue in service.list_queues()] == ["sync-start"]
        assert not gone(pid)

    assert gone(pid)


async def test_async_start_serves_the_connection_string_and_stop_leaves_no_process() -> None:
    async with Azurite.start() as azurite:
        pid = azurite.pid
        assert azurite.queue_endpoint in azurite.connection_string
        assert azurite.blob_endpoint in azurite.connection_string
        async with QueueServiceClient.from_connection_string(azurite.connection_string) as service:
            await service.create_queue("async-start")

    assert gone(pid)


def test_stop_is_idempotent() -> None:
    azurite = Azurite.start_sync()
    azurite.stop()
    azurite.stop()

    assert gone(azurite.pid)


def test_missing_executable_says_to_run_npm_ci(tmp_path: Path) -> None:
    with pytest.raises(AzuriteError, match=r"not found: run `npm ci` \(or `make deps`\)"):
        Azurite.start_sync(executable=tmp_path / "azurite")


def test_early_exit_reports_the_last_output(tmp_path: Path) -> None:
    broken = script(tmp_path, "echo 'Error: Cannot find module yaml'; exit 3")

    with pytest.raises(AzuriteError, match="exited with code 3") as raised:
        Azurite.start_sync(executable=broken)

    assert "npm ci" in str(raised.value)
    assert "Cannot find module yaml" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_startup_timeout_kills_the_silent_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    silent = script(tmp_path, f"echo $$ > {pid_file}; echo starting; exec sleep 60")

    with pytest.raises(AzuriteError, match=r"did not listen on .* within 0.5 s .*npm ci.*starting"):
        Azurite.start_sync(executable=silent, startup_timeout=0.5, stop_timeout=2)

    assert gone(int(pid_file.read_text()))


def test_resume_after_suspend_keeps_ports_blobs_and_queue_messages(tmp_path: Path) -> None:
    with Azurite.start_sync(location=tmp_path / "data") as azurite:
        with SyncQueueServiceClient.from_connection_string(azurite.connection_string) as service:
            service.create_queue("kept").send_message("still here")
        with SyncBlobServiceClient.from_connection_string(azurite.connection_string) as blobs:
            blobs.create_container("kept").upload_blob("a.json", b"{}")
        connection_string, old_pid = azurite.connection_string, azurite.pid

        azurite.suspend()
        assert gone(old_pid)
        with (
            SyncQueueServiceClient.from_connection_string(azurite.connection_string, retry_total=0) as down,
            pytest.raises(AzureError),
        ):
            down.get_queue_client("kept").get_queue_properties()

        azurite.resume()
        assert azurite.running
        assert azurite.connection_string == connection_string
        with SyncQueueServiceClient.from_connection_string(azurite.connection_string) as service:
            assert [m.content for m in service.get_queue_client("kept").peek_messages()] == ["still here"]
        with SyncBlobServiceClient.from_connection_string(azurite.connection_string) as blobs:
            assert blobs.get_blob_client("kept", "a.json").download_blob().readall() == b"{}"
        new_pid = azurite.pid

    assert gone(new_pid)


def test_suspend_without_a_location_refuses_rather_than_losing_the_data() -> None:
    with Azurite.start_sync() as azurite, pytest.raises(AzuriteError, match="location=DIR"):
        azurite.suspend()
    assert gone(azurite.pid)
