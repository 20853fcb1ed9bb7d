import { marshall } from '@aws-sdk/util-dynamodb'
import { describe, expect, it } from 'vitest'
import { isFork } from '../../functions/core/forks.js'
import { lostRegions, type RegionDeclaration } from '../../functions/core/regions.js'
import { forkedBy } from '../../functions/forks/consume.js'
import { FakeClock } from '../support/clock.js'

/** docs/multi-region.md "Fork detection": the rule on a replaced session item. */
describe('a fork is a replaced session item that does not descend from the one it replaced', () => {
  it('is not a fork: a rotation of the same home (same epoch, a later generation)', () => {
    expect(isFork({ generation: 3 }, { generation: 4 })).toBe(false)
    expect(
      isFork({ generation: 3, epoch: 1, home: 'b' }, { generation: 4, epoch: 1, home: 'b' }),
    ).toBe(false)
  })

  it('is not a fork: an adoption made from a replica that had seen every rotation of the old home', () => {
    expect(isFork({ generation: 3 }, { generation: 4, epoch: 1, adoptedAt: 3, home: 'b' })).toBe(
      false,
    )
  })

  it('is a fork: an adoption made from a replica behind the old home (it missed a rotation)', () => {
    expect(isFork({ generation: 4 }, { generation: 4, epoch: 1, adoptedAt: 3, home: 'b' })).toBe(
      true,
    )
  })

  it('is a fork: a write of the old home (a lower epoch) over an adoption', () => {
    expect(isFork({ generation: 4, epoch: 1, adoptedAt: 3, home: 'b' }, { generation: 4 })).toBe(
      true,
    )
    expect(isFork({ generation: 9, epoch: 2 }, { generation: 10, epoch: 1 })).toBe(true)
  })

  it('is a fork: two regions that adopted at the same epoch (three regions)', () => {
    expect(
      isFork({ generation: 4, epoch: 1, home: 'b' }, { generation: 4, epoch: 1, home: 'c' }),
    ).toBe(true)
  })

  it('is a fork: the same home and epoch going back a generation (no home writes that)', () => {
    expect(
      isFork({ generation: 5, epoch: 1, home: 'b' }, { generation: 4, epoch: 1, home: 'b' }),
    ).toBe(true)
  })

  it('is not a fork: a revocation (same epoch, same generation)', () => {
    expect(
      isFork({ generation: 4, epoch: 1, home: 'b' }, { generation: 4, epoch: 1, home: 'b' }),
    ).toBe(false)
  })
})

describe('the fork consumer reads the rule off a stream record', () => {
  const session = (fields: Record<string, unknown>) =>
    marshall(
      {
        pk: 'SESSION#s1',
        sk: 'SESSION',
        sid: 's1',
        sub: 'u1',
        client_id: 'c',
        scope: 'api',
        status: 'active',
        created_at: 1,
        last_used_at: 1,
        idle_expires_at: 2,
        absolute_expires_at: 3,
        current_hash: 'h',
        ...fields,
      },
      { removeUndefinedValues: true },
    )

  it('names the forked session and its converged home for a MODIFY whose new image forks', () => {
    const record = {
      eventName: 'MODIFY',
      dynamodb: {
        OldImage: session({ generation: 4, home: 'a' }),
        NewImage: session({ generation: 4, home: 'b', epoch: 1, adopted_at: 3 }),
      },
    }
    expect(forkedBy(record)).toEqual({ sid: 's1', home: 'b' })
  })

  it('ignores a descendant, an insert, and an item that is not a session', () => {
    const descendant = {
      eventName: 'MODIFY',
      dynamodb: {
        OldImage: session({ generation: 3, home: 'a' }),
        NewImage: session({ generation: 4, home: 'b', epoch: 1, adopted_at: 3 }),
      },
    }
    expect(forkedBy(descendant)).toBeUndefined()
    expect(
      forkedBy({ eventName: 'INSERT', dynamodb: { NewImage: session({ generation: 0 }) } }),
    ).toBeUndefined()
    const token = {
      eventName: 'MODIFY',
      dynamodb: {
        OldImage: marshall({ pk: 'SESSION#s1', sk: 'TOKEN#x', generation: 5 }),
        NewImage: marshall({ pk: 'SESSION#s1', sk: 'TOKEN#x', generation: 1, epoch: 1 }),
      },
    }
    expect(forkedBy(token)).toBeUndefined()
  })
})

describe('the region switch is read at most once per cache period per container', () => {
  const declared = (state: 'lost' | 'restored'): RegionDeclaration => ({
    region: 'eu-west-1',
    state,
    by: 'ops',
    at: 0,
  })

  it('reads once within the period, and again after it, seeing a restore', async () => {
    const clock = new FakeClock()
    let state: 'lost' | 'restored' = 'lost'
    let reads = 0
    const lost = lostRegions(
      {
        findRegionDeclaration: async () => {
          reads++
          return declared(state)
        },
      },
      clock,
      10_000,
    )
    expect(await lost.isLost('eu-west-1')).toBe(true)
    state = 'restored'
    expect(await lost.isLost('eu-west-1')).toBe(true)
    expect(reads).toBe(1)
    clock.advance(10)
    expect(await lost.isLost('eu-west-1')).toBe(false)
    expect(reads).toBe(2)
  })

  it('takes a region with no declaration as not lost, and caches no failed read', async () => {
    const clock = new FakeClock()
    let fail = true
    const lost = lostRegions(
      {
        findRegionDeclaration: async () => {
          if (fail) throw new Error('throttled')
          return undefined
        },
      },
      clock,
    )
    await expect(lost.isLost('eu-west-1')).rejects.toThrow('throttled')
    fail = false
    expect(await lost.isLost('eu-west-1')).toBe(false)
  })
})
