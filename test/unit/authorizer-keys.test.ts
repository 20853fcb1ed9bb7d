import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda'
import { describe, expect, it } from 'vitest'
import { KmsSigner } from '../../functions/adapters/kms-signer.js'
import { createRuntime } from '../../functions/adapters/runtime.js'
import { type Authorizer, createAuthorizer } from '../../functions/authorizer/authorizer.js'
import { loadConfig } from '../../functions/config.js'
import { TemporarilyUnavailable } from '../../functions/core/errors.js'
import type { SigningAlgorithm } from '../../functions/core/ports.js'
import { FakeClock } from '../support/clock.js'
import { FakeKms, KEYS, rsaKey, throttling } from '../support/fake-kms.js'
import { NATIVE } from '../support/harness.js'
import { b64, mint, standardClaims } from '../support/tokens.js'

const ISSUER = 'https://auth.example.test'

interface Setup {
  kms: FakeKms
  clock: FakeClock
  authorizer: Authorizer
  /** A signer on `keyId` through the same fake KMS, to mint tokens with. */
  signerFor(keyId: string): KmsSigner
}

function setup(options: { active: string; retiring?: string[]; alg?: SigningAlgorithm }): Setup {
  const kms = new FakeKms()
  const clock = new FakeClock()
  const alg = options.alg ?? 'RS256'
  const config = loadConfig({
    TABLE_NAME: 'unused',
    ISSUER,
    CLIENTS: JSON.stringify([NATIVE]),
    SIGNER: 'kms',
    SIGNING_KEY_ID: options.active,
    RETIRING_KEY_IDS: (options.retiring ?? []).join(','),
    SIGNING_ALG: alg,
  })
  const authorizer = createAuthorizer(createRuntime(config, { kms: kms.client, clock }))
  return {
    kms,
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

describe('the authorizer loads its keys from KMS', () => {
  it('fetches the active and retiring public keys once at warm-up and verifies tokens of both', async () => {
    const s = setup({ active: 'alias/rsa-active', retiring: ['alias/rsa-retiring'] })
    await s.authorizer.warm()
    expect(s.kms.getPublicKeyCalls().sort()).toEqual(['alias/rsa-active', 'alias/rsa-retiring'])
    const claims = standardClaims(ISSUER, NATIVE.audience, s.clock.now())
    const byActive = await mint(s.signerFor('alias/rsa-active'), claims)
    const byRetiring = await mint(s.signerFor('alias/rsa-retiring'), claims)
    const before = s.kms.getPublicKeyCalls().length
    expect(await allowed(s.authorizer, byActive.token)).toBe(true)
    expect(await allowed(s.authorizer, byRetiring.token)).toBe(true)
    // Warm: verifying makes no KMS call.
    expect(s.kms.getPublicKeyCalls().length).toBe(before)
  })

  it('refreshes the key set for an unknown kid at most once a minute', async () => {
    const s = setup({ active: 'alias/rsa-active' })
    await s.authorizer.warm()
    const claims = standardClaims(ISSUER, NATIVE.audience, s.clock.now())
    const stranger = await mint(s.signerFor('alias/rsa-retiring'), claims)
    const calls = () => s.kms.getPublicKeyCalls().filter((id) => id === 'alias/rsa-active').length
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
    const s = setup({ active: 'alias/moving' })
    await s.authorizer.warm()
    KEYS['alias/moving'] = rsaKey()
    const claims = standardClaims(ISSUER, NATIVE.audience, s.clock.now())
    const byNewKey = await mint(s.signerFor('alias/moving'), claims)
    expect(await allowed(s.authorizer, byNewKey.token)).toBe(true)
  })

  it('does not fail the cold start when KMS fails, and answers a fault (not a deny) until it recovers', async () => {
    const s = setup({ active: 'alias/rsa-active' })
    s.kms.failNext('GetPublicKey', throttling())
    await expect(s.authorizer.warm()).resolves.toBeUndefined()
    const claims = standardClaims(ISSUER, NATIVE.audience, s.clock.now())
    const { token } = await mint(s.signerFor('alias/rsa-active'), claims)
    s.kms.failNext('GetPublicKey', throttling())
    await expect(s.authorizer.http(event(token))).rejects.toBeInstanceOf(TemporarilyUnavailable)
    expect(await allowed(s.authorizer, token)).toBe(true)
  })

  it('verifies ES256 tokens (R||S signatures) and refuses a DER-encoded signature', async () => {
    const s = setup({ active: 'alias/ec-active', alg: 'ES256' })
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
})
