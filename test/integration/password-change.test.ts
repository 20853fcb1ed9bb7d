/**
 * `POST /me/password` through local mode (docs/design.md "Password change"):
 * the calling session lives on, every other session ends for good, the same
 * back-off as login, and a change that never overwrites another.
 */
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type DynamoDBClient, InternalServerError } from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { MAX_PASSWORD_BYTES, verifyPassword } from '../../functions/core/passwords.js'
import type { User } from '../../functions/core/ports.js'
import { DEFAULT_BACKOFF } from '../../functions/core/throttle.js'
import {
  bearer,
  type Harness,
  NATIVE,
  PASSWORD,
  type Reply,
  startHarness,
} from '../support/harness.js'
import { items } from '../support/items.js'
import { capture, recordSecret } from '../support/secrets.js'
import { decodePart } from '../support/tokens.js'

// Counts password checks (each one is a scrypt hash) while running the real one.
vi.mock('../../functions/core/passwords.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../functions/core/passwords.js')>()
  return { ...real, verifyPassword: vi.fn(real.verifyPassword) }
})
const passwordChecks = () => vi.mocked(verifyPassword).mock.calls.length
beforeEach(() => vi.mocked(verifyPassword).mockClear())

const NEW_PASSWORD = 'a brand new passphrase'
const WRONG = 'not the current password'
recordSecret(NEW_PASSWORD, WRONG)

/** For tests that hash a handful of passwords (scrypt, N=2^17): minutes on a busy machine. */
const SLOW = 180_000

interface Login {
  readonly access: string
  readonly refresh: string
  readonly sid: string
}

async function login(h: Harness, user: User, password = PASSWORD): Promise<Login> {
  const reply = await h.login(user, NATIVE.client_id, password)
  expect(reply.status).toBe(200)
  const access = reply.body.access_token as string
  return { access, refresh: reply.body.refresh_token, sid: decodePart(access, 1).sid as string }
}

function change(
  h: Harness,
  access: string,
  fields: { current_password?: string; new_password?: string },
  options: { json?: boolean } = {},
): Promise<Reply> {
  recordSecret(fields.current_password, fields.new_password)
  return h.post('/me/password', fields as Record<string, string>, {
    headers: bearer(access),
    json: options.json ?? false,
  })
}

const current = (password: string) => ({ current_password: password })

/** The user's password hash as stored, recorded as a secret the logs must not show. */
async function storedHash(h: Harness, user: User): Promise<string> {
  const hash = (await items(h.dynamodb, h.tableName).user(user.sub))?.password_hash as string
  recordSecret(hash)
  return hash
}

function expectInvalidToken(reply: Reply) {
  expect(reply.status).toBe(401)
  expect(reply.headers.get('www-authenticate')).toBe(
    'Bearer error="invalid_token", DPoP error="invalid_token", algs="ES256 RS256 EdDSA Ed25519"',
  )
  expect(reply.body).toEqual({ error: 'invalid_token', error_description: expect.any(String) })
}

/** Fails the next Query of a user's sessions (a change that stops before marking them revoked). */
class SessionQueryFault {
  armed = false
  instrument(client: DynamoDBClient): DynamoDBClient {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const values = (args.input as { ExpressionAttributeValues?: Record<string, unknown> })
          .ExpressionAttributeValues
        if (this.armed && context.commandName === 'QueryCommand' && values?.[':session']) {
          this.armed = false
          throw new InternalServerError({ message: 'injected', $metadata: {} })
        }
        return next(args)
      },
      { step: 'initialize', name: 'sessionQueryFault' },
    )
    return client
  }
}

