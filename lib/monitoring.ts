import { Duration } from 'aws-cdk-lib'
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2'
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch'
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions'
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import type * as lambda from 'aws-cdk-lib/aws-lambda'
import * as logs from 'aws-cdk-lib/aws-logs'
import type * as sns from 'aws-cdk-lib/aws-sns'
import type * as sqs from 'aws-cdk-lib/aws-sqs'
import type * as synthetics from 'aws-cdk-lib/aws-synthetics'
import { Construct } from 'constructs'
import { REPORTED_REUSE_DIMENSION } from '../functions/adapters/observability.js'
import { ALARM_THRESHOLDS, type AlarmThresholds } from './defaults.js'
import type { SigningAlgorithm } from './signing-keys.js'

/** Where the functions publish their metrics (Powertools EMF; `service` is its default dimension). */
export const METRICS_NAMESPACE = 'TokenService'
const SERVICE_DIMENSION = { service: 'token-service' }

export interface TokenServiceMonitoringProps {
  readonly api: apigwv2.IHttpApi
  /** Every function of the service, by name. */
  readonly functions: Readonly<Record<string, lambda.IFunction>>
  /**
   * The synthetic check of discovery and JWKS and how often it runs: an alarm when it fails
   * or does not run. @default none
   */
  readonly canary?: { readonly canary: synthetics.Canary; readonly every: Duration }
  /** Each function's timeout, by the same names: an alarm per function near it. @default none */
  readonly timeouts?: Readonly<Record<string, Duration>>
  /** Log groups of the functions that call KMS: a metric filter counts throttled calls. */
  readonly kmsCallerLogs: readonly logs.ILogGroup[]
  readonly table: dynamodb.ITable
  readonly algorithm: SigningAlgorithm
  /** Notified when an alarm fires, and when it is OK again. @default no action */
  readonly alarmTopic?: sns.ITopic
  /** @default ALARM_THRESHOLDS */
  readonly thresholds?: AlarmThresholds
  /**
   * The stage whose per-route metrics (`detailedMetricsEnabled`) give each route's p99
   * latency alarm, and its routes. @default no latency alarm per route
   */
  readonly routes?: {
    readonly stage: apigwv2.IHttpStage
    readonly routes: readonly { readonly method: string; readonly path: string }[]
    /** The routes that run scrypt, `METHOD /path`: `passwordLatencyP99Ms`. */
    readonly passwordRoutes: readonly string[]
  }
  /** The API's access logs: a metric filter counts the 429 answers. @default no 429 alarm */
  readonly accessLogs?: logs.ILogGroup
  /**
   * The security events' forwarder (also among `functions`) and its dead-letter
   * queue (lib/security-events.ts). @default none: the stack has no bus
   */
  readonly securityEvents?: {
    readonly forwarder: lambda.IFunction
    readonly deadLetterQueue: sqs.IQueue
  }
  /**
   * With `failover: 'adopt'`: the fork consumer's dead-letter queue (lib/fork-detection.ts).
   * @default none
   */
  readonly forkDeadLetters?: sqs.IQueue
}

/**
 * The alarms and the dashboard of docs/design.md "Operations": reuse detections,
 * DPoP theft signals, 5xx rate, Lambda errors and throttles, KMS throttling and DynamoDB throttles,
 * and with the security events' bus, its dead letters and the forwarder's lag;
 * a dashboard of logins, refreshes, grace hits, reuse detections (enforced and
 * reported), revocations, latency percentiles and errors.
 */
export class TokenServiceMonitoring extends Construct {
  public readonly alarms: Readonly<Record<string, cloudwatch.Alarm>>
  public readonly dashboard: cloudwatch.Dashboard

