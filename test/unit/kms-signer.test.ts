import {
  constants,
  createHash,
  sign as nodeSign,
  verify as nodeVerify,
  privateEncrypt,
} from 'node:crypto'
import {
  DisabledException,
  KeyUnavailableException,
  KMSInternalException,
} from '@aws-sdk/client-kms'
import { JwtVerifier } from 'aws-jwt-verify'
import { calculateJwkThumbprint, createLocalJWKSet, type JWK, jwtVerify } from 'jose'
import { beforeEach, describe, expect, it } from 'vitest'
import { derToJoseSignature, KmsSigner } from '../../functions/adapters/kms-signer.js'
import { TemporarilyUnavailable } from '../../functions/core/errors.js'
import type { Signer } from '../../functions/core/ports.js'
import {
  derSequence,
  ecdsaSignDigest,
  ecKey,
  type FakeKey,
  FakeKms,
  KEYS,
  kmsError,
  networkError,
  P256,
  SHA256_DIGEST_INFO,
  throttling,
} from '../support/fake-kms.js'
import { b64url, issueToken, publishedJwks } from '../support/tokens.js'

const ISSUER = 'https://auth.example.com'
const AUDIENCE = 'https://api.example.com'
const CLAIMS = { iss: ISSUER, aud: AUDIENCE }
const JWKS_URI = `${ISSUER}/.well-known/jwks.json`

async function verifyWithJose(token: string, signer: Signer) {
  const { payload, protectedHeader } = await jwtVerify(
    token,
    createLocalJWKSet(await publishedJwks(signer)),
    { issuer: ISSUER, audience: AUDIENCE, typ: 'at+jwt', algorithms: [signer.alg] },
  )
  return { payload, protectedHeader }
}

async function verifyWithAwsJwtVerify(token: string, signer: Signer) {
  const verifier = JwtVerifier.create({ issuer: ISSUER, audience: AUDIENCE, jwksUri: JWKS_URI })
  verifier.cacheJwks(await publishedJwks(signer))
  return verifier.verify(token)
}

const ACTIVE = { RS256: 'alias/rsa-active', ES256: 'alias/ec-active' } as const
const RETIRING = { RS256: 'alias/rsa-retiring', ES256: 'alias/ec-retiring' } as const

let kms: FakeKms
beforeEach(() => {
  kms = new FakeKms()
})

function signerFor(alg: 'RS256' | 'ES256', retiring = true): KmsSigner {
  return new KmsSigner({
    client: kms.client,
    activeKeyId: ACTIVE[alg],
    retiringKeyIds: retiring ? [RETIRING[alg]] : [],
    alg,
  })
}

// ---------------------------------------------------------------------------

describe('fake KMS (test double sanity)', () => {
  it('produces ECDSA P-256 signatures over the digest that node:crypto verifies', () => {
    const key = KEYS['alias/ec-active'] as FakeKey
    for (let i = 0; i < 20; i++) {
      const message = Buffer.from(`message ${i}`)
      const digest = createHash('sha256').update(message).digest()
      const der = ecdsaSignDigest(key.privateKey, digest, `sanity:${i}`)
      expect(nodeVerify('sha256', message, key.publicKey, der)).toBe(true)
    }
  })

  it('produces RSA PKCS#1 v1.5 signatures over the digest that node:crypto verifies', async () => {
    const key = KEYS['alias/rsa-active'] as FakeKey
    const message = Buffer.from('message')
    const digest = createHash('sha256').update(message).digest()
    const signature = privateEncrypt(
      { key: key.privateKey, padding: constants.RSA_PKCS1_PADDING },
      Buffer.concat([SHA256_DIGEST_INFO, digest]),
    )
    expect(nodeVerify('sha256', message, key.publicKey, signature)).toBe(true)
    // PKCS#1 v1.5 is deterministic: identical to node signing the message itself.
    expect(signature.equals(nodeSign('sha256', message, key.privateKey))).toBe(true)
  })
})

