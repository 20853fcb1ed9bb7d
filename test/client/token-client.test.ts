import { InternalServerError } from '@aws-sdk/client-dynamodb'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  createTokenClient,
  memoryStorage,
  type SessionExpiredEvent,
  type TokenClient,
  TokenClientError,
  type TokenStorage,
} from '../../client/index.js'
import type { ClientConfig } from '../../functions/core/clients.js'
import type { User } from '../../functions/core/ports.js'
import { answer, type Intercept, type TestFetch, testFetch } from '../support/client-fetch.js'
import { FakeClock } from '../support/clock.js'
import { type Harness, PASSWORD, startHarness } from '../support/harness.js'
import { recordSecret } from '../support/secrets.js'

/** A mobile app's client: body mode, 60 s access tokens, 10 s grace. */
const MOBILE: ClientConfig = {
  client_id: 'test-mobile',
  type: 'native',
  audience: 'https://api.test',
  scopes: ['openid', 'api'],
  access_token_ttl_seconds: 60,
  reuse_grace_seconds: 10,
}
const KEY = `rotating-token.${MOBILE.client_id}.refresh_token`

/** Fails the next `n` refresh reads in DynamoDB, so that /token answers 503 with Retry-After. */
let failingReads = 0
let h: Harness
const clients: TokenClient[] = []

beforeAll(async () => {
  h = await startHarness({
    clients: [MOBILE],
    dynamodb: (client) => {
      client.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'BatchGetItemCommand' && failingReads > 0) {
            failingReads--
            throw new InternalServerError({
              message: 'injected fault',
              $metadata: { httpStatusCode: 500 },
            })
          }
          return next(args)
        },
        { step: 'initialize', name: 'failingReads' },
      )
      return client
    },
  })
})
afterEach(() => {
  failingReads = 0
  for (const client of clients.splice(0)) client.close()
})
afterAll(() => h.close())

interface Setup {
  client: TokenClient
  fetch: TestFetch
  storage: TokenStorage
  expired: SessionExpiredEvent[]
}

function mobileClient(
  options: {
    intercept?: Intercept
    storage?: TokenStorage
    attempts?: number
    timeoutMs?: number
  } = {},
): Setup {
  const fetch = testFetch(options.intercept)
  const storage = options.storage ?? memoryStorage()
  const client = createTokenClient({
    baseUrl: h.url,
    clientId: MOBILE.client_id,
    storage,
    fetch,
    clock: h.clock,
    autoRefresh: false, // the server's clock is fake: refreshes happen when a test asks
    retry: {
      attempts: options.attempts ?? 4,
      baseDelayMs: 1,
      maxDelayMs: 20,
      timeoutMs: options.timeoutMs ?? 30_000,
    },
  })
  clients.push(client)
  const expired: SessionExpiredEvent[] = []
  client.on('session-expired', (event) => expired.push(event))
  return { client, fetch, storage, expired }
}

async function loggedIn(setup: Setup): Promise<User> {
  const user = await h.addUser()
  await setup.client.login(user.username, PASSWORD)
  return user
}

/** The user's one session as the store has it (generation = rotations so far). */
async function sessionOf(user: User) {
  const sessions = await h.sessions.listSessions(user.sub)
  expect(sessions).toHaveLength(1)
  return sessions[0] as (typeof sessions)[number]
}

