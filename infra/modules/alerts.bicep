// Alerts on the app's OpenTelemetry metrics and records in Application Insights (customMetrics and
// traces of the component): the app dead (no sweep heartbeat), the jobs queue's oldest message too
// old, the events queue's backlog (eventsEnabled), messages waiting on the poison queue, a message
// poisoned (the app's, and the host's own after maxDequeueCount), overdue jobs in the ledger, the
// archive lag's p95 above a threshold, jobs that ended notFound or timedOut, and Language throttling
// (429s) that persists. Log search alerts, stateful (one notification per incident, resolved when
// the condition clears), and an action group that e-mails the operator when an address is given.
//
// Why log search alerts, the heartbeat above all: a dead app emits nothing, and an alert must fire
// on that absence. A metric alert evaluates the time series it receives; with none it has nothing
// to compare and does not fire (Azure Monitor's metric alerts have no "treat no data as breaching"
// setting). A log search alert runs its query on a schedule whatever arrived: "summarize count()"
// over no rows is one row holding 0, which "LessThan 1" judges as breaching. The app's metrics
// also reach Application Insights as rows of customMetrics, not as platform metrics a metric alert
// could watch per dimension (the queue role) without the component's preview custom-metric
// dimensions.
//
// Application Insights stores an OpenTelemetry histogram as count/sum/min/max only (no buckets), so
// the p95 of the archive lag is computed over the lagSeconds dimension of the outcome records (one
// per archived job), not from the archiver.archive.lag histogram.

@description('Resource id of the Application Insights component the app sends telemetry to.')
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

@description('The events queue exists (main.bicep\'s eventsEnabled): alert on its backlog.')
param eventsEnabled bool = true

@description('Alert when no sweep has run for this many minutes: three periods of the default SWEEP_SCHEDULE (every 5 minutes). With a slower schedule, raise it to three of its periods.')
@allowed([
  15
  30
  45
  60
  120
  180
  360
])
param heartbeatMissingMinutes int = 15

@description('Alert when the jobs queue\'s first visible message has waited longer than this many seconds. Its age counts from insertion, so a rescheduled poll is already as old as its delay (POLL_MAX_DELAY_SECONDS, 300 by default) when it becomes visible: keep well above that.')
@minValue(60)
param jobsQueueAgeSeconds int = 1800

@description('Alert when the events queue holds more than this many events (approximate count): the consumer is down or too slow.')
@minValue(1)
param eventsQueueBacklogMessages int = 1000

@description('Alert when the p95 of the archive lag (job\'s lastUpdatedDateTime to archivedAt) over the last hour exceeds this many seconds.')
@minValue(1)
param archiveLagP95Seconds int = 900

// The app's telemetry names, as shared/telemetry.py defines them (tests/infra/consistency.py
// checks every one against the code).
var metrics = {
  jobsArchived: 'archiver.jobs.archived'
  messagesPoisoned: 'archiver.messages.poisoned'
  ledgerOverdue: 'archiver.ledger.overdue'
  languageRequests: 'archiver.language.requests'
  sweepRuns: 'archiver.sweep.runs'
  queueLength: 'archiver.queue.length'
  queueAge: 'archiver.queue.age'
}
var dimensions = {
  status: 'status'
  reason: 'reason'
  result: 'result'
  outcome: 'outcome'
  lagSeconds: 'lagSeconds'
  queue: 'queue'
}

// The Functions host's own line when a message exceeds maxDequeueCount (a fault the app raised on
// every attempt) and the host moves it to "<queue>-poison": the app cannot count that one itself.
// (Storage's QueueMessageCount metric is per account, not per queue, so it cannot watch the poison
// queue alone.)
var hostPoisonMarker = 'Moving message to queue \'${jobsQueueName}-poison\''

