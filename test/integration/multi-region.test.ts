/**
 * Several regions, active-active (docs/multi-region.md), in simulation: two regions as two
 * tables on the test run's DynamoDB Local, replicated both ways after a delay, last writer
 * wins (test/support/regions.ts); each region's login and token functions on its own table,
 * the token functions forwarding to each other through the real adapter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HOME_UNREACHABLE_DESCRIPTION } from '../../functions/core/errors.js'
import type { User } from '../../functions/core/ports.js'
import { parseRefreshToken } from '../../functions/core/refresh-token.js'
import { proofClaims, proofKey, signProof } from '../support/dpop.js'
import { measureForwardedLatency } from '../support/forwarded-latency.js'
import { NATIVE, NO_GRACE, PASSWORD, type Reply, startHarness } from '../support/harness.js'
import { type Region, startTwoRegions, type TwoRegions } from '../support/regions.js'

const EU: Region = 'eu-west-1'
const US: Region = 'us-east-1'
const INVALID_GRANT = {
  error: 'invalid_grant',
  error_description: 'the credentials or refresh token are invalid, expired or revoked',
}

/** A native client whose proofs must carry a server nonce (`dpop_nonce`). */
const NONCE = { ...NATIVE, client_id: 'native-dpop-nonce', dpop_nonce: true }

let sim: TwoRegions
let user: User

beforeAll(async () => {
  sim = await startTwoRegions({ clients: [NATIVE, NO_GRACE, NONCE], replicationDelayMs: 50 })
  // Users are written in one region and replicate, as with `npm run users`.
  user = await sim.region[EU].addUser()
  await sim.replicator.drain()
})

afterAll(async () => {
  await sim?.close()
})

/** Logs in at `region` and returns the refresh token. */
async function loginAt(region: Region, client = NATIVE.client_id): Promise<string> {
  const reply = await sim.front(region).login(user, client)
  expect(reply.status, reply.text).toBe(200)
  return reply.body.refresh_token as string
}

const sidOf = (token: string) => parseRefreshToken(token)?.sid as string

async function sessionIn(region: Region, token: string) {
  return sim.region[region].sessions.getSession(sidOf(token))
}

describe('each session has a home', () => {
  it('is the region whose login created it, named by its refresh token (rt2_) and its session item', async () => {
    const token = await loginAt(US)
    expect(token).toMatch(/^rt2_us-east-1\.[0-9a-f-]{36}\.[\w-]{22}\.[\w-]{43}$/)
    expect((await sessionIn(US, token))?.home).toBe(US)
    await sim.replicator.drain()
    expect((await sessionIn(EU, token))?.home).toBe(US)
  })
})

