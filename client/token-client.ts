import { TokenClientError } from './errors.js'
import { isCookieStorage, memoryStorage, type StorageOption } from './storage.js'
import { createTabs, type EndReason, type SharedTokens } from './tabs.js'

/** Where time comes from: epoch milliseconds, like `Date.now()`. */
export interface Clock {
  now(): number
}

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

export interface RetryOptions {
  /** Attempts per call of the token endpoint, the first included. @default 4 */
  readonly attempts?: number
  /** Back-off before the second attempt; it doubles with each attempt, with jitter. @default 500 */
  readonly baseDelayMs?: number
  /** The longest wait between two attempts, a `Retry-After` included. @default 30000 */
  readonly maxDelayMs?: number
  /** An attempt without an answer after this long is abandoned (and retried). @default 15000 */
  readonly timeoutMs?: number
}

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
}

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
  /** Ends the session on the server (`/revoke`) and forgets it here, in every tab. */
  logout(): Promise<void>
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<E extends keyof TokenClientEvents>(
    event: E,
    listener: (event: TokenClientEvents[E]) => void,
  ): () => void
  /** When the current access token expires (epoch ms on the client's clock), or null. */
  readonly expiresAt: number | null
  /** Stops timers and leaves the tab channel. The client is unusable afterwards. */
  close(): void
}

/** Tokens this close to expiry are refreshed before use. */
const EXPIRY_SLACK_MS = 5_000
/** setTimeout's limit. */
const MAX_TIMER_MS = 2_147_483_647

interface TokenResponse {
  readonly access_token: string
  readonly expires_in: number
  readonly refresh_token?: string
}

