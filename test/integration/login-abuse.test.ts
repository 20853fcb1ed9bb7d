import { randomBytes } from 'node:crypto'
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { ConfigError, loadLoginBackoff } from '../../functions/config.js'
import { MAX_PASSWORD_BYTES, verifyPassword } from '../../functions/core/passwords.js'
import type { User } from '../../functions/core/ports.js'
import { backoffSeconds, DEFAULT_BACKOFF } from '../../functions/core/throttle.js'
import { type ProofKey, proofClaims, proofKey, signProof } from '../support/dpop.js'
import {
  addCheapUser,
  bearer,
  type Harness,
  NATIVE,
  PASSWORD,
  type Reply,
  startHarness,
} from '../support/harness.js'
import { capture, recordSecret } from '../support/secrets.js'

// Counts password checks (each one is a scrypt hash) while running the real one.
vi.mock('../../functions/core/passwords.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../functions/core/passwords.js')>()
  return { ...real, verifyPassword: vi.fn(real.verifyPassword) }
})
const passwordChecks = () => vi.mocked(verifyPassword).mock.calls.length

let h: Harness
let doc: DynamoDBDocumentClient

beforeAll(async () => {
  h = await startHarness()
  doc = DynamoDBDocumentClient.from(h.dynamodb)
})
afterAll(() => h.close())
beforeEach(() => vi.mocked(verifyPassword).mockClear())

const WRONG = 'not the password at all'
/** For tests that check a dozen passwords (scrypt, N=2^17): minutes on a busy machine. */
const SLOW = 180_000
const oauthError = (code: string) => ({ error: code, error_description: expect.any(String) })
const fresh = (prefix: string) => `${prefix}-${randomBytes(5).toString('hex')}`

const attempt = (username: string, password: string) => {
  recordSecret(password)
  return h.post('/login', { username, password, client_id: NATIVE.client_id })
}

/** The failed-logins record of a username, read strongly consistently from the table. */
async function failedLogins(username: string) {
  const { Item } = await doc.send(
    new GetCommand({
      TableName: h.tableName,
      Key: { pk: `USERNAME#${username}`, sk: 'THROTTLE' },
      ConsistentRead: true,
    }),
  )
  return Item
}

/** Fails `count` times in a row, waiting out each back-off with the fake clock. */
async function failTimes(username: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    let reply = await attempt(username, WRONG)
    if (reply.status === 429) {
      h.clock.advance(Number(reply.headers.get('retry-after')))
      reply = await attempt(username, WRONG)
    }
    expect(reply.status).toBe(400)
  }
}

/** Everything a client can observe of an answer except the date. */
const observable = (reply: Reply) => ({
  status: reply.status,
  text: reply.text,
  headers: [...reply.headers].filter(([name]) => name !== 'date'),
})