  constructor(scope: Construct, id: string, props: TokenServiceMonitoringProps) {
    super(scope, id)
    const period = Duration.minutes(5)
    const thresholds = props.thresholds ?? ALARM_THRESHOLDS
    const custom = (metricName: string, label?: string, dimensions: Record<string, string> = {}) =>
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { ...SERVICE_DIMENSION, ...dimensions },
        statistic: cloudwatch.Stats.SUM,
        period,
        ...(label !== undefined && { label }),
      })
    const functions = Object.entries(props.functions)
    const events = props.securityEvents
    const sumOver = (
      prefix: string,
      label: string,
      pick: (fn: lambda.IFunction) => cloudwatch.IMetric,
    ) =>
      new cloudwatch.MathExpression({
        expression: functions.map(([name]) => `${prefix}_${name}`).join(' + '),
        usingMetrics: Object.fromEntries(
          functions.map(([name, fn]) => [`${prefix}_${name}`, pick(fn)]),
        ),
        label,
        period,
      })

    const requests = props.api.metricCount({ period, statistic: cloudwatch.Stats.SUM })
    const serverErrors = props.api.metricServerError({ period, statistic: cloudwatch.Stats.SUM })
    const lambdaErrors = sumOver('errors', 'Lambda errors', (fn) => fn.metricErrors({ period }))
    const lambdaThrottles = sumOver('throttles', 'Lambda throttles', (fn) =>
      fn.metricThrottles({ period }),
    )
    /**
     * `count` per 1,000 requests. In a quiet period the share is taken of `minRequests`, so
     * that a handful of errors among a few requests does not page, and a burst of them still does.
     * A math expression's metrics are its own: the requests metric goes in under its own id.
     */
    const perThousandRequests = (label: string, count: cloudwatch.IMetric) => {
      const counted =
        count instanceof cloudwatch.MathExpression
          ? { expression: `(${count.expression})`, metrics: count.usingMetrics }
          : (() => {
              const id = `n_${label.toLowerCase().replace(/[^a-z0-9]+/g, '_')}`
              return { expression: id, metrics: { [id]: count } }
            })()
      return new cloudwatch.MathExpression({
        expression: `1000 * ${counted.expression} / IF(requests > ${thresholds.minRequests}, requests, ${thresholds.minRequests})`,
        usingMetrics: { ...counted.metrics, requests },
        label: `${label} per 1,000 requests`,
        period,
      })
    }
    const serverErrorRate = perThousandRequests('5xx', serverErrors)

    // KMS publishes no per-key throttle metric: count the throttled calls the functions log
    // (`{"cause":"ThrottlingException","detail":"kms Sign failed: ..."}`), and watch the
    // account's usage of the shared KMS quota for this key family.
    for (const [index, logGroup] of props.kmsCallerLogs.entries()) {
      new logs.MetricFilter(this, `KmsThrottleFilter${index}`, {
        logGroup,
        metricNamespace: METRICS_NAMESPACE,
        metricName: 'KmsThrottles',
        filterPattern: logs.FilterPattern.literal(
          '{ $.cause = "ThrottlingException" && $.detail = "kms*" }',
        ),
        metricValue: '1',
      })
    }
    const kmsThrottles = new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: 'KmsThrottles',
      statistic: cloudwatch.Stats.SUM,
      period,
    })
    const kmsUsage = new cloudwatch.Metric({
      namespace: 'AWS/Usage',
      metricName: 'CallCount',
      dimensionsMap: {
        Service: 'KMS',
        Type: 'API',
        Resource:
          props.algorithm === 'RS256' ? 'CryptographicOperationsRsa' : 'CryptographicOperationsEcc',
        Class: 'None',
      },
      statistic: cloudwatch.Stats.SUM,
      period: Duration.minutes(1),
    })
    const kmsQuotaPercent = new cloudwatch.MathExpression({
      expression: '100 * (usage / PERIOD(usage)) / SERVICE_QUOTA(usage)',
      usingMetrics: { usage: kmsUsage },
      label: 'KMS requests, % of the account quota',
      period: Duration.minutes(1),
    })
    const dynamodbThrottles = props.table.metricThrottledRequestsForOperations({
      operations: [
        dynamodb.Operation.GET_ITEM,
        dynamodb.Operation.BATCH_GET_ITEM,
        dynamodb.Operation.QUERY,
        dynamodb.Operation.PUT_ITEM,
        dynamodb.Operation.UPDATE_ITEM,
        dynamodb.Operation.TRANSACT_WRITE_ITEMS,
      ],
      period,
      label: 'DynamoDB throttled requests',
    })
    // Enforced only: a reuse in `report` mode carries a dimension of its own (and revokes nothing).
    const reuseDetections = custom('ReuseDetections')
    const reportedReuse = custom('ReuseDetections', 'Reuse reported (report mode)', {
      [REPORTED_REUSE_DIMENSION.name]: REPORTED_REUSE_DIMENSION.value,
    })
    // In a quiet period the rate is taken of `minRefreshes`: with the defaults one reuse pages.
    const reusePerThousandRefreshes = new cloudwatch.MathExpression({
      expression: `1000 * reuse / IF(refreshes > ${thresholds.minRefreshes}, refreshes, ${thresholds.minRefreshes})`,
      usingMetrics: { reuse: reuseDetections, refreshes: custom('Refreshes') },
      label: 'Reuse detections per 1,000 refreshes',
      period,
    })
    const tooManyRequests =
      props.accessLogs && tooManyRequestsMetric(this, props.accessLogs, period)

    // Both kinds of DPoP refusal that signal theft (functions/core/theft-signals.ts), each refusal.
    const dpopKeyMismatches = custom('DpopKeyMismatches', 'DPoP proofs of another key')
    const dpopReplays = custom('DpopReplays', 'DPoP proofs replayed')
    const dpopTheftSignals = new cloudwatch.MathExpression({
      expression: 'mismatches + replays',
      usingMetrics: { mismatches: dpopKeyMismatches, replays: dpopReplays },
      label: 'DPoP theft signals',
      period,
    })

    const notify = (created: cloudwatch.Alarm) => {
      if (props.alarmTopic) {
        const action = new cloudwatchActions.SnsAction(props.alarmTopic)
        // OK too: whoever was paged learns that it is over without opening the console.
        created.addAlarmAction(action)
        created.addOkAction(action)
      }
      return created
    }
    const alarm = (
      name: string,
      metric: cloudwatch.IMetric,
      threshold: number,
      description: string,
      evaluationPeriods = 1,
    ) => {
      assertMetricCount(name, metric)
      return notify(
        new cloudwatch.Alarm(this, name, {
          metric,
          threshold,
          evaluationPeriods,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          alarmDescription: description,
        }),
      )
    }
    /** Two periods of 5 minutes running: one bad period at volume is noise, two is a page. */
    const sustained = 2
    this.alarms = {
      reuseDetections: alarm(
        'ReuseDetectionsAlarm',
        reusePerThousandRefreshes,
        thresholds.reusePerThousandRefreshes,
        `At least ${thresholds.reusePerThousandRefreshes} in 1,000 refreshes (of at least ${thresholds.minRefreshes}) presented a rotated refresh token after its grace window: tokens are probably being stolen. The sessions were revoked; see the "security event" log lines (docs/operations.md "Alarms").`,
      ),
      dpopTheftSignals: alarm(
        'DpopTheftSignalsAlarm',
        dpopTheftSignals,
        ALARM_THRESHOLDS.dpopTheftSignals,
        'A refresh of a DPoP-bound session came with a proof of another key, or a DPoP proof came back a second time: someone holds a token or a request of the client. Refused; see the dpop.key_mismatch and dpop.proof_replayed security events (one per session an hour).',
      ),
      serverErrors: alarm(
        'ServerErrorRateAlarm',
        serverErrorRate,
        thresholds.serverErrorsPerThousand,
        `At least ${thresholds.serverErrorsPerThousand} in 1,000 requests got a 5xx answer, two 5-minute periods running.`,
        sustained,
      ),
      lambdaErrors: alarm(
        'LambdaErrorsAlarm',
        perThousandRequests('Lambda errors', lambdaErrors),
        thresholds.lambdaErrorsPerThousand,
        `At least ${thresholds.lambdaErrorsPerThousand} in 1,000 requests: a function failed without an answer (crash, timeout or init error).`,
      ),
      lambdaThrottles: alarm(
        'LambdaThrottlesAlarm',
        perThousandRequests('Lambda throttles', lambdaThrottles),
        thresholds.lambdaThrottlesPerThousand,
        `At least ${thresholds.lambdaThrottlesPerThousand} in 1,000 requests: Lambda throttled invocations, the account or reserved concurrency is exhausted.`,
      ),
      kmsThrottles: alarm(
        'KmsThrottlesAlarm',
        perThousandRequests('KMS throttles', kmsThrottles),
        thresholds.kmsThrottlesPerThousand,
        `At least ${thresholds.kmsThrottlesPerThousand} in 1,000 requests: KMS throttled Sign or GetPublicKey calls, logins and refreshes answered 503.`,
      ),
      kmsQuota: alarm(
        'KmsQuotaAlarm',
        kmsQuotaPercent,
        ALARM_THRESHOLDS.kmsQuotaPercent,
        `KMS requests reached ${ALARM_THRESHOLDS.kmsQuotaPercent}% of the account's quota for this key family: ask for a quota increase before KMS throttles.`,
        3,
      ),
      dynamodbThrottles: alarm(
        'DynamoDbThrottlesAlarm',
        perThousandRequests('DynamoDB throttles', dynamodbThrottles),
        thresholds.dynamodbThrottlesPerThousand,
        `At least ${thresholds.dynamodbThrottlesPerThousand} DynamoDB requests throttled per 1,000 API requests, two 5-minute periods running: the table's partitions or its on-demand ceiling.`,
        sustained,
      ),
      ...(tooManyRequests && {
        throttledRequests: alarm(
          'ThrottledRequestsAlarm',
          perThousandRequests('429', tooManyRequests),
          thresholds.throttledPerThousand,
          `At least ${thresholds.throttledPerThousand} in 1,000 requests were answered 429 (API Gateway's throttles or the login back-off), two 5-minute periods running.`,
          sustained,
        ),
      }),
      failedLogins: notify(
        new cloudwatch.AnomalyDetectionAlarm(this, 'FailedLoginsAlarm', {
          metric: custom('LoginFailures', 'Login failures'),
          stdDevs: thresholds.failedLoginBand,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_UPPER_THRESHOLD,
          evaluationPeriods: sustained,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          alarmDescription: `Failed logins above their usual band (${thresholds.failedLoginBand} standard deviations of their own history), two 5-minute periods running: credential stuffing is likely.`,
        }),
      ),
      ...(props.routes && routeLatencyAlarms(this, props.routes, props.api, thresholds, notify)),
      ...nearTimeoutAlarms(functions, props.timeouts ?? {}, thresholds, alarm, period),
      ...(props.canary && { discoveryCanary: notify(canaryAlarm(this, props.canary)) }),
      ...(events && securityEventAlarms(alarm, events, period)),
      ...(props.forkDeadLetters && {
        forkDeadLetters: alarm(
          'ForkDeadLettersAlarm',
          props.forkDeadLetters.metricApproximateNumberOfMessagesVisible({
            statistic: cloudwatch.Stats.MAXIMUM,
            period,
          }),
          1,
          'The fork consumer could not handle a batch of the table stream for hours: forked sessions in it may not have been ended. Each message names the batch; end those sessions by hand (docs/operations.md "Declaring a region lost").',
        ),
      }),
    }

    const graph = (title: string, left: cloudwatch.IMetric[], width = 8) =>
      new cloudwatch.GraphWidget({ title, left, width, height: 6 })
    const percentiles = (metric: (stat: string) => cloudwatch.IMetric) =>
      ['p50', 'p90', 'p99'].map((stat) => metric(stat))

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          graph('Logins', [
            custom('Logins', 'Logins'),
            custom('LoginFailures', 'Login failures'),
            custom('LoginThrottled', 'Logins throttled (429)'),
          ]),
          graph('Refreshes', [
            custom('Refreshes', 'Refreshes'),
            custom('GraceReplays', 'Grace hits'),
          ]),
          graph('Security', [
            custom('ReuseDetections', 'Reuse detections'),
            reportedReuse,
            custom('Revocations', 'Revocations'),
            dpopKeyMismatches,
            dpopReplays,
          ]),
        ],
        [
          graph(
            'API latency (ms)',
            percentiles((stat) =>
              props.api.metricLatency({ period, statistic: stat, label: `API ${stat}` }),
            ),
          ),
          graph(
            'Function duration p99 (ms)',
            functions.map(([name, fn]) =>
              fn.metricDuration({ period, statistic: 'p99', label: name }),
            ),
          ),
          graph('Requests and errors', [
            requests,
            props.api.metricClientError({ period, statistic: cloudwatch.Stats.SUM, label: '4xx' }),
            serverErrors.with({ label: '5xx' }),
          ]),
        ],
        [
          graph('Lambda errors and throttles', [lambdaErrors, lambdaThrottles]),
          graph('KMS', [kmsThrottles.with({ label: 'KMS throttled calls' }), kmsQuotaPercent]),
          graph('DynamoDB throttles', [dynamodbThrottles]),
        ],
        ...(events ? [securityEventGraphs(graph, events, period)] : []),
        volumeGraphs(graph, {
          requestShares: [
            serverErrorRate,
            ...(tooManyRequests ? [perThousandRequests('429', tooManyRequests)] : []),
          ],
          reuse: reusePerThousandRefreshes,
          ...(props.routes && {
            routeLatencies: props.routes.routes.map((route) =>
              routeLatency(props.api, (props.routes as { stage: apigwv2.IHttpStage }).stage, route),
            ),
          }),
        }),
        [
          new cloudwatch.AlarmStatusWidget({
            title: 'Alarms',
            alarms: Object.values(this.alarms),
            width: 24,
            height: 4,
          }),
        ],
      ],
    })
  }
}

