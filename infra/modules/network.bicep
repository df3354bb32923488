// Private networking (main.bicep's vnetEnabled): a virtual network with one subnet for the Flex
// Consumption app's VNet integration and one for private endpoints; a private endpoint for the
// storage account's blob, queue and table services and for the Language account, each registered
// in its private DNS zone (privateDnsZoneGroups), the zones linked to the network. With these in
// place main.bicep turns public network access off on storage and on a new Language account.
//
// Deploying code still works: azd posts the package to the app's SCM endpoint (Entra-authenticated,
// public), and the platform writes it to the deployment container as the app's identity, through
// this VNet integration and the blob private endpoint (docs/deploy.md, "Private networking").
//
// The zone names are those of the Azure public cloud. File and Data Lake endpoints are left out:
// Flex Consumption uses no file share, and the app no Data Lake API.

@description('Name of the virtual network.')
param name string

@description('Azure region (the private DNS zones are global).')
param location string

@description('Tags for every resource.')
param tags object = {}

@description('Suffix of the private endpoint names (unique in the resource group).')
param nameSuffix string

@description('Address space of the virtual network.')
param addressPrefix string = '10.0.0.0/16'

@description('Subnet of the function app\'s VNet integration, delegated to Microsoft.App/environments. One address per instance at scale-out (maximumInstanceCount) plus a few the platform keeps: /24 fits the default 40 and more.')
param appSubnetPrefix string = '10.0.0.0/24'

@description('Subnet of the private endpoints (one address each).')
param privateEndpointSubnetPrefix string = '10.0.1.0/24'

@description('Resource id of the storage account (blob, queue and table endpoints).')
param storageAccountId string

@description('Resource id of the Language account (new or existing).')
param languageAccountId string

var appSubnetName = 'snet-app'
var privateEndpointSubnetName = 'snet-private-endpoints'

// One entry per private endpoint: the service's group id (sub-resource) and its private DNS zone.
// The Functions host uses blob (locks, the deployment package), queue (triggers) and table (its
// diagnostic events); the app blob and queue; every Language call goes to the account endpoint.
var endpoints = [
  {
    name: 'blob'
    groupId: 'blob'
    zone: 'privatelink.blob.core.windows.net'
    target: storageAccountId
  }
  {
    name: 'queue'
    groupId: 'queue'
    zone: 'privatelink.queue.core.windows.net'
    target: storageAccountId
  }
  {
    name: 'table'
    groupId: 'table'
    zone: 'privatelink.table.core.windows.net'
    target: storageAccountId
  }
  {
    name: 'language'
    groupId: 'account'
    zone: 'privatelink.cognitiveservices.azure.com'
    target: languageAccountId
  }
]

// Subnets inline, not as child resources: a redeployment of the network would otherwise try to
// remove subnets that child resources declared (and fail while the app or an endpoint uses them).
resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: appSubnetName
        properties: {
          addressPrefix: appSubnetPrefix
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
          // The app's outbound traffic leaves through this subnet; telemetry goes to Application
          // Insights' public ingestion endpoint, so the subnet keeps default outbound access
          // (replace it with a NAT gateway or a firewall route to control egress).
          defaultOutboundAccess: true
        }
      }
      {
        name: privateEndpointSubnetName
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          privateEndpointNetworkPolicies: 'Disabled'
          defaultOutboundAccess: false
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [
  for endpoint in endpoints: {
    name: endpoint.zone
    location: 'global'
    tags: tags
  }
]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [
  for (endpoint, i) in endpoints: {
    parent: zones[i]
    name: '${name}-link'
    location: 'global'
    tags: tags
    properties: {
      registrationEnabled: false
      virtualNetwork: {
        id: vnet.id
      }
    }
  }
]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2024-05-01' = [
  for endpoint in endpoints: {
    name: 'pe-${endpoint.name}-${nameSuffix}'
    location: location
    tags: tags
    properties: {
      subnet: {
        id: vnet.properties.subnets[1].id
      }
      privateLinkServiceConnections: [
        {
          name: endpoint.name
          properties: {
            privateLinkServiceId: endpoint.target
            groupIds: [
              endpoint.groupId
            ]
          }
        }
      ]
    }
  }
]

// The A record of each endpoint in its zone, kept in step with the endpoint's address by Azure.
resource dnsZoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = [
  for (endpoint, i) in endpoints: {
    parent: privateEndpoints[i]
    name: 'default'
    properties: {
      privateDnsZoneConfigs: [
        {
          name: endpoint.name
          properties: {
            privateDnsZoneId: zones[i].id
          }
        }
      ]
    }
  }
]

output id string = vnet.id
output appSubnetId string = vnet.properties.subnets[0].id
output privateEndpointSubnetId string = vnet.properties.subnets[1].id
