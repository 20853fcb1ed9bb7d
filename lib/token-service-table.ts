import { Stack, Validations } from 'aws-cdk-lib'
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import * as kms from 'aws-cdk-lib/aws-kms'
import * as cr from 'aws-cdk-lib/custom-resources'
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
 *
 * With `regions` (docs/multi-region.md) it is a global table (MREC): the primary region's
 * stack defines it (`AWS::DynamoDB::GlobalTable`, same construct id, so the same logical id
 * as the single-region table it may have been imported from) with a replica in every other
 * region, whose stacks name it by `tableName`. With one region it stays an
 * `AWS::DynamoDB::Table`: an upgrade replaces nothing.
 */
export function buildTable(scope: Construct, resolved: ResolvedProps): dynamodb.ITable {
  const { regions, tableName, tableMigration } = resolved
  if (!regions) return buildRegionalTable(scope, resolved)
  const name = tableName as string
  // Another region's replica, or the primary's table while it moves: named, not defined.
  const named = () =>
    dynamodb.TableV2.fromTableAttributes(scope, 'NamedTable', {
      tableName: name,
      grantIndexPermissions: true,
      // The forwarder's and, with `failover: 'adopt'`, the fork consumer's.
      ...((resolved.eventBus || resolved.regions?.failover === 'adopt') && {
        tableStreamArn: streamArnOf(scope, name),
      }),
    })
  if (regions.primaryKeys || tableMigration === 'detach') return named()
  if (tableMigration === 'import') {
    // An import may add the imported resource and change nothing else: the functions keep
    // naming the table as in the detach step, and the table is defined beside them.
    buildGlobalTable(scope, resolved, name, [])
    return named()
  }
  return buildGlobalTable(scope, resolved, name, regions.all.slice(1))
}

function tableKeyOf(scope: Construct, resolved: ResolvedProps): kms.Key | undefined {
  return resolved.tableEncryption === 'customer-managed'
    ? new kms.Key(scope, 'TableKey', {
        description: `Encrypts the table of ${scope.node.path} (users, password hashes, sessions)`,
        enableKeyRotation: true,
        policy: keyPolicy(TABLE_KEY_USE),
        removalPolicy: resolved.removalPolicy,
      })
    : undefined
}

const string = (name: string) => ({ name, type: dynamodb.AttributeType.STRING })

function buildRegionalTable(scope: Construct, resolved: ResolvedProps): dynamodb.Table {
  const { partitionKey, sortKey, ttlAttribute, gsi1 } = TABLE_SCHEMA
  const encryptionKey = tableKeyOf(scope, resolved)
  const table = new dynamodb.Table(scope, 'Table', {
    ...(resolved.tableName !== undefined && { tableName: resolved.tableName }),
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

/**
 * The global table, as the regional one in every setting the import compares (keys, GSI,
 * stream, TTL, PITR, deletion protection, encryption), with a replica in each of `replicas`.
 */
function buildGlobalTable(
  scope: Construct,
  resolved: ResolvedProps,
  tableName: string,
  replicas: readonly string[],
): dynamodb.TableV2 {
  const { partitionKey, sortKey, ttlAttribute, gsi1 } = TABLE_SCHEMA
  if (resolved.tableEncryption === 'customer-managed') {
    // A replica's customer-managed key must be a key of its region: not built yet.
    throw new Error(
      'TokenService: regions: tableEncryption "customer-managed" is not supported with regions yet; use "aws-managed" (docs/multi-region.md)',
    )
  }
  return new dynamodb.TableV2(scope, 'Table', {
    tableName,
    encryption: dynamodb.TableEncryptionV2.awsManagedKey(),
    partitionKey: string(partitionKey),
    sortKey: string(sortKey),
    billing: dynamodb.Billing.onDemand(),
    // Replicas need the stream with both images, whatever the bus says. The import declares
    // the stream as the regional table had it: an import must match the table as it is.
    ...(replicas.length > 0
      ? { dynamoStream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES }
      : resolved.eventBus && {
          dynamoStream: dynamodb.StreamViewType[TABLE_SCHEMA.streamViewType],
        }),
    timeToLiveAttribute: ttlAttribute,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    deletionProtection: resolved.deletionProtection,
    removalPolicy: resolved.removalPolicy,
    globalSecondaryIndexes: [
      {
        indexName: gsi1.indexName,
        partitionKey: string(gsi1.partitionKey),
        sortKey: string(gsi1.sortKey),
        projectionType: dynamodb.ProjectionType.ALL,
      },
    ],
    replicas: replicas.map((region) => ({
      region,
      deletionProtection: resolved.deletionProtection,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    })),
  })
}

/**
 * The stream ARN of this region's replica (its label is known only once it exists), read
 * with DescribeTable at deploy time.
 */
function streamArnOf(scope: Construct, tableName: string): string {
  const tableArn = Stack.of(scope).formatArn({
    service: 'dynamodb',
    resource: 'table',
    resourceName: tableName,
  })
  const describe = {
    service: 'DynamoDB',
    action: 'describeTable',
    parameters: { TableName: tableName },
    physicalResourceId: cr.PhysicalResourceId.of(`${tableName}-stream`),
    outputPaths: ['Table.LatestStreamArn'],
  }
  const lookup = new cr.AwsCustomResource(scope, 'TableStreamLookup', {
    onCreate: describe,
    onUpdate: describe,
    policy: cr.AwsCustomResourcePolicy.fromSdkCalls({ resources: [tableArn] }),
    installLatestAwsSdk: false,
  })
  // The provider of every AwsCustomResource of the stack: one function, run at deploy only.
  const provider = Stack.of(scope).node.tryFindChild(
    `AWS${cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace(/-/g, '')}`,
  )
  const reasons: Record<string, string> = {
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]':
      'The CDK provider of AwsCustomResource, which runs at deploy time only (DescribeTable of this region’s replica): its logs policy is the basic execution role.',
    'Serverless-LambdaDefaultMemorySize':
      'The CDK provider of AwsCustomResource: one DescribeTable per deploy.',
    'Serverless-LambdaDLQ':
      'The CDK provider of AwsCustomResource: CloudFormation waits for its answer and fails the deploy, there is no event to keep.',
    'Serverless-LambdaTracing': 'The CDK provider of AwsCustomResource: runs at deploy only.',
  }
  for (const [id, reason] of Object.entries(reasons)) {
    if (provider) Validations.of(provider).acknowledge({ id, reason })
  }
  return lookup.getResponseField('Table.LatestStreamArn')
}
