/**
 * DPoP proofs' single use at the token endpoint on DynamoDB Local: the port's
 * contract (test/support/dpop-replay-contract.ts) against DynamoDpopReplay,
 * then what only the adapter can show: the item it writes, and its faults.
 */
import { randomUUID } from 'node:crypto'
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { DynamoDpopReplay } from '../../functions/adapters/dynamodb/dpop-replay.js'
import { dpopProofItem } from '../../functions/adapters/dynamodb/items.js'
import { jwkThumbprint, useProofOnce } from '../../functions/core/dpop.js'
import { InvalidDpopProof, TemporarilyUnavailable } from '../../functions/core/errors.js'
import { FakeClock } from '../support/clock.js'
import { proofKey } from '../support/dpop.js'
import { dpopReplayContract } from '../support/dpop-replay-contract.js'
import { createTestTable } from '../support/dynamo.js'
import { DynamoFaults } from '../support/faults.js'

dpopReplayContract('DynamoDpopReplay on DynamoDB Local', async () => {
  const { client, tableName } = await createTestTable()
  return new DynamoDpopReplay(client, tableName)
})

describe('DynamoDpopReplay', () => {
  const clock = new FakeClock(Date.UTC(2026, 10, 22, 12, 0, 0, 250))
  const faults = new DynamoFaults()
  let client: DynamoDBClient
  let doc: DynamoDBDocumentClient
  let tableName: string
  let store: DynamoDpopReplay
  const aProof = () => ({
    jkt: jwkThumbprint(proofKey('ES256').jwk as never),
    jti: randomUUID(),
    acceptedUntil: clock.now() + 90_000,
    iat: Math.floor(clock.now() / 1000),
    alg: 'ES256' as const,
  })

  beforeAll(async () => {
    ;({ client, doc, tableName } = await createTestTable())
    faults.install(client)
    store = new DynamoDpopReplay(client, tableName)
  })
  beforeEach(() => faults.clear())
  afterAll(() => faults.close())

  it('writes one item under the key thumbprint, the jti hashed, with a TTL at the end of the proof', async () => {
    const proof = aProof()
    expect(await store.recordProof(proof, clock.now())).toBe(true)
    const key = dpopProofItem.key(proof)
    expect(key.pk).toBe(`DPOP#${proof.jkt}`)
    expect(key.sk).toMatch(/^JTI#[A-Za-z0-9_-]{43}$/)
    const { Item } = await doc.send(new GetCommand({ TableName: tableName, Key: key }))
    expect(Item).toEqual({
      ...key,
      attempt: expect.any(String),
      expires_at: Math.ceil(proof.acceptedUntil / 1000),
    })
  })

  it('is what useProofOnce refuses a replay with: invalid_dpop_proof', async () => {
    const proof = aProof()
    await useProofOnce(store, proof, clock)
    const replay = await useProofOnce(store, proof, clock).catch((error: unknown) => error)
    expect(replay).toBeInstanceOf(InvalidDpopProof)
    expect((replay as InvalidDpopProof).detail).toBe('proof already used')
  })

  it('counts a write whose answer was lost after it committed as the first use, not a replay', async () => {
    const proof = aProof()
    faults.arm({
      command: 'PutItem',
      fault: 'InternalServerError',
      attempts: 'first',
      when: 'after',
    })
    expect(await store.recordProof(proof, clock.now())).toBe(true)
    expect(faults.fired).toHaveLength(1)
    expect(await store.recordProof(proof, clock.now())).toBe(false)
  })

  it('answers 503 when DynamoDB keeps failing, and records nothing', async () => {
    const proof = aProof()
    faults.arm({ command: 'PutItem', fault: 'InternalServerError' })
    const error = await store.recordProof(proof, clock.now()).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TemporarilyUnavailable)
    faults.clear()
    expect(await store.recordProof(proof, clock.now())).toBe(true)
  })
})
