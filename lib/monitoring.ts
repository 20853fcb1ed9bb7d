import { Duration } from 'aws-cdk-lib'
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2'
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch'
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions'
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import type * as lambda from 'aws-cdk-lib/aws-lambda'
import * as logs from 'aws-cdk-lib/aws-logs'
import type * as sns from 'aws-cdk-lib/aws-sns'
import type * as sqs from 'aws-cdk-lib/aws-sqs'
import { Construct } from 'constructs'
import { REPORTED_REUSE_DIMENSION } from '../functions/adapters/observability.js'
import { ALARM_THRESHOLDS } from './defaults.js'
import type { SigningAlgorithm } from './signing-keys.js'

/** Where the functions publish their metrics (Powertools EMF; `service` is its default dimension). */
export const METRICS_NAMESPACE = 'TokenService'
const SERVICE_DIMENSION = { service: 'token-service' }

export interface TokenServiceMonitoringProps {
  readonly api: apigwv2.IHttpApi
  /** Every function of the service, by name. */
  readonly functions: Readonly<Record<string, lambda.IFunction>>
  /** Log groups of the functions that call KMS: a metric filter counts throttled calls. */
  readonly kmsCallerLogs: readonly logs.ILogGroup[]
  readonly table: dynamodb.ITable
  readonly algorithm: SigningAlgorithm
  /** Notified when an alarm fires. @default no action */
  readonly alarmTopic?: sns.ITopic
  /**
   * The security events' forwarder (also among `functions`) and its dead-letter
   * queue (lib/security-events.ts). @default none: the stack has no bus
   */
  readonly securityEvents?: {
    readonly forwarder: lambda.IFunction
    readonly deadLetterQueue: sqs.IQueue
  }
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
    const serverErrorRate = new cloudwatch.MathExpression({
      expression: `IF(requests >= ${ALARM_THRESHOLDS.serverErrorMinRequests}, 100 * errors / requests, 0)`,
      usingMetrics: { requests, errors: serverErrors },
      label: '5xx %',
      period,
    })
    const lambdaErrors = sumOver('errors', 'Lambda errors', (fn) => fn.metricErrors({ period }))
    const lambdaThrottles = sumOver('throttles', 'Lambda throttles', (fn) =>
      fn.metricThrottles({ period }),
    )

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

    // Both kinds of DPoP refusal that signal theft (functions/core/theft-signals.ts), each refusal.
    const dpopKeyMismatches = custom('DpopKeyMismatches', 'DPoP proofs of another key')
    const dpopReplays = custom('DpopReplays', 'DPoP proofs replayed')
    const dpopTheftSignals = new cloudwatch.MathExpression({
      expression: 'mismatches + replays',
      usingMetrics: { mismatches: dpopKeyMismatches, replays: dpopReplays },
      label: 'DPoP theft signals',
      period,
    })

    const alarm = (
      name: string,
      metric: cloudwatch.IMetric,
      threshold: number,
      description: string,
      evaluationPeriods = 1,
    ) => {
      const created = new cloudwatch.Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      })
      if (props.alarmTopic)
        created.addAlarmAction(new cloudwatchActions.SnsAction(props.alarmTopic))
      return created
    }
    this.alarms = {
      reuseDetections: alarm(
        'ReuseDetectionsAlarm',
        reuseDetections,
        ALARM_THRESHOLDS.reuseDetections,
        'A rotated refresh token was presented after its grace window: probably stolen. The session was revoked; see the "security event" log lines.',
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
        ALARM_THRESHOLDS.serverErrorPercent,
        `At least ${ALARM_THRESHOLDS.serverErrorPercent}% of the requests got a 5xx answer over 5 minutes.`,
      ),
      lambdaErrors: alarm(
        'LambdaErrorsAlarm',
        lambdaErrors,
        ALARM_THRESHOLDS.lambdaErrors,
        'A function failed without an answer (crash, timeout or init error).',
      ),
      lambdaThrottles: alarm(
        'LambdaThrottlesAlarm',
        lambdaThrottles,
        ALARM_THRESHOLDS.lambdaThrottles,
        'Lambda throttled invocations: the account or reserved concurrency is exhausted.',
      ),
      kmsThrottles: alarm(
        'KmsThrottlesAlarm',
        kmsThrottles,
        ALARM_THRESHOLDS.kmsThrottles,
        'KMS throttled Sign or GetPublicKey calls: logins and refreshes answered 503.',
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
        dynamodbThrottles,
        ALARM_THRESHOLDS.dynamodbThrottles,
        'DynamoDB throttled requests to the token table.',
      ),
      ...(events && securityEventAlarms(alarm, events, period)),
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
