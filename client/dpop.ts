/**
 * DPoP on the client (RFC 9449): an ES256 key whose private half never
 * leaves WebCrypto (non-extractable), kept where the platform allows (IndexedDB
 * in browsers, so a reload and the origin's other tabs use the same key;
 * memory in Node; the OS keystore in React Native through `DpopKeyStore`),
 * and the proofs it signs for each request.
 */

import { withoutQuery } from './url.js'

/**
 * The parts of WebCrypto and IndexedDB used here, typed locally (as tabs.ts
 * types Web Locks): the package builds against no DOM or Node typings.
 */
interface KeyPairLike {
  readonly publicKey: unknown
  readonly privateKey: unknown
}
interface SubtleLike {
  generateKey(
    algorithm: { name: 'ECDSA'; namedCurve: 'P-256' },
    extractable: false,
    usages: string[],
  ): Promise<KeyPairLike>
  exportKey(
    format: 'jwk',
    key: unknown,
  ): Promise<{ kty?: string; crv?: string; x?: string; y?: string }>
  sign(
    algorithm: { name: 'ECDSA'; hash: 'SHA-256' },
    key: unknown,
    data: Uint8Array,
  ): Promise<ArrayBuffer>
  digest(algorithm: 'SHA-256', data: Uint8Array): Promise<ArrayBuffer>
}
interface CryptoLike {
  readonly subtle: SubtleLike
  getRandomValues(array: Uint8Array): Uint8Array
}
interface RequestLike<T> {
  readonly result: T
  readonly error: unknown
  onsuccess: (() => void) | null
  onerror: (() => void) | null
}
interface ObjectStoreLike {
  get(key: string): RequestLike<unknown>
  add(value: unknown, key: string): RequestLike<unknown>
  delete(key: string): RequestLike<unknown>
}
interface DatabaseLike {
  createObjectStore(name: string): unknown
  transaction(
    store: string,
    mode: 'readonly' | 'readwrite',
  ): {
    objectStore(name: string): ObjectStoreLike
  }
  close(): void
}
interface OpenRequestLike extends RequestLike<DatabaseLike> {
  onupgradeneeded: (() => void) | null
}
interface IndexedDbLike {
  open(name: string, version: number): OpenRequestLike
}

/** An ES256 public key as a proof's `jwk` header carries it: no other member. */
export interface EcPublicJwk {
  readonly kty: 'EC'
  readonly crv: 'P-256'
  readonly x: string
  readonly y: string
}

/** A key that signs proofs. Its private half need never be readable. */
export interface DpopKey {
  readonly publicJwk: EcPublicJwk
  /** ES256 over `data`: the 64-byte R||S signature (see `ecdsaDerToRaw` for DER keystores). */
  sign(data: Uint8Array): Promise<Uint8Array>
}

/**
 * Where the key lives. An adapter for a React Native keystore (Secure Enclave,
 * Android Keystore) implements these three methods over its native module.
 */
export interface DpopKeyStore {
  /** The stored key, if there is one. */
  load(): Promise<DpopKey | undefined>
  /**
   * Creates and stores a key. If another holder of the store (another tab)
   * stored one first, answers that one instead, so that all share one key.
   */
  create(): Promise<DpopKey>
  /** Deletes the key (at logout). */
  remove(): Promise<void>
}

/** What a proof is made for. */
export interface DpopProofInput {
  /** The request's method, for example `POST`. */
  readonly htm: string
  /** The request's URI; its query and fragment are left out of the proof. */
  readonly htu: string
  /** The access token the request carries (resource requests): sets `ath`. */
  readonly accessToken?: string
  /** The server's latest `DPoP-Nonce`, if it sent one. */
  readonly nonce?: string
  /**
   * When to date the proof (epoch ms): the server's time, where this device's
   * clock is known to be off. @default the `now` option's time
   */
  readonly issuedAt?: number
}

