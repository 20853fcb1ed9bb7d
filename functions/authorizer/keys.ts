import { createPublicKey, type KeyObject } from 'node:crypto'
import type { Clock } from '../core/clock.js'
import { assertKeyFitsAlg } from '../core/key-fit.js'
import type { PublicJwk, SigningAlgorithm } from '../core/ports.js'

/** A verification key, parsed once: `node:crypto` verifies with it directly. */
export interface VerificationKey {
  readonly kid: string
  readonly alg: SigningAlgorithm
  readonly key: KeyObject
}

export interface KeySetOptions {
  /** Where the keys come from (KMS `GetPublicKey`, or the local key). Called afresh each time. */
  readonly fetch: () => Promise<readonly PublicJwk[]>
  readonly clock: Clock
  /** An unknown `kid` refreshes the set at most this often. @default 60 */
  readonly refreshIntervalSeconds?: number
  /**
   * A set older than this is fetched again on the next request, so that a key
   * removed from the JWKS (a compromised one) stops verifying in warm containers
   * too. If that fetch fails, the set in hand is kept. @default 300 (the JWKS max-age)
   */
  readonly maxAgeSeconds?: number
}

/**
 * The authorizer's keys, loaded once per container and kept as `KeyObject`s.
 * A `kid` it does not know triggers one refresh of the whole set, at most once
 * per interval (so a stream of forged `kid`s costs KMS one call a minute);
 * a refresh replaces the set, so a key removed from the stack stops verifying.
 */
export class KeySet {
  readonly #fetch: () => Promise<readonly PublicJwk[]>
  readonly #clock: Clock
  readonly #intervalMs: number
  readonly #maxAgeMs: number
  #keys = new Map<string, VerificationKey>()
  #loaded = false
  /** When the set in hand was fetched. */
  #loadedAt = 0
  /** When an unknown `kid` last refreshed the set (the first load does not count). */
  #lastRefresh: number | undefined
  #loading: Promise<void> | undefined

  constructor(options: KeySetOptions) {
    this.#fetch = options.fetch
    this.#clock = options.clock
    this.#intervalMs = (options.refreshIntervalSeconds ?? 60) * 1000
    this.#maxAgeMs = (options.maxAgeSeconds ?? 300) * 1000
  }

  /** The key for `kid` if it is loaded and the set is fresh; no I/O. */
  get(kid: string): VerificationKey | undefined {
    if (this.#loaded && this.#clock.now() - this.#loadedAt >= this.#maxAgeMs) return undefined
    return this.#keys.get(kid)
  }

  /**
   * The key for `kid`, loading the set on first use and refreshing it (at most
   * once per interval) when `kid` is unknown. Rejects only if the set has never
   * loaded; a failed refresh keeps the keys already known.
   */
  async find(kid: string): Promise<VerificationKey | undefined> {
    const now = this.#clock.now()
    if (this.#loaded && now - this.#loadedAt >= this.#maxAgeMs) {
      // A failed refetch keeps the set in hand and is tried again a refresh interval later.
      await this.load().catch(() => {
        this.#loadedAt = now - this.#maxAgeMs + this.#intervalMs
      })
    }
    const known = this.#keys.get(kid)
    if (known) return known
    if (!this.#loaded) {
      await this.load()
      return this.#keys.get(kid)
    }
    if (this.#lastRefresh === undefined || now - this.#lastRefresh >= this.#intervalMs) {
      this.#lastRefresh = now
      await this.load().catch(() => {})
    } else if (this.#loading) {
      await this.#loading.catch(() => {})
    }
    return this.#keys.get(kid)
  }

  /** Loads (or reloads) the set; concurrent callers share one fetch. */
  load(): Promise<void> {
    this.#loading ??= this.#reload().finally(() => {
      this.#loading = undefined
    })
    return this.#loading
  }

  async #reload(): Promise<void> {
    const jwks = await this.#fetch()
    const keys = new Map<string, VerificationKey>()
    for (const jwk of jwks) keys.set(jwk.kid, toVerificationKey(jwk))
    this.#keys = keys
    this.#loaded = true
    this.#loadedAt = this.#clock.now()
  }
}

/** Parses a published JWK, refusing one whose key does not fit its `alg`. */
export function toVerificationKey(jwk: PublicJwk): VerificationKey {
  const key = createPublicKey({ key: { ...jwk }, format: 'jwk' })
  assertKeyFitsAlg(key, jwk.alg, `published key ${jwk.kid}`)
  return { kid: jwk.kid, alg: jwk.alg, key }
}
