import { createPublicKey, verify } from 'node:crypto'
import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose'
import { describe, expect, it } from 'vitest'
import {
  type EnvelopeKeyStore,
  EnvelopeSigner,
  envelopeContext,
  type StoredKeyPair,
} from '../../functions/adapters/envelope-signer.js'
import { lambdaSigner } from '../../functions/adapters/signing.js'
import { issueAccessToken } from '../../functions/core/access-token.js'
import { TemporarilyUnavailable } from '../../functions/core/errors.js'
import type { SigningAlgorithm } from '../../functions/core/ports.js'
import { FakeKms, throttling } from '../support/fake-kms.js'

const WRAPPING_KEY = 'alias/envelope'
const OWNER = 'TokenService/TokenService'

/** The table's one-pair-per-id rule, as a map (the DynamoDB store has its own contract test). */
class Store implements EnvelopeKeyStore {
  readonly pairs = new Map<string, StoredKeyPair>()
  creates = 0
  async findKeyPair(id: string) {
    return this.pairs.get(id)
  }
  async createKeyPair(id: string, pair: StoredKeyPair) {
    this.creates++
    const stored = this.pairs.get(id)
    if (stored) return stored
    this.pairs.set(id, pair)
    return pair
  }
}

const signer = (kms: FakeKms, store: Store, alg: SigningAlgorithm = 'RS256', active = 'k1') =>
  new EnvelopeSigner({
    client: kms.client,
    store,
    wrappingKeyId: WRAPPING_KEY,
    owner: OWNER,
    activeKeyId: active,
    retiringKeyIds: ['k0'],
    alg,
  })

describe('EnvelopeSigner: signing in memory with a key pair KMS generated', () => {
  for (const alg of ['RS256', 'ES256'] as const) {
    it(`signs ${alg} access tokens that verify with the published key, its kid the RFC 7638 thumbprint`, async () => {
      const kms = new FakeKms()
      const keys = signer(kms, new Store(), alg)
      const { token } = await issueAccessToken(
        keys,
        { issuer: 'https://issuer.test', backdateSeconds: 5 },
        {
          user: {
            sub: 'u1',
            username: 'u',
            passwordHash: '',
            roles: [],
            status: 'active',
            createdAt: 0,
          },
          session: {
            sid: 's1',
            sub: 'u1',
            clientId: 'c',
            scope: 'openid',
            status: 'active',
            createdAt: 0,
            lastUsedAt: 0,
            idleExpiresAt: 0,
            absoluteExpiresAt: 0,
            generation: 0,
            currentHash: 'h',
          },
          client: {
            clientId: 'c',
            audience: 'https://api.test',
            accessTokenTtlSeconds: 900,
          } as never,
          scope: 'openid',
          now: Date.now(),
        },
      )
      const [published] = await keys.publicKeys()
      expect(decodeProtectedHeader(token).kid).toBe(published?.kid)
      const { payload } = await jwtVerify(token, await importJWK(published as never, alg), {
        algorithms: [alg],
      })
      expect(payload.sub).toBe('u1')
      if (alg === 'ES256') {
        // 64-byte R||S with a low S, the one spelling the authorizer accepts.
        const signature = Buffer.from(token.split('.')[2] as string, 'base64url')
        expect(signature).toHaveLength(64)
        const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551')
        expect(BigInt(`0x${signature.subarray(32).toString('hex')}`) <= n / 2n).toBe(true)
      }
    })
  }

  it('generates each pair once, under the stack key, with the key id and the stack as encryption context', async () => {
    const kms = new FakeKms()
    const store = new Store()
    await Promise.all([signer(kms, store).publicKeys(), signer(kms, store).keyId()])
    expect(store.pairs.size).toBe(2)
    for (const call of kms.generateKeyPairCalls()) {
      expect(call).toMatchObject({ KeyId: WRAPPING_KEY, KeyPairSpec: 'RSA_2048' })
      expect(Object.keys(call.EncryptionContext ?? {}).sort()).toEqual(['owner', 'signing-key'])
    }
    // Two containers racing: both pairs generated, one stored per id, both use it.
    const kids = await Promise.all([signer(kms, store).keyId(), signer(kms, store).keyId()])
    expect(new Set(kids).size).toBe(1)
  })

  it('unwraps the private key once per container, only for the active key, with its context', async () => {
    const kms = new FakeKms()
    const keys = signer(kms, new Store())
    await keys.prepare()
    await Promise.all([keys.sign(Buffer.from('a')), keys.sign(Buffer.from('b'))])
    expect(kms.decryptCalls()).toHaveLength(1)
    expect(kms.decryptCalls()[0]).toMatchObject({
      KeyId: WRAPPING_KEY,
      EncryptionContext: envelopeContext(OWNER, 'k1'),
    })
  })

  it('stores only the wrapped private key: the stored pair signs nothing without KMS', async () => {
    const kms = new FakeKms()
    const store = new Store()
    const keys = signer(kms, store)
    const signature = await keys.sign(Buffer.from('input'))
    const pair = store.pairs.get('k1') as StoredKeyPair
    const publicKey = createPublicKey({
      key: Buffer.from(pair.publicKey, 'base64'),
      format: 'der',
      type: 'spki',
    })
    expect(verify('sha256', Buffer.from('input'), publicKey, signature)).toBe(true)
    expect(Object.keys(pair).sort()).toEqual(['alg', 'publicKey', 'wrappedPrivateKey'])
    // A PKCS #8 RSA key starts with this DER prefix; the wrapped blob does not hold it.
    expect(
      Buffer.from(pair.wrappedPrivateKey, 'base64').includes(
        Buffer.from('300d06092a864886f70d0101010500', 'hex'),
      ),
    ).toBe(false)
  })

  it('refuses a stored pair of another algorithm, and one whose private key is not its public key’s', async () => {
    const kms = new FakeKms()
    const store = new Store()
    await signer(kms, store, 'ES256').keyId()
    await expect(signer(kms, store, 'RS256').keyId()).rejects.toThrow(/ES256/)
    const swapped = new Store()
    await signer(kms, swapped, 'RS256', 'k1').keyId()
    await signer(kms, swapped, 'RS256', 'k2').keyId()
    const k1 = swapped.pairs.get('k1') as StoredKeyPair
    const k2 = swapped.pairs.get('k2') as StoredKeyPair
    swapped.pairs.set('k1', { ...k1, publicKey: k2.publicKey })
    // k2's public key with k1's wrapped private key (k1's context): it must not sign.
    await expect(signer(kms, swapped, 'RS256', 'k1').sign(Buffer.from('x'))).rejects.toThrow(
      /does not match/,
    )
  })

  it('answers 503 while KMS throttles, and unwraps on the next call', async () => {
    const kms = new FakeKms()
    const keys = signer(kms, new Store())
    await keys.keyId()
    kms.failNext('Decrypt', throttling())
    await expect(keys.sign(Buffer.from('x'))).rejects.toBeInstanceOf(TemporarilyUnavailable)
    expect((await keys.sign(Buffer.from('x'))).length).toBeGreaterThan(0)
  })
})

