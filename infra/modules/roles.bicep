// Role assignments of the app's identity (and, optionally, the deploying user) on the storage
// account and the Application Insights component: least privilege, the app's data at the narrowest
// scope Azure RBAC supports (a single blob container or a single queue; the component for
// telemetry), the Functions host's storage as Microsoft documents it (see below).
// Assignment names are guid(scope, principal, role): stable across deployments, unique per triple.
// Language access is in language-access.bicep (it may live in another resource group).
//
// What needs what:
// - Archive and ledger containers: Storage Blob Data Contributor. The app reads, writes
//   (conditional create of the manifest, ETag compare-and-swap of ledger records), lists and deletes
//   blobs. Owner would add ACL management, which the app does not need.
// - The Functions host's own containers (azure-webjobs-hosts: primary-host and singleton locks, the
//   timer trigger's schedule status, and the app's Language request budget under archiver/;
//   azure-webjobs-secrets: host keys) and the deployment container (Flex Consumption writes the
//   package there with this identity on deploy and reads it on every cold start): Storage Blob Data
//   Owner, the role Microsoft's functions-reference ("Connecting to host storage with an identity")
//   documents for AzureWebJobsStorage, granted on each of these containers instead of the account,
//   so the app cannot touch any other container with it (the archive's manifests above all).
//   storage.bicep creates these containers, so the host never needs to create one.
//   hostBlobOwnerOnAccount = true adds the account-wide grant (Microsoft's template default), for a
//   host that needs more than its containers; off by default.
// - Tables: Storage Table Data Contributor on the account. The host writes its diagnostic events to
//   tables it creates (one per month) through AzureWebJobsStorage__tableServiceUri and logs warnings
//   when it cannot; table names vary, so the account is the narrowest scope. The app uses no table.
// - Jobs queue and poison queue: Storage Queue Data Contributor. Receive, delete, update (the
//   reschedule rewrites the message and its visibility) and send on the jobs queue; send to the
//   poison queue and receive from it for the sweep; create-if-missing of the poison queue by the app
//   and by the host (queues/write). Message Processor + Sender lack update and create.
// - Events queue (eventsEnabled): Storage Queue Data Message Sender (the app adds events) and Storage
//   Queue Data Reader (each sweep reads its length and peeks its oldest event for the backlog
//   metrics). This template creates the queue, so the app's create-if-missing (only after a send
//   answered 404) never runs in Azure.
// - Application Insights: Monitoring Metrics Publisher, so telemetry is accepted with an Entra token
//   (the component has local auth disabled). Reader roles cannot publish; nothing broader is needed.
//
// The neighbours (principal ids given as parameters; their Language role is in language-access.bicep):
// - upstreamPrincipalIds (submit Language jobs, enqueue their ids): Storage Queue Data Message Sender
//   on the jobs queue only: they can add messages, not read, delete or see anyone else's.
// - consumerPrincipalIds (read events, then the archive): Storage Queue Data Message Processor on the
//   events queue only (peek, receive, delete) and Storage Blob Data Reader on the archive container
//   only (read and list blobs; nothing of the ledger, the host or the deployment package).

@description('Name of the storage account.')
param storageAccountName string

@description('Container of the archive.')
param archiveContainerName string

@description('Container of the job ledger.')
param ledgerContainerName string

@description('Container of the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Queue the poll function listens on.')
param jobsQueueName string

@description('Poison queue of the jobs queue.')
param poisonQueueName string

@description('Queue on which the app announces every archived job.')
param eventsQueueName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Principal id (object id) of the app\'s user-assigned managed identity.')
param appPrincipalId string

@description('Principal id of the deploying user, granted data access to run the app locally against these resources; empty: none.')
param deployerPrincipalId string = ''

@description('Also grant Storage Blob Data Owner on the whole account (Microsoft\'s template default). Off (default): on the host\'s own containers and the deployment container only (see the header).')
param hostBlobOwnerOnAccount bool = false

@description('The events queue exists and the app sends to it (main.bicep\'s eventsEnabled).')
param eventsEnabled bool = true

@description('Principal ids of the upstream systems: send-only on the jobs queue.')
param upstreamPrincipalIds array = []

@description('Principal ids of the event consumers: receive and delete on the events queue, read-only on the archive container.')
param consumerPrincipalIds array = []

var roles = {
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
  storageQueueDataMessageProcessor: '8a0f0c08-91a1-4084-bc3d-661d67233fed'
  storageQueueDataReader: '19e7f393-937e-4f77-808e-94535e297925'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// The Functions host's fixed container names (created by storage.bicep).
var hostContainerNames = [
  'azure-webjobs-hosts'
  'azure-webjobs-secrets'
]
// The app's data (Contributor) and the host's and the deployment's containers (Owner).
var appContainerNames = [
  archiveContainerName
  ledgerContainerName
]
var hostOwnedContainerNames = concat([deploymentContainerName], hostContainerNames)
var queueNames = [
  jobsQueueName
  poisonQueueName
]
// The deploying user runs the app (and its local host: locks, timer status) but never deploys
// packages through this access, so the deployment container is left out. No principal: no grants
// (empty loops rather than loop conditions, which pycep-parser cannot read).
var grantDeployer = !empty(deployerPrincipalId)
var deployerContainerNames = grantDeployer ? concat([archiveContainerName, ledgerContainerName], hostContainerNames) : []
var deployerQueueNames = grantDeployer ? queueNames : []
// The deploying user sends events too: a local run of the app, or 'python -m cli announce'.
var deployerEventsQueueNames = (grantDeployer && eventsEnabled) ? [eventsQueueName] : []
// (No loop conditions, as above: with events off, no grant on the events queue.)
var appEventsQueueNames = eventsEnabled ? [eventsQueueName] : []
var consumerEventsPrincipalIds = eventsEnabled ? consumerPrincipalIds : []

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource appContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [
  for containerName in appContainerNames: {
    parent: blobService
    name: containerName
  }
]

resource hostOwnedContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [
  for containerName in hostOwnedContainerNames: {
    parent: blobService
    name: containerName
  }
]

resource deployerContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [
  for containerName in deployerContainerNames: {
    parent: blobService
    name: containerName
  }
]

resource jobQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

resource eventsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: eventsQueueName
}