describe('token client: login, bearer calls, single-flight refresh', () => {
  it('logs in and calls a bearer route with the access token', async () => {
    const setup = mobileClient()
    const user = await loggedIn(setup)
    const me = await setup.client.fetch('/me')
    expect(me.status).toBe(200)
    expect(await me.json()).toMatchObject({ sub: user.sub, client_id: MOBILE.client_id })
    expect(await setup.storage.getItem(KEY)).toMatch(/^rt1_/)
  })

  it('rejects bad credentials with invalid_grant and starts no session', async () => {
    const setup = mobileClient()
    const user = await h.addUser()
    const error = await setup.client.login(user.username, 'not the password').catch((e) => e)
    expect(error).toBeInstanceOf(TokenClientError)
    expect(error).toMatchObject({ code: 'invalid_grant', status: 400, transient: false })
    expect(await setup.client.getAccessToken()).toBeNull()
    await expect(setup.client.fetch('/me')).rejects.toMatchObject({ code: 'login_required' })
    expect(setup.expired).toEqual([])
  })

  it('refreshes an expired access token once for any number of concurrent callers', async () => {
    const setup = mobileClient()
    const user = await loggedIn(setup)
    const first = await setup.client.getAccessToken()
    h.clock.advance(61)
    const tokens = await Promise.all(Array.from({ length: 8 }, () => setup.client.getAccessToken()))
    expect(new Set(tokens).size).toBe(1)
    expect(tokens[0]).not.toBe(first)
    expect(setup.fetch.count('POST', '/token')).toBe(1)
    expect((await sessionOf(user)).generation).toBe(1)
  })

  it('after a 401 invalid_token, refreshes once and sends the request once more', async () => {
    // The client's clock says the token is fresh; the server's says it expired.
    const clientClock = new FakeClock(h.clock.now())
    const fetch = testFetch()
    const client = createTokenClient({
      baseUrl: h.url,
      clientId: MOBILE.client_id,
      fetch,
      clock: clientClock,
      autoRefresh: false,
    })
    clients.push(client)
    const user = await h.addUser()
    await client.login(user.username, PASSWORD)
    h.clock.advance(120) // past expiry and the authorizer's 30 s clock-skew allowance

    const me = await client.fetch(`${h.url}/me`, { headers: { accept: 'application/json' } })
    expect(me.status).toBe(200)
    expect(fetch.calls).toEqual(['POST /login', 'GET /me', 'POST /token', 'GET /me'])
  })

  it('sends a request at most twice when the server keeps refusing the token', async () => {
    const setup = mobileClient({
      intercept: ({ path }) =>
        path === '/me'
          ? answer(
              401,
              { error: 'invalid_token', error_description: 'no' },
              { 'www-authenticate': 'Bearer error="invalid_token"' },
            )
          : undefined,
    })
    await loggedIn(setup)
    const me = await setup.client.fetch('/me')
    expect(me.status).toBe(401)
    expect(setup.fetch.count('GET', '/me')).toBe(2)
    expect(setup.fetch.count('POST', '/token')).toBe(1)
    expect(setup.expired).toEqual([])
  })
})

describe('token client: changePassword', () => {
  const NEW_PASSWORD = 'the client’s new password'
  recordSecret(NEW_PASSWORD)

  it('changes the password: this session goes on, another device’s ends, the new password logs in', async () => {
    const phone = mobileClient()
    const tablet = mobileClient()
    const user = await loggedIn(phone)
    await tablet.client.login(user.username, PASSWORD)

    await phone.client.changePassword(PASSWORD, NEW_PASSWORD)
    expect(phone.fetch.calls).toEqual(['POST /login', 'POST /me/password'])
    expect((await phone.client.fetch('/me')).status).toBe(200)
    h.clock.advance(61)
    expect(await phone.client.getAccessToken()).toEqual(expect.any(String))
    expect(phone.expired).toEqual([])

    expect(await tablet.client.getAccessToken()).toBeNull()
    expect(tablet.expired).toEqual([{ reason: 'invalid_grant' }])
    const again = mobileClient()
    await expect(again.client.login(user.username, PASSWORD)).rejects.toMatchObject({
      code: 'invalid_grant',
    })
    await again.client.login(user.username, NEW_PASSWORD)
  })

  it('rejects a wrong current password with invalid_grant and keeps the session', async () => {
    const setup = mobileClient()
    await loggedIn(setup)
    const error = await setup.client
      .changePassword('not the password', NEW_PASSWORD)
      .catch((e) => e)
    expect(error).toBeInstanceOf(TokenClientError)
    expect(error).toMatchObject({ code: 'invalid_grant', status: 400, transient: false })
    expect((await setup.client.fetch('/me')).status).toBe(200)
    expect(setup.expired).toEqual([])
  })

  it('rejects a new password outside the rules with invalid_request, and sends it once', async () => {
    const setup = mobileClient()
    await loggedIn(setup)
    await expect(setup.client.changePassword(PASSWORD, 'short')).rejects.toMatchObject({
      code: 'invalid_request',
      status: 400,
    })
    expect(setup.fetch.count('POST', '/me/password')).toBe(1)
  })

  it('refreshes once and sends the form again when the server refuses the access token', async () => {
    const clientClock = new FakeClock(h.clock.now())
    const fetch = testFetch()
    const client = createTokenClient({
      baseUrl: h.url,
      clientId: MOBILE.client_id,
      fetch,
      clock: clientClock,
      autoRefresh: false,
    })
    clients.push(client)
    const user = await h.addUser()
    await client.login(user.username, PASSWORD)
    h.clock.advance(120) // the server's clock: the token has expired there

    await client.changePassword(PASSWORD, NEW_PASSWORD)
    expect(fetch.calls).toEqual([
      'POST /login',
      'POST /me/password',
      'POST /token',
      'POST /me/password',
    ])
    expect((await h.login(user, MOBILE.client_id, NEW_PASSWORD)).status).toBe(200)
  })

  it('rejects with login_required without a session', async () => {
    const setup = mobileClient()
    await expect(setup.client.changePassword(PASSWORD, NEW_PASSWORD)).rejects.toMatchObject({
      code: 'login_required',
    })
    expect(setup.fetch.calls).toEqual([])
  })
})