/**
 * The canary failed, or did not run, two periods running: missing data is breaching here,
 * since a canary that stopped reporting watches nothing (`DiscoveryCanaryAlarm`).
 */
function canaryAlarm(
  scope: Construct,
  { canary, every }: NonNullable<TokenServiceMonitoringProps['canary']>,
): cloudwatch.Alarm {
  // A period holds at least one run: a rarer canary would otherwise leave periods empty.
  const period = Duration.minutes(Math.max(5, every.toMinutes()))
  return new cloudwatch.Alarm(scope, 'DiscoveryCanaryAlarm', {
    metric: canary.metricSuccessPercent({ period, statistic: 'Minimum' }),
    threshold: 100,
    evaluationPeriods: 2,
    comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    alarmDescription: `The synthetic check of discovery and JWKS at the public hostname failed (or did not run) two ${period.toMinutes()}-minute periods running: verifiers cannot fetch the keys, or clients cannot reach the service (docs/operations.md "Runbook").`,
  })
}

/**
 * One alarm per function whose p99 duration reaches `nearTimeoutPercent` of its timeout, two
 * periods running: the slowest calls are about to be cut off (a 503 from the early answer, or
 * a Lambda timeout). Named `NearTimeout<Function>Alarm`.
 */
function nearTimeoutAlarms(
  functions: readonly [string, lambda.IFunction][],
  timeouts: Readonly<Record<string, Duration>>,
  thresholds: AlarmThresholds,
  alarm: (
    name: string,
    metric: cloudwatch.IMetric,
    threshold: number,
    description: string,
    evaluationPeriods?: number,
  ) => cloudwatch.Alarm,
  period: Duration,
): Record<string, cloudwatch.Alarm> {
  const percent = thresholds.nearTimeoutPercent
  return Object.fromEntries(
    functions.flatMap(([name, fn]) => {
      const timeout = timeouts[name]
      if (!timeout) return []
      const pascal = `${name[0]?.toUpperCase()}${name.slice(1)}`
      const limitMs = Math.round((timeout.toMilliseconds() * percent) / 100)
      return [
        [
          `nearTimeout${pascal}`,
          alarm(
            `NearTimeout${pascal}Alarm`,
            fn.metricDuration({ period, statistic: 'p99', label: `${name} p99 duration` }),
            limitMs,
            `The ${name} function's p99 duration reached ${limitMs} ms, ${percent}% of its ${timeout.toSeconds()} s timeout, two 5-minute periods running: its slowest calls are about to be cut off (docs/operations.md "Runbook").`,
            2,
          ),
        ],
      ]
    }),
  )
}

