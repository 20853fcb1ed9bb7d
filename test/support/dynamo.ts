import { randomBytes } from 'node:crypto'
import { CreateTableCommand, DynamoDBClient, waitUntilTableExists } from '@aws-sdk/client-dynamodb'
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb'
import { tableDefinition } from '../../functions/adapters/dynamodb/table.js'

/** A fresh table on DynamoDB Local (`DYNAMODB_ENDPOINT`, set by test/setup.ts). Never deleted. */
export async function createTestTable(
  options: { readonly streamViewType?: 'NEW_IMAGE' | 'NEW_AND_OLD_IMAGES' } = {},
): Promise<{
  tableName: string
  client: DynamoDBClient
  doc: DynamoDBDocumentClient
}> {
  const endpoint = process.env.DYNAMODB_ENDPOINT
  if (!endpoint) throw new Error('DYNAMODB_ENDPOINT is not set (test/setup.ts sets it)')
  const tableName = `test-${randomBytes(8).toString('hex')}`
  const client = new DynamoDBClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  })
  const definition = tableDefinition(tableName)
  if (options.streamViewType) {
    definition.StreamSpecification = { StreamEnabled: true, StreamViewType: options.streamViewType }
  }
  await client.send(new CreateTableCommand(definition))
  await waitUntilTableExists(
    { client, maxWaitTime: 30, minDelay: 1, maxDelay: 1 },
    { TableName: tableName },
  )
  const doc = DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true },
  })
  return { tableName, client, doc }
}
