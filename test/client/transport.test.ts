import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  createDpop,
  type FetchLike,
  memoryDpopKeyStore,
  TokenClientError,
} from '../../client/index.js'
import { rejectsToken } from '../../client/responses.js'
import {
  createTransport,
  type RetryOptions,
  retrySettings,
  type TransportOptions,
} from '../../client/transport.js'
import { FakeClock } from '../support/clock.js'

/**
 * The client's transport on its own, against scripted answers: the shapes of
 * the requests it sends, and what it makes of the answers (the integration
 * suites next to this one run it against the real server).
 */

const BASE = 'https://auth.test'
const TOKENS = { access_token: 'at', expires_in: 60, refresh_token: 'rt' }

interface Sent {
  readonly url: string
  readonly init: RequestInit | undefined
  readonly request: Request | undefined
}

interface ScriptedFetch extends FetchLike {
  readonly sent: Sent[]
  /** The form fields of the nth request (1-based). */
  form(nth: number): Record<string, string>
}

/** A fetch that answers the nth call with `answer(n)`, and keeps what it was sent. */
function scriptedFetch(answer: (nth: number, init?: RequestInit) => Promise<Response> | Response) {
  const sent: Sent[] = []
  const fn: FetchLike = async (input, init) => {
    const request = input instanceof Request ? input : undefined
    sent.push({ url: request ? request.url : String(input), init, request })
    return answer(sent.length, init)
  }
  const form = (nth: number) =>
    Object.fromEntries(new URLSearchParams(String(sent[nth - 1]?.init?.body)))
  return Object.assign(fn, { sent, form }) as ScriptedFetch
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  })

/** A body-mode transport with 1 ms back-off unless told otherwise. */
function transport(
  fetch: FetchLike,
  options: Partial<Omit<TransportOptions, 'retry'>> & { retry?: RetryOptions } = {},
) {
  return createTransport({
    baseUrl: BASE,
    clientId: 'app',
    fetch,
    clock: new FakeClock(),
    cookieMode: false,
    ...options,
    retry: retrySettings({ baseDelayMs: 1, ...options.retry }),
  })
}

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => expect.unreachable('it resolved'),
    (error: unknown) => {
      expect(error).toBeInstanceOf(TokenClientError)
      return error as TokenClientError
    },
  )

afterEach(() => {
  vi.useRealTimers()
})

