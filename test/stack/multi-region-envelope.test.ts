/**
 * Envelope signing in two regions on what `cdk synth` produces (docs/multi-region.md
 * "Envelope keys" and "Simulation on the synthesized stacks"): the app with
 * `regions: ['eu-west-1', 'us-east-1']` and `signing: 'envelope'` synthesized once, with
 * the ledger's facts as bin/app.ts passes them for a key added with regions (k1: envelope,
 * multi-Region), deployed by test/stack/regions.ts. The harness models the multi-Region
 * wrapping key and its replica (one key id, one key material: a pair wrapped under either
 * opens under the other, each region calling its own), and the other region's DynamoDB
 * client of the functions outside the primary (`ENVELOPE_KEY_PAIR_REGION`), served by the
 * primary's DynamoDB Local under IAM on the primary's table ARN.
 */
import {
  type AttributeValue,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb'
import { createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Region } from '../support/regions.js'
import { resourcesOf } from './assembly.js'
import { ACCOUNT, type MeteredCall } from './cloud.js'
import { ISSUER, PRIMARY, SECONDARY, type StackRegions, startStackRegions } from './regions.js'

const EU: Region = PRIMARY
const US: Region = SECONDARY
const STACK = 'TokenServiceTwoRegionsEnvelope'
const KEY = 'k1'
const PAIR_KEY = { pk: { S: `SIGNINGKEY#${KEY}` }, sk: { S: 'SIGNINGKEY' } }

let sim: StackRegions
let username: string
const started = performance.now()

beforeAll(async () => {
  sim = await startStackRegions({
    stackName: STACK,
    context: { signing: 'envelope' },
    // What bin/app.ts's ledger passes for k1 added with `signing: 'envelope'` and `regions`.
    ledger: { transitionKeys: [], modes: { [KEY]: 'envelope' }, multiRegionKeys: [KEY] },
  })
  username = await sim.seedUser()
})

afterAll(async () => {
  await sim?.close()
  console.log(
    `test/stack/multi-region-envelope.test.ts: ${((performance.now() - started) / 1000).toFixed(1)} s wall time (synth, deploy, tests)`,
  )
})

/** The wrapping key's ARN in a region: the multi-Region key, or its replica there. */
function wrappingKeyArn(region: Region): string {
  const eu = sim.assembly.templates[EU]
  const template = sim.assembly.templates[region]
  if (!eu || !template) throw new Error('two stacks')
  const [[id]] = resourcesOf(eu, 'AWS::KMS::Key').filter(
    ([logicalId, p]) => p.MultiRegion && logicalId.startsWith('TokenServiceEnvelopeSigning'),
  ) as [[string, unknown]]
  return sim.cloud[region].attribute(template, id, 'Arn')
}

/** A function's allowed calls of `action` on `resource` so far (its role's record). */
function allowed(region: Region, fn: string, action: string, resource: string): number {
  const caller = sim.deployment[region].functions.get(fn)?.caller
  if (!caller) throw new Error(`no ${fn} in ${region}`)
  return caller.calls.get(`${action} ${resource}`)?.allowed ?? 0
}

/** The key pair's item in a region's replica, as DynamoDB holds it. */
async function pairIn(region: Region): Promise<Record<string, AttributeValue> | undefined> {
  const { Item } = await sim.dynamodb[region].send(
    new GetItemCommand({
      TableName: sim.deployment[region].tableName,
      Key: PAIR_KEY,
      ConsistentRead: true,
    }),
  )
  return Item
}

/** Every item of a region's replica (an operator's scan). */
async function itemsIn(region: Region): Promise<string[]> {
  const { Items = [] } = await sim.dynamodb[region].send(
    new ScanCommand({ TableName: sim.deployment[region].tableName, ConsistentRead: true }),
  )
  return Items.map((item) => JSON.stringify(item, Object.keys(flatten(item)).sort())).sort()
}

/** Every attribute name at any depth: with them sorted, one JSON text per item's content. */
function flatten(value: unknown, names: Record<string, true> = {}): Record<string, true> {
  if (value && typeof value === 'object') {
    for (const [name, inner] of Object.entries(value)) {
      names[name] = true
      flatten(inner, names)
    }
  }
  return names
}

const revocation = (item: Record<string, { S?: string }>) => ({
  status: item.status?.S,
  reason: item.revoked_reason?.S,
})

const calls = (region: Region, from: number, test: (call: MeteredCall) => boolean) =>
  sim.cloud[region].meter.slice(from).filter(test)

async function loginAt(region: Region) {
  const reply = await sim.front(region).login(username)
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  return reply.body as { access_token: string; refresh_token: string }
}

describe('envelope signing in two regions, as synthesized', () => {
  it('wraps under a multi-Region key in the primary and its replica key in the other region: one key id, each region’s own ARN', () => {
    const [eu, us] = [sim.assembly.templates[EU], sim.assembly.templates[US]]
    if (!eu || !us) throw new Error('two stacks')
    expect(resourcesOf(us, 'AWS::KMS::ReplicaKey')).toHaveLength(1)
    // No KMS signing key in either region: the pair is in the table.
    for (const template of [eu, us]) {
      expect(resourcesOf(template, 'AWS::KMS::Key').filter(([, p]) => p.KeyUsage)).toEqual([])
    }
    expect(wrappingKeyArn(EU)).toMatch(/^arn:aws:kms:eu-west-1:\d+:key\/mrk-[0-9a-f]{32}$/)
    expect(wrappingKeyArn(US)).toBe(wrappingKeyArn(EU).replace('eu-west-1', 'us-east-1'))
    const usLogin = sim.deployment[US].functions.get('login')?.lambda.options.environment
    expect(usLogin?.ENVELOPE_KEY_PAIR_REGION).toBe(EU)
    expect(usLogin?.ENVELOPE_MULTI_REGION_KEY_ID).toBe(wrappingKeyArn(US))
    const euLogin = sim.deployment[EU].functions.get('login')?.lambda.options.environment
    expect(euLogin).not.toHaveProperty('ENVELOPE_KEY_PAIR_REGION')
  })

  it('answers a login in the other region 503 while the primary is down and no pair exists: no pair anywhere, the session it wrote ended at once', async () => {
    const before = await itemsIn(US)
    const from = { [EU]: sim.cloud[EU].meter.length, [US]: sim.cloud[US].meter.length }
    sim.down(EU)
    try {
      const reply = await sim.front(US).login(username)
      expect(reply.status, JSON.stringify(reply.body)).toBe(503)
      expect(reply.body).toMatchObject({ error: 'temporarily_unavailable' })
      // Nor can its jwks function publish the key: it would have to create the pair.
      const jwks = await sim.front(US).call('GET', '/.well-known/jwks.json')
      expect(jwks.status, JSON.stringify(jwks.body)).toBe(503)
    } finally {
      sim.up(EU)
    }
    // Its requests signed for eu-west-1 got no answer: none was served, none generated a pair.
    expect(calls(US, from[US], (call) => call.region === EU)).toEqual([])
    expect(calls(EU, from[EU], () => true)).toEqual([])
    expect(calls(US, from[US], (call) => call.service === 'kms')).toEqual([])
    // Signing runs beside the session's write (docs/design.md "Login"): the session it wrote
    // is revoked at once (`login_aborted`), as in one region; no pair is stored anywhere.
    const added = (await itemsIn(US))
      .filter((item) => !before.includes(item))
      .map((item) => JSON.parse(item) as Record<string, { S?: string }>)
    expect(added.filter((item) => item.sk?.S === 'SESSION').map(revocation)).toEqual([
      { status: 'revoked', reason: 'login_aborted' },
    ])
    expect(added.filter((item) => item.pk?.S?.startsWith('SIGNINGKEY#'))).toEqual([])
    await sim.replicator.drain()
    expect(await pairIn(EU)).toBeUndefined()
    expect(await itemsIn(EU)).toEqual(await itemsIn(US))
  })

  it('creates the pair only in the primary’s replica, from the other region first: its tokens and the primary’s share one kid and verify against either region’s JWKS', async () => {
    expect(await pairIn(EU)).toBeUndefined()
    const from = { [EU]: sim.cloud[EU].meter.length, [US]: sim.cloud[US].meter.length }
    sim.replicator.hold()
    const fromUs = await loginAt(US)
    // Written by the US login function through its client for eu-west-1, in the EU replica only.
    const created = await pairIn(EU)
    expect(created?.wrapping?.S).toBe('multi-region')
    expect(await pairIn(US)).toBeUndefined()
    const remote = () =>
      calls(US, from[US], (call) => call.region === EU).map((c) => `${c.caller} ${c.operation}`)
    // Not in its replica, not in the primary's: generated, and put where pairs are decided.
    expect(remote()).toEqual(['login GetItem', 'login PutItem'])
    expect(allowed(US, 'login', 'dynamodb:PutItem', tableArn(EU))).toBe(1)
    expect(
      allowed(US, 'login', 'kms:GenerateDataKeyPairWithoutPlaintext', wrappingKeyArn(US)),
    ).toBe(1)
    // The primary signs with that pair (unwrapped under its own copy), never generates one.
    const fromEu = await loginAt(EU)
    // Replication still held: the other region's token and jwks functions read the primary's.
    const refreshed = await sim.front(US).refresh(fromUs.refresh_token)
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200)
    const jwks = await Promise.all(
      [EU, US].map(
        async (region) =>
          (await sim.front(region).call('GET', '/.well-known/jwks.json')).body as JSONWebKeySet,
      ),
    )
    expect(jwks[0]?.keys).toHaveLength(1)
    expect(jwks[1]).toEqual(jwks[0])
    const tokens = [fromUs.access_token, fromEu.access_token, refreshed.body.access_token]
    const kids = tokens.map((token) => decodeProtectedHeader(token).kid)
    expect(new Set(kids).size).toBe(1)
    expect(kids[0]).toBe(jwks[0]?.keys[0]?.kid)
    for (const keys of jwks) {
      for (const token of tokens) {
        const { payload } = await jwtVerify(token, createLocalJWKSet(keys), {
          issuer: ISSUER,
          currentDate: new Date(sim.now()),
        })
        expect(payload.iss).toBe(ISSUER)
      }
    }
    // The other region's token and jwks functions each read the pair there once, cold.
    expect(remote()).toEqual(['login GetItem', 'login PutItem', 'token GetItem', 'jwks GetItem'])
    expect(calls(EU, from[EU], (call) => call.region !== undefined)).toEqual([])
    // One pair generated in all: by the US login, under the US copy; none in the primary.
    const generated = (region: Region) =>
      calls(region, from[region], (c) => c.operation === 'GenerateDataKeyPairWithoutPlaintext')
    expect(generated(US).map((call) => call.caller)).toEqual(['login'])
    expect(generated(EU)).toEqual([])
    // Nothing of the US functions wrote a pair in their own replica: it arrives by replication.
    expect(await pairIn(US)).toBeUndefined()
    sim.replicator.release()
    await sim.replicator.drain()
    expect(await pairIn(US)).toEqual(created)
  })

  it('makes no KMS call per login or refresh in either region once warm, each cold start having unwrapped under its own region’s copy', async () => {
    for (const region of [EU, US])
      await sim.front(region).refresh((await loginAt(region)).refresh_token)
    const from = { [EU]: sim.cloud[EU].meter.length, [US]: sim.cloud[US].meter.length }
    for (const region of [EU, US]) {
      for (let i = 0; i < 3; i++) {
        const reply = await sim.front(region).refresh((await loginAt(region)).refresh_token)
        expect(reply.status).toBe(200)
      }
    }
    for (const region of [EU, US]) {
      expect(calls(region, from[region], (call) => call.service === 'kms')).toEqual([])
      const other = region === EU ? US : EU
      for (const fn of ['login', 'token']) {
        const { inits } = sim.deployment[region].functions.get(fn)?.lambda ?? { inits: [] }
        expect(inits, `${region} ${fn}`).toHaveLength(1)
        expect(allowed(region, fn, 'kms:Decrypt', wrappingKeyArn(region)), `${region} ${fn}`).toBe(
          1,
        )
        expect(allowed(region, fn, 'kms:Decrypt', wrappingKeyArn(other))).toBe(0)
      }
    }
  })

  it('has no function of either region make a call its policy denies', () => {
    expect(sim.denials()).toEqual([])
  })

  it('lets the other region’s functions reach only the pairs’ items in the primary’s replica: another item is refused and recorded, on the primary’s table ARN', async () => {
    // The US login function's credentials, as its sandbox has them, in a client of eu-west-1.
    const login = sim.deployment[US].functions.get('login')
    if (!login) throw new Error('no login function')
    const primary = new DynamoDBClient({
      region: EU,
      endpoint: sim.cloud[US].endpoint,
      maxAttempts: 1,
      credentials: { accessKeyId: login.caller.accessKeyId, secretAccessKey: 'x' },
    })
    const get = (Key: Record<string, AttributeValue>) =>
      primary.send(new GetItemCommand({ TableName: sim.deployment[EU].tableName, Key }))
    try {
      expect((await get(PAIR_KEY)).Item).toEqual(await pairIn(EU))
      const user = { pk: { S: `USERNAME#${username}` }, sk: { S: 'USERNAME' } }
      await expect(get(user)).rejects.toMatchObject({ name: 'AccessDeniedException' })
      // What the harness does not model signed for another region is its error (a 500 naming
      // it), neither served nor authorized anywhere.
      const unmodelled = await primary
        .send(new DescribeTableCommand({ TableName: sim.deployment[EU].tableName }))
        .then(
          () => undefined,
          (error: { $metadata?: { httpStatusCode?: number } }) => error.$metadata?.httpStatusCode,
        )
      expect(unmodelled).toBe(500)
      expect(
        [...login.caller.calls.keys()].filter((call) => call.includes('DescribeTable')),
      ).toEqual([])
    } finally {
      primary.destroy()
    }
    expect(sim.denials()).toEqual([`${US} login dynamodb:GetItem ${tableArn(EU)}`])
  })
})

const tableArn = (region: Region) =>
  `arn:aws:dynamodb:${region}:${ACCOUNT}:table/${sim.deployment[region].tableName}`
