import type { Clock } from '../core/clock.js'
import type { SessionStateReader } from '../core/ports.js'
import { sessionIsLive } from '../core/sessions.js'

export interface SessionCheckOptions {
  readonly reader: SessionStateReader
  readonly clock: Clock
  /** How long a verdict, live or not, is reused. @default 5 */
  readonly cacheSeconds?: number
  /** Verdicts kept at most; the oldest go first. @default 10000 */
  readonly maxEntries?: number
}

interface Verdict {
  readonly live: boolean
  readonly until: number
}

/**
 * Strict mode: is the token's session still live? One read of the session and
 * its user per `(sub, sid)`, its verdict cached for a few seconds, negative
 * verdicts too (so a flood of tokens from an ended session costs one read per
 * interval). Logout therefore ends access within `cacheSeconds`.
 */
export class SessionCheck {
  readonly #reader: SessionStateReader
  readonly #clock: Clock
  readonly #ttlMs: number
  readonly #maxEntries: number
  readonly #verdicts = new Map<string, Verdict>()
  readonly #pending = new Map<string, Promise<boolean>>()

  constructor(options: SessionCheckOptions) {
    this.#reader = options.reader
    this.#clock = options.clock
    this.#ttlMs = (options.cacheSeconds ?? 5) * 1000
    this.#maxEntries = options.maxEntries ?? 10_000
  }

  /** Rejects (TemporarilyUnavailable) when the store cannot be read: never a guess. */
  isLive(sub: string, sid: string): Promise<boolean> {
    const key = `${sub}/${sid}`
    const cached = this.#verdicts.get(key)
    if (cached && this.#clock.now() < cached.until) return Promise.resolve(cached.live)
    let pending = this.#pending.get(key)
    if (!pending) {
      pending = this.#read(key, sub, sid).finally(() => this.#pending.delete(key))
      this.#pending.set(key, pending)
    }
    return pending
  }

  async #read(key: string, sub: string, sid: string): Promise<boolean> {
    const { session, user } = await this.#reader.loadSessionState({ sub, sid })
    const now = this.#clock.now()
    const live = session !== undefined && session.sub === sub && sessionIsLive(session, user, now)
    if (this.#ttlMs > 0) {
      this.#verdicts.delete(key)
      if (this.#verdicts.size >= this.#maxEntries) {
        const oldest = this.#verdicts.keys().next().value
        if (oldest !== undefined) this.#verdicts.delete(oldest)
      }
      this.#verdicts.set(key, { live, until: now + this.#ttlMs })
    }
    return live
  }
}