/** What the session is known to be. `unknown`: maybe (a cookie or stored token not tried yet). */
type Phase = 'unknown' | 'active' | 'none'

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
  const cookieMode = isCookieStorage(storage)
  const store = isCookieStorage(storage) ? undefined : storage
  const storageKey = options.storageKey ?? `rotating-token.${clientId}.refresh_token`
  const fetchImpl: FetchLike = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  const clock = options.clock ?? { now: () => Date.now() }
  const attempts = Math.max(1, options.retry?.attempts ?? 4)
  const baseDelayMs = options.retry?.baseDelayMs ?? 500
  const maxDelayMs = options.retry?.maxDelayMs ?? 30_000
  const timeoutMs = options.retry?.timeoutMs ?? 15_000
  const autoRefresh = options.autoRefresh ?? true
  const inPage = typeof (globalThis as { document?: unknown }).document !== 'undefined'

  const listeners: { [E in keyof TokenClientEvents]: Set<(e: TokenClientEvents[E]) => void> } = {
    refreshed: new Set(),
    'session-expired': new Set(),
  }
  let tokens: SharedTokens | undefined
  let phase: Phase = 'unknown'
  /** Bumped when a session starts or ends here: answers for an older one are dropped. */
  let epoch = 0
  let inflight: Promise<SharedTokens | undefined> | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  let closed = false

  const tabs = createTabs(
    `rotating-token:${baseUrl}:${clientId}`,
    {
      onTokens(shared) {
        if (tokens && (shared.id === tokens.id || shared.issuedAt < tokens.issuedAt)) return
        adopt(shared, 'other-tab')
      },
      onEnded(reason) {
        void forget(reason, false)
      },
    },
    options.crossTab ?? inPage,
  )

  function emit<E extends keyof TokenClientEvents>(event: E, payload: TokenClientEvents[E]) {
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
  }

  const usable = (t: SharedTokens) => clock.now() < t.expiresAt - EXPIRY_SLACK_MS

  function adopt(next: SharedTokens, source: RefreshedEvent['source']) {
    tokens = next
    phase = 'active'
    schedule()
    emit('refreshed', { accessToken: next.accessToken, expiresAt: next.expiresAt, source })
  }

  /**
   * Ends the session here: forgets tokens and storage, and tells the other tabs and the app
   * once (the app is not told of its own logout).
   */
  async function forget(reason: EndReason, tellTabs: boolean, tellApp = true) {
    const hadSession = phase === 'active'
    tokens = undefined
    phase = 'none'
    epoch++
    clearTimeout(timer)
    if (store) await store.removeItem(storageKey)
    if (tellTabs && hadSession) tabs.publishEnded(reason)
    if (tellApp && hadSession) emit('session-expired', { reason })
  }

  /** Refresh shortly before expiry, earlier by a random jitter so that clients spread out. */
  function schedule(delayMs?: number) {
    clearTimeout(timer)
    if (!autoRefresh || closed || !tokens) return
    const current = tokens
    let delay = delayMs
    if (delay === undefined) {
      const lifetime = current.expiresAt - current.issuedAt
      const margin = Math.min(30_000, lifetime * 0.2)
      const jitter = Math.random() * Math.min(10_000, lifetime * 0.1)
      delay = current.expiresAt - margin - jitter - clock.now()
    }
    timer = setTimeout(
      () => {
        refresh(current.id).catch(() => schedule(maxDelayMs)) // kept: try again later
      },
      Math.min(Math.max(0, delay), MAX_TIMER_MS),
    )
    ;(timer as { unref?: () => void }).unref?.() // never keeps Node alive
  }

  const doc = (globalThis as { document?: DocumentLike }).document
  const onVisible = () => {
    if (doc?.visibilityState === 'visible') schedule() // background tabs' timers are throttled
  }
  doc?.addEventListener?.('visibilitychange', onVisible)

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

    const params: Record<string, string> = { grant_type: 'refresh_token', client_id: clientId }
    if (store) {
      const refreshToken = await store.getItem(storageKey)
      if (!refreshToken) {
        phase = 'none'
        return undefined
      }
      if (phase === 'unknown') phase = 'active' // a stored session counts as one
      params.refresh_token = refreshToken
    }
    const issuedAt = clock.now()
    let body: TokenResponse
    try {
      body = parseTokenResponse(await post('/token', params, true))
    } catch (error) {
      if (error instanceof TokenClientError && error.code === 'invalid_grant') {
        if (epoch === startEpoch) await forget('invalid_grant', true)
        return undefined
      }
      throw error // transient or misconfiguration: the session is kept
    }
    if (epoch !== startEpoch) return phase === 'active' ? tokens : undefined
    return save(body, issuedAt, 'refresh')
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
    const next: SharedTokens = {
      id: newId(),
      accessToken: body.access_token,
      issuedAt,
      expiresAt: issuedAt + body.expires_in * 1000,
    }
    adopt(next, source)
    tabs.publish(next)
    return next
  }

  /** POSTs a form to the token service; retries transient failures with back-off. */
  async function post(
    path: string,
    params: Record<string, string>,
    retry: boolean,
  ): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      let failure: TokenClientError
      // A request that hangs (a dead mobile connection) must not hold the refresh forever.
      const abort = typeof AbortController === 'undefined' ? undefined : new AbortController()
      const timeout = abort && setTimeout(() => abort.abort(), timeoutMs)
      try {
        const response = await fetchImpl(`${baseUrl}${path}`, {
          method: 'POST',
          headers: {
            'Content-Type': 'application/x-www-form-urlencoded',
            Accept: 'application/json',
          },
          body: formEncode(params),
          credentials: cookieMode ? 'include' : 'omit',
          ...(abort ? { signal: abort.signal } : {}),
        })
        // A connection dropped while the body streams in is a lost answer too.
        const text = await response.text()
        if (response.ok) return text
        failure = errorFromResponse(response, text)
      } catch (error) {
        failure = new TokenClientError('network_error', 'the token service did not answer', {
          transient: true,
          cause: error,
        })
      } finally {
        clearTimeout(timeout)
      }
      if (!retry || !failure.transient || attempt >= attempts) throw failure
      await sleep(backoff(attempt, failure.retryAfterMs))
    }
  }

  function errorFromResponse(response: Response, text: string): TokenClientError {
    let error = `http_${response.status}`
    let description = `the token service answered ${response.status}`
    try {
      const body = JSON.parse(text) as { error?: unknown; error_description?: unknown }
      if (typeof body.error === 'string') error = body.error
      if (typeof body.error_description === 'string') description = body.error_description
    } catch {
      // not JSON (a proxy's error page): keep the status
    }
    const status = response.status
    return new TokenClientError(error, description, {
      status,
      transient: status === 408 || status === 429 || status >= 500,
      retryAfterMs: retryAfter(response.headers.get('retry-after')),
    })
  }

  function retryAfter(value: string | null): number | undefined {
    if (!value) return undefined
    const seconds = Number(value)
    if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
    const date = Date.parse(value)
    return Number.isNaN(date) ? undefined : Math.max(0, date - clock.now())
  }

  /** `Retry-After` when the server gave one, else exponential back-off with jitter; capped. */
  function backoff(attempt: number, retryAfterMs: number | undefined): number {
    const exponential = baseDelayMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2)
    return Math.min(maxDelayMs, retryAfterMs ?? exponential)
  }

  function resolveUrl(input: string | URL): string | URL {
    if (typeof input !== 'string' || /^[a-z][a-z\d+.-]*:/i.test(input)) return input
    return `${baseUrl}${input.startsWith('/') ? '' : '/'}${input}`
  }

  function send(input: string | URL | Request, init: RequestInit | undefined, token: string) {
    if (typeof Request !== 'undefined' && input instanceof Request) {
      const headers = new Headers(init?.headers ?? input.headers)
      headers.set('Authorization', `Bearer ${token}`)
      return fetchImpl(new Request(input.clone(), { ...init, headers }))
    }
    const headers = new Headers(init?.headers)
    headers.set('Authorization', `Bearer ${token}`)
    return fetchImpl(resolveUrl(input as string | URL), { ...init, headers })
  }

  async function getAccessToken(): Promise<string | null> {
    if (tokens && usable(tokens)) return tokens.accessToken
    if (phase === 'none' || closed) return null
    return (await refresh(tokens?.id))?.accessToken ?? null
  }

  return {
    async login(username, password) {
      epoch++ // a refresh still in flight belongs to the session this one replaces
      const params: Record<string, string> = { username, password, client_id: clientId }
      if (options.scope) params.scope = options.scope
      const issuedAt = clock.now()
      const body = parseTokenResponse(await post('/login', params, false))
      await save(body, issuedAt, 'login')
    },

    async fetch(input, init) {
      const token = await getAccessToken()
      if (!token) throw new TokenClientError('login_required', 'there is no session: log in first')
      const response = await send(input, init, token)
      if (!rejectsToken(response)) return response
      // The server no longer accepts this token (its clock is ahead, or keys
      // rotated): one refresh, shared with every other caller, and one retry.
      const staleId = tokens?.accessToken === token ? tokens.id : undefined
      const next = await refresh(staleId)
      if (!next) return response
      await response.body?.cancel().catch(() => {})
      return send(input, init, next.accessToken)
    },

    getAccessToken,

    async logout() {
      const refreshToken = store ? await store.getItem(storageKey) : undefined
      await forget('logout', true, false)
      if (cookieMode) await post('/revoke', { client_id: clientId }, true)
      else if (refreshToken) {
        const params = {
          token: refreshToken,
          token_type_hint: 'refresh_token',
          client_id: clientId,
        }
        await post('/revoke', params, true)
      }
    },

    on(event, listener) {
      const set = listeners[event] as Set<typeof listener>
      set.add(listener)
      return () => {
        set.delete(listener)
      }
    },

    get expiresAt() {
      return tokens?.expiresAt ?? null
    },

    close() {
      closed = true
      clearTimeout(timer)
      doc?.removeEventListener?.('visibilitychange', onVisible)
      tabs.close()
    },
  }
}

