/**
 * A fake KMS at the SDK boundary (aws-sdk-client-mock), signing with real keys
 * generated here, so that what it signs verifies with any JWT library.
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  generateKeyPairSync,
  type KeyObject,
  privateEncrypt,
  randomBytes,
} from 'node:crypto'
import {
  DecryptCommand,
  type DecryptCommandInput,
  GenerateDataKeyCommand,
  type GenerateDataKeyCommandInput,
  GenerateDataKeyPairWithoutPlaintextCommand,
  type GenerateDataKeyPairWithoutPlaintextCommandInput,
  GetPublicKeyCommand,
  IncorrectKeyException,
  InvalidCiphertextException,
  InvalidKeyUsageException,
  KMSClient,
  KMSServiceException,
  NotFoundException,
  SignCommand,
  type SignCommandInput,
} from '@aws-sdk/client-kms'
import { mockClient } from 'aws-sdk-client-mock'

// ---------------------------------------------------------------------------
// A fake KMS at the SDK boundary, signing with real keys generated here.
// ---------------------------------------------------------------------------

export interface FakeKey {
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
}

export const rsaKey = (): FakeKey => generateKeyPairSync('rsa', { modulusLength: 2048 })
export const ecKey = (namedCurve = 'P-256'): FakeKey => generateKeyPairSync('ec', { namedCurve })

// Generated once per file: RSA key generation is the slow part.
export const KEYS: Record<string, FakeKey> = {
  'alias/rsa-active': rsaKey(),
  'alias/rsa-retiring': rsaKey(),
  'alias/ec-active': ecKey(),
  'alias/ec-retiring': ecKey(),
  'alias/ec-p384': ecKey('P-384'),
}

/** DigestInfo prefix for SHA-256 (RFC 8017 §9.2, note 1). */
export const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex')

/**
 * node:crypto has no "sign this precomputed digest" for ECDSA (`sign(null, ...)`
 * hashes with SHA-256 again), so the fake does textbook ECDSA on P-256 with
 * BigInt. Nonces come from a counter, so a test sees the same R values on every
 * run (test-only: never derive real nonces like this).
 */
export const P256 = {
  p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
  n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  gx: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
  gy: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
}
export type Jacobian = readonly [bigint, bigint, bigint]
export const INFINITY: Jacobian = [0n, 1n, 0n]

export const mod = (a: bigint, m = P256.p): bigint => {
  const r = a % m
  return r < 0n ? r + m : r
}

export function invert(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [mod(a, m), m, 1n, 0n]
  while (r1 !== 0n) {
    const q = r0 / r1
    ;[r0, r1] = [r1, r0 - q * r1]
    ;[s0, s1] = [s1, s0 - q * s1]
  }
  return mod(s0, m)
}

/** dbl-2001-b (a = -3). */
export function double([x, y, z]: Jacobian): Jacobian {
  if (z === 0n || y === 0n) return INFINITY
  const delta = mod(z * z)
  const gamma = mod(y * y)
  const beta = mod(x * gamma)
  const alpha = mod(3n * (x - delta) * (x + delta))
  const x3 = mod(alpha * alpha - 8n * beta)
  const z3 = mod((y + z) ** 2n - gamma - delta)
  const y3 = mod(alpha * (4n * beta - x3) - 8n * gamma * gamma)
  return [x3, y3, z3]
}

