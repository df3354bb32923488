"""The wiring of main.bicep's ``vnetEnabled``, read from the Bicep both ways (there is no Bicep
compiler here, so the deployment is evaluated from its parameters, see bicep_model).

Off: no network resource is deployed, storage and a new Language account keep their public
endpoint, the app has no VNet integration. On: one virtual network with one subnet delegated to
``Microsoft.App/environments`` (the app's integration, which the app uses) and one for private
endpoints; a private endpoint for storage blob, queue and table and for the Language account, each
with a DNS zone group naming the private DNS zone of its service, every zone linked to the network;
public network access Disabled (default action Deny) on storage and a new Language account.

References between resources (``parent: privateEndpoints[i]``, ``zones[i].id``, ``vnet.id``) are
resolved to ``Ref``s of the resources they name, so that the checks follow them.
"""

from __future__ import annotations

from collections.abc import Mapping
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

__all__ = ["EXPECTED_ENDPOINTS", "FLEX_DELEGATION", "check_private_networking"]

NETWORK_PREFIX: Final = "Microsoft.Network/"
VIRTUAL_NETWORKS: Final = "Microsoft.Network/virtualNetworks"
PRIVATE_ENDPOINTS: Final = "Microsoft.Network/privateEndpoints"
DNS_ZONE_GROUPS: Final = "Microsoft.Network/privateEndpoints/privateDnsZoneGroups"
DNS_ZONES: Final = "Microsoft.Network/privateDnsZones"
ZONE_LINKS: Final = "Microsoft.Network/privateDnsZones/virtualNetworkLinks"
STORAGE: Final = "Microsoft.Storage/storageAccounts"
LANGUAGE: Final = "Microsoft.CognitiveServices/accounts"
SITES: Final = "Microsoft.Web/sites"
FLEX_DELEGATION: Final = "Microsoft.App/environments"
#: Private endpoint group id -> (private DNS zone, what main.bicep passes as the target's id).
EXPECTED_ENDPOINTS: Final = {
    "blob": ("privatelink.blob.core.windows.net", "storage.outputs.id"),
    "queue": ("privatelink.queue.core.windows.net", "storage.outputs.id"),
    "table": ("privatelink.table.core.windows.net", "storage.outputs.id"),
    "account": ("privatelink.cognitiveservices.azure.com", "languageAccess.outputs.id"),
}


@dataclass(frozen=True, slots=True)
class Ref:
    """The id of a resource of one module: its symbol, loop index, and subnet (of a network)."""

    module: str
    symbol: str
    index: int | None = None
    subnet: str | None = None


@dataclass(frozen=True, slots=True)
class Created:
    """One resource a deployed module creates, its body evaluated with references resolved."""

    ref: Ref
    resource_type: str
    body: Tree
    raw: Tree
    scope: Mapping[str, object]


def _modules(deployment: Deployment) -> list[ModuleInstance]:
    return [instance for instance in deployment.modules.values() if deployment.deployed(instance.symbol)]


def _resolved(instance: ModuleInstance) -> list[Created]:
    """Every resource the module creates (conditions honoured), in declaration order, each symbol in
    scope as the ``Ref`` of its resource (a list of them for a loop); a network's subnets get theirs."""
    scope: dict[str, object] = dict(instance.scope)
    found: list[Created] = []
    for symbol, declaration in instance.template.resources.items():
        if declaration.get("existing") or evaluate(condition(declaration), scope) is False:
            continue
        body, loop = resource_body(declaration)
        if loop is None:
            items: list[object] = [evaluate(body, scope)]
        else:
            expanded = evaluate({"loop_type": loop, "config": body}, scope)
            items = expanded if isinstance(expanded, list) else []
        handles = []
        for index, item in enumerate(items):
            ref = Ref(instance.symbol, symbol, None if loop is None else index)
            tree = item if isinstance(item, dict) else {}
            tree = {**tree, "id": ref}
            if declaration["type"] == VIRTUAL_NETWORKS:
                tree = _with_subnet_refs(tree, ref)
            found.append(Created(ref, str(declaration["type"]), tree, body, dict(scope)))
            handles.append(tree)
        scope[symbol] = handles[0] if loop is None and handles else handles
    instance_outputs = instance.template.section("outputs")
    scope_outputs = {name: evaluate(output["value"], scope) for name, output in instance_outputs.items()}
    found.append(Created(Ref(instance.symbol, "<outputs>"), "<outputs>", scope_outputs, {}, scope))
    return found


def _with_subnet_refs(tree: Tree, ref: Ref) -> Tree:
    properties = tree.get("properties")
    subnets = properties.get("subnets") if isinstance(properties, dict) else None
    if not (isinstance(properties, dict) and isinstance(subnets, list)):
        return tree
    named = [
        {**subnet, "id": Ref(ref.module, ref.symbol, ref.index, str(subnet.get("name")))}
        if isinstance(subnet, dict)
        else subnet
        for subnet in subnets
    ]
    return {**tree, "properties": {**properties, "subnets": named}}


