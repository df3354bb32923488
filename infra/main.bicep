// Language job archiver: everything `azd up` deploys. Keyless throughout: the app runs as a
// user-assigned managed identity with data-plane roles (single containers and queues for the app's
// data, the account for the Functions host's storage as Microsoft documents it), the storage account
// and the Language account refuse keys, telemetry is Entra-authenticated.
// Day 2: the alerts watch the app's heartbeat and its queues' backlog; the neighbours' identities
// (upstreamPrincipalIds, consumerPrincipalIds) get least-privilege grants; the archive is tiered
// and, on request, write-once (archiveImmutableDays).
// Modules (infra/modules/, one concern each): identity, monitoring, storage, language (new account),
// language-access (role + endpoint, new or existing account), functionapp, roles, alerts, workbook,
// and with vnetEnabled network (VNet integration, private endpoints and their DNS zones).

targetScope = 'subscription'

@description('azd environment name; names the resource group and seeds the resource names.')
@minLength(1)
@maxLength(64)
param environmentName string

@description('Region of every resource (must offer Flex Consumption).')
@minLength(1)
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the deploying principal (azd sets AZURE_PRINCIPAL_ID); empty: none.')
param principalId string = ''

@description('Grant the deploying principal data access to the containers, queues and Language account, to run the app locally against them. On for a person\'s own azd up; the pipeline sets GRANT_DEPLOYER_ACCESS=false (main.parameters.json), so its identity gets no data-plane access.')
param grantDeployerAccess bool = true

@description('Container of the archive (app setting ARCHIVE_CONTAINER). The ledger is "<this>-ledger".')
@minLength(3)
@maxLength(56)
param archiveContainerName string = 'entity-archive'

@description('Queue the poll function listens on (app setting JOBS_QUEUE). The poison queue is "<this>-poison".')
@minLength(3)
@maxLength(56)
param jobsQueueName string = 'language-jobs'

@description('Queue on which every archived job is announced as a CloudEvents event (app setting EVENTS_QUEUE); consumers subscribe to it (docs/deploy.md).')
@minLength(3)
@maxLength(63)
param eventsQueueName string = 'archive-events'

@description('Announce every archived job on the events queue (app setting EVENTS_QUEUE). False: EVENTS_QUEUE is left unset, and neither the queue nor any role on it is created.')
param eventsEnabled bool = true

@description('Seconds an event stays on the events queue unread (EVENTS_TIME_TO_LIVE_SECONDS, 60 to 2592000): with no consumer, the queue does not grow for ever.')
param eventsTimeToLiveSeconds string = '604800'

@description('Principal ids (object ids) of the upstream systems that submit Language jobs and enqueue their ids: Storage Queue Data Message Sender on the jobs queue and Cognitive Services Language Reader (submits analyze-text jobs) on the Language account.')
param upstreamPrincipalIds array = []

@description('Principal ids of the consumers of the archive events: Storage Queue Data Message Processor on the events queue and Storage Blob Data Reader on the archive container.')
param consumerPrincipalIds array = []

@description('Move archive blobs to the Cool tier this many days after they were written (Cool bills a 30-day minimum stay).')
@minValue(1)
param archiveCoolAfterDays int = 30

@description('Move archive blobs to the Cold tier this many days after they were written (Cold bills a 90-day minimum stay); more than archiveCoolAfterDays.')
@minValue(2)
param archiveColdAfterDays int = 90

@description('Delete archive blobs this many days after they were written; 0: never. Deleting records is a retention decision the template does not make for you.')
@minValue(0)
param archiveDeleteAfterDays int = 0

@description('Version-level immutability (WORM) of the archive container: every blob version is protected from change and deletion for this many days; 0: off. Blocks erasure requests for that long (docs/operations.md).')
@minValue(0)
@maxValue(146000)
param archiveImmutableDays int = 0

@description('api-version of every Language call (app setting LANGUAGE_API_VERSION).')
param languageApiVersion string = '2024-11-01'

@description('First wait after a job is seen unfinished, seconds (POLL_INITIAL_DELAY_SECONDS).')
param pollInitialDelaySeconds string = '5'

@description('Cap of the poll backoff, seconds (POLL_MAX_DELAY_SECONDS).')
param pollMaxDelaySeconds string = '300'

@description('The most requests a minute that the app sends to the Language resource, all instances together (LANGUAGE_MAX_REQUESTS_PER_MINUTE). 600 leaves 400 of the S tier\'s 1,000 for the upstream\'s submissions; on F0/S0 set 200 or less.')
param languageMaxRequestsPerMinute string = '600'

@description('NCRONTAB of the timer sweep (SWEEP_SCHEDULE).')
param sweepSchedule string = '0 */5 * * * *'

@description('Overdue margin after which the sweep re-drives a pending job, seconds (SWEEP_GRACE_SECONDS).')
param sweepGraceSeconds string = '300'

@description('Name of an existing Azure AI Language account to use instead of creating one (it must have a custom subdomain); empty: create one.')
param existingLanguageAccountName string = ''

