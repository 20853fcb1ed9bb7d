import { ArnFormat, Duration, type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib'
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import * as lambda from 'aws-cdk-lib/aws-lambda'
import { SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources'
import type * as logs from 'aws-cdk-lib/aws-logs'
import * as sqs from 'aws-cdk-lib/aws-sqs'
import { Construct } from 'constructs'
import { itemKey, TABLE_SCHEMA } from '../functions/adapters/dynamodb/table.js'
import { LAMBDA_FUNCTIONS } from '../functions/routes.js'
import type { SettingName } from '../functions/settings.js'
import { DEFAULTS } from './defaults.js'
import { grantStore } from './table-access.js'
import { functionEnvironment, TokenFunction } from './token-function.js'

const SESSION = itemKey.session('').sk

/**
 * The fork consumer's event source mapping filters (docs/multi-region.md "Fork detection"),
 * as Lambda event filtering patterns: a MODIFY of a session item with an `epoch` in its new
 * image (an adoption overwrote something) or its old one (something overwrote an adoption).
 * A session never adopted carries no epoch: its rotations invoke nothing. The simulation
 * applies the same patterns (test/support/regions.ts).
 */
export const FORK_FILTER_PATTERNS: readonly Record<string, unknown>[] = (
  ['NewImage', 'OldImage'] as const
).map((image) => ({
  eventName: ['MODIFY'],
  dynamodb: {
    Keys: { [TABLE_SCHEMA.sortKey]: { S: [SESSION] } },
    [image]: { epoch: { N: [{ exists: true }] } },
  },
}))

/** What the fork consumer needs from the stack. */
export interface ForkDetectionProps {
  /** The global table, its stream with both images (every replica has it). */
  readonly table: dynamodb.ITable
  /** The settings the stack sets (`TABLE_NAME`, `REGIONS`, `HOME_REGION`, `AWS_*`, ...). */
  readonly settings: Partial<Record<SettingName, string>>
  /** Every region, the primary first: the consumer may invoke its copy in each other one. */
  readonly regions: readonly string[]
  readonly removalPolicy: RemovalPolicy
  readonly logRetention: logs.RetentionDays
}

/**
 * `failover: 'adopt'`: the fork consumer (functions/forks/handler.ts), named
 * `<stackName>-forks` in every region, invoked by the table's stream through
 * FORK_FILTER_PATTERNS, and by its copies in the other regions to end a fork in the
 * converged home. Retried like the forwarder: from the first failed record, by halves on a
 * crash, until a record is `maxRecordAge` old; then to a dead-letter queue (alarmed with
 * the function's errors).
 */
export class ForkDetection extends Construct {
  public readonly consumer: TokenFunction
  public readonly deadLetterQueue: sqs.Queue
  public readonly mapping: lambda.EventSourceMapping

  constructor(scope: Construct, id: string, props: ForkDetectionProps) {
    super(scope, id)
    const streamArn = props.table.tableStreamArn
    if (!streamArn)
      throw new Error('ForkDetection: the table needs its stream (NEW_AND_OLD_IMAGES)')
    const stack = Stack.of(this)
    const functionName = `${stack.stackName}-forks`
    this.consumer = new TokenFunction(this, 'Consumer', {
      name: 'forks',
      environment: functionEnvironment('forks', {
        ...props.settings,
        HOME_FUNCTION_NAME: functionName,
      }),
      functionName,
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
    })
    grantStore(this.consumer, props.table, LAMBDA_FUNCTIONS.forks.store)
    this.consumer.allow(
      [
        'dynamodb:DescribeStream',
        'dynamodb:GetRecords',
        'dynamodb:GetShardIterator',
        'dynamodb:ListStreams',
      ],
      [streamArn],
    )
    const others = props.regions.filter((region) => region !== stack.region)
    this.consumer.allow(
      ['lambda:InvokeFunction'],
      others.map((region) =>
        stack.formatArn({
          service: 'lambda',
          region,
          resource: 'function',
          resourceName: functionName,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ),
    )
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: props.removalPolicy,
    })
    for (const rule of ['AwsSolutions-SQS3', 'Serverless-SQSRedrivePolicy']) {
      Validations.of(this.deadLetterQueue).acknowledge({
        id: rule,
        reason:
          'This queue is itself the dead-letter destination (of the fork consumer’s event source mapping); nothing consumes it to fail again.',
      })
    }
    const { batchSize, maxRecordAge } = DEFAULTS.securityEvents
    this.mapping = new lambda.EventSourceMapping(this, 'FromTableStream', {
      target: this.consumer.function,
      eventSourceArn: streamArn,
      // Only what happens from now on: a fork is a write made after the mapping exists.
      startingPosition: lambda.StartingPosition.LATEST,
      batchSize,
      reportBatchItemFailures: true,
      bisectBatchOnError: true,
      retryAttempts: -1,
      maxRecordAge,
      onFailure: new SqsDlq(this.deadLetterQueue),
      filters: FORK_FILTER_PATTERNS.map((pattern) => ({ pattern: JSON.stringify(pattern) })),
    })
  }
}
