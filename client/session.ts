/**
 * The session as this client knows it: the current tokens, the one refresh
 * that every caller waits on, the refresh token in storage, and the other
 * tabs of the browser. Only `invalid_grant` or a logout ends it; transient
 * failures keep it.
 */
import { HOME_UNREACHABLE_DESCRIPTION, TokenClientError } from './errors.js'
import type { Emit, RefreshedEvent } from './events.js'
import { createRefreshTimer } from './refresh-timer.js'
import type { TokenResponse } from './responses.js'
import type { TokenStorage } from './storage.js'
import { createTabs, type EndReason, type SharedTokens } from './tabs.js'
import type { Clock, Transport } from './transport.js'

/** Tokens this close to expiry are refreshed before use. */
const EXPIRY_SLACK_MS = 5_000

/** What the session is known to be. `unknown`: maybe (a cookie or stored token not tried yet). */
type Phase = 'unknown' | 'active' | 'none'

export interface SessionOptions {
  readonly transport: Transport
  readonly clock: Clock
  /** Holds the refresh token in body mode; undefined in cookie mode, where the cookie does. */
  readonly store: TokenStorage | undefined
  /** Cookie mode: where a flag says a cookie session may exist (`cookieStorage`). */
  readonly sessionHint?: { readonly storage: TokenStorage; readonly key: string } | undefined
  readonly storageKey: string
  /** Names the lock and the channel this client shares with its other tabs. */
  readonly tabsName: string
  readonly crossTab: boolean
  readonly autoRefresh: boolean
  /** The wait before a failed automatic refresh is tried again. */
  readonly retryLaterMs: number
  readonly emit: Emit
}

export interface Session {
  /** The tokens in use, possibly expired; undefined without a session. */
  readonly tokens: SharedTokens | undefined
  /** Logs in and starts a new session; rejects with `TokenClientError`. */
  login(username: string, password: string): Promise<void>
  /** A valid access token, refreshed first if needed; null when there is no session. */
  getAccessToken(): Promise<string | null>
  /** The same, with its id and token type. */
  getTokens(): Promise<SharedTokens | null>
  /**
   * Replaces the tokens `staleId` names, once for every caller and every tab.
   * Resolves to undefined when the session is over.
   */
  refresh(staleId: string | undefined): Promise<SharedTokens | undefined>
  /** Forgets the session here and in every tab, then revokes it on the server. */
  logout(): Promise<void>
  /** Stops the timer and leaves the tab channel. */
  close(): void
}