describe('per-username back-off', () => {
  it(
    'doubles the wait after each failure past the free ones, capped at 15 minutes, with 429 and Retry-After',
    async () => {
      const user = await h.addUser()
      for (let i = 0; i < DEFAULT_BACKOFF.freeFailures; i++) {
        expect((await attempt(user.username, WRONG)).status).toBe(400)
      }
      const waits: number[] = []
      for (let failure = DEFAULT_BACKOFF.freeFailures + 1; failure <= 15; failure++) {
        const failed = await attempt(user.username, WRONG)
        expect(failed.status).toBe(400)
        expect(failed.body).toEqual(oauthError('invalid_grant'))
        const throttled = await attempt(user.username, WRONG)
        expect(throttled.status).toBe(429)
        expect(throttled.body).toEqual({
          error: 'slow_down',
          error_description: 'too many attempts, try again later',
        })
        expect(throttled.headers.get('cache-control')).toBe('no-store')
        const wait = Number(throttled.headers.get('retry-after'))
        waits.push(wait)
        h.clock.advance(wait)
      }
      expect(waits).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900])
      expect(await failedLogins(user.username)).toMatchObject({ failures: 15 })
    },
    SLOW,
  )

  it('counts Retry-After down as time passes and refuses at once without checking the password', async () => {
    const user = await h.addUser()
    await failTimes(user.username, DEFAULT_BACKOFF.freeFailures + 4) // an 8 s back-off
    expect(backoffSeconds(DEFAULT_BACKOFF, DEFAULT_BACKOFF.freeFailures + 4)).toBe(8)
    h.clock.advance(3)
    const checks = passwordChecks()
    const reply = await attempt(user.username, PASSWORD)
    expect(reply.status).toBe(429)
    expect(reply.headers.get('retry-after')).toBe('5')
    expect(passwordChecks()).toBe(checks)
    // Fractions of a second round up: never tell a client to come back too early.
    h.clock.advance(4.5)
    expect((await attempt(user.username, PASSWORD)).headers.get('retry-after')).toBe('1')
  })

  it('answers the right password during back-off exactly like a wrong one, then accepts it and resets the count', async () => {
    const user = await h.addUser()
    await failTimes(user.username, DEFAULT_BACKOFF.freeFailures + 2) // a 2 s back-off
    const right = await attempt(user.username, PASSWORD)
    const wrong = await attempt(user.username, WRONG)
    expect(right.status).toBe(429)
    expect(observable(right)).toEqual(observable(wrong))

    h.clock.advance(2)
    const ok = await attempt(user.username, PASSWORD)
    expect(ok.status).toBe(200)
    expect(ok.body.refresh_token).toMatch(/^rt1_/)
    expect(await failedLogins(user.username)).toMatchObject({ failures: 0 })
    // The free failures are back.
    for (let i = 0; i < DEFAULT_BACKOFF.freeFailures; i++) {
      expect((await attempt(user.username, WRONG)).status).toBe(400)
    }
  })

  it('cannot be extended by attempts made during the back-off: the user gets in once it has passed', async () => {
    const user = await h.addUser()
    await failTimes(user.username, DEFAULT_BACKOFF.freeFailures + 6) // a 32 s back-off
    const checks = passwordChecks()
    const hammering = await Promise.all(
      Array.from({ length: 20 }, () => attempt(user.username, WRONG)),
    )
    expect(hammering.map((reply) => reply.status)).toEqual(Array(20).fill(429))
    expect(passwordChecks()).toBe(checks) // refused before any hashing
    h.clock.advance(32)
    expect((await attempt(user.username, PASSWORD)).status).toBe(200)
  })

  it('never waits longer than the cap, however many failures there were', async () => {
    expect(backoffSeconds(DEFAULT_BACKOFF, 1_000_000)).toBe(900)
    const user = await h.addUser()
    const now = h.clock.now()
    await Promise.all(
      Array.from({ length: 40 }, () =>
        h.loginAttempts.recordLoginFailure(user.username, {
          at: now,
          forgetBefore: now - 1000,
          expiresAt: now + 86_400_000,
        }),
      ),
    )
    const throttled = await attempt(user.username, PASSWORD)
    expect(throttled.status).toBe(429)
    expect(throttled.headers.get('retry-after')).toBe('900')
    h.clock.advance(900)
    expect((await attempt(user.username, PASSWORD)).status).toBe(200)
  })

  it('forgets failures a day after the last one, even before DynamoDB TTL deletes the record', async () => {
    const user = await h.addUser()
    await failTimes(user.username, DEFAULT_BACKOFF.freeFailures + 3)
    const record = await failedLogins(user.username)
    // Epoch seconds, for DynamoDB TTL: a day after the last failure.
    expect(record?.expires_at).toBe(Math.ceil(record?.last_failed_at / 1000) + 86_400)
    h.clock.advance(DEFAULT_BACKOFF.windowSeconds)
    expect((await attempt(user.username, WRONG)).status).toBe(400)
    expect(await failedLogins(user.username)).toMatchObject({ failures: 1 })
  })

  it('counts a disabled user with the right password as a failure, like a wrong password', async () => {
    const user = await h.addUser()
    await h.users.updateUser(user.sub, { status: 'disabled' })
    const reply = await attempt(user.username, PASSWORD)
    expect(reply.status).toBe(400)
    expect(reply.body).toEqual(oauthError('invalid_grant'))
    expect(await failedLogins(user.username)).toMatchObject({ failures: 1 })
  })

  it('emits the LoginThrottled metric for each throttled attempt', async () => {
    const user = await h.addUser()
    await failTimes(user.username, DEFAULT_BACKOFF.freeFailures + 1)
    const before = capture().output.length
    expect((await attempt(user.username, WRONG)).status).toBe(429)
    const logged = capture().output.slice(before).join('')
    expect(logged).toContain('"LoginThrottled"')
    expect(logged).not.toContain(user.username)
  })
})

