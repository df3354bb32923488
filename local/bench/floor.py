"""The floor: the least I/O that archives one job, to measure the app against."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from local.host.azurite import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

__all__ = ["Floor"]

_API_VERSION = "2024-11-01"
_JSON_TYPE = "application/json; charset=utf-8"
_STORAGE_VERSION = "2025-01-05"


class Floor:
    """The least I/O that archives one job: raw aiohttp on one session, a container SAS, no SDK.

    GET every page (following ``nextLink``), PUT the task blobs at once, then the manifest with
    ``If-None-Match: *``; no checks, no ledger, no sorting.
    """

    def __init__(
        self, *, http: aiohttp.ClientSession, language_url: str, key: str, blob_url: str, container: str
    ) -> None:
        self._http = http
        self._language = language_url
        self._key = key
        self._prefix = f"{blob_url}/{container}"
        self._sas = generate_container_sas(
            DEV_ACCOUNT_NAME,
            container,
            account_key=DEV_ACCOUNT_KEY,
            permission=ContainerSasPermissions(write=True, create=True),
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )

    async def archive(self, job_id: str) -> None:
        url: str | None = f"{self._language}/language/analyze-text/jobs/{job_id}?api-version={_API_VERSION}"
        items: list[dict[str, Any]] = []
        status = None
        while url is not None:
            async with self._http.get(url, headers={"Ocp-Apim-Subscription-Key": self._key}) as response:
                response.raise_for_status()
                page = json.loads(await response.read())
            for index, item in enumerate(page["tasks"]["items"]):
                if index == len(items):
                    items.append(item)
                else:
                    results, more = items[index]["results"], item["results"]
                    results["documents"] += more["documents"]
                    results["errors"] += more["errors"]
            url, status = page.get("nextLink"), page["status"]
        blobs = [
            (
                f"{job_id}/tasks/{index:02d}-{item['kind']}.json",
                json.dumps(item, separators=(",", ":")).encode(),
            )
            for index, item in enumerate(items)
        ]
        await asyncio.gather(*(self._put(name, data) for name, data in blobs))
        manifest = {
            "jobId": job_id,
            "status": status,
            "tasks": [
                {"blob": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                for name, data in blobs
            ],
        }
        await self._put(f"{job_id}/manifest.json", json.dumps(manifest).encode(), create_only=True)

    async def _put(self, name: str, data: bytes, *, create_only: bool = False) -> None:
        headers = {
            "x-ms-blob-type": "BlockBlob",
            "x-ms-version": _STORAGE_VERSION,
            "x-ms-blob-content-type": _JSON_TYPE,
        }
        if create_only:
            headers["If-None-Match"] = "*"
        async with self._http.put(
            f"{self._prefix}/{name}?{self._sas}", data=data, headers=headers
        ) as response:
            response.raise_for_status()