describe('a refresh is decided in its home region', () => {
  it('forwards a refresh reaching another region to the home, which rotates exactly once', async () => {
    const token = await loginAt(EU)
    const before = sim.forwards[US]
    const reply = await sim.front(US).refresh(token)
    expect(reply.status, reply.text).toBe(200)
    expect(sim.forwards[US]).toBe(before + 1)
    const child = reply.body.refresh_token as string
    expect(child).toMatch(/^rt2_eu-west-1\./)
    // The home's table holds the rotation at once; the other region's only by replication.
    expect((await sessionIn(EU, token))?.generation).toBe(1)
    await sim.replicator.drain()
    expect((await sessionIn(US, token))?.generation).toBe(1)
    // The child goes on rotating from either region.
    const next = await sim.front(US).refresh(child)
    expect(next.status).toBe(200)
    expect((await sessionIn(EU, token))?.generation).toBe(2)
  })

  it('gives a grace replay in another region the byte-identical child the home issued', async () => {
    const token = await loginAt(EU)
    const first = await sim.front(EU).refresh(token)
    expect(first.status).toBe(200)
    // Before replication: the other region's replica does not know of the rotation yet.
    const replay = await sim.front(US).refresh(token)
    expect(replay.status, replay.text).toBe(200)
    expect(replay.body.refresh_token).toBe(first.body.refresh_token)
  })

  it('detects reuse across regions: a retired token presented in another region revokes the session', async () => {
    const token = await loginAt(US)
    const child = (await sim.front(US).refresh(token)).body.refresh_token as string
    sim.clock.advance(NATIVE.reuse_grace_seconds as number)
    sim.clock.advance(1)
    const reuse = await sim.front(EU).refresh(token)
    expect(reuse.status).toBe(400)
    expect(reuse.body).toEqual(INVALID_GRANT)
    expect((await sessionIn(US, token))?.revokedReason).toBe('reuse')
    // The thief's child is dead everywhere, the home first.
    expect((await sim.front(US).refresh(child)).body).toEqual(INVALID_GRANT)
    await sim.replicator.drain()
    expect((await sessionIn(EU, token))?.status).toBe('revoked')
    expect((await sim.front(EU).refresh(child)).body).toEqual(INVALID_GRANT)
  })

  it('never forks a session refreshed with one token in both regions at once (grace: one child for both)', async () => {
    const token = await loginAt(EU)
    const replies = await Promise.all([sim.front(EU).refresh(token), sim.front(US).refresh(token)])
    expect(replies.map((r) => r.status)).toEqual([200, 200])
    expect(replies[0]?.body.refresh_token).toBe(replies[1]?.body.refresh_token)
    await sim.replicator.drain()
    const [eu, us] = await Promise.all([sessionIn(EU, token), sessionIn(US, token)])
    expect(eu?.generation).toBe(1)
    expect(us?.currentHash).toBe(eu?.currentHash)
  })

  it('never forks a session refreshed with one token in both regions at once (no grace: the second is reuse)', async () => {
    const token = await loginAt(EU, NO_GRACE.client_id)
    const replies: Reply[] = await Promise.all([
      sim.front(EU).refresh(token, NO_GRACE.client_id),
      sim.front(US).refresh(token, NO_GRACE.client_id),
    ])
    expect(replies.map((r) => r.status).sort()).toEqual([200, 400])
    const child = replies.find((r) => r.status === 200)?.body.refresh_token as string
    // One decision in one place: the reuse ended the session, the winner's child with it.
    expect((await sim.front(US).refresh(child, NO_GRACE.client_id)).body).toEqual(INVALID_GRANT)
    await sim.replicator.drain()
    expect((await sessionIn(US, token))?.status).toBe('revoked')
  })

  it('homes an rt1_ token (issued before regions) in the primary region', async () => {
    // A login in the primary before `regions` was set: the same table, no region settings.
    const before = await startHarness({
      clock: sim.clock,
      issuer: sim.region[EU].issuer,
      table: { client: sim.region[EU].dynamodb, tableName: sim.region[EU].tableName },
      clients: [NATIVE],
    })
    try {
      const token = (await before.login(user)).body.refresh_token as string
      expect(token).toMatch(/^rt1_/)
      const forwards = sim.forwards[US]
      const reply = await sim.front(US).refresh(token)
      expect(reply.status, reply.text).toBe(200)
      expect(sim.forwards[US]).toBe(forwards + 1)
      expect((await sessionIn(EU, token))?.generation).toBe(1)
    } finally {
      await before.close()
    }
  })

  it('decides a forwarded request where it lands, even when its token names another home (no second forward)', async () => {
    const token = await loginAt(US)
    await sim.replicator.drain()
    const forwards = { ...sim.forwards }
    // As if the US region had forwarded it: the EU region must not send it back.
    const event = {
      version: '2.0',
      routeKey: 'POST /token',
      rawPath: '/token',
      rawQueryString: '',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: token,
        client_id: NATIVE.client_id,
      }).toString(),
      isBase64Encoded: false,
      requestContext: {
        http: { method: 'POST', path: '/token', sourceIp: '127.0.0.1' },
        domainName: '127.0.0.1',
        requestId: 'r1',
      },
      forwardedFrom: US,
    }
    const { lambdaContext } = await import('../../local/server.js')
    const result = await sim.region[EU].service.handlers.token(
      event as never,
      lambdaContext('token', 10_000),
    )
    expect(result.statusCode).toBe(200)
    expect(sim.forwards).toEqual(forwards)
  })
})