describe('unknown usernames', () => {
  it(
    'are throttled exactly like known ones: same answers, same headers, one password check per attempt',
    async () => {
      const known = await h.addUser()
      const unknown = fresh('nobody')
      const observed: Record<string, unknown[]> = { known: [], unknown: [] }
      const checks: Record<string, number[]> = { known: [], unknown: [] }
      // Three free failures, the failure that starts a 1 s back-off, the right password
      // during it, the wait, one more failure, the right password during the new back-off.
      const steps = [WRONG, WRONG, WRONG, WRONG, PASSWORD, 'wait', WRONG, PASSWORD]
      for (const step of steps) {
        if (step === 'wait') {
          h.clock.advance(1)
          continue
        }
        for (const [who, username] of [
          ['known', known.username],
          ['unknown', unknown],
        ] as const) {
          const before = passwordChecks()
          observed[who]?.push(observable(await attempt(username, step)))
          checks[who]?.push(passwordChecks() - before)
        }
      }
      expect(observed.unknown).toEqual(observed.known)
      expect(checks.unknown).toEqual(checks.known)
      expect(checks.known).toEqual([1, 1, 1, 1, 0, 1, 0])
      expect(await failedLogins(unknown)).toMatchObject({ failures: 5 })
    },
    SLOW,
  )

  it('that no user can have (too long, ill-formed Unicode) are refused without a read, a hash or a record', async () => {
    const tooLong = 'x'.repeat(129)
    const before = passwordChecks()
    const reply = await attempt(tooLong, WRONG)
    expect(reply.status).toBe(400)
    expect(reply.body).toEqual(oauthError('invalid_grant'))
    const loneSurrogate = await h.post(
      '/login',
      {},
      { json: true, rawBody: '{"username":"a\\ud800","password":"x","client_id":"test-native"}' },
    )
    expect(loneSurrogate.status).toBe(400)
    expect(loneSurrogate.body).toEqual(oauthError('invalid_request'))
    expect(passwordChecks()).toBe(before)
    expect(await failedLogins(tooLong)).toBeUndefined()
  })

  it('outside the rule `users add` applies are refused without a read, a hash or a record', async () => {
    // Each is short and well-formed Unicode, but has a character no username may have.
    const impossible = [
      'has space',
      'semi;colon',
      'slash/name',
      'hash#throttle',
      'key🔑',
      'tab\tname',
    ]
    const before = passwordChecks()
    for (const username of impossible) {
      const reply = await attempt(username, WRONG)
      expect(reply.status, username).toBe(400)
      expect(reply.body).toEqual(oauthError('invalid_grant'))
      expect(await failedLogins(username), username).toBeUndefined()
    }
    expect(passwordChecks()).toBe(before)
  })
})