describe('lambdaSigner: a stack in the middle of a switch lists keys of both modes', () => {
  it('signs with the active envelope key (no KMS Sign) and publishes the KMS key that signed before it', async () => {
    const kms = new FakeKms()
    const store = new Store()
    const mixed = lambdaSigner({
      kms: kms.client,
      signing: { activeKeyId: 'envelope:k2', retiringKeyIds: ['alias/rsa-active'], alg: 'RS256' },
      envelope: { wrappingKeyId: WRAPPING_KEY, owner: OWNER, store },
    })
    await mixed.prepare()
    const published = await mixed.publicKeys()
    expect(published).toHaveLength(2)
    expect(published[0]?.kid).toBe(await mixed.keyId())
    const kmsOnly = lambdaSigner({
      kms: kms.client,
      signing: { activeKeyId: 'alias/rsa-active', retiringKeyIds: [], alg: 'RS256' },
    })
    expect(published[1]?.kid).toBe(await kmsOnly.keyId())
    const signature = await mixed.sign(Buffer.from('input'))
    const stored = store.pairs.get('k2') as StoredKeyPair
    const key = createPublicKey({
      key: Buffer.from(stored.publicKey, 'base64'),
      format: 'der',
      type: 'spki',
    })
    expect(verify('sha256', Buffer.from('input'), key, signature)).toBe(true)
    expect(kms.signCalls()).toHaveLength(0)
  })

  it('needs ENVELOPE_KEY_ID for an envelope key', () => {
    const kms = new FakeKms()
    expect(() =>
      lambdaSigner({
        kms: kms.client,
        signing: { activeKeyId: 'envelope:k1', retiringKeyIds: [], alg: 'RS256' },
      }),
    ).toThrow(/ENVELOPE_KEY_ID/)
  })
})
