import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  createTokenClient,
  localStorageStorage,
  type SessionExpiredEvent,
  type TokenClient,
} from '../../client/index.js'
import type { ClientConfig } from '../../functions/core/clients.js'
import type { User } from '../../functions/core/ports.js'
import { type TestFetch, testFetch } from '../support/client-fetch.js'
import { type Harness, PASSWORD, startHarness } from '../support/harness.js'

/**
 * Tabs of one browser, played by clients in one process: the browser APIs
 * the client coordinates with are small stand-ins here, so that a test can
 * hold back the channel's messages and replay the race Chromium rarely shows
 * (test/browser has the real thing). The server is the real one.
 */

/** navigator.locks: one holder per name, the others queue in order. */
class Locks {
  private readonly tails = new Map<string, Promise<unknown>>()
  request<T>(name: string, callback: () => Promise<T>): Promise<T> {
    const run = (this.tails.get(name) ?? Promise.resolve()).then(() => callback())
    this.tails.set(
      name,
      run.catch(() => {}),
    )
    return run
  }
}

/** BroadcastChannel: delivers to the other instances of the name; can hold messages back. */
class Channel {
  static readonly open = new Set<Channel>()
  static held: (() => void)[] | undefined
  static deliverHeld() {
    const held = Channel.held ?? []
    Channel.held = undefined
    for (const deliver of held) deliver()
  }
  onmessage: ((event: { data: unknown }) => void) | null = null
  constructor(readonly name: string) {
    Channel.open.add(this)
  }
  postMessage(message: unknown) {
    const data = structuredClone(message)
    for (const other of Channel.open) {
      if (other === this || other.name !== this.name) continue
      const deliver = () => other.onmessage?.({ data })
      if (Channel.held) Channel.held.push(deliver)
      else setTimeout(deliver, 0)
    }
  }
  close() {
    Channel.open.delete(this)
  }
}

const TABS: ClientConfig = {
  client_id: 'test-tabs',
  type: 'spa',
  audience: 'https://api.test',
  scopes: ['openid', 'api'],
  access_token_ttl_seconds: 60,
}

let h: Harness
const clients: TokenClient[] = []

beforeAll(async () => {
  h = await startHarness({ clients: [TABS] })
})
beforeEach(() => {
  const items = new Map<string, string>()
  vi.stubGlobal('navigator', { locks: new Locks() })
  vi.stubGlobal('BroadcastChannel', Channel)
  vi.stubGlobal('localStorage', {
    getItem: (key: string) => items.get(key) ?? null,
    setItem: (key: string, value: string) => items.set(key, value),
    removeItem: (key: string) => items.delete(key),
  })
})
afterEach(() => {
  for (const client of clients.splice(0)) client.close()
  Channel.held = undefined
  vi.unstubAllGlobals()
})
afterAll(() => h.close())

interface Tab {
  client: TokenClient
  expired: SessionExpiredEvent[]
}

function openTabs(count: number, fetch: TestFetch): Tab[] {
  return Array.from({ length: count }, () => {
    const client = createTokenClient({
      baseUrl: h.url,
      clientId: TABS.client_id,
      storage: localStorageStorage(),
      fetch,
      clock: h.clock,
      crossTab: true,
      autoRefresh: false,
    })
    clients.push(client)
    const expired: SessionExpiredEvent[] = []
    client.on('session-expired', (event) => expired.push(event))
    return { client, expired }
  })
}

async function signedInTabs(count: number, fetch: TestFetch): Promise<[User, ...Tab[]]> {
  const tabs = openTabs(count, fetch)
  const user = await h.addUser()
  const others = tabs
    .slice(1)
    .map(({ client }) => new Promise((resolve) => client.on('refreshed', resolve)))
  await tabs[0]?.client.login(user.username, PASSWORD)
  await Promise.all(others) // the other tabs got the login's access token
  return [user, ...tabs]
}

async function generation(user: User): Promise<number> {
  const [session] = await h.sessions.listSessions(user.sub)
  return session?.generation ?? -1
}

describe('token client across tabs', () => {
  it('lets one tab refresh and hands the result to the others', async () => {
    const fetch = testFetch()
    const [user, a, b, c] = await signedInTabs(3, fetch)
    h.clock.advance(61)
    const tokens = await Promise.all([a, b, c].map((tab) => tab?.client.getAccessToken()))
    expect(new Set(tokens).size).toBe(1)
    expect(tokens[0]).toEqual(expect.any(String))
    expect(fetch.count('POST', '/token')).toBe(1)
    expect(await generation(user)).toBe(1)
  })

  it("waits for the winner's message when the lock passes before it arrives, instead of refreshing again", async () => {
    const fetch = testFetch()
    const [user, a, b] = await signedInTabs(2, fetch)
    h.clock.advance(61)
    Channel.held = [] // the lock will pass to tab B before tab A's message reaches it
    const first = a?.client.getAccessToken()
    const second = b?.client.getAccessToken()
    const token = await first
    expect(fetch.count('POST', '/token')).toBe(1)
    Channel.deliverHeld()
    expect(await second).toBe(token)
    expect(fetch.count('POST', '/token')).toBe(1)
    expect(await generation(user)).toBe(1)
  })

  it('ends the session in every tab when one logs out', async () => {
    const fetch = testFetch()
    const [, a, b] = await signedInTabs(2, fetch)
    const ended = new Promise((resolve) => b?.client.on('session-expired', resolve))
    await a?.client.logout()
    await ended
    expect(b?.expired).toEqual([{ reason: 'logout' }])
    expect(a?.expired).toEqual([])
    expect(await b?.client.getAccessToken()).toBeNull()
    expect(fetch.count('POST', '/token')).toBe(0)
  })

  it('tells every tab once when the server ends the session', async () => {
    const fetch = testFetch()
    const [user, a, b] = await signedInTabs(2, fetch)
    const [session] = await h.sessions.listSessions(user.sub)
    await h.sessions.revokeSession(session?.sid as string, 'revoked', h.clock.now())
    h.clock.advance(61)
    const told = new Promise((resolve) => b?.client.on('session-expired', resolve))
    expect(await a?.client.getAccessToken()).toBeNull()
    await told
    expect(await b?.client.getAccessToken()).toBeNull()
    expect(a?.expired).toEqual([{ reason: 'invalid_grant' }])
    expect(b?.expired).toEqual([{ reason: 'invalid_grant' }])
    expect(fetch.count('POST', '/token')).toBe(1)
  })

  it('falls back to working alone where Web Locks are missing', async () => {
    vi.stubGlobal('navigator', {})
    const fetch = testFetch()
    const [tab] = openTabs(1, fetch) as [Tab]
    const user = await h.addUser()
    await tab.client.login(user.username, PASSWORD)
    h.clock.advance(61)
    expect(await tab.client.getAccessToken()).toEqual(expect.any(String))
    expect(fetch.count('POST', '/token')).toBe(1)
    expect(await generation(user)).toBe(1)
    expect(Channel.open.size).toBe(0) // no channel was opened
  })
})
