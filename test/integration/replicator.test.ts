/**
 * The simulation's replicator (test/support/regions.ts) behaves as MREC does where the
 * multi-region tests lean on it: the two replicas converge, last writer wins, whatever
 * order the replicator happens to see the writes in.
 */
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb'
import { afterEach, describe, expect, it } from 'vitest'
import { createTestTable } from '../support/dynamo.js'
import { REGIONS, Replicator, type Table } from '../support/regions.js'

let replicator: Replicator | undefined

afterEach(async () => {
  await replicator?.stop()
  replicator = undefined
})

async function twoTables(): Promise<[Table, Table]> {
  const [eu, us] = await Promise.all(
    REGIONS.map(async (region) => ({ region, ...(await createTestTable()) })),
  )
  return [eu as Table, us as Table]
}

const KEY = { pk: { S: 'REPLICATOR#item' }, sk: { S: 'REPLICATOR#item' } }

async function write(table: Table, value: string): Promise<void> {
  await table.client.send(
    new PutItemCommand({ TableName: table.tableName, Item: { ...KEY, value: { S: value } } }),
  )
}

async function read(table: Table): Promise<string | undefined> {
  const { Item } = await table.client.send(
    new GetItemCommand({ TableName: table.tableName, Key: KEY, ConsistentRead: true }),
  )
  return Item?.value?.S
}

describe('the simulation’s replicator (MREC in miniature)', () => {
  it('converges both replicas on the last write when a held write is released just after the other region wrote the same item, before the replicator saw that write', async () => {
    const tables = await twoTables()
    const [eu, us] = tables
    // No polling timer: the replicator sees writes only when asked, so the order is the test's.
    replicator = new Replicator(tables, 0)
    replicator.hold()
    await write(eu, 'first, in eu-west-1')
    await replicator.drain() // seen, held
    await write(us, 'last, in us-east-1') // not seen yet
    replicator.release()
    await replicator.drain()
    expect([await read(eu), await read(us)]).toEqual(['last, in us-east-1', 'last, in us-east-1'])
  })

  it('converges both replicas when each region wrote the item before one poll saw both writes, on a clock that stands still', async () => {
    const tables = await twoTables()
    const [eu, us] = tables
    replicator = new Replicator(tables, 0, undefined, { now: () => 0 })
    await write(eu, 'in eu-west-1')
    await write(us, 'in us-east-1')
    await replicator.drain()
    const values = [await read(eu), await read(us)]
    expect(values[0]).toBe(values[1])
  })

  it('applies a write to the other replica when nothing newer was written there', async () => {
    const tables = await twoTables()
    const [eu, us] = tables
    replicator = new Replicator(tables, 0)
    await write(eu, 'only write')
    await replicator.drain()
    expect([await read(eu), await read(us)]).toEqual(['only write', 'only write'])
  })
})
