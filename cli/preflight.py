"""What is checked before a command touches anything: the storage connection string's form, and that
the container or queue a setting names exists (the command line creates none; DESIGN.md, "Operator
command line"). Each failure is a ``SettingsError`` naming the setting: one line, exit 2."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable
from urllib.parse import urlsplit

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient
from azure.storage.queue.aio import QueueClient

from shared.settings import STORAGE_SETTING, SettingsError
from shared.storage import connection_string_parts

__all__ = ["check_connection_string", "connection_string_problem", "require_container", "require_queue"]


def connection_string_problem(value: str) -> str | None:
    """What the storage SDK would refuse in a connection string (at once, or at the first request),
    as a phrase that quotes no value."""
    parts = connection_string_parts(value)
    if parts is None:
        return "every part must be Name=value, separated by ';'"
    if parts.get("usedevelopmentstorage") == "true":
        return None
    key, sas = parts.get("accountkey"), parts.get("sharedaccesssignature")
    if key is None and sas is None:
        return "no AccountKey or SharedAccessSignature"
    if key is not None:
        if "accountname" not in parts:
            return "AccountKey without AccountName"
        try:
            base64.b64decode(key, validate=True)
        except binascii.Error:
            return "AccountKey is not base64"
    for name in ("blobendpoint", "queueendpoint"):
        endpoint = parts.get(name)
        if endpoint is None:
            continue
        try:
            url = urlsplit(endpoint)
            usable = url.scheme in ("http", "https") and bool(url.hostname)
        except ValueError:
            usable = False
        if not usable:
            return f"{'BlobEndpoint' if name == 'blobendpoint' else 'QueueEndpoint'} is not an http(s) URL"
    if not ({"accountname", "blobendpoint", "queueendpoint"} & parts.keys()):
        return "no AccountName and no endpoints"
    return None


def check_connection_string(value: str | None) -> None:
    """Refuse a connection string the storage SDK would refuse, without quoting it (it holds the key)."""
    problem = None if value is None else connection_string_problem(value)
    if problem is not None:
        raise SettingsError(
            f"{STORAGE_SETTING} is not a storage connection string ({problem}): use "
            "'DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...' as the account's "
            "Access keys page shows it, or UseDevelopmentStorage=true"
        )


async def require_container(container: ContainerClient, *, setting: str) -> None:
    """One request (get properties): the container that ``setting`` names must exist."""
    await _require(container.get_container_properties(), setting, "container", container.container_name)


async def require_queue(queue: QueueClient, *, setting: str) -> None:
    """One request (get properties): the queue that ``setting`` names must exist."""
    await _require(queue.get_queue_properties(), setting, "queue", queue.queue_name)


async def _require(properties: Awaitable[object], setting: str, kind: str, name: str) -> None:
    try:
        await properties
    except ResourceNotFoundError:
        raise SettingsError(_missing(setting, kind, name)) from None
    except HttpResponseError as exc:
        _unless_forbidden(exc)


def _unless_forbidden(exc: HttpResponseError) -> None:
    """A role that may use the resource but not read its properties (a queue's Message Sender) cannot
    tell whether it exists: the command goes on and its own first request says what is wrong."""
    if exc.status_code != 403 or isinstance(exc, ClientAuthenticationError):
        raise exc


def _missing(setting: str, kind: str, name: str) -> str:
    return (
        f"{setting} names the {kind} {name!r}, which does not exist in the storage account: check the "
        f"name (the command line creates no {kind})"
    )
