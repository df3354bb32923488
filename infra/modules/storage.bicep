// The one storage account of the app: the Functions host's own storage (AzureWebJobsStorage, used
// keyless through the app's identity), the Flex Consumption deployment package, the archive, the
// job ledger, the jobs queue and its poison queue, and the events queue (eventsEnabled). Keys are
// disabled: every caller uses Entra ID. The archive is tiered and optionally write-once (below).

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

@description('Create the events queue (main.bicep\'s eventsEnabled); false: no events queue.')
param eventsEnabled bool = true

@description('Move archive blobs to the Cool tier this many days after they were written.')
@minValue(1)
param archiveCoolAfterDays int = 30

@description('Move archive blobs to the Cold tier this many days after they were written (more than archiveCoolAfterDays).')
@minValue(2)
param archiveColdAfterDays int = 90

@description('Delete archive blobs this many days after they were written; 0: never (the default: deleting records is a retention decision, not a template default).')
@minValue(0)
param archiveDeleteAfterDays int = 0

@description('Version-level immutability (WORM) of the archive container: every blob version is protected from deletion and change for this many days after it was written; 0: off.')
@minValue(0)
@maxValue(146000)
param archiveImmutableDays int = 0

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
// The archive is declared on its own (below): it alone may be write-once.
var containerNames = concat([
  deploymentContainerName
  ledgerContainerName
], hostContainerNames)
var queueNames = concat(eventsEnabled ? [eventsQueueName] : [], [
  jobsQueueName
  poisonQueueName
])
var archiveImmutable = archiveImmutableDays > 0

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

// Version-level immutability (archiveImmutableDays > 0): every version of every archive blob is
// write-once for that many days after it was written (the container's default time-based policy,
// which needs blob versioning on the account: blobService above). What the app writes there stays
// possible: the manifest is created once (If-None-Match: *), and a task blob written again by a
// duplicate finds the same bytes and leaves it as it is (shared/archive.py). An overwrite would
// still succeed under a version-level policy (it makes a new version, the old one stays
// protected); deleting or changing a protected version fails until its retention ends. The policy
// is deployed unlocked: an operator locks it (irreversible) once satisfied (docs/operations.md).
resource archiveContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: archiveContainerName
  properties: {
    publicAccess: 'None'
    immutableStorageWithVersioning: {
      enabled: archiveImmutable
    }
  }
}

resource archiveImmutability 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = if (archiveImmutable) {
  parent: archiveContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: archiveImmutableDays
    allowProtectedAppendWrites: false
  }
}

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

// The archive's tiers: Cool and Cold each bill a minimum stay (30 and 90 days), which the defaults
// match; deletion only when asked for (archiveDeleteAfterDays; under immutability it waits for the
// retention to end).
var archiveTiering = {
  tierToCool: {
    daysAfterModificationGreaterThan: archiveCoolAfterDays
  }
  tierToCold: {
    daysAfterModificationGreaterThan: archiveColdAfterDays
  }
}
var archiveDeletion = {
  delete: {
    daysAfterModificationGreaterThan: archiveDeleteAfterDays
  }
}
var archiveBaseBlobActions = union(archiveTiering, (archiveDeleteAfterDays > 0) ? archiveDeletion : {})

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
          // The archive is read mostly in its first days (events, verify, export); later for audits.
          name: 'tier-archive'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${archiveContainerName}/'
              ]
            }
            actions: {
              baseBlob: archiveBaseBlobActions
            }
          }
        }
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
output containerNames array = concat([archiveContainer.name], containerNames)
output queueNames array = queueNames