/** CloudWatch takes at most 10 metrics in an alarm's math: fail at synth, not at deploy. */
function assertMetricCount(name: string, metric: cloudwatch.IMetric): void {
  if (!(metric instanceof cloudwatch.MathExpression)) return
  const count = Object.keys(metric.usingMetrics).length
  if (count > 10) {
    throw new Error(
      `TokenServiceMonitoring: ${name} would use ${count} metrics; CloudWatch takes 10`,
    )
  }
}

/**
 * The 429 answers, counted from the access log (`"status":"429"`): HTTP APIs publish 4xx
 * only as a whole, and a stage throttle reaches no function.
 */
function tooManyRequestsMetric(
  scope: Construct,
  accessLogs: logs.ILogGroup,
  period: Duration,
): cloudwatch.IMetric {
  new logs.MetricFilter(scope, 'TooManyRequestsFilter', {
    logGroup: accessLogs,
    metricNamespace: METRICS_NAMESPACE,
    metricName: 'TooManyRequests',
    filterPattern: logs.FilterPattern.literal('{ $.status = "429" }'),
    metricValue: '1',
  })
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName: 'TooManyRequests',
    statistic: cloudwatch.Stats.SUM,
    period,
    label: '429 answers',
  })
}

/** One p99 latency alarm per route, from the stage's per-route metrics. */
function routeLatencyAlarms(
  scope: Construct,
  { stage, routes, passwordRoutes }: NonNullable<TokenServiceMonitoringProps['routes']>,
  api: apigwv2.IHttpApi,
  thresholds: AlarmThresholds,
  notify: (created: cloudwatch.Alarm) => cloudwatch.Alarm,
): Record<string, cloudwatch.Alarm> {
  return Object.fromEntries(
    routes.map((route) => {
      const routeKey = `${route.method} ${route.path}`
      const threshold = passwordRoutes.includes(routeKey)
        ? thresholds.passwordLatencyP99Ms
        : thresholds.latencyP99Ms
      const name = `Latency ${routeKey}`
        .replace(/[^A-Za-z0-9]+/g, ' ')
        .trim()
        .split(' ')
        .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
        .join('')
      const metric = routeLatency(api, stage, route)
      const created = new cloudwatch.Alarm(scope, `${name}Alarm`, {
        metric,
        threshold,
        evaluationPeriods: 2,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `p99 latency of ${routeKey} above ${threshold} ms, two 5-minute periods running.`,
      })
      return [`latency${name.replace(/^Latency/, '')}`, notify(created)]
    }),
  )
}

