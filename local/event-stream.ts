/**
 * Local mode's forwarder (docs/design.md "Security events"): DynamoDB Local
 * has Streams too, so local mode reads the table's stream as Lambda's poller
 * does in AWS, and hands its records to the same `forward` the forwarder
 * function runs, with a sink that prints each CloudEvent as one JSON line on
 * standard output. A stream shows committed writes only: a line is printed if
 * and only if its change committed, as an event reaches the bus in AWS.
 */
import {
  DescribeTableCommand,
  type DynamoDBClient,
  UpdateTableCommand,
} from '@aws-sdk/client-dynamodb'
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type ShardIteratorType,
} from '@aws-sdk/client-dynamodb-streams'
import { TABLE_SCHEMA } from '../functions/adapters/dynamodb/table.js'
import type { CloudEvent } from '../functions/core/security-events.js'
import { type EventSink, forward, type StreamRecord } from '../functions/forwarder/forward.js'

export interface EventTail {
  /** Stops polling; resolves once the last poll is over. */
  stop(): Promise<void>
}

export interface EventTailOptions {
  /** DynamoDB Local's endpoint: its Streams API is served there too. */
  readonly endpoint: string
  /** A client of that DynamoDB Local. */
  readonly dynamodb: DynamoDBClient
  readonly tableName: string
  /** The CloudEvents `source`: the issuer. */
  readonly source: string
  /** Where each line goes. @default standard output */
  readonly write?: (line: string) => void
  /** Colour each line (see `printingSink`). @default `colourTerminal()` when writing to standard output */
  readonly highlight?: boolean
  /** The pause between polls of a quiet stream. @default 200 */
  readonly pollMs?: number
  /** Told about a failed poll (the tail keeps polling). @default nothing */
  readonly onError?: (error: unknown) => void
}

/** Bold yellow at a terminal: an event stands out among the functions' JSON log lines. */
const HIGHLIGHT = ['\u001b[1;33m', '\u001b[0m'] as const

/**
 * The sink of local mode: one JSON line per event, the envelope itself. With `highlight`
 * (a terminal), the line is wrapped in a colour; the JSON between stays intact.
 */
export const printingSink = (
  write: (line: string) => void,
  options: { readonly highlight?: boolean } = {},
): EventSink => ({
  maxBatch: 1000,
  async send(events: readonly CloudEvent[]) {
    const [start, end] = options.highlight ? HIGHLIGHT : ['', '']
    for (const event of events) write(`${start}${JSON.stringify(event)}${end}\n`)
    return []
  },
})

/** Colour for a terminal that takes it: standard output is one, and NO_COLOR is not set. */
export const colourTerminal = (env: NodeJS.ProcessEnv = process.env): boolean =>
  Boolean(process.stdout.isTTY) && !env.NO_COLOR && env.TERM !== 'dumb'

/**
 * Follows the table's stream from now on (its stream turned on first, for a
 * table kept in `DATA_DIR` from before there was one) and prints its events.
 */
export async function tailSecurityEvents(options: EventTailOptions): Promise<EventTail> {
  const { dynamodb, tableName, source, pollMs = 200 } = options
  const sink = printingSink(options.write ?? ((line) => process.stdout.write(line)), {
    highlight: options.highlight ?? (options.write === undefined && colourTerminal()),
  })
  // DynamoDB Local accepts any region and credentials.
  const streams = new DynamoDBStreamsClient({
    endpoint: options.endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  })
  const streamArn = await streamOf(dynamodb, tableName)
  // Shard id -> the iterator to read it from next; a closed, drained shard is dropped.
  const iterators = new Map<string, string>()
  const done = new Set<string>()
  const follow = async (from: ShardIteratorType) => {
    const { StreamDescription } = await streams.send(
      new DescribeStreamCommand({ StreamArn: streamArn }),
    )
    for (const shard of StreamDescription?.Shards ?? []) {
      const id = shard.ShardId as string
      if (iterators.has(id) || done.has(id)) continue
      // At start, closed shards hold the past only; shards opened later are read from their start.
      if (from === 'LATEST' && shard.SequenceNumberRange?.EndingSequenceNumber) {
        done.add(id)
        continue
      }
      const { ShardIterator } = await streams.send(
        new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: id, ShardIteratorType: from }),
      )
      if (ShardIterator) iterators.set(id, ShardIterator)
    }
  }
  await follow('LATEST')

  let stopping = false
  let lastLook = Date.now()
  const poll = async () => {
    while (!stopping) {
      let read = 0
      try {
        let closed = false
        for (const [id, iterator] of [...iterators]) {
          const { Records = [], NextShardIterator } = await streams.send(
            new GetRecordsCommand({ ShardIterator: iterator }),
          )
          read += Records.length
          await forward(Records as unknown as StreamRecord[], sink, source)
          if (NextShardIterator) iterators.set(id, NextShardIterator)
          else {
            iterators.delete(id)
            done.add(id)
            closed = true
          }
        }
        // New shards follow a closed one, or appear now and then: look for them.
        if (closed || Date.now() - lastLook > 5000) {
          lastLook = Date.now()
          await follow('TRIM_HORIZON')
        }
      } catch (error) {
        if (!stopping) options.onError?.(error)
      }
      if (read === 0 && !stopping) await new Promise((resolve) => setTimeout(resolve, pollMs))
    }
  }
  const polling = poll()
  return {
    async stop() {
      stopping = true
      await polling
      streams.destroy()
    },
  }
}

/** The table's latest stream, turned on if the table has none. */
async function streamOf(dynamodb: DynamoDBClient, tableName: string): Promise<string> {
  const { Table } = await dynamodb.send(new DescribeTableCommand({ TableName: tableName }))
  if (Table?.LatestStreamArn && Table.StreamSpecification?.StreamEnabled) {
    return Table.LatestStreamArn
  }
  const { TableDescription } = await dynamodb.send(
    new UpdateTableCommand({
      TableName: tableName,
      StreamSpecification: { StreamEnabled: true, StreamViewType: TABLE_SCHEMA.streamViewType },
    }),
  )
  if (!TableDescription?.LatestStreamArn) throw new Error(`table ${tableName} has no stream`)
  return TableDescription.LatestStreamArn
}
