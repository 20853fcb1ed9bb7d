import type { Dpop } from './dpop.js'
import { TokenClientError } from './errors.js'
import { createEmitter, type TokenClientEvents } from './events.js'
import { errorFromResponse, rejectsToken } from './responses.js'
import { createSession } from './session.js'
import { isCookieStorage, memoryStorage, type StorageOption } from './storage.js'
import {
  type Clock,
  createTransport,
  type FetchLike,
  formEncode,
  type RetryOptions,
  retrySettings,
} from './transport.js'

export interface TokenClientOptions {
  /** The token service, for example `https://auth.example.com` (no trailing slash needed). */
  readonly baseUrl: string
  readonly clientId: string
  /** Where the refresh token lives. @default memoryStorage() */
  readonly storage?: StorageOption
  /** @default globalThis.fetch */
  readonly fetch?: FetchLike
  /** @default Date.now */
  readonly clock?: Clock
  /** Scope to ask for at login. @default all of the client's scopes */
  readonly scope?: string
  readonly retry?: RetryOptions
  /** Refresh shortly before the access token expires. @default true */
  readonly autoRefresh?: boolean
  /** Share refreshes between the tabs of a browser (Web Locks + BroadcastChannel). @default true in a page */
  readonly crossTab?: boolean
  /** Key of the refresh token in `storage`. @default `rotating-token.<clientId>.refresh_token` */
  readonly storageKey?: string
  /**
   * DPoP (RFC 9449): bind the tokens to a non-extractable ES256 key of this
   * client, so that a stolen token is useless without it. `createDpop()` keeps
   * the key in IndexedDB in browsers (shared by the origin's tabs) and in
   * memory elsewhere; `createDpop({ store })` takes a `DpopKeyStore` (a React
   * Native keystore). Login, refresh and `fetch` send proofs; logout deletes
   * the key. Passed in rather than switched on, so that an app without DPoP
   * bundles none of its code.
   * @default none: bearer tokens
   */
  readonly dpop?: Dpop
}

export interface TokenClient {
  /** Logs in and starts a session. Rejects with `TokenClientError` (`invalid_grant` for bad credentials). */
  login(username: string, password: string): Promise<void>
  /**
   * `fetch` with `Authorization: Bearer <access token>`. A relative URL is
   * resolved against `baseUrl`. After a 401 `invalid_token` it refreshes and
   * sends the request once more. Rejects with `login_required` without a session.
   */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>
  /** A valid access token, refreshed first if needed; null when there is no session. */
  getAccessToken(): Promise<string | null>
  /**
   * `POST /me/password`: changes the user's password. This session goes on;
   * every other session of the user ends. One attempt, like `login`: rejects
   * with `TokenClientError`, `invalid_grant` for a wrong current password (the
   * session is kept), `invalid_request` for a new password outside 8 to 1,024
   * bytes, `slow_down` (transient, with `retryAfterMs`) while the account is
   * in back-off, `login_required` without a session.
   */
  changePassword(currentPassword: string, newPassword: string): Promise<void>
  /** Ends the session on the server (`/revoke`) and forgets it here, in every tab. */
  logout(): Promise<void>
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<E extends keyof TokenClientEvents>(
    event: E,
    listener: (event: TokenClientEvents[E]) => void,
  ): () => void
  /** When the current access token expires (epoch ms on the client's clock), or null. */
  readonly expiresAt: number | null
  /**
   * The RFC 7638 thumbprint of the DPoP key (the `cnf.jkt` of the tokens bound
   * to it); null without the `dpop` option. Creates the key if there is none yet.
   */
  dpopThumbprint(): Promise<string | null>
  /** Stops timers and leaves the tab channel. The client is unusable afterwards. */
  close(): void
}

/**
 * A client for the token service: login, an always-valid access token, one
 * single-flight refresh that every caller waits on, and a session that only
 * `invalid_grant` ends. No runtime dependencies; runs in browsers, React
 * Native and Node 20+.
 */
export function createTokenClient(options: TokenClientOptions): TokenClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, '')
  const { clientId } = options
  const storage = options.storage ?? memoryStorage()
  const clock = options.clock ?? { now: () => Date.now() }
  const retry = retrySettings(options.retry)
  const inPage = typeof (globalThis as { document?: unknown }).document !== 'undefined'
  const dpop = options.dpop

  const transport = createTransport({
    baseUrl,
    clientId,
    fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    clock,
    cookieMode: isCookieStorage(storage),
    scope: options.scope,
    retry,
    dpop,
  })
  const events = createEmitter()
  const session = createSession({
    transport,
    clock,
    store: isCookieStorage(storage) ? undefined : storage,
    sessionHint:
      isCookieStorage(storage) && storage.sessionHint
        ? { storage: storage.sessionHint, key: `rotating-token.${clientId}.cookie_session` }
        : undefined,
    storageKey: options.storageKey ?? `rotating-token.${clientId}.refresh_token`,
    tabsName: `rotating-token:${baseUrl}:${clientId}`,
    crossTab: options.crossTab ?? inPage,
    autoRefresh: options.autoRefresh ?? true,
    retryLaterMs: retry.maxDelayMs,
    emit: events.emit,
  })

  async function authorizedFetch(
    input: string | URL | Request,
    init?: RequestInit,
  ): Promise<Response> {
    const tokens = await session.getTokens()
    if (!tokens) throw new TokenClientError('login_required', 'there is no session: log in first')
    const response = await transport.send(input, init, tokens.accessToken, tokens.tokenType)
    if (!rejectsToken(response)) return response
    // The server no longer accepts this token (its clock is ahead, or keys
    // rotated): one refresh, shared with every other caller, and one retry.
    const next = await session.refresh(tokens.id)
    if (!next) return response
    await response.body?.cancel().catch(() => {})
    return transport.send(input, init, next.accessToken, next.tokenType)
  }

  return {
    login: session.login,

    fetch: authorizedFetch,

    async changePassword(currentPassword, newPassword) {
      // Through `fetch`: a token the server refuses is refreshed once, and the form sent again.
      const response = await authorizedFetch('/me/password', {
        method: 'POST',
        headers: {
          'Content-Type': 'application/x-www-form-urlencoded',
          Accept: 'application/json',
        },
        body: formEncode({ current_password: currentPassword, new_password: newPassword }),
      })
      if (response.ok) {
        await response.body?.cancel().catch(() => {})
        return
      }
      throw errorFromResponse(response, await response.text(), clock)
    },

    getAccessToken: session.getAccessToken,

    async logout() {
      try {
        await session.logout()
      } finally {
        // The key goes with the session, even when the server could not be told.
        await dpop?.clear()
      }
    },

    on: events.on,

    async dpopThumbprint() {
      return dpop ? dpop.thumbprint() : null
    },

    get expiresAt() {
      return session.tokens?.expiresAt ?? null
    },

    close: session.close,
  }
}
