/**
 * `failover: 'adopt'` on what `cdk synth` produces (docs/multi-region.md "Adoption" and
 * "Simulation on the synthesized stacks"): the app with `regions: ['eu-west-1', 'us-east-1']`
 * and `failover: 'adopt'` synthesized once, deployed by test/stack/regions.ts. The home is
 * declared lost as an operator does it, by running `npm run regions` (bin/regions.ts) against
 * the healthy region's table; the fork consumer (`<stackName>-forks` in each region) runs on
 * its region's stream through its synthesized mapping (from LATEST, the two filter patterns)
 * under its own role, and invokes its copy in the other region through Lambda Invoke.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { ScanCommand } from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseRefreshToken } from '../../functions/core/refresh-token.js'
import { REGION_SWITCH_CACHE_MS } from '../../functions/core/regions.js'
import type { Region } from '../support/regions.js'
import { ACCOUNT, type MeteredCall } from './cloud.js'
import { PRIMARY, SECONDARY, type StackRegions, startStackRegions } from './regions.js'

const EU: Region = PRIMARY
const US: Region = SECONDARY
const STACK = 'TokenServiceTwoRegionsAdopt'
const INVALID_GRANT = {
  error: 'invalid_grant',
  error_description: 'the credentials or refresh token are invalid, expired or revoked',
}
const WRITES = /^(PutItem|UpdateItem|DeleteItem|TransactWriteItems|BatchWriteItem)$/

let sim: StackRegions
let username: string
const started = performance.now()
/** What the file measured, printed at the end. */
const measured: Record<string, unknown> = {}

beforeAll(async () => {
  sim = await startStackRegions({
    stackName: STACK,
    context: { failover: 'adopt' },
    replicationDelayMs: 50,
  })
  username = await sim.seedUser()
})

afterAll(async () => {
  const invokes = sim
    ? Object.fromEntries(
        [EU, US].map((region) => [
          region,
          {
            answered: sim.cloud[region].meter.filter((call) => call.operation === 'Invoke').length,
            unanswered: sim.cloud[region].unanswered.length,
          },
        ]),
      )
    : {}
  await sim?.close()
  console.log(
    `test/stack/multi-region-adopt.test.ts: ${((performance.now() - started) / 1000).toFixed(1)} s wall time (synth, deploy, tests); Lambda Invokes in the file: ${JSON.stringify(invokes)}; ${JSON.stringify(measured)}`,
  )
})

async function loginAt(region: Region) {
  const reply = await sim.front(region).login(username)
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  return reply.body as { access_token: string; refresh_token: string }
}

const sidOf = (token: string) => parseRefreshToken(token)?.sid as string

/** Where each region's meter stands now. */
const meters = () =>
  ({ [EU]: sim.cloud[EU].meter.length, [US]: sim.cloud[US].meter.length }) as Record<Region, number>
/** Where each region's record of the Invokes it sent to a region down stands now. */
const unanswered = () =>
  ({
    [EU]: sim.cloud[EU].unanswered.length,
    [US]: sim.cloud[US].unanswered.length,
  }) as Record<Region, number>
/** The Invokes sent from `region` since `from` that reached a region down (no answer). */
const unansweredSince = (region: Region, from: Record<Region, number>) =>
  sim.cloud[region].unanswered
    .slice(from[region])
    .map((call) => `${call.caller} Invoke (${call.region})`)
/** The calls made in `region` since `from`, `caller operation` (each region's own meter). */
const callsSince = (
  region: Region,
  from: Record<Region, number>,
  test: (call: MeteredCall) => boolean = () => true,
) =>
  sim.cloud[region].meter
    .slice(from[region])
    .filter(test)
    .map((call) => `${call.caller} ${call.operation}${call.region ? ` (${call.region})` : ''}`)

/** Every item of a region's replica (an operator's scan), one JSON text each, sorted. */
async function itemsIn(region: Region): Promise<string[]> {
  const { Items = [] } = await sim.dynamodb[region].send(
    new ScanCommand({ TableName: sim.deployment[region].tableName, ConsistentRead: true }),
  )
  return Items.map((item) =>
    JSON.stringify(Object.fromEntries(Object.entries(item).sort(([a], [b]) => a.localeCompare(b)))),
  ).sort()
}

/**
 * `npm run regions -- <command> <region>` as an operator runs it against the healthy
 * region's table (with that region's credentials and name); then the token functions'
 * cached reading of the switch lapses (harness clock).
 */
