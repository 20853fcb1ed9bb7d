/**
 * Expiry tracking: refreshes the access token shortly before it expires,
 * so that callers rarely wait for one, and again when a hidden page (whose
 * timers browsers throttle) becomes visible.
 */
import type { SharedTokens } from './tabs.js'
import type { Clock } from './transport.js'

/** setTimeout's limit. */
const MAX_TIMER_MS = 2_147_483_647

export interface RefreshTimerOptions {
  readonly clock: Clock
  /** False: `schedule` does nothing (the `autoRefresh: false` option). */
  readonly enabled: boolean
  /** The wait before a failed refresh is tried again. */
  readonly retryLaterMs: number
  /** The tokens to keep fresh, if any. */
  current(): SharedTokens | undefined
  /** Replaces the tokens `staleId` names. A rejection keeps them, to be tried again later. */
  refresh(staleId: string): Promise<unknown>
}

export interface RefreshTimer {
  /** (Re)arms the timer for the current tokens: shortly before they expire, or in `delayMs`. */
  schedule(delayMs?: number): void
  /** Disarms the timer until the next `schedule`. */
  cancel(): void
  /** Disarms it for good and stops watching the page. */
  close(): void
}

/** One timer per client, never keeping Node alive. */
export function createRefreshTimer(options: RefreshTimerOptions): RefreshTimer {
  const { clock } = options
  let timer: ReturnType<typeof setTimeout> | undefined
  let closed = false

  /** Refresh shortly before expiry, earlier by a random jitter so that clients spread out. */
  function schedule(delayMs?: number) {
    clearTimeout(timer)
    const current = options.current()
    if (!options.enabled || closed || !current) return
    let delay = delayMs
    if (delay === undefined) {
      const lifetime = current.expiresAt - current.issuedAt
      const margin = Math.min(30_000, lifetime * 0.2)
      const jitter = Math.random() * Math.min(10_000, lifetime * 0.1)
      delay = current.expiresAt - margin - jitter - clock.now()
    }
    timer = setTimeout(
      () => {
        options.refresh(current.id).catch(() => schedule(options.retryLaterMs)) // kept: try again later
      },
      Math.min(Math.max(0, delay), MAX_TIMER_MS),
    )
    ;(timer as { unref?: () => void }).unref?.()
  }

  const doc = (globalThis as { document?: DocumentLike }).document
  const onVisible = () => {
    if (doc?.visibilityState === 'visible') schedule() // background tabs' timers are throttled
  }
  doc?.addEventListener?.('visibilitychange', onVisible)

  return {
    schedule,
    cancel: () => clearTimeout(timer),
    close() {
      closed = true
      clearTimeout(timer)
      doc?.removeEventListener?.('visibilitychange', onVisible)
    },
  }
}

interface DocumentLike {
  readonly visibilityState?: string
  addEventListener?(type: string, listener: () => void): void
  removeEventListener?(type: string, listener: () => void): void
}