/** The session state of one client; see `SessionOptions`. */
export function createSession(options: SessionOptions): Session {
  const { transport, clock, store, storageKey, emit } = options
  const cookieMode = store === undefined
  const hint = cookieMode ? options.sessionHint : undefined
  let tokens: SharedTokens | undefined
  let phase: Phase = 'unknown'
  /** Bumped when a session starts or ends here: answers for an older one are dropped. */
  let epoch = 0
  let inflight: Promise<SharedTokens | undefined> | undefined
  let closed = false

  const tabs = createTabs(
    options.tabsName,
    {
      onTokens(shared) {
        if (tokens && (shared.id === tokens.id || shared.issuedAt < tokens.issuedAt)) return
        adopt(shared, 'other-tab')
      },
      onEnded(reason) {
        void forget(reason, { tellTabs: false })
      },
    },
    options.crossTab,
  )

  const timer = createRefreshTimer({
    clock,
    enabled: options.autoRefresh,
    retryLaterMs: options.retryLaterMs,
    current: () => tokens,
    refresh: (staleId) => refresh(staleId),
  })

  const usable = (t: SharedTokens) => clock.now() < t.expiresAt - EXPIRY_SLACK_MS

  function adopt(next: SharedTokens, source: RefreshedEvent['source']) {
    tokens = next
    phase = 'active'
    timer.schedule()
    emit('refreshed', { accessToken: next.accessToken, expiresAt: next.expiresAt, source })
  }

  /**
   * Ends the session here: forgets tokens and storage, and tells the other tabs and the app
   * once (the app is not told of its own logout).
   */
  async function forget(
    reason: EndReason,
    { tellTabs, tellApp = true }: { readonly tellTabs: boolean; readonly tellApp?: boolean },
  ) {
    const hadSession = phase === 'active'
    tokens = undefined
    phase = 'none'
    epoch++
    timer.cancel()
    if (store) await store.removeItem(storageKey)
    if (hint) await hint.storage.removeItem(hint.key)
    if (tellTabs && hadSession) tabs.publishEnded(reason)
    if (tellApp && hadSession) emit('session-expired', { reason })
  }

  /** The one refresh every caller of this tab waits on; the lock makes it one for all tabs. */
  function refresh(staleId: string | undefined): Promise<SharedTokens | undefined> {
    if (closed) return Promise.resolve(undefined)
    if (!inflight) {
      const startEpoch = epoch
      inflight = tabs
        .exclusive(() => refreshHoldingLock(staleId, startEpoch))
        .finally(() => {
          inflight = undefined
        })
    }
    return inflight
  }

  async function refreshHoldingLock(
    staleId: string | undefined,
    startEpoch: number,
  ): Promise<SharedTokens | undefined> {
    // A login or logout happened while we waited: its outcome stands.
    if (epoch !== startEpoch) return phase === 'active' ? tokens : undefined
    // Another tab refreshed while we waited for the lock: take its tokens.
    if (tokens && tokens.id !== staleId && usable(tokens)) return tokens
    const shared = await tabs.newerThan(staleId)
    if (shared && usable(shared)) {
      if (shared.id !== tokens?.id) adopt(shared, 'other-tab')
      return shared
    }

    let refreshToken: string | undefined
    if (store) {
      refreshToken = (await store.getItem(storageKey)) ?? undefined
      if (!refreshToken) {
        phase = 'none'
        return undefined
      }
      if (phase === 'unknown') phase = 'active' // a stored session counts as one
    } else if (hint && phase === 'unknown' && !(await hint.storage.getItem(hint.key))) {
      // No cookie session was ever noted here: a refresh could only be refused.
      phase = 'none'
      return undefined
    }
    const issuedAt = clock.now()
    let body: TokenResponse
    try {
      body = await transport.refresh(refreshToken)
    } catch (error) {
      if (error instanceof TokenClientError && error.code === 'invalid_grant') {
        const reason =
          error.message === HOME_UNREACHABLE_DESCRIPTION ? 'home_unreachable' : 'invalid_grant'
        if (epoch === startEpoch) await forget(reason, { tellTabs: true })
        return undefined
      }
      throw error // transient or misconfiguration: the session is kept
    }
    if (epoch !== startEpoch) return phase === 'active' ? tokens : undefined
    return save(body, issuedAt, 'refresh')
  }

  async function getTokens(): Promise<SharedTokens | null> {
    if (tokens && usable(tokens)) return tokens
    if (phase === 'none' || closed) return null
    return (await refresh(tokens?.id)) ?? null
  }

  /** Stores the new refresh token (before anything else), then shares the access token. */
  async function save(
    body: TokenResponse,
    issuedAt: number,
    source: 'login' | 'refresh',
  ): Promise<SharedTokens> {
    if (cookieMode && body.refresh_token !== undefined) {
      throw new TokenClientError(
        'invalid_response',
        'the server sent the refresh token in the body: its client is not in cookie mode',
      )
    }
    if (store) {
      if (typeof body.refresh_token !== 'string' || body.refresh_token === '') {
        throw new TokenClientError(
          'invalid_response',
          'the token response has no refresh_token: for a cookie-mode client use cookieStorage()',
        )
      }
      await store.setItem(storageKey, body.refresh_token)
    }
    if (hint) await hint.storage.setItem(hint.key, '1')
    const next: SharedTokens = {
      id: newId(),
      accessToken: body.access_token,
      tokenType: body.token_type ?? 'Bearer',
      issuedAt,
      expiresAt: issuedAt + body.expires_in * 1000,
    }
    adopt(next, source)
    tabs.publish(next)
    return next
  }

  return {
    get tokens() {
      return tokens
    },

    async login(username, password) {
      epoch++ // a refresh still in flight belongs to the session this one replaces
      const issuedAt = clock.now()
      const body = await transport.login(username, password)
      await save(body, issuedAt, 'login')
    },

    async getAccessToken() {
      return (await getTokens())?.accessToken ?? null
    },

    getTokens,

    refresh,

    async logout() {
      const refreshToken = store ? await store.getItem(storageKey) : undefined
      await forget('logout', { tellTabs: true, tellApp: false })
      await transport.revoke(refreshToken ?? undefined)
    },

    close() {
      closed = true
      timer.close()
      tabs.close()
    },
  }
}

let counter = 0
/** Names one set of tokens among tabs; not a secret. */
function newId(): string {
  counter += 1
  return `${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 10)}.${counter}`
}