describe.each(['RS256', 'ES256'] as const)('KmsSigner with %s', (alg) => {
  it('does no I/O when constructed', () => {
    signerFor(alg)
    expect(kms.mock.calls()).toHaveLength(0)
  })

  it('sends KMS only the SHA-256 digest of the signing input, with the right key and algorithm', async () => {
    const signer = signerFor(alg)
    const signingInput = new TextEncoder().encode('header.payload')
    await signer.sign(signingInput)

    const [call, ...others] = kms.signCalls()
    expect(others).toHaveLength(0)
    expect(call).toMatchObject({
      KeyId: ACTIVE[alg],
      MessageType: 'DIGEST',
      SigningAlgorithm: alg === 'RS256' ? 'RSASSA_PKCS1_V1_5_SHA_256' : 'ECDSA_SHA_256',
    })
    const message = Buffer.from(call?.Message as Uint8Array)
    expect(message).toHaveLength(32)
    expect(message.equals(createHash('sha256').update(signingInput).digest())).toBe(true)
  })

  it('returns a JWS signature of the right size', async () => {
    const signature = await signerFor(alg).sign(new TextEncoder().encode('a.b'))
    expect(signature).toHaveLength(alg === 'RS256' ? 256 : 64)
  })

  it('issues access tokens that jose verifies against its published JWKS', async () => {
    const signer = signerFor(alg)
    const token = await issueToken(signer, CLAIMS)
    const { payload, protectedHeader } = await verifyWithJose(token, signer)
    expect(protectedHeader).toEqual({ alg, typ: 'at+jwt', kid: await signer.keyId() })
    expect(payload).toMatchObject({ iss: ISSUER, aud: AUDIENCE, sub: 'user-123' })
  })

  it('issues access tokens that aws-jwt-verify verifies against its published JWKS', async () => {
    const signer = signerFor(alg)
    const payload = await verifyWithAwsJwtVerify(await issueToken(signer, CLAIMS), signer)
    expect(payload).toMatchObject({ iss: ISSUER, aud: AUDIENCE, sub: 'user-123' })
  })

  it('rejects a token whose payload was tampered with', async () => {
    const signer = signerFor(alg)
    const [header, , signature] = (await issueToken(signer, CLAIMS)).split('.')
    const forged = b64url(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: 'admin', exp: 2e9 }))
    await expect(verifyWithJose(`${header}.${forged}.${signature}`, signer)).rejects.toThrow()
  })

  it('uses the RFC 7638 thumbprint of the active public key as kid', async () => {
    const signer = signerFor(alg)
    const expected = await calculateJwkThumbprint(
      (KEYS[ACTIVE[alg]] as FakeKey).publicKey.export({ format: 'jwk' }) as JWK,
    )
    expect(await signer.keyId()).toBe(expected)
  })

  it('publishes the active key first, then the retiring ones, as public signing JWKs', async () => {
    const signer = signerFor(alg)
    const keys = await signer.publicKeys()
    expect(keys).toHaveLength(2)
    expect(keys[0]?.kid).toBe(await signer.keyId())
    for (const [index, keyId] of [ACTIVE[alg], RETIRING[alg]].entries()) {
      const publicJwk = (KEYS[keyId] as FakeKey).publicKey.export({ format: 'jwk' })
      expect(keys[index]).toEqual({
        ...publicJwk,
        kid: await calculateJwkThumbprint(publicJwk as JWK),
        alg,
        use: 'sig',
      })
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) {
        expect(keys[index]).not.toHaveProperty(member)
      }
    }
  })

  it('still verifies tokens signed with a key that is now retiring', async () => {
    const before = new KmsSigner({ client: kms.client, activeKeyId: RETIRING[alg], alg })
    const token = await issueToken(before, CLAIMS)
    const after = signerFor(alg)
    expect(await after.keyId()).not.toBe(await before.keyId())
    await expect(verifyWithJose(token, after)).resolves.toBeDefined()
    await expect(verifyWithAwsJwtVerify(token, after)).resolves.toBeDefined()
  })

  it('fetches each public key once per container, even under concurrent calls', async () => {
    const signer = signerFor(alg)
    await Promise.all([signer.keyId(), signer.publicKeys(), signer.keyId()])
    await signer.publicKeys()
    await issueToken(signer, CLAIMS)
    expect(kms.getPublicKeyCalls().sort()).toEqual([ACTIVE[alg], RETIRING[alg]].sort())
  })
})

