// Grants data-plane access to the Azure AI Language account, new or existing, and reports its
// endpoint. Deployed into the account's resource group, so the assignment is scoped to the account
// itself (the narrowest scope Azure RBAC offers for Cognitive Services).
//
// Which role. The app calls two data-plane operations (CONTRACT.md §4):
//   GET  /language/analyze-text/jobs/{jobId}          a read data action
//   POST /language/analyze-text/jobs/{jobId}:cancel   an action (timedOut jobs are cancelled)
// Built-in candidates, least privileged first:
//   Cognitive Services Language Reader  7628b7b8-a8b2-4cdc-b46f-e9b35248918e  Language data actions
//       matching */read only: GET works, :cancel is denied (403).
//   Cognitive Services Data Reader (Preview)  b59867f0-fa02-499b-be73-45a86b5b3e1c  */read on every
//       Cognitive Services kind: broader than Language Reader and still no :cancel.
//   Cognitive Services Language Writer  f2310ca1-dc64-4889-bb49-c8e0fa3d47a8  Language data actions
//       (read, submit, cancel; authoring writes except deployment/publishing): the least privileged
//       built-in role that can both read and cancel a job. No control-plane action beyond */read, so
//       it cannot list the account's keys.
// Never: Cognitive Services User (can list keys), Cognitive Services Contributor / Contributor
// (control plane, keys). Default: Writer, so that timed-out jobs are really cancelled. 'Reader'
// grants GET only; choose it if the app must not be able to change anything on the account, and
// accept that the cancel of a timed-out job is refused (the app must treat that 403 as best-effort).

@description('Name of the Language account (in this deployment\'s resource group scope).')
param accountName string

@description('Principal id (object id) of the app\'s managed identity.')
param appPrincipalId string

@description('Principal id of the deploying user to grant the same data access for local runs; empty: none.')
param deployerPrincipalId string = ''

@description('Writer: read and cancel jobs (default). Reader: read jobs only, cancel is refused.')
@allowed([
  'Writer'
  'Reader'
])
param languageRole string = 'Writer'

var languageRoleIds = {
  Reader: '7628b7b8-a8b2-4cdc-b46f-e9b35248918e' // Cognitive Services Language Reader
  Writer: 'f2310ca1-dc64-4889-bb49-c8e0fa3d47a8' // Cognitive Services Language Writer
}
var roleDefinitionId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', languageRoleIds[languageRole])

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

// Custom-subdomain endpoint, e.g. https://<name>.cognitiveservices.azure.com/ (the app strips the slash).
output endpoint string = account.properties.endpoint
output id string = account.id