resource deployerQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = [
  for queueName in deployerQueueNames: {
    parent: queueService
    name: queueName
  }
]

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource appBlobAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (containerName, i) in appContainerNames: {
    name: guid(appContainers[i].id, appPrincipalId, roles.storageBlobDataContributor)
    scope: appContainers[i]
    properties: {
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
      description: 'Language job archiver: blobs of container ${containerName}.'
    }
  }
]

resource appQueueAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (queueName, i) in queueNames: {
    name: guid(jobQueues[i].id, appPrincipalId, roles.storageQueueDataContributor)
    scope: jobQueues[i]
    properties: {
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
      description: 'Language job archiver: messages of queue ${queueName}.'
    }
  }
]

resource appEventsSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (queueName, i) in appEventsQueueNames: {
    name: guid(eventsQueue.id, appPrincipalId, roles.storageQueueDataMessageSender)
    scope: eventsQueue
    properties: {
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageSender)
      description: 'Language job archiver: send archive events on queue ${queueName}.'
    }
  }
]

resource appEventsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (queueName, i) in appEventsQueueNames: {
    name: guid(eventsQueue.id, appPrincipalId, roles.storageQueueDataReader)
    scope: eventsQueue
    properties: {
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataReader)
      description: 'Language job archiver: measure the backlog (length, oldest event) of queue ${queueName}.'
    }
  }
]

resource appHostContainerOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (containerName, i) in hostOwnedContainerNames: {
    name: guid(hostOwnedContainers[i].id, appPrincipalId, roles.storageBlobDataOwner)
    scope: hostOwnedContainers[i]
    properties: {
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
      description: 'Functions host storage (AzureWebJobsStorage) and deployment package: blobs of container ${containerName}.'
    }
  }
]

resource appHostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hostBlobOwnerOnAccount) {
  name: guid(storage.id, appPrincipalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    description: 'Functions host storage (AzureWebJobsStorage): account-wide blob data owner (hostBlobOwnerOnAccount).'
  }
}

resource appHostTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    description: 'Functions host storage (AzureWebJobsStorage__tableServiceUri): the host\'s diagnostic events tables.'
  }
}

resource appTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    description: 'Language job archiver: keyless (Entra) telemetry ingestion.'
  }
}

// principalType is left out for the deploying user: it may be a user or, in CI, a service principal.
resource deployerBlobAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (containerName, i) in deployerContainerNames: {
    name: guid(deployerContainers[i].id, deployerPrincipalId, roles.storageBlobDataContributor)
    scope: deployerContainers[i]
    properties: {
      principalId: deployerPrincipalId
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
      description: 'Local run of the Language job archiver: blobs of container ${containerName}.'
    }
  }
]

resource deployerQueueAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (queueName, i) in deployerQueueNames: {
    name: guid(deployerQueues[i].id, deployerPrincipalId, roles.storageQueueDataContributor)
    scope: deployerQueues[i]
    properties: {
      principalId: deployerPrincipalId
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
      description: 'Local run of the Language job archiver: messages of queue ${queueName}.'
    }
  }
]

resource deployerEventsSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (queueName, i) in deployerEventsQueueNames: {
    name: guid(eventsQueue.id, deployerPrincipalId, roles.storageQueueDataMessageSender)
    scope: eventsQueue
    properties: {
      principalId: deployerPrincipalId
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageSender)
      description: 'Local run of the Language job archiver: send archive events on queue ${queueName}.'
    }
  }
]

resource deployerEventsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (queueName, i) in deployerEventsQueueNames: {
    name: guid(eventsQueue.id, deployerPrincipalId, roles.storageQueueDataReader)
    scope: eventsQueue
    properties: {
      principalId: deployerPrincipalId
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataReader)
      description: 'Local run of the Language job archiver: measure the backlog of queue ${queueName}.'
    }
  }
]

// The neighbours. principalType is left out: a neighbour may be a managed identity, an application's
// service principal or a group.
resource upstreamJobsSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principalId in upstreamPrincipalIds: {
    name: guid(jobQueues[0].id, principalId, roles.storageQueueDataMessageSender)
    scope: jobQueues[0]
    properties: {
      principalId: principalId
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageSender)
      description: 'Upstream of the Language job archiver: enqueue job ids on queue ${jobsQueueName}.'
    }
  }
]

resource consumerEventsProcessor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principalId in consumerEventsPrincipalIds: {
    name: guid(eventsQueue.id, principalId, roles.storageQueueDataMessageProcessor)
    scope: eventsQueue
    properties: {
      principalId: principalId
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageProcessor)
      description: 'Consumer of the Language job archiver: receive and delete archive events on queue ${eventsQueueName}.'
    }
  }
]

resource consumerArchiveReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principalId in consumerPrincipalIds: {
    name: guid(appContainers[0].id, principalId, roles.storageBlobDataReader)
    scope: appContainers[0]
    properties: {
      principalId: principalId
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
      description: 'Consumer of the Language job archiver: read the archive in container ${archiveContainerName}.'
    }
  }
]