/** A route's latency from the stage's per-route metrics (dimensions ApiId, Stage, Method, Resource). */
export function routeLatency(
  api: apigwv2.IHttpApi,
  stage: apigwv2.IHttpStage,
  route: { readonly method: string; readonly path: string },
  statistic = 'p99',
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: 'AWS/ApiGateway',
    metricName: 'Latency',
    dimensionsMap: {
      ApiId: api.apiId,
      Stage: stage.stageName,
      Method: route.method,
      Resource: route.path,
    },
    statistic,
    period: Duration.minutes(5),
    label: `${route.method} ${route.path} ${statistic}`,
  })
}

/** The shares the volume alarms watch, and each route's p99. */
function volumeGraphs(
  graph: (title: string, left: cloudwatch.IMetric[]) => cloudwatch.GraphWidget,
  metrics: {
    readonly requestShares: cloudwatch.IMetric[]
    readonly reuse: cloudwatch.IMetric
    readonly routeLatencies?: cloudwatch.IMetric[]
  },
): cloudwatch.IWidget[] {
  return [
    graph('5xx and 429 per 1,000 requests', metrics.requestShares),
    graph('Reuse detections per 1,000 refreshes', [metrics.reuse]),
    ...(metrics.routeLatencies ? [graph('Route latency p99 (ms)', metrics.routeLatencies)] : []),
  ]
}

