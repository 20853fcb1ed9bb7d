/**
 * `failover: 'adopt'` (docs/multi-region.md "When a region is lost"), in the two-region
 * simulation (test/support/regions.ts): the operators' switch declares a region lost, a
 * healthy region takes its sessions over, the item's home decides from then on, and a
 * session two regions decided apart is ended once the replicas converge (the fork consumer
 * runs on each region's stream records, behind the filters its mapping synthesizes).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DynamoRegionSwitch } from '../../functions/adapters/dynamodb/regions.js'
import type { User } from '../../functions/core/ports.js'
import { parseRefreshToken } from '../../functions/core/refresh-token.js'
import { REGION_SWITCH_CACHE_MS } from '../../functions/core/regions.js'
import { NATIVE, PASSWORD } from '../support/harness.js'
import { items } from '../support/items.js'
import { type Region, startTwoRegions, type TwoRegions } from '../support/regions.js'

const EU: Region = 'eu-west-1'
const US: Region = 'us-east-1'
const INVALID_GRANT = {
  error: 'invalid_grant',
  error_description: 'the credentials or refresh token are invalid, expired or revoked',
}

let sim: TwoRegions
let user: User

beforeAll(async () => {
  sim = await startTwoRegions({ clients: [NATIVE], replicationDelayMs: 50, failover: 'adopt' })
  user = await sim.region[EU].addUser()
  await sim.replicator.drain()
})

afterAll(async () => {
  await sim?.close()
})

async function loginAt(region: Region): Promise<string> {
  const reply = await sim.front(region).login(user, NATIVE.client_id, PASSWORD)
  expect(reply.status, reply.text).toBe(200)
  return reply.body.refresh_token as string
}

const sidOf = (token: string) => parseRefreshToken(token)?.sid as string
const sessionIn = (region: Region, token: string) =>
  sim.region[region].sessions.getSession(sidOf(token))
const switchIn = (region: Region) =>
  new DynamoRegionSwitch(sim.region[region].dynamodb, sim.region[region].tableName)

/**
 * Declares `region` lost (or restored) as `npm run regions` does, in the other region (with
 * `cli`, by running it).
 */
async function declare(region: Region, state: 'lost' | 'restored', cli = false) {
  const healthy = region === EU ? US : EU
  if (cli) {
    const command = state === 'lost' ? 'lost' : 'restore'
    const { tableName } = sim.region[healthy]
    const endpoint = process.env.DYNAMODB_ENDPOINT as string
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'bin/regions.ts',
        command,
        region,
        '--table',
        tableName,
        '--endpoint',
        endpoint,
      ],
      { stdio: 'ignore' },
    )
    const [code] = await once(child, 'close')
    expect(code).toBe(0)
  } else {
    await switchIn(healthy).declareRegion({ region, state, by: 'test', at: sim.clock.now() })
  }
  // The token functions' cached reading of the switch lapses.
  sim.clock.advance(REGION_SWITCH_CACHE_MS / 1000 + 1)
}

/** `region` down for the duration of `body`, then up again. */
async function whileDown<T>(region: Region, body: () => Promise<T>): Promise<T> {
  sim.down(region)
  try {
    return await body()
  } finally {
    sim.up(region)
  }
}

describe('failover adopt: the fork consumer', () => {
  it('is not invoked for a session never adopted, however often it rotates, in either region', async () => {
    const token = await loginAt(EU)
    await sim.replicator.drain()
    const before = { ...sim.forkInvocations }
    let current = token
    for (const region of [EU, US, EU]) {
      const reply = await sim.front(region).refresh(current)
      expect(reply.status, reply.text).toBe(200)
      current = reply.body.refresh_token as string
    }
    await sim.replicator.drain()
    expect((await sessionIn(US, token))?.generation).toBe(3)
    expect(sim.forkInvocations).toEqual(before)
  })
})

