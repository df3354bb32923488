"""main.bicep's ``vnetEnabled`` both ways: off (the default) deploys today's public endpoints and no
network; on deploys the VNet integration and a private endpoint, with its DNS zone, for every
storage service the app uses and for Language, and closes their public access. The resources of
both states hold up against the ARM types. Each check also runs on a planted mistake."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.infra.arm_types import SCHEMAS_PATH, Schemas, check_declaration, declarations
from tests.infra.bicep_model import INFRA_DIR, load_deployment
from tests.infra.networking import check_private_networking

pytestmark = pytest.mark.infra

ENABLED = {"vnetEnabled": True}


def test_private_networking_is_off_by_default() -> None:
    deployment = load_deployment(INFRA_DIR)
    assert deployment.main_scope["vnetEnabled"] is False
    assert not deployment.deployed("network")


def test_vnet_disabled_creates_no_network_and_keeps_public_endpoints() -> None:
    problems = check_private_networking(load_deployment(INFRA_DIR))
    assert not problems, "\n".join(problems)


def test_vnet_enabled_wires_integration_endpoints_and_dns_and_closes_public_access() -> None:
    deployment = load_deployment(INFRA_DIR, ENABLED)
    assert deployment.deployed("network")
    problems = check_private_networking(deployment)
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(not SCHEMAS_PATH.is_file(), reason=f"{SCHEMAS_PATH} is absent: ARM types not checked")
def test_vnet_enabled_resources_match_their_arm_types() -> None:
    """test_arm_types checks the defaults; the values vnetEnabled selects are checked here."""
    schemas = Schemas.load()
    found = [finding for d in declarations(INFRA_DIR, ENABLED) for finding in check_declaration(d, schemas)]
    errors = [str(finding) for finding in found if finding.kind == "error"]
    assert not errors, "\n".join(errors)
    checked = {d.raw["type"] for d in declarations(INFRA_DIR, ENABLED)}
    assert {
        "Microsoft.Network/virtualNetworks",
        "Microsoft.Network/privateEndpoints",
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
        "Microsoft.Network/privateDnsZones",
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
    } <= checked


# --- the checks catch planted mistakes ---------------------------------------------------------------

#: (file under infra/, text, replacement, vnetEnabled, what the check must say): one mistake per case.
MISTAKES = [
    pytest.param(
        "modules/network.bicep",
        "    parent: privateEndpoints[i]",
        "    parent: privateEndpoints[0]",
        True,
        "(queue) has no privateDnsZoneGroup",
        id="endpoint-without-dns-zone-group",
    ),
    pytest.param(
        "modules/network.bicep",
        "privateDnsZoneId: zones[i].id",
        "privateDnsZoneId: zones[0].id",
        True,
        "zone 'privatelink.blob.core.windows.net', expected 'privatelink.queue.core.windows.net'",
        id="endpoint-in-the-wrong-zone",
    ),
    pytest.param(
        "modules/network.bicep",
        "    zone: 'privatelink.cognitiveservices.azure.com'",
        "    zone: 'privatelink.openai.azure.com'",
        True,
        "expected 'privatelink.cognitiveservices.azure.com'",
        id="wrong-zone-name",
    ),
    pytest.param(
        "modules/network.bicep",
        "    groupId: 'table'",
        "    groupId: 'file'",
        True,
        "one connection to one of ['account', 'blob', 'queue', 'table'] expected",
        id="table-endpoint-missing",
    ),
    pytest.param(
        "modules/network.bicep",
        "                serviceName: 'Microsoft.App/environments'",
        "                serviceName: 'Microsoft.Web/serverFarms'",
        True,
        "one delegated to Microsoft.App/environments",
        id="subnet-delegated-to-the-wrong-service",
    ),
    pytest.param(
        "modules/network.bicep",
        "output appSubnetId string = vnet.properties.subnets[0].id",
        "output appSubnetId string = vnet.properties.subnets[1].id",
        True,
        "virtualNetworkSubnetId (None, network.outputs.appSubnetId) is not the subnet delegated",
        id="app-integrated-into-the-endpoint-subnet",
    ),
    pytest.param(
        "modules/network.bicep",
        "        id: vnet.properties.subnets[1].id",
        "        id: vnet.properties.subnets[0].id",
        True,
        "is not in the private endpoint subnet",
        id="endpoint-in-the-app-subnet",
    ),
    pytest.param(
        "modules/network.bicep",
        "      virtualNetwork: {\n        id: vnet.id",
        "      virtualNetwork: {\n        id: hubNetworkId",
        True,
        "is not linked to the network",
        id="zone-not-linked",
    ),
    pytest.param(
        "main.bicep",
        "    privateAccessOnly: vnetEnabled\n",
        "",
        True,
        "publicNetworkAccess 'Enabled' / networkAcls.defaultAction 'Allow', expected ('Disabled', 'Deny')",
        id="storage-left-public",
    ),
    pytest.param(
        "main.bicep",
        "    publicNetworkAccess: vnetEnabled ? 'Disabled' : languagePublicNetworkAccess\n",
        "    publicNetworkAccess: languagePublicNetworkAccess\n",
        True,
        "publicNetworkAccess 'Enabled', expected 'Disabled' with vnetEnabled True",
        id="language-left-public",
    ),
    pytest.param(
        "main.bicep",
        "    virtualNetworkSubnetId: vnetEnabled ? network.outputs.appSubnetId : ''\n",
        "",
        True,
        "virtualNetworkSubnetId (None) is not the subnet delegated",
        id="app-not-integrated",
    ),
    pytest.param(
        "main.bicep",
        "module network 'modules/network.bicep' = if (vnetEnabled) {",
        "module network 'modules/network.bicep' = {",
        False,
        "vnetEnabled is false, yet network/vnet creates Microsoft.Network/virtualNetworks",
        id="network-deployed-without-vnet-enabled",
    ),
    pytest.param(
        "main.bicep",
        "    privateAccessOnly: vnetEnabled\n",
        "    privateAccessOnly: true\n",
        False,
        "expected ('Enabled', 'Allow') with vnetEnabled False",
        id="storage-closed-without-vnet-enabled",
    ),
]


@pytest.mark.parametrize(("relative", "old", "new", "enabled", "expected"), MISTAKES)
def test_check_catches_a_planted_mistake(
    tmp_path: Path, relative: str, old: str, new: str, enabled: bool, expected: str
) -> None:
    infra = tmp_path / "infra"
    shutil.copytree(INFRA_DIR, infra)
    path = infra / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {relative}: update the planted case"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    problems = check_private_networking(load_deployment(infra, {"vnetEnabled": enabled}))
    assert any(expected in problem for problem in problems), "\n".join(problems) or "no problem reported"