export interface Dpop {
  /** A fresh proof (new `jti`, `iat` now) for one request; creates the key on first use. */
  proof(input: DpopProofInput): Promise<string>
  /** The RFC 7638 thumbprint of the key: the `cnf.jkt` of the tokens bound to it. */
  thumbprint(): Promise<string>
  /** Deletes the key (logout); the next proof makes a new one. */
  clear(): Promise<void>
}

export interface DpopOptions {
  /** @default `indexedDbDpopKeyStore()` where IndexedDB exists, else `memoryDpopKeyStore()` */
  readonly store?: DpopKeyStore
  /** Epoch milliseconds, for `iat`. @default Date.now */
  readonly now?: () => number
}

/**
 * The DPoP handle a client signs its requests with. The store is read for each
 * proof (no copy of the key here), so that a key another tab created or
 * deleted is the one used.
 */
export function createDpop(options: DpopOptions = {}): Dpop {
  const store = options.store ?? defaultDpopKeyStore()
  const now = options.now ?? (() => Date.now())
  let creating: Promise<DpopKey> | undefined

  async function key(): Promise<DpopKey> {
    const stored = await store.load()
    if (stored) return stored
    // One creation at a time in this realm: concurrent first proofs share it.
    creating ??= store.create().finally(() => {
      creating = undefined
    })
    return creating
  }

  return {
    async proof(input) {
      return createDpopProof(await key(), input, input.issuedAt ?? now())
    },
    async thumbprint() {
      return jwkThumbprint((await key()).publicJwk)
    },
    async clear() {
      await store.remove()
    },
  }
}

/** Signs a proof (RFC 9449 §4.2) with `key` for `input`, at `now` (epoch ms). */
export async function createDpopProof(
  key: DpopKey,
  input: DpopProofInput,
  now: number,
): Promise<string> {
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: key.publicJwk }
  const claims = {
    jti: base64url(webCrypto().getRandomValues(new Uint8Array(16))),
    htm: input.htm,
    htu: withoutQuery(input.htu),
    iat: Math.floor(now / 1000),
    ...(input.accessToken === undefined ? {} : { ath: await sha256(input.accessToken) }),
    ...(input.nonce === undefined ? {} : { nonce: input.nonce }),
  }
  const signingInput = `${base64url(utf8(JSON.stringify(header)))}.${base64url(utf8(JSON.stringify(claims)))}`
  return `${signingInput}.${base64url(await key.sign(utf8(signingInput)))}`
}

