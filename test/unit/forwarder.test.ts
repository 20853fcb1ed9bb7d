/**
 * The forwarder at the SDK boundary (docs/design.md "Security events"): its
 * Lambda handler, as bundled, on a mocked EventBridge client. Stream records
 * are made from outbox items as the table's stream shows them.
 */
import {
  EventBridgeClient,
  PutEventsCommand,
  type PutEventsCommandInput,
} from '@aws-sdk/client-eventbridge'
import { marshall } from '@aws-sdk/util-dynamodb'
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda'
import { mockClient } from 'aws-sdk-client-mock'
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { outboxItem } from '../../functions/adapters/dynamodb/outbox-item.js'
import {
  type SecurityEvent,
  securityEvent,
  sessionRevoked,
  toCloudEvent,
} from '../../functions/core/security-events.js'
import type { BatchResponse } from '../../functions/forwarder/forward.js'

const ISSUER = 'https://auth.example.com'
const BUS = 'token-service-security-events'
const eventbridge = mockClient(EventBridgeClient)
let handler: (event: DynamoDBStreamEvent) => Promise<BatchResponse>

beforeAll(async () => {
  vi.stubEnv('EVENT_BUS_NAME', BUS)
  vi.stubEnv('ISSUER', ISSUER)
  ;({ handler } = await import('../../functions/forwarder/handler.js'))
})
beforeEach(() => eventbridge.reset())
afterEach(() => eventbridge.reset())

let sequence = 100
/** A stream record of an item (NEW_IMAGE), as Lambda hands it over. */
function record(
  item: Record<string, unknown>,
  eventName: 'INSERT' | 'MODIFY' | 'REMOVE' = 'INSERT',
): DynamoDBRecord {
  sequence += 1
  const image = marshall(item, { removeUndefinedValues: true })
  return {
    eventID: `e${sequence}`,
    eventName,
    eventSource: 'aws:dynamodb',
    dynamodb: {
      Keys: { pk: image.pk, sk: image.sk } as never,
      ...(eventName === 'REMOVE' ? {} : { NewImage: image as never }),
      SequenceNumber: String(sequence).padStart(21, '0'),
      StreamViewType: 'NEW_IMAGE',
    },
  }
}

const anEvent = (n: number): SecurityEvent =>
  securityEvent('login.succeeded', Date.UTC(2026, 10, 30, 12, 0, n), {
    subject: `sub-${n}`,
    data: { sid: `sid-${n}`, client_id: 'native' },
    origin: { sourceIp: '203.0.113.9', userAgent: 'test-agent/1' },
  })

const inserted = (events: readonly SecurityEvent[]) =>
  events.map((event) => record(outboxItem.toItem(event)))

/** Every entry PutEvents was given, in call order. */
const entries = () =>
  eventbridge
    .commandCalls(PutEventsCommand)
    .flatMap((call) => (call.args[0].input as PutEventsCommandInput).Entries ?? [])

const detailIds = () => entries().map((entry) => JSON.parse(entry.Detail as string).id)

/** Answers every PutEvents with success for each entry. */
function acceptAll() {
  eventbridge.on(PutEventsCommand).callsFake((input: PutEventsCommandInput) => ({
    FailedEntryCount: 0,
    Entries: (input.Entries ?? []).map((_, i) => ({ EventId: `eb-${i}` })),
  }))
}

/**
 * What Lambda's event source mapping does with a partial batch response: sends
 * the batch again from the record it names, until none is named.
 */
async function asLambda(records: DynamoDBRecord[]): Promise<number> {
  let batch = records
  let invocations = 0
  for (;;) {
    invocations += 1
    const { batchItemFailures } = await handler({ Records: batch })
    const [failure] = batchItemFailures
    if (!failure) return invocations
    const from = batch.findIndex((r) => r.dynamodb?.SequenceNumber === failure.itemIdentifier)
    expect(from).toBeGreaterThanOrEqual(0)
    batch = batch.slice(from)
  }
}

