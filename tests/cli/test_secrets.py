"""No secret, nor any part of one, is ever printed (DESIGN.md, "Operator command line"): each kind
of secret pasted where a job id belongs, in every command, and the settings' own keys; stdout and
stderr are searched for every 8-character slice of the secret."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import TextBase64EncodePolicy

from tests.integration.conftest import Stack

from .conftest import Ran, RunCli, archive_job

pytestmark = pytest.mark.integration

ACCOUNT_KEY = base64.b64encode(bytes(range(7, 71))).decode()  # 64 bytes, as an account key is
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SAS = (
    "sv=2022-11-02&ss=bq&srt=sco&sp=rwdlacup&se=2026-12-31T00:00:00Z&spr=https"
    "&sig=Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5%2BsdW5r%3D"
)
HEX_KEY = "8f14e45fceea167a5a36dedd4bea2543"
JWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2NvZ25pdGl2ZSJ9.c2lnbmF0dXJlLXBhcnQ"
LONG_API_KEY = "7Qx2mK9pL4vN8rT1yW6zB3cF5hJ0dG2sA4eR7tY9uI1oP3aS5dF7gH9jK2lZ4xC6vB8nM0qW2eR4tY6uI8oP0aSd"

#: (what is pasted, the secret in it)
PASTED = [
    pytest.param(ACCOUNT_KEY, ACCOUNT_KEY, id="account-key"),
    pytest.param(AZURITE_KEY, AZURITE_KEY, id="azurite-key"),
    pytest.param(f"https://acct.blob.core.windows.net/archive?{SAS}", SAS, id="sas-url"),
    pytest.param(
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net",
        ACCOUNT_KEY,
        id="connection-string",
    ),
    pytest.param(HEX_KEY, HEX_KEY, id="language-key"),
    pytest.param(JWT, JWT, id="jwt"),
    pytest.param(LONG_API_KEY, LONG_API_KEY, id="long-api-key"),
]


def assert_nothing_of(secret: str, ran: Ran) -> None:
    printed = ran.out + ran.err
    leaked = sorted({secret[i : i + 8] for i in range(len(secret) - 7)} & _slices(printed))
    assert not leaked, f"printed slices of the secret: {leaked}\n{printed}"


def _slices(text: str) -> set[str]:
    return {text[i : i + 8] for i in range(len(text) - 7)}


Paste = Callable[[Stack, RunCli, str, Path], Awaitable[Ran]]


async def as_job_id(command: str, stack: Stack, run_cli: RunCli, pasted: str, _: Path) -> Ran:
    await archive_job(stack)
    environ = {**stack.environ, "EVENTS_QUEUE": "archive-events"}
    return await run_cli(command, pasted, environ=environ)


async def as_json_job_id(command: str, stack: Stack, run_cli: RunCli, pasted: str, _: Path) -> Ran:
    return await run_cli(command, "--json", pasted)


async def as_enqueue_lines(stack: Stack, run_cli: RunCli, pasted: str, tmp_path: Path) -> Ran:
    source = tmp_path / "lines.txt"
    source.write_text(f"{pasted}\n{json.dumps({'jobId': pasted})}\n", encoding="utf-8")
    return await run_cli("enqueue", "--json", str(source))


async def as_enqueue_text(stack: Stack, run_cli: RunCli, pasted: str, tmp_path: Path) -> Ran:
    source = tmp_path / "lines.txt"
    source.write_text(f"{json.dumps({'operationLocation': pasted})}\n{pasted}\n", encoding="utf-8")
    return await run_cli("enqueue", str(source))


async def as_poison(stack: Stack, run_cli: RunCli, pasted: str, _: Path) -> Ran:
    """A producer that sent a key as a message: the app's wrapper (whose reason quotes it cut
    short) and the host's raw copy, both read back by replay-poison."""
    poison = stack.queues.get_queue_client(
        stack.settings.poison_queue, message_encode_policy=TextBase64EncodePolicy()
    )
    with contextlib.suppress(ResourceExistsError):
        await poison.create_queue()
    original = json.dumps({"jobId": pasted})
    reason = f"invalid-job-id: job id {pasted[:60] + '...'!r} is not a UUID"
    await poison.send_message(json.dumps({"reason": reason, "message": original}))
    await poison.send_message(
        json.dumps({"reason": reason, "messageBase64": base64.b64encode(b"x").decode()})
    )
    await poison.send_message(pasted)
    ran_json = await run_cli("replay-poison", "--json")
    ran_text = await run_cli("replay-poison", "--dry-run")
    return Ran(ran_json.status, ran_json.out + ran_text.out, ran_json.err + ran_text.err)