describe('concurrent attempts', () => {
  it('count every concurrent failure (an atomic counter, not read-modify-write)', async () => {
    const username = fresh('burst')
    const replies = await Promise.all(Array.from({ length: 4 }, () => attempt(username, WRONG)))
    const failed = replies.filter((reply) => reply.status === 400).length
    const throttled = replies.filter((reply) => reply.status === 429).length
    expect(failed + throttled).toBe(4)
    expect(failed).toBeGreaterThan(0)
    // Each answer that checked the password was counted exactly once.
    expect(await failedLogins(username)).toMatchObject({ failures: failed })
    expect(passwordChecks()).toBe(failed)
  })

  it(
    'check no more passwords in a burst right after a successful login than one guesser gets in a row before any wait; the rest get 429',
    async () => {
      const user = await h.addUser()
      expect((await attempt(user.username, PASSWORD)).status).toBe(200)
      // In a row, the free failures and the one that starts the first wait are checked at once.
      const beforeAnyWait = DEFAULT_BACKOFF.freeFailures + 1
      expect(backoffSeconds(DEFAULT_BACKOFF, beforeAnyWait - 1)).toBe(0)
      expect(backoffSeconds(DEFAULT_BACKOFF, beforeAnyWait)).toBeGreaterThan(0)
      vi.mocked(verifyPassword).mockClear()
      const replies = await Promise.all(
        Array.from({ length: 12 }, () => attempt(user.username, WRONG)),
      )
      expect(replies.map((reply) => reply.status).sort()).toEqual([
        ...Array(beforeAnyWait).fill(400),
        ...Array(12 - beforeAnyWait).fill(429),
      ])
      expect(passwordChecks()).toBe(beforeAnyWait)
      for (const reply of replies.filter((r) => r.status === 429)) {
        expect(Number(reply.headers.get('retry-after'))).toBeGreaterThan(0)
      }
      expect(await failedLogins(user.username)).toMatchObject({ failures: beforeAnyWait })
    },
    SLOW,
  )

  it('count parallel attempts with the right password too (no outcome is known before the check): past the free turns they get 429, and get in once it has passed', async () => {
    const user = await h.addUser()
    // Hold every password check until each attempt has taken its turn or been refused.
    const real = vi.mocked(verifyPassword).getMockImplementation() as typeof verifyPassword
    let release = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    vi.mocked(verifyPassword).mockImplementation(async (...args) => {
      await gate
      return real(...args)
    })
    let refused = 0
    try {
      const pending = Array.from({ length: 6 }, () =>
        attempt(user.username, PASSWORD).then((reply) => {
          if (reply.status === 429) refused++
          return reply
        }),
      )
      await vi.waitFor(() => expect(passwordChecks() + refused).toBe(6), { timeout: 30_000 })
      release()
      const replies = await Promise.all(pending)
      const beforeAnyWait = DEFAULT_BACKOFF.freeFailures + 1
      expect(replies.map((reply) => reply.status).sort()).toEqual([
        ...Array(beforeAnyWait).fill(200),
        ...Array(6 - beforeAnyWait).fill(429),
      ])
      const waits = replies.filter((r) => r.status === 429).map((r) => r.headers.get('retry-after'))
      expect(waits).toEqual(waits.map(() => '1'))
    } finally {
      release()
      vi.mocked(verifyPassword).mockImplementation(real)
    }
    h.clock.advance(1)
    expect((await attempt(user.username, PASSWORD)).status).toBe(200)
    // Each success took back its own count: nothing is left against the user.
    expect(await failedLogins(user.username)).toMatchObject({ failures: 0 })
  })

  it('adds up concurrent failures in the store exactly', async () => {
    const username = fresh('store-burst')
    const now = h.clock.now()
    await Promise.all(
      Array.from({ length: 25 }, () =>
        h.loginAttempts.recordLoginFailure(username, {
          at: now,
          forgetBefore: now - 1000,
          expiresAt: now + 60_000,
        }),
      ),
    )
    expect(await failedLogins(username)).toMatchObject({ failures: 25 })
  })

  it('let only one of several concurrent attempts check a password once a back-off has passed', async () => {
    const user = await h.addUser()
    await failTimes(user.username, DEFAULT_BACKOFF.freeFailures + 1)
    h.clock.advance(1)
    vi.mocked(verifyPassword).mockClear()
    const replies = await Promise.all(
      Array.from({ length: 6 }, () => attempt(user.username, WRONG)),
    )
    expect(replies.map((reply) => reply.status).sort()).toEqual([400, 429, 429, 429, 429, 429])
    expect(passwordChecks()).toBe(1)
    expect(await failedLogins(user.username)).toMatchObject({
      failures: DEFAULT_BACKOFF.freeFailures + 2,
    })
  })
})

