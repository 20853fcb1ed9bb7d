import * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import * as kms from 'aws-cdk-lib/aws-kms'
import type { Construct } from 'constructs'
import { TABLE_SCHEMA } from '../functions/adapters/dynamodb/table.js'
import { keyPolicy } from './token-service-keys.js'
import type { ResolvedProps } from './token-service-props.js'

/**
 * The actions DynamoDB takes with a customer-managed table key on behalf of a caller
 * (and of the stream's reader): each table grant comes with them, through DynamoDB only.
 */
export const TABLE_KEY_USE = [
  'kms:Decrypt',
  'kms:DescribeKey',
  'kms:Encrypt',
  'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
  'kms:CreateGrant',
] as const

/**
 * The one table, `Table` in `scope`, with the schema the adapters read and write
 * (functions/adapters/dynamodb/table.ts) and its one GSI. It holds the password hashes:
 * encrypted with the AWS-managed key (`aws/dynamodb`, its use in CloudTrail) by default,
 * or with a key of its own (`TableKey`, rotated, administration apart from use). Changing
 * either way is an in-place update of its SSESpecification: the table stays.
 */
export function buildTable(scope: Construct, resolved: ResolvedProps): dynamodb.Table {
  const { partitionKey, sortKey, ttlAttribute, gsi1 } = TABLE_SCHEMA
  const string = (name: string) => ({ name, type: dynamodb.AttributeType.STRING })
  const encryptionKey =
    resolved.tableEncryption === 'customer-managed'
      ? new kms.Key(scope, 'TableKey', {
          description: `Encrypts the table of ${scope.node.path} (users, password hashes, sessions)`,
          enableKeyRotation: true,
          policy: keyPolicy(TABLE_KEY_USE),
          removalPolicy: resolved.removalPolicy,
        })
      : undefined
  const table = new dynamodb.Table(scope, 'Table', {
    ...(encryptionKey
      ? { encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED, encryptionKey }
      : { encryption: dynamodb.TableEncryption.AWS_MANAGED }),
    partitionKey: string(partitionKey),
    sortKey: string(sortKey),
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    // The outbox items' way to the bus; nothing else reads the stream.
    ...(resolved.eventBus && { stream: dynamodb.StreamViewType[TABLE_SCHEMA.streamViewType] }),
    timeToLiveAttribute: ttlAttribute,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    deletionProtection: resolved.deletionProtection,
    removalPolicy: resolved.removalPolicy,
    // Ahead of a known peak: the table splits its partitions now, not under the load.
    ...(resolved.tableWarmThroughput && { warmThroughput: resolved.tableWarmThroughput }),
  })
  table.addGlobalSecondaryIndex({
    indexName: gsi1.indexName,
    partitionKey: string(gsi1.partitionKey),
    sortKey: string(gsi1.sortKey),
    projectionType: dynamodb.ProjectionType.ALL,
  })
  return table
}
