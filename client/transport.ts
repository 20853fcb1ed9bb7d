/**
 * The token service over HTTP: the form posts to /login, /token and /revoke
 * with their retries and the OAuth error mapping, and bearer calls to the API
 * (/me, /sessions, ...). It holds no session: a refresh token comes in as an
 * argument (body mode) or rides in the browser's cookie (cookie mode).
 */
import { TokenClientError } from './errors.js'
import { errorFromResponse, parseTokenResponse, type TokenResponse } from './responses.js'

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

/** `RetryOptions` with every default filled in. */
export function retrySettings(retry: RetryOptions = {}): Required<RetryOptions> {
  return {
    attempts: Math.max(1, retry.attempts ?? 4),
    baseDelayMs: retry.baseDelayMs ?? 500,
    maxDelayMs: retry.maxDelayMs ?? 30_000,
    timeoutMs: retry.timeoutMs ?? 15_000,
  }
}

export interface TransportOptions {
  /** The token service, without a trailing slash. */
  readonly baseUrl: string
  readonly clientId: string
  readonly fetch: FetchLike
  /** For a `Retry-After` given as a date. */
  readonly clock: Clock
  /** Token requests carry the browser's cookies, and the refresh token is one of them. */
  readonly cookieMode: boolean
  /** Scope to ask for at login. @default all of the client's scopes */
  readonly scope?: string | undefined
  readonly retry: Required<RetryOptions>
}

export interface Transport {
  /**
   * `POST /login`, one attempt: the user is there to try again. Rejects with
   * `TokenClientError` (`invalid_grant` for bad credentials).
   */
  login(username: string, password: string): Promise<TokenResponse>
  /**
   * `POST /token` with the refresh token (body mode) or the cookie (cookie
   * mode, `refreshToken` undefined). Transient failures are retried with
   * back-off; a final one, or the last attempt's, rejects with `TokenClientError`.
   */
  refresh(refreshToken: string | undefined): Promise<TokenResponse>
  /** `POST /revoke`, retried like a refresh. Body mode without a refresh token has nothing to revoke. */
  revoke(refreshToken: string | undefined): Promise<void>
  /** `fetch` with `Authorization: Bearer <accessToken>`; a relative URL is resolved against `baseUrl`. */
  send(
    input: string | URL | Request,
    init: RequestInit | undefined,
    accessToken: string,
  ): Promise<Response>
}

/** The token service's endpoints, as `TransportOptions` describe them. */
export function createTransport(options: TransportOptions): Transport {
  const { baseUrl, clientId, cookieMode, clock } = options
  const { attempts, baseDelayMs, maxDelayMs, timeoutMs } = options.retry
  const fetchImpl = options.fetch

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
        failure = errorFromResponse(response, text, clock)
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

  /** `Retry-After` when the server gave one, else exponential back-off with jitter; capped. */
  function backoff(attempt: number, retryAfterMs: number | undefined): number {
    const exponential = baseDelayMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2)
    return Math.min(maxDelayMs, retryAfterMs ?? exponential)
  }

  function resolveUrl(input: string | URL): string | URL {
    if (typeof input !== 'string' || /^[a-z][a-z\d+.-]*:/i.test(input)) return input
    return `${baseUrl}${input.startsWith('/') ? '' : '/'}${input}`
  }

  return {
    async login(username, password) {
      const params: Record<string, string> = { username, password, client_id: clientId }
      if (options.scope) params.scope = options.scope
      return parseTokenResponse(await post('/login', params, false))
    },

    async refresh(refreshToken) {
      const params: Record<string, string> = { grant_type: 'refresh_token', client_id: clientId }
      if (refreshToken !== undefined) params.refresh_token = refreshToken
      return parseTokenResponse(await post('/token', params, true))
    },

    async revoke(refreshToken) {
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

    send(input, init, accessToken) {
      if (typeof Request !== 'undefined' && input instanceof Request) {
        const headers = new Headers(init?.headers ?? input.headers)
        headers.set('Authorization', `Bearer ${accessToken}`)
        return fetchImpl(new Request(input.clone(), { ...init, headers }))
      }
      const headers = new Headers(init?.headers)
      headers.set('Authorization', `Bearer ${accessToken}`)
      return fetchImpl(resolveUrl(input as string | URL), { ...init, headers })
    },
  }
}

/** `application/x-www-form-urlencoded` by hand: React Native's URLSearchParams is partial. */
export const formEncode = (params: Record<string, string>) =>
  Object.entries(params)
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`)
    .join('&')

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