describe('DPoP across regions', () => {
  it('accepts in the home a proof for the one public URL, forwarded from another region, and records its single use there', async () => {
    const key = proofKey()
    const proof = (path: string) =>
      signProof(key, proofClaims(sim.clock.now(), `${sim.region[EU].issuer}${path}`))
    const login = await sim
      .front(EU)
      .post(
        '/login',
        { username: user.username, password: PASSWORD, client_id: NATIVE.client_id },
        { headers: { dpop: proof('/login') } },
      )
    expect(login.status, login.text).toBe(200)
    expect(login.body.token_type).toBe('DPoP')
    const token = login.body.refresh_token as string
    const body = { grant_type: 'refresh_token', refresh_token: token, client_id: NATIVE.client_id }
    const once = proof('/token')
    const forwarded = await sim.front(US).post('/token', body, { headers: { dpop: once } })
    expect(forwarded.status, forwarded.text).toBe(200)
    expect(forwarded.body.token_type).toBe('DPoP')
    // The same proof again, in either region: its single use was recorded in the home.
    const replayed = await sim
      .front(US)
      .post(
        '/token',
        { ...body, refresh_token: forwarded.body.refresh_token },
        { headers: { dpop: once } },
      )
    expect(replayed.status).toBe(400)
    expect(replayed.body.error).toBe('invalid_dpop_proof')
    // Without a proof, the bound session refuses the refresh, in the home.
    const unbound = await sim
      .front(US)
      .post('/token', { ...body, refresh_token: forwarded.body.refresh_token })
    expect(unbound.status).toBe(400)
    expect(unbound.body.error).toBe('invalid_dpop_proof')
    expect((await sessionIn(EU, token))?.generation).toBe(1)
  })
  it('gives a proof whose nonce another region issued one use_dpop_nonce challenge from the home, forwarded as it is, and the retry with the home’s nonce refreshes (each region derives its nonces from its own key)', async () => {
    const key = proofKey()
    const proof = (path: string, nonce?: string) =>
      signProof(
        key,
        proofClaims(sim.clock.now(), `${sim.region[EU].issuer}${path}`, nonce ? { nonce } : {}),
      )
    const login = (region: Region, nonce?: string) =>
      sim
        .front(region)
        .post(
          '/login',
          { username: user.username, password: PASSWORD, client_id: NONCE.client_id },
          { headers: { dpop: proof('/login', nonce) } },
        )
    // Each region's nonce, from its challenge.
    const euNonce = (await login(EU)).headers.get('dpop-nonce') as string
    const usNonce = (await login(US)).headers.get('dpop-nonce') as string
    expect(euNonce).toMatch(/^[\w-]{22}$/)
    expect(usNonce).toMatch(/^[\w-]{22}$/)
    expect(usNonce).not.toBe(euNonce)
    const loggedIn = await login(EU, euNonce)
    expect(loggedIn.status, loggedIn.text).toBe(200)
    const token = loggedIn.body.refresh_token as string
    await sim.replicator.drain()
    const body = { grant_type: 'refresh_token', refresh_token: token, client_id: NONCE.client_id }
    // The client now reaches us-east-1 with the nonce it got there: the home did not issue it.
    const forwards = sim.forwards[US]
    const challenged = await sim
      .front(US)
      .post('/token', body, { headers: { dpop: proof('/token', usNonce) } })
    expect(challenged.status).toBe(400)
    expect(challenged.body.error).toBe('use_dpop_nonce')
    expect(challenged.headers.get('dpop-nonce')).toBe(euNonce)
    expect(sim.forwards[US]).toBe(forwards + 1)
    expect((await sessionIn(EU, token))?.generation).toBe(0)
    // One retry, with the nonce the home gave: decided there.
    const refreshed = await sim
      .front(US)
      .post('/token', body, { headers: { dpop: proof('/token', euNonce) } })
    expect(refreshed.status, refreshed.text).toBe(200)
    expect(refreshed.body.token_type).toBe('DPoP')
    expect(refreshed.headers.get('dpop-nonce')).toBe(euNonce)
    expect((await sessionIn(EU, token))?.generation).toBe(1)
  })
})

describe('when the home region cannot be reached (failover: relogin)', () => {
  it('refuses the refresh with its own description, writes nothing, and a new login in the healthy region works', async () => {
    const token = await loginAt(EU)
    await sim.replicator.drain()
    const before = await sessionIn(US, token)
    sim.down(EU)
    try {
      const reply = await sim.front(US).refresh(token)
      expect(reply.status).toBe(400)
      expect(reply.body).toEqual({
        error: 'invalid_grant',
        error_description: HOME_UNREACHABLE_DESCRIPTION,
      })
      expect(await sessionIn(US, token)).toEqual(before)
      // The client logs in again where it is: that session is homed in the healthy region.
      const fresh = await loginAt(US)
      expect(fresh).toMatch(/^rt2_us-east-1\./)
      const forwards = sim.forwards[US]
      expect((await sim.front(US).refresh(fresh)).status).toBe(200)
      expect(sim.forwards[US]).toBe(forwards)
    } finally {
      sim.up(EU)
    }
    // Once the home is back, its session refreshes again: nothing was lost.
    expect((await sim.front(US).refresh(token)).status).toBe(200)
  })
})

