/** What the client tells the app: a new access token, or the end of the session. */
import type { EndReason } from './tabs.js'

export interface RefreshedEvent {
  readonly accessToken: string
  /** Epoch ms on the client's clock, from the server's `expires_in`. */
  readonly expiresAt: number
  /** How the token came: a login, a refresh by this client, or a refresh by another tab. */
  readonly source: 'login' | 'refresh' | 'other-tab'
}

export interface SessionExpiredEvent {
  /**
   * `invalid_grant`: the server ended the session (revoked, logged out
   * everywhere, timed out, reuse detected, user disabled). `logout`: another
   * tab of this browser logged out.
   */
  readonly reason: EndReason
}

export interface TokenClientEvents {
  /** A new access token is available (after a login, a refresh, or from another tab). */
  refreshed: RefreshedEvent
  /** The session this client had is over: show the login. Fires once per session. */
  'session-expired': SessionExpiredEvent
}

/** Hands an event to every listener of its kind. */
export type Emit = <E extends keyof TokenClientEvents>(
  event: E,
  payload: TokenClientEvents[E],
) => void

export interface Emitter {
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<E extends keyof TokenClientEvents>(
    event: E,
    listener: (event: TokenClientEvents[E]) => void,
  ): () => void
  readonly emit: Emit
}

/** The listeners of one client. A listener that throws is reported and does not stop the others. */
export function createEmitter(): Emitter {
  const listeners: { [E in keyof TokenClientEvents]: Set<(e: TokenClientEvents[E]) => void> } = {
    refreshed: new Set(),
    'session-expired': new Set(),
  }
  return {
    on(event, listener) {
      const set = listeners[event] as Set<typeof listener>
      set.add(listener)
      return () => {
        set.delete(listener)
      }
    },
    emit(event, payload) {
      for (const listener of listeners[event]) {
        try {
          listener(payload)
        } catch (error) {
          // A listener's bug must not break the session; report it as the platform does.
          const report = (globalThis as { reportError?: (e: unknown) => void }).reportError
          if (report) report(error)
          else setTimeout(() => Promise.reject(error))
        }
      }
    },
  }
}
