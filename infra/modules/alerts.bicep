// Alerts on what the app (and the Functions host) log to Application Insights: a message poisoned,
// a job that ended notFound or timedOut. Log search alerts over the component's traces, stateful
// (one notification per incident, resolved when the traces stop), and an action group that emails
// the operator when an address is given.

@description('Resource id of the Application Insights component the app logs to.')
param applicationInsightsId string

@description('Azure region of the alert rules (the component\'s).')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Name of the action group.')
param actionGroupName string

@description('Prefix of the alert rule names.')
param alertNamePrefix string

@description('E-mail address that receives the alerts; empty: the action group has no receiver yet.')
param alertEmail string = ''

@description('Poll queue (for the host\'s own poison message): the alert names it.')
param jobsQueueName string

// THE log markers the app writes (the exact substrings of its trace messages). This is the one
// place in the infrastructure that names them; the app's logging must emit them verbatim.
var logMarkers = {
  poisoned: 'archiver.poisoned'
  notFound: 'archiver.outcome status=notFound'
  timedOut: 'archiver.outcome status=timedOut'
}

// The Functions host's own line when a message exceeds maxDequeueCount (a fault the app raised on
// every attempt) and the host moves it to "<queue>-poison": the app cannot log that one itself.
// (Storage's QueueMessageCount metric is per account, not per queue, so it cannot watch the poison
// queue alone.)
var hostPoisonMarker = 'Moving message to queue \'${jobsQueueName}-poison\''

var rules = [
  {
    name: 'poisoned-message'
    severity: 2
    description: 'A queue message could never succeed and was sent to the poison queue by the app (${logMarkers.poisoned}).'
    query: 'traces | where message contains_cs "${logMarkers.poisoned}"'
  }
  {
    name: 'host-poisoned-message'
    severity: 1
    description: 'The Functions host moved a message to ${jobsQueueName}-poison after maxDequeueCount failed attempts: the app raised on every attempt (storage down, a bug). The sweep re-drives the job from the ledger; find the cause in the exceptions.'
    query: 'traces | where message contains_cs "${hostPoisonMarker}"'
  }
  {
    name: 'job-not-found'
    severity: 3
    description: 'A job ended notFound: the Language service returned 404 for a job never seen to exist (${logMarkers.notFound}).'
    query: 'traces | where message contains_cs "${logMarkers.notFound}"'
  }
  {
    name: 'job-timed-out'
    severity: 2
    description: 'A job ended timedOut: still unfinished at its expiry margin, the app gave up and asked the service to cancel it (${logMarkers.timedOut}).'
    query: 'traces | where message contains_cs "${logMarkers.timedOut}"'
  }
]

var emailReceivers = [
  {
    name: 'operator'
    emailAddress: alertEmail
    useCommonAlertSchema: true
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'archiver'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : emailReceivers
  }
}

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for rule in rules: {
    name: '${alertNamePrefix}-${rule.name}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: 'Language job archiver: ${rule.name}'
      description: rule.description
      severity: rule.severity
      enabled: true
      scopes: [
        applicationInsightsId
      ]
      // Every 5 minutes over the last 15: ingestion delay cannot make a trace fall between two
      // windows, and autoMitigate keeps the overlapping windows to one notification.
      evaluationFrequency: 'PT5M'
      windowSize: 'PT15M'
      autoMitigate: true
      criteria: {
        allOf: [
          {
            query: rule.query
            timeAggregation: 'Count'
            operator: 'GreaterThan'
            threshold: 0
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      actions: {
        actionGroups: [
          actionGroup.id
        ]
      }
    }
  }
]

output actionGroupId string = actionGroup.id
output logMarkers object = logMarkers