/** add-2007-bl. */
export function add(p: Jacobian, q: Jacobian): Jacobian {
  if (p[2] === 0n) return q
  if (q[2] === 0n) return p
  const [x1, y1, z1] = p
  const [x2, y2, z2] = q
  const z1z1 = mod(z1 * z1)
  const z2z2 = mod(z2 * z2)
  const u1 = mod(x1 * z2z2)
  const u2 = mod(x2 * z1z1)
  const s1 = mod(y1 * z2 * z2z2)
  const s2 = mod(y2 * z1 * z1z1)
  if (u1 === u2) return s1 === s2 ? double(p) : INFINITY
  const h = mod(u2 - u1)
  const i = mod(4n * h * h)
  const j = mod(h * i)
  const r = mod(2n * (s2 - s1))
  const v = mod(u1 * i)
  const x3 = mod(r * r - j - 2n * v)
  const y3 = mod(r * (v - x3) - 2n * s1 * j)
  const z3 = mod(((z1 + z2) ** 2n - z1z1 - z2z2) * h)
  return [x3, y3, z3]
}

/** COMB[i][j] = j * 16^i * G, so k*G is 64 additions. */
export const COMB: Jacobian[][] = []
{
  let base: Jacobian = [P256.gx, P256.gy, 1n]
  for (let i = 0; i < 64; i++) {
    const row: Jacobian[] = [INFINITY]
    for (let j = 1; j < 16; j++) row.push(add(row[j - 1] as Jacobian, base))
    COMB.push(row)
    for (let j = 0; j < 4; j++) base = double(base)
  }
}

export function affineX(k: bigint): bigint {
  let point = INFINITY
  for (let i = 0; i < 64; i++) {
    point = add(point, COMB[i]?.[Number((k >> BigInt(4 * i)) & 15n)] as Jacobian)
  }
  const zInverse = invert(point[2], P256.p)
  return mod(point[0] * zInverse * zInverse)
}

export const toBigInt = (bytes: Uint8Array): bigint =>
  BigInt(`0x${Buffer.from(bytes).toString('hex')}`)

export function derInteger(value: bigint): Buffer {
  let hex = value.toString(16)
  if (hex.length % 2) hex = `0${hex}`
  let bytes = Buffer.from(hex, 'hex')
  if ((bytes[0] as number) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes])
  return Buffer.concat([Buffer.from([0x02, bytes.length]), bytes])
}

export function derSequence(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts)
  return Buffer.concat([Buffer.from([0x30, body.length]), body])
}

/** ECDSA over an already computed 32-byte digest, DER encoded like KMS answers. */
export function ecdsaSignDigest(
  privateKey: KeyObject,
  digest: Uint8Array,
  nonceSeed: string,
): Buffer {
  const d = toBigInt(Buffer.from(String(privateKey.export({ format: 'jwk' }).d), 'base64url'))
  const z = toBigInt(digest)
  for (let attempt = 0; ; attempt++) {
    const nonce = createHash('sha256').update(`${nonceSeed}:${attempt}`).digest()
    const k = mod(toBigInt(nonce), P256.n - 1n) + 1n
    const r = mod(affineX(k), P256.n)
    const s = mod(invert(k, P256.n) * (z + r * d), P256.n)
    if (r !== 0n && s !== 0n) return derSequence(derInteger(r), derInteger(s))
  }
}

export function kmsError(
  Exception: new (opts: { message: string; $metadata: object }) => Error,
  message = 'injected',
): Error {
  return new Exception({ message, $metadata: {} })
}

/** What the SDK throws for throttling: a service exception with no modeled class. */
export function throttling(): Error {
  return new KMSServiceException({
    name: 'ThrottlingException',
    $fault: 'client',
    $metadata: { httpStatusCode: 400 },
    message: 'Rate exceeded',
  })
}

export function networkError(): Error {
  return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })
}

/** Symmetric keys (the grace key): 32 random bytes each, generated once per file. */
export const SYMMETRIC_KEYS: Record<string, Buffer> = {
  'alias/grace': randomBytes(32),
  'alias/envelope': randomBytes(32),
  'alias/other-symmetric': randomBytes(32),
}

/**
 * Symmetric keys named by ARN, as a stack's keys are, with the regions they exist in: a
 * single-Region key in one; a multi-Region key (`mrk-…`) in its primary's region and each
 * region it was replicated to, with one key id and one key material (KMS multi-Region keys,
 * so a ciphertext made under any copy decrypts under any other, in that copy's region). A
 * ciphertext names the key id, not the region: KMS in a region where that key id does not
 * exist cannot decrypt it.
 */