def _bind(function: Callable[..., Awaitable[Ran]], command: str) -> Paste:
    async def paste(stack: Stack, run_cli: RunCli, pasted: str, tmp_path: Path) -> Ran:
        return await function(command, stack, run_cli, pasted, tmp_path)

    return paste


COMMANDS = [
    pytest.param(_bind(as_job_id, "status"), id="status"),
    pytest.param(_bind(as_json_job_id, "status"), id="status-json"),
    pytest.param(_bind(as_job_id, "verify"), id="verify"),
    pytest.param(_bind(as_json_job_id, "verify"), id="verify-json"),
    pytest.param(_bind(as_job_id, "export"), id="export"),
    pytest.param(_bind(as_job_id, "announce"), id="announce"),
    pytest.param(as_enqueue_lines, id="enqueue-json"),
    pytest.param(as_enqueue_text, id="enqueue"),
    pytest.param(as_poison, id="replay-poison"),
]


@pytest.mark.parametrize("paste", COMMANDS)
@pytest.mark.parametrize(("pasted", "secret"), PASTED)
async def test_a_secret_pasted_as_input_is_never_printed_in_any_part(
    stack: Stack, run_cli: RunCli, tmp_path: Path, paste: Paste, pasted: str, secret: str
) -> None:
    ran = await paste(stack, run_cli, pasted, tmp_path)

    assert ran.status in (0, 1, 2)
    assert ran.out + ran.err  # it said something
    assert_nothing_of(secret, ran)


async def test_a_long_language_key_of_the_settings_is_never_printed_in_any_part(
    stack: Stack, run_cli: RunCli
) -> None:
    key = "k" * 20 + LONG_API_KEY.lower()  # no capitals: not a key by its look, only by the settings
    environ = {**stack.environ, "LANGUAGE_API_KEY": key}

    ran = await run_cli("status", key, environ=environ)

    assert ran.status == 2
    assert_nothing_of(key, ran)


async def test_a_pasted_key_is_masked_in_a_setting_that_is_malformed(stack: Stack, run_cli: RunCli) -> None:
    environ = {**stack.environ, "POLL_INITIAL_DELAY_SECONDS": ACCOUNT_KEY}

    ran = await run_cli("status", "c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18", environ=environ)

    assert ran.status == 2
    assert "POLL_INITIAL_DELAY_SECONDS" in ran.err
    assert_nothing_of(ACCOUNT_KEY, ran)


async def test_the_storage_key_of_the_settings_is_never_printed_when_storage_refuses_it(
    stack: Stack, run_cli: RunCli
) -> None:
    connection = stack.environ["AzureWebJobsStorage"].replace(AZURITE_KEY, ACCOUNT_KEY)
    if connection == stack.environ["AzureWebJobsStorage"]:
        pytest.skip("the test Azurite does not use the well-known key")
    environ = {**stack.environ, "AzureWebJobsStorage": connection}

    ran = await run_cli("status", ACCOUNT_KEY, environ=environ, provisioned=False)

    assert ran.status == 2
    assert_nothing_of(ACCOUNT_KEY, ran)
    assert len(ran.err.splitlines()) == 1
