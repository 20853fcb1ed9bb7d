/**
 * Envelope signing keys in two regions (docs/multi-region.md "Envelope keys"), on DynamoDB
 * Local: two tables replicated both ways after a delay, last writer wins (as MREC), a KMS
 * stand-in per region with one multi-Region wrapping key (test/support/fake-kms.ts). Each
 * region's pair store reads its own replica first; outside the primary, a pair not there
 * yet is read from, and created in, the primary's replica. Tokens are signed with real keys
 * and verified with jose against the JWKS each region serves.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DynamoSigningKeys } from '../../functions/adapters/dynamodb/signing-keys.js'
import {
  type EnvelopeKeyStore,
  EnvelopeSigner,
  type StoredKeyPair,
} from '../../functions/adapters/envelope-signer.js'
import { lambdaSigner } from '../../functions/adapters/signing.js'
import { TemporarilyUnavailable } from '../../functions/core/errors.js'
import type { PublicJwk } from '../../functions/core/ports.js'
import { freePort } from '../../local/dynamodb-local.js'
import { createTestTable } from '../support/dynamo.js'
import { FakeKms, multiRegionKey } from '../support/fake-kms.js'
import { NATIVE } from '../support/harness.js'
import {
  type Region,
  Replicator,
  startTwoRegions,
  type Table,
  type TwoRegions,
} from '../support/regions.js'

const EU: Region = 'eu-west-1'
const US: Region = 'us-east-1'
const OWNER = 'TokenService/TokenService'

/** Each region's store of pairs, as the Lambda functions build it (the primary is EU). */
const storeIn = (region: Region, tables: Readonly<Record<Region, Table>>) =>
  new DynamoSigningKeys(
    tables[region].client,
    tables[region].tableName,
    Date.now,
    region === EU ? undefined : { client: tables[EU].client, tableName: tables[EU].tableName },
  )

/** One of each region's. */
const both = <T>(of: (region: Region) => T) => ({ [EU]: of(EU), [US]: of(US) }) as Record<Region, T>

/** A JWS signed by `signer` (an access token's shape is not the point here). */
async function jws(signer: EnvelopeSigner, claims: Record<string, unknown>): Promise<string> {
  const header = { alg: 'RS256', typ: 'JWT', kid: await signer.keyId() }
  const input = [header, claims]
    .map((part) => Buffer.from(JSON.stringify(part)).toString('base64url'))
    .join('.')
  const signature = await signer.sign(Buffer.from(input))
  return `${input}.${Buffer.from(signature).toString('base64url')}`
}

const keySet = (keys: readonly PublicJwk[]) =>
  createLocalJWKSet({ keys: keys as unknown as JSONWebKeySet['keys'] })