describe('failover adopt: a home that does not answer and is not declared lost', () => {
  it('answers 503 temporarily_unavailable with Retry-After, writes nothing, and keeps the session', async () => {
    const token = await loginAt(EU)
    await sim.replicator.drain()
    const before = await sessionIn(US, token)
    const reply = await whileDown(EU, () => sim.front(US).refresh(token))
    expect(reply.status).toBe(503)
    expect(reply.body.error).toBe('temporarily_unavailable')
    expect(Number(reply.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(await sessionIn(US, token)).toEqual(before)
    // The home back, the client's retry goes through: nothing was lost.
    expect((await sim.front(US).refresh(token)).status).toBe(200)
  })
})

describe('failover adopt: the home declared lost', () => {
  it('adopts the session in the healthy region (declared lost with npm run regions there) and keeps the user logged in', async () => {
    const token = await loginAt(EU)
    const first = await sim.front(EU).refresh(token)
    const current = first.body.refresh_token as string
    await sim.replicator.drain()
    const reply = await whileDown(EU, async () => {
      // With the operators' command, in the healthy region.
      await declare(EU, 'lost', true)
      try {
        return await sim.front(US).refresh(current)
      } finally {
        await declare(EU, 'restored')
      }
    })
    expect(reply.status, reply.text).toBe(200)
    const child = reply.body.refresh_token as string
    // The child is homed in the adopter: its refreshes go there.
    expect(child).toMatch(/^rt2_us-east-1\./)
    const adopted = await sessionIn(US, token)
    expect(adopted).toMatchObject({ home: US, epoch: 1, adoptedAt: 1, generation: 2 })
  })

  it('decides the next refresh of an adopted session in the adopter, with no forwarding', async () => {
    const token = await loginAt(EU)
    await sim.replicator.drain()
    const forwards = { ...sim.forwards }
    const adopted = await whileDown(EU, async () => {
      await declare(EU, 'lost')
      try {
        const child = (await sim.front(US).refresh(token)).body.refresh_token as string
        const next = await sim.front(US).refresh(child)
        expect(next.status, next.text).toBe(200)
        return next
      } finally {
        await declare(EU, 'restored')
      }
    })
    // One forward (the adoption's failed attempt), none for the next refresh.
    expect(sim.forwards[US]).toBe(forwards[US] + 1)
    expect(adopted.body.refresh_token).toMatch(/^rt2_us-east-1\./)
    expect((await sessionIn(US, token))?.generation).toBe(2)
    // And from the old home, once back: forwarded to the adopter, which rotates.
    await sim.replicator.drain()
    const fromEu = await sim.front(EU).refresh(adopted.body.refresh_token as string)
    expect(fromEu.status, fromEu.text).toBe(200)
    expect((await sessionIn(US, token))?.generation).toBe(3)
  })

  it('detects reuse of a token the adopter retired, and ends the session', async () => {
    const token = await loginAt(EU)
    await sim.replicator.drain()
    await whileDown(EU, async () => {
      await declare(EU, 'lost')
      try {
        const child = (await sim.front(US).refresh(token)).body.refresh_token as string
        sim.clock.advance((NATIVE.reuse_grace_seconds as number) + 1)
        // The token the adoption retired, homed in the lost region: decided by the adopter.
        const reuse = await sim.front(US).refresh(token)
        expect(reuse.status).toBe(400)
        expect(reuse.body).toEqual(INVALID_GRANT)
        expect((await sessionIn(US, token))?.revokedReason).toBe('reuse')
        expect((await sim.front(US).refresh(child)).body).toEqual(INVALID_GRANT)
      } finally {
        await declare(EU, 'restored')
      }
    })
  })

  it('forwards an old-home token of an adopted session, presented in the returned old home, to the adopter (never decided by the old home)', async () => {
    const token = await loginAt(EU)
    await sim.replicator.drain()
    // Declared restored only at the end: its cache lapse would end the grace window.
    await declare(EU, 'lost')
    const child = await whileDown(
      EU,
      async () => (await sim.front(US).refresh(token)).body.refresh_token as string,
    )
    await sim.replicator.drain()
    const inEu = await sessionIn(EU, token)
    expect(inEu?.home).toBe(US)
    const forwards = { ...sim.forwards }
    // Within grace: the adopter's byte-identical child, which only the adopter can give.
    const replay = await sim.front(EU).refresh(token)
    expect(replay.status, replay.text).toBe(200)
    expect(replay.body.refresh_token).toBe(child)
    expect(sim.forwards[EU]).toBe(forwards[EU] + 1)
    // The old home wrote nothing of its own.
    expect(await sessionIn(EU, token)).toEqual(inEu)
    await declare(EU, 'restored')
  })

  it('decides an old-home token presented in the adopter while the old home is back: the old home answers that the session moved', async () => {
    const token = await loginAt(EU)
    await sim.replicator.drain()
    // Declared restored only at the end: its cache lapse would end the grace window.
    await declare(EU, 'lost')
    const child = await whileDown(
      EU,
      async () => (await sim.front(US).refresh(token)).body.refresh_token as string,
    )
    await sim.replicator.drain()
    const forwards = { ...sim.forwards }
    const replay = await sim.front(US).refresh(token)
    expect(replay.status, replay.text).toBe(200)
    expect(replay.body.refresh_token).toBe(child)
    // To the token's home, which sent it back to the item's: no forward from EU.
    expect(sim.forwards[US]).toBe(forwards[US] + 1)
    expect(sim.forwards[EU]).toBe(forwards[EU])
    await declare(EU, 'restored')
  })
})

describe('failover adopt: revoking an adopted session with a token of its old home', () => {
  /** An adopted session: its old-home token (retired by the adoption) and the adopter's child. */
  async function adopted(): Promise<{ token: string; child: string }> {
    const token = await loginAt(EU)
    await sim.replicator.drain()
    const child = await whileDown(EU, async () => {
      await declare(EU, 'lost')
      try {
        return (await sim.front(US).refresh(token)).body.refresh_token as string
      } finally {
        await declare(EU, 'restored')
      }
    })
    await sim.replicator.drain()
    return { token, child }
  }

  it('is decided in the adopter when the token is revoked at the returned old home, which writes nothing', async () => {
    const { token, child } = await adopted()
    sim.replicator.hold()
    try {
      const reply = await sim.front(EU).post('/revoke', { token, client_id: NATIVE.client_id })
      expect(reply.status).toBe(200)
      // Written in the adopter, where the session's rotations are decided, at once.
      expect((await sessionIn(US, token))?.status).toBe('revoked')
      expect((await sessionIn(EU, token))?.status).toBe('active')
    } finally {
      sim.replicator.release()
    }
    await sim.replicator.drain()
    expect((await sessionIn(EU, token))?.status).toBe('revoked')
    expect((await sim.front(US).refresh(child)).body).toEqual(INVALID_GRANT)
  })

  it('is decided in the adopter when the token is revoked there (the old home answers that the session moved)', async () => {
    const { token } = await adopted()
    sim.replicator.hold()
    try {
      const forwards = { ...sim.forwards }
      const reply = await sim.front(US).post('/revoke', { token, client_id: NATIVE.client_id })
      expect(reply.status).toBe(200)
      expect(sim.forwards[US]).toBe(forwards[US] + 1)
      expect((await sessionIn(US, token))?.status).toBe('revoked')
      expect((await sessionIn(EU, token))?.status).toBe('active')
    } finally {
      sim.replicator.release()
    }
    await sim.replicator.drain()
  })
})

/** The ids of the `forked` session.revoked events both tables hold, for the session. */
async function forkedEventIds(token: string): Promise<string[]> {
  const written = await Promise.all(
    [EU, US].map((region) =>
      items(sim.region[region].dynamodb, sim.region[region].tableName).events(),
    ),
  )
  return [
    ...new Set(
      written
        .flat()
        .filter(
          (event) =>
            event.type === 'session.revoked' &&
            event.data.reason === 'forked' &&
            event.data.sid === sidOf(token),
        )
        .map((event) => event.id),
    ),
  ]
}

/**
 * Forks the session of `token`: the replicator held while the old home (EU) rotates it, the
 * old home lost and the adopter (US) adopting from its stale replica, then the old home back
 * and replication released. Returns both children.
 */
async function fork(token: string): Promise<[string, string]> {
  sim.replicator.hold()
  const oldHomeChild = (await sim.front(EU).refresh(token)).body.refresh_token as string
  await sim.replicator.drain()
  const adopterChild = await whileDown(EU, async () => {
    await declare(EU, 'lost')
    try {
      const reply = await sim.front(US).refresh(token)
      expect(reply.status, reply.text).toBe(200)
      return reply.body.refresh_token as string
    } finally {
      await declare(EU, 'restored')
    }
  })
  sim.replicator.release()
  await sim.replicator.drain()
  return [oldHomeChild, adopterChild]
}

describe('failover adopt: a fork (the old home rotated in its last replication window)', () => {
  it('ends the family once, with its one event, when the home did it but its answer to the forward was lost', async () => {
    const token = await loginAt(EU)
    await sim.replicator.drain()
    // Whichever region the fork shows in, the other is the converged home: both lose answers.
    sim.loseForkAnswers(EU, true)
    sim.loseForkAnswers(US, true)
    try {
      await fork(token)
    } finally {
      sim.loseForkAnswers(EU, false)
      sim.loseForkAnswers(US, false)
    }
    for (const region of [EU, US]) {
      expect((await sessionIn(region, token))?.revokedReason, region).toBe('forked')
    }
    // Both regions wrote it (the home, and the region that saw the fork after no answer):
    // one event, by its id.
    expect(await forkedEventIds(token)).toHaveLength(1)
  })

  it('ends the family in both regions once they converge, with exactly one security event', async () => {
    const token = await loginAt(EU)
    await sim.replicator.drain()
    const eventsBefore = new Set(
      [...(await items(sim.region[EU].dynamodb, sim.region[EU].tableName).events())].map(
        (event) => event.id,
      ),
    )
    const invocations = { ...sim.forkInvocations }
    // The old home's last window: its rotation never reached the other region; the
    // adopter takes the session over from a replica one rotation behind.
    const [oldHomeChild, adopterChild] = await fork(token)
    const converged = { [EU]: await sessionIn(EU, token), [US]: await sessionIn(US, token) }
    // What each region holds, without its hashes (no secret in a failure's message).
    const lineage = (session: Awaited<ReturnType<typeof sessionIn>>) =>
      session && {
        status: session.status,
        reason: session.revokedReason,
        home: session.home,
        epoch: session.epoch,
        generation: session.generation,
      }
    const seen = JSON.stringify({
      [EU]: lineage(converged[EU]),
      [US]: lineage(converged[US]),
      forkInvocations: sim.forkInvocations,
    })
    for (const region of [EU, US]) {
      expect(converged[region]?.status, `${region}: ${seen}`).toBe('revoked')
      expect(converged[region]?.revokedReason, `${region}: ${seen}`).toBe('forked')
    }
    for (const child of [oldHomeChild, adopterChild]) {
      for (const region of [EU, US]) {
        expect((await sim.front(region).refresh(child)).body).toEqual(INVALID_GRANT)
      }
    }
    const written = await Promise.all(
      [EU, US].map((region) =>
        items(sim.region[region].dynamodb, sim.region[region].tableName).events(),
      ),
    )
    const forked = new Map(
      written
        .flat()
        .filter((event) => !eventsBefore.has(event.id) && event.data.reason === 'forked')
        .map((event) => [event.id, event]),
    )
    expect([...forked.values()].map((event) => [event.type, event.data.sid])).toEqual([
      ['session.revoked', sidOf(token)],
    ])
    // Measured: the records the fork consumer was invoked with (its filters passed).
    const consumed = {
      [EU]: sim.forkInvocations[EU] - (invocations[EU] ?? 0),
      [US]: sim.forkInvocations[US] - (invocations[US] ?? 0),
    }
    console.info('fork consumer invocations (records passed by the filters):', consumed)
    expect(consumed[EU] + consumed[US]).toBeGreaterThan(0)
  })
})
