/**
 * Stateless DPoP nonces (RFC 9449 §8): a nonce is the HMAC of a time slot
 * under a key every function instance shares, so issuing one writes nothing
 * and any instance can check it. A nonce issued in slot k is accepted in
 * slots k and k + 1: it lives between one and two slots.
 *
 * The key comes from the stack (docs/design.md "DPoP"); changing it only
 * costs each client one `use_dpop_nonce` round trip.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { Clock } from './clock.js'
import type { DpopNonceCheck } from './dpop.js'

export interface DpopNonceOptions {
  /** The length of a time slot. A nonce lives one to two slots. @default 300 */
  readonly slotSeconds?: number
}

/** At least this many bytes of key: the HMAC's own strength. */
export const MIN_NONCE_KEY_BYTES = 32

/** Truncated to 128 bits: unguessable, and short in a header. */
const NONCE_BYTES = 16

export class DpopNonces implements DpopNonceCheck {
  readonly #key: Uint8Array
  readonly #clock: Clock
  readonly #slotMs: number
  /** The nonces of the last two slots computed: a check costs two string compares. */
  #cache: { slot: number; nonce: Buffer }[] = []

  constructor(key: Uint8Array, clock: Clock, options: DpopNonceOptions = {}) {
    if (key.length < MIN_NONCE_KEY_BYTES) {
      throw new Error(`the DPoP nonce key must have at least ${MIN_NONCE_KEY_BYTES} bytes`)
    }
    this.#key = Uint8Array.from(key)
    this.#clock = clock
    this.#slotMs = (options.slotSeconds ?? 300) * 1000
  }

  /** The current slot's nonce. */
  issue(): string {
    return this.#nonceOf(this.#slot()).toString('base64url')
  }

  /** True for the current or the previous slot's nonce. */
  check(nonce: string): boolean {
    const presented = Buffer.from(nonce, 'base64url')
    if (presented.length !== NONCE_BYTES || presented.toString('base64url') !== nonce) return false
    const slot = this.#slot()
    return (
      timingSafeEqual(presented, this.#nonceOf(slot)) ||
      timingSafeEqual(presented, this.#nonceOf(slot - 1))
    )
  }

  #slot(): number {
    return Math.floor(this.#clock.now() / this.#slotMs)
  }

  #nonceOf(slot: number): Buffer {
    const cached = this.#cache.find((entry) => entry.slot === slot)
    if (cached) return cached.nonce
    // Domain-separated, so the key could never yield a MAC for some other use.
    const nonce = createHmac('sha256', this.#key)
      .update(`dpop-nonce:${slot}`)
      .digest()
      .subarray(0, NONCE_BYTES)
    this.#cache = [{ slot, nonce }, ...this.#cache].slice(0, 2)
    return nonce
  }
}
