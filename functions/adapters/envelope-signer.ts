import { createPrivateKey, createPublicKey, type KeyObject, sign as signWith } from 'node:crypto'
import {
  DecryptCommand,
  GenerateDataKeyPairWithoutPlaintextCommand,
  type KMSClient,
} from '@aws-sdk/client-kms'
import { jwkThumbprint } from '../core/dpop.js'
import { toLowS } from '../core/es256.js'
import { assertKeyFitsAlg } from '../core/key-fit.js'
import type { PublicJwk, Signer, SigningAlgorithm } from '../core/ports.js'
import { kmsFailure } from './kms-signer.js'

/** A signing key's pair as stored: the public key, and the private key wrapped by KMS. */
export interface StoredKeyPair {
  readonly alg: SigningAlgorithm
  /** SubjectPublicKeyInfo, DER, base64. */
  readonly publicKey: string
  /** KMS's ciphertext blob of the PKCS #8 private key, base64. Useless without KMS. */
  readonly wrappedPrivateKey: string
  /**
   * `multi-region`: wrapped under the multi-Region key (`ENVELOPE_MULTI_REGION_KEY_ID`), so
   * every region unwraps it with its own copy. Absent: the single-Region key (`ENVELOPE_KEY_ID`).
   */
  readonly wrapping?: 'multi-region'
}

/**
 * Where envelope signing keys live (functions/adapters/dynamodb/signing-keys.ts):
 * one pair per key id, written once. With several regions, `createKeyPair` is decided in
 * one region (the primary's replica), so that two regions never keep two pairs for one id.
 */
export interface EnvelopeKeyStore {
  /** The pair stored for this key id, if any (a strongly consistent read). */
  findKeyPair(id: string): Promise<StoredKeyPair | undefined>
  /** Stores the pair unless one exists for this id; returns the one stored (this or the other). */
  createKeyPair(id: string, pair: StoredKeyPair): Promise<StoredKeyPair>
}

export interface EnvelopeSignerOptions {
  readonly client: KMSClient
  readonly store: EnvelopeKeyStore
  /** The single-Region symmetric KMS key that wraps the private keys (`ENVELOPE_KEY_ID`). */
  readonly wrappingKeyId?: string
  /**
   * With several regions, this region's copy of the multi-Region key that wraps them
   * (`ENVELOPE_MULTI_REGION_KEY_ID`): new pairs are wrapped under it when it is set.
   */
  readonly multiRegionKeyId?: string
  /** `<stack>/<construct id>` (`SIGNING_KEY_OWNER`): named in every key's encryption context. */
  readonly owner: string
  /** The id (as in `signingKeys`) of the key that signs. */
  readonly activeKeyId: string
  /** Ids of the keys that are published but never sign. */
  readonly retiringKeyIds?: readonly string[]
  /** @default 'RS256' */
  readonly alg?: SigningAlgorithm
}

/** The KMS key-pair spec of each JWS `alg`. */
export const KEY_PAIR_SPECS = { RS256: 'RSA_2048', ES256: 'ECC_NIST_P256' } as const

/**
 * The encryption context of a key id's private key: KMS unwraps it only with
 * this exact context, and the stack lets only `login` and `token` ask, only
 * for the keys they may sign with (IAM conditions on both entries).
 */
export const envelopeContext = (owner: string, id: string): Record<string, string> => ({
  owner,
  'signing-key': id,
})

/** A JWS signature with a private key in memory: RS256, or ES256 as 64-byte R||S with a low S. */
export function signInMemory(
  alg: SigningAlgorithm,
  key: KeyObject,
  signingInput: Uint8Array,
): Uint8Array {
  if (alg === 'RS256') return signWith('sha256', signingInput, key)
  // The one spelling verifiers accept: 64-byte R||S, low S.
  return toLowS(signWith('sha256', signingInput, { key, dsaEncoding: 'ieee-p1363' }))
}

