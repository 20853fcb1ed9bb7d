import { createPublicKey, verify as nodeVerify } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Logger } from '@aws-lambda-powertools/logger'
import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { KmsSigner } from '../../functions/adapters/kms-signer.js'
import { type Authorizer, createAuthorizer } from '../../functions/authorizer/authorizer.js'
import { jwksFetcher } from '../../functions/authorizer/jwks.js'
import { loadAuthorizerConfig } from '../../functions/config.js'
import { TemporarilyUnavailable } from '../../functions/core/errors.js'
import type { PublicJwk, SigningAlgorithm } from '../../functions/core/ports.js'
import { FakeClock } from '../support/clock.js'
import { FakeKms, KEYS, P256, rsaKey } from '../support/fake-kms.js'
import { NATIVE } from '../support/harness.js'
import { b64, mint, standardClaims } from '../support/tokens.js'

const ISSUER = 'https://auth.example.test'

/**
 * The token service's JWKS on a real port: what the jwks function publishes (KMS
 * `GetPublicKey` of the active and retiring keys, through a fake KMS with real keys).
 */
class JwksServer {
  fetches = 0
  /** The status to answer instead of the keys, while set. */
  failWith: number | undefined
  /** Never answer, while set. */
  hang = false
  keyIds: string[]
  readonly #server: Server
  constructor(
    readonly kms: FakeKms,
    keyIds: string[],
    readonly alg: SigningAlgorithm,
  ) {
    this.keyIds = keyIds
    this.#server = createServer((_req, res) => {
      this.fetches++
      if (this.hang) return
      if (this.failWith) {
        res.writeHead(this.failWith).end()
        return
      }
      this.publish().then(
        (keys) =>
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys })),
        () => res.writeHead(500).end(),
      )
    })
  }
  /** A fresh signer each time: the keys as KMS has them now (an alias may move). */
  publish(): Promise<PublicJwk[]> {
    const [active, ...retiring] = this.keyIds
    return new KmsSigner({
      client: this.kms.client,
      activeKeyId: active as string,
      retiringKeyIds: retiring,
      alg: this.alg,
    }).publicKeys()
  }
  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/.well-known/jwks.json`
  }
  close(): Promise<void> {
    this.#server.closeAllConnections()
    return new Promise((resolve) => this.#server.close(() => resolve()))
  }
}

interface Setup {
  kms: FakeKms
  jwks: JwksServer
  clock: FakeClock
  authorizer: Authorizer
  /** A signer on `keyId` through the same fake KMS, to mint tokens with. */
  signerFor(keyId: string): KmsSigner
}

const servers: JwksServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

async function setup(options: {
  active: string
  retiring?: string[]
  alg?: SigningAlgorithm
  timeoutMs?: number
}): Promise<Setup> {
  const kms = new FakeKms()
  const clock = new FakeClock()
  const alg = options.alg ?? 'RS256'
  const jwks = new JwksServer(kms, [options.active, ...(options.retiring ?? [])], alg)
  servers.push(jwks)
  const uri = await jwks.listen()
  const authorizer = createAuthorizer({
    config: loadAuthorizerConfig({ ISSUER, AUTHORIZER_AUDIENCES: NATIVE.audience, JWKS_URI: uri }),
    fetchKeys: jwksFetcher(uri, { timeoutMs: options.timeoutMs ?? 5000 }),
    clock,
    logger: new Logger({ serviceName: 'token-service' }),
  })
  return {
    kms,
    jwks,
    clock,
    authorizer,
    signerFor: (keyId) => new KmsSigner({ client: kms.client, activeKeyId: keyId, alg }),
  }
}

const event = (token: string) =>
  ({
    version: '2.0',
    type: 'REQUEST',
    identitySource: [`Bearer ${token}`],
    headers: { authorization: `Bearer ${token}` },
  }) as unknown as APIGatewayRequestAuthorizerEventV2

const allowed = async (authorizer: Authorizer, token: string) =>
  (await authorizer.http(event(token))).isAuthorized

describe("the authorizer loads its keys from the issuer's JWKS, never from KMS", () => {
  it('fetches the JWKS (active and retiring keys) once at warm-up and verifies tokens of both', async () => {
    const s = await setup({ active: 'alias/rsa-active', retiring: ['alias/rsa-retiring'] })
    await s.authorizer.warm()
    expect(s.jwks.fetches).toBe(1)
    const claims = standardClaims(ISSUER, NATIVE.audience, s.clock.now())
    const byActive = await mint(s.signerFor('alias/rsa-active'), claims)
    const byRetiring = await mint(s.signerFor('alias/rsa-retiring'), claims)
    expect(await allowed(s.authorizer, byActive.token)).toBe(true)
    expect(await allowed(s.authorizer, byRetiring.token)).toBe(true)
    // Warm: verifying makes no network call.
    expect(s.jwks.fetches).toBe(1)
  })

  it('refreshes the key set for an unknown kid at most once a minute', async () => {
    const s = await setup({ active: 'alias/rsa-active' })
    await s.authorizer.warm()
    const claims = standardClaims(ISSUER, NATIVE.audience, s.clock.now())
    const stranger = await mint(s.signerFor('alias/rsa-retiring'), claims)
    const calls = () => s.jwks.fetches
    expect(calls()).toBe(1)
    expect(await allowed(s.authorizer, stranger.token)).toBe(false)
    expect(calls()).toBe(2)
    for (let i = 0; i < 20; i++) expect(await allowed(s.authorizer, stranger.token)).toBe(false)
    s.clock.advance(59)
    expect(await allowed(s.authorizer, stranger.token)).toBe(false)
    expect(calls()).toBe(2)
    s.clock.advance(1)
    expect(await allowed(s.authorizer, stranger.token)).toBe(false)
    expect(calls()).toBe(3)
  })

  it('finds a key that appeared after cold start (an alias pointed at a new key) on refresh', async () => {
    KEYS['alias/moving'] = rsaKey()
    const s = await setup({ active: 'alias/moving' })
    await s.authorizer.warm()
    KEYS['alias/moving'] = rsaKey()
    const claims = standardClaims(ISSUER, NATIVE.audience, s.clock.now())
    const byNewKey = await mint(s.signerFor('alias/moving'), claims)
    expect(await allowed(s.authorizer, byNewKey.token)).toBe(true)
  })

  it('stops trusting a key removed from the JWKS once the set is older than its max age (5 minutes)', async () => {
    const s = await setup({ active: 'alias/rsa-active', retiring: ['alias/rsa-retiring'] })
    await s.authorizer.warm()
    const claims = () => standardClaims(ISSUER, NATIVE.audience, s.clock.now())
    const byRetiring = await mint(s.signerFor('alias/rsa-retiring'), claims())
    expect(await allowed(s.authorizer, byRetiring.token)).toBe(true)
    s.jwks.keyIds = ['alias/rsa-active'] // the retiring key is removed (say, compromised)
    s.clock.advance(299)
    expect(await allowed(s.authorizer, byRetiring.token)).toBe(true)
    expect(s.jwks.fetches).toBe(1)
    s.clock.advance(1)
    const again = await mint(s.signerFor('alias/rsa-retiring'), claims())
    expect(await allowed(s.authorizer, again.token)).toBe(false)
    // The aged set is fetched again; then the unknown kid's own refresh (once a minute).
    expect(s.jwks.fetches).toBe(3)
    const byActive = await mint(s.signerFor('alias/rsa-active'), claims())
    expect(await allowed(s.authorizer, byActive.token)).toBe(true)
  })

  it('keeps the keys in hand when the JWKS fails after they aged, and tries again a minute later', async () => {
    const s = await setup({ active: 'alias/rsa-active' })
    await s.authorizer.warm()
    s.jwks.failWith = 503
    s.clock.advance(300)
    const { token } = await mint(
      s.signerFor('alias/rsa-active'),
      standardClaims(ISSUER, NATIVE.audience, s.clock.now()),
    )
    for (let i = 0; i < 5; i++) expect(await allowed(s.authorizer, token)).toBe(true)
    expect(s.jwks.fetches).toBe(2)
    s.clock.advance(60)
    expect(await allowed(s.authorizer, token)).toBe(true)
    expect(s.jwks.fetches).toBe(3)
  })

  it('does not fail the cold start when the JWKS fails, and answers a fault (not a deny) until it recovers', async () => {
    const s = await setup({ active: 'alias/rsa-active' })
    s.jwks.failWith = 503
    await expect(s.authorizer.warm()).resolves.toBeUndefined()
    const claims = standardClaims(ISSUER, NATIVE.audience, s.clock.now())
    const { token } = await mint(s.signerFor('alias/rsa-active'), claims)
    await expect(s.authorizer.http(event(token))).rejects.toBeInstanceOf(TemporarilyUnavailable)
    s.jwks.failWith = undefined
    expect(await allowed(s.authorizer, token)).toBe(true)
  })

  it('gives up on a JWKS that does not answer within the call timeout: a fault, not a hang', async () => {
    const s = await setup({ active: 'alias/rsa-active', timeoutMs: 200 })
    s.jwks.hang = true
    const claims = standardClaims(ISSUER, NATIVE.audience, s.clock.now())
    const { token } = await mint(s.signerFor('alias/rsa-active'), claims)
    await expect(s.authorizer.http(event(token))).rejects.toBeInstanceOf(TemporarilyUnavailable)
  })

  it('refuses a JWKS that is not a key set, and skips keys that are not RS256/ES256 signing keys', async () => {
    const s = await setup({ active: 'alias/rsa-active' })
    const [real] = await s.jwks.publish()
    const fetchKeys = async (body: string) => {
      const server = createServer((_req, res) => res.writeHead(200).end(body))
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
      try {
        return await jwksFetcher(uri, { timeoutMs: 5000 })()
      } finally {
        server.close()
      }
    }
    await expect(fetchKeys('not json')).rejects.toBeInstanceOf(TemporarilyUnavailable)
    await expect(fetchKeys('{"keys": "none"}')).rejects.toBeInstanceOf(TemporarilyUnavailable)
    const keys = await fetchKeys(
      JSON.stringify({
        keys: [real, { ...real, kid: 'enc', use: 'enc' }, { ...real, kid: 'hs', alg: 'HS256' }],
      }),
    )
    expect(keys.map((key) => key.kid)).toEqual([real?.kid])
  })

  it('stops reading a JWKS as soon as it passes the 64 KiB cap, and refuses one that announces more', async () => {
    let written = 0
    let closed = false
    const chunk = Buffer.alloc(16 * 1024, 0x20)
    const server = createServer((req, res) => {
      if (req.url === '/announced') {
        res.writeHead(200, { 'content-length': String(50 * 1024 * 1024) })
        res.write(chunk)
        return
      }
      // A body without end: whoever reads it in full never gets an answer.
      res.writeHead(200, { 'content-type': 'application/json' })
      res.on('close', () => {
        closed = true
      })
      const pump = () => {
        while (!closed && written < 200 * 1024 * 1024) {
          written += chunk.length
          if (!res.write(chunk)) return void res.once('drain', pump)
        }
      }
      pump()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      await expect(jwksFetcher(`${base}/endless`, { timeoutMs: 30_000 })()).rejects.toThrow(
        new TemporarilyUnavailable('JWKS too large'),
      )
      await vi.waitFor(() => expect(closed).toBe(true))
      // What the socket buffers held when it stopped, not the 200 MiB on offer.
      expect(written).toBeLessThan(32 * 1024 * 1024)
      await expect(jwksFetcher(`${base}/announced`, { timeoutMs: 30_000 })()).rejects.toThrow(
        new TemporarilyUnavailable('JWKS too large'),
      )
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })

  it('verifies ES256 tokens (R||S signatures) and refuses a DER-encoded signature', async () => {
    const s = await setup({ active: 'alias/ec-active', alg: 'ES256' })
    const claims = standardClaims(ISSUER, NATIVE.audience, s.clock.now())
    const { token } = await mint(s.signerFor('alias/ec-active'), claims)
    expect(await allowed(s.authorizer, token)).toBe(true)
    const der = s.kms.ecdsaSignatures.at(-1) as Buffer
    const [header, payload] = token.split('.')
    expect(await allowed(s.authorizer, `${header}.${payload}.${der.toString('base64url')}`)).toBe(
      false,
    )
    const rs256Header = b64({
      ...JSON.parse(Buffer.from(header as string, 'base64url').toString()),
      alg: 'RS256',
    })
    expect(await allowed(s.authorizer, `${rs256Header}.${payload}.${token.split('.')[2]}`)).toBe(
      false,
    )
  })

  it('refuses the high-S twin (r, n - s) of a valid ES256 signature: low S only', async () => {
    const s = await setup({ active: 'alias/ec-active', alg: 'ES256' })
    const claims = standardClaims(ISSUER, NATIVE.audience, s.clock.now())
    const { token } = await mint(s.signerFor('alias/ec-active'), claims)
    expect(await allowed(s.authorizer, token)).toBe(true)
    const [header, payload, signature] = token.split('.') as [string, string, string]
    const rs = Buffer.from(signature, 'base64url')
    const lowS = BigInt(`0x${rs.subarray(32).toString('hex')}`)
    const twin = Buffer.concat([
      rs.subarray(0, 32),
      Buffer.from((P256.n - lowS).toString(16).padStart(64, '0'), 'hex'),
    ])
    // The twin is a valid ECDSA signature of the same input...
    const key = createPublicKey({ key: { ...(await s.jwks.publish())[0] }, format: 'jwk' })
    const input = Buffer.from(`${header}.${payload}`)
    expect(nodeVerify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, twin)).toBe(true)
    // ...but a second spelling of the same token, so it is refused.
    expect(await allowed(s.authorizer, `${header}.${payload}.${twin.toString('base64url')}`)).toBe(
      false,
    )
  })
})
