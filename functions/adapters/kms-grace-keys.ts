import { createHash } from 'node:crypto'
import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms'
import type { GraceKey, GraceKeys } from '../core/ports.js'
import { kmsFailure } from './kms-signer.js'

/**
 * Where the wrapped grace keys are kept, under the short reference a seal
 * carries (functions/adapters/dynamodb/grace-keys.ts), so that a seal need
 * not hold the whole KMS ciphertext blob.
 */
export interface GraceKeyDirectory {
  /** Keeps a wrapped key under its reference; resolves once it is stored. */
  saveGraceKey(ref: string, wrapped: string, at: number): Promise<void>
  /** The wrapped key a reference names, if any. */
  findGraceKey(ref: string): Promise<string | undefined>
}

export interface KmsGraceKeysOptions {
  readonly client: KMSClient
  /** The symmetric KMS key that wraps the data keys (`GRACE_KEY_ID`). */
  readonly keyId: string
  readonly directory: GraceKeyDirectory
  /** @default Date.now */
  readonly now?: () => number
}

/** Binds every data key to this use: KMS refuses to unwrap it for anything else. */
const CONTEXT = { purpose: 'rotating-token-service grace child' }

/** Wrapped keys remembered per container: each container seals under one at a time. */
const MAX_OPENED = 64

/**
 * How long a container seals under one data key. Its directory entry outlives
 * this by days (items.ts GRACE_KEY_RETENTION_MS), and a seal is opened only
 * within its grace window (at most 60 s) after it was made.
 */
export const GRACE_KEY_LIFETIME_MS = 3_600_000

/** A reference: 16 bytes of the wrapped key's SHA-256, base64url (22 characters). */
const REFERENCE = /^[A-Za-z0-9_-]{22}$/

/**
 * The server's grace keys as KMS data keys (docs/design.md "Grace child"). A
 * container asks KMS for one data key (`GenerateDataKey`, AES-256), stores it
 * wrapped in the directory under a short reference, and seals every child
 * under it for an hour; the seal names the reference. A grace replay that
 * lands on another container reads the wrapped key and unwraps it once
 * (`Decrypt`). A copy of the table holds only wrapped keys, which only the
 * token function's role may unwrap. Seals made before issue 17 name the
 * wrapped key itself (v2), and still open.
 *
 * The constructor does no I/O. A failed call is forgotten, so the next one
 * retries; KMS failures become 503s (nothing was written yet).
 */
export class KmsGraceKeys implements GraceKeys {
  readonly #client: KMSClient
  readonly #keyId: string
  readonly #directory: GraceKeyDirectory
  readonly #now: () => number
  #current: { readonly key: Promise<GraceKey>; readonly until: number } | undefined
  readonly #opened = new Map<string, Promise<Uint8Array | undefined>>()

  constructor(options: KmsGraceKeysOptions) {
    if (!options.keyId) throw new Error('KmsGraceKeys: keyId is required')
    this.#client = options.client
    this.#keyId = options.keyId
    this.#directory = options.directory
    this.#now = options.now ?? Date.now
  }

  current(): Promise<GraceKey> {
    const now = this.#now()
    if (this.#current === undefined || now >= this.#current.until) {
      const generating = this.#generate(now)
      const current = { key: generating, until: now + GRACE_KEY_LIFETIME_MS }
      this.#current = current
      generating.catch(() => {
        if (this.#current === current) this.#current = undefined
      })
    }
    return this.#current.key
  }

  open(name: string): Promise<Uint8Array | undefined> {
    let opening = this.#opened.get(name)
    if (opening === undefined) {
      if (this.#opened.size >= MAX_OPENED) this.#opened.clear()
      opening = this.#unwrapNamed(name)
      this.#opened.set(name, opening)
      const settled = opening
      settled.catch(() => {
        if (this.#opened.get(name) === settled) this.#opened.delete(name)
      })
    }
    return opening
  }

  async #generate(now: number): Promise<GraceKey> {
    let output: { Plaintext?: Uint8Array; CiphertextBlob?: Uint8Array }
    try {
      output = await this.#client.send(
        new GenerateDataKeyCommand({
          KeyId: this.#keyId,
          KeySpec: 'AES_256',
          EncryptionContext: CONTEXT,
        }),
      )
    } catch (cause) {
      throw kmsFailure('GenerateDataKey', cause)
    }
    const { Plaintext: secret, CiphertextBlob: blob } = output
    if (secret?.length !== 32 || !blob?.length) {
      throw new Error('kms GenerateDataKey returned no 256-bit data key')
    }
    const wrapped = Buffer.from(blob).toString('base64url')
    const name = createHash('sha256').update(blob).digest().subarray(0, 16).toString('base64url')
    // Stored before any seal names it, so that every other container can find it.
    await this.#directory.saveGraceKey(name, wrapped, now)
    // This container unwraps its own key without asking anyone.
    this.#opened.set(name, Promise.resolve(secret))
    return { name, secret }
  }

  /** A reference is looked up in the directory first; a v2 seal's name is the wrapped key. */
  async #unwrapNamed(name: string): Promise<Uint8Array | undefined> {
    if (!REFERENCE.test(name)) return this.#unwrap(name)
    const wrapped = await this.#directory.findGraceKey(name)
    if (wrapped === undefined) return undefined
    // The reference must be this key's: a directory entry cannot stand for another key.
    const blob = Buffer.from(wrapped, 'base64url')
    const ref = createHash('sha256').update(blob).digest().subarray(0, 16).toString('base64url')
    return ref === name ? this.#unwrap(wrapped) : undefined
  }

  async #unwrap(wrapped: string): Promise<Uint8Array | undefined> {
    try {
      const { Plaintext } = await this.#client.send(
        new DecryptCommand({
          KeyId: this.#keyId,
          CiphertextBlob: Buffer.from(wrapped, 'base64url'),
          EncryptionContext: CONTEXT,
        }),
      )
      return Plaintext?.length === 32 ? Plaintext : undefined
    } catch (cause) {
      // Not a key of ours (another KMS key, another context, damaged): nothing to open.
      if (isNamed(cause, 'InvalidCiphertextException', 'IncorrectKeyException')) return undefined
      throw kmsFailure('Decrypt', cause)
    }
  }
}

const isNamed = (error: unknown, ...names: string[]): boolean =>
  error instanceof Error && names.includes(error.name)
