import { type DynamoDBClient, InternalServerError } from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { User } from '../../functions/core/ports.js'
import { disableUser } from '../../functions/core/users.js'
import {
  bearer,
  type Harness,
  NATIVE,
  PASSWORD,
  type Reply,
  SPA_ORIGIN,
  startHarness,
} from '../support/harness.js'
import { items, newEvents } from '../support/items.js'
import { recordSecret } from '../support/secrets.js'
import { changes, snapshot } from '../support/store-snapshot.js'
import { decodePart } from '../support/tokens.js'

/** For tests that hash a new password (scrypt, N=2^17). */
const SLOW = 180_000

interface Login {
  readonly access: string
  readonly refresh: string
  readonly sid: string
}

function login(h: Harness, user: User, userAgent?: string): Promise<Login> {
  return loginWith(h, user, PASSWORD, userAgent)
}

async function loginWith(
  h: Harness,
  user: User,
  password: string,
  userAgent?: string,
): Promise<Login> {
  const reply = await h.post(
    '/login',
    { username: user.username, password, client_id: NATIVE.client_id },
    userAgent ? { headers: { 'user-agent': userAgent } } : {},
  )
  expect(reply.status).toBe(200)
  const access = reply.body.access_token as string
  return { access, refresh: reply.body.refresh_token, sid: decodePart(access, 1).sid as string }
}

function expectInvalidToken(reply: Reply, presented?: string) {
  expect(reply.status).toBe(401)
  expect(reply.headers.get('www-authenticate')).toBe(
    'Bearer error="invalid_token", DPoP error="invalid_token", algs="ES256 RS256 EdDSA Ed25519"',
  )
  expect(reply.headers.get('content-type')).toBe('application/json')
  expect(reply.body).toEqual({ error: 'invalid_token', error_description: expect.any(String) })
  if (presented) expect(reply.text).not.toContain(presented)
}