describe('client transport: requests', () => {
  it('posts a login once, as a form that survives any character, without cookies in body mode', async () => {
    const fetch = scriptedFetch(() => json(200, TOKENS))
    const body = await transport(fetch, { scope: 'openid api' }).login('a+b@x.test', 'p&ss=wö rd%')
    expect(body).toEqual(TOKENS)
    expect(fetch.sent).toHaveLength(1)
    expect(fetch.sent[0]?.url).toBe(`${BASE}/login`)
    expect(fetch.sent[0]?.init).toMatchObject({
      method: 'POST',
      credentials: 'omit',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    })
    expect(fetch.form(1)).toEqual({
      username: 'a+b@x.test',
      password: 'p&ss=wö rd%',
      client_id: 'app',
      scope: 'openid api',
    })
  })

  it('sends the refresh token in the body in body mode, and only the cookie in cookie mode', async () => {
    const body = scriptedFetch(() => json(200, TOKENS))
    await transport(body).refresh('rt1')
    expect(body.sent[0]?.url).toBe(`${BASE}/token`)
    expect(body.sent[0]?.init?.credentials).toBe('omit')
    expect(body.form(1)).toEqual({
      grant_type: 'refresh_token',
      client_id: 'app',
      refresh_token: 'rt1',
    })

    const cookie = scriptedFetch(() => json(200, { access_token: 'at', expires_in: 60 }))
    await transport(cookie, { cookieMode: true }).refresh(undefined)
    expect(cookie.sent[0]?.init?.credentials).toBe('include')
    expect(cookie.form(1)).toEqual({ grant_type: 'refresh_token', client_id: 'app' })
  })

  it('revokes the refresh token in body mode, the cookie in cookie mode, and nothing without either', async () => {
    const body = scriptedFetch(() => json(200, {}))
    await transport(body).revoke('rt1')
    expect(body.sent[0]?.url).toBe(`${BASE}/revoke`)
    expect(body.form(1)).toEqual({
      token: 'rt1',
      token_type_hint: 'refresh_token',
      client_id: 'app',
    })

    const cookie = scriptedFetch(() => json(200, {}))
    await transport(cookie, { cookieMode: true }).revoke(undefined)
    expect(cookie.sent[0]?.init?.credentials).toBe('include')
    expect(cookie.form(1)).toEqual({ client_id: 'app' })

    const none = scriptedFetch(() => json(200, {}))
    await transport(none).revoke(undefined)
    expect(none.sent).toEqual([])
  })

  it('sends bearer calls to a path under baseUrl, or to an absolute URL as given', async () => {
    const fetch = scriptedFetch(() => new Response('{}'))
    const t = transport(fetch)
    await t.send('/sessions', { method: 'DELETE', headers: { accept: 'application/json' } }, 'at1')
    await t.send('me', undefined, 'at2')
    await t.send('https://api.test/x', undefined, 'at3')
    expect(fetch.sent.map(({ url }) => url)).toEqual([
      `${BASE}/sessions`,
      `${BASE}/me`,
      'https://api.test/x',
    ])
    const headers = fetch.sent.map(({ init }) => new Headers(init?.headers))
    expect(headers.map((h) => h.get('authorization'))).toEqual([
      'Bearer at1',
      'Bearer at2',
      'Bearer at3',
    ])
    expect(headers[0]?.get('accept')).toBe('application/json')
    expect(fetch.sent[0]?.init?.method).toBe('DELETE')
  })

  it('adds the bearer token to a Request and keeps its method and headers', async () => {
    const fetch = scriptedFetch(() => new Response('{}'))
    const request = new Request(`${BASE}/sessions/s1`, {
      method: 'DELETE',
      headers: { 'x-trace': '1', authorization: 'Bearer old' },
    })
    await transport(fetch).send(request, undefined, 'at1')
    const sent = fetch.sent[0]?.request
    expect(sent?.url).toBe(`${BASE}/sessions/s1`)
    expect(sent?.method).toBe('DELETE')
    expect(sent?.headers.get('x-trace')).toBe('1')
    expect(sent?.headers.get('authorization')).toBe('Bearer at1')
  })
})