type Alarm = (
  name: string,
  metric: cloudwatch.IMetric,
  threshold: number,
  description: string,
) => cloudwatch.Alarm

/** How far behind the table's stream the forwarder is: its oldest record's age, ms. */
const forwarderLag = (forwarder: lambda.IFunction, period: Duration) =>
  forwarder.metric('IteratorAge', {
    statistic: cloudwatch.Stats.MAXIMUM,
    period,
    label: 'Forwarder lag (ms)',
  })

/** docs/operations.md "Security events": a batch dead-lettered, or forwarding falling behind. */
function securityEventAlarms(
  alarm: Alarm,
  events: NonNullable<TokenServiceMonitoringProps['securityEvents']>,
  period: Duration,
): Record<string, cloudwatch.Alarm> {
  const lag = ALARM_THRESHOLDS.securityEventsIteratorAge
  return {
    securityEventDeadLetters: alarm(
      'SecurityEventDeadLettersAlarm',
      events.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        statistic: cloudwatch.Stats.MAXIMUM,
        period,
      }),
      ALARM_THRESHOLDS.securityEventDeadLetters,
      'Security events could not reach the EventBridge bus for hours: each message names a batch of the table stream. Resend them from the outbox items (docs/operations.md "Security events").',
    ),
    securityEventsLag: alarm(
      'SecurityEventsLagAlarm',
      forwarderLag(events.forwarder, period),
      lag.toMilliseconds(),
      `The forwarder is more than ${lag.toMinutes()} minutes behind the table stream: security events are late (EventBridge refusing them, or the forwarder failing).`,
    ),
  }
}

function securityEventGraphs(
  graph: (title: string, left: cloudwatch.IMetric[]) => cloudwatch.GraphWidget,
  events: NonNullable<TokenServiceMonitoringProps['securityEvents']>,
  period: Duration,
): cloudwatch.IWidget[] {
  return [
    graph('Security events: forwarder lag', [forwarderLag(events.forwarder, period)]),
    graph('Security events: dead letters', [
      events.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        statistic: cloudwatch.Stats.MAXIMUM,
        period,
        label: 'Batches dead-lettered',
      }),
    ]),
  ]
}