describe('two regions serving one issuer with envelope keys', () => {
  const wrapping = multiRegionKey(EU, [US])
  const kms = { [EU]: new FakeKms({ region: EU }), [US]: new FakeKms({ region: US }) }
  let sim: TwoRegions

  beforeAll(async () => {
    sim = await startTwoRegions({
      clients: [NATIVE],
      replicationDelayMs: 50,
      // As the deployed functions build it (functions/adapters/signing.ts), per region.
      signer: (region, tables) =>
        lambdaSigner({
          kms: kms[region].client,
          signing: { activeKeyId: 'envelope:k1', retiringKeyIds: ['envelope:k2'], alg: 'RS256' },
          envelope: {
            multiRegionKeyId: wrapping.arn(region),
            owner: OWNER,
            store: storeIn(region, tables),
          },
        }),
    })
  })

  afterAll(async () => {
    await sim?.close()
  })

  it('signs in either region, with the first use in both at once, tokens that verify against the JWKS served in either region', async () => {
    const user = await sim.region[EU].addUser()
    await sim.replicator.drain()
    // The first use of k1 and k2 in both regions at once, nothing replicating meanwhile.
    sim.replicator.hold()
    const [eu, us] = await Promise.all([sim.front(EU).login(user), sim.front(US).login(user)])
    expect([eu.status, us.status], `${eu.text} ${us.text}`).toEqual([200, 200])
    const jwksNow = await Promise.all(
      [EU, US].map(async (region) => (await sim.front(region).get('/.well-known/jwks.json')).body),
    )
    await sim.replicator.drain()
    sim.replicator.release()
    await sim.replicator.drain()
    const served = await Promise.all(
      [EU, US].map(async (region) => {
        const reply = await sim.front(region).get('/.well-known/jwks.json')
        expect(reply.status).toBe(200)
        return reply.body as { keys: PublicJwk[] }
      }),
    )
    // One key set, the same in both regions, before and after replication: one pair per id.
    expect(served[1]).toEqual(served[0])
    expect(jwksNow).toEqual(served)
    expect(served[0]?.keys).toHaveLength(2)
    const tokens = [eu.body.access_token, us.body.access_token] as string[]
    expect(decodeProtectedHeader(tokens[0] as string).kid).toBe(
      decodeProtectedHeader(tokens[1] as string).kid,
    )
    for (const token of tokens) {
      for (const set of served) {
        const { payload } = await jwtVerify(token, keySet(set.keys), {
          issuer: sim.region[EU].issuer,
          algorithms: ['RS256'],
          currentDate: new Date(sim.clock.now()),
        })
        expect(payload.sub).toBe(user.sub)
      }
    }
    // Each region unwrapped with its own copy of the multi-Region key.
    for (const region of [EU, US]) {
      expect(kms[region].decryptCalls().length).toBeGreaterThan(0)
      for (const call of kms[region].decryptCalls()) {
        expect(call.KeyId).toBe(wrapping.arn(region))
      }
    }
  })

  it('makes no KMS call per login or refresh in either region once a container has unwrapped its key (one Decrypt per container and region)', async () => {
    const calls = () =>
      [EU, US].map((region) => ({
        decrypt: kms[region].decryptCalls().length,
        generate: kms[region].generateKeyPairCalls().length,
        sign: kms[region].signCalls().length,
      }))
    const user = await sim.region[EU].addUser()
    await sim.replicator.drain()
    // Warm: each region's harness is one container of login, token and jwks.
    for (const region of [EU, US]) expect((await sim.front(region).login(user)).status).toBe(200)
    const before = calls()
    expect(before.map((region) => region.decrypt)).toEqual([1, 1])
    for (const region of [EU, US]) {
      for (let round = 0; round < 3; round++) {
        const login = await sim.front(region).login(user)
        expect(login.status, login.text).toBe(200)
        const refreshed = await sim.front(region).refresh(login.body.refresh_token as string)
        expect(refreshed.status, refreshed.text).toBe(200)
      }
    }
    expect(calls()).toEqual(before)
  })

  it('refreshes a session from the other region (decided in its home) into a token that verifies with either region’s JWKS', async () => {
    const user = await sim.region[US].addUser()
    await sim.replicator.drain()
    const login = await sim.front(US).login(user)
    await sim.replicator.drain()
    const refreshed = await sim.front(EU).refresh(login.body.refresh_token as string)
    expect(refreshed.status, refreshed.text).toBe(200)
    for (const region of [EU, US]) {
      const { body } = await sim.front(region).get('/.well-known/jwks.json')
      const set = keySet((body as { keys: PublicJwk[] }).keys)
      await expect(
        jwtVerify(refreshed.body.access_token as string, set, {
          algorithms: ['RS256'],
          currentDate: new Date(sim.clock.now()),
        }),
      ).resolves.toBeTruthy()
    }
  })
})

