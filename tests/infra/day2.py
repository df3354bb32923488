"""What the day-2 checks read from the evaluated Bicep: every role assignment as (principal, role,
scope), with the scope resolved to the container, queue or account it names, and a module's
resources by symbol. Built on bicep_model's evaluation (parameter defaults or given arguments)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tests.infra.bicep_model import (
    Deployment,
    ModuleInstance,
    Runtime,
    Tree,
    condition,
    evaluate,
    resource_body,
)

__all__ = ["ROLE_NAMES", "Grant", "grants", "module_resources"]

#: Built-in roles by id, as named on Microsoft's built-in roles page (../shared/azure-types lists them).
ROLE_NAMES: Final = {
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "8a0f0c08-91a1-4084-bc3d-661d67233fed": "Storage Queue Data Message Processor",
    "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a": "Storage Queue Data Message Sender",
    "19e7f393-937e-4f77-808e-94535e297925": "Storage Queue Data Reader",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "7628b7b8-a8b2-4cdc-b46f-e9b35248918e": "Cognitive Services Language Reader",
    "f2310ca1-dc64-4889-bb49-c8e0fa3d47a8": "Cognitive Services Language Writer",
}
ROLE_ASSIGNMENTS: Final = "Microsoft.Authorization/roleAssignments"
#: The short names of the scopes a grant may have.
SCOPE_KINDS: Final = {
    "Microsoft.Storage/storageAccounts": "account",
    "Microsoft.Storage/storageAccounts/blobServices/containers": "container",
    "Microsoft.Storage/storageAccounts/queueServices/queues": "queue",
    "Microsoft.CognitiveServices/accounts": "language",
    "Microsoft.Insights/components": "telemetry",
}


@dataclass(frozen=True, slots=True)
class Grant:
    """One role assignment: who (a principal id, or the deploy-time expression it comes from), which
    built-in role (by name), and where (the kind of scope and its name)."""

    principal: str
    role: str
    scope: tuple[str, str]


def module_resources(instance: ModuleInstance) -> dict[str, object]:
    """Every resource of the module (created or existing, conditions honoured) by symbol, as a handle
    ``{"type", "name", "body"}`` (a list of them for a loop): what a ``scope:`` or ``parent:`` names."""
    scope: dict[str, object] = dict(instance.scope)
    for symbol, declaration in instance.template.resources.items():
        body, loop = resource_body(declaration)
        if evaluate(condition(declaration), scope) is False:
            scope[symbol] = [] if loop is not None else None
            continue
        if loop is None:
            items: list[object] = [evaluate(body, scope)]
        else:
            expanded = evaluate({"loop_type": loop, "config": body}, scope)
            items = expanded if isinstance(expanded, list) else []
        handles = [
            {
                "type": declaration["type"],
                "name": item.get("name") if isinstance(item, dict) else None,
                "body": item,
            }
            for item in items
        ]
        scope[symbol] = handles if loop is not None else handles[0]
    return scope


def grants(deployment: Deployment) -> list[Grant]:
    """Every role assignment of every deployed module."""
    found = []
    for instance in deployment.instances:
        if instance.symbol != "main" and not deployment.deployed(instance.symbol):
            continue
        resolved = module_resources(instance)
        for symbol, declaration in instance.template.resources.items():
            if declaration["type"] != ROLE_ASSIGNMENTS or declaration.get("existing"):
                continue
            handles = resolved.get(symbol)
            for handle in handles if isinstance(handles, list) else [handles]:
                if isinstance(handle, dict):
                    found.append(_grant(handle["body"]))
    return found


def _grant(body: Tree) -> Grant:
    properties = body.get("properties") or {}
    principal = properties.get("principalId")
    role_id = str(properties.get("roleDefinitionId")).rsplit("/", 1)[-1]
    target = body.get("scope")
    if isinstance(target, dict):
        scope = (SCOPE_KINDS.get(str(target.get("type")), str(target.get("type"))), str(target.get("name")))
    else:
        scope = ("unknown", repr(target))
    return Grant(
        principal=principal.source if isinstance(principal, Runtime) else str(principal),
        role=ROLE_NAMES.get(role_id, role_id),
        scope=scope,
    )