async function regions(command: 'lost' | 'restore', region: Region) {
  const healthy = region === EU ? US : EU
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'bin/regions.ts',
      command,
      region,
      '--by',
      'operator',
      '--table',
      sim.deployment[healthy].tableName,
      '--endpoint',
      sim.cloud[healthy].dynamodbLocal,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        AWS_REGION: healthy,
        AWS_ACCESS_KEY_ID: 'operator',
        AWS_SECRET_ACCESS_KEY: 'operator',
      },
    },
  )
  let output = ''
  child.stdout.on('data', (chunk) => {
    output += chunk
  })
  child.stderr.on('data', (chunk) => {
    output += chunk
  })
  const [code] = await once(child, 'close')
  expect(code, output).toBe(0)
  expect(output).toContain(`declared ${region} ${command === 'lost' ? 'lost' : 'restored'}`)
  sim.advanceClock(REGION_SWITCH_CACHE_MS + 1000)
}

/** Replication and both regions' stream consumers, until nothing is left to do. */
async function converge(): Promise<number> {
  let invocations = 0
  for (let round = 0; round < 10; round++) {
    await sim.replicator.drain()
    let now = 0
    for (const region of [EU, US]) now += await sim.deployment[region].pollStreams()
    invocations += now
    if (now === 0) return invocations
  }
  throw new Error('the stream consumers never settled')
}

/** A region's deployed function whose name ends with `suffix`. */
function functionOf(region: Region, suffix: string) {
  const found = [...sim.deployment[region].functions.values()].find((f) =>
    f.lambda.options.functionName.endsWith(suffix),
  )
  if (!found) throw new Error(`no function *${suffix} in ${region}`)
  return found
}

/** The fork consumer (`<stackName>-forks`) of a region. */
const forkConsumer = (region: Region) => functionOf(region, '-forks')

/** How often each region's fork consumer and events forwarder have been invoked. */
const invocations = () =>
  Object.fromEntries(
    [EU, US].map((region) => [
      region,
      {
        forks: forkConsumer(region).lambda.invocations,
        forwarder: [...sim.deployment[region].functions.values()]
          .filter((f) => f.caller.name.includes('forwarder'))
          .reduce((sum, f) => sum + f.lambda.invocations, 0),
      },
    ]),
  ) as Record<Region, { forks: number; forwarder: number }>

/** The fork consumer's role's allowed calls so far, `action resource` -> count. */
function forkConsumerCalls(region: Region): Record<string, number> {
  return Object.fromEntries(
    [...forkConsumer(region).caller.calls]
      .filter(([, c]) => c.allowed > 0)
      .map(([key, c]) => [key, c.allowed]),
  )
}

const tableArn = (region: Region) =>
  `arn:aws:dynamodb:${region}:${ACCOUNT}:table/${sim.deployment[region].tableName}`

describe('failover adopt on the synthesized stacks: the fork consumer', () => {
  it('is not invoked for the writes of a session never adopted, in either region (its mapping’s filters), while the events forwarder is', async () => {
    const { refresh_token: token } = await loginAt(EU)
    await converge()
    const before = invocations()
    let current = token
    for (const region of [EU, US, EU]) {
      const reply = await sim.front(region).refresh(current)
      expect(reply.status, JSON.stringify(reply.body)).toBe(200)
      current = reply.body.refresh_token as string
    }
    // A revocation too: the session's last write, with an event.
    expect((await sim.front(US).revoke(current)).status).toBe(200)
    await converge()
    expect((await sim.sessionIn(US, token))?.status).toBe('revoked')
    const after = invocations()
    for (const region of [EU, US]) {
      expect(after[region].forks, region).toBe(before[region].forks)
    }
    // The streams had records to hand over: the forwarder sent the revocation's event.
    expect(after[EU].forwarder + after[US].forwarder).toBeGreaterThan(
      before[EU].forwarder + before[US].forwarder,
    )
  })
})