describe('a refused DPoP proof', () => {
  const loginProof = (key: ProofKey) =>
    signProof(key, proofClaims(h.clock.now(), `${h.issuer}/login`))
  const withProof = (username: string, password: string, dpop: string) => {
    recordSecret(password)
    return h.post(
      '/login',
      { username, password, client_id: NATIVE.client_id },
      { headers: { dpop } },
    )
  }
  const expectReplay = (reply: Reply) => {
    expect(reply.status).toBe(400)
    expect(reply.body).toEqual({
      error: 'invalid_dpop_proof',
      error_description: 'invalid DPoP proof: proof already used',
    })
  }

  it('gives back only its own turn at /login: replays between wrong passwords leave their count, and the back-off comes as without them', async () => {
    const user = await addCheapUser(h, 'replay')
    const key = proofKey()
    const used = loginProof(key)
    for (let failure = 1; failure <= DEFAULT_BACKOFF.freeFailures + 1; failure++) {
      const wrong = await withProof(user.username, WRONG, failure === 1 ? used : loginProof(key))
      expect(wrong.status).toBe(400)
      expect(wrong.body.error).toBe('invalid_grant')
      expectReplay(await withProof(user.username, WRONG, used))
      expect(await failedLogins(user.username)).toMatchObject({ failures: failure })
    }
    vi.mocked(verifyPassword).mockClear()
    const throttled = await withProof(user.username, PASSWORD, loginProof(key))
    expect(throttled.status).toBe(429)
    expect(passwordChecks()).toBe(0)
  })

  it('at /login cannot reset the count that wrong current passwords at /me/password add up', async () => {
    const user = await addCheapUser(h, 'replay-change')
    const signedIn = await h.login(user)
    expect(signedIn.status).toBe(200)
    const change = (current: string) => {
      recordSecret(current)
      return h.post(
        '/me/password',
        { current_password: current, new_password: `new-${randomBytes(12).toString('hex')}` },
        { headers: bearer(signedIn.body.access_token) },
      )
    }
    // The attacker's own proof, used once with the victim's username.
    const key = proofKey()
    const used = loginProof(key)
    expect((await withProof(user.username, WRONG, used)).status).toBe(400)
    for (let failure = 2; failure <= DEFAULT_BACKOFF.freeFailures + 1; failure++) {
      const guess = await change(WRONG)
      expect(guess.status).toBe(400)
      expect(guess.body.error).toBe('invalid_grant')
      expectReplay(await withProof(user.username, WRONG, used))
      expect(await failedLogins(user.username)).toMatchObject({ failures: failure })
    }
    vi.mocked(verifyPassword).mockClear()
    const throttled = await change(PASSWORD)
    expect(throttled.status).toBe(429)
    expect(passwordChecks()).toBe(0)
  })
})

describe('credentials in the query string', () => {
  it('are refused with invalid_request on every body route, and the value is never logged', async () => {
    const user = await h.addUser()
    const before = capture().output.length
    const secrets: string[] = []
    for (const path of ['/login', '/token', '/revoke']) {
      for (const name of ['username', 'password', 'refresh_token', 'token', 'Password']) {
        const secret = `query-secret-${randomBytes(12).toString('hex')}`
        secrets.push(secret)
        recordSecret(secret)
        const reply = await h.post(`${path}?${name}=${secret}`, {
          username: user.username,
          password: PASSWORD,
          client_id: NATIVE.client_id,
          grant_type: 'refresh_token',
          refresh_token: 'rt1_x',
          token: 'rt1_x',
        })
        expect(reply.status, `${path} ${name}`).toBe(400)
        expect(reply.body).toEqual({
          error: 'invalid_request',
          error_description: 'credentials must be sent in the request body, never in the URL',
        })
        expect(reply.text).not.toContain(secret)
      }
    }
    const logged = capture().output.slice(before).join('')
    expect(logged).toContain('request refused') // the refusals were logged, without the values
    for (const secret of secrets) expect(logged).not.toContain(secret)
  })

  it('leave other query parameters alone', async () => {
    const user = await h.addUser()
    const reply = await h.post('/login?utm_source=x', {
      username: user.username,
      password: PASSWORD,
      client_id: NATIVE.client_id,
    })
    expect(reply.status).toBe(200)
  })
})

