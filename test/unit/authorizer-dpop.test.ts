import { Logger } from '@aws-lambda-powertools/logger'
import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda'
import { beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createAuthorizer } from '../../functions/authorizer/authorizer.js'
import {
  authorizeRequest,
  credentialOf,
  MemoryDpopReplay,
  ProofOfPossession,
  type ProtectedRequest,
  type RequestChecks,
} from '../../functions/authorizer/dpop.js'
import { KeySet } from '../../functions/authorizer/keys.js'
import { TokenVerifier } from '../../functions/authorizer/verify.js'
import { loadAuthorizerConfig } from '../../functions/config.js'
import { accessTokenHash, jwkThumbprint } from '../../functions/core/dpop.js'
import { InvalidToken } from '../../functions/core/errors.js'
import type { Signer } from '../../functions/core/ports.js'
import { FakeClock } from '../support/clock.js'
import { otherS, type ProofKey, proofClaims, proofKey, signProof } from '../support/dpop.js'
import { dpopReplayContract } from '../support/dpop-replay-contract.js'
import { NATIVE, testSigner } from '../support/harness.js'
import { mint, standardClaims } from '../support/tokens.js'

const ISSUER = 'https://auth.example.test'
const AUDIENCE = NATIVE.audience
const ME = 'https://api.example.test/me'

let signer: Signer
let clock: FakeClock
let checks: RequestChecks
let key: ProofKey
let jkt: string
/** A token bound to `key`. */
let bound: string
let unbound: string

/** A fresh proof by `by` for `GET uri` that goes with `token`. */
const proofFor = (token: string, overrides: Record<string, unknown> = {}, by = key) =>
  signProof(
    by,
    proofClaims(clock.now(), ME, { htm: 'GET', ath: accessTokenHash(token), ...overrides }),
  )

const get = (dpop: string | undefined, uri = ME): ProtectedRequest => ({ dpop, method: 'GET', uri })

/** Why the request was refused, from the InvalidToken thrown (the logs' reason). */
async function refusal(authorization: string, request: ProtectedRequest): Promise<string> {
  const error = await authorizeRequest(checks, authorization, request).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(InvalidToken)
  return (error as InvalidToken).detail as string
}

function build(): RequestChecks {
  const keys = new KeySet({ fetch: () => signer.publicKeys(), clock })
  return {
    verifier: new TokenVerifier(keys, clock, {
      issuer: ISSUER,
      audiences: [AUDIENCE],
      skewSeconds: 30,
      maxTokenBytes: 8192,
      maxLifetimeSeconds: 3660,
      answerCacheSeconds: 0,
    }),
    possession: new ProofOfPossession({ clock }),
  }
}

beforeAll(async () => {
  signer = await testSigner()
  key = proofKey('ES256')
  jkt = jwkThumbprint(key.jwk as never)
})

beforeEach(async () => {
  clock = new FakeClock()
  checks = build()
  const claims = standardClaims(ISSUER, AUDIENCE, clock.now())
  bound = (await mint(signer, { ...claims, cnf: { jkt } })).token
  unbound = (await mint(signer, claims)).token
})