/**
 * Signs in memory with a key pair KMS generated (docs/design.md "Keys",
 * envelope signing): `GenerateDataKeyPairWithoutPlaintext` under the stack's
 * symmetric key returns the public key and the private key wrapped, never in
 * plain; both are stored once per key id. A container unwraps the active
 * private key once (`Decrypt`, with an encryption context naming the key id
 * and the stack) and keeps it in memory as a `KeyObject` (the decrypted bytes
 * are zeroed once it is parsed): it is never logged, never in the
 * environment, never written. The `kid` is the
 * RFC 7638 thumbprint of the public key, as with KMS signing.
 *
 * The first of the functions that needs a key id's pair (the jwks function
 * publishing it, or login and token signing with it) generates it; a
 * conditional write makes every container agree on one pair.
 *
 * The constructor does no I/O. A failed load is forgotten, so the next call
 * retries; KMS failures become 503s.
 */
export class EnvelopeSigner implements Signer {
  readonly alg: SigningAlgorithm
  readonly #client: KMSClient
  readonly #store: EnvelopeKeyStore
  readonly #wrappingKeyId: string | undefined
  readonly #multiRegionKeyId: string | undefined
  readonly #owner: string
  readonly #activeKeyId: string
  readonly #keyIds: readonly string[]
  readonly #pairs = new Map<string, Promise<{ pair: StoredKeyPair; jwk: PublicJwk }>>()
  #privateKey: Promise<KeyObject> | undefined

  constructor(options: EnvelopeSignerOptions) {
    const alg = options.alg ?? 'RS256'
    if (!Object.hasOwn(KEY_PAIR_SPECS, alg)) {
      throw new Error(`EnvelopeSigner: unsupported alg ${String(alg)}`)
    }
    for (const [name, value] of Object.entries({
      activeKeyId: options.activeKeyId,
      'wrappingKeyId or multiRegionKeyId': options.wrappingKeyId || options.multiRegionKeyId,
      owner: options.owner,
    })) {
      if (!value) throw new Error(`EnvelopeSigner: ${name} is required`)
    }
    this.alg = alg
    this.#client = options.client
    this.#store = options.store
    this.#wrappingKeyId = options.wrappingKeyId || undefined
    this.#multiRegionKeyId = options.multiRegionKeyId || undefined
    this.#owner = options.owner
    this.#activeKeyId = options.activeKeyId
    this.#keyIds = [...new Set([options.activeKeyId, ...(options.retiringKeyIds ?? [])])]
  }

