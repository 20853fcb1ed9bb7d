/**
 * Cookie mode's session hint: a first visit makes no refresh that can only be refused (a
 * 400 in the browser's console), and a noted session is restored from the cookie.
 */
import { describe, expect, it } from 'vitest'
import { cookieStorage, createTokenClient, memoryStorage } from '../../client/index.js'

function recordingFetch() {
  const calls: string[] = []
  const fetch = async (input: string | URL | Request, init?: RequestInit) => {
    const request = new Request(input, init)
    calls.push(`${request.method} ${new URL(request.url).pathname}`)
    const body = { access_token: 'an.access.token', token_type: 'Bearer', expires_in: 60 }
    return Response.json(body, { headers: { 'Cache-Control': 'no-store' } })
  }
  return { calls, fetch }
}

const options = {
  baseUrl: 'https://auth.test',
  clientId: 'spa',
  crossTab: false,
  autoRefresh: false,
}

describe('cookie mode with a session hint', () => {
  it('answers null on a first visit without a request', async () => {
    const { calls, fetch } = recordingFetch()
    const client = createTokenClient({
      ...options,
      fetch,
      storage: cookieStorage({ sessionHint: memoryStorage() }),
    })
    expect(await client.getAccessToken()).toBeNull()
    expect(calls).toEqual([])
    client.close()
  })

  it('notes the session at login, restores it from the cookie on the next visit, and forgets it at logout', async () => {
    const hint = memoryStorage()
    const first = recordingFetch()
    const before = createTokenClient({
      ...options,
      fetch: first.fetch,
      storage: cookieStorage({ sessionHint: hint }),
    })
    await before.login('someone', 'a password, long enough')
    expect(await hint.getItem('rotating-token.spa.cookie_session')).toBe('1')
    before.close()

    const next = recordingFetch()
    const after = createTokenClient({
      ...options,
      fetch: next.fetch,
      storage: cookieStorage({ sessionHint: hint }),
    })
    expect(await after.getAccessToken()).toBe('an.access.token')
    expect(next.calls).toEqual(['POST /token'])
    await after.logout()
    expect(await hint.getItem('rotating-token.spa.cookie_session')).toBeNull()
    after.close()
  })

  it('always tries the cookie with sessionHint: false', async () => {
    const { calls, fetch } = recordingFetch()
    const client = createTokenClient({
      ...options,
      fetch,
      storage: cookieStorage({ sessionHint: false }),
    })
    expect(await client.getAccessToken()).toBe('an.access.token')
    expect(calls).toEqual(['POST /token'])
    client.close()
  })
})
