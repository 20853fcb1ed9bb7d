/**
 * Several regions, active-active (docs/multi-region.md "Simulation on the synthesized
 * stacks"), on what `cdk synth`
 * produces: the app with `regions: ['eu-west-1', 'us-east-1']` synthesized once, each
 * region's stack deployed into a cloud of its own on a DynamoDB Local of its own
 * (test/stack/regions.ts), MREC between them, and each region's synthesized bundles
 * forwarding to the other's through Lambda Invoke under their own IAM roles.
 * Strict revocation is on, so that a revocation's reach shows in the authorizer.
 */
import { ScanCommand } from '@aws-sdk/client-dynamodb'
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda'
import { createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import demoClients from '../../clients.local.json' with { type: 'json' }
import { HOME_UNREACHABLE_DESCRIPTION } from '../../functions/core/errors.js'
import { parseRefreshToken } from '../../functions/core/refresh-token.js'
import { SETTINGS } from '../../functions/settings.js'
import { measureForwardedLatency } from '../support/forwarded-latency.js'
import type { Region } from '../support/regions.js'
import { PASSWORD } from './api.js'
import { resourcesOf } from './assembly.js'
import { ACCOUNT, type MeteredCall } from './cloud.js'
import { ISSUER, PRIMARY, SECONDARY, type StackRegions, startStackRegions } from './regions.js'

const EU: Region = PRIMARY
const US: Region = SECONDARY
const STACK = 'TokenServiceTwoRegions'
const INVALID_GRANT = {
  error: 'invalid_grant',
  error_description: 'the credentials or refresh token are invalid, expired or revoked',
}
/** The demo native client's grace window (clients.local.json). */
const GRACE_SECONDS = Number(demoClients[0]?.reuse_grace_seconds)
/** A native client without a grace window: a second use of a token is reuse at once. */
const NO_GRACE = 'native-no-grace'

let sim: StackRegions
let username: string
const started = performance.now()

beforeAll(async () => {
  sim = await startStackRegions({
    stackName: STACK,
    context: {
      strictRevocation: 'true',
      clients: JSON.stringify([
        ...demoClients,
        { ...demoClients[0], client_id: NO_GRACE, reuse_grace_seconds: 0 },
      ]),
    },
    replicationDelayMs: 50,
  })
  // Users are written in one region and replicate, as with `npm run users`.
  username = await sim.seedUser()
})

afterAll(async () => {
  await sim?.close()
  console.log(
    `test/stack/multi-region.test.ts: ${((performance.now() - started) / 1000).toFixed(1)} s wall time (synth, deploy, tests)`,
  )
})

async function loginAt(region: Region) {
  const reply = await sim.front(region).login(username)
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  return reply.body as { access_token: string; refresh_token: string }
}

/** The calls a region's function made since `from` (an index into that cloud's meter). */
const callsOf = (region: Region, caller: string, from: number): MeteredCall[] =>
  sim.cloud[region].meter.slice(from).filter((call) => call.caller === caller)
const WRITES = /^(PutItem|UpdateItem|DeleteItem|TransactWriteItems|BatchWriteItem)$/

/** The caches the docs put in the bound, as the US stack configures them. */
function cachesMs() {
  const us = sim.assembly.templates[US]
  if (!us) throw new Error('no US stack')
  const [[, authorizer]] = resourcesOf(us, 'AWS::ApiGatewayV2::Authorizer') as [
    [string, { AuthorizerResultTtlInSeconds?: number }],
  ]
  const fn = resourcesOf(us, 'AWS::Lambda::Function').find(([id]) =>
    id.startsWith('TokenServiceAuthorizerFunction'),
  )?.[1]
  const answer = (authorizer.AuthorizerResultTtlInSeconds ?? 0) * 1000
  const session = Number(fn?.Environment?.Variables?.AUTHORIZER_SESSION_CACHE_SECONDS) * 1000
  expect(session).toBeGreaterThan(0)
  return { answer, session, total: answer + session }
}

describe('two regions as synthesized', () => {
  it('deploys the primary’s global table in both regions, and signs in each with one multi-Region key (the other’s a replica key)', () => {
    const [eu, us] = [sim.assembly.templates[EU], sim.assembly.templates[US]]
    if (!eu || !us) throw new Error('two stacks')
    expect(resourcesOf(eu, 'AWS::DynamoDB::GlobalTable')).toHaveLength(1)
    expect(resourcesOf(us, 'AWS::KMS::ReplicaKey')).toHaveLength(1)
    expect(sim.deployment[EU].tableName).toBe(`${STACK}-table`)
    expect(sim.deployment[US].tableName).toBe(`${STACK}-table`)
    const [[keyId]] = resourcesOf(eu, 'AWS::KMS::Key').filter(([, p]) => p.MultiRegion) as [
      [string, unknown],
    ]
    const euKey = sim.cloud[EU].attribute(eu, keyId, 'Arn')
    const usKey = sim.cloud[US].attribute(us, keyId, 'Arn')
    expect(euKey).toMatch(/^arn:aws:kms:eu-west-1:\d+:key\/mrk-[0-9a-f]{32}$/)
    expect(usKey).toBe(euKey.replace('eu-west-1', 'us-east-1'))
  })

  it('verifies the access tokens of both regions against either region’s JWKS with jose: one kid', async () => {
    const fromEu = await loginAt(EU)
    const fromUs = await loginAt(US)
    const jwks = await Promise.all(
      [EU, US].map(
        async (region) =>
          (await sim.front(region).call('GET', '/.well-known/jwks.json')).body as JSONWebKeySet,
      ),
    )
    expect(jwks[0]?.keys.length).toBeGreaterThan(0)
    expect(jwks[1]).toEqual(jwks[0])
    const kids = [fromEu, fromUs].map((tokens) => decodeProtectedHeader(tokens.access_token).kid)
    expect(kids[1]).toBe(kids[0])
    for (const keys of jwks) {
      for (const tokens of [fromEu, fromUs]) {
        const { payload } = await jwtVerify(
          tokens.access_token,
          createLocalJWKSet(keys as JSONWebKeySet),
          {
            issuer: ISSUER,
            currentDate: new Date(sim.now()),
          },
        )
        expect(payload.iss).toBe(ISSUER)
      }
    }
  })
})

describe('a refresh is decided in its home region', () => {
  it('forwards a refresh reaching the other region through its synthesized function’s Lambda Invoke, under its own IAM, and rotates exactly once in the home', async () => {
    // The US token function warm (its cold start loads its keys): then the forward alone counts.
    const local = await sim.front(US).refresh((await loginAt(US)).refresh_token)
    expect(local.status).toBe(200)
    const { refresh_token: token } = await loginAt(EU)
    await sim.replicator.drain()
    const usToken = sim.deployment[US].functions.get('token')
    const euToken = sim.deployment[EU].functions.get('token')
    if (!usToken || !euToken) throw new Error('token functions')
    const homeArn = `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:${STACK}-token`
    const invokes = usToken.caller.calls.get(`lambda:InvokeFunction ${homeArn}`)?.allowed ?? 0
    const homeInvocations = euToken.lambda.invocations
    const meter = { [EU]: sim.cloud[EU].meter.length, [US]: sim.cloud[US].meter.length }
    const reply = await sim.front(US).refresh(token)
    expect(reply.status, JSON.stringify(reply.body)).toBe(200)
    expect(reply.body.refresh_token).toMatch(/^rt2_eu-west-1\./)
    // One Invoke of the home's function, allowed by the US token function's own policy.
    expect(usToken.caller.calls.get(`lambda:InvokeFunction ${homeArn}`)?.allowed).toBe(invokes + 1)
    expect(euToken.lambda.invocations).toBe(homeInvocations + 1)
    // Decided in the home: the US token function wrote nothing in its region's table.
    const usCalls = callsOf(US, 'token', meter[US])
    expect(usCalls.map((call) => `${call.service} ${call.operation}`)).toEqual(['lambda Invoke'])
    expect(callsOf(EU, 'token', meter[EU]).some((call) => WRITES.test(call.operation))).toBe(true)
    expect((await sim.sessionIn(EU, token))?.generation).toBe(1)
    expect((await sim.sessionIn(US, token))?.generation).toBe(0)
    await sim.replicator.drain()
    expect((await sim.sessionIn(US, token))?.generation).toBe(1)
    // The child rotates on from either region.
    const next = await sim.front(EU).refresh(reply.body.refresh_token)
    expect(next.status).toBe(200)
    expect((await sim.sessionIn(EU, token))?.generation).toBe(2)
  })

  it('gives a grace replay in the other region the byte-identical child the home issued', async () => {
    const { refresh_token: token } = await loginAt(EU)
    const first = await sim.front(EU).refresh(token)
    expect(first.status).toBe(200)
    // Before replication: the US replica does not know of the rotation yet.
    const replay = await sim.front(US).refresh(token)
    expect(replay.status, JSON.stringify(replay.body)).toBe(200)
    expect(replay.body.refresh_token).toBe(first.body.refresh_token)
  })

  it('detects reuse across regions: a retired token presented in the other region ends the session everywhere', async () => {
    const { refresh_token: token } = await loginAt(US)
    const child = (await sim.front(US).refresh(token)).body.refresh_token as string
    sim.advanceClock((GRACE_SECONDS + 1) * 1000)
    const reuse = await sim.front(EU).refresh(token)
    expect(reuse.status).toBe(400)
    expect(reuse.body).toEqual(INVALID_GRANT)
    expect((await sim.sessionIn(US, token))?.revokedReason).toBe('reuse')
    expect((await sim.front(US).refresh(child)).body).toEqual(INVALID_GRANT)
    await sim.replicator.drain()
    expect((await sim.sessionIn(EU, token))?.status).toBe('revoked')
    expect((await sim.front(EU).refresh(child)).body).toEqual(INVALID_GRANT)
  })

  it('never forks a session refreshed with one token in both regions at once: one child for both, one rotation', async () => {
    const { refresh_token: token } = await loginAt(EU)
    await sim.replicator.drain()
    const replies = await Promise.all([sim.front(EU).refresh(token), sim.front(US).refresh(token)])
    expect(replies.map((r) => r.status)).toEqual([200, 200])
    expect(replies[0]?.body.refresh_token).toBe(replies[1]?.body.refresh_token)
    await sim.replicator.drain()
    const [eu, us] = await Promise.all([sim.sessionIn(EU, token), sim.sessionIn(US, token)])
    expect(eu?.generation).toBe(1)
    expect(us?.generation).toBe(1)
    expect(us?.currentHash).toBe(eu?.currentHash)
  })
})

describe('one token refreshed in both regions at once, without a grace window', () => {
  it('never forks the session: one answer, the other is reuse, and reuse ends the session everywhere', async () => {
    const login = await sim.front(EU).call('POST', '/login', {
      form: { username, password: PASSWORD, client_id: NO_GRACE },
    })
    expect(login.status).toBe(200)
    const token = login.body.refresh_token as string
    await sim.replicator.drain()
    const refresh = (region: Region, refresh_token: string) =>
      sim.front(region).call('POST', '/token', {
        form: { grant_type: 'refresh_token', refresh_token, client_id: NO_GRACE },
      })
    const replies = await Promise.all([refresh(EU, token), refresh(US, token)])
    expect(replies.map((r) => r.status).sort()).toEqual([200, 400])
    const child = replies.find((r) => r.status === 200)?.body.refresh_token as string
    // One decision in one place: the reuse ended the session, the winner's child with it.
    expect((await refresh(US, child)).body).toEqual(INVALID_GRANT)
    expect((await sim.sessionIn(EU, token))?.status).toBe('revoked')
    await sim.replicator.drain()
    expect((await sim.sessionIn(US, token))?.status).toBe('revoked')
  })
})

describe('security events', () => {
  it('reach the bus once: each region’s forwarder sends, through its mapping’s filter, only what its region wrote', async () => {
    // Events written in both regions: logins in each, a revocation forwarded to the home.
    await loginAt(US)
    const { refresh_token: token } = await loginAt(EU)
    expect((await sim.front(US).revoke(token)).status).toBe(200)
    await sim.replicator.drain()
    for (const region of [EU, US]) await sim.deployment[region].pollStreams()
    const outbox = async (region: Region) => {
      const { Items = [] } = await sim.dynamodb[region].send(
        new ScanCommand({
          TableName: sim.deployment[region].tableName,
          FilterExpression: 'sk = :event',
          ExpressionAttributeValues: { ':event': { S: 'EVENT' } },
        }),
      )
      return Items.map((item) => ({ id: item.id?.S, region: item.region?.S }))
    }
    const [inEu, inUs] = await Promise.all([outbox(EU), outbox(US)])
    // Replication: both replicas hold every outbox item.
    expect(inUs.map((e) => e.id).sort()).toEqual(inEu.map((e) => e.id).sort())
    const sent = (region: Region) =>
      sim.deployment[region].busEntries().map((entry) => JSON.parse(entry.detail).id as string)
    const [euSent, usSent] = [sent(EU), sent(US)]
    expect([...euSent, ...usSent].sort()).toEqual(inEu.map((e) => e.id).sort())
    expect(euSent.sort()).toEqual(
      inEu
        .filter((e) => e.region === EU)
        .map((e) => e.id)
        .sort(),
    )
    expect(usSent.sort()).toEqual(
      inEu
        .filter((e) => e.region === US)
        .map((e) => e.id)
        .sort(),
    )
    expect(usSent.length).toBeGreaterThan(0)
    // Nothing new on a second poll: nothing sent twice.
    for (const region of [EU, US]) await sim.deployment[region].pollStreams()
    expect([...sent(EU), ...sent(US)]).toHaveLength(euSent.length + usSent.length)
  })
})

describe('when the home region is lost (failover: relogin)', () => {
  it('refuses the refresh with 400 invalid_grant "home region unavailable", writes nothing, and a new login in the healthy region works', async () => {
    const { refresh_token: token } = await loginAt(EU)
    await sim.replicator.drain()
    const before = { [EU]: await sim.sessionIn(EU, token), [US]: await sim.sessionIn(US, token) }
    const meter = sim.cloud[US].meter.length
    sim.down(EU)
    try {
      expect(() => sim.front(EU)).toThrow(/down/)
      const reply = await sim.front(US).refresh(token)
      expect(reply.status).toBe(400)
      expect(reply.body).toEqual({
        error: 'invalid_grant',
        error_description: HOME_UNREACHABLE_DESCRIPTION,
      })
      // Nothing written, in either region.
      expect(callsOf(US, 'token', meter).filter((call) => WRITES.test(call.operation))).toEqual([])
      expect(await sim.sessionIn(US, token)).toEqual(before[US])
      expect(await sim.sessionIn(EU, token)).toEqual(before[EU])
      // The client logs in again where it is: that session is homed in the healthy region.
      const fresh = await loginAt(US)
      expect(fresh.refresh_token).toMatch(/^rt2_us-east-1\./)
      expect((await sim.front(US).refresh(fresh.refresh_token)).status).toBe(200)
      expect((await sim.front(US).me(fresh.access_token)).status).toBe(200)
      // No Invoke was answered: the lost home answered none, the new session is decided here.
      expect(callsOf(US, 'token', meter).filter((c) => c.service === 'lambda')).toEqual([])
    } finally {
      sim.up(EU)
    }
    // Once the home is back, its session refreshes again: nothing was lost.
    expect((await sim.front(US).refresh(token)).status).toBe(200)
  })
})

describe('when the home region does not answer at all', () => {
  it('refuses the refresh the same way once the forward’s budget has run out, well within the token function’s own timeout', async () => {
    const us = sim.assembly.templates[US]
    const fn =
      us &&
      resourcesOf(us, 'AWS::Lambda::Function').find(([id]) =>
        id.startsWith('TokenServiceTokenFunction'),
      )?.[1]
    const budgetMs = Number(
      fn?.Environment?.Variables?.HOME_FORWARD_TIMEOUT_MS ??
        SETTINGS.HOME_FORWARD_TIMEOUT_MS.default,
    )
    // Else Lambda would end the function first: a 500 at API Gateway, not the answer below.
    expect(budgetMs).toBeLessThan(Number(fn?.Timeout) * 1000)
    const { refresh_token: token } = await loginAt(EU)
    await sim.replicator.drain()
    const before = await sim.sessionIn(US, token)
    sim.down(EU, 'hang')
    try {
      const reply = await sim.front(US).refresh(token)
      expect(reply.status).toBe(400)
      expect(reply.body).toEqual({
        error: 'invalid_grant',
        error_description: HOME_UNREACHABLE_DESCRIPTION,
      })
      expect(await sim.sessionIn(US, token)).toEqual(before)
    } finally {
      sim.up(EU)
    }
  })
})

describe('revocation when the home region is lost', () => {
  it('is written where it lands (200), and holds in the home once replicated', async () => {
    const { refresh_token: token } = await loginAt(EU)
    await sim.replicator.drain()
    sim.down(EU)
    try {
      expect((await sim.front(US).revoke(token)).status).toBe(200)
      expect((await sim.sessionIn(US, token))?.status).toBe('revoked')
    } finally {
      sim.up(EU)
    }
    await sim.replicator.drain()
    expect((await sim.sessionIn(EU, token))?.status).toBe('revoked')
    expect((await sim.front(EU).refresh(token)).body).toEqual(INVALID_GRANT)
  })
})

describe('ending a session with DELETE /sessions/{sid} in the region that is not its home', () => {
  it('is forwarded by the synthesized sessions function under its own IAM and decided in the home', async () => {
    const tokens = await loginAt(EU)
    await sim.replicator.drain()
    const sid = parseRefreshToken(tokens.refresh_token)?.sid
    const homeArn = `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:${STACK}-sessions`
    const sessions = sim.deployment[US].functions.get('sessions')?.caller
    const before = sessions?.calls.get(`lambda:InvokeFunction ${homeArn}`)?.allowed ?? 0
    const ended = await sim.front(US).call('DELETE', `/sessions/${sid}`, {
      token: tokens.access_token,
    })
    expect(ended.status, JSON.stringify(ended.body)).toBe(204)
    expect(sessions?.calls.get(`lambda:InvokeFunction ${homeArn}`)?.allowed).toBe(before + 1)
    expect((await sim.sessionIn(EU, tokens.refresh_token))?.status).toBe('revoked')
    expect((await sim.front(EU).refresh(tokens.refresh_token)).body).toEqual(INVALID_GRANT)
    await sim.replicator.drain()
    expect((await sim.sessionIn(US, tokens.refresh_token))?.status).toBe('revoked')
  })
})

describe('logout everywhere in one region', () => {
  it('ends the sessions homed in both regions: at once in its own, in the other once replicated, and a rotation there within the lag undoes nothing', async () => {
    const inEu = await loginAt(EU)
    const inUs = await loginAt(US)
    await sim.replicator.drain()
    sim.replicator.hold()
    let child: string
    try {
      const logout = await sim.front(US).call('DELETE', '/sessions', { token: inUs.access_token })
      expect(logout.status, JSON.stringify(logout.body)).toBe(204)
      expect((await sim.front(US).refresh(inUs.refresh_token)).body).toEqual(INVALID_GRANT)
      // Within the lag the home of the other session has not seen the cut: the lag is the
      // bound the docs state. Its rotation now writes that session's item after the cut.
      const rotated = await sim.front(US).refresh(inEu.refresh_token)
      expect(rotated.status).toBe(200)
      child = rotated.body.refresh_token
    } finally {
      sim.replicator.release()
    }
    await sim.replicator.drain()
    // The cut is on the user item, which no refresh writes: last writer wins cannot undo it.
    for (const region of [EU, US]) {
      expect((await sim.front(region).refresh(child)).body).toEqual(INVALID_GRANT)
    }
    sim.advanceClock(cachesMs().total)
    expect((await sim.front(EU).me(inEu.access_token)).status).toBe(403)
  })
})

describe('revocation in one region', () => {
  it('is decided in the home, and not seen in the other region before it has replicated, however long the caches have run out', async () => {
    const caches = cachesMs()
    const tokens = await loginAt(EU)
    await sim.replicator.drain()
    expect((await sim.front(US).me(tokens.access_token)).status).toBe(200)
    sim.replicator.hold()
    try {
      expect((await sim.front(US).revoke(tokens.refresh_token)).status).toBe(200)
      expect((await sim.sessionIn(EU, tokens.refresh_token))?.status).toBe('revoked')
      expect((await sim.front(EU).me(tokens.access_token)).status).toBe(403)
      sim.advanceClock(caches.total + 1000)
      expect((await sim.sessionIn(US, tokens.refresh_token))?.status).toBe('active')
      expect((await sim.front(US).me(tokens.access_token)).status).toBe(200)
    } finally {
      sim.replicator.release()
    }
    await sim.replicator.drain()
    sim.advanceClock(caches.total)
    expect((await sim.front(US).me(tokens.access_token)).status).toBe(403)
  })

  it('reaches the other region within the stated bound: the replication delay, then the authorizer’s caches (harness clock)', async () => {
    const caches = cachesMs()
    const tokens = await loginAt(EU)
    await sim.replicator.drain()
    // The US authorizer has seen the session: its verdict is cached.
    expect((await sim.front(US).me(tokens.access_token)).status).toBe(200)
    const revokedAt = sim.now()
    expect((await sim.front(US).revoke(tokens.refresh_token)).status).toBe(200)
    await sim.replicator.drain()
    const applied = sim.replicator.log.filter(
      (record) =>
        record.to === US && record.seenAt >= revokedAt && record.key.includes('"SESSION#'),
    )
    expect(applied.length).toBeGreaterThan(0)
    const lag = Math.max(...applied.map((record) => record.appliedAt - record.seenAt))
    // The replicator keeps its configured delay, on the harness clock.
    expect(lag).toBeGreaterThanOrEqual(sim.replicationDelayMs)
    const appliedAt = Math.max(...applied.map((record) => record.appliedAt))
    expect((await sim.sessionIn(US, tokens.refresh_token))?.status).toBe('revoked')
    // Once the US replica has it, the caches are all that is left of the bound.
    sim.advanceClock(Math.max(0, appliedAt + caches.total - sim.now()))
    expect((await sim.front(US).me(tokens.access_token)).status).toBe(403)
    console.log(
      `revocation from the US, home EU: replicated to the US ${lag.toFixed(0)} ms after the home wrote it (delay ${sim.replicationDelayMs} ms, harness clock), refused there ${caches.total} ms later at the latest (answer cache ${caches.answer} ms + session cache ${caches.session} ms)`,
    )
  })
})

describe('the added latency of a forwarded refresh', () => {
  it('is measured: refreshes at home and forwarded, interleaved, medians reported (not asserted)', async () => {
    // The first rounds warm both paths up (the US token function's cold start among them).
    const tokens = [(await loginAt(EU)).refresh_token, (await loginAt(EU)).refresh_token] as const
    const usToken = sim.deployment[US].functions.get('token')
    const homeArn = `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:${STACK}-token`
    const invokes = () =>
      usToken?.caller.calls.get(`lambda:InvokeFunction ${homeArn}`)?.allowed ?? 0
    const before = invokes()
    const measured = await measureForwardedLatency({
      home: sim.front(EU),
      away: sim.front(US),
      tokens,
      rounds: 30,
      warmup: 5,
    })
    console.log(
      `stack simulation: forwarded refresh (median of ${measured.samples}) ${measured.forwarded.toFixed(1)} ms, at home ${measured.home.toFixed(1)} ms: +${(measured.forwarded - measured.home).toFixed(1)} ms (one Lambda Invoke between sandboxes, no inter-region round trip)`,
    )
    // Every refresh sent to us-east-1 was forwarded: what was measured is the forward.
    expect(invokes() - before).toBe(30)
  })
})

describe('IAM in both regions', () => {
  it('denied no call of either region’s functions', () => {
    expect(sim.denials()).toEqual([])
  })

  it('refuses an Invoke its role does not allow, and records the denial', async () => {
    // The login function's role may not invoke anything: its credentials, as its sandbox has them.
    const login = sim.deployment[US].functions.get('login')
    if (!login) throw new Error('no login function')
    const lambda = new LambdaClient({
      region: EU,
      endpoint: sim.cloud[US].endpoint,
      maxAttempts: 1,
      credentials: { accessKeyId: login.caller.accessKeyId, secretAccessKey: 'x' },
    })
    try {
      await expect(
        lambda.send(
          new InvokeCommand({
            FunctionName: `${STACK}-token`,
            Payload: new TextEncoder().encode('{}'),
          }),
        ),
      ).rejects.toMatchObject({ name: 'AccessDeniedException' })
    } finally {
      lambda.destroy()
    }
    expect(sim.denials()).toEqual([
      `${US} login lambda:InvokeFunction arn:aws:lambda:eu-west-1:${ACCOUNT}:function:${STACK}-token`,
    ])
  })
})
