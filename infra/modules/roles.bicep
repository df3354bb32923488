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
// - Deployment container: Storage Blob Data Contributor. Flex Consumption writes the package there
//   with this identity on deploy and reads it on every cold start (functionAppConfig.deployment).
// - The Functions host's storage (identity-based AzureWebJobsStorage): by default Storage Blob Data
//   Owner on the whole account, the role Microsoft's functions-reference ("Connecting to host storage
//   with an identity") documents and the official Flex Consumption azd template grants: the host
//   creates its containers and takes blob leases (primary-host and singleton locks, the timer
//   trigger's schedule status). It covers every container of the account, the archive included.
//   The app keeps its Language request budget there too (azure-webjobs-hosts/archiver/..., ETag
//   compare-and-swap), so either grant below serves it.
//   hostBlobOwnerOnAccount = false keeps only the Storage Blob Data Contributor grants on
//   azure-webjobs-hosts and azure-webjobs-secrets (created by storage.bicep): narrower, but no
//   deployment has proven that the host works with it (a missing right shows up as a host that
//   cannot take its locks, so the timer sweep never runs).
// - Tables: Storage Table Data Contributor on the account. The host writes its diagnostic events to
//   tables it creates (one per month) through AzureWebJobsStorage__tableServiceUri and logs warnings
//   when it cannot; table names vary, so the account is the narrowest scope. The app uses no table.
// - Jobs queue and poison queue: Storage Queue Data Contributor. Receive, delete, update (the
//   reschedule rewrites the message and its visibility) and send on the jobs queue; send to the
//   poison queue and receive from it for the sweep; create-if-missing of the poison queue by the app
//   and by the host (queues/write). Message Processor + Sender lack update and create.
// - Events queue: Storage Queue Data Message Sender, the app only adds messages to it. This
//   template creates the queue, so the app's create-if-missing (only after a send answered 404)
//   never runs in Azure; the consumer's own identity gets Message Processor (docs/deploy.md).
// - Application Insights: Monitoring Metrics Publisher, so telemetry is accepted with an Entra token
//   (the component has local auth disabled). Reader roles cannot publish; nothing broader is needed.

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

@description('Grant Storage Blob Data Owner on the whole account, as Microsoft documents for AzureWebJobsStorage (default; see the header). Off: container-scoped grants only, not proven by a deployment.')
param hostBlobOwnerOnAccount bool = true

var roles = {
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// The Functions host's fixed container names (created by storage.bicep).
var hostContainerNames = [
  'azure-webjobs-hosts'
  'azure-webjobs-secrets'
]
var appContainerNames = concat([
  archiveContainerName
  ledgerContainerName
  deploymentContainerName
], hostContainerNames)
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
var deployerEventsQueueNames = grantDeployer ? [eventsQueueName] : []

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

resource appEventsSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventsQueue.id, appPrincipalId, roles.storageQueueDataMessageSender)
  scope: eventsQueue
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageSender)
    description: 'Language job archiver: send archive events on queue ${eventsQueueName}.'
  }
}

resource appHostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hostBlobOwnerOnAccount) {
  name: guid(storage.id, appPrincipalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    description: 'Functions host storage (AzureWebJobsStorage) as Microsoft documents it: account-wide blob data owner.'
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