describe('the forwarder', () => {
  it('puts each inserted outbox item on the bus as one entry: its type the detail-type, its CloudEvent (with the outbox id) the detail', async () => {
    acceptAll()
    const event = sessionRevoked(
      { sid: 'sid-1', sub: 'sub-1', clientId: 'native' },
      'reuse',
      Date.UTC(2026, 10, 30, 12, 0, 0),
      { sourceIp: '203.0.113.9', userAgent: 'test-agent/1' },
    )
    expect(await handler({ Records: inserted([event]) })).toEqual({ batchItemFailures: [] })
    expect(entries()).toEqual([
      {
        EventBusName: BUS,
        Source: 'token-service',
        DetailType: 'session.revoked',
        Time: new Date(event.time),
        Detail: JSON.stringify(toCloudEvent(event, ISSUER)),
      },
    ])
    expect(JSON.parse(entries()[0]?.Detail as string)).toEqual({
      specversion: '1.0',
      id: event.id,
      source: ISSUER,
      type: 'session.revoked',
      time: '2026-11-30T12:00:00.000Z',
      subject: 'sub-1',
      datacontenttype: 'application/json',
      data: {
        sid: 'sid-1',
        client_id: 'native',
        reason: 'reuse',
        source_ip: '203.0.113.9',
        user_agent: 'test-agent/1',
      },
    })
  })

  it('skips every other record: other items, an outbox item written again (MODIFY) or expired (REMOVE)', async () => {
    acceptAll()
    const event = anEvent(1)
    const item = outboxItem.toItem(event)
    const records = [
      record({ pk: 'SESSION#s', sk: 'SESSION', sid: 's', status: 'active' }),
      record(item, 'MODIFY'),
      record(item, 'REMOVE'),
      record({ pk: 'EVENT#x', sk: 'EVENT', id: 'x', type: 'not.a.type', time: 1, data: {} }),
    ]
    expect(await handler({ Records: records })).toEqual({ batchItemFailures: [] })
    expect(eventbridge.commandCalls(PutEventsCommand)).toHaveLength(0)
  })

  it('skips an outbox item it cannot read (a bug), logs its key, and sends the others', async () => {
    acceptAll()
    const good = anEvent(7)
    const broken = { pk: 'EVENT#broken', sk: 'EVENT', id: 'broken', type: 'login.failed' }
    // Powertools writes errors to stderr; Lambda sends both streams to the log group.
    const logged: string[] = []
    const spies = [process.stdout, process.stderr].map((stream) => {
      const write = stream.write.bind(stream)
      return vi.spyOn(stream, 'write').mockImplementation(((chunk: unknown) => {
        logged.push(String(chunk))
        return write(chunk as string)
      }) as typeof stream.write)
    })
    try {
      const records = [record(broken), ...inserted([good])]
      expect(await handler({ Records: records })).toEqual({ batchItemFailures: [] })
    } finally {
      for (const spy of spies) spy.mockRestore()
    }
    expect(detailIds()).toEqual([good.id])
    const error = logged.map((line) => JSON.parse(line)).find((line) => line.level === 'ERROR')
    expect(error).toMatchObject({ unreadable: ['EVENT#broken'], sent: 1 })
  })

  it('sends at most 10 entries per PutEvents, every event once', async () => {
    acceptAll()
    const events = Array.from({ length: 25 }, (_, n) => anEvent(n))
    expect(await handler({ Records: inserted(events) })).toEqual({ batchItemFailures: [] })
    const sizes = eventbridge
      .commandCalls(PutEventsCommand)
      .map((call) => call.args[0].input.Entries?.length)
    expect(sizes).toEqual([10, 10, 5])
    expect(detailIds().sort()).toEqual(events.map((e) => e.id).sort())
  })

  it('loses no event when EventBridge refuses some entries: Lambda resends from the first refused, with the same ids', async () => {
    const events = Array.from({ length: 15 }, (_, n) => anEvent(n))
    let calls = 0
    eventbridge.on(PutEventsCommand).callsFake((input: PutEventsCommandInput) => {
      calls += 1
      // The first call refuses its 4th entry (an EventBridge internal failure); then all pass.
      return {
        FailedEntryCount: calls === 1 ? 1 : 0,
        Entries: (input.Entries ?? []).map((_, i) =>
          calls === 1 && i === 3
            ? { ErrorCode: 'InternalFailure', ErrorMessage: 'try again' }
            : { EventId: `eb-${calls}-${i}` },
        ),
      }
    })
    const records = inserted(events)
    const first = await handler({ Records: records })
    expect(first.batchItemFailures).toEqual([
      { itemIdentifier: records[3]?.dynamodb?.SequenceNumber },
    ])
    eventbridge.resetHistory()
    expect(await asLambda(records.slice(3))).toBe(1)
    // The resend carries the refused event and every one after it, under their own ids.
    expect(detailIds()).toEqual(events.slice(3).map((e) => e.id))
  })

  it('loses no event when PutEvents fails outright: the batch is resent from its first record, same ids, and the function does not fail', async () => {
    const events = Array.from({ length: 12 }, (_, n) => anEvent(n))
    const delivered: string[] = []
    let failing = 2
    eventbridge.on(PutEventsCommand).callsFake((input: PutEventsCommandInput) => {
      if (failing-- > 0)
        throw Object.assign(new Error('unavailable'), { name: 'InternalException' })
      for (const entry of input.Entries ?? []) delivered.push(JSON.parse(entry.Detail as string).id)
      return {
        FailedEntryCount: 0,
        Entries: (input.Entries ?? []).map((_, i) => ({ EventId: `eb-${i}` })),
      }
    })
    const invocations = await asLambda(inserted(events))
    expect(invocations).toBeGreaterThan(1)
    // At least once, each with the id its outbox item holds: a consumer deduplicates by id.
    expect([...new Set(delivered)].sort()).toEqual(events.map((e) => e.id).sort())
  })
})