interface DocumentLike {
  readonly visibilityState?: string
  addEventListener?(type: string, listener: () => void): void
  removeEventListener?(type: string, listener: () => void): void
}

/** A 401 that says the bearer token was refused (RFC 6750), or does not say why. */
function rejectsToken(response: Response): boolean {
  if (response.status !== 401) return false
  const challenge = response.headers.get('www-authenticate')
  // Cross-origin answers hide the header unless the API exposes it: assume the token.
  if (!challenge || !/error=/i.test(challenge)) return true
  return /error="?invalid_token"?/i.test(challenge)
}

function parseTokenResponse(text: string): TokenResponse {
  let body: Partial<TokenResponse>
  try {
    body = JSON.parse(text) as Partial<TokenResponse>
  } catch {
    throw new TokenClientError('invalid_response', 'the token response is not JSON')
  }
  if (
    typeof body?.access_token !== 'string' ||
    typeof body.expires_in !== 'number' ||
    !(body.expires_in > 0)
  ) {
    throw new TokenClientError('invalid_response', 'the token response has no access token')
  }
  return body as TokenResponse
}

/** `application/x-www-form-urlencoded` by hand: React Native's URLSearchParams is partial. */
const formEncode = (params: Record<string, string>) =>
  Object.entries(params)
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`)
    .join('&')

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

let counter = 0
/** Names one set of tokens among tabs; not a secret. */
function newId(): string {
  counter += 1
  return `${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 10)}.${counter}`
}
