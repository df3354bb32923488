// The function app on the Flex Consumption plan (FC1, Linux): Python, run as the user-assigned
// managed identity, deployed from a blob container that the same identity reads and writes, and
// configured with identity-based settings only (no key or connection secret anywhere).

@description('Name of the function app (also its default host name).')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region (must offer Flex Consumption).')
param location string

@description('Tags for the plan and the app (the app also gets azd-service-name).')
param tags object = {}

@description('azd service this app hosts; must match the service name in azure.yaml.')
param serviceName string = 'api'

@description('Resource id of the user-assigned managed identity the app runs as.')
param identityId string

@description('Client id of that identity (DefaultAzureCredential, AzureWebJobsStorage__clientId, telemetry).')
param identityClientId string

@description('Blob service endpoint of the storage account, e.g. https://<account>.blob.core.windows.net/.')
param storageBlobEndpoint string

@description('Queue service endpoint of the storage account.')
param storageQueueEndpoint string

@description('Table service endpoint of the storage account (the host\'s diagnostic events).')
param storageTableEndpoint string

@description('Container of the deployment package (in the same storage account).')
param deploymentContainerName string

@description('Application Insights connection string (an ingestion address, not a credential: local auth is off).')
param applicationInsightsConnectionString string

@description('The application\'s own settings (DESIGN.md "App settings"); merged with the host settings below.')
param appSettings object

@description('Most instances the plan scales the app out to. 40 is the lowest maximum Flex Consumption accepts in every region (lower values only in some; elsewhere InvalidMaximumInstanceCount). host.json batching and the Language rate limit, not this, bound the app: see docs/deploy.md.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of each instance in MB (Flex Consumption sizes).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Subnet of the app\'s VNet integration (delegated to Microsoft.App/environments; network.bicep); empty: none.')
param virtualNetworkSubnetId string = ''

// The Python version the app is built and tested with (pyproject.toml: python_version 3.11);
// tests/infra/test_consistency.py keeps the two in step.
var pythonVersion = '3.11'

// Settings of the Functions host and the platform, identity-based throughout:
// - AzureWebJobsStorage__*: the host's storage and the queue trigger's connection, through the
//   user-assigned identity (credential + clientId); the app reads the same settings, except
//   tableServiceUri, where only the host writes its diagnostic events.
// - AZURE_CLIENT_ID: which identity DefaultAzureCredential/ManagedIdentityCredential use (the app has
//   only this one, but naming it avoids ambiguity and a metadata round trip).
// - APPLICATIONINSIGHTS_AUTHENTICATION_STRING: telemetry authenticated with that identity (the
//   host's, and the app's: the Azure Monitor exporter reads it too).
// - PYTHON_ENABLE_OPENTELEMETRY: host.json's telemetryMode is OpenTelemetry; this lets the Python
//   worker stream the app's OpenTelemetry logs itself (no duplicate host entries) and carries the
//   invocation's trace context into the app, whose spans then nest under the host's. The app
//   configures the Azure Monitor distro itself, on the first invocation (shared/otel.py).
// Flex Consumption rejects FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION: the runtime is
// functionAppConfig.runtime below.
var hostSettings = {
  AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
  AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AZURE_CLIENT_ID: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identityClientId}'
  PYTHON_ENABLE_OPENTELEMETRY: 'true'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  #checkov:skip=CKV_AZURE_225: Zone redundancy on Flex Consumption is region-dependent and needs a minimum of always-ready instances (billed while idle); the queue and the job ledger already make the app resilient to losing an instance.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  #checkov:skip=CKV_AZURE_212: Flex Consumption scales to zero and out on queue length; there is no fixed instance count to raise for failover.
  #checkov:skip=CKV_AZURE_213: The app has no HTTP trigger (queue and timer only), so there is no endpoint a health check could probe; the platform restarts unhealthy workers itself.
  #checkov:skip=CKV_AZURE_222: The SCM endpoint must stay reachable for azd deploy (Entra-authenticated, basic auth off); the main site has no HTTP trigger and denies all inbound traffic (ipSecurityRestrictionsDefaultAction Deny).
  #checkov:skip=CKV_AZURE_17: Client certificates authenticate HTTP callers; the app has no HTTP trigger and the main site denies all inbound traffic.
  #checkov:skip=CKV_AZURE_78: siteConfig.ftpsState is rejected on Flex Consumption sites (ARM error 51021); FTP publishing is off through the basicPublishingCredentialsPolicies/ftp resource below (allow false).
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    // Outbound through the VNet: storage and Language are then reached at their private endpoints.
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      remoteDebuggingEnabled: false
      // No HTTP trigger: the app's own host name serves nothing, so deny every caller. The SCM site
      // (deployments, Entra-authenticated) keeps its own rules.
      ipSecurityRestrictionsDefaultAction: 'Deny'
      scmIpSecurityRestrictionsDefaultAction: 'Allow'
      scmIpSecurityRestrictionsUseMain: false
      appSettings: [
        for setting in items(union(appSettings, hostSettings)): {
          name: setting.key
          value: setting.value
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// Publishing with basic credentials (FTP, and zip deploy with a user/password) is off: azd deploys
// with an Entra token.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = functionApp.id
output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
output pythonVersion string = pythonVersion
