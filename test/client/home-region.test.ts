/**
 * Several regions, `failover: 'relogin'` (docs/multi-region.md): when a session's home region
 * cannot be reached, the server refuses the refresh with `home region unavailable`, and the
 * client SDK ends the session with the reason `home_unreachable`, so that the app shows the
 * login, which the healthy region serves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  HOME_UNREACHABLE_DESCRIPTION as CLIENT_DESCRIPTION,
  createTokenClient,
  memoryStorage,
  type SessionExpiredEvent,
} from '../../client/index.js'
import { HOME_UNREACHABLE_DESCRIPTION } from '../../functions/core/errors.js'
import type { User } from '../../functions/core/ports.js'
import { NATIVE, PASSWORD } from '../support/harness.js'
import { startTwoRegions, type TwoRegions } from '../support/regions.js'

let sim: TwoRegions
let user: User

beforeAll(async () => {
  sim = await startTwoRegions({ clients: [NATIVE], replicationDelayMs: 10 })
  user = await sim.region['eu-west-1'].addUser()
  await sim.replicator.drain()
})

afterAll(async () => {
  await sim?.close()
})

describe('client SDK: a home region that cannot be reached', () => {
  it('knows the server’s text for it', () => {
    expect(CLIENT_DESCRIPTION).toBe(HOME_UNREACHABLE_DESCRIPTION)
  })

  it('ends the session with home_unreachable, and a new login in the healthy region works', async () => {
    const eu = sim.region['eu-west-1']
    const us = sim.region['us-east-1']
    // The one hostname: Route 53 sends the client to the EU region, then, once it is down, to the US.
    const route = (url: string) => (sim.isDown('eu-west-1') ? url.replace(eu.url, us.url) : url)
    const storage = memoryStorage()
    const client = createTokenClient({
      baseUrl: eu.url,
      clientId: NATIVE.client_id,
      storage,
      fetch: (input, init) => fetch(route(String(input)), init),
      clock: sim.clock,
      autoRefresh: false,
      retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1, timeoutMs: 30_000 },
    })
    const expired: SessionExpiredEvent[] = []
    client.on('session-expired', (event) => expired.push(event))
    try {
      await client.login(user.username, PASSWORD)
      expect(await storage.getItem(`rotating-token.${NATIVE.client_id}.refresh_token`)).toMatch(
        /^rt2_eu-west-1\./,
      )
      await sim.replicator.drain()
      sim.down('eu-west-1')
      sim.clock.advance(3600)
      expect(await client.getAccessToken()).toBeNull()
      expect(expired).toEqual([{ reason: 'home_unreachable' }])
      // The app shows the login; the US region serves it and homes the new session there.
      await client.login(user.username, PASSWORD)
      expect(await storage.getItem(`rotating-token.${NATIVE.client_id}.refresh_token`)).toMatch(
        /^rt2_us-east-1\./,
      )
      sim.clock.advance(3600)
      expect(await client.getAccessToken()).toEqual(expect.any(String))
      expect(expired).toHaveLength(1)
    } finally {
      sim.up('eu-west-1')
      client.close()
    }
  })
})
