/**
 * Events once across regions (docs/multi-region.md "Events once"): every replica's stream
 * carries every outbox item, so each region's forwarder must take only the items its own
 * region wrote. The outbox items are written by the real adapter to DynamoDB Local and read
 * back from its stream; the filters are the ones the two regional stacks synthesize, applied
 * as Lambda's event filtering does (test/stack/deployment.ts `matchesFilter`).
 */
import { Template } from 'aws-cdk-lib/assertions'
import type { DynamoDBRecord } from 'aws-lambda'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DynamoOutbox } from '../../functions/adapters/dynamodb/outbox.js'
import { setOutboxRegion } from '../../functions/adapters/dynamodb/outbox-item.js'
import { securityEvent } from '../../functions/core/security-events.js'
import { buildStacks } from '../../lib/app-stacks.js'
import { testApp, testClients } from '../infra/synth.js'
import { matchesFilter } from '../stack/deployment.js'
import { createTestTable } from '../support/dynamo.js'
import { streamRecords } from '../support/streams.js'

const REGIONS = ['eu-west-1', 'us-east-1'] as const

/** Each region's forwarder's filter patterns, as its synthesized event source mapping has them. */
function forwarderFilters(): Record<string, unknown[]> {
  const app = testApp()
  const { stacks } = buildStacks(
    app,
    {
      stackName: 'TokenService',
      props: { clients: testClients, issuer: 'https://auth.example.com' },
      regions: [...REGIONS],
    },
    { transitionKeys: [], modes: { k1: 'kms' }, multiRegionKeys: ['k1'] },
  )
  return Object.fromEntries(
    stacks.map((stack) => {
      const mappings = Template.fromStack(stack).findResources('AWS::Lambda::EventSourceMapping')
      const [mapping] = Object.values(mappings) as {
        Properties: { FilterCriteria: { Filters: { Pattern: string }[] } }
      }[]
      const patterns = (mapping?.Properties.FilterCriteria.Filters ?? []).map(
        (filter) => JSON.parse(filter.Pattern) as unknown,
      )
      return [stack.region, patterns]
    }),
  )
}

describe('each security event reaches the bus once, from the region that wrote it', () => {
  let filters: Record<string, unknown[]>
  let records: DynamoDBRecord[]
  const ids = { eu: '', us: '', unmarked: '' }

  beforeAll(async () => {
    filters = forwarderFilters()
    const { client, tableName } = await createTestTable()
    const outbox = new DynamoOutbox(client, tableName)
    const write = async (region: string | undefined) => {
      setOutboxRegion(region)
      const event = securityEvent('session.revoked', Date.now(), { subject: 'u1' })
      await outbox.appendEvent(event)
      return event.id
    }
    ids.eu = await write('eu-west-1')
    ids.us = await write('us-east-1')
    // Written before regions were set, or by `npm run users`: no mark.
    ids.unmarked = await write(undefined)
    records = await streamRecords(tableName)
  }, 30_000)
  afterEach(() => setOutboxRegion(undefined))

  const takers = (id: string) => {
    const record = records.find((r) => r.dynamodb?.NewImage?.id?.S === id)
    expect(record, id).toBeDefined()
    return REGIONS.filter((region) =>
      (filters[region] ?? []).some((pattern) => matchesFilter(pattern, record)),
    )
  }

  it('marks an outbox item with the region that wrote it, and leaves it unmarked with one region', () => {
    const image = (id: string) => records.find((r) => r.dynamodb?.NewImage?.id?.S === id)
    expect(image(ids.eu)?.dynamodb?.NewImage?.region).toEqual({ S: 'eu-west-1' })
    expect(image(ids.unmarked)?.dynamodb?.NewImage).not.toHaveProperty('region')
  })

  it('forwards an event written in a region from that region only (its replica elsewhere is skipped)', () => {
    expect(takers(ids.eu)).toEqual(['eu-west-1'])
    expect(takers(ids.us)).toEqual(['us-east-1'])
  })

  it('forwards an unmarked event from the primary only', () => {
    expect(takers(ids.unmarked)).toEqual(['eu-west-1'])
  })

  it('sends no forwarder anything but inserted outbox items', () => {
    const removed = { eventName: 'REMOVE', dynamodb: records[0]?.dynamodb }
    for (const region of REGIONS) {
      expect((filters[region] ?? []).some((pattern) => matchesFilter(pattern, removed))).toBe(false)
    }
  })
})