def _properties(body: Mapping[str, object]) -> Mapping[str, object]:
    properties = body.get("properties")
    return properties if isinstance(properties, dict) else {}


def _source(value: object) -> str:
    return value.source if isinstance(value, Runtime) else repr(value)


def check_private_networking(deployment: Deployment) -> list[str]:
    """The module docstring's expectations, for the deployment's ``vnetEnabled``."""
    enabled = deployment.main_scope.get("vnetEnabled")
    if not isinstance(enabled, bool):
        return [f"main.bicep's vnetEnabled must be a bool parameter, is {enabled!r}"]
    created = [item for instance in _modules(deployment) for item in _resolved(instance)]
    problems = _check_public_access(deployment, created, enabled)
    if enabled:
        return [*problems, *_check_network(created)]
    for item in created:
        if item.resource_type.startswith(NETWORK_PREFIX):
            where = f"{item.ref.module}/{item.ref.symbol}"
            problems.append(f"vnetEnabled is false, yet {where} creates {item.resource_type}")
    return problems


def _check_public_access(deployment: Deployment, created: list[Created], enabled: bool) -> list[str]:
    problems = []
    expected_language = "Disabled" if enabled else deployment.main_scope.get("languagePublicNetworkAccess")
    for item in created:
        properties = _properties(item.body)
        where = f"{item.ref.module}/{item.ref.symbol}"
        if item.resource_type == STORAGE:
            access = properties.get("publicNetworkAccess")
            acls = properties.get("networkAcls")
            action = acls.get("defaultAction") if isinstance(acls, dict) else None
            expected = ("Disabled", "Deny") if enabled else ("Enabled", "Allow")
            if (access, action) != expected:
                problems.append(
                    f"{where}: publicNetworkAccess {access!r} / networkAcls.defaultAction {action!r}, "
                    f"expected {expected} with vnetEnabled {enabled}"
                )
        elif item.resource_type == LANGUAGE and properties.get("publicNetworkAccess") != expected_language:
            problems.append(
                f"{where}: publicNetworkAccess {properties.get('publicNetworkAccess')!r}, expected "
                f"{expected_language!r} with vnetEnabled {enabled}"
            )
        elif item.resource_type == SITES and "functionAppConfig" in properties:
            subnet = properties.get("virtualNetworkSubnetId")
            if not enabled and subnet is not None:
                problems.append(f"{where}: virtualNetworkSubnetId is {_source(subnet)} without vnetEnabled")
    return problems


def _check_network(created: list[Created]) -> list[str]:
    by_type: dict[str, list[Created]] = {}
    for item in created:
        by_type.setdefault(item.resource_type, []).append(item)
    networks = by_type.get(VIRTUAL_NETWORKS, [])
    if len(networks) != 1:
        return [f"vnetEnabled: expected one virtual network, found {len(networks)}"]
    (network,) = networks
    subnets = _properties(network.body).get("subnets")
    subnets = subnets if isinstance(subnets, list) else []
    delegated = [s for s in subnets if FLEX_DELEGATION in _delegations(s)]
    others = [s for s in subnets if not _delegations(s)]
    problems = []
    if len(subnets) != 2 or len(delegated) != 1 or len(others) != 1:
        return [
            f"vnetEnabled: expected two subnets, one delegated to {FLEX_DELEGATION} and one for private "
            f"endpoints; found {[(s.get('name'), _delegations(s)) for s in subnets if isinstance(s, dict)]}"
        ]
    app_subnet, endpoint_subnet = delegated[0]["id"], others[0]["id"]
    problems.extend(_check_app_integration(created, app_subnet))
    zones = {item.ref: item for item in by_type.get(DNS_ZONES, [])}
    linked = {_parent(link) for link in by_type.get(ZONE_LINKS, []) if _link_network(link) == network.ref}
    groups: dict[Ref, list[Created]] = {}
    for group in by_type.get(DNS_ZONE_GROUPS, []):
        parent = _parent(group)
        if parent is not None:
            groups.setdefault(parent, []).append(group)
    seen: set[str] = set()
    for endpoint in by_type.get(PRIVATE_ENDPOINTS, []):
        zone_groups = groups.get(endpoint.ref, [])
        problems.extend(_check_endpoint(endpoint, endpoint_subnet, zone_groups, zones, linked, seen))
    for group_id in sorted(set(EXPECTED_ENDPOINTS) - seen):
        problems.append(f"vnetEnabled: no private endpoint for group {group_id!r}")
    for ref, zone in zones.items():
        if ref not in linked:
            problems.append(f"private DNS zone {zone.body.get('name')!r} is not linked to the network")
    return problems


