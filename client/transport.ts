/**
 * The token service over HTTP: the form posts to /login, /token and /revoke
 * with their retries and the OAuth error mapping, and bearer calls to the API
 * (/me, /sessions, ...). It holds no session: a refresh token comes in as an
 * argument (body mode) or rides in the browser's cookie (cookie mode). With
 * DPoP, it signs a proof for each attempt and keeps each server's last nonce.
 */
import type { Dpop } from './dpop.js'
import { TokenClientError } from './errors.js'
import {
  asksDpopNonce,
  errorFromResponse,
  parseTokenResponse,
  type TokenResponse,
} from './responses.js'
import { originOf } from './url.js'

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
  /** Signs DPoP proofs for /login, /token and calls with bound tokens. @default none */
  readonly dpop?: Dpop | undefined
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
  /**
   * `fetch` with `Authorization: Bearer <accessToken>`, or with a `DPoP` token
   * type `Authorization: DPoP <accessToken>` and a proof (following one nonce
   * challenge). A relative URL is resolved against `baseUrl`.
   */
  send(
    input: string | URL | Request,
    init: RequestInit | undefined,
    accessToken: string,
    tokenType?: string,
  ): Promise<Response>
}

/** The token service's endpoints, as `TransportOptions` describe them. */
/** How one POST goes: both are said at each call, never by position. */
interface PostOptions {
  /** Transient failures are retried with back-off. */
  readonly retry: boolean
  /** A DPoP proof goes with each attempt. @default false */
  readonly signed?: boolean
}

export function createTransport(options: TransportOptions): Transport {
  const { baseUrl, clientId, cookieMode, clock, dpop } = options
  const { attempts, baseDelayMs, maxDelayMs, timeoutMs } = options.retry
  const fetchImpl = options.fetch
  /** The last `DPoP-Nonce` of each origin (RFC 9449 §8.2): the next proof for it carries it. */
  const nonces = new Map<string, string>()
  /**
   * How far each origin's clock is ahead of this device's (ms), from its `Date`
   * header, when that is `CLOCK_SLACK_MS` or more: proofs are dated by the
   * server's clock, so that a device whose clock is minutes off is not refused.
   */
  const offsets = new Map<string, number>()

  /** What an answer tells about its server: its next nonce and its clock. */
  function learn(url: string, response: Response): void {
    const origin = originOf(url)
    const nonce = response.headers.get('dpop-nonce')
    if (nonce) nonces.set(origin, nonce)
    const date = Date.parse(response.headers.get('date') ?? '')
    if (Number.isNaN(date)) return
    const offset = date - clock.now()
    if (Math.abs(offset) >= CLOCK_SLACK_MS) offsets.set(origin, offset)
    else offsets.delete(origin)
  }

  const offsetOf = (url: string) => offsets.get(originOf(url)) ?? 0

  /** A fresh proof for one attempt, with the origin's nonce and dated by its clock. */
  function proof(htm: string, htu: string, accessToken?: string): Promise<string> {
    const nonce = nonces.get(originOf(htu))
    return (dpop as Dpop).proof({
      htm,
      htu,
      issuedAt: clock.now() + offsetOf(htu),
      ...(accessToken === undefined ? {} : { accessToken }),
      ...(nonce === undefined ? {} : { nonce }),
    })
  }

  /**
   * POSTs a form to the token service. `retry`: transient failures are retried
   * with back-off. `signed`: a DPoP proof goes with each attempt (a proof is
   * used once); a `use_dpop_nonce` answer is followed once, at once, with the
   * nonce it brought, and so is an `invalid_dpop_proof` whose `Date` shows this
   * device's clock off.
   */
  async function post(
    path: string,
    params: Record<string, string>,
    { retry, signed = false }: PostOptions,
  ): Promise<string> {
    const url = `${baseUrl}${path}`
    let nonceFollowed = false
    let clockFollowed = false
    for (let attempt = 1; ; attempt++) {
      let failure: TokenClientError
      const headers: Record<string, string> = {
        'Content-Type': 'application/x-www-form-urlencoded',
        Accept: 'application/json',
      }
      const usedOffset = offsetOf(url)
      if (signed && dpop) headers.DPoP = await proof('POST', url)
      // A request that hangs (a dead mobile connection) must not hold the refresh forever.
      const abort = typeof AbortController === 'undefined' ? undefined : new AbortController()
      const timeout = abort && setTimeout(() => abort.abort(), timeoutMs)
      try {
        const response = await fetchImpl(url, {
          method: 'POST',
          headers,
          body: formEncode(params),
          credentials: cookieMode ? 'include' : 'omit',
          ...(abort ? { signal: abort.signal } : {}),
        })
        if (dpop) learn(url, response)
        // A connection dropped while the body streams in is a lost answer too.
        const text = await response.text()
        if (response.ok) return text
        failure = errorFromResponse(response, text, clock)
        // Nothing was consumed: the same request again, signed anew. No attempt spent.
        if (signed && dpop && failure.code === 'use_dpop_nonce' && !nonceFollowed) {
          nonceFollowed = true
          attempt--
          continue
        }
        const reclocked = offsetOf(url) !== usedOffset
        if (
          signed &&
          dpop &&
          failure.code === 'invalid_dpop_proof' &&
          reclocked &&
          !clockFollowed
        ) {
          clockFollowed = true
          attempt--
          continue
        }
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
      return parseTokenResponse(await post('/login', params, { retry: false, signed: true }))
    },

    async refresh(refreshToken) {
      const params: Record<string, string> = { grant_type: 'refresh_token', client_id: clientId }
      if (refreshToken !== undefined) params.refresh_token = refreshToken
      return parseTokenResponse(await post('/token', params, { retry: true, signed: true }))
    },

    async revoke(refreshToken) {
      if (cookieMode) await post('/revoke', { client_id: clientId }, { retry: true })
      else if (refreshToken) {
        const params = {
          token: refreshToken,
          token_type_hint: 'refresh_token',
          client_id: clientId,
        }
        await post('/revoke', params, { retry: true })
      }
    },

    async send(input, init, accessToken, tokenType = 'Bearer') {
      const bound = dpop !== undefined && tokenType.toLowerCase() === 'dpop'
      const isRequest = typeof Request !== 'undefined' && input instanceof Request
      const url = isRequest ? input.url : String(resolveUrl(input as string | URL))
      const method = (init?.method ?? (isRequest ? input.method : 'GET')).toUpperCase()
      const attempt = async () => {
        const headers = new Headers(init?.headers ?? (isRequest ? input.headers : undefined))
        headers.set('Authorization', `${bound ? 'DPoP' : 'Bearer'} ${accessToken}`)
        if (bound) headers.set('DPoP', await proof(method, url, accessToken))
        return isRequest
          ? fetchImpl(new Request(input.clone(), { ...init, headers }))
          : fetchImpl(resolveUrl(input as string | URL), { ...init, headers })
      }
      const response = await attempt()
      if (!bound) return response
      learn(url, response)
      if (!asksDpopNonce(response)) return response
      await response.body?.cancel().catch(() => {})
      return attempt()
    },
  }
}

/** Clock differences below this are left alone: `Date` has whole seconds, and proofs allow skew. */
const CLOCK_SLACK_MS = 5_000

/** `application/x-www-form-urlencoded` by hand: React Native's URLSearchParams is partial. */
export const formEncode = (params: Record<string, string>) =>
  Object.entries(params)
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`)
    .join('&')

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