describe('token client: a lost answer and an app killed mid-refresh keep the session', () => {
  /** Lets the first /token reach the server, which commits the rotation, then loses the answer. */
  function losingFirstRefresh(lost: { refreshToken?: string }): Intercept {
    return async ({ path, nth, forward }) => {
      if (path !== '/token' || nth !== 1) return undefined
      const response = await forward()
      lost.refreshToken = ((await response.json()) as { refresh_token: string }).refresh_token
      throw new TypeError('fetch failed') // what fetch throws when the connection drops
    }
  }

  it('retries inside the grace window and gets the same refresh token the lost answer carried', async () => {
    const lost: { refreshToken?: string } = {}
    const setup = mobileClient({ intercept: losingFirstRefresh(lost) })
    const user = await loggedIn(setup)
    h.clock.advance(61)

    expect(await setup.client.getAccessToken()).toEqual(expect.any(String))
    expect(setup.fetch.count('POST', '/token')).toBe(2)
    expect(lost.refreshToken).toMatch(/^rt1_/)
    expect(await setup.storage.getItem(KEY)).toBe(lost.refreshToken)
    expect((await sessionOf(user)).generation).toBe(1) // the retry rotated nothing

    h.clock.advance(61) // and the session goes on
    expect(await setup.client.getAccessToken()).toEqual(expect.any(String))
    expect((await sessionOf(user)).generation).toBe(2)
    expect(setup.expired).toEqual([])
  })

  it('resumes from storage after the app was killed mid-refresh, within the grace window', async () => {
    const lost: { refreshToken?: string } = {}
    const storage = memoryStorage() // stands for the Keychain: it outlives the app
    const before = mobileClient({ storage, intercept: losingFirstRefresh(lost), attempts: 1 })
    const user = await loggedIn(before)
    h.clock.advance(61)
    await expect(before.client.getAccessToken()).rejects.toMatchObject({
      code: 'network_error',
      transient: true,
    })
    before.client.close() // killed

    h.clock.advance(5) // restarted 5 s later, inside the 10 s grace
    const after = mobileClient({ storage })
    expect(await after.client.getAccessToken()).toEqual(expect.any(String))
    expect(await storage.getItem(KEY)).toBe(lost.refreshToken)
    expect((await sessionOf(user)).generation).toBe(1)
    expect([...before.expired, ...after.expired]).toEqual([])
  })
})