describe('client transport: error mapping', () => {
  it('maps an OAuth error to its code, description and status, and does not retry it', async () => {
    const fetch = scriptedFetch(() =>
      json(400, { error: 'invalid_grant', error_description: 'refresh token expired' }),
    )
    const error = await failure(transport(fetch).refresh('rt1'))
    expect(error).toMatchObject({
      code: 'invalid_grant',
      message: 'refresh token expired',
      status: 400,
      transient: false,
      retryAfterMs: undefined,
    })
    expect(fetch.sent).toHaveLength(1)
  })

  it.each([408, 429, 500, 502, 503, 504])('counts a %i as transient', async (status) => {
    const fetch = scriptedFetch(() => json(status, { error: 'temporarily_unavailable' }))
    const error = await failure(transport(fetch, { retry: { attempts: 1 } }).refresh('rt1'))
    expect(error).toMatchObject({ code: 'temporarily_unavailable', status, transient: true })
  })

  it.each([400, 401, 403, 404])('counts a %i as final', async (status) => {
    const fetch = scriptedFetch(() => json(status, { error: 'invalid_client' }))
    const error = await failure(transport(fetch).refresh('rt1'))
    expect(error).toMatchObject({ code: 'invalid_client', status, transient: false })
    expect(fetch.sent).toHaveLength(1)
  })

  it("maps a 503 that is not JSON (a proxy's page) to http_503, transient, after the last attempt", async () => {
    const fetch = scriptedFetch(
      () =>
        new Response('<html>Service Unavailable</html>', {
          status: 503,
          headers: { 'content-type': 'text/html' },
        }),
    )
    const error = await failure(transport(fetch, { retry: { attempts: 2 } }).refresh('rt1'))
    expect(error).toMatchObject({
      code: 'http_503',
      message: 'the token service answered 503',
      status: 503,
      transient: true,
    })
    expect(fetch.sent).toHaveLength(2)
  })

  it('reads Retry-After in seconds, and as an HTTP date on the client clock', async () => {
    const clock = new FakeClock()
    const seconds = scriptedFetch(() => json(429, { error: 'slow_down' }, { 'retry-after': '7' }))
    const inSeconds = await failure(
      transport(seconds, { retry: { attempts: 1 }, clock }).refresh('rt1'),
    )
    expect(inSeconds).toMatchObject({ code: 'slow_down', status: 429, retryAfterMs: 7_000 })

    const at = new Date(clock.now() + 3_000).toUTCString()
    const date = scriptedFetch(() => json(503, { error: 'busy' }, { 'retry-after': at }))
    const inDate = await failure(transport(date, { retry: { attempts: 1 }, clock }).refresh('rt1'))
    expect(inDate.retryAfterMs).toBe(3_000)

    const junk = scriptedFetch(() => json(503, { error: 'busy' }, { 'retry-after': 'soon' }))
    const unreadable = await failure(
      transport(junk, { retry: { attempts: 1 }, clock }).refresh('rt1'),
    )
    expect(unreadable.retryAfterMs).toBeUndefined()
  })

  it('maps a request that got no answer to a transient network_error with its cause', async () => {
    const cause = new TypeError('fetch failed')
    const fetch = scriptedFetch(() => Promise.reject(cause))
    const error = await failure(transport(fetch, { retry: { attempts: 1 } }).refresh('rt1'))
    expect(error).toMatchObject({ code: 'network_error', transient: true, cause })
  })

  it('rejects a 200 that is not a token response with invalid_response', async () => {
    const answers = [
      new Response('<html>portal</html>'),
      json(200, { token_type: 'Bearer' }),
      json(200, { access_token: 'at', expires_in: 0 }),
      json(200, { access_token: 'at', expires_in: '60' }),
    ]
    const fetch = scriptedFetch((nth) => answers[nth - 1] as Response)
    const t = transport(fetch)
    for (const _ of answers) {
      expect(await failure(t.login('u', 'p'))).toMatchObject({
        code: 'invalid_response',
        transient: false,
      })
    }
  })

  it.each([
    ['a 401 with error="invalid_token"', 'Bearer error="invalid_token"'],
    ['a 401 whose challenge a cross-origin answer hides', undefined],
    ['a 401 whose challenge names no error', 'Bearer realm="api"'],
  ])('takes %s for a refused token', (_, challenge) => {
    const headers: Record<string, string> = challenge ? { 'www-authenticate': challenge } : {}
    expect(rejectsToken(new Response(null, { status: 401, headers }))).toBe(true)
  })

  it.each([
    ['a 401 for another error', 401, 'Bearer error="invalid_request"'],
    ['a 403 insufficient_scope', 403, 'Bearer error="insufficient_scope"'],
    ['a 200', 200, undefined],
  ])('does not take %s for a refused token', (_, status, challenge) => {
    const headers: Record<string, string> = challenge ? { 'www-authenticate': challenge } : {}
    expect(rejectsToken(new Response(null, { status, headers }))).toBe(false)
  })
})

/** The second attempt goes out `ms` after the first on the fake timers, not earlier, and succeeds. */
async function secondAttemptAfter(ms: number, fetch: ScriptedFetch, result: Promise<unknown>) {
  await vi.advanceTimersByTimeAsync(ms - 1)
  expect(fetch.sent).toHaveLength(1)
  await vi.advanceTimersByTimeAsync(1)
  expect(fetch.sent).toHaveLength(2)
  expect(await result).toEqual(TOKENS)
}

