// A new Azure AI Language account (kind TextAnalytics) for Microsoft Entra ID only: local (key)
// authentication is disabled and the custom subdomain that Entra tokens require is set. Used only
// when main.bicep is not pointed at an existing account; access is granted in language-access.bicep.

@description('Name of the account; also its custom subdomain (globally unique).')
@minLength(2)
@maxLength(64)
param name string

@description('Azure region.')
param location string

@description('Tags for the account.')
param tags object = {}

@description('Pricing tier. S: 1000 requests/minute per feature (the poll budget in docs/deploy.md); F0: 300/minute and a monthly quota, one per subscription.')
@allowed([
  'F0'
  'S'
])
param languageSkuName string = 'S'

@description('Public network access to the account: Disabled when main.bicep\'s vnetEnabled gives the app a private endpoint to it (network.bicep).')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  #checkov:skip=CKV_AZURE_134: Public network access is a parameter (publicNetworkAccess): main.bicep passes Disabled with vnetEnabled (private endpoint in network.bicep); Enabled is the default because upstream submitters and the app then reach the account publicly. Access still requires an Entra token: local auth is disabled.
  name: name
  location: location
  tags: tags
  kind: 'TextAnalytics'
  sku: {
    name: languageSkuName
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: (publicNetworkAccess == 'Enabled') ? 'Allow' : 'Deny'
    }
  }
}

output name string = account.name
output id string = account.id
output endpoint string = account.properties.endpoint