interface RegionalKey {
  readonly material: Buffer
  readonly regions: Set<string>
}
const REGIONAL_KEYS = new Map<string, RegionalKey>()
export const FAKE_ACCOUNT = '111122223333'

/** A symmetric key of the fake, named by ARN in each region it exists in. */
export interface FakeSymmetricKey {
  /** The key id (`mrk-…` for a multi-Region key): the same in every region. */
  readonly keyId: string
  /** Its ARN in `region` (the copy of that region). */
  arn(region: string): string
  /** A multi-Region key: adds a replica in `region` (`AWS::KMS::ReplicaKey`). */
  replicate(region: string): void
}

function symmetricKey(keyId: string, regions: readonly string[]): FakeSymmetricKey {
  const key: RegionalKey = { material: randomBytes(32), regions: new Set(regions) }
  REGIONAL_KEYS.set(keyId, key)
  return {
    keyId,
    arn: (region) => `arn:aws:kms:${region}:${FAKE_ACCOUNT}:key/${keyId}`,
    replicate: (region) => {
      if (!keyId.startsWith('mrk-')) throw new Error('only a multi-Region key has replicas')
      key.regions.add(region)
    },
  }
}

/** A single-Region symmetric key in `region`. */
export const singleRegionKey = (region: string): FakeSymmetricKey =>
  symmetricKey(randomBytes(16).toString('hex'), [region])

/** A multi-Region symmetric key: its primary in `primary`, a replica in each of `replicas`. */
export const multiRegionKey = (primary: string, replicas: readonly string[] = []) =>
  symmetricKey(`mrk-${randomBytes(16).toString('hex')}`, [primary, ...replicas])

/** The alias a harness gives the KMS grace keys unless `GRACE_KEY_ID` says otherwise. */
export const GRACE_KEY_ALIAS = 'alias/grace'

type Operation =
  | 'Sign'
  | 'GetPublicKey'
  | 'GenerateDataKey'
  | 'GenerateDataKeyPairWithoutPlaintext'
  | 'Decrypt'

/**
 * A data key wrapped by a symmetric key as the fake's ciphertext blob: the key's
 * name, then AES-256-GCM of the data key with the encryption context as
 * additional data (so a blob opens only with its own key and context, as in KMS).
 */
function wrap(keyId: string, master: Buffer, plaintext: Buffer, context: string): Buffer {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', master, iv)
  cipher.setAAD(Buffer.from(context))
  const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
  const name = Buffer.from(keyId)
  return Buffer.concat([Buffer.from([name.length]), name, iv, sealed])
}

function unwrap(
  blob: Buffer,
  context: string,
  region: string,
): { keyId: string; plaintext: Buffer } {
  const nameLength = blob[0] ?? 0
  const keyId = blob.subarray(1, 1 + nameLength).toString()
  const regional = REGIONAL_KEYS.get(keyId)
  if (regional && !regional.regions.has(region)) {
    // The ciphertext's key id has no key in this region (a single-Region key of another
    // region, or a multi-Region key not replicated here).
    throw kmsError(NotFoundException, `key ${keyId} does not exist in ${region}`)
  }
  const master = regional?.material ?? SYMMETRIC_KEYS[keyId]
  const rest = blob.subarray(1 + nameLength)
  if (!master || rest.length < 12 + 16) {
    throw kmsError(InvalidCiphertextException, 'the ciphertext is invalid')
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', master, rest.subarray(0, 12))
    decipher.setAAD(Buffer.from(context))
    decipher.setAuthTag(rest.subarray(rest.length - 16))
    const body = rest.subarray(12, rest.length - 16)
    return { keyId, plaintext: Buffer.concat([decipher.update(body), decipher.final()]) }
  } catch {
    throw kmsError(InvalidCiphertextException, 'the ciphertext is invalid')
  }
}

