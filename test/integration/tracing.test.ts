/**
 * The functions' X-Ray subsegments (functions/adapters/tracing.ts): each AWS SDK call of a
 * sampled invocation reaches the X-Ray daemon's UDP port as one segment document, parented
 * to the invocation by the trace header, with the call's service, operation, table and
 * outcome. The daemon here is a UDP socket; the calls go to DynamoDB Local.
 */
import { createSocket, type Socket } from 'node:dgram'
import type { AddressInfo } from 'node:net'
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { sampledTrace, traced } from '../../functions/adapters/tracing.js'
import { createTestTable } from '../support/dynamo.js'

const TRACE = 'Root=1-6755f2a0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8'
const SAMPLED = `${TRACE};Sampled=1;Lineage=a87bd80c:0`

let daemon: Socket
let tableName: string
const received: string[] = []
const waiting: ((datagram: string) => void)[] = []

/** The next datagram the daemon receives. */
const nextDatagram = () =>
  new Promise<string>((resolve) => {
    const ready = received.shift()
    if (ready !== undefined) resolve(ready)
    else waiting.push(resolve)
  })

/** The subsegment of a datagram, after checking its header line. */
async function nextSubsegment(): Promise<Record<string, unknown>> {
  const [header, body, ...rest] = (await nextDatagram()).split('\n')
  expect(JSON.parse(header ?? '')).toEqual({ format: 'json', version: 1 })
  expect(rest).toEqual([])
  return JSON.parse(body ?? '')
}

function tracedClient() {
  return traced(
    new DynamoDBClient({
      endpoint: process.env.DYNAMODB_ENDPOINT,
      region: 'eu-west-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    }),
  )
}

beforeAll(async () => {
  daemon = createSocket('udp4')
  daemon.on('message', (message) => {
    const resolve = waiting.shift()
    if (resolve) resolve(message.toString('utf8'))
    else received.push(message.toString('utf8'))
  })
  await new Promise<void>((resolve) => daemon.bind(0, '127.0.0.1', resolve))
  process.env.AWS_XRAY_DAEMON_ADDRESS = `127.0.0.1:${(daemon.address() as AddressInfo).port}`
  tableName = (await createTestTable()).tableName
})

beforeEach(() => {
  process.env._X_AMZN_TRACE_ID = SAMPLED
  delete process.env.POWERTOOLS_TRACE_ENABLED
})

afterAll(() => {
  delete process.env.AWS_XRAY_DAEMON_ADDRESS
  delete process.env._X_AMZN_TRACE_ID
  daemon.close()
})

describe('X-Ray subsegments of the AWS SDK calls', () => {
  it('sends one subsegment per call of a sampled invocation, parented to the invocation by the trace header', async () => {
    const doc = DynamoDBDocumentClient.from(tracedClient())
    const before = Date.now() / 1000
    await doc.send(new PutCommand({ TableName: tableName, Item: { pk: 'TRACE#1', sk: 'A' } }))
    const after = Date.now() / 1000
    const subsegment = await nextSubsegment()
    expect(subsegment).toMatchObject({
      name: 'DynamoDB',
      type: 'subsegment',
      namespace: 'aws',
      trace_id: '1-6755f2a0-0123456789abcdef01234567',
      parent_id: '53995c3f42cd8ad8',
      aws: {
        operation: 'PutItem',
        region: process.env.AWS_REGION,
        table_name: tableName,
        retries: 0,
      },
      http: { response: { status: 200 } },
    })
    expect(subsegment.id).toMatch(/^[0-9a-f]{16}$/)
    const { start_time, end_time } = subsegment as { start_time: number; end_time: number }
    expect(start_time).toBeGreaterThanOrEqual(Math.floor(before * 1000) / 1000)
    expect(end_time).toBeGreaterThanOrEqual(start_time)
    expect(end_time).toBeLessThanOrEqual(after + 0.001)
    expect(subsegment).not.toHaveProperty('error')
    expect(subsegment).not.toHaveProperty('fault')
  })

  it('sends nothing for an invocation Lambda did not sample, or with tracing off', async () => {
    const doc = DynamoDBDocumentClient.from(tracedClient())
    process.env._X_AMZN_TRACE_ID = `${TRACE};Sampled=0`
    await doc.send(new GetCommand({ TableName: tableName, Key: { pk: 'TRACE#1', sk: 'A' } }))
    delete process.env._X_AMZN_TRACE_ID
    await doc.send(new GetCommand({ TableName: tableName, Key: { pk: 'TRACE#1', sk: 'A' } }))
    process.env.POWERTOOLS_TRACE_ENABLED = 'false'
    const off = DynamoDBDocumentClient.from(tracedClient())
    process.env._X_AMZN_TRACE_ID = SAMPLED
    await off.send(new GetCommand({ TableName: tableName, Key: { pk: 'TRACE#1', sk: 'A' } }))
    delete process.env.POWERTOOLS_TRACE_ENABLED
    // The first datagram to arrive is the one of the next sampled, traced call.
    await tracedClient().send(new DescribeTableCommand({ TableName: tableName }))
    expect(await nextSubsegment()).toMatchObject({ aws: { operation: 'DescribeTable' } })
  })

  it('marks a refused call as an error with its exception, and passes the exception on unchanged', async () => {
    const client = tracedClient()
    const failure = await client
      .send(new DescribeTableCommand({ TableName: 'no-such-table' }))
      .catch((error: Error) => error)
    expect(failure).toMatchObject({ name: 'ResourceNotFoundException' })
    const subsegment = await nextSubsegment()
    expect(subsegment).toMatchObject({
      name: 'DynamoDB',
      aws: { operation: 'DescribeTable', table_name: 'no-such-table' },
      http: { response: { status: 400 } },
      error: true,
      cause: { exceptions: [{ type: 'ResourceNotFoundException', remote: true }] },
    })
    expect(subsegment).not.toHaveProperty('fault')
    expect(subsegment).not.toHaveProperty('throttle')
  })

  it('marks a call nobody answered as a fault', async () => {
    const client = traced(
      new DynamoDBClient({
        endpoint: 'http://127.0.0.1:9',
        region: 'eu-west-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        maxAttempts: 1,
      }),
    )
    await expect(client.send(new DescribeTableCommand({ TableName: tableName }))).rejects.toThrow()
    const subsegment = await nextSubsegment()
    expect(subsegment).toMatchObject({ name: 'DynamoDB', fault: true })
    expect(subsegment).not.toHaveProperty('http')
    expect(subsegment).not.toHaveProperty('error')
  })
})

describe('the trace header', () => {
  it('is sampled only with Sampled=1 and both a root and a parent', () => {
    expect(sampledTrace(SAMPLED)).toEqual({
      traceId: '1-6755f2a0-0123456789abcdef01234567',
      parentId: '53995c3f42cd8ad8',
    })
    expect(sampledTrace(`${TRACE};Sampled=0`)).toBeUndefined()
    expect(sampledTrace('Root=1-6755f2a0-0123456789abcdef01234567;Sampled=1')).toBeUndefined()
    expect(sampledTrace(undefined)).toBeUndefined()
  })
})