describe('revocation in one region', () => {
  it('is decided in the home, and reaches the other region within the replication delay', async () => {
    const token = await loginAt(EU)
    await sim.replicator.drain()
    sim.replicator.hold()
    try {
      const revoked = await sim.front(US).post('/revoke', { token, client_id: NATIVE.client_id })
      expect(revoked.status).toBe(200)
      expect((await sessionIn(EU, token))?.status).toBe('revoked')
      // Until replication, the other region's replica still has the session.
      expect((await sessionIn(US, token))?.status).toBe('active')
      // Its refreshes are decided in the home anyway.
      expect((await sim.front(US).refresh(token)).body).toEqual(INVALID_GRANT)
    } finally {
      sim.replicator.release()
    }
    await sim.replicator.drain()
    expect((await sessionIn(US, token))?.status).toBe('revoked')
  })

  it('is written where it lands when the home cannot be reached, and reaches the home once it is back', async () => {
    const token = await loginAt(EU)
    await sim.replicator.drain()
    sim.down(EU)
    try {
      const revoked = await sim.front(US).post('/revoke', { token, client_id: NATIVE.client_id })
      expect(revoked.status).toBe(200)
      expect((await sessionIn(US, token))?.status).toBe('revoked')
    } finally {
      sim.up(EU)
    }
    await sim.replicator.drain()
    expect((await sessionIn(EU, token))?.status).toBe('revoked')
    expect((await sim.front(EU).refresh(token)).body).toEqual(INVALID_GRANT)
  })
})

describe('revocation in a region other than the home', () => {
  it('is not undone by a rotation in the home within the replication lag (last writer wins)', async () => {
    const token = await loginAt(EU)
    await sim.replicator.drain()
    sim.replicator.hold()
    let child: string | undefined
    try {
      const revoked = await sim.front(US).post('/revoke', { token, client_id: NATIVE.client_id })
      expect(revoked.status).toBe(200)
      // The home rotates the session after the revocation: the revocation must win anyway.
      const rotated = await sim.front(EU).refresh(token)
      child = rotated.body.refresh_token
    } finally {
      sim.replicator.release()
    }
    await sim.replicator.drain()
    expect((await sessionIn(EU, token))?.status).toBe('revoked')
    expect((await sessionIn(US, token))?.status).toBe('revoked')
    if (child) expect((await sim.front(EU).refresh(child)).body).toEqual(INVALID_GRANT)
  })
})

describe('ending a session with DELETE /sessions/{sid} in a region other than the home', () => {
  it('is decided in the home, and not undone by a rotation there within the replication lag', async () => {
    const login = await sim.front(EU).login(user)
    const token = login.body.refresh_token as string
    const access = login.body.access_token as string
    await sim.replicator.drain()
    sim.replicator.hold()
    try {
      const ended = await sim
        .front(US)
        .del(`/sessions/${sidOf(token)}`, { authorization: `Bearer ${access}` })
      expect(ended.status, ended.text).toBe(204)
      expect((await sessionIn(EU, token))?.status).toBe('revoked')
      // A refresh in the home after it: refused, not a rotation that would overwrite it.
      expect((await sim.front(EU).refresh(token)).body).toEqual(INVALID_GRANT)
    } finally {
      sim.replicator.release()
    }
    await sim.replicator.drain()
    expect((await sessionIn(US, token))?.status).toBe('revoked')
    expect((await sessionIn(EU, token))?.status).toBe('revoked')
  })
})

describe('the added latency of a forwarded refresh', () => {
  it('is measured: refreshes at home and forwarded, interleaved, medians reported (not asserted)', async () => {
    const tokens = [await loginAt(EU), await loginAt(EU)] as const
    const forwards = sim.forwards[US]
    const measured = await measureForwardedLatency({
      home: sim.front(EU),
      away: sim.front(US),
      tokens,
      rounds: 15,
      warmup: 3,
    })
    console.log(
      `forwarded refresh (median of ${measured.samples}): ${measured.forwarded.toFixed(1)} ms, at home ${measured.home.toFixed(1)} ms: +${(measured.forwarded - measured.home).toFixed(1)} ms in simulation (no inter-region round trip)`,
    )
    // Every refresh sent to us-east-1 was forwarded: what was measured is the forward.
    expect(sim.forwards[US] - forwards).toBe(15)
  })
})