describe('token client: transient failures never end a session', () => {
  it('rides out a 503 burst with back-off and keeps the session', async () => {
    const setup = mobileClient()
    const user = await loggedIn(setup)
    const stored = await setup.storage.getItem(KEY)
    h.clock.advance(61)
    failingReads = 3
    expect(await setup.client.getAccessToken()).toEqual(expect.any(String))
    expect(setup.fetch.count('POST', '/token')).toBe(4)
    expect(await setup.storage.getItem(KEY)).not.toBe(stored)
    expect((await sessionOf(user)).generation).toBe(1)
    expect(setup.expired).toEqual([])
  })

  it('gives up on a burst longer than its attempts with a transient error, and the session survives it', async () => {
    const setup = mobileClient()
    const user = await loggedIn(setup)
    const stored = await setup.storage.getItem(KEY)
    h.clock.advance(61)
    failingReads = 10
    const error = await setup.client.getAccessToken().catch((e) => e)
    expect(error).toMatchObject({ code: 'temporarily_unavailable', status: 503, transient: true })
    expect(error.retryAfterMs).toBeGreaterThan(0)
    expect(await setup.storage.getItem(KEY)).toBe(stored)
    expect(setup.expired).toEqual([])

    failingReads = 0 // the service is back
    expect(await setup.client.getAccessToken()).toEqual(expect.any(String))
    expect((await sessionOf(user)).generation).toBe(1)
  })

  it('waits out a 429 with Retry-After and network errors, and reports the last one', async () => {
    const setup = mobileClient({
      attempts: 3,
      intercept: ({ path, nth }) => {
        if (path !== '/token') return undefined
        if (nth === 1) return answer(429, { error: 'slow_down' }, { 'retry-after': '2' })
        throw new TypeError('fetch failed')
      },
    })
    await loggedIn(setup)
    h.clock.advance(61)
    const error = await setup.client.getAccessToken().catch((e) => e)
    expect(error).toMatchObject({ code: 'network_error', transient: true })
    expect(setup.fetch.count('POST', '/token')).toBe(3)
    expect(await setup.storage.getItem(KEY)).toMatch(/^rt1_/)
    expect(setup.expired).toEqual([])
  })

  it('abandons an attempt that gets no answer and retries it', async () => {
    const setup = mobileClient({
      timeoutMs: 50,
      intercept: ({ path, nth, signal }) =>
        path === '/token' && nth === 1
          ? new Promise<Response>((_, reject) => {
              signal.addEventListener('abort', () => reject(signal.reason))
            })
          : undefined,
    })
    const user = await loggedIn(setup)
    h.clock.advance(61)
    expect(await setup.client.getAccessToken()).toEqual(expect.any(String))
    expect(setup.fetch.count('POST', '/token')).toBe(2)
    expect((await sessionOf(user)).generation).toBe(1)
    expect(setup.expired).toEqual([])
  })

  it('keeps the session on a refusal that is not invalid_grant (a misconfigured client)', async () => {
    const setup = mobileClient({
      intercept: ({ path }) =>
        path === '/token' ? answer(401, { error: 'invalid_client' }) : undefined,
    })
    await loggedIn(setup)
    h.clock.advance(61)
    await expect(setup.client.getAccessToken()).rejects.toMatchObject({
      code: 'invalid_client',
      transient: false,
    })
    expect(setup.fetch.count('POST', '/token')).toBe(1)
    expect(await setup.storage.getItem(KEY)).toMatch(/^rt1_/)
    expect(setup.expired).toEqual([])
  })
})

describe('token client: invalid_grant ends the session', () => {
  it('fires session-expired exactly once for many callers, clears storage, and stays quiet after', async () => {
    const setup = mobileClient()
    await loggedIn(setup)
    const refreshToken = (await setup.storage.getItem(KEY)) as string
    expect(
      (await h.post('/revoke', { token: refreshToken, client_id: MOBILE.client_id })).status,
    ).toBe(200)
    h.clock.advance(61)

    const results = await Promise.allSettled([
      setup.client.getAccessToken(),
      setup.client.getAccessToken(),
      setup.client.fetch('/me'),
      setup.client.fetch('/me'),
    ])
    expect(results.slice(0, 2)).toEqual([
      { status: 'fulfilled', value: null },
      { status: 'fulfilled', value: null },
    ])
    for (const result of results.slice(2)) {
      expect(result).toMatchObject({ status: 'rejected', reason: { code: 'login_required' } })
    }
    expect(setup.expired).toEqual([{ reason: 'invalid_grant' }])
    expect(setup.fetch.count('POST', '/token')).toBe(1)
    expect(await setup.storage.getItem(KEY)).toBeNull()

    expect(await setup.client.getAccessToken()).toBeNull()
    expect(setup.fetch.count('POST', '/token')).toBe(1)
    expect(setup.expired).toHaveLength(1)
  })

  it('fires session-expired when the stored session of a restarted app is over', async () => {
    const storage = memoryStorage()
    const before = mobileClient({ storage })
    await loggedIn(before)
    before.client.close()
    h.clock.advance(8 * 24 * 3600) // past the 7-day idle timeout

    const after = mobileClient({ storage })
    expect(await after.client.getAccessToken()).toBeNull()
    expect(after.expired).toEqual([{ reason: 'invalid_grant' }])
  })

  it('logout revokes the session on the server and clears storage, without an event', async () => {
    const setup = mobileClient()
    await loggedIn(setup)
    const refreshToken = (await setup.storage.getItem(KEY)) as string
    recordSecret(refreshToken)
    await setup.client.logout()
    expect(await setup.storage.getItem(KEY)).toBeNull()
    expect(await setup.client.getAccessToken()).toBeNull()
    expect((await h.refresh(refreshToken, MOBILE.client_id)).body.error).toBe('invalid_grant')
    expect(setup.fetch.calls).toEqual(['POST /login', 'POST /revoke'])
    expect(setup.expired).toEqual([])
  })
})
