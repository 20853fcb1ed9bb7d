import { Logger } from '@aws-lambda-powertools/logger'
import type {
  APIGatewayRequestAuthorizerEvent,
  APIGatewayRequestAuthorizerEventV2,
  APIGatewayTokenAuthorizerEvent,
} from 'aws-lambda'
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
import { refusalOf } from '../support/refusals.js'
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
  return refusalOf(error as InvalidToken)
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
    expect(await refusal(`Bearer ${bound}`, get(proofFor(bound)))).toBe('bound_token_as_bearer')
    expect(await refusal(`Bearer ${bound}`, get(undefined))).toBe('bound_token_as_bearer')
  })

  it('refuses a bound token without a proof', async () => {
    expect(await refusal(`DPoP ${bound}`, get(undefined))).toBe('dpop_proof_missing')
  })

  it('refuses a proof from another key than the bound one', async () => {
    const thief = proofKey('ES256')
    expect(await refusal(`DPoP ${bound}`, get(proofFor(bound, {}, thief)))).toBe(
      'dpop_proof_other_key',
    )
  })

  it('refuses a proof made for another access token (ath), or without ath', async () => {
    expect(await refusal(`DPoP ${bound}`, get(proofFor(unbound)))).toBe(
      'dpop_proof_invalid ath does not match the access token',
    )
    expect(await refusal(`DPoP ${bound}`, get(proofFor(bound, { ath: undefined })))).toBe(
      'dpop_proof_invalid ath does not match the access token',
    )
  })

  it('refuses a proof made for another method or another URI', async () => {
    expect(await refusal(`DPoP ${bound}`, get(proofFor(bound, { htm: 'POST' })))).toBe(
      'dpop_proof_invalid htm does not match the request',
    )
    const sessions = 'https://api.example.test/sessions'
    expect(await refusal(`DPoP ${bound}`, get(proofFor(bound), sessions))).toBe(
      'dpop_proof_invalid htu does not match the request',
    )
  })

  it('refuses a replayed proof in the same container, however it is re-encoded', async () => {
    const proof = proofFor(bound)
    await authorizeRequest(checks, `DPoP ${bound}`, get(proof))
    expect(await refusal(`DPoP ${bound}`, get(proof))).toBe('dpop_proof_replayed')
    // The same signature with S and n - S swapped verifies too: it is still the same proof.
    expect(await refusal(`DPoP ${bound}`, get(otherS(proof)))).toBe('dpop_proof_replayed')
    // A new proof for the same request is fine.
    await expect(
      authorizeRequest(checks, `DPoP ${bound}`, get(proofFor(bound))),
    ).resolves.toBeTruthy()
  })

  it('refuses a proof whose iat is outside the window, and one the core checks refuse', async () => {
    const seconds = Math.floor(clock.now() / 1000)
    expect(await refusal(`DPoP ${bound}`, get(proofFor(bound, { iat: seconds - 91 })))).toBe(
      'dpop_proof_invalid iat is too old',
    )
    const typ = signProof(
      key,
      proofClaims(clock.now(), ME, { htm: 'GET', ath: accessTokenHash(bound) }),
      {
        header: { typ: 'JWT' },
      },
    )
    expect(await refusal(`DPoP ${bound}`, get(typ))).toBe('dpop_proof_invalid typ is not dpop+jwt')
    const privateJwk = { ...key.jwk, d: key.privateKey.export({ format: 'jwk' }).d }
    const leaky = signProof(
      key,
      proofClaims(clock.now(), ME, { htm: 'GET', ath: accessTokenHash(bound) }),
      {
        header: { jwk: privateJwk },
      },
    )
    expect(await refusal(`DPoP ${bound}`, get(leaky))).toBe(
      'dpop_proof_invalid jwk carries a private key',
    )
  })

  it('refuses an unbound token under the DPoP scheme, and takes it as Bearer (a DPoP header is ignored)', async () => {
    expect(await refusal(`DPoP ${unbound}`, get(proofFor(unbound)))).toBe(
      'dpop_scheme_unbound_token',
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
      expect(await refusal(`Bearer ${token}`, get(undefined))).toBe('cnf_without_jkt')
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

describe('the authorizer entry points with DPoP', () => {
  const HOST = 'api.example.test'
  let authorizer: ReturnType<typeof createAuthorizer>

  beforeEach(() => {
    authorizer = createAuthorizer({
      config: loadAuthorizerConfig({ ISSUER, AUTHORIZER_AUDIENCES: AUDIENCE }),
      fetchKeys: () => signer.publicKeys(),
      clock,
      logger: new Logger({ serviceName: 'token-service', logLevel: 'SILENT' }),
    })
  })

  /** An HTTP API (payload 2.0) authorizer event for `GET https://<host><rawPath>`. */
  const httpEvent = (
    authorization: string,
    headers: Record<string, string> = {},
    { host = HOST, rawPath = '/me' } = {},
  ) =>
    ({
      version: '2.0',
      type: 'REQUEST',
      identitySource: [authorization],
      rawPath,
      headers: { authorization, ...headers },
      requestContext: { domainName: host, http: { method: 'GET', path: rawPath } },
    }) as unknown as APIGatewayRequestAuthorizerEventV2

  it('HTTP API: takes htm, htu (the host and path the client called) and the proof from the event', async () => {
    const allowed = await authorizer.http(httpEvent(`DPoP ${bound}`, { dpop: proofFor(bound) }))
    expect(allowed).toMatchObject({ isAuthorized: true, context: { sub: expect.any(String) } })
    // A proof for the same path on another host, or for another path, is not for this request.
    const otherHost = await authorizer.http(
      httpEvent(`DPoP ${bound}`, { dpop: proofFor(bound) }, { host: 'other.example.test' }),
    )
    const otherPath = await authorizer.http(
      httpEvent(`DPoP ${bound}`, { dpop: proofFor(bound) }, { rawPath: '/sessions' }),
    )
    expect([otherHost.isAuthorized, otherPath.isAuthorized]).toEqual([false, false])
  })

  it('HTTP API behind the edge: takes htu at REQUEST_ORIGIN, the host the client called, not the execute-api host', async () => {
    const behindEdge = createAuthorizer({
      config: loadAuthorizerConfig({
        ISSUER,
        AUTHORIZER_AUDIENCES: AUDIENCE,
        REQUEST_ORIGIN: `https://${HOST}`,
      }),
      fetchKeys: () => signer.publicKeys(),
      clock,
      logger: new Logger({ serviceName: 'token-service', logLevel: 'SILENT' }),
    })
    const atApi = { host: 'abc123.execute-api.eu-west-1.amazonaws.com' }
    const proof = { dpop: proofFor(bound) } // for https://HOST/me
    expect((await behindEdge.http(httpEvent(`DPoP ${bound}`, proof, atApi))).isAuthorized).toBe(
      true,
    )
    // Without REQUEST_ORIGIN the same request names another host than its proof.
    expect((await authorizer.http(httpEvent(`DPoP ${bound}`, proof, atApi))).isAuthorized).toBe(
      false,
    )
  })

  it('HTTP API: keeps a custom domain’s base path or a named stage in htu, as the client sent it', async () => {
    const uri = `https://${HOST}/v1/me`
    const dpop = signProof(
      key,
      proofClaims(clock.now(), uri, { htm: 'GET', ath: accessTokenHash(bound) }),
    )
    const event = httpEvent(`DPoP ${bound}`, { dpop }, { rawPath: '/v1/me' })
    expect((await authorizer.http(event)).isAuthorized).toBe(true)
  })

  it('HTTP API: takes http only from X-Forwarded-Proto (local mode), https otherwise', async () => {
    const uri = `http://${HOST}/me`
    const plain = () =>
      signProof(key, proofClaims(clock.now(), uri, { htm: 'GET', ath: accessTokenHash(bound) }))
    const local = httpEvent(`DPoP ${bound}`, { dpop: plain(), 'x-forwarded-proto': 'http' })
    expect((await authorizer.http(local)).isAuthorized).toBe(true)
    const deployed = httpEvent(`DPoP ${bound}`, { dpop: plain() })
    expect((await authorizer.http(deployed)).isAuthorized).toBe(false)
  })

  it('HTTP API: refuses the same proof twice in one container', async () => {
    const dpop = proofFor(bound)
    expect((await authorizer.http(httpEvent(`DPoP ${bound}`, { dpop }))).isAuthorized).toBe(true)
    expect((await authorizer.http(httpEvent(`DPoP ${bound}`, { dpop }))).isAuthorized).toBe(false)
  })

  it('HTTP API: refuses a bound token sent as Bearer, and lets the same token unbound through', async () => {
    expect(await authorizer.http(httpEvent(`Bearer ${bound}`))).toEqual({ isAuthorized: false })
    expect((await authorizer.http(httpEvent(`Bearer ${unbound}`))).isAuthorized).toBe(true)
  })

  it('REST REQUEST authorizer: checks the proof against the method and the path as sent', async () => {
    const event = (dpop: string, path = '/prod/me') =>
      ({
        type: 'REQUEST',
        methodArn: 'arn:aws:execute-api:eu-west-1:111111111111:api/prod/GET/me',
        httpMethod: 'GET',
        headers: { Authorization: `DPoP ${bound}`, DPoP: dpop },
        requestContext: { domainName: HOST, path },
      }) as unknown as APIGatewayRequestAuthorizerEvent
    const uri = `https://${HOST}/prod/me`
    const proof = () =>
      signProof(key, proofClaims(clock.now(), uri, { htm: 'GET', ath: accessTokenHash(bound) }))
    await expect(authorizer.rest(event(proof()))).resolves.toMatchObject({
      principalId: expect.any(String),
    })
    await expect(authorizer.rest(event(proof(), '/prod/sessions'))).rejects.toThrow('Unauthorized')
  })

  it('REST TOKEN authorizer: refuses a bound token under either scheme, since it never sees a proof', async () => {
    const event = (authorizationToken: string) =>
      ({
        type: 'TOKEN',
        authorizationToken,
        methodArn: 'arn:aws:execute-api:eu-west-1:111111111111:api/prod/GET/me',
      }) as APIGatewayTokenAuthorizerEvent
    await expect(authorizer.rest(event(`DPoP ${bound}`))).rejects.toThrow('Unauthorized')
    await expect(authorizer.rest(event(`Bearer ${bound}`))).rejects.toThrow('Unauthorized')
    await expect(authorizer.rest(event(`Bearer ${unbound}`))).resolves.toMatchObject({
      principalId: expect.any(String),
    })
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
