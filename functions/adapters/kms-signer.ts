import { createHash, createPublicKey, type JsonWebKey } from 'node:crypto'
import {
  GetPublicKeyCommand,
  type KMSClient,
  SignCommand,
  type SigningAlgorithmSpec,
} from '@aws-sdk/client-kms'
import { jwkThumbprint } from '../core/dpop.js'
import { TemporarilyUnavailable } from '../core/errors.js'
import { toLowS } from '../core/es256.js'
import { assertKeyFitsAlg } from '../core/key-fit.js'
import type { PublicJwk, Signer, SigningAlgorithm } from '../core/ports.js'

export interface KmsSignerOptions {
  readonly client: KMSClient
  /** Key id, ARN or alias of the key that signs new tokens. */
  readonly activeKeyId: string
  /** Keys that no longer sign but whose tokens may still be live: published, never used. */
  readonly retiringKeyIds?: readonly string[]
  /** @default 'RS256' */
  readonly alg?: SigningAlgorithm
}

/**
 * The KMS signing algorithm of each JWS `alg`. The stack's `kms:Sign` grants
 * require it (`kms:SigningAlgorithm`), and `kms:MessageType` = `DIGEST`.
 */
export const KMS_SIGNING_ALGORITHMS: Readonly<Record<SigningAlgorithm, SigningAlgorithmSpec>> = {
  RS256: 'RSASSA_PKCS1_V1_5_SHA_256',
  ES256: 'ECDSA_SHA_256',
}

/**
 * Signs JWS signing inputs with an asymmetric KMS key. The digest is computed
 * here and only the digest goes to KMS (`MessageType: 'DIGEST'`), so the
 * request stays small whatever the token (KMS caps RAW messages at 4 KiB).
 *
 * The constructor does no I/O. Public keys are fetched once per container and
 * memoized; a failed fetch is forgotten so the next call retries.
 */
export class KmsSigner implements Signer {
  readonly alg: SigningAlgorithm
  readonly #client: KMSClient
  readonly #activeKeyId: string
  readonly #keyIds: readonly string[]
  readonly #publicKeys = new Map<string, Promise<PublicJwk>>()

  constructor(options: KmsSignerOptions) {
    const alg = options.alg ?? 'RS256'
    if (!Object.hasOwn(KMS_SIGNING_ALGORITHMS, alg)) {
      throw new Error(`KmsSigner: unsupported alg ${String(alg)}`)
    }
    if (!options.activeKeyId) throw new Error('KmsSigner: activeKeyId is required')
    this.alg = alg
    this.#client = options.client
    this.#activeKeyId = options.activeKeyId
    this.#keyIds = [...new Set([options.activeKeyId, ...(options.retiringKeyIds ?? [])])]
  }

  async keyId(): Promise<string> {
    return (await this.#publicKey(this.#activeKeyId)).kid
  }

  async publicKeys(): Promise<PublicJwk[]> {
    const keys = await Promise.all(this.#keyIds.map((keyId) => this.#publicKey(keyId)))
    // An alias and an ARN may name the same key: publish it once.
    const byKid = new Map<string, PublicJwk>()
    for (const key of keys) if (!byKid.has(key.kid)) byKid.set(key.kid, key)
    return [...byKid.values()]
  }

  async sign(signingInput: Uint8Array): Promise<Uint8Array> {
    const digest = createHash('sha256').update(signingInput).digest()
    let signature: Uint8Array | undefined
    try {
      const output = await this.#client.send(
        new SignCommand({
          KeyId: this.#activeKeyId,
          Message: digest,
          MessageType: 'DIGEST',
          SigningAlgorithm: KMS_SIGNING_ALGORITHMS[this.alg],
        }),
      )
      signature = output.Signature
    } catch (cause) {
      throw kmsFailure('Sign', cause)
    }
    if (!signature || signature.length === 0) throw new Error('kms Sign returned no signature')
    // KMS returns a high S about half the time: keep the one spelling verifiers accept.
    return this.alg === 'ES256' ? toLowS(derToJoseSignature(signature, 32)) : signature
  }

  #publicKey(keyId: string): Promise<PublicJwk> {
    let promise = this.#publicKeys.get(keyId)
    if (promise === undefined) {
      const fetched = this.#fetchPublicKey(keyId)
      this.#publicKeys.set(keyId, fetched)
      fetched.catch(() => {
        if (this.#publicKeys.get(keyId) === fetched) this.#publicKeys.delete(keyId)
      })
      promise = fetched
    }
    return promise
  }

  async #fetchPublicKey(keyId: string): Promise<PublicJwk> {
    let der: Uint8Array | undefined
    try {
      const output = await this.#client.send(new GetPublicKeyCommand({ KeyId: keyId }))
      der = output.PublicKey
    } catch (cause) {
      throw kmsFailure('GetPublicKey', cause)
    }
    if (!der || der.length === 0) throw new Error(`kms GetPublicKey returned no key for ${keyId}`)
    const key = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' })
    assertKeyFitsAlg(key, this.alg, `kms key ${keyId}`)
    const jwk = key.export({ format: 'jwk' })
    const kid = jwkThumbprint(publicMembers(jwk) as Parameters<typeof jwkThumbprint>[0])
    return Object.freeze({ ...publicMembers(jwk), kid, alg: this.alg, use: 'sig' as const })
  }
}