describe('client transport: retries', () => {
  it("waits exactly a 429's Retry-After before the next attempt", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const fetch = scriptedFetch((nth) =>
      nth === 1 ? json(429, { error: 'slow_down' }, { 'retry-after': '2' }) : json(200, TOKENS),
    )
    await secondAttemptAfter(2_000, fetch, transport(fetch).refresh('rt1'))
  })

  it("waits exactly a 503's Retry-After (KMS or DynamoDB throttled) and retries the same refresh token", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const fetch = scriptedFetch((nth) =>
      nth === 1
        ? json(503, { error: 'temporarily_unavailable' }, { 'retry-after': '1' })
        : json(200, TOKENS),
    )
    await secondAttemptAfter(1_000, fetch, transport(fetch).refresh('rt1'))
    expect([fetch.form(1).refresh_token, fetch.form(2).refresh_token]).toEqual(['rt1', 'rt1'])
  })

  it('waits no longer than maxDelayMs, whatever Retry-After says', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const fetch = scriptedFetch((nth) =>
      nth === 1 ? json(503, { error: 'busy' }, { 'retry-after': '3600' }) : json(200, TOKENS),
    )
    const refreshed = transport(fetch, { retry: { maxDelayMs: 5_000 } }).refresh('rt1')
    await secondAttemptAfter(5_000, fetch, refreshed)
  })

  it('abandons an attempt that gets no answer within timeoutMs and tries again', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const fetch = scriptedFetch((nth, init) => {
      if (nth > 1) return json(200, TOKENS)
      return new Promise<Response>((_, reject) => {
        init?.signal?.addEventListener('abort', () => reject(init.signal?.reason))
      })
    })
    const refreshed = transport(fetch, { retry: { timeoutMs: 10_000 } }).refresh('rt1')
    await vi.advanceTimersByTimeAsync(9_999)
    expect(fetch.sent).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(2) // the timeout, then a back-off of at most 1 ms
    expect(fetch.sent).toHaveLength(2)
    expect(await refreshed).toEqual(TOKENS)
  })

  it('does not retry a login, even after a transient failure', async () => {
    const fetch = scriptedFetch(() => json(503, { error: 'temporarily_unavailable' }))
    const error = await failure(transport(fetch).login('u', 'p'))
    expect(error).toMatchObject({ code: 'temporarily_unavailable', transient: true })
    expect(fetch.sent).toHaveLength(1)
  })

  it('stops after the configured attempts and reports the last failure', async () => {
    const fetch = scriptedFetch((nth) =>
      nth < 3 ? json(503, { error: 'busy' }) : Promise.reject(new TypeError('fetch failed')),
    )
    const error = await failure(transport(fetch, { retry: { attempts: 3 } }).refresh('rt1'))
    expect(error.code).toBe('network_error')
    expect(fetch.sent).toHaveLength(3)
  })
})

describe('transport with DPoP: calls with a bound token', () => {
  const proofClaims = (headers: RequestInit['headers']) =>
    JSON.parse(
      Buffer.from(
        (new Headers(headers).get('dpop') as string).split('.')[1] as string,
        'base64url',
      ).toString(),
    )

  it('sends Authorization: DPoP with a proof for the method, URL and token', async () => {
    const fetch = scriptedFetch(() => json(200, {}))
    const dpop = createDpop({ store: memoryDpopKeyStore() })
    await transport(fetch, { dpop }).send('/orders?page=2', { method: 'post' }, 'at', 'DPoP')
    const headers = new Headers(fetch.sent[0]?.init?.headers)
    expect(headers.get('authorization')).toBe('DPoP at')
    expect(proofClaims(fetch.sent[0]?.init?.headers)).toMatchObject({
      htm: 'POST',
      htu: `${BASE}/orders`,
      ath: expect.stringMatching(/^[\w-]{43}$/),
    })
  })

  it('answers a resource server’s use_dpop_nonce challenge once, with its nonce', async () => {
    const challenge = () =>
      new Response(null, {
        status: 401,
        headers: {
          'www-authenticate': 'DPoP error="use_dpop_nonce", algs="ES256"',
          'dpop-nonce': 'rs-nonce',
        },
      })
    const fetch = scriptedFetch((nth) => (nth === 1 ? challenge() : json(200, {})))
    const dpop = createDpop({ store: memoryDpopKeyStore() })
    const response = await transport(fetch, { dpop }).send(
      'https://api.test/me',
      undefined,
      'at',
      'DPoP',
    )
    expect(response.status).toBe(200)
    expect(fetch.sent).toHaveLength(2)
    expect(proofClaims(fetch.sent[0]?.init?.headers).nonce).toBeUndefined()
    expect(proofClaims(fetch.sent[1]?.init?.headers).nonce).toBe('rs-nonce')

    const stubborn = scriptedFetch(() => challenge())
    const refused = await transport(stubborn, { dpop }).send(
      'https://api.test/me',
      undefined,
      'at',
      'DPoP',
    )
    expect(refused.status).toBe(401)
    expect(stubborn.sent).toHaveLength(2)
  })
})