// Each query summarizes one measured column that must stay at 0 (the lag: under the threshold).
// Every 5 minutes over the last 15 (ingestion delay cannot make an item fall between two windows;
// autoMitigate keeps the overlapping windows to one notification); the lag over the last hour.
// The app's liveness and its queues' backlog (each sweep measures them: shared/backlog.py).
var heartbeatWindow = 'PT${heartbeatMissingMinutes}M'
var livenessRules = [
  {
    // The timer fires every sweep period whatever the load: no sweep for three periods means no
    // process runs the app (a failed deployment, a stopped app, the plan's quota, a revoked role
    // on the host's storage that keeps the host from starting).
    name: 'heartbeat-missing'
    severity: 1
    description: 'No sweep has run for ${heartbeatMissingMinutes} minutes (${metrics.sweepRuns} absent): the app is dead or its timer cannot fire. No job is being polled or archived.'
    // Points with a value only: an exporter that reported an idle interval as 0 must not count.
    query: 'customMetrics | where name == "${metrics.sweepRuns}" and valueSum > 0 | summarize runs = count()'
    measure: 'runs'
    aggregation: 'Total'
    operator: 'LessThan'
    threshold: 1
    window: heartbeatWindow
    frequency: 'PT5M'
  }
  {
    // Visible messages that wait are polls nobody takes: the app is not keeping up (scale limit,
    // request budget, a poll that fails) or not running at all.
    name: 'jobs-queue-oldest-message'
    severity: 2
    description: 'The first visible message of ${jobsQueueName} has waited more than ${jobsQueueAgeSeconds} s (${metrics.queueAge}, queue jobs): polls wait for the app; jobs may reach their 24-hour expiry.'
    query: 'customMetrics | where name == "${metrics.queueAge}" and tostring(customDimensions.${dimensions.queue}) == "jobs" | summarize age = max(valueMax)'
    measure: 'age'
    aggregation: 'Maximum'
    operator: 'GreaterThan'
    threshold: jobsQueueAgeSeconds
    window: 'PT15M'
    frequency: 'PT5M'
  }
  {
    // A poisoned message waits for an operator ('python -m cli replay-poison'); the poisoned-message
    // alerts below say when one arrives, this one as long as any is left.
    name: 'poison-queue-not-empty'
    severity: 3
    description: 'Messages wait on ${jobsQueueName}-poison (${metrics.queueLength}, queue poison): read their reasons, fix the cause, replay them with python -m cli replay-poison or delete them.'
    query: 'customMetrics | where name == "${metrics.queueLength}" and tostring(customDimensions.${dimensions.queue}) == "poison" | summarize messages = max(valueMax)'
    measure: 'messages'
    aggregation: 'Maximum'
    operator: 'GreaterThan'
    threshold: 0
    window: 'PT15M'
    frequency: 'PT15M'
  }
]
var eventsRules = [
  {
    // Events expire unread after EVENTS_TIME_TO_LIVE_SECONDS; a growing backlog warns before that.
    name: 'events-queue-backlog'
    severity: 2
    description: 'The events queue holds more than ${eventsQueueBacklogMessages} events (${metrics.queueLength}, queue events): the consumer is down or too slow. Unread events expire after EVENTS_TIME_TO_LIVE_SECONDS; python -m cli announce sends them again.'
    query: 'customMetrics | where name == "${metrics.queueLength}" and tostring(customDimensions.${dimensions.queue}) == "events" | summarize events = max(valueMax)'
    measure: 'events'
    aggregation: 'Maximum'
    operator: 'GreaterThan'
    threshold: eventsQueueBacklogMessages
    window: 'PT15M'
    frequency: 'PT5M'
  }
]

