// An Azure Monitor workbook on the Application Insights component: the archive's health at a
// glance, from the app's OpenTelemetry metrics (customMetrics) and its outcome records (traces).
// Application Insights keeps an OpenTelemetry histogram as count/sum/min/max only, so the lag
// percentiles come from the outcome records' lagSeconds dimension, not from archiver.archive.lag.

@description('Resource id of the Application Insights component the app sends telemetry to.')
param applicationInsightsId string

@description('Azure region of the workbook (the component\'s).')
param location string

@description('Tags for the workbook.')
param tags object = {}

@description('Display name of the workbook.')
param displayName string = 'Language job archiver'

@description('Poll queue: the host\'s own poison line names its poison queue.')
param jobsQueueName string

// The app's telemetry names, as shared/telemetry.py defines them (tests/infra/consistency.py
// checks every one against the code).
var metrics = {
  jobsArchived: 'archiver.jobs.archived'
  messagesPoisoned: 'archiver.messages.poisoned'
  polls: 'archiver.polls'
  archiveLag: 'archiver.archive.lag'
  ledgerPending: 'archiver.ledger.pending'
  ledgerOverdue: 'archiver.ledger.overdue'
  languageRequests: 'archiver.language.requests'
  languageWait: 'archiver.language.wait'
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
var hostPoisonMarker = 'Moving message to queue \'${jobsQueueName}-poison\''

var charts = [
  {
    title: 'Heartbeat: sweep runs per 15 minutes (3 with the default schedule; 0: the app is dead, alert heartbeat-missing)'
    visualization: 'timechart'
    query: 'customMetrics | where name == "${metrics.sweepRuns}" | summarize runs = sum(valueSum) by bin(timestamp, 15m)'
  }
  {
    title: 'Queues: approximate messages by queue (jobs, poison, events; alerts poison-queue-not-empty, events-queue-backlog)'
    visualization: 'timechart'
    query: 'customMetrics | where name == "${metrics.queueLength}" | extend queue = tostring(customDimensions.${dimensions.queue}) | summarize messages = max(valueMax) by queue, bin(timestamp, 15m)'
  }
  {
    title: 'Queues: seconds the first visible message has waited, by queue (alert jobs-queue-oldest-message)'
    visualization: 'timechart'
    query: 'customMetrics | where name == "${metrics.queueAge}" | extend queue = tostring(customDimensions.${dimensions.queue}) | summarize ageSeconds = max(valueMax) by queue, bin(timestamp, 15m)'
  }
  {
    title: 'Jobs archived, by status'
    visualization: 'timechart'
    query: 'customMetrics | where name == "${metrics.jobsArchived}" | extend status = tostring(customDimensions.${dimensions.status}) | summarize jobs = sum(valueSum) by status, bin(timestamp, 15m)'
  }
  {
    title: 'Archive lag (seconds from the job\'s lastUpdatedDateTime to archivedAt): p50, p95, max'
    visualization: 'timechart'
    query: 'traces | where tostring(customDimensions.${dimensions.outcome}) == "archived" | extend lag = todouble(customDimensions.${dimensions.lagSeconds}) | where isnotnull(lag) | summarize p50 = percentile(lag, 50), p95 = percentile(lag, 95), max = max(lag) by bin(timestamp, 1h)'
  }
  {
    title: 'Polls per archived job, and polls by result'
    visualization: 'timechart'
    query: 'customMetrics | where name in ("${metrics.polls}", "${metrics.jobsArchived}") | summarize polls = sumif(valueSum, name == "${metrics.polls}"), failed = sumif(valueSum, name == "${metrics.polls}" and tostring(customDimensions.${dimensions.result}) == "failed"), jobs = sumif(valueSum, name == "${metrics.jobsArchived}") by bin(timestamp, 1h) | extend pollsPerJob = iff(jobs > 0, polls / jobs, real(null)) | project timestamp, pollsPerJob, polls, failed'
  }
  {
    title: 'Poisoned messages: the app\'s, by reason code, and the host\'s (raised on every attempt)'
    visualization: 'barchart'
    query: 'union (customMetrics | where name == "${metrics.messagesPoisoned}" | extend reason = tostring(customDimensions.${dimensions.reason}) | summarize messages = sum(valueSum) by reason, bin(timestamp, 1h)), (traces | where message contains_cs "${hostPoisonMarker}" | summarize messages = todouble(count()) by reason = "host: maxDequeueCount", bin(timestamp, 1h))'
  }
  {
    title: 'Ledger: pending and overdue jobs found by each sweep'
    visualization: 'timechart'
    query: 'customMetrics | where name in ("${metrics.ledgerPending}", "${metrics.ledgerOverdue}") | summarize jobs = max(valueMax) by name, bin(timestamp, 15m)'
  }
  {
    title: 'Language requests a minute by result (ok, throttled, error), and the mean wait for the request budget (s)'
    visualization: 'timechart'
    query: 'customMetrics | where name in ("${metrics.languageRequests}", "${metrics.languageWait}") | summarize ok = sumif(valueSum, name == "${metrics.languageRequests}" and tostring(customDimensions.${dimensions.result}) == "ok"), throttled = sumif(valueSum, name == "${metrics.languageRequests}" and tostring(customDimensions.${dimensions.result}) == "throttled"), error = sumif(valueSum, name == "${metrics.languageRequests}" and tostring(customDimensions.${dimensions.result}) == "error"), waitSum = sumif(valueSum, name == "${metrics.languageWait}"), waits = sumif(valueCount, name == "${metrics.languageWait}") by bin(timestamp, 1m) | extend meanWaitSeconds = iff(waits > 0, waitSum / waits, real(null)) | project timestamp, ok, throttled, error, meanWaitSeconds'
  }
  {
    title: 'Archive lag histogram totals (${metrics.archiveLag}: count, mean, max per hour)'
    visualization: 'table'
    query: 'customMetrics | where name == "${metrics.archiveLag}" | summarize jobs = sum(valueCount), meanSeconds = sum(valueSum) / sum(valueCount), maxSeconds = max(valueMax) by bin(timestamp, 1h) | order by timestamp desc'
  }
]

var content = {
  version: 'Notebook/1.0'
  items: [
    for (chart, index) in charts: {
      type: 3
      name: 'chart-${index}'
      content: {
        version: 'KqlItem/1.0'
        title: chart.title
        query: chart.query
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: chart.visualization
        timeContext: {
          durationMs: 86400000
        }
        size: 0
      }
    }
  ]
  isLocked: false
  fallbackResourceIds: [
    applicationInsightsId
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(applicationInsightsId, 'language-job-archiver-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    description: 'Archive health: heartbeat, queue backlog, jobs by status, archive lag, polls per job, poison, ledger pending and overdue.'
    version: 'Notebook/1.0'
    sourceId: applicationInsightsId
    serializedData: string(content)
  }
}

output workbookId string = workbook.id
output metricNames object = metrics
output dimensionNames object = dimensions