describe('failover adopt on the synthesized stacks: the home down, not declared lost', () => {
  it('answers a refresh in the other region 503 temporarily_unavailable with Retry-After, and writes nothing in either region', async () => {
    // The other region's token function warm: its cold start stores its grace key.
    const warm = await sim.front(US).refresh((await loginAt(US)).refresh_token)
    expect(warm.status).toBe(200)
    const { refresh_token: token } = await loginAt(EU)
    await sim.replicator.drain()
    const before = { [EU]: await itemsIn(EU), [US]: await itemsIn(US) }
    const from = meters()
    const tried = unanswered()
    sim.down(EU)
    let reply: Awaited<ReturnType<ReturnType<StackRegions['front']>['refresh']>>
    try {
      reply = await sim.front(US).refresh(token)
    } finally {
      sim.up(EU)
    }
    expect(reply.status, JSON.stringify(reply.body)).toBe(503)
    expect(reply.body).toMatchObject({ error: 'temporarily_unavailable' })
    // As documented (docs/multi-region.md "Adoption").
    expect(reply.headers.get('retry-after')).toBe('5')
    // The forward got no answer (a region down drops it: recorded as unanswered, not
    // metered), then the switch was read (not declared): nothing written.
    expect(callsSince(US, from)).toEqual(['token GetItem'])
    expect(unansweredSince(US, tried)).toEqual([`token Invoke (${EU})`])
    expect(callsSince(EU, from)).toEqual([])
    await sim.replicator.drain()
    expect(await itemsIn(US)).toEqual(before[US])
    expect(await itemsIn(EU)).toEqual(before[EU])
    // The home back, the client's retry goes through: nothing was lost.
    const retried = await sim.front(US).refresh(token)
    expect(retried.status, JSON.stringify(retried.body)).toBe(200)
  })
})

describe('failover adopt on the synthesized stacks: the home declared lost', () => {
  it('adopts the session in the other region (child rt2_us-east-1, the item homed there, epoch 1), and decides its next refresh there without any Lambda Invoke', async () => {
    const { refresh_token: token } = await loginAt(EU)
    const first = await sim.front(EU).refresh(token)
    expect(first.status).toBe(200)
    await sim.replicator.drain()
    sim.down(EU)
    try {
      await regions('lost', EU)
      const from = meters()
      const tried = unanswered()
      const reply = await sim.front(US).refresh(first.body.refresh_token as string)
      expect(reply.status, JSON.stringify(reply.body)).toBe(200)
      measured.adoption = {
        [EU]: callsSince(EU, from),
        [US]: [...callsSince(US, from), ...unansweredSince(US, tried)],
      }
      // One forward tried (no answer), then the switch read (declared lost): adopted here.
      expect(unansweredSince(US, tried)).toEqual([`token Invoke (${EU})`])
      const child = reply.body.refresh_token as string
      expect(child).toMatch(/^rt2_us-east-1\./)
      expect(await sim.sessionIn(US, token)).toMatchObject({
        home: US,
        epoch: 1,
        adoptedAt: 1,
        generation: 2,
      })
      // Nothing reached the lost home; in the adopter, what a refresh writes: the retired
      // token's record and the one conditional write (which moves the home).
      expect(callsSince(EU, from)).toEqual([])
      expect(callsSince(US, from, (call) => WRITES.test(call.operation))).toEqual([
        'token PutItem',
        'token UpdateItem',
      ])
      const next = meters()
      const nextTried = unanswered()
      const again = await sim.front(US).refresh(child)
      expect(again.status, JSON.stringify(again.body)).toBe(200)
      expect(again.body.refresh_token).toMatch(/^rt2_us-east-1\./)
      measured.refreshInAdopter = { [EU]: callsSince(EU, next), [US]: callsSince(US, next) }
      for (const region of [EU, US]) {
        expect(callsSince(region, next, (call) => call.service === 'lambda')).toEqual([])
        expect(unansweredSince(region, nextTried)).toEqual([])
      }
      expect(await sim.sessionIn(US, token)).toMatchObject({ home: US, epoch: 1, generation: 3 })
    } finally {
      sim.up(EU)
    }
    // The adopted session's writes (an epoch in their images) pass the consumer's filters in
    // both regions' streams, and are no fork: the session lives on.
    const before = invocations()
    await converge()
    const after = invocations()
    for (const region of [EU, US]) {
      expect(after[region].forks, region).toBeGreaterThan(before[region].forks)
      expect(await sim.sessionIn(region, token), region).toMatchObject({
        status: 'active',
        home: US,
      })
    }
    await regions('restore', EU)
  })

  it('forwards an old-home token of an adopted session, presented in the returned old home, to the adopter, which decides it: the old home writes nothing', async () => {
    const { refresh_token: token } = await loginAt(EU)
    await sim.replicator.drain()
    sim.down(EU)
    let child: string
    try {
      await regions('lost', EU)
      const reply = await sim.front(US).refresh(token)
      expect(reply.status, JSON.stringify(reply.body)).toBe(200)
      child = reply.body.refresh_token as string
    } finally {
      sim.up(EU)
    }
    await sim.replicator.drain()
    const inEu = await sim.sessionIn(EU, token)
    expect(inEu).toMatchObject({ home: US, epoch: 1 })
    const from = meters()
    // Within grace: the adopter's byte-identical child, which only the adopter can give.
    const replay = await sim.front(EU).refresh(token)
    expect(replay.status, JSON.stringify(replay.body)).toBe(200)
    expect(replay.body.refresh_token).toBe(child)
    measured.oldHomeForward = { [EU]: callsSince(EU, from), [US]: callsSince(US, from) }
    // The old home read its replica, saw the adopter, and forwarded: one Invoke, no write.
    expect(callsSince(EU, from, (call) => call.operation === 'Invoke')).toEqual(['token Invoke'])
    expect(callsSince(EU, from, (call) => WRITES.test(call.operation))).toEqual([])
    // Decided in the adopter: its token function read the session there.
    expect(callsSince(US, from, (call) => call.caller === 'token').length).toBeGreaterThan(0)
    expect(callsSince(US, from, (call) => call.operation === 'Invoke')).toEqual([])
    expect(await sim.sessionIn(EU, token)).toEqual(inEu)
    // Restored only now: the switch's cache lapse (10 s) would have ended the grace window.
    await regions('restore', EU)
  })
})

