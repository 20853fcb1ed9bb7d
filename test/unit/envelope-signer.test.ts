import { createPublicKey, type KeyObject, verify } from 'node:crypto'
import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose'
import { describe, expect, it } from 'vitest'
import {
  type EnvelopeKeyStore,
  EnvelopeSigner,
  envelopeContext,
  type StoredKeyPair,
} from '../../functions/adapters/envelope-signer.js'
import { lambdaSigner } from '../../functions/adapters/signing.js'
import { loadEnvelopeConfig } from '../../functions/config.js'
import { issueAccessToken } from '../../functions/core/access-token.js'
import { TemporarilyUnavailable } from '../../functions/core/errors.js'
import type { SigningAlgorithm } from '../../functions/core/ports.js'
import { FakeKms, multiRegionKey, singleRegionKey, throttling } from '../support/fake-kms.js'

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

describe('EnvelopeSigner in several regions (docs/multi-region.md "Envelope keys")', () => {
  const PRIMARY = 'eu-west-1'
  const OTHER = 'us-east-1'
  const inRegion = (
    kms: FakeKms,
    store: Store,
    keys: { wrappingKeyId?: string; multiRegionKeyId?: string },
    active = 'k1',
  ) =>
    new EnvelopeSigner({
      client: kms.client,
      store,
      ...keys,
      owner: OWNER,
      activeKeyId: active,
      alg: 'RS256',
    })

  it('unwraps a pair generated in one region in the other, with that region’s copy of the multi-Region key: one pair, one kid', async () => {
    const wrapping = multiRegionKey(PRIMARY, [OTHER])
    const [here, there] = [new FakeKms({ region: PRIMARY }), new FakeKms({ region: OTHER })]
    // One store for both: the pair as it is once replicated.
    const store = new Store()
    const primary = inRegion(here, store, { multiRegionKeyId: wrapping.arn(PRIMARY) })
    const other = inRegion(there, store, { multiRegionKeyId: wrapping.arn(OTHER) })
    const kid = await primary.keyId()
    expect(store.pairs.get('k1')?.wrapping).toBe('multi-region')
    expect(here.generateKeyPairCalls()[0]?.KeyId).toBe(wrapping.arn(PRIMARY))
    expect(await other.keyId()).toBe(kid)
    const signature = await other.sign(Buffer.from('input'))
    // Unwrapped there, by that region's copy, with the key's context.
    expect(there.decryptCalls()).toEqual([
      expect.objectContaining({
        KeyId: wrapping.arn(OTHER),
        EncryptionContext: envelopeContext(OWNER, 'k1'),
      }),
    ])
    expect(there.generateKeyPairCalls()).toHaveLength(0)
    const [published] = await primary.publicKeys()
    const key = await importJWK(published as never, 'RS256')
    expect(verify('sha256', Buffer.from('input'), key as unknown as KeyObject, signature)).toBe(
      true,
    )
  })

  it('cannot unwrap a pair of a single-Region key in another region, nor of a multi-Region key where it has no replica: why keys added before regions are rotated out first', async () => {
    const single = singleRegionKey(PRIMARY)
    const store = new Store()
    await inRegion(new FakeKms({ region: PRIMARY }), store, {
      wrappingKeyId: single.arn(PRIMARY),
    }).prepare()
    const elsewhere = inRegion(new FakeKms({ region: OTHER }), store, {
      wrappingKeyId: single.arn(PRIMARY),
    })
    // KMS there has no key of that key id: a fault (503), never a signature.
    const refused = await elsewhere.prepare().catch((error: unknown) => error)
    expect(refused).toBeInstanceOf(TemporarilyUnavailable)
    expect((refused as Error).cause).toMatchObject({ name: 'NotFoundException' })
    const unreplicated = multiRegionKey(PRIMARY)
    const pairs = new Store()
    await inRegion(new FakeKms({ region: PRIMARY }), pairs, {
      multiRegionKeyId: unreplicated.arn(PRIMARY),
    }).prepare()
    const notYet = inRegion(new FakeKms({ region: OTHER }), pairs, {
      multiRegionKeyId: unreplicated.arn(OTHER),
    })
    const notReplicated = await notYet.prepare().catch((error: unknown) => error)
    expect((notReplicated as Error).cause).toMatchObject({ name: 'NotFoundException' })
    unreplicated.replicate(OTHER)
    await expect(notYet.prepare()).resolves.toBeUndefined()
  })

  it('in the primary during the move, unwraps each pair under the key that wrapped it and generates new pairs under the multi-Region key', async () => {
    const single = singleRegionKey(PRIMARY)
    const wrapping = multiRegionKey(PRIMARY, [OTHER])
    const kms = new FakeKms({ region: PRIMARY })
    const store = new Store()
    // k1: generated before regions, under the single-Region key.
    await inRegion(kms, store, { wrappingKeyId: single.arn(PRIMARY) }, 'k1').prepare()
    expect(store.pairs.get('k1')).not.toHaveProperty('wrapping')
    const both = { wrappingKeyId: single.arn(PRIMARY), multiRegionKeyId: wrapping.arn(PRIMARY) }
    await inRegion(kms, store, both, 'k1').prepare()
    await inRegion(kms, store, both, 'k2').prepare()
    expect(store.pairs.get('k2')?.wrapping).toBe('multi-region')
    expect(kms.decryptCalls().map((call) => call.KeyId)).toEqual([
      single.arn(PRIMARY),
      single.arn(PRIMARY),
      wrapping.arn(PRIMARY),
    ])
  })

  it('refuses a pair whose wrapping key this function is not given, naming the setting', async () => {
    const wrapping = multiRegionKey(PRIMARY)
    const kms = new FakeKms({ region: PRIMARY })
    const store = new Store()
    await inRegion(kms, store, { multiRegionKeyId: wrapping.arn(PRIMARY) }).keyId()
    await expect(
      inRegion(kms, store, { wrappingKeyId: 'alias/envelope' }).prepare(),
    ).rejects.toThrow(/ENVELOPE_MULTI_REGION_KEY_ID is not set/)
    expect(() => inRegion(kms, store, {})).toThrow(/wrappingKeyId or multiRegionKeyId is required/)
  })

  it('reads ENVELOPE_MULTI_REGION_KEY_ID and ENVELOPE_KEY_PAIR_REGION; an envelope key needs one wrapping key', () => {
    const signing = { activeKeyId: 'envelope:k1', retiringKeyIds: [], alg: 'RS256' as const }
    expect(
      loadEnvelopeConfig(signing, {
        ENVELOPE_MULTI_REGION_KEY_ID: 'arn:mrk',
        SIGNING_KEY_OWNER: OWNER,
        ENVELOPE_KEY_PAIR_REGION: PRIMARY,
      }),
    ).toEqual({ multiRegionKeyId: 'arn:mrk', owner: OWNER, keyPairRegion: PRIMARY })
    expect(() => loadEnvelopeConfig(signing, { SIGNING_KEY_OWNER: OWNER })).toThrow(
      /ENVELOPE_KEY_ID must be set/,
    )
  })
})
