import { Duration, type RemovalPolicy, Validations } from 'aws-cdk-lib'
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import * as events from 'aws-cdk-lib/aws-events'
import * as lambda from 'aws-cdk-lib/aws-lambda'
import { SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources'
import type * as logs from 'aws-cdk-lib/aws-logs'
import * as sqs from 'aws-cdk-lib/aws-sqs'
import { Construct } from 'constructs'
import {
  OUTBOX_REGION_ATTRIBUTE,
  OUTBOX_SORT_KEY,
  TABLE_SCHEMA,
} from '../functions/adapters/dynamodb/table.js'
import type { SettingName } from '../functions/settings.js'
import { DEFAULTS } from './defaults.js'
import { grantTableKey } from './table-access.js'
import { functionEnvironment, TokenFunction } from './token-function.js'

export interface SecurityEventsProps {
  /** The service's table, its stream on (`NEW_IMAGE`). */
  readonly table: dynamodb.ITable
  /** The settings the forwarder reads besides `EVENT_BUS_NAME` (`ISSUER`, `AWS_*`). */
  readonly settings: Partial<Record<SettingName, string>>
  /** Of the forwarder's log group and the dead-letter queue. */
  readonly removalPolicy: RemovalPolicy
  readonly logRetention: logs.RetentionDays
  /**
   * With several regions: this region, and whether it is the primary. Every replica's stream
   * carries every outbox item; this forwarder sends only those written here (marked with
   * `region`, functions/adapters/dynamodb/outbox-item.ts), and the primary's also those
   * without a mark (written before `regions`, or by `npm run users`), so that each event
   * reaches the bus once. @default one region: every inserted outbox item
   */
  readonly region?: { readonly name: string; readonly primary: boolean }
}

/**
 * The security events' way out (docs/design.md "Security events"): the
 * table's stream, filtered to inserted outbox items, invokes the forwarder,
 * which puts each event on a custom EventBridge bus. A batch the forwarder
 * cannot send is retried from its first unsent record, by halves when the
 * function fails, until its oldest record is `DEFAULTS.securityEvents.maxRecordAge`
 * old; then its description (shard, sequence numbers, times) goes to the
 * dead-letter queue, and the outbox items stay in the table for a resend
 * (docs/operations.md "Security events").
 */
export class SecurityEvents extends Construct {
  public readonly bus: events.EventBus
  public readonly forwarder: TokenFunction
  /** Where the descriptions of batches that could not be forwarded go; alarmed on. */
  public readonly deadLetterQueue: sqs.Queue
  public readonly mapping: lambda.EventSourceMapping

  constructor(scope: Construct, id: string, props: SecurityEventsProps) {
    super(scope, id)
    const streamArn = props.table.tableStreamArn
    if (!streamArn) throw new Error('SecurityEvents: the table needs its stream (NEW_IMAGE)')

    this.bus = new events.EventBus(this, 'Bus', {
      description: 'Security events of the token service (CloudEvents 1.0 in each detail)',
    })
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // The longest SQS allows: an operator resends from the table within OUTBOX_RETENTION_DAYS.
      retentionPeriod: Duration.days(14),
      removalPolicy: props.removalPolicy,
    })
    for (const rule of ['AwsSolutions-SQS3', 'Serverless-SQSRedrivePolicy']) {
      Validations.of(this.deadLetterQueue).acknowledge({
        id: rule,
        reason:
          'This queue is itself the dead-letter destination (of the forwarder’s event source mapping); nothing consumes it to fail again, and the alarm on it calls an operator.',
      })
    }

    this.forwarder = new TokenFunction(this, 'Forwarder', {
      name: 'forwarder',
      environment: functionEnvironment('forwarder', {
        ...props.settings,
        EVENT_BUS_NAME: this.bus.eventBusName,
      }),
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
    })
    this.forwarder.allow(['events:PutEvents'], [this.bus.eventBusArn])
    // A customer-managed table key encrypts the stream too.
    grantTableKey(this.forwarder, props.table)
    // What Lambda's poller does with the function's role, on this stream only.
    this.forwarder.allow(
      [
        'dynamodb:DescribeStream',
        'dynamodb:GetRecords',
        'dynamodb:GetShardIterator',
        'dynamodb:ListStreams',
      ],
      [streamArn],
    )

    const { batchSize, maxRecordAge } = DEFAULTS.securityEvents
    this.mapping = new lambda.EventSourceMapping(this, 'FromTableStream', {
      target: this.forwarder.function,
      eventSourceArn: streamArn,
      // From the oldest record the stream keeps: events written before the mapping existed too.
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize,
      reportBatchItemFailures: true,
      bisectBatchOnError: true,
      // Retried for as long as a record is younger than this (no count), then dead-lettered:
      // well inside the stream's 24 hours, after which a record is gone unannounced.
      retryAttempts: -1,
      maxRecordAge,
      // Its grant: sqs:SendMessage on the queue, to the forwarder's role.
      onFailure: new SqsDlq(this.deadLetterQueue),
      // Only inserted outbox items invoke the forwarder (it skips anything else too); with
      // several regions, only those this region wrote (any filter may match).
      filters: outboxFilters(props.region),
    })
  }
}

/** The event source mapping's filters: inserted outbox items, of this region's (`region`). */
function outboxFilters(region: SecurityEventsProps['region']): Record<string, unknown>[] {
  const outbox = (image?: Record<string, unknown>) =>
    lambda.FilterCriteria.filter({
      eventName: lambda.FilterRule.isEqual('INSERT'),
      dynamodb: {
        Keys: { [TABLE_SCHEMA.sortKey]: { S: lambda.FilterRule.isEqual(OUTBOX_SORT_KEY) } },
        ...(image && { NewImage: image }),
      },
    })
  if (!region) return [outbox()]
  return [
    outbox({ [OUTBOX_REGION_ATTRIBUTE]: { S: lambda.FilterRule.isEqual(region.name) } }),
    ...(region.primary
      ? [outbox({ [OUTBOX_REGION_ATTRIBUTE]: lambda.FilterRule.notExists() })]
      : []),
  ]
}
