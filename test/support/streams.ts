/**
 * The table's stream on DynamoDB Local (which has Streams), read from its
 * start: what Lambda's poller would hand the forwarder.
 */
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb'
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams'
import type { DynamoDBRecord } from 'aws-lambda'

/**
 * Every record the table's stream holds now, shard by shard, each in stream
 * order, as the SDK returns them (`ApproximateCreationDateTime` a Date).
 * @param endpoint DynamoDB Local. @default `DYNAMODB_ENDPOINT` (test/setup.ts)
 */
export async function streamRecords(
  tableName: string,
  endpoint = process.env.DYNAMODB_ENDPOINT,
): Promise<DynamoDBRecord[]> {
  if (!endpoint) throw new Error('DYNAMODB_ENDPOINT is not set (test/setup.ts sets it)')
  const local = {
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
  }
  const dynamodb = new DynamoDBClient(local)
  const { Table } = await dynamodb.send(new DescribeTableCommand({ TableName: tableName }))
  dynamodb.destroy()
  const streamArn = Table?.LatestStreamArn
  if (!streamArn) throw new Error(`table ${tableName} has no stream`)
  const streams = new DynamoDBStreamsClient(local)
  try {
    const { StreamDescription } = await streams.send(
      new DescribeStreamCommand({ StreamArn: streamArn }),
    )
    const records: DynamoDBRecord[] = []
    for (const shard of StreamDescription?.Shards ?? []) {
      let { ShardIterator: iterator } = await streams.send(
        new GetShardIteratorCommand({
          StreamArn: streamArn,
          ShardId: shard.ShardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      )
      while (iterator) {
        const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator }))
        const got = page.Records ?? []
        records.push(...(got as unknown as DynamoDBRecord[]))
        // An open shard always has a next iterator: an empty page means caught up.
        if (got.length === 0) break
        iterator = page.NextShardIterator
      }
    }
    return records
  } finally {
    streams.destroy()
  }
}
