/**
 * The token client with `dpop: createDpop()` against the real HTTP API (local mode on
 * DynamoDB Local): bound tokens, a fresh proof for every attempt, one nonce
 * challenge followed, the key deleted at logout.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  createDpop,
  createTokenClient,
  type DpopKeyStore,
  memoryDpopKeyStore,
  memoryStorage,
  type TokenClient,
  TokenClientError,
} from '../../client/index.js'
import type { ClientConfig } from '../../functions/core/clients.js'
import { answer, type Intercept, testFetch } from '../support/client-fetch.js'
import { FakeClock } from '../support/clock.js'
import { type Harness, PASSWORD, startHarness } from '../support/harness.js'
import { decodePart } from '../support/tokens.js'

const APP: ClientConfig = {
  client_id: 'test-dpop-app',
  type: 'native',
  audience: 'https://api.test',
  scopes: ['openid', 'api'],
  access_token_ttl_seconds: 60,
}
const NONCE_APP: ClientConfig = { ...APP, client_id: 'test-dpop-nonce-app', dpop_nonce: true }
const BEARER_APP: ClientConfig = { ...APP, client_id: 'test-bearer-app', dpop: 'disabled' }

let h: Harness
const clients: TokenClient[] = []

beforeAll(async () => {
  // WebCrypto dates the proofs by the client's clock: the harness's, so that both agree.
  h = await startHarness({ clients: [APP, NONCE_APP, BEARER_APP], clock: new FakeClock() })
})
afterEach(() => {
  for (const client of clients.splice(0)) client.close()
})
afterAll(() => h?.close())

interface Sent {
  readonly method: string
  readonly path: string
  readonly authorization: string | null
  readonly dpop: string | null
}

function dpopClient(
  clientId = APP.client_id,
  options: { intercept?: Intercept; store?: DpopKeyStore } = {},
) {
  const inner = testFetch(options.intercept)
  const sent: Sent[] = []
  const fetch = async (input: string | URL | Request, init?: RequestInit) => {
    const request = new Request(input, init)
    sent.push({
      method: request.method,
      path: new URL(request.url).pathname,
      authorization: request.headers.get('authorization'),
      dpop: request.headers.get('dpop'),
    })
    return inner(input, init)
  }
  const store = options.store ?? memoryDpopKeyStore()
  const client = createTokenClient({
    baseUrl: h.url,
    clientId,
    storage: memoryStorage(),
    fetch,
    clock: h.clock,
    autoRefresh: false,
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5, timeoutMs: 30_000 },
    dpop: createDpop({ store }),
  })
  clients.push(client)
  return { client, sent, store }
}

const claimsOf = (proof: string | null) => decodePart(proof as string, 1)

describe('token client with dpop', () => {
  it('logs in and calls the API with tokens bound to its key, a proof for every request', async () => {
    const { client, sent } = dpopClient()
    const user = await h.addUser()
    await client.login(user.username, PASSWORD)
    const access = (await client.getAccessToken()) as string
    const jkt = await client.dpopThumbprint()
    expect(decodePart(access, 1).cnf).toEqual({ jkt })

    const me = await client.fetch('/me')
    expect(me.status).toBe(200)
    expect(((await me.json()) as { jkt?: string }).jkt).toBe(jkt)

    const [login, call] = sent
    expect(claimsOf(login?.dpop ?? null)).toMatchObject({ htm: 'POST', htu: `${h.url}/login` })
    expect(call?.authorization).toBe(`DPoP ${access}`)
    expect(claimsOf(call?.dpop ?? null)).toMatchObject({ htm: 'GET', htu: `${h.url}/me` })
  })

  it('signs a new proof for each attempt of a refresh, so a retry is never a replay', async () => {
    const { client, sent } = dpopClient(APP.client_id, {
      intercept: (call) =>
        call.path === '/token' && call.nth === 1
          ? answer(503, { error: 'temporarily_unavailable' }, { 'retry-after': '0' })
          : undefined,
    })
    const user = await h.addUser()
    await client.login(user.username, PASSWORD)
    h.clock.advance(61)
    expect(await client.getAccessToken()).toEqual(expect.any(String))
    const proofs = sent.filter((call) => call.path === '/token').map((call) => call.dpop)
    expect(proofs).toHaveLength(2)
    expect(claimsOf(proofs[0] ?? null).jti).not.toBe(claimsOf(proofs[1] ?? null).jti)
  })

  it('follows one use_dpop_nonce challenge, then signs with the nonce it keeps', async () => {
    const { client, sent } = dpopClient(NONCE_APP.client_id)
    const user = await h.addUser()
    await client.login(user.username, PASSWORD)
    expect(sent.map((call) => call.path)).toEqual(['/login', '/login'])
    expect(claimsOf(sent[0]?.dpop ?? null).nonce).toBeUndefined()
    const nonce = claimsOf(sent[1]?.dpop ?? null).nonce
    expect(nonce).toEqual(expect.any(String))

    h.clock.advance(61)
    expect(await client.getAccessToken()).toEqual(expect.any(String))
    // The nonce from the last answer: no second challenge.
    expect(sent.map((call) => call.path)).toEqual(['/login', '/login', '/token'])
    expect(claimsOf(sent[2]?.dpop ?? null).nonce).toBe(nonce)
  })

  it('follows only one challenge: a server that keeps asking gets use_dpop_nonce back', async () => {
    const { client, sent } = dpopClient(APP.client_id, {
      intercept: (call) =>
        call.path === '/login'
          ? answer(400, { error: 'use_dpop_nonce' }, { 'dpop-nonce': `n${call.nth}` })
          : undefined,
    })
    const user = await h.addUser()
    const error = await client.login(user.username, PASSWORD).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TokenClientError)
    expect((error as TokenClientError).code).toBe('use_dpop_nonce')
    expect(sent).toHaveLength(2)
    expect(claimsOf(sent[1]?.dpop ?? null).nonce).toBe('n1')
  })

  it('deletes its key at logout: the next session has a new key', async () => {
    const { client, store } = dpopClient()
    const user = await h.addUser()
    await client.login(user.username, PASSWORD)
    const first = await client.dpopThumbprint()
    await client.logout()
    expect(await store.load()).toBeUndefined()
    await client.login(user.username, PASSWORD)
    expect(await client.dpopThumbprint()).not.toBe(first)
  })

  it('uses the Bearer scheme when the server issues bearer tokens', async () => {
    const { client, sent } = dpopClient(BEARER_APP.client_id)
    const user = await h.addUser()
    await client.login(user.username, PASSWORD)
    expect((await client.fetch('/me')).status).toBe(200)
    const call = sent.find((request) => request.path === '/me')
    expect(call?.authorization).toMatch(/^Bearer /)
    expect(call?.dpop).toBeNull()
  })
})

describe('token client with dpop on a device whose clock is off', () => {
  it('dates its proofs by the server’s Date: a clock three minutes behind still logs in and refreshes', async () => {
    const behind = { now: () => h.clock.now() - 180_000 }
    const inner = testFetch()
    const logins: number[] = []
    const client = createTokenClient({
      baseUrl: h.url,
      clientId: APP.client_id,
      storage: memoryStorage(),
      fetch: async (input, init) => {
        const response = await inner(input, init)
        if (new URL(new Request(input, init).url).pathname === '/login')
          logins.push(response.status)
        return response
      },
      clock: behind,
      autoRefresh: false,
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5, timeoutMs: 30_000 },
      dpop: createDpop({ store: memoryDpopKeyStore() }),
    })
    clients.push(client)
    const user = await h.addUser()
    await client.login(user.username, PASSWORD)
    // The first proof was refused as too old; its answer's Date told the client the server's time.
    expect(logins).toEqual([400, 200])
    expect((await client.fetch('/me')).status).toBe(200)
    h.clock.advance(61)
    expect(await client.getAccessToken()).toEqual(expect.any(String))
    expect(inner.count('POST', '/token')).toBe(1)
  })
})