describe('the first use of a key id in two regions at once', () => {
  const wrapping = multiRegionKey(EU, [US])
  let tables: Record<Region, Table>
  let replicator: Replicator

  beforeAll(async () => {
    const [eu, us] = await Promise.all([createTestTable(), createTestTable()])
    tables = { [EU]: { region: EU, ...eu }, [US]: { region: US, ...us } }
    replicator = new Replicator([tables[EU], tables[US]], 20)
    replicator.start()
  })

  afterAll(async () => {
    await replicator?.stop()
  })

  /**
   * Holds each region's write until both regions have generated their pair: the worst
   * interleaving (a region that found a pair would never write, and the gate never open).
   */
  function raced(stores: Record<Region, EnvelopeKeyStore>): Record<Region, EnvelopeKeyStore> {
    let arrive: () => void = () => undefined
    let arrived = 0
    const both = new Promise<void>((resolve) => {
      arrive = () => {
        arrived++
        if (arrived === 2) resolve()
      }
    })
    const gate = (store: EnvelopeKeyStore): EnvelopeKeyStore => ({
      findKeyPair: (id) => store.findKeyPair(id),
      async createKeyPair(id: string, pair: StoredKeyPair) {
        arrive()
        await both
        return store.createKeyPair(id, pair)
      },
    })
    return { [EU]: gate(stores[EU]), [US]: gate(stores[US]) } as Record<Region, EnvelopeKeyStore>
  }

  const signers = (stores: Record<Region, EnvelopeKeyStore>, id: string) =>
    Object.fromEntries(
      [EU, US].map((region) => [
        region,
        new EnvelopeSigner({
          client: new FakeKms({ region }).client,
          store: stores[region],
          multiRegionKeyId: wrapping.arn(region),
          owner: OWNER,
          activeKeyId: id,
        }),
      ]),
    ) as Record<Region, EnvelopeSigner>

  /** Fresh containers of each region, once replication has settled: what every JWKS serves. */
  async function publishedAfterReplication(id: string) {
    await replicator.drain()
    const fresh = signers(
      both((region) => storeIn(region, tables)),
      id,
    )
    return Promise.all([EU, US].map((region) => fresh[region].publicKeys()))
  }

  it('keeps one pair when both regions generate one: the primary’s replica decides, and both regions sign with the winner', async () => {
    const id = 'race1'
    const racing = signers(raced(both((region) => storeIn(region, tables))), id)
    replicator.hold()
    const [fromEu, fromUs] = await Promise.all([
      jws(racing[EU], { sub: 'eu' }),
      jws(racing[US], { sub: 'us' }),
    ])
    // Every write seen before any is applied: last writer wins decides between them.
    await replicator.drain()
    replicator.release()
    const [eu, us] = await publishedAfterReplication(id)
    expect(us).toEqual(eu)
    expect(eu).toHaveLength(1)
    for (const token of [fromEu, fromUs]) {
      for (const keys of [eu, us]) {
        await expect(jwtVerify(token, keySet(keys as PublicJwk[]))).resolves.toBeTruthy()
      }
    }
  })

  it('would fork if each region created its pair in its own replica: last writer wins keeps one, and the other region’s tokens stop verifying (why one replica decides)', async () => {
    const id = 'race2'
    const local = (region: Region) =>
      new DynamoSigningKeys(tables[region].client, tables[region].tableName)
    const racing = signers(raced(both(local)), id)
    replicator.hold()
    const tokens = await Promise.all([
      jws(racing[EU], { sub: 'eu' }),
      jws(racing[US], { sub: 'us' }),
    ])
    // Two pairs, each region's condition passed against its own replica.
    expect(await racing[EU].keyId()).not.toBe(await racing[US].keyId())
    // Every write seen before any is applied: last writer wins decides between them.
    await replicator.drain()
    replicator.release()
    const [eu, us] = await publishedAfterReplication(id)
    expect(us).toEqual(eu)
    const verified = await Promise.all(
      tokens.map((token) =>
        jwtVerify(token, keySet(eu as PublicJwk[])).then(
          () => true,
          () => false,
        ),
      ),
    )
    expect(verified.sort()).toEqual([false, true])
  })

  it('signs with replicated pairs while the primary cannot be reached, and creates none without it (503, nothing written)', async () => {
    const id = 'cut1'
    await signers(
      both((region) => storeIn(region, tables)),
      id,
    )[EU].prepare()
    await replicator.drain()
    const unreachable = new DynamoDBClient({
      endpoint: `http://127.0.0.1:${await freePort()}`,
      region: 'local',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    })
    const cut = new DynamoSigningKeys(tables[US].client, tables[US].tableName, Date.now, {
      client: unreachable,
      tableName: tables[EU].tableName,
    })
    const known = signers(
      both(() => cut),
      id,
    )[US]
    const token = await jws(known, { sub: 'us' })
    const [published] = await publishedAfterReplication(id)
    await expect(jwtVerify(token, keySet(published as PublicJwk[]))).resolves.toBeTruthy()
    const fresh = signers(
      both(() => cut),
      'cut2',
    )[US]
    await expect(fresh.keyId()).rejects.toBeInstanceOf(TemporarilyUnavailable)
    expect(
      await new DynamoSigningKeys(tables[US].client, tables[US].tableName).findKeyPair('cut2'),
    ).toBeUndefined()
    unreachable.destroy()
  })
})