describe('KmsSigner ES256 R||S conversion', () => {
  it('turns 1,000 KMS DER signatures into low-S JWS signatures that all verify, whatever their R/S length', async () => {
    const signer = signerFor('ES256', false)
    const jwks = createLocalJWKSet(await publishedJwks(signer))
    const kid = await signer.keyId()
    const now = Math.floor(Date.now() / 1000)
    const header = b64url(JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid }))

    for (let i = 0; i < 1000; i++) {
      const payload = b64url(
        JSON.stringify({
          iss: ISSUER,
          aud: AUDIENCE,
          sub: `user-${i}`,
          exp: now + 300,
          jti: `${i}`,
        }),
      )
      const signingInput = `${header}.${payload}`
      const signature = await signer.sign(new TextEncoder().encode(signingInput))
      expect(signature).toHaveLength(64)
      // Low S (s <= n/2): the one spelling the authorizer accepts.
      expect(
        BigInt(`0x${Buffer.from(signature.subarray(32)).toString('hex')}`),
      ).toBeLessThanOrEqual(P256.n / 2n)
      const token = `${signingInput}.${b64url(signature)}`
      await expect(
        jwtVerify(token, jwks, { issuer: ISSUER, audience: AUDIENCE }),
      ).resolves.toBeDefined()
    }

    // The run really met both edge cases: integers DER pads with 0x00 (high bit
    // set) and integers shorter than 32 bytes that R||S must left-pad.
    const lengths = kms.ecdsaSignatures.flatMap((der) => {
      const rLength = der[3] as number
      return [rLength, der[4 + rLength + 1] as number]
    })
    expect(lengths).toHaveLength(2000)
    expect(lengths.filter((length) => length === 33).length).toBeGreaterThan(0)
    expect(lengths.filter((length) => length < 32).length).toBeGreaterThan(0)
    // Like KMS, the fake returns high S about half the time: the signer normalized those.
    const highS = kms.ecdsaSignatures.filter((der) => {
      const rLength = der[3] as number
      const s = der.subarray(4 + rLength + 2)
      return BigInt(`0x${s.toString('hex')}`) > P256.n / 2n
    })
    expect(highS.length).toBeGreaterThan(300)
  })
})

