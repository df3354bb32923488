// The one storage account of the app: the Functions host's own storage (AzureWebJobsStorage, used
// keyless through the app's identity), the Flex Consumption deployment package, the archive, the
// job ledger, the jobs queue and its poison queue. Keys are disabled: every caller uses Entra ID.

@description('Name of the storage account (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the account.')
param tags object = {}

// (Named apart from language.bicep's sku parameter: checkov renders parameters across all files of
// the directory by name, so a shared name makes its replication check depend on hash order.)
@description('Redundancy. The archive is the only copy of results the Language service purges after 24 hours, so geo-redundant by default (GZRS/RAGZRS where the region offers it).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param storageSkuName string = 'Standard_GRS'

@description('Container that holds the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Container of the archive (app setting ARCHIVE_CONTAINER).')
param archiveContainerName string

@description('Container of the job ledger: "<archive>-ledger", beside the archive.')
param ledgerContainerName string

@description('Queue the poll function listens on (app setting JOBS_QUEUE).')
param jobsQueueName string

@description('Poison queue: "<jobs queue>-poison".')
param poisonQueueName string

@description('Queue on which the app announces every archived job (app setting EVENTS_QUEUE).')
param eventsQueueName string

@description('Days a deleted blob or container (and a superseded blob version) can be restored.')
@minValue(1)
@maxValue(365)
param deleteRetentionDays int = 30

@description('Days the job ledger keeps superseded versions (every compare-and-swap writes one).')
@minValue(1)
@maxValue(365)
param ledgerVersionRetentionDays int = 2

@description('Log Analytics workspace that receives the storage metrics (and logs, when enabled).')
param logAnalyticsWorkspaceId string

@description('Refuse all public network access (main.bicep\'s vnetEnabled): the app reaches blob, queue and table through private endpoints (network.bicep). Off: the public endpoint, Entra ID only.')
param privateAccessOnly bool = false

@description('Send StorageWrite/StorageDelete resource logs to Log Analytics. Off by default: every poll writes and deletes a queue message and the ledger, so these logs cost more per job than the job itself.')
param enableStorageLogs bool = false

// The Functions host's own containers (locks, timer schedule status; host keys). They are created
// here so the identity can be granted access on each container rather than on the whole account.
var hostContainerNames = [
  'azure-webjobs-hosts'
  'azure-webjobs-secrets'
]
var containerNames = concat([
  deploymentContainerName
  archiveContainerName
  ledgerContainerName
], hostContainerNames)
var queueNames = [
  eventsQueueName
  jobsQueueName
  poisonQueueName
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  #checkov:skip=CKV_AZURE_35: With vnetEnabled (privateAccessOnly) the default action is Deny and public access is off. Its default is off because the app, the operator CLI and upstream submitters then reach storage over the public endpoint, Entra-only (shared keys off, OAuth default, no public blobs); checkov reads only the default.
  #checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: public network access is Disabled with vnetEnabled (private endpoints in network.bicep); without it the public endpoint is the only route, and every request must carry an Entra token.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: storageSkuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: privateAccessOnly ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: privateAccessOnly ? 'Deny' : 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    // An archive that must not lose anything: overwritten blobs keep their previous versions and
    // deleted blobs/containers stay restorable. The lifecycle policy below bounds what this keeps.
    isVersioningEnabled: true
    deleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in containerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

// Versioning keeps a copy of every overwrite. The ledger is rewritten at each compare-and-swap and
// the host's lock/timer blobs constantly, so their old versions go quickly; the rest after the
// soft-delete window.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'expire-ledger-and-host-versions'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${ledgerContainerName}/'
                'azure-webjobs-hosts/'
                'azure-webjobs-secrets/'
              ]
            }
            actions: {
              version: {
                delete: {
                  daysAfterCreationGreaterThan: ledgerVersionRetentionDays
                }
              }
            }
          }
        }
        {
          name: 'expire-old-versions'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
            }
            actions: {
              version: {
                delete: {
                  daysAfterCreationGreaterThan: deleteRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    blobService
  ]
}

// Transaction metrics always (cheap, per API and status code: throttling and auth failures show up
// here); who wrote or deleted what only on request. Reads are never logged: every poll reads.
var storageLogCategories = [
  {
    category: 'StorageWrite'
    enabled: true
  }
  {
    category: 'StorageDelete'
    enabled: true
  }
]

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'storage-audit'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: enableStorageLogs ? storageLogCategories : []
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'storage-audit'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: enableStorageLogs ? storageLogCategories : []
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
output deploymentContainerUrl string = '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
output containerNames array = containerNames
output queueNames array = queueNames