/** RFC 7638: SHA-256 of the key's required members in order, base64url. */
export function jwkThumbprint(jwk: EcPublicJwk): Promise<string> {
  return sha256(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
}

/** A key kept in this realm only: gone on reload or exit. Node's default. */
export function memoryDpopKeyStore(): DpopKeyStore {
  let kept: DpopKey | undefined
  return {
    load: async () => kept,
    async create() {
      const made = await webCryptoKey(await generatePair())
      kept ??= made
      return kept
    },
    async remove() {
      kept = undefined
    },
  }
}

export interface IndexedDbStoreOptions {
  /** @default 'rotating-token-service' */
  readonly database?: string
  /** Which key in the database, for apps with several clients. @default 'dpop' */
  readonly name?: string
}

const OBJECT_STORE = 'keys'

/**
 * The key in IndexedDB: browsers store a non-extractable `CryptoKey` as it is,
 * without ever exposing its private half, and every tab of the origin sees it.
 */
export function indexedDbDpopKeyStore(options: IndexedDbStoreOptions = {}): DpopKeyStore {
  const database = options.database ?? 'rotating-token-service'
  const name = options.name ?? 'dpop'

  function open(): Promise<DatabaseLike> {
    const factory = (globalThis as { indexedDB?: IndexedDbLike }).indexedDB
    if (!factory) return Promise.reject(new Error('IndexedDB is not available here'))
    const request = factory.open(database, 1)
    request.onupgradeneeded = () => request.result.createObjectStore(OBJECT_STORE)
    return settled(request)
  }

  async function run<T>(
    mode: 'readonly' | 'readwrite',
    action: (store: ObjectStoreLike) => RequestLike<T>,
  ): Promise<T> {
    const db = await open()
    try {
      return await settled(action(db.transaction(OBJECT_STORE, mode).objectStore(OBJECT_STORE)))
    } finally {
      db.close()
    }
  }

  async function load(): Promise<DpopKey | undefined> {
    const pair = (await run('readonly', (store) => store.get(name))) as KeyPairLike | undefined
    return pair ? webCryptoKey(pair) : undefined
  }

  return {
    load,
    async create() {
      const pair = await generatePair()
      try {
        // `add`, not `put`: if another tab stored a key first, this fails and we take theirs.
        await run('readwrite', (store) => store.add(pair, name))
        return await webCryptoKey(pair)
      } catch (error) {
        if ((error as { name?: string }).name !== 'ConstraintError') throw error
        const theirs = await load()
        if (!theirs) throw error
        return theirs
      }
    },
    async remove() {
      await run('readwrite', (store) => store.delete(name))
    },
  }
}

/** IndexedDB in browsers, memory elsewhere. */
export function defaultDpopKeyStore(): DpopKeyStore {
  return (globalThis as { indexedDB?: unknown }).indexedDB
    ? indexedDbDpopKeyStore()
    : memoryDpopKeyStore()
}

/**
 * An ECDSA P-256 signature in DER (what iOS and Android keystores answer) as
 * the 64-byte R||S a JWS carries (RFC 7518 §3.4).
 */
export function ecdsaDerToRaw(der: Uint8Array): Uint8Array {
  // SEQUENCE { INTEGER r, INTEGER s }; each INTEGER may carry a leading 0 byte.
  if (der[0] !== 0x30) throw new Error('not a DER ECDSA signature')
  let offset = der[1] === 0x81 ? 3 : 2
  const raw = new Uint8Array(64)
  for (const at of [0, 32]) {
    if (der[offset] !== 0x02) throw new Error('not a DER ECDSA signature')
    const length = der[offset + 1] as number
    let value = der.subarray(offset + 2, offset + 2 + length)
    while (value.length > 32 && value[0] === 0) value = value.subarray(1)
    if (value.length > 32) throw new Error('not a P-256 signature')
    raw.set(value, at + 32 - value.length)
    offset += 2 + length
  }
  return raw
}

function webCrypto(): CryptoLike {
  const crypto = (globalThis as { crypto?: CryptoLike }).crypto
  if (!crypto?.subtle) throw new Error('DPoP needs WebCrypto (globalThis.crypto.subtle)')
  return crypto
}

function generatePair(): Promise<KeyPairLike> {
  // Non-extractable: the private key can sign here, and never be read out.
  return webCrypto().subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ])
}

async function webCryptoKey(pair: KeyPairLike): Promise<DpopKey> {
  const { kty, crv, x, y } = await webCrypto().subtle.exportKey('jwk', pair.publicKey)
  const publicJwk = { kty, crv, x, y } as EcPublicJwk
  return {
    publicJwk,
    async sign(data) {
      const signature = await webCrypto().subtle.sign(
        { name: 'ECDSA', hash: 'SHA-256' },
        pair.privateKey,
        data,
      )
      return new Uint8Array(signature)
    },
  }
}

function settled<T>(request: RequestLike<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result)
    request.onerror = () => reject(request.error)
  })
}

async function sha256(text: string): Promise<string> {
  const digest = await webCrypto().subtle.digest('SHA-256', utf8(text))
  return base64url(new Uint8Array(digest))
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text)
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** Base64url without padding, by hand: `btoa` is missing in some React Native engines. */
function base64url(bytes: Uint8Array): string {
  let out = ''
  for (let i = 0; i < bytes.length; i += 3) {
    const chunk = ((bytes[i] as number) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0)
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6))
    for (let j = 0; j < chars; j++) out += ALPHABET[(chunk >> (18 - 6 * j)) & 63]
  }
  return out
}