describe('bearer routes through local mode (default, non-strict authorizer)', () => {
  let h: Harness
  let alice: User
  let bob: User

  beforeAll(async () => {
    h = await startHarness()
    alice = await h.addUser({ roles: ['reader', 'writer'] })
    bob = await h.addUser()
  })
  afterAll(() => h.close())

  describe('GET /me', () => {
    it('returns the claims the authorizer verified', async () => {
      const a = await login(h, alice)
      const reply = await h.get('/me', bearer(a.access))
      expect(reply.status).toBe(200)
      expect(reply.headers.get('cache-control')).toBe('no-store')
      expect(reply.body).toEqual(decodePart(a.access, 1))
      expect(reply.body).toMatchObject({ sub: alice.sub, roles: ['reader', 'writer'] })
    })

    it('answers 401 invalid_token with WWW-Authenticate when the token is missing', async () => {
      expectInvalidToken(await h.get('/me'))
      expectInvalidToken(await h.get('/me', { authorization: 'Bearer' }))
      expectInvalidToken(await h.get('/me', { authorization: 'Basic YTpi' }))
    })

    it('answers 401 to a forged or tampered token and never echoes it', async () => {
      const a = await login(h, alice)
      const [header, , signature] = a.access.split('.')
      const tampered = `${header}.${Buffer.from(JSON.stringify({ ...decodePart(a.access, 1), roles: ['admin'] })).toString('base64url')}.${signature}`
      expectInvalidToken(await h.get('/me', bearer(tampered)), tampered)
      expectInvalidToken(await h.get('/me', bearer('not-a-jwt')), 'not-a-jwt')
    })

    it('lets a browser on an allowed origin read the 401 (CORS headers on the refusal)', async () => {
      const reply = await h.get('/me', { origin: SPA_ORIGIN })
      expectInvalidToken(reply)
      expect(reply.headers.get('access-control-allow-origin')).toBe(SPA_ORIGIN)
      const stranger = await h.get('/me', { origin: 'https://evil.example' })
      expect(stranger.headers.get('access-control-allow-origin')).toBeNull()
    })
  })

  describe('GET /sessions', () => {
    it("lists the caller's live sessions newest first, marks the current one, and shows no token material", async () => {
      const carol = await h.addUser()
      const first = await login(h, carol, 'first-device/1.0')
      h.clock.advance(1)
      const second = await login(h, carol, 'second-device/2.0')
      await login(h, bob)
      const reply = await h.get('/sessions', bearer(second.access))
      expect(reply.status).toBe(200)
      expect(reply.body.sessions).toEqual([
        {
          sid: second.sid,
          client_id: NATIVE.client_id,
          created_at: new Date(h.clock.now()).toISOString(),
          last_used_at: new Date(h.clock.now()).toISOString(),
          expires_at: new Date(h.clock.now() + 7 * 24 * 3600 * 1000).toISOString(),
          user_agent: 'second-device/2.0',
          current: true,
        },
        expect.objectContaining({ sid: first.sid, user_agent: 'first-device/1.0', current: false }),
      ])
      for (const secret of [first.refresh, second.refresh, first.access, second.access]) {
        expect(reply.text).not.toContain(secret)
      }
      expect(reply.text).not.toMatch(/hash|grace|generation/)
    })

    it('leaves out revoked and expired sessions', async () => {
      const dave = await h.addUser()
      const old = await login(h, dave)
      h.clock.advance(8 * 24 * 3600) // past the 7-day idle timeout
      const revoked = await login(h, dave)
      expect(
        (await h.post('/revoke', { token: revoked.refresh, client_id: NATIVE.client_id })).status,
      ).toBe(200)
      const live = await login(h, dave)
      const reply = await h.get('/sessions', bearer(live.access))
      expect(reply.body.sessions.map((s: { sid: string }) => s.sid)).toEqual([live.sid])
      expect(old.sid).not.toBe(live.sid)
    })
  })

  describe('DELETE /sessions/{sid}', () => {
    it("ends one of the caller's sessions: 204, its refresh token stops working, the others go on", async () => {
      const erin = await h.addUser()
      const phone = await login(h, erin)
      const laptop = await login(h, erin)
      const reply = await h.del(`/sessions/${phone.sid}`, bearer(laptop.access))
      expect(reply.status).toBe(204)
      expect(reply.text).toBe('')
      expect((await h.refresh(phone.refresh)).body.error).toBe('invalid_grant')
      expect((await h.refresh(laptop.refresh)).status).toBe(200)
      const list = await h.get('/sessions', bearer(laptop.access))
      expect(list.body.sessions.map((s: { sid: string }) => s.sid)).toEqual([laptop.sid])
      // Ending it again is not an error: the caller's session is ended either way.
      expect((await h.del(`/sessions/${phone.sid}`, bearer(laptop.access))).status).toBe(204)
    })

    it("answers 404 for another user's session and leaves that session alone", async () => {
      const mine = await login(h, alice)
      const theirs = await login(h, bob)
      const reply = await h.del(`/sessions/${theirs.sid}`, bearer(mine.access))
      expect(reply.status).toBe(404)
      expect(reply.body).toEqual({ error: 'not_found', error_description: expect.any(String) })
      expect((await h.refresh(theirs.refresh)).status).toBe(200)
    })

    it('answers 404 for an unknown, malformed or oversized sid', async () => {
      const mine = await login(h, alice)
      for (const sid of [
        'AAAAAAAAAAAAAAAAAAAAAA',
        'no%20such',
        'x'.repeat(3000),
        '..%2F..%2Fetc',
      ]) {
        const reply = await h.del(`/sessions/${sid}`, bearer(mine.access))
        expect(reply.status, sid.slice(0, 20)).toBe(404)
        expect(reply.body.error).toBe('not_found')
      }
    })

    it('needs a valid access token', async () => {
      const theirs = await login(h, bob)
      expectInvalidToken(await h.del(`/sessions/${theirs.sid}`))
      expect((await h.refresh(theirs.refresh)).status).toBe(200)
    })
  })

  describe('DELETE /sessions (logout everywhere)', () => {
    it("ends every session of the caller's and no one else's", async () => {
      const frank = await h.addUser()
      const sessions = [await login(h, frank), await login(h, frank), await login(h, frank)]
      const other = await login(h, bob)
      expect((await h.del('/sessions', bearer(sessions[0]?.access as string))).status).toBe(204)
      for (const s of sessions)
        expect((await h.refresh(s.refresh)).body.error).toBe('invalid_grant')
      expect((await h.refresh(other.refresh)).status).toBe(200)
      // A login after logout everywhere starts a working session.
      const fresh = await login(h, frank)
      expect((await h.refresh(fresh.refresh)).status).toBe(200)
      const list = await h.get('/sessions', bearer(fresh.access))
      expect(list.body.sessions.map((s: { sid: string }) => s.sid)).toEqual([fresh.sid])
    })

    it('without strict mode, leaves an issued access token valid until it expires', async () => {
      const gina = await h.addUser()
      const g = await login(h, gina)
      expect((await h.del('/sessions', bearer(g.access))).status).toBe(204)
      expect((await h.get('/me', bearer(g.access))).status).toBe(200)
      h.clock.advance(900 + 30)
      expectInvalidToken(await h.get('/me', bearer(g.access)))
    })
  })
})

