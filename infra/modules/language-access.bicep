// Grants data-plane access to the Azure AI Language account, new or existing, and reports its
// endpoint. Deployed into the account's resource group, so the assignment is scoped to the account
// itself (the narrowest scope Azure RBAC offers for Cognitive Services).
//
// Which role. The app calls two data-plane operations (CONTRACT.md §4):
//   GET  /language/analyze-text/jobs/{jobId}          a read data action (Language/*/read)
//   POST /language/analyze-text/jobs/{jobId}:cancel   data action .../Language/analyze-text/jobscancel/action
// Microsoft's built-in roles page (AI + machine learning) lists both among the data actions of
//   Cognitive Services Language Reader  7628b7b8-a8b2-4cdc-b46f-e9b35248918e
// ("jobscancel/action: Cancel a long-running Text Analysis job"), so Reader reads and cancels jobs:
// it is the default. It has no control-plane action beyond */read, so it cannot list the keys.
//   Cognitive Services Language Writer  f2310ca1-dc64-4889-bb49-c8e0fa3d47a8  adds Language authoring
//       writes (projects, training, deployments) that the app never uses: allowed only as an option.
// Never: Cognitive Services User (can list keys), Cognitive Services Contributor / Contributor
// (control plane, keys).
//
// The upstream systems (upstreamPrincipalIds) submit the analyze-text jobs: POST
// /language/analyze-text/jobs, data action .../Language/analyze-text/jobs/action. Language Reader
// lists it too (with analyze-text/action, the read of the results and jobscancel), so Reader is the
// least-privilege built-in role that submits jobs with the account's local auth disabled; Writer
// would add authoring writes (projects, training), Cognitive Services User the listing of keys.

@description('Name of the Language account (in this deployment\'s resource group scope).')
param accountName string

@description('Principal id (object id) of the app\'s managed identity.')
param appPrincipalId string

@description('Principal id of the deploying user to grant the same data access for local runs; empty: none.')
param deployerPrincipalId string = ''

@description('Principal ids of the upstream systems that submit analyze-text jobs (Cognitive Services Language Reader).')
param upstreamPrincipalIds array = []

@description('Reader: read and cancel analyze-text jobs, all the app does (default). Writer: adds authoring rights the app never uses.')
@allowed([
  'Reader'
  'Writer'
])
param languageRole string = 'Reader'

var languageRoleIds = {
  Reader: '7628b7b8-a8b2-4cdc-b46f-e9b35248918e' // Cognitive Services Language Reader
  Writer: 'f2310ca1-dc64-4889-bb49-c8e0fa3d47a8' // Cognitive Services Language Writer
}
var roleDefinitionId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', languageRoleIds[languageRole])
var submitterRoleDefinitionId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', languageRoleIds.Reader)

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: accountName
}

resource appLanguageRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, roleDefinitionId)
  scope: account
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: roleDefinitionId
    description: 'Language job archiver: read analyze-text jobs (and cancel timed-out ones).'
  }
}

resource deployerLanguageRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(account.id, deployerPrincipalId, roleDefinitionId)
  scope: account
  properties: {
    principalId: deployerPrincipalId
    roleDefinitionId: roleDefinitionId
    description: 'Local run of the Language job archiver by the deploying user.'
  }
}

resource upstreamLanguageRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principalId in upstreamPrincipalIds: {
    name: guid(account.id, principalId, submitterRoleDefinitionId)
    scope: account
    properties: {
      principalId: principalId
      roleDefinitionId: submitterRoleDefinitionId
      description: 'Upstream of the Language job archiver: submit analyze-text jobs.'
    }
  }
]

// Custom-subdomain endpoint, e.g. https://<name>.cognitiveservices.azure.com/ (the app strips the slash).
output endpoint string = account.properties.endpoint
output id string = account.id