describe('derToJoseSignature', () => {
  const bytes = (length: number, first: number, fill = 0x11): Buffer =>
    Buffer.concat([Buffer.from([first]), Buffer.alloc(length - 1, fill)])
  const integer = (content: Buffer): Buffer =>
    Buffer.concat([Buffer.from([0x02, content.length]), content])

  it('left-pads a short R to 32 bytes', () => {
    const r = bytes(31, 0x7f)
    const s = bytes(32, 0x22)
    const jose = derToJoseSignature(derSequence(integer(r), integer(s)))
    expect(Buffer.from(jose).toString('hex')).toBe(`00${r.toString('hex')}${s.toString('hex')}`)
  })

  it('left-pads a short S to 32 bytes', () => {
    const r = bytes(32, 0x22)
    const s = bytes(30, 0x01)
    const jose = derToJoseSignature(derSequence(integer(r), integer(s)))
    expect(Buffer.from(jose).toString('hex')).toBe(`${r.toString('hex')}0000${s.toString('hex')}`)
  })

  it('strips the 0x00 that DER puts before an R or S with the high bit set', () => {
    const r = bytes(32, 0x80)
    const s = bytes(32, 0xff)
    const der = derSequence(
      integer(Buffer.concat([Buffer.from([0]), r])),
      integer(Buffer.concat([Buffer.from([0]), s])),
    )
    expect(der).toHaveLength(2 + 35 + 35)
    const jose = derToJoseSignature(der)
    expect(Buffer.from(jose).equals(Buffer.concat([r, s]))).toBe(true)
  })

  it('agrees with node:crypto on real P-256 signatures', () => {
    const key = KEYS['alias/ec-active'] as FakeKey
    for (let i = 0; i < 200; i++) {
      const message = Buffer.from(`message ${i}`)
      const der = nodeSign('sha256', message, key.privateKey)
      const jose = derToJoseSignature(der)
      expect(
        nodeVerify('sha256', message, { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, jose),
      ).toBe(true)
    }
  })

  it('handles the long-form DER length of P-521 signatures with size 66', () => {
    const key = ecKey('P-521')
    for (let i = 0; i < 20; i++) {
      const message = Buffer.from(`message ${i}`)
      const jose = derToJoseSignature(nodeSign('sha512', message, key.privateKey), 66)
      expect(jose).toHaveLength(132)
      expect(
        nodeVerify('sha512', message, { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, jose),
      ).toBe(true)
    }
  })

  const good = derSequence(integer(bytes(32, 0x12)), integer(bytes(32, 0x34)))
  it.each([
    ['empty input', Buffer.alloc(0)],
    ['not a SEQUENCE', Buffer.concat([Buffer.from([0x31]), good.subarray(1)])],
    ['a truncated signature', good.subarray(0, good.length - 1)],
    ['trailing bytes after the SEQUENCE', Buffer.concat([good, Buffer.from([0])])],
    ['a SEQUENCE length that overstates the content', Buffer.from([0x30, 0x07, 0x02, 0x01, 0x01])],
    ['a non-INTEGER element', derSequence(Buffer.from([0x04, 0x01, 0x01]), integer(bytes(32, 1)))],
    ['only one INTEGER', derSequence(integer(bytes(32, 0x12)))],
    [
      'three INTEGERs',
      derSequence(integer(bytes(1, 1)), integer(bytes(1, 1)), integer(bytes(1, 1))),
    ],
    ['an empty INTEGER', derSequence(Buffer.from([0x02, 0x00]), integer(bytes(32, 1)))],
    ['a negative INTEGER', derSequence(integer(bytes(32, 0x80)), integer(bytes(32, 1)))],
    [
      'a non-minimal INTEGER',
      derSequence(
        integer(Buffer.concat([Buffer.from([0]), bytes(32, 0x12)])),
        integer(bytes(32, 1)),
      ),
    ],
    ['a zero INTEGER', derSequence(integer(Buffer.from([0])), integer(bytes(32, 1)))],
    [
      'an INTEGER longer than 32 bytes',
      derSequence(integer(bytes(33, 0x12)), integer(bytes(32, 1))),
    ],
  ])('throws on %s', (_, der) => {
    expect(() => derToJoseSignature(der)).toThrow(/malformed DER ECDSA signature/)
  })
})

describe('KmsSigner errors', () => {
  const failures: [string, () => Error, string][] = [
    ['throttling', throttling, 'ThrottlingException'],
    ['an internal error', () => kmsError(KMSInternalException), 'KMSInternalException'],
    ['a disabled key', () => kmsError(DisabledException), 'DisabledException'],
    ['an unavailable key', () => kmsError(KeyUnavailableException), 'KeyUnavailableException'],
    ['a network error', networkError, 'ECONNRESET'],
    [
      'a timeout',
      () => Object.assign(new Error('timed out'), { name: 'TimeoutError' }),
      'TimeoutError',
    ],
  ]

  it.each(failures)(
    'turns %s while signing into a 503, and the next call succeeds',
    async (_, error, name) => {
      const signer = signerFor('ES256')
      const cause = error()
      kms.failNext('Sign', cause)
      const signingInput = new TextEncoder().encode('secret-looking.signing-input')

      const failure = await signer.sign(signingInput).catch((e: unknown) => e)
      expect(failure).toBeInstanceOf(TemporarilyUnavailable)
      expect(failure).toMatchObject({
        status: 503,
        error: 'temporarily_unavailable',
        detail: `kms Sign failed: ${name}`,
        cause,
      })
      expect(String((failure as Error).message)).not.toContain('secret-looking')

      await expect(signer.sign(signingInput)).resolves.toHaveLength(64)
    },
  )

  it.each(failures)(
    'turns %s while fetching a public key into a 503, and does not cache the failure',
    async (_, error, name) => {
      const signer = signerFor('RS256')
      kms.failNext('GetPublicKey', error())

      const failure = await signer.keyId().catch((e: unknown) => e)
      expect(failure).toBeInstanceOf(TemporarilyUnavailable)
      expect(failure).toMatchObject({ status: 503, detail: `kms GetPublicKey failed: ${name}` })

      const token = await issueToken(signer, CLAIMS)
      await expect(verifyWithJose(token, signer)).resolves.toBeDefined()
    },
  )

  it('fails the whole JWKS with a 503 when a retiring key cannot be fetched, then recovers', async () => {
    const signer = signerFor('RS256')
    await signer.keyId()
    kms.failNext('GetPublicKey', kmsError(KMSInternalException))
    await expect(signer.publicKeys()).rejects.toBeInstanceOf(TemporarilyUnavailable)
    await expect(signer.publicKeys()).resolves.toHaveLength(2)
  })

  it('refuses an RSA key for ES256 with a clear error', async () => {
    const signer = new KmsSigner({
      client: kms.client,
      activeKeyId: 'alias/rsa-active',
      alg: 'ES256',
    })
    await expect(signer.keyId()).rejects.toThrow(
      'kms key alias/rsa-active is an RSA-2048 key, but ES256 needs an EC P-256 key',
    )
  })

  it('refuses an EC key for RS256 with a clear error', async () => {
    const signer = new KmsSigner({ client: kms.client, activeKeyId: 'alias/ec-active' })
    expect(signer.alg).toBe('RS256')
    await expect(signer.keyId()).rejects.toThrow(/alias\/ec-active .* but RS256 needs an RSA key/)
  })

  it('refuses an EC key on another curve for ES256', async () => {
    const signer = new KmsSigner({ client: kms.client, activeKeyId: 'alias/ec-p384', alg: 'ES256' })
    await expect(signer.keyId()).rejects.toThrow(/but ES256 needs an EC P-256 key/)
  })

  it('refuses a retiring key of the wrong type too', async () => {
    const signer = new KmsSigner({
      client: kms.client,
      activeKeyId: 'alias/ec-active',
      retiringKeyIds: ['alias/rsa-retiring'],
      alg: 'ES256',
    })
    await expect(signer.publicKeys()).rejects.toThrow(
      /alias\/rsa-retiring .* ES256 needs an EC P-256/,
    )
  })
})