/**
 * Counts the strict check's reads, and fails the next one when armed; fails
 * the next Query when armed (a logout everywhere that stops half-way).
 */
class ReadProbe {
  reads = 0
  failNext = false
  failNextQuery = false
  instrument(client: DynamoDBClient): DynamoDBClient {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'QueryCommand' && this.failNextQuery) {
          this.failNextQuery = false
          throw new InternalServerError({ message: 'injected', $metadata: {} })
        }
        if (context.commandName === 'BatchGetItemCommand') {
          const keys = (args.input as { RequestItems: Record<string, { Keys: unknown[] }> })
            .RequestItems
          const sizes = Object.values(keys).map((k) => k.Keys.length)
          if (sizes.length === 1 && sizes[0] === 2) {
            this.reads++
            if (this.failNext) {
              this.failNext = false
              throw new InternalServerError({ message: 'injected', $metadata: {} })
            }
          }
        }
        return next(args)
      },
      { step: 'initialize', name: 'readProbe' },
    )
    return client
  }
}

describe('strict mode (AUTHORIZER_STRICT=true): logout ends access within seconds', () => {
  let h: Harness
  const probe = new ReadProbe()
  const CACHE_SECONDS = 5

  beforeAll(async () => {
    h = await startHarness({
      strict: true,
      env: { AUTHORIZER_SESSION_CACHE_SECONDS: String(CACHE_SECONDS) },
      dynamodb: (client) => probe.instrument(client),
    })
  })
  afterAll(() => h.close())

  it('refuses the access token of a session ended through DELETE /sessions/{sid}', async () => {
    const user = await h.addUser()
    const a = await login(h, user)
    const b = await login(h, user)
    expect((await h.get('/me', bearer(a.access))).status).toBe(200)
    expect((await h.del(`/sessions/${a.sid}`, bearer(b.access))).status).toBe(204)
    h.clock.advance(CACHE_SECONDS)
    expectInvalidToken(await h.get('/me', bearer(a.access)), a.access)
    expect((await h.get('/me', bearer(b.access))).status).toBe(200)
  })

  it('refuses, with no cached verdict in the way, right after the session ends', async () => {
    const user = await h.addUser()
    const a = await login(h, user)
    const b = await login(h, user)
    expect((await h.del(`/sessions/${a.sid}`, bearer(b.access))).status).toBe(204)
    expectInvalidToken(await h.get('/me', bearer(a.access)))
  })

  it('refuses every session of the user after logout everywhere', async () => {
    const user = await h.addUser()
    const sessions = [await login(h, user), await login(h, user)]
    for (const s of sessions) expect((await h.get('/sessions', bearer(s.access))).status).toBe(200)
    expect((await h.del('/sessions', bearer(sessions[0]?.access as string))).status).toBe(204)
    h.clock.advance(CACHE_SECONDS)
    for (const s of sessions) expectInvalidToken(await h.get('/me', bearer(s.access)))
  })

  it('refuses the access token of a session revoked with its refresh token (POST /revoke)', async () => {
    const user = await h.addUser()
    const a = await login(h, user)
    await h.post('/revoke', { token: a.refresh, client_id: NATIVE.client_id })
    expectInvalidToken(await h.get('/me', bearer(a.access)))
  })

  it('refuses a session voided by sessionsValidAfter even if its item was never marked revoked', async () => {
    // A login that raced a logout everywhere: the session item stays active, the user's
    // sessions_valid_after voids it. The one read covers the user too.
    const user = await h.addUser()
    const a = await login(h, user)
    await h.users.updateUser(user.sub, { sessionsValidAfter: h.clock.now() + 1 })
    expect((await h.sessions.getSession(a.sid))?.status).toBe('active')
    expectInvalidToken(await h.get('/me', bearer(a.access)))
  })

  it('voids a session created in the same millisecond as a logout everywhere that stopped half-way', async () => {
    // The clock stands still: both logins and the logout share one instant. The logout
    // sets sessionsValidAfter, then fails to list the sessions, so none is marked revoked
    // (bookkeeping: the cut stands, and the answer is 204).
    const user = await h.addUser()
    const a = await login(h, user)
    const b = await login(h, user)
    probe.failNextQuery = true
    expect((await h.del('/sessions', bearer(b.access))).status).toBe(204)
    expect(probe.failNextQuery).toBe(false)
    expect((await h.sessions.getSession(a.sid))?.status).toBe('active')
    expect((await h.refresh(a.refresh)).body.error).toBe('invalid_grant')
    h.clock.advance(CACHE_SECONDS)
    expectInvalidToken(await h.get('/me', bearer(a.access)))
    expectInvalidToken(await h.get('/me', bearer(b.access)))
    // A login after the logout, at that same instant, starts a working session.
    const fresh = await login(h, user)
    expect((await h.get('/me', bearer(fresh.access))).status).toBe(200)
    expect((await h.refresh(fresh.refresh)).status).toBe(200)
  })

  it('GET /sessions leaves out the sessions a logout everywhere voided but never marked revoked', async () => {
    const user = await h.addUser()
    const a = await login(h, user)
    h.clock.advance(1)
    const b = await login(h, user)
    h.clock.advance(1)
    probe.failNextQuery = true
    expect((await h.del('/sessions', bearer(b.access))).status).toBe(204)
    expect(probe.failNextQuery).toBe(false)
    h.clock.advance(1)
    const fresh = await login(h, user)
    for (const s of [a, b]) expect((await h.sessions.getSession(s.sid))?.status).toBe('active')
    const list = await h.get('/sessions', bearer(fresh.access))
    expect(list.status).toBe(200)
    expect(list.body.sessions.map((s: { sid: string }) => s.sid)).toEqual([fresh.sid])
  })

  it('refuses a disabled user at once', async () => {
    const user = await h.addUser()
    const a = await login(h, user)
    await disableUser(h, h.clock, user.username)
    expectInvalidToken(await h.get('/me', bearer(a.access)))
  })

  it('reads each session at most once per cache window, refusals included', async () => {
    const user = await h.addUser()
    const a = await login(h, user)
    const before = probe.reads
    for (let i = 0; i < 5; i++) expect((await h.get('/me', bearer(a.access))).status).toBe(200)
    expect(probe.reads - before).toBe(1)
    // Revoke reads the session and its user the same way: counted apart.
    await h.post('/revoke', { token: a.refresh, client_id: NATIVE.client_id })
    const revoked = probe.reads
    h.clock.advance(CACHE_SECONDS)
    for (let i = 0; i < 5; i++) expectInvalidToken(await h.get('/me', bearer(a.access)))
    expect(probe.reads - revoked).toBe(1)
    h.clock.advance(CACHE_SECONDS)
    expectInvalidToken(await h.get('/me', bearer(a.access)))
    expect(probe.reads - revoked).toBe(2)
  })

  it('answers 503 with Retry-After, never a guess, when the session cannot be read', async () => {
    const user = await h.addUser()
    const a = await login(h, user)
    probe.failNext = true
    const reply = await h.get('/me', bearer(a.access))
    expect(reply.status).toBe(503)
    expect(reply.headers.get('retry-after')).toBe('1')
    expect(reply.body.error).toBe('temporarily_unavailable')
    expect((await h.get('/me', bearer(a.access))).status).toBe(200)
  })
})