const contextOf = (context: Record<string, string> | undefined): string =>
  JSON.stringify(Object.entries(context ?? {}).sort(([a], [b]) => a.localeCompare(b)))

export class FakeKms {
  readonly client: KMSClient
  readonly mock: ReturnType<typeof mockClient>
  /** The region this KMS answers for: a key named by ARN must be of it. */
  readonly region: string
  /** Every DER signature handed out, in order. */
  readonly ecdsaSignatures: Buffer[] = []
  readonly #failures: Record<Operation, Error[]> = {
    Sign: [],
    GetPublicKey: [],
    GenerateDataKey: [],
    GenerateDataKeyPairWithoutPlaintext: [],
    Decrypt: [],
  }
  #nonces = 0

  constructor({ region = 'eu-west-1' }: { region?: string } = {}) {
    this.region = region
    this.client = new KMSClient({ region })
    this.mock = mockClient(this.client)
    this.mock.on(GenerateDataKeyCommand).callsFake(async (input: GenerateDataKeyCommandInput) => {
      this.#maybeFail('GenerateDataKey')
      const { keyId, master } = this.#symmetric(String(input.KeyId))
      if (input.KeySpec !== 'AES_256') throw new Error('fake KMS only makes AES_256 data keys')
      const plaintext = randomBytes(32)
      return {
        KeyId: this.#arnOf(keyId),
        Plaintext: new Uint8Array(plaintext),
        CiphertextBlob: new Uint8Array(
          wrap(keyId, master, plaintext, contextOf(input.EncryptionContext)),
        ),
      }
    })
    this.mock
      .on(GenerateDataKeyPairWithoutPlaintextCommand)
      .callsFake(async (input: GenerateDataKeyPairWithoutPlaintextCommandInput) => {
        this.#maybeFail('GenerateDataKeyPairWithoutPlaintext')
        const { keyId, master } = this.#symmetric(String(input.KeyId))
        const pair =
          input.KeyPairSpec === 'RSA_2048'
            ? rsaKey()
            : input.KeyPairSpec === 'ECC_NIST_P256'
              ? ecKey()
              : undefined
        if (!pair) throw new Error(`fake KMS makes no ${input.KeyPairSpec} pairs`)
        const privateKey = pair.privateKey.export({ format: 'der', type: 'pkcs8' })
        return {
          KeyId: this.#arnOf(keyId),
          KeyPairSpec: input.KeyPairSpec,
          PublicKey: new Uint8Array(pair.publicKey.export({ format: 'der', type: 'spki' })),
          PrivateKeyCiphertextBlob: new Uint8Array(
            wrap(keyId, master, privateKey, contextOf(input.EncryptionContext)),
          ),
        }
      })
    this.mock.on(DecryptCommand).callsFake(async (input: DecryptCommandInput) => {
      this.#maybeFail('Decrypt')
      const blob = Buffer.from(input.CiphertextBlob as Uint8Array)
      const { keyId, plaintext } = unwrap(blob, contextOf(input.EncryptionContext), this.region)
      if (input.KeyId !== undefined && this.#symmetric(input.KeyId).keyId !== keyId) {
        throw kmsError(IncorrectKeyException, 'the key does not match the ciphertext')
      }
      return { KeyId: this.#arnOf(keyId), Plaintext: new Uint8Array(plaintext) }
    })
    this.mock.on(GetPublicKeyCommand).callsFake(async ({ KeyId }: { KeyId: string }) => {
      this.#maybeFail('GetPublicKey')
      const key = this.#key(KeyId)
      return {
        KeyId,
        KeyUsage: 'SIGN_VERIFY',
        PublicKey: new Uint8Array(key.publicKey.export({ format: 'der', type: 'spki' })),
      }
    })
    this.mock.on(SignCommand).callsFake(async (input: SignCommandInput) => {
      this.#maybeFail('Sign')
      const key = this.#key(String(input.KeyId))
      if (input.MessageType !== 'DIGEST') throw new Error('fake KMS only takes DIGEST messages')
      const digest = Buffer.from(input.Message as Uint8Array)
      if (digest.length !== 32) throw new Error('a SHA-256 digest is 32 bytes')
      const type = key.privateKey.asymmetricKeyType
      let signature: Buffer
      if (input.SigningAlgorithm === 'RSASSA_PKCS1_V1_5_SHA_256' && type === 'rsa') {
        signature = privateEncrypt(
          { key: key.privateKey, padding: constants.RSA_PKCS1_PADDING },
          Buffer.concat([SHA256_DIGEST_INFO, digest]),
        )
      } else if (
        input.SigningAlgorithm === 'ECDSA_SHA_256' &&
        key.privateKey.asymmetricKeyDetails?.namedCurve === 'prime256v1'
      ) {
        signature = ecdsaSignDigest(key.privateKey, digest, `fake-kms-nonce:${this.#nonces++}`)
        this.ecdsaSignatures.push(signature)
      } else {
        throw kmsError(InvalidKeyUsageException, 'algorithm does not fit the key')
      }
      return { KeyId: input.KeyId, Signature: new Uint8Array(signature) }
    })
  }

  /** The next call of `operation` fails with `error`, then KMS recovers. */
  failNext(operation: Operation, error: Error): void {
    this.#failures[operation].push(error)
  }

  signCalls(): SignCommandInput[] {
    return this.mock.commandCalls(SignCommand).map((call) => call.args[0].input)
  }

  getPublicKeyCalls(): string[] {
    return this.mock
      .commandCalls(GetPublicKeyCommand)
      .map((call) => String(call.args[0].input.KeyId))
  }

  generateDataKeyCalls(): GenerateDataKeyCommandInput[] {
    return this.mock.commandCalls(GenerateDataKeyCommand).map((call) => call.args[0].input)
  }

  generateKeyPairCalls(): GenerateDataKeyPairWithoutPlaintextCommandInput[] {
    return this.mock
      .commandCalls(GenerateDataKeyPairWithoutPlaintextCommand)
      .map((call) => call.args[0].input)
  }

  decryptCalls(): DecryptCommandInput[] {
    return this.mock.commandCalls(DecryptCommand).map((call) => call.args[0].input)
  }

  #maybeFail(operation: Operation): void {
    const error = this.#failures[operation].shift()
    if (error) throw error
  }

  /**
   * A symmetric key as a request names it: an alias of SYMMETRIC_KEYS, or the ARN of a
   * regional key, which must be of this region (KMS answers only for its own region's keys).
   */
  #symmetric(name: string): { keyId: string; master: Buffer } {
    const arn = /^arn:aws:kms:([a-z0-9-]+):\d{12}:key\/(.+)$/.exec(name)
    if (arn) {
      const [, region, keyId] = arn as unknown as [string, string, string]
      const regional = REGIONAL_KEYS.get(keyId)
      if (region !== this.region || !regional?.regions.has(region)) {
        throw kmsError(NotFoundException, `key ${name} not found in ${this.region}`)
      }
      return { keyId, master: regional.material }
    }
    const master = SYMMETRIC_KEYS[name]
    if (!master) throw kmsError(NotFoundException, `key ${name} not found`)
    return { keyId: name, master }
  }

  #arnOf(keyId: string): string {
    return REGIONAL_KEYS.has(keyId)
      ? `arn:aws:kms:${this.region}:${FAKE_ACCOUNT}:key/${keyId}`
      : keyId
  }

  #key(keyId: string): FakeKey {
    const key = KEYS[keyId]
    if (!key) throw kmsError(NotFoundException, `key ${keyId} not found`)
    return key
  }
}