describe('the authorizer with DPoP (RFC 9449 §7)', () => {
  it('accepts a bound token under the DPoP scheme with a proof of its key for this request', async () => {
    const claims = await authorizeRequest(checks, `DPoP ${bound}`, get(proofFor(bound)))
    expect(claims.jkt).toBe(jkt)
    expect(claims.sub).toBe(standardClaims(ISSUER, AUDIENCE, clock.now()).sub)
  })

  it('accepts a proof with any of the proof algorithms', async () => {
    for (const alg of ['RS256', 'EdDSA', 'Ed25519'] as const) {
      const other = proofKey(alg)
      const claims = standardClaims(ISSUER, AUDIENCE, clock.now())
      const token = (
        await mint(signer, { ...claims, cnf: { jkt: jwkThumbprint(other.jwk as never) } })
      ).token
      await expect(
        authorizeRequest(checks, `dpop ${token}`, get(proofFor(token, {}, other))),
      ).resolves.toMatchObject({ jkt: jwkThumbprint(other.jwk as never) })
    }
  })

  it('refuses a bound token downgraded to Bearer, with or without a proof (§7.2)', async () => {
    expect(await refusal(`Bearer ${bound}`, get(proofFor(bound)))).toBe(
      'DPoP-bound token sent as Bearer',
    )
    expect(await refusal(`Bearer ${bound}`, get(undefined))).toBe('DPoP-bound token sent as Bearer')
  })

  it('refuses a bound token without a proof', async () => {
    expect(await refusal(`DPoP ${bound}`, get(undefined))).toBe('DPoP: no proof')
  })

  it('refuses a proof from another key than the bound one', async () => {
    const thief = proofKey('ES256')
    expect(await refusal(`DPoP ${bound}`, get(proofFor(bound, {}, thief)))).toBe(
      'DPoP: proof key is not the bound key',
    )
  })

  it('refuses a proof made for another access token (ath), or without ath', async () => {
    expect(await refusal(`DPoP ${bound}`, get(proofFor(unbound)))).toBe(
      'DPoP: ath does not match the access token',
    )
    expect(await refusal(`DPoP ${bound}`, get(proofFor(bound, { ath: undefined })))).toBe(
      'DPoP: ath does not match the access token',
    )
  })

  it('refuses a proof made for another method or another URI', async () => {
    expect(await refusal(`DPoP ${bound}`, get(proofFor(bound, { htm: 'POST' })))).toBe(
      'DPoP: htm does not match the request',
    )
    const sessions = 'https://api.example.test/sessions'
    expect(await refusal(`DPoP ${bound}`, get(proofFor(bound), sessions))).toBe(
      'DPoP: htu does not match the request',
    )
  })

  it('refuses a replayed proof in the same container, however it is re-encoded', async () => {
    const proof = proofFor(bound)
    await authorizeRequest(checks, `DPoP ${bound}`, get(proof))
    expect(await refusal(`DPoP ${bound}`, get(proof))).toBe('DPoP: proof already used')
    // The same signature with S and n - S swapped verifies too: it is still the same proof.
    expect(await refusal(`DPoP ${bound}`, get(otherS(proof)))).toBe('DPoP: proof already used')
    // A new proof for the same request is fine.
    await expect(
      authorizeRequest(checks, `DPoP ${bound}`, get(proofFor(bound))),
    ).resolves.toBeTruthy()
  })

  it('refuses a proof whose iat is outside the window, and one the core checks refuse', async () => {
    const seconds = Math.floor(clock.now() / 1000)
    expect(await refusal(`DPoP ${bound}`, get(proofFor(bound, { iat: seconds - 91 })))).toBe(
      'DPoP: iat is too old',
    )
    const typ = signProof(
      key,
      proofClaims(clock.now(), ME, { htm: 'GET', ath: accessTokenHash(bound) }),
      {
        header: { typ: 'JWT' },
      },
    )
    expect(await refusal(`DPoP ${bound}`, get(typ))).toBe('DPoP: typ is not dpop+jwt')
    const privateJwk = { ...key.jwk, d: key.privateKey.export({ format: 'jwk' }).d }
    const leaky = signProof(
      key,
      proofClaims(clock.now(), ME, { htm: 'GET', ath: accessTokenHash(bound) }),
      {
        header: { jwk: privateJwk },
      },
    )
    expect(await refusal(`DPoP ${bound}`, get(leaky))).toBe('DPoP: jwk carries a private key')
  })

  it('refuses an unbound token under the DPoP scheme, and takes it as Bearer (a DPoP header is ignored)', async () => {
    expect(await refusal(`DPoP ${unbound}`, get(proofFor(unbound)))).toBe(
      'DPoP scheme with an unbound token',
    )
    await expect(
      authorizeRequest(checks, `Bearer ${unbound}`, get(proofFor(unbound))),
    ).resolves.toBeTruthy()
  })

  it('refuses a token bound by a confirmation method it cannot check (cnf without jkt)', async () => {
    const claims = standardClaims(ISSUER, AUDIENCE, clock.now())
    for (const cnf of [
      { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' },
      { jkt: 42 },
      null,
    ]) {
      const { token } = await mint(signer, { ...claims, cnf })
      expect(await refusal(`Bearer ${token}`, get(undefined))).toBe('cnf without a jkt')
    }
  })

  it('parses Bearer and DPoP credentials in any case, and nothing else', () => {
    expect(credentialOf('DPoP abc')).toEqual({ scheme: 'DPoP', token: 'abc' })
    expect(credentialOf('dpop  abc ')).toEqual({ scheme: 'DPoP', token: 'abc' })
    expect(credentialOf('BEARER abc')).toEqual({ scheme: 'Bearer', token: 'abc' })
    for (const header of ['Basic abc', 'DPoP', 'DPoP ', 'DPoP a b', 'abc']) {
      expect(credentialOf(header)).toBeUndefined()
    }
  })
})

describe('the authorizer as deployed today (Bearer only)', () => {
  it('refuses a DPoP-bound token sent as Bearer, and lets the same unbound token through', async () => {
    const authorizer = createAuthorizer({
      config: loadAuthorizerConfig({ ISSUER, AUTHORIZER_AUDIENCES: AUDIENCE }),
      fetchKeys: () => signer.publicKeys(),
      clock,
      logger: new Logger({ serviceName: 'token-service' }),
    })
    const event = (authorization: string) =>
      ({
        version: '2.0',
        type: 'REQUEST',
        identitySource: [authorization],
        headers: { authorization },
      }) as unknown as APIGatewayRequestAuthorizerEventV2
    expect(await authorizer.http(event(`Bearer ${bound}`))).toEqual({ isAuthorized: false })
    const error = await authorizer.authorize(`Bearer ${bound}`).catch((e: unknown) => e)
    expect((error as InvalidToken).detail).toBe('DPoP-bound token sent as Bearer')
    expect((await authorizer.http(event(`Bearer ${unbound}`))).isAuthorized).toBe(true)
  })
})

describe('the per-container replay memory', () => {
  it('stays bounded under a flood of live proofs, forgetting the oldest first', () => {
    const memory = new MemoryDpopReplay(100)
    const now = Date.UTC(2026, 0, 1)
    const proof = (i: number) => ({ jkt, jti: `jti-${i}`, acceptedUntil: now + 90_000 })
    for (let i = 0; i < 1000; i++) expect(memory.record(proof(i), now)).toBe(true)
    // The newest are still remembered; the oldest were dropped to make room.
    expect(memory.record(proof(999), now)).toBe(false)
    expect(memory.record(proof(0), now)).toBe(true)
  })

  it('drops ended proofs before live ones when full', () => {
    const memory = new MemoryDpopReplay(10)
    const now = Date.UTC(2026, 0, 1)
    memory.record({ jkt, jti: 'live', acceptedUntil: now + 90_000 }, now)
    for (let i = 0; i < 9; i++)
      memory.record({ jkt, jti: `short-${i}`, acceptedUntil: now + 1000 }, now)
    for (let i = 0; i < 9; i++)
      memory.record({ jkt, jti: `later-${i}`, acceptedUntil: now + 90_000 }, now + 2000)
    expect(memory.record({ jkt, jti: 'live', acceptedUntil: now + 90_000 }, now + 2000)).toBe(false)
  })
})

dpopReplayContract(
  'MemoryDpopReplay (the authorizer, per container)',
  async () => new MemoryDpopReplay(),
)
