import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms'
import type { GraceKey, GraceKeys } from '../core/ports.js'
import { kmsFailure } from './kms-signer.js'

export interface KmsGraceKeysOptions {
  readonly client: KMSClient
  /** The symmetric KMS key that wraps the data keys (`GRACE_KEY_ID`). */
  readonly keyId: string
}

/** Binds every data key to this use: KMS refuses to unwrap it for anything else. */
const CONTEXT = { purpose: 'rotating-token-service grace child' }

/** Wrapped keys remembered per container: each container seals under one. */
const MAX_OPENED = 64

/**
 * The server's grace keys as KMS data keys (docs/design.md "Grace child"). A
 * container asks KMS for one data key (`GenerateDataKey`, AES-256) and seals
 * every child under it; the seal stores the key wrapped by the KMS key. A
 * grace replay that lands on another container unwraps it once
 * (`Decrypt`). A copy of the table holds only wrapped keys, which only the
 * token function's role may unwrap.
 *
 * The constructor does no I/O. A failed call is forgotten, so the next one
 * retries; KMS failures become 503s (nothing was written yet).
 */
export class KmsGraceKeys implements GraceKeys {
  readonly #client: KMSClient
  readonly #keyId: string
  #current: Promise<GraceKey> | undefined
  readonly #opened = new Map<string, Promise<Uint8Array | undefined>>()

  constructor(options: KmsGraceKeysOptions) {
    if (!options.keyId) throw new Error('KmsGraceKeys: keyId is required')
    this.#client = options.client
    this.#keyId = options.keyId
  }

  current(): Promise<GraceKey> {
    if (this.#current === undefined) {
      const generating = this.#generate()
      this.#current = generating
      generating.catch(() => {
        if (this.#current === generating) this.#current = undefined
      })
    }
    return this.#current
  }

  open(name: string): Promise<Uint8Array | undefined> {
    let opening = this.#opened.get(name)
    if (opening === undefined) {
      if (this.#opened.size >= MAX_OPENED) this.#opened.clear()
      opening = this.#unwrap(name)
      this.#opened.set(name, opening)
      const settled = opening
      settled.catch(() => {
        if (this.#opened.get(name) === settled) this.#opened.delete(name)
      })
    }
    return opening
  }

  async #generate(): Promise<GraceKey> {
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
    const { Plaintext: secret, CiphertextBlob: wrapped } = output
    if (secret?.length !== 32 || !wrapped?.length) {
      throw new Error('kms GenerateDataKey returned no 256-bit data key')
    }
    const key = { name: Buffer.from(wrapped).toString('base64url'), secret }
    // This container unwraps its own key without asking KMS.
    this.#opened.set(key.name, Promise.resolve(secret))
    return key
  }

  async #unwrap(name: string): Promise<Uint8Array | undefined> {
    try {
      const { Plaintext } = await this.#client.send(
        new DecryptCommand({
          KeyId: this.#keyId,
          CiphertextBlob: Buffer.from(name, 'base64url'),
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