  async keyId(): Promise<string> {
    return (await this.#load(this.#activeKeyId)).jwk.kid
  }

  async publicKeys(): Promise<PublicJwk[]> {
    const loaded = await Promise.all(this.#keyIds.map((id) => this.#load(id)))
    return loaded.map(({ jwk }) => jwk)
  }

  /** Unwraps the active private key now (a container's init), so that no request waits for it. */
  async prepare(): Promise<void> {
    await this.#activePrivateKey()
  }

  async sign(signingInput: Uint8Array): Promise<Uint8Array> {
    return signInMemory(this.alg, await this.#activePrivateKey(), signingInput)
  }

  #activePrivateKey(): Promise<KeyObject> {
    if (this.#privateKey === undefined) {
      const unwrapping = this.#unwrap()
      this.#privateKey = unwrapping
      unwrapping.catch(() => {
        if (this.#privateKey === unwrapping) this.#privateKey = undefined
      })
    }
    return this.#privateKey
  }

  async #unwrap(): Promise<KeyObject> {
    const { pair } = await this.#load(this.#activeKeyId)
    // The key the pair records: a multi-Region pair unwraps under this region's copy.
    const wrappingKeyId =
      pair.wrapping === 'multi-region' ? this.#multiRegionKeyId : this.#wrappingKeyId
    if (wrappingKeyId === undefined) {
      throw new Error(
        `envelope key ${this.#activeKeyId} is wrapped under the ${pair.wrapping === 'multi-region' ? 'multi-Region key, but ENVELOPE_MULTI_REGION_KEY_ID' : 'single-Region key, but ENVELOPE_KEY_ID'} is not set`,
      )
    }
    let plaintext: Uint8Array | undefined
    try {
      const output = await this.#client.send(
        new DecryptCommand({
          KeyId: wrappingKeyId,
          CiphertextBlob: Buffer.from(pair.wrappedPrivateKey, 'base64'),
          EncryptionContext: envelopeContext(this.#owner, this.#activeKeyId),
        }),
      )
      plaintext = output.Plaintext
    } catch (cause) {
      throw kmsFailure('Decrypt', cause)
    }
    if (!plaintext?.length) throw new Error('kms Decrypt returned no private key')
    try {
      const der = Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength)
      const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
      // The pair must be the one published: a private key that is not the public key's refuses.
      const expected = createPublicKey({
        key: Buffer.from(pair.publicKey, 'base64'),
        format: 'der',
        type: 'spki',
      })
      const derived = createPublicKey(key).export({ format: 'der', type: 'spki' })
      if (!derived.equals(expected.export({ format: 'der', type: 'spki' }))) {
        throw new Error(
          `envelope key ${this.#activeKeyId}: private key does not match its public key`,
        )
      }
      return key
    } finally {
      plaintext.fill(0)
    }
  }

  #load(id: string): Promise<{ pair: StoredKeyPair; jwk: PublicJwk }> {
    let loading = this.#pairs.get(id)
    if (loading === undefined) {
      const started = this.#findOrCreate(id)
      this.#pairs.set(id, started)
      started.catch(() => {
        if (this.#pairs.get(id) === started) this.#pairs.delete(id)
      })
      loading = started
    }
    return loading
  }

  async #findOrCreate(id: string): Promise<{ pair: StoredKeyPair; jwk: PublicJwk }> {
    const pair = (await this.#store.findKeyPair(id)) ?? (await this.#generate(id))
    if (pair.alg !== this.alg) {
      throw new Error(`envelope key ${id} is ${pair.alg}, the stack signs ${this.alg}`)
    }
    const key = createPublicKey({
      key: Buffer.from(pair.publicKey, 'base64'),
      format: 'der',
      type: 'spki',
    })
    assertKeyFitsAlg(key, this.alg, `envelope key ${id}`)
    const jwk = key.export({ format: 'jwk' })
    const members =
      jwk.kty === 'RSA'
        ? { kty: 'RSA', n: String(jwk.n), e: String(jwk.e) }
        : { kty: 'EC', crv: String(jwk.crv), x: String(jwk.x), y: String(jwk.y) }
    const kid = jwkThumbprint(members as Parameters<typeof jwkThumbprint>[0])
    return { pair, jwk: Object.freeze({ ...members, kid, alg: this.alg, use: 'sig' as const }) }
  }

  async #generate(id: string): Promise<StoredKeyPair> {
    // Under the multi-Region key when there is one: every region can unwrap the pair.
    const multiRegion = this.#multiRegionKeyId !== undefined
    let output: { PublicKey?: Uint8Array; PrivateKeyCiphertextBlob?: Uint8Array }
    try {
      output = await this.#client.send(
        new GenerateDataKeyPairWithoutPlaintextCommand({
          KeyId: this.#multiRegionKeyId ?? this.#wrappingKeyId,
          KeyPairSpec: KEY_PAIR_SPECS[this.alg],
          EncryptionContext: envelopeContext(this.#owner, id),
        }),
      )
    } catch (cause) {
      throw kmsFailure('GenerateDataKeyPairWithoutPlaintext', cause)
    }
    const { PublicKey: publicKey, PrivateKeyCiphertextBlob: wrapped } = output
    if (!publicKey?.length || !wrapped?.length) {
      throw new Error('kms GenerateDataKeyPairWithoutPlaintext returned no key pair')
    }
    // Another container may have stored one first: every container uses that one.
    return this.#store.createKeyPair(id, {
      alg: this.alg,
      publicKey: Buffer.from(publicKey).toString('base64'),
      wrappedPrivateKey: Buffer.from(wrapped).toString('base64'),
      ...(multiRegion && { wrapping: 'multi-region' as const }),
    })
  }
}
