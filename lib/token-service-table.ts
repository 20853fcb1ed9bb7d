import * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import type { Construct } from 'constructs'
import { TABLE_SCHEMA } from '../functions/adapters/dynamodb/table.js'
import type { ResolvedProps } from './token-service-props.js'

/**
 * The one table, `Table` in `scope`, with the schema the adapters read and write
 * (functions/adapters/dynamodb/table.ts) and its one GSI.
 */
export function buildTable(scope: Construct, resolved: ResolvedProps): dynamodb.Table {
  const { partitionKey, sortKey, ttlAttribute, gsi1 } = TABLE_SCHEMA
  const string = (name: string) => ({ name, type: dynamodb.AttributeType.STRING })
  const table = new dynamodb.Table(scope, 'Table', {
    partitionKey: string(partitionKey),
    sortKey: string(sortKey),
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    // The outbox items' way to the bus; nothing else reads the stream.
    ...(resolved.eventBus && { stream: dynamodb.StreamViewType[TABLE_SCHEMA.streamViewType] }),
    timeToLiveAttribute: ttlAttribute,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    deletionProtection: resolved.deletionProtection,
    removalPolicy: resolved.removalPolicy,
  })
  table.addGlobalSecondaryIndex({
    indexName: gsi1.indexName,
    partitionKey: string(gsi1.partitionKey),
    sortKey: string(gsi1.sortKey),
    projectionType: dynamodb.ProjectionType.ALL,
  })
  return table
}