describe('POST /me/password (non-strict authorizer)', () => {
  let h: Harness
  const fault = new SessionQueryFault()

  beforeAll(async () => {
    h = await startHarness({ dynamodb: (client) => fault.instrument(client) })
  })
  afterAll(() => h.close())

  it(
    'answers 204, ends every other session of the user for good, and the calling session lives on',
    async () => {
      const user = await h.addUser()
      const other = await h.addUser()
      const phone = await login(h, user)
      const tablet = await login(h, user)
      const caller = await login(h, user)
      const stranger = await login(h, other)
      const oldHash = await storedHash(h, user)

      const reply = await change(h, caller.access, {
        ...current(PASSWORD),
        new_password: NEW_PASSWORD,
      })
      expect(reply.status).toBe(204)
      expect(reply.text).toBe('')
      expect(reply.headers.get('cache-control')).toBe('no-store')

      // The new password works, the old one no longer does; the hash is a new one.
      expect(await storedHash(h, user)).not.toBe(oldHash)
      expect((await h.login(user)).body.error).toBe('invalid_grant')
      const fresh = await login(h, user, NEW_PASSWORD)

      // Every other session of the user: refused and marked revoked, with the reason.
      for (const ended of [phone, tablet]) {
        expect((await h.refresh(ended.refresh)).body.error).toBe('invalid_grant')
        expect(await h.sessions.getSession(ended.sid)).toMatchObject({
          status: 'revoked',
          revokedReason: 'password_changed',
        })
      }
      // The calling session goes on: its access token, its refresh token, its rotations.
      expect((await h.get('/me', bearer(caller.access))).status).toBe(200)
      const rotated = await h.refresh(caller.refresh)
      expect(rotated.status).toBe(200)
      expect((await h.refresh(rotated.body.refresh_token)).status).toBe(200)
      const listed = await h.get('/sessions', bearer(caller.access))
      expect(listed.body.sessions.map((s: { sid: string }) => s.sid).sort()).toEqual(
        [caller.sid, fresh.sid].sort(),
      )
      // Another user's session is not touched.
      expect((await h.refresh(stranger.refresh)).status).toBe(200)
    },
    SLOW,
  )

  it(
    'accepts JSON as well as a form, and reports the change without any password or hash in the logs',
    async () => {
      const user = await h.addUser()
      const caller = await login(h, user)
      const before = capture().output.length
      const reply = await change(
        h,
        caller.access,
        { ...current(PASSWORD), new_password: NEW_PASSWORD },
        { json: true },
      )
      expect(reply.status).toBe(204)
      const logged = capture().output.slice(before).join('')
      // The events (core/password-change.ts): password_changed, then revoke for the others.
      const lines = logged
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line))
      expect(lines).toContainEqual(
        expect.objectContaining({
          message: 'password_changed',
          client_id: NATIVE.client_id,
          sid: caller.sid,
        }),
      )
      expect(lines).toContainEqual(
        expect.objectContaining({ message: 'revoke', reason: 'password_changed', sessions: 0 }),
      )
      expect(logged).toContain('"PasswordChanges"')
      expect(logged).not.toContain(NEW_PASSWORD)
      expect(logged).not.toContain(PASSWORD)
      expect(logged).not.toContain(await storedHash(h, user))
      expect(await verifyPassword(NEW_PASSWORD, await storedHash(h, user))).toBe(true)
    },
    SLOW,
  )

  it(
    'ends the other sessions even when marking them revoked fails: the change itself voids them',
    async () => {
      const user = await h.addUser()
      const other = await login(h, user)
      const caller = await login(h, user)
      fault.armed = true
      const reply = await change(h, caller.access, {
        ...current(PASSWORD),
        new_password: NEW_PASSWORD,
      })
      expect(reply.status).toBe(204)
      expect(fault.armed).toBe(false) // the fault was met
      expect((await h.sessions.getSession(other.sid))?.status).toBe('active')
      expect((await h.refresh(other.refresh)).body.error).toBe('invalid_grant')
      const listed = await h.get('/sessions', bearer(caller.access))
      expect(listed.body.sessions.map((s: { sid: string }) => s.sid)).toEqual([caller.sid])
      expect((await h.refresh(caller.refresh)).status).toBe(200)
    },
    SLOW,
  )

  it(
    'ends a session created after the caller’s, even when marking it revoked fails: the cut is the change’s time, not the caller’s creation',
    async () => {
      const user = await h.addUser()
      const caller = await login(h, user)
      h.clock.advance(60)
      const later = await login(h, user)
      h.clock.advance(60)
      fault.armed = true
      const reply = await change(h, caller.access, {
        ...current(PASSWORD),
        new_password: NEW_PASSWORD,
      })
      expect(reply.status).toBe(204)
      expect(fault.armed).toBe(false) // the session query faulted: nothing was marked revoked
      expect((await h.sessions.getSession(later.sid))?.status).toBe('active')
      const refused = await h.refresh(later.refresh)
      expect(refused.status).toBe(400)
      expect(refused.body.error).toBe('invalid_grant')
      expect((await h.refresh(caller.refresh)).status).toBe(200)
    },
    SLOW,
  )

  it(
    'keeps the calling session only from the change on: a later logout everywhere ends it too',
    async () => {
      const user = await h.addUser()
      const caller = await login(h, user)
      expect(
        (await change(h, caller.access, { ...current(PASSWORD), new_password: NEW_PASSWORD }))
          .status,
      ).toBe(204)
      h.clock.advance(1)
      expect((await h.del('/sessions', bearer(caller.access))).status).toBe(204)
      expect((await h.refresh(caller.refresh)).body.error).toBe('invalid_grant')
    },
    SLOW,
  )

  it(
    'refuses a wrong current_password with 400 invalid_grant and changes nothing',
    async () => {
      const user = await h.addUser()
      const other = await login(h, user)
      const caller = await login(h, user)
      const hash = await storedHash(h, user)
      const before = capture().output.length
      const reply = await change(h, caller.access, {
        ...current(WRONG),
        new_password: NEW_PASSWORD,
      })
      expect(reply.status).toBe(400)
      expect(reply.body).toEqual({
        error: 'invalid_grant',
        error_description: 'the credentials or refresh token are invalid, expired or revoked',
      })
      expect(reply.text).not.toContain(WRONG)
      expect(await storedHash(h, user)).toBe(hash)
      const logged = capture().output.slice(before).join('')
      expect(logged).toContain('"event":"login_failed"')
      expect(logged).toContain('"reason":"password_change"')
      expect(logged).toContain('"code":"wrong_current_password"')
      expect(logged).not.toContain(user.username)
      expect((await h.refresh(other.refresh)).status).toBe(200)
      expect((await h.refresh(caller.refresh)).status).toBe(200)
    },
    SLOW,
  )

  it(
    'counts a wrong current_password as a failed login: after the free failures, 429 with Retry-After before any hashing, at /login too',
    async () => {
      const user = await h.addUser()
      const caller = await login(h, user)
      for (let i = 0; i < DEFAULT_BACKOFF.freeFailures + 1; i++) {
        const reply = await change(h, caller.access, {
          ...current(WRONG),
          new_password: NEW_PASSWORD,
        })
        expect(reply.status, `failure ${i + 1}`).toBe(400)
      }
      vi.mocked(verifyPassword).mockClear()
      const throttled = await change(h, caller.access, {
        ...current(PASSWORD),
        new_password: NEW_PASSWORD,
      })
      expect(throttled.status).toBe(429)
      expect(throttled.body.error).toBe('slow_down')
      expect(throttled.headers.get('retry-after')).toBe('1')
      const atLogin = await h.login(user)
      expect(atLogin.status).toBe(429)
      expect(passwordChecks()).toBe(0)

      // Once the wait is over, the right password changes it, and clears the count.
      h.clock.advance(1)
      expect(
        (await change(h, caller.access, { ...current(PASSWORD), new_password: NEW_PASSWORD }))
          .status,
      ).toBe(204)
      expect((await h.login(user, NATIVE.client_id, NEW_PASSWORD)).status).toBe(200)
    },
    SLOW,
  )

  it(
    'answers a user in back-off from failed logins with 429 before any hashing',
    async () => {
      const user = await h.addUser()
      const caller = await login(h, user)
      for (let i = 0; i < DEFAULT_BACKOFF.freeFailures + 1; i++) {
        recordSecret(WRONG)
        expect((await h.login(user, NATIVE.client_id, WRONG)).status).toBe(400)
      }
      vi.mocked(verifyPassword).mockClear()
      const reply = await change(h, caller.access, {
        ...current(PASSWORD),
        new_password: NEW_PASSWORD,
      })
      expect(reply.status).toBe(429)
      expect(Number(reply.headers.get('retry-after'))).toBeGreaterThan(0)
      expect(passwordChecks()).toBe(0)
    },
    SLOW,
  )

  it('applies the password rules of user creation to new_password, before any hashing', async () => {
    const user = await h.addUser()
    const caller = await login(h, user)
    vi.mocked(verifyPassword).mockClear()
    for (const newPassword of ['short', 'x'.repeat(MAX_PASSWORD_BYTES + 1), 'é'.repeat(513)]) {
      const reply = await change(h, caller.access, {
        ...current(PASSWORD),
        new_password: newPassword,
      })
      expect(reply.status, newPassword.slice(0, 8)).toBe(400)
      expect(reply.body).toEqual({
        error: 'invalid_request',
        error_description: 'new_password must be 8 to 1024 bytes',
      })
    }
    const tooLong = await change(h, caller.access, {
      current_password: 'x'.repeat(MAX_PASSWORD_BYTES + 1),
      new_password: NEW_PASSWORD,
    })
    expect(tooLong.status).toBe(400)
    expect(tooLong.body.error).toBe('invalid_request')
    expect(passwordChecks()).toBe(0)
    expect((await h.refresh(caller.refresh)).status).toBe(200)
  })

  it('refuses the current password as the new one, and a common password, naming the rule, before any hashing or turn', async () => {
    const user = await h.addUser()
    const caller = await login(h, user)
    vi.mocked(verifyPassword).mockClear()
    const hash = await storedHash(h, user)
    const same = await change(h, caller.access, { ...current(PASSWORD), new_password: PASSWORD })
    expect(same.status).toBe(400)
    expect(same.body).toEqual({
      error: 'invalid_request',
      error_description: 'new_password must differ from the current password',
    })
    // The list compares letter case aside: `Password1` is `password1`.
    for (const common of ['password1', 'Password1', 'sunshine', 'qwertyuiop', 'trustno1']) {
      const reply = await change(h, caller.access, { ...current(PASSWORD), new_password: common })
      expect(reply.status, common).toBe(400)
      expect(reply.body).toEqual({
        error: 'invalid_request',
        error_description: 'new_password is on a list of common passwords',
      })
      expect(reply.text).not.toContain(common)
    }
    expect(passwordChecks()).toBe(0)
    expect(await storedHash(h, user)).toBe(hash)
    // No turn was taken: the username's failed-login record counts nothing.
    const record = await items(h.dynamodb, h.tableName).failedLogins(user.username)
    expect(record?.failures ?? 0).toBe(0)
  })

  it('answers 400 invalid_request when a field is missing', async () => {
    const user = await h.addUser()
    const caller = await login(h, user)
    vi.mocked(verifyPassword).mockClear()
    for (const fields of [{ new_password: NEW_PASSWORD }, current(PASSWORD), {}]) {
      const reply = await change(h, caller.access, fields)
      expect(reply.status).toBe(400)
      expect(reply.body.error).toBe('invalid_request')
    }
    expect(passwordChecks()).toBe(0)
  })

  it('refuses the passwords in the URL, even with a complete body', async () => {
    const user = await h.addUser()
    const caller = await login(h, user)
    vi.mocked(verifyPassword).mockClear()
    for (const query of ['new_password=x', 'Current_Password=x']) {
      const reply = await h.post(
        `/me/password?${query}`,
        { current_password: PASSWORD, new_password: NEW_PASSWORD },
        { headers: bearer(caller.access) },
      )
      expect(reply.status, query).toBe(400)
      expect(reply.body.error_description).toBe(
        'credentials must be sent in the request body, never in the URL',
      )
    }
    expect(passwordChecks()).toBe(0)
  })

  it('needs a valid access token', async () => {
    const reply = await h.post('/me/password', {
      current_password: PASSWORD,
      new_password: NEW_PASSWORD,
    })
    expectInvalidToken(reply)
    expect(passwordChecks()).toBe(0)
  })

  it('refuses the access token of a session that has ended, before any hashing', async () => {
    const user = await h.addUser()
    const caller = await login(h, user)
    const hash = await storedHash(h, user)
    expect(
      (await h.post('/revoke', { token: caller.refresh, client_id: NATIVE.client_id })).status,
    ).toBe(200)
    // Non-strict: the authorizer still lets the token through; the route reads the session.
    expect((await h.get('/me', bearer(caller.access))).status).toBe(200)
    vi.mocked(verifyPassword).mockClear()
    const reply = await change(h, caller.access, {
      ...current(PASSWORD),
      new_password: NEW_PASSWORD,
    })
    expectInvalidToken(reply)
    expect(passwordChecks()).toBe(0)
    expect(await storedHash(h, user)).toBe(hash)
  })

  it(
    'lets exactly one of two concurrent changes win; the other gets invalid_grant and is not lost silently',
    async () => {
      const user = await h.addUser()
      const caller = await login(h, user)
      const candidates = ['first new passphrase', 'second new passphrase']
      const replies = await Promise.all(
        candidates.map((password) =>
          change(h, caller.access, { ...current(PASSWORD), new_password: password }),
        ),
      )
      const statuses = replies.map((reply) => reply.status)
      expect(statuses.sort()).toEqual([204, 400])
      const winner = candidates[replies.findIndex((reply) => reply.status === 204)] as string
      const loser = replies.find((reply) => reply.status === 400)
      expect(loser?.body.error).toBe('invalid_grant')
      const hash = await storedHash(h, user)
      expect(await verifyPassword(winner, hash)).toBe(true)
      expect((await h.refresh(caller.refresh)).status).toBe(200)
    },
    SLOW,
  )

  it(
    'survives a refresh of the calling session racing the change: both succeed, the session goes on',
    async () => {
      const user = await h.addUser()
      const caller = await login(h, user)
      const [changed, refreshed] = await Promise.all([
        change(h, caller.access, { ...current(PASSWORD), new_password: NEW_PASSWORD }),
        h.refresh(caller.refresh),
      ])
      expect(changed.status).toBe(204)
      expect(refreshed.status).toBe(200)
      expect((await h.refresh(refreshed.body.refresh_token)).status).toBe(200)
    },
    SLOW,
  )

  it(
    'without strict mode, leaves the other sessions’ access tokens valid until they expire',
    async () => {
      const user = await h.addUser()
      const other = await login(h, user)
      const caller = await login(h, user)
      expect(
        (await change(h, caller.access, { ...current(PASSWORD), new_password: NEW_PASSWORD }))
          .status,
      ).toBe(204)
      expect((await h.get('/me', bearer(other.access))).status).toBe(200)
      h.clock.advance(900 + 30)
      expectInvalidToken(await h.get('/me', bearer(other.access)))
    },
    SLOW,
  )
})

