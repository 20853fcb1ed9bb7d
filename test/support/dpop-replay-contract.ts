/**
 * The contract of the DpopReplayStore port (functions/core/dpop.ts), written
 * against the interface only: it runs against the DynamoDB adapter on
 * DynamoDB Local (test/integration/dpop-replay.test.ts) and against the
 * authorizer's per-container memory (test/unit/authorizer-dpop.test.ts).
 */
import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import type { DpopReplayStore } from '../../functions/core/dpop.js'
import { jwkThumbprint } from '../../functions/core/dpop.js'
import { FakeClock } from './clock.js'
import { proofKey } from './dpop.js'

const clock = new FakeClock()

/** A proof's identity as `DpopVerifier.verify` answers it: a key, a fresh jti, 90 s to live. */
function aProof(overrides: { jkt?: string; jti?: string; acceptedUntil?: number } = {}) {
  return {
    jkt: jwkThumbprint(proofKey('ES256').jwk as never),
    jti: randomUUID(),
    acceptedUntil: clock.now() + 90_000,
    ...overrides,
  }
}

export function dpopReplayContract(name: string, make: () => Promise<DpopReplayStore>): void {
  describe(`DpopReplayStore contract: ${name}`, () => {
    let store: DpopReplayStore
    beforeAll(async () => {
      store = await make()
    })

    it('records a proof once: the same key and jti again is a replay, until the proof ends', async () => {
      const proof = aProof()
      expect(await store.recordProof(proof, clock.now())).toBe(true)
      expect(await store.recordProof(proof, clock.now())).toBe(false)
      expect(await store.recordProof(proof, proof.acceptedUntil)).toBe(false)
    })

    it('keys the jti by the proof key: another key may use the same jti', async () => {
      const proof = aProof()
      expect(await store.recordProof(proof, clock.now())).toBe(true)
      const otherKey = aProof({ jti: proof.jti })
      expect(await store.recordProof(otherKey, clock.now())).toBe(true)
      expect(await store.recordProof(otherKey, clock.now())).toBe(false)
    })

    it('lets a jti be used again once its record has ended, expired item still there or not', async () => {
      const proof = aProof()
      expect(await store.recordProof(proof, clock.now())).toBe(true)
      // Seconds are rounded toward keeping the record: it ends within 2 s of the proof.
      const later = proof.acceptedUntil + 2000
      const again = { ...proof, acceptedUntil: later + 90_000 }
      expect(await store.recordProof(again, later)).toBe(true)
      expect(await store.recordProof(again, later)).toBe(false)
    })

    it('takes any jti a client may choose: long, with spaces, with any character', async () => {
      const jkt = aProof().jkt
      for (const jti of ['j'.repeat(256), 'a b', 'ü#/%00', '#']) {
        expect(await store.recordProof(aProof({ jkt, jti }), clock.now())).toBe(true)
        expect(await store.recordProof(aProof({ jkt, jti }), clock.now())).toBe(false)
      }
    })

    it('lets exactly one of many concurrent uses of one proof through', async () => {
      const proof = aProof()
      const results = await Promise.all(
        Array.from({ length: 12 }, () => store.recordProof(proof, clock.now())),
      )
      expect(results.filter(Boolean)).toHaveLength(1)
    })
  })
}