@description('Resource group of that existing account; empty: the resource group this template creates.')
param existingLanguageResourceGroupName string = ''

@description('Pricing tier of a new Language account.')
@allowed([
  'F0'
  'S'
])
param languageSkuName string = 'S'

@description('Public network access of a new Language account.')
@allowed([
  'Enabled'
  'Disabled'
])
param languagePublicNetworkAccess string = 'Enabled'

@description('Built-in Language role of the app: Reader reads and cancels analyze-text jobs (all the app needs); Writer adds authoring rights it never uses (see modules/language-access.bicep).')
@allowed([
  'Reader'
  'Writer'
])
param languageRole string = 'Reader'

@description('Most Flex Consumption instances. 40 is the lowest maximum every region accepts (below 40: only some regions, elsewhere InvalidMaximumInstanceCount). The Language rate limit, not compute, bounds the app (docs/deploy.md, poll budget).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of each Flex Consumption instance, MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Redundancy of the storage account (archive, ledger, queues); geo-redundant by default: the archive is the only copy of results the service purges after 24 hours.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param storageSkuName string = 'Standard_GRS'

@description('Send storage write/delete resource logs to Log Analytics (off: every poll writes, so they cost more per job than the job).')
param enableStorageLogs bool = false

@description('Also grant the app Storage Blob Data Owner on the whole storage account (Microsoft\'s template default). Off (default): Owner on the host\'s own containers and the deployment container only, Contributor on the archive and the ledger (modules/roles.bicep).')
param hostBlobOwnerOnAccount bool = false

@description('Private networking: VNet integration of the app, private endpoints (with private DNS zones) for storage blob/queue/table and the Language account, and public network access Disabled on storage and a new Language account. Off: today\'s public endpoints, Entra ID only. See docs/deploy.md, "Private networking".')
param vnetEnabled bool = false

@description('Address space of the virtual network (vnetEnabled).')
param vnetAddressPrefix string = '10.0.0.0/16'

@description('Subnet of the app\'s VNet integration, delegated to Microsoft.App/environments (vnetEnabled).')
param appSubnetAddressPrefix string = '10.0.0.0/24'

@description('Subnet of the private endpoints (vnetEnabled).')
param privateEndpointSubnetAddressPrefix string = '10.0.1.0/24'

@description('E-mail address for the alerts; empty: an action group without receivers.')
param alertEmail string = ''

@description('Alert when the p95 of the archive lag (job\'s lastUpdatedDateTime to archivedAt) over an hour exceeds this many seconds.')
@minValue(1)
param archiveLagP95AlertSeconds int = 900

@description('Alert when no sweep has run for this many minutes (three periods of the default 5-minute SWEEP_SCHEDULE).')
@allowed([
  15
  30
  45
  60
  120
  180
  360
])
param heartbeatMissingAlertMinutes int = 15

@description('Alert when the jobs queue\'s first visible message has waited longer than this many seconds (keep well above POLL_MAX_DELAY_SECONDS).')
@minValue(60)
param jobsQueueAgeAlertSeconds int = 1800

@description('Alert when the events queue holds more than this many events (eventsEnabled).')
@minValue(1)
param eventsQueueBacklogAlertMessages int = 1000

var tags = {
  'azd-env-name': environmentName
}
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var ledgerContainerName = '${archiveContainerName}-ledger'
var poisonQueueName = '${jobsQueueName}-poison'
var deploymentContainerName = 'app-package'
var useExistingLanguage = !empty(existingLanguageAccountName)
var languageAccountName = useExistingLanguage ? existingLanguageAccountName : 'lang-${resourceToken}'
var languageResourceGroupName = (useExistingLanguage && !empty(existingLanguageResourceGroupName)) ? existingLanguageResourceGroupName : resourceGroup.name
var deployerPrincipalId = grantDeployerAccess ? principalId : ''
// The application's settings, by DESIGN.md's names (the host's identity-based storage and
// telemetry settings are added by the function app module). No Language key: the app uses its identity.
var appSettings = {
  LANGUAGE_ENDPOINT: languageAccess.outputs.endpoint
  LANGUAGE_API_VERSION: languageApiVersion
  ARCHIVE_CONTAINER: archiveContainerName
  JOBS_QUEUE: jobsQueueName
  POLL_INITIAL_DELAY_SECONDS: pollInitialDelaySeconds
  POLL_MAX_DELAY_SECONDS: pollMaxDelaySeconds
  SWEEP_SCHEDULE: sweepSchedule
  SWEEP_GRACE_SECONDS: sweepGraceSeconds
  LANGUAGE_MAX_REQUESTS_PER_MINUTE: languageMaxRequestsPerMinute
}
// Events off: EVENTS_QUEUE unset, so the app announces nothing (and needs no events queue).
var eventsSettings = {
  EVENTS_QUEUE: eventsQueueName
  EVENTS_TIME_TO_LIVE_SECONDS: eventsTimeToLiveSeconds
}

resource resourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: resourceGroup
  params: {
    name: 'id-func-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: resourceGroup
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: resourceGroup
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    storageSkuName: storageSkuName
    deploymentContainerName: deploymentContainerName
    archiveContainerName: archiveContainerName
    ledgerContainerName: ledgerContainerName
    jobsQueueName: jobsQueueName
    poisonQueueName: poisonQueueName
    eventsQueueName: eventsQueueName
    eventsEnabled: eventsEnabled
    archiveCoolAfterDays: archiveCoolAfterDays
    archiveColdAfterDays: archiveColdAfterDays
    archiveDeleteAfterDays: archiveDeleteAfterDays
    archiveImmutableDays: archiveImmutableDays
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    enableStorageLogs: enableStorageLogs
    privateAccessOnly: vnetEnabled
  }
}