describe('password length', () => {
  const random = (length: number, alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-_') =>
    Array.from(randomBytes(length), (byte) => alphabet[byte % alphabet.length]).join('')

  it.each([
    ['64 characters', random(64)],
    ['72 characters', random(72)],
    ['200 characters', random(200)],
    ['64 characters of 4 bytes each', '🔑'.repeat(64)],
    [`${MAX_PASSWORD_BYTES} bytes`, random(MAX_PASSWORD_BYTES)],
  ])('accepts a password of %s', async (_, password) => {
    const user = await h.addUser({ password })
    const reply = await attempt(user.username, password)
    expect(reply.status).toBe(200)
  })

  it(
    'never truncates: a password differing only after byte 72, or only in its last character, fails',
    async () => {
      const password = random(200)
      const user: User = await h.addUser({ password })
      const after72 = `${password.slice(0, 72)}${random(128, 'ABCDEFGHIJ')}`
      const lastChar = `${password.slice(0, 199)}${password.endsWith('!') ? '?' : '!'}`
      for (const wrong of [after72, lastChar, password.slice(0, 72)]) {
        const reply = await attempt(user.username, wrong)
        expect(reply.status).toBe(400)
        expect(reply.body).toEqual(oauthError('invalid_grant'))
      }
      expect((await attempt(user.username, password)).status).toBe(200)
    },
    SLOW,
  )

  it(`refuses a password above ${MAX_PASSWORD_BYTES} bytes before hashing, and counts no failure`, async () => {
    const user = await h.addUser()
    for (const password of ['a'.repeat(MAX_PASSWORD_BYTES + 1), '€'.repeat(342)]) {
      const reply = await attempt(user.username, password)
      expect(reply.status).toBe(400)
      expect(reply.body).toEqual({
        error: 'invalid_request',
        error_description: `password must not exceed ${MAX_PASSWORD_BYTES} bytes`,
      })
    }
    expect(passwordChecks()).toBe(0)
    expect(await failedLogins(user.username)).toBeUndefined()
  })
})

describe('configuration', () => {
  it('defaults to 3 free failures, then 1 s doubling up to 15 minutes, forgotten after a day', () => {
    expect(loadLoginBackoff({})).toEqual(DEFAULT_BACKOFF)
    expect(DEFAULT_BACKOFF).toEqual({
      freeFailures: 3,
      baseSeconds: 1,
      maxSeconds: 900,
      windowSeconds: 86_400,
    })
  })

  it('reads the schedule from LOGIN_* variables and refuses a window shorter than the longest wait', () => {
    const env = {
      LOGIN_FREE_FAILURES: '5',
      LOGIN_BACKOFF_BASE_SECONDS: '2',
      LOGIN_BACKOFF_MAX_SECONDS: '600',
      LOGIN_FAILURE_WINDOW_SECONDS: '3600',
    }
    const policy = loadLoginBackoff(env)
    expect(policy).toEqual({
      freeFailures: 5,
      baseSeconds: 2,
      maxSeconds: 600,
      windowSeconds: 3600,
    })
    expect([5, 6, 7, 15].map((n) => backoffSeconds(policy, n))).toEqual([0, 2, 4, 600])
    expect(() => loadLoginBackoff({ ...env, LOGIN_FAILURE_WINDOW_SECONDS: '300' })).toThrow(
      new ConfigError('LOGIN_FAILURE_WINDOW_SECONDS must be at least LOGIN_BACKOFF_MAX_SECONDS'),
    )
    expect(() => loadLoginBackoff({ ...env, LOGIN_BACKOFF_MAX_SECONDS: '0' })).toThrow(
      /LOGIN_BACKOFF_MAX_SECONDS/,
    )
  })
})