describe('POST /me/password with the strict authorizer', () => {
  const CACHE_SECONDS = 5
  let h: Harness

  beforeAll(async () => {
    h = await startHarness({
      strict: true,
      env: { AUTHORIZER_SESSION_CACHE_SECONDS: String(CACHE_SECONDS) },
    })
  })
  afterAll(() => h.close())

  it(
    'ends the other sessions’ access tokens within the session cache; the caller’s keeps working',
    async () => {
      const user = await h.addUser()
      const other = await login(h, user)
      const caller = await login(h, user)
      expect((await h.get('/me', bearer(other.access))).status).toBe(200)
      expect(
        (await change(h, caller.access, { ...current(PASSWORD), new_password: NEW_PASSWORD }))
          .status,
      ).toBe(204)
      h.clock.advance(CACHE_SECONDS)
      expectInvalidToken(await h.get('/me', bearer(other.access)))
      expect((await h.get('/me', bearer(caller.access))).status).toBe(200)
    },
    SLOW,
  )
})

/**
 * The optional breached-password check (off by default): a k-anonymity range API,
 * HIBP-compatible, here a stand-in on 127.0.0.1 that knows some SHA-1 suffixes.
 */
describe('POST /me/password with the breached-password check on', () => {
  let h: Harness
  const breached = 'a passphrase seen in some breach'
  const padded = 'a passphrase listed with count zero'
  recordSecret(breached, padded)
  const sha1 = (password: string) => createHash('sha1').update(password).digest('hex').toUpperCase()
  const asked: string[] = []
  let down = false
  const server = createServer((req, res) => {
    asked.push(req.url ?? '')
    const prefix = /^\/range\/([0-9A-F]{5})$/.exec(req.url ?? '')?.[1]
    if (down) {
      res.socket?.destroy()
      return
    }
    if (!prefix) {
      res.writeHead(404).end()
      return
    }
    const lines = [
      `${'0'.repeat(35)}:3`,
      ...[breached, padded]
        .filter((password) => sha1(password).startsWith(prefix))
        .map((password) => `${sha1(password).slice(5)}:${password === breached ? 42 : 0}`),
    ]
    res.writeHead(200, { 'content-type': 'text/plain' }).end(lines.join('\r\n'))
  })

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    h = await startHarness({
      env: {
        PASSWORD_BREACH_CHECK_URL: `http://127.0.0.1:${port}`,
        PASSWORD_BREACH_CHECK_TIMEOUT_MS: '2000',
      },
    })
  })
  afterAll(async () => {
    await h.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  it(
    'refuses a password the range API lists (count above 0), sending it the first 5 hex characters of the SHA-1 only',
    async () => {
      const user = await h.addUser()
      const caller = await login(h, user)
      asked.length = 0
      const reply = await change(h, caller.access, { ...current(PASSWORD), new_password: breached })
      expect(reply.status).toBe(400)
      expect(reply.body).toEqual({
        error: 'invalid_request',
        error_description: 'new_password appears in a known data breach',
      })
      expect(asked).toEqual([`/range/${sha1(breached).slice(0, 5)}`])
      // The right current password was checked: it clears the count, and nothing changed.
      expect((await items(h.dynamodb, h.tableName).failedLogins(user.username))?.failures).toBe(0)
      expect((await h.login(user)).status).toBe(200)
      // A suffix listed with count 0 is padding, not a breach.
      const fine = await change(h, caller.access, { ...current(PASSWORD), new_password: padded })
      expect(fine.status).toBe(204)
    },
    SLOW,
  )

  it(
    'accepts the password when the range API cannot be reached, and counts it in BreachCheckUnavailable',
    async () => {
      const user = await h.addUser()
      const caller = await login(h, user)
      const before = capture().output.length
      down = true
      const reply = await change(h, caller.access, {
        ...current(PASSWORD),
        new_password: NEW_PASSWORD,
      }).finally(() => {
        down = false
      })
      expect(reply.status).toBe(204)
      const logged = capture().output.slice(before).join('')
      expect(logged).toContain('"BreachCheckUnavailable"')
      expect(logged).not.toContain(NEW_PASSWORD)
    },
    SLOW,
  )
})