def _check_app_integration(created: list[Created], app_subnet: object) -> list[str]:
    """The function app's virtualNetworkSubnetId is the network module's output naming that subnet."""
    outputs = {item.ref.module: item.body for item in created if item.resource_type == "<outputs>"}
    problems = []
    for item in created:
        properties = _properties(item.body)
        if item.resource_type != SITES or "functionAppConfig" not in properties:
            continue
        branches = _branches(_properties(item.raw).get("virtualNetworkSubnetId"), item.scope)
        if not any(_followed(value, outputs) == app_subnet for value in branches):
            problems.append(
                f"{item.ref.module}/{item.ref.symbol}: virtualNetworkSubnetId "
                f"({', '.join(_source(value) for value in branches)}) is not the subnet delegated to "
                f"{FLEX_DELEGATION}"
            )
    return problems


def _branches(raw: object, scope: Mapping[str, object]) -> list[object]:
    """The values an expression can take: both branches of a conditional whose condition is known
    only at deployment (``empty(subnetId) ? null : subnetId``), else its value."""
    operator = raw.get("operator") if isinstance(raw, dict) and set(raw) == {"operator"} else None
    if isinstance(operator, dict) and operator.get("type") == "conditional":
        operands = operator["operands"]
        if not isinstance(evaluate(operands["condition"], scope), bool):
            return [*_branches(operands["true_value"], scope), *_branches(operands["false_value"], scope)]
    return [evaluate(raw, scope)]


def _followed(value: object, outputs: Mapping[str, Mapping[str, object]]) -> object:
    """A ``<module>.outputs.<name>`` that main passed, followed into that module's evaluated outputs."""
    source = value.source.split(".") if isinstance(value, Runtime) else []
    if len(source) == 3 and source[1] == "outputs":
        return outputs.get(source[0], {}).get(source[2])
    return value


def _check_endpoint(
    endpoint: Created,
    endpoint_subnet: object,
    groups: list[Created],
    zones: Mapping[Ref, Created],
    linked: set[Ref | None],
    seen: set[str],
) -> list[str]:
    properties = _properties(endpoint.body)
    where = f"private endpoint {endpoint.body.get('name')!r}"
    connections = properties.get("privateLinkServiceConnections")
    connection = connections[0] if isinstance(connections, list) and len(connections) == 1 else {}
    connection_properties = _properties(connection) if isinstance(connection, dict) else {}
    group_ids = connection_properties.get("groupIds")
    if not (isinstance(group_ids, list) and len(group_ids) == 1 and group_ids[0] in EXPECTED_ENDPOINTS):
        return [f"{where}: one connection to one of {sorted(EXPECTED_ENDPOINTS)} expected: {connections!r}"]
    group_id = str(group_ids[0])
    seen.add(group_id)
    zone_name, target = EXPECTED_ENDPOINTS[group_id]
    problems = []
    service = connection_properties.get("privateLinkServiceId")
    if _source(service) != target:
        problems.append(f"{where} ({group_id}) targets {_source(service)}, expected {target}")
    subnet = properties.get("subnet")
    if not (isinstance(subnet, dict) and subnet.get("id") == endpoint_subnet):
        problems.append(f"{where} is not in the private endpoint subnet")
    zone_ids = [
        _properties(config).get("privateDnsZoneId")
        for group in groups
        for config in _as_list(_properties(group.body).get("privateDnsZoneConfigs"))
        if isinstance(config, dict)
    ]
    if not zone_ids:
        problems.append(f"{where} ({group_id}) has no privateDnsZoneGroup: its name resolves publicly")
    for zone_id in zone_ids:
        zone = zones.get(zone_id) if isinstance(zone_id, Ref) else None
        name = zone.body.get("name") if zone else None
        if name != zone_name:
            zone_text = name or _source(zone_id)
            problems.append(f"{where} ({group_id}) registers in zone {zone_text!r}, expected {zone_name!r}")
    return problems


def _delegations(subnet: object) -> list[str]:
    delegations = _properties(subnet).get("delegations") if isinstance(subnet, dict) else None
    return [
        str(_properties(delegation).get("serviceName"))
        for delegation in _as_list(delegations)
        if isinstance(delegation, dict)
    ]


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _parent(item: Created) -> Ref | None:
    parent = item.body.get("parent")
    ref = parent.get("id") if isinstance(parent, dict) else None
    return ref if isinstance(ref, Ref) else None


def _link_network(link: Created) -> Ref | None:
    network = _properties(link.body).get("virtualNetwork")
    ref = network.get("id") if isinstance(network, dict) else None
    return ref if isinstance(ref, Ref) else None