/** Only the public members of a node:crypto JWK export (it has no others for a public key). */
function publicMembers(jwk: JsonWebKey): { kty: string; [member: string]: string } {
  if (jwk.kty === 'RSA') return { kty: 'RSA', n: String(jwk.n), e: String(jwk.e) }
  if (jwk.kty === 'EC') {
    return { kty: 'EC', crv: String(jwk.crv), x: String(jwk.x), y: String(jwk.y) }
  }
  throw new Error(`unsupported JWK kty ${String(jwk.kty)}`)
}

/**
 * Every KMS failure (throttling, internal error, disabled or unavailable key,
 * timeout, network) becomes a 503: nothing was committed, a retry is safe. The
 * detail names the operation and the error, never the key material or input.
 */
export function kmsFailure(operation: string, cause: unknown): TemporarilyUnavailable {
  return new TemporarilyUnavailable(`kms ${operation} failed: ${errorName(cause)}`, { cause })
}

function errorName(error: unknown): string {
  const { name, code } = (typeof error === 'object' && error !== null ? error : {}) as {
    name?: unknown
    code?: unknown
  }
  // Network errors from node are plain `Error`s with a `code` such as ECONNRESET.
  const label = name !== 'Error' && typeof name === 'string' ? name : code
  return typeof label === 'string' && /^[\w.-]{1,64}$/.test(label) ? label : 'UnknownError'
}

/**
 * Converts a DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (what
 * KMS returns) to the JWS form: R and S as unsigned big-endian integers, each
 * left-padded to `size` bytes (32 for ES256), concatenated (RFC 7518 §3.4).
 * Throws on anything that is not strict DER of two positive integers that fit.
 */
export function derToJoseSignature(der: Uint8Array, size = 32): Uint8Array {
  const fail = (why: string): never => {
    throw new Error(`malformed DER ECDSA signature: ${why}`)
  }
  let offset = 0
  const byte = (): number => {
    if (offset >= der.length) fail('truncated')
    return der[offset++] as number
  }
  const length = (): number => {
    const first = byte()
    if (first < 0x80) return first
    if (first !== 0x81) fail('unsupported length encoding')
    const value = byte()
    if (value < 0x80) fail('non-minimal length')
    return value
  }
  const integer = (): Uint8Array => {
    if (byte() !== 0x02) fail('expected INTEGER')
    const len = length()
    if (len === 0) fail('empty INTEGER')
    if (offset + len > der.length) fail('truncated INTEGER')
    let value = der.subarray(offset, offset + len)
    offset += len
    if ((value[0] as number) & 0x80) fail('negative INTEGER')
    if (value[0] === 0 && len > 1 && !((value[1] as number) & 0x80)) fail('non-minimal INTEGER')
    while (value.length > 0 && value[0] === 0) value = value.subarray(1)
    if (value.length === 0) fail('zero INTEGER')
    if (value.length > size) fail(`INTEGER longer than ${size} bytes`)
    return value
  }

  if (byte() !== 0x30) fail('expected SEQUENCE')
  const sequenceLength = length()
  if (offset + sequenceLength !== der.length) fail('SEQUENCE length does not match input')
  const r = integer()
  const s = integer()
  if (offset !== der.length) fail('trailing bytes in SEQUENCE')

  const jose = new Uint8Array(2 * size)
  jose.set(r, size - r.length)
  jose.set(s, 2 * size - s.length)
  return jose
}