/**
 * Issue 16, finding 2: a token outlives its session by up to its lifetime, and the
 * non-strict authorizer (or the strict one's cache) lets it through; the routes that act on
 * the caller's session check that it is live, as the password change does.
 */
for (const strict of [false, true]) {
  describe(`the access token of a session that has ended (${strict ? 'strict' : 'non-strict'} authorizer)`, () => {
    let h: Harness
    const NEW_PASSWORD = 'a new passphrase for the victim'
    recordSecret(NEW_PASSWORD)

    beforeAll(async () => {
      h = await startHarness(
        strict ? { strict: true, env: { AUTHORIZER_SESSION_CACHE_SECONDS: '5' } } : {},
      )
    })
    afterAll(() => h.close())

    it(
      'is refused by GET /sessions, DELETE /sessions/{sid} and DELETE /sessions with 401 invalid_token, and changes nothing',
      async () => {
        const victim = await h.addUser()
        const stolen = await login(h, victim, 'attacker/1.0')
        // The authorizer saw it live (strict mode caches that verdict).
        expect((await h.get('/sessions', bearer(stolen.access))).status).toBe(200)
        const kept = await login(h, victim, 'victim/1.0')
        const changed = await h.post(
          '/me/password',
          { current_password: PASSWORD, new_password: NEW_PASSWORD },
          { headers: bearer(kept.access) },
        )
        expect(changed.status).toBe(204)
        const fresh = await loginWith(h, victim, NEW_PASSWORD)
        const store = items(h.dynamodb, h.tableName)
        const before = await store.events()
        const table = await snapshot(h.dynamodb, h.tableName)

        const listed = await h.get('/sessions', bearer(stolen.access))
        expectInvalidToken(listed)
        expect(listed.text).not.toContain('victim/1.0')
        expectInvalidToken(await h.del(`/sessions/${fresh.sid}`, bearer(stolen.access)))
        expectInvalidToken(await h.del(`/sessions/${kept.sid}`, bearer(stolen.access)))
        expectInvalidToken(await h.del('/sessions', bearer(stolen.access)))

        expect(changes(table, await snapshot(h.dynamodb, h.tableName))).toEqual([])
        expect(newEvents(before, await store.events())).toEqual([])
        expect((await h.refresh(kept.refresh)).status).toBe(200)
        expect((await h.refresh(fresh.refresh)).status).toBe(200)
      },
      SLOW,
    )

    it('is refused after a logout everywhere, a revoke and a disable alike', async () => {
      const user = await h.addUser()
      const everywhere = await login(h, user)
      expect((await h.del('/sessions', bearer(everywhere.access))).status).toBe(204)
      const revoked = await login(h, user)
      await h.post('/revoke', { token: revoked.refresh, client_id: NATIVE.client_id })
      const disabled = await h.addUser()
      const last = await login(h, disabled)
      await disableUser(h, h.clock, disabled.username)
      for (const ended of [everywhere, revoked, last]) {
        expectInvalidToken(await h.get('/sessions', bearer(ended.access)))
        expectInvalidToken(await h.del(`/sessions/${ended.sid}`, bearer(ended.access)))
        expectInvalidToken(await h.del('/sessions', bearer(ended.access)))
      }
    })
  })
}