module language 'modules/language.bicep' = if (!useExistingLanguage) {
  name: 'language'
  scope: resourceGroup
  params: {
    name: languageAccountName
    location: location
    tags: tags
    languageSkuName: languageSkuName
    publicNetworkAccess: vnetEnabled ? 'Disabled' : languagePublicNetworkAccess
  }
}

module languageAccess 'modules/language-access.bicep' = {
  name: 'language-access'
  scope: az.resourceGroup(languageResourceGroupName)
  params: {
    accountName: languageAccountName
    appPrincipalId: identity.outputs.principalId
    deployerPrincipalId: deployerPrincipalId
    languageRole: languageRole
    upstreamPrincipalIds: upstreamPrincipalIds
  }
  // The account (new) or at least the app's resource group must exist before the grant.
  dependsOn: [
    resourceGroup
    language
  ]
}

// The private endpoints target the Language account whether this template created it or not; an
// existing account keeps its own public network setting (docs/deploy.md, "Private networking").
module network 'modules/network.bicep' = if (vnetEnabled) {
  name: 'network'
  scope: resourceGroup
  params: {
    name: 'vnet-${resourceToken}'
    location: location
    tags: tags
    nameSuffix: resourceToken
    addressPrefix: vnetAddressPrefix
    appSubnetPrefix: appSubnetAddressPrefix
    privateEndpointSubnetPrefix: privateEndpointSubnetAddressPrefix
    storageAccountId: storage.outputs.id
    languageAccountId: languageAccess.outputs.id
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: resourceGroup
  params: {
    storageAccountName: storage.outputs.name
    archiveContainerName: archiveContainerName
    ledgerContainerName: ledgerContainerName
    deploymentContainerName: deploymentContainerName
    jobsQueueName: jobsQueueName
    poisonQueueName: poisonQueueName
    eventsQueueName: eventsQueueName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appPrincipalId: identity.outputs.principalId
    deployerPrincipalId: deployerPrincipalId
    hostBlobOwnerOnAccount: hostBlobOwnerOnAccount
    eventsEnabled: eventsEnabled
    upstreamPrincipalIds: upstreamPrincipalIds
    consumerPrincipalIds: consumerPrincipalIds
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: resourceGroup
  params: {
    name: 'func-${resourceToken}'
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    serviceName: 'api'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    // Reading the network's output also makes the app wait for the endpoints and their DNS records.
    virtualNetworkSubnetId: vnetEnabled ? network.outputs.appSubnetId : ''
    appSettings: union(appSettings, eventsEnabled ? eventsSettings : {})
  }
  // The host starts as soon as the app exists: its storage and queue grants must be in place.
  dependsOn: [
    roles
  ]
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: resourceGroup
  params: {
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    location: location
    tags: tags
    actionGroupName: 'ag-${resourceToken}'
    alertNamePrefix: 'alert-${resourceToken}'
    alertEmail: alertEmail
    jobsQueueName: jobsQueueName
    eventsEnabled: eventsEnabled
    archiveLagP95Seconds: archiveLagP95AlertSeconds
    heartbeatMissingMinutes: heartbeatMissingAlertMinutes
    jobsQueueAgeSeconds: jobsQueueAgeAlertSeconds
    eventsQueueBacklogMessages: eventsQueueBacklogAlertMessages
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: resourceGroup
  params: {
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    location: location
    tags: tags
    jobsQueueName: jobsQueueName
  }
}

// azd stores these in the environment (.azure/<env>/.env); docs/deploy.md uses them for local runs.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = resourceGroup.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AzureWebJobsStorage__blobServiceUri string = storage.outputs.blobEndpoint
output AzureWebJobsStorage__queueServiceUri string = storage.outputs.queueEndpoint
output LANGUAGE_ENDPOINT string = languageAccess.outputs.endpoint
output LANGUAGE_API_VERSION string = languageApiVersion
output ARCHIVE_CONTAINER string = archiveContainerName
output JOBS_QUEUE string = jobsQueueName
output EVENTS_QUEUE string = eventsEnabled ? eventsQueueName : ''
output EVENTS_TIME_TO_LIVE_SECONDS string = eventsTimeToLiveSeconds
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.applicationInsightsConnectionString