describe('failover adopt on the synthesized stacks: a fork', () => {
  it('ends the family in both regions with exactly one session.revoked (forked) event on the bus, the fork consumer running under its own IAM', async () => {
    const { refresh_token: token } = await loginAt(EU)
    await converge()
    const busBefore = { [EU]: sim.deployment[EU].busEntries().length }
    busBefore[US] = sim.deployment[US].busEntries().length
    // The old home's last replication window: its rotation never reaches the other region.
    sim.replicator.hold()
    const oldHome = await sim.front(EU).refresh(token)
    expect(oldHome.status, JSON.stringify(oldHome.body)).toBe(200)
    // Seen by the replicator (held: not applied) before the adoption, the later write.
    await sim.replicator.drain()
    // Then it is taken down and declared lost, and the other region adopts from its
    // replica, one rotation behind.
    sim.down(EU)
    let adopter: Awaited<ReturnType<ReturnType<StackRegions['front']>['refresh']>>
    try {
      await regions('lost', EU)
      adopter = await sim.front(US).refresh(token)
    } finally {
      sim.up(EU)
    }
    expect(adopter.status, JSON.stringify(adopter.body)).toBe(200)
    expect(await sim.sessionIn(US, token)).toMatchObject({ home: US, epoch: 1, adoptedAt: 0 })
    // The home back, replication released: last writer wins, the consumers run.
    const from = meters()
    sim.replicator.release()
    const invocations = await converge()
    measured.forkConvergence = {
      streamInvocations: invocations,
      [EU]: callsSince(EU, from),
      [US]: callsSince(US, from),
    }
    for (const region of [EU, US]) {
      expect(await sim.sessionIn(region, token), region).toMatchObject({
        status: 'revoked',
        revokedReason: 'forked',
      })
    }
    for (const child of [oldHome.body.refresh_token, adopter.body.refresh_token] as string[]) {
      for (const region of [EU, US]) {
        expect((await sim.front(region).refresh(child)).body).toEqual(INVALID_GRANT)
      }
    }
    await converge()
    const forked = [EU, US].flatMap((region) =>
      sim.deployment[region]
        .busEntries()
        .slice(busBefore[region])
        .map((entry) => ({ region, detailType: entry.detailType, ...JSON.parse(entry.detail) }))
        .filter((event) => event.data?.reason === 'forked'),
    )
    expect(forked.map((event) => [event.detailType, event.type, event.data.sid])).toEqual([
      ['session.revoked', 'session.revoked', sidOf(token)],
    ])
    // The adoption, the later write, won in both replicas: the fork showed in the old home's
    // stream (its own write overwritten). Its consumer invoked its copy in the converged
    // home, which ended the family there; the home's forwarder sent the one event.
    expect(measured.forkConvergence).toMatchObject({
      [EU]: ['forkdetectionconsumer Invoke'],
      [US]: [
        'forkdetectionconsumer GetItem',
        'forkdetectionconsumer TransactWriteItems',
        'securityeventsforwarder PutEvents',
      ],
    })
    // Each under its own role.
    const consumer = { [EU]: forkConsumerCalls(EU), [US]: forkConsumerCalls(US) }
    const usForks = forkConsumer(US).lambda.options.arn
    expect(usForks).toBe(`arn:aws:lambda:${US}:${ACCOUNT}:function:${STACK}-forks`)
    expect(consumer[EU][`lambda:InvokeFunction ${usForks}`]).toBe(1)
    expect(consumer[US][`dynamodb:UpdateItem ${tableArn(US)}`]).toBe(1)
    expect(
      Object.keys(consumer[EU]).filter(
        (call) => call.includes(':table/') && !call.includes('/stream/'),
      ),
    ).toEqual([])
    await regions('restore', EU)
  })

  it('ends a session the old home rotated on after the adoption (declared lost while it still served) in both regions, with one event: the consumer of the other region invokes the old home’s', async () => {
    const { refresh_token: token } = await loginAt(EU)
    await converge()
    const busBefore = {
      [EU]: sim.deployment[EU].busEntries().length,
      [US]: sim.deployment[US].busEntries().length,
    }
    const consumerBefore = { [EU]: forkConsumerCalls(EU), [US]: forkConsumerCalls(US) }
    // A partition: nothing replicates, the other region cannot reach the home and adopts...
    sim.replicator.hold()
    sim.down(EU)
    let adopter: Awaited<ReturnType<ReturnType<StackRegions['front']>['refresh']>>
    try {
      await regions('lost', EU)
      adopter = await sim.front(US).refresh(token)
    } finally {
      sim.up(EU)
    }
    expect(adopter.status, JSON.stringify(adopter.body)).toBe(200)
    expect(adopter.body.refresh_token).toMatch(/^rt2_us-east-1\./)
    // The replicator sees the adoption (applies nothing: held) before the home's write, so
    // that its last-writer-wins order is the writes' (it orders by when it saw a write).
    await sim.replicator.drain()
    // ...while the home, still serving its clients, rotates the same token: a later write.
    const oldHome = await sim.front(EU).refresh(token)
    expect(oldHome.status, JSON.stringify(oldHome.body)).toBe(200)
    expect(await sim.sessionIn(EU, token)).toMatchObject({ home: EU, generation: 1 })
    expect((await sim.sessionIn(EU, token))?.epoch).toBeUndefined()
    const from = meters()
    sim.replicator.release()
    await converge()
    const calls = { [EU]: callsSince(EU, from), [US]: callsSince(US, from) }
    measured.partitionForkConvergence = calls
    for (const region of [EU, US]) {
      expect(await sim.sessionIn(region, token), region).toMatchObject({
        status: 'revoked',
        revokedReason: 'forked',
      })
    }
    for (const child of [oldHome.body.refresh_token, adopter.body.refresh_token] as string[]) {
      for (const region of [EU, US]) {
        expect((await sim.front(region).refresh(child)).body).toEqual(INVALID_GRANT)
      }
    }
    await converge()
    const forked = [EU, US].flatMap((region) =>
      sim.deployment[region]
        .busEntries()
        .slice(busBefore[region])
        .map((entry) => ({ region, detailType: entry.detailType, ...JSON.parse(entry.detail) }))
        .filter((event) => event.data?.reason === 'forked'),
    )
    expect(forked.map((event) => [event.region, event.type, event.data.sid])).toEqual([
      [EU, 'session.revoked', sidOf(token)],
    ])
    // The home's write, the later one, won in both replicas: the fork showed in the adopter's
    // stream (an adoption overwritten: the epoch only in the OldImage), whose consumer invoked
    // its copy in the converged home, the old home, which ended the family there.
    expect(calls).toMatchObject({
      [US]: ['forkdetectionconsumer Invoke'],
      [EU]: [
        'forkdetectionconsumer GetItem',
        'forkdetectionconsumer TransactWriteItems',
        'securityeventsforwarder PutEvents',
      ],
    })
    const euForks = forkConsumer(EU).lambda.options.arn
    expect(euForks).toBe(`arn:aws:lambda:${EU}:${ACCOUNT}:function:${STACK}-forks`)
    const grown = (region: Region, call: string) =>
      (forkConsumerCalls(region)[call] ?? 0) - (consumerBefore[region][call] ?? 0)
    expect(grown(US, `lambda:InvokeFunction ${euForks}`)).toBe(1)
    expect(grown(EU, `dynamodb:UpdateItem ${tableArn(EU)}`)).toBe(1)
    await regions('restore', EU)
  })

  it('denied no call of either region’s functions', () => {
    expect(sim.denials()).toEqual([])
  })
})