/** Issue 16, finding 3: an event only when something changed. */
describe('ending what has already ended', () => {
  let h: Harness

  beforeAll(async () => {
    h = await startHarness()
  })
  afterAll(() => h.close())

  it('writes no event for 30 × DELETE /sessions with the token of a session that has ended', async () => {
    const user = await h.addUser()
    const ended = await login(h, user)
    expect((await h.del('/sessions', bearer(ended.access))).status).toBe(204)
    const store = items(h.dynamodb, h.tableName)
    const before = await store.events()
    const replies = await Promise.all(
      Array.from({ length: 30 }, () => h.del('/sessions', bearer(ended.access))),
    )
    for (const reply of replies) expectInvalidToken(reply)
    expect(newEvents(before, await store.events())).toEqual([])
  })

  it('writes one sessions.ended_all for several logouts everywhere sent at once', async () => {
    const user = await h.addUser()
    const caller = await login(h, user)
    const other = await login(h, user)
    const store = items(h.dynamodb, h.tableName)
    const before = await store.events()
    const replies = await Promise.all(
      Array.from({ length: 5 }, () => h.del('/sessions', bearer(caller.access))),
    )
    expect(replies.filter((reply) => reply.status === 204).length).toBeGreaterThan(0)
    for (const reply of replies.filter((r) => r.status !== 204)) expectInvalidToken(reply)
    const written = newEvents(before, await store.events())
    expect(written.filter((event) => event.type === 'sessions.ended_all')).toHaveLength(1)
    // Each session was ended once, with one session.revoked.
    expect(
      written
        .filter((event) => event.type === 'session.revoked')
        .map((event) => event.data.sid)
        .sort(),
    ).toEqual([caller.sid, other.sid].sort())
  })

  it('answers 204 and writes nothing for DELETE /sessions/{sid} of a session that has ended', async () => {
    const user = await h.addUser()
    const voided = await login(h, user)
    const revoked = await login(h, user)
    expect(
      (await h.post('/revoke', { token: revoked.refresh, client_id: NATIVE.client_id })).status,
    ).toBe(200)
    // A cut that voids the first session without marking it revoked (a stop half-way).
    h.clock.advance(1)
    await h.users.updateUser(user.sub, { sessionsValidAfter: h.clock.now() })
    h.clock.advance(1)
    const caller = await login(h, user)
    const store = items(h.dynamodb, h.tableName)
    const before = await store.events()
    const table = await snapshot(h.dynamodb, h.tableName)
    for (let i = 0; i < 3; i++) {
      for (const ended of [voided, revoked]) {
        expect((await h.del(`/sessions/${ended.sid}`, bearer(caller.access))).status).toBe(204)
      }
    }
    expect(changes(table, await snapshot(h.dynamodb, h.tableName))).toEqual([])
    expect(newEvents(before, await store.events())).toEqual([])
    // A live one is ended once, with its one event.
    const live = await login(h, user)
    for (let i = 0; i < 3; i++) {
      expect((await h.del(`/sessions/${live.sid}`, bearer(caller.access))).status).toBe(204)
    }
    const written = newEvents(before, await store.events()).filter(
      (event) => event.type === 'session.revoked',
    )
    expect(written.map((event) => event.data.sid)).toEqual([live.sid])
  })
})