var outcomeRules = [
  {
    name: 'poisoned-message'
    severity: 2
    description: 'A queue message could never succeed and was sent to the poison queue by the app (${metrics.messagesPoisoned} > 0; its reason dimension says why).'
    query: 'customMetrics | where name == "${metrics.messagesPoisoned}" | summarize poisoned = sum(valueSum) by reason = tostring(customDimensions.${dimensions.reason})'
    measure: 'poisoned'
    aggregation: 'Total'
    operator: 'GreaterThan'
    threshold: 0
    window: 'PT15M'
    frequency: 'PT5M'
  }
  {
    name: 'host-poisoned-message'
    severity: 1
    description: 'The Functions host moved a message to ${jobsQueueName}-poison after maxDequeueCount failed attempts: the app raised on every attempt (storage down, a bug). The sweep re-drives the job from the ledger; find the cause in the exceptions.'
    query: 'traces | where message contains_cs "${hostPoisonMarker}" | summarize poisoned = count()'
    measure: 'poisoned'
    aggregation: 'Total'
    operator: 'GreaterThan'
    threshold: 0
    window: 'PT15M'
    frequency: 'PT5M'
  }
  {
    name: 'ledger-overdue'
    severity: 3
    description: 'A sweep found jobs whose next poll is overdue by more than SWEEP_GRACE_SECONDS (${metrics.ledgerOverdue} > 0): their messages were lost or poisoned. The sweep re-drives them; if this persists, the sweep itself fails (see its exceptions).'
    query: 'customMetrics | where name == "${metrics.ledgerOverdue}" | summarize overdue = max(valueMax)'
    measure: 'overdue'
    aggregation: 'Maximum'
    operator: 'GreaterThan'
    threshold: 0
    window: 'PT15M'
    frequency: 'PT5M'
  }
  {
    name: 'archive-lag-p95'
    severity: 2
    description: 'The p95 of the archive lag over the last hour exceeds ${archiveLagP95Seconds} s: jobs are archived late (polling backlog, Language throttling, storage faults).'
    query: 'traces | where tostring(customDimensions.${dimensions.outcome}) == "archived" | extend lag = todouble(customDimensions.${dimensions.lagSeconds}) | where isnotnull(lag) | summarize p95 = percentile(lag, 95)'
    measure: 'p95'
    aggregation: 'Maximum'
    operator: 'GreaterThan'
    threshold: archiveLagP95Seconds
    window: 'PT1H'
    frequency: 'PT15M'
  }
  {
    name: 'job-not-found'
    severity: 3
    description: 'A job ended notFound: the Language service returned 404 for a job never seen to exist (${metrics.jobsArchived} with status notFound).'
    query: 'customMetrics | where name == "${metrics.jobsArchived}" and tostring(customDimensions.${dimensions.status}) == "notFound" | summarize jobs = sum(valueSum)'
    measure: 'jobs'
    aggregation: 'Total'
    operator: 'GreaterThan'
    threshold: 0
    window: 'PT15M'
    frequency: 'PT5M'
  }
  {
    // One 429 now and then is the budget doing its job (the whole app slows down and climbs back);
    // 429s in more than half of the last six 5-minute bins mean the quota is used by someone else.
    name: 'language-throttled'
    severity: 2
    description: 'The Language resource answered 429 in more than 15 of the last 30 minutes (${metrics.languageRequests} with result throttled): others use the same quota (the upstream\'s submissions, another app). Lower LANGUAGE_MAX_REQUESTS_PER_MINUTE so that the app and the others fit the resource\'s limit, or raise the limit (tier).'
    query: 'customMetrics | where name == "${metrics.languageRequests}" and tostring(customDimensions.${dimensions.result}) == "throttled" | where valueSum > 0 | summarize throttledBins = dcount(bin(timestamp, 5m))'
    measure: 'throttledBins'
    aggregation: 'Maximum'
    operator: 'GreaterThan'
    threshold: 3
    window: 'PT30M'
    frequency: 'PT5M'
  }
  {
    name: 'job-timed-out'
    severity: 2
    description: 'A job ended timedOut: still unfinished at its expiry margin, the app gave up and asked the service to cancel it (${metrics.jobsArchived} with status timedOut).'
    query: 'customMetrics | where name == "${metrics.jobsArchived}" and tostring(customDimensions.${dimensions.status}) == "timedOut" | summarize jobs = sum(valueSum)'
    measure: 'jobs'
    aggregation: 'Total'
    operator: 'GreaterThan'
    threshold: 0
    window: 'PT15M'
    frequency: 'PT5M'
  }
]

var rules = concat(livenessRules, eventsEnabled ? eventsRules : [], outcomeRules)

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
      evaluationFrequency: rule.frequency
      windowSize: rule.window
      autoMitigate: true
      criteria: {
        allOf: [
          {
            query: rule.query
            timeAggregation: rule.aggregation
            metricMeasureColumn: rule.measure
            operator: rule.operator
            threshold: rule.threshold
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
output metricNames object = metrics
output dimensionNames object = dimensions
