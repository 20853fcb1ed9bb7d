/**
 * The secrets audit: every flow of the service, end to end over HTTP, while
 * every log line (Powertools writes to stdout, which test/setup.ts captures)
 * and every response is kept. Then: no refresh token, access token, password
 * or password hash in the logs; no password or hash in any response; no
 * presented token echoed in an error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashToken } from '../../functions/core/refresh-token.js'
import {
  bearer,
  type Harness,
  NATIVE,
  NO_GRACE,
  PASSWORD,
  type Reply,
  SPA,
  SPA_ORIGIN,
  startHarness,
} from '../support/harness.js'
import { capture, recordSecret } from '../support/secrets.js'

interface Exchange {
  readonly label: string
  readonly reply: Reply
  /** The secrets this request carried (tokens, passwords, cookies). */
  readonly presented: readonly string[]
}

let h: Harness
let logs: string
const exchanges: Exchange[] = []
/** Every secret the flows handled: tokens issued or presented, passwords, hashes. */
const secrets = {
  refreshTokens: new Set<string>(),
  accessTokens: new Set<string>(),
  passwords: new Set<string>(),
  hashes: new Set<string>(),
}

const WRONG = 'a wrong password, 0f3c9e'
const LONG = 'x'.repeat(1500)
const cookieOf = (reply: Reply) => (reply.headers.getSetCookie()[0] ?? '').split(';')[0] as string
const cookieValue = (cookie: string) => cookie.slice(cookie.indexOf('=') + 1)

/** Sends one request, keeps the exchange and harvests the tokens it returned. */
async function call(label: string, presented: string[], send: () => Promise<Reply>) {
  const reply = await send()
  exchanges.push({ label, reply, presented })
  for (const value of presented) {
    if (value.startsWith('rt1_')) secrets.refreshTokens.add(value)
  }
  if (reply.body?.refresh_token) secrets.refreshTokens.add(reply.body.refresh_token)
  if (reply.body?.access_token) secrets.accessTokens.add(reply.body.access_token)
  const cookie = /^[^=]+=([^;]+)/.exec(reply.headers.getSetCookie()[0] ?? '')?.[1]
  if (cookie) secrets.refreshTokens.add(cookie)
  return reply
}

beforeAll(async () => {
  h = await startHarness()
  const start = capture().output.length
  const user = await h.addUser()
  const other = await h.addUser({ password: 'another password, long enough' })
  secrets.passwords.add(PASSWORD).add(WRONG).add('another password, long enough')
  secrets.hashes.add(user.passwordHash).add(other.passwordHash)
  recordSecret(WRONG)
  const creds = (client = NATIVE.client_id, password = PASSWORD, username = user.username) => ({
    username,
    password,
    client_id: client,
  })

  // Login, refresh, grace replay, reuse detection.
  const login = await call('login', [PASSWORD], () => h.post('/login', creds()))
  const rt0 = login.body.refresh_token as string
  const refreshed = await call('refresh', [rt0], () => h.refresh(rt0))
  const rt1 = refreshed.body.refresh_token as string
  await call('grace replay', [rt0], () => h.refresh(rt0))
  h.clock.advance((NATIVE.reuse_grace_seconds ?? 10) + 1)
  await call('reuse detected', [rt0], () => h.refresh(rt0))
  await call('refresh after reuse', [rt1], () => h.refresh(rt1))

  // A client without grace, a JSON body, a narrower scope, another client's token.
  const noGrace = await call('login, no grace, JSON', [PASSWORD], () =>
    h.post('/login', { ...creds(NO_GRACE.client_id), scope: 'api' }, { json: true }),
  )
  const ng0 = noGrace.body.refresh_token as string
  await call('refresh with the wrong client', [ng0], () => h.refresh(ng0, NATIVE.client_id))
  await call('refresh, no grace', [ng0], () => h.refresh(ng0, NO_GRACE.client_id))
  await call('concurrent duplicate, no grace', [ng0], () => h.refresh(ng0, NO_GRACE.client_id))

  // Revoke, then use the revoked token.
  const second = await call('login again', [PASSWORD], () => h.post('/login', creds()))
  const rt2 = second.body.refresh_token as string
  const access2 = second.body.access_token as string
  await call('revoke', [rt2], () => h.post('/revoke', { token: rt2, client_id: NATIVE.client_id }))
  await call('refresh revoked', [rt2], () => h.refresh(rt2))
  await call('revoke unknown', ['rt1_not-a-real-token-at-all'], () =>
    h.post('/revoke', { token: 'rt1_not-a-real-token-at-all', client_id: NATIVE.client_id }),
  )

  // Failed and throttled logins, unknown usernames, a disabled user.
  for (let i = 0; i < 5; i++) {
    await call('failed login', [WRONG], () => h.post('/login', creds(undefined, WRONG)))
  }
  const throttled = await call('throttled login, right password', [PASSWORD], () =>
    h.post('/login', creds()),
  )
  h.clock.advance(Number(throttled.headers.get('retry-after')))
  for (let i = 0; i < 5; i++) {
    await call('unknown username', [PASSWORD], () =>
      h.post('/login', creds(undefined, PASSWORD, 'nobody-at-all')),
    )
  }
  await h.users.updateUser(other.sub, { status: 'disabled' })
  await call('disabled user', ['another password, long enough'], () =>
    h.post('/login', creds(undefined, 'another password, long enough', other.username)),
  )

  // Bad requests that carry secrets.
  const raw = (
    label: string,
    body: string,
    type: string,
    path = '/login',
    presented = [PASSWORD],
  ) =>
    call(label, presented, () =>
      h.post(path, {}, { rawBody: body, headers: { 'content-type': type } }),
    )
  await raw('malformed JSON', `{"password":"${PASSWORD}"`, 'application/json')
  await raw('JSON array', `["${PASSWORD}"]`, 'application/json')
  await raw('non-string member', `{"password":["${PASSWORD}"],"x":1}`, 'application/json')
  await raw('wrong content type', `password=${PASSWORD}`, 'text/plain')
  await raw(
    'repeated parameter',
    `username=${user.username}&password=${encodeURIComponent(PASSWORD)}&password=${encodeURIComponent(PASSWORD)}&client_id=${NATIVE.client_id}`,
    'application/x-www-form-urlencoded',
  )
  await raw(
    'body too large',
    `password=${encodeURIComponent(PASSWORD)}&pad=${'p'.repeat(9000)}`,
    'application/x-www-form-urlencoded',
  )
  await call('password in the query string', [PASSWORD], () =>
    h.post(`/login?password=${encodeURIComponent(PASSWORD)}`, creds()),
  )
  await call('refresh token in the query string', [rt1], () =>
    h.post(`/token?refresh_token=${rt1}`, {
      grant_type: 'refresh_token',
      client_id: NATIVE.client_id,
    }),
  )
  recordSecret(LONG)
  await call('password too long', [LONG], () => h.post('/login', creds(undefined, LONG)))
  await call('unknown client', [PASSWORD], () => h.post('/login', creds('nope')))
  await call('token with unknown client', [rt1], () => h.refresh(rt1, 'nope'))
  await call('unsupported grant', [PASSWORD], () =>
    h.post('/token', { grant_type: 'password', ...creds() }),
  )

  // Cookie mode.
  const origin = { origin: SPA_ORIGIN }
  const spaLogin = await call('cookie-mode login', [PASSWORD], () =>
    h.post('/login', creds(SPA.client_id), { headers: origin }),
  )
  const spaCookie = cookieOf(spaLogin)
  const spaRefresh = await call('cookie-mode refresh', [cookieValue(spaCookie)], () =>
    h.post(
      '/token',
      { grant_type: 'refresh_token', client_id: SPA.client_id },
      { headers: { ...origin, cookie: spaCookie } },
    ),
  )
  const spaCookie2 = cookieOf(spaRefresh)
  await call('cookie-mode refresh from another origin', [cookieValue(spaCookie2)], () =>
    h.post(
      '/token',
      { grant_type: 'refresh_token', client_id: SPA.client_id },
      { headers: { origin: 'https://evil.example', cookie: spaCookie2 } },
    ),
  )
  await call('cookie-mode revoke', [cookieValue(spaCookie2)], () =>
    h.post('/revoke', { client_id: SPA.client_id }, { headers: { ...origin, cookie: spaCookie2 } }),
  )
  await call('cookie-mode refresh after revoke', [cookieValue(spaCookie2)], () =>
    h.post(
      '/token',
      { grant_type: 'refresh_token', client_id: SPA.client_id },
      { headers: { ...origin, cookie: spaCookie2 } },
    ),
  )

  // Bearer routes and discovery.
  const third = await call('login for the bearer routes', [PASSWORD], () =>
    h.post('/login', creds(undefined, PASSWORD, user.username)),
  )
  const access3 = third.body.access_token as string
  const sid3 = JSON.parse(Buffer.from(access3.split('.')[1] as string, 'base64url').toString()).sid
  const tampered = `${access3.slice(0, -6)}AAAAAA`
  recordSecret(tampered)
  await call('GET /me', [access3], () => h.get('/me', bearer(access3)))
  await call('GET /me, tampered token', [tampered], () => h.get('/me', bearer(tampered)))
  await call('GET /me, revoked session (non-strict)', [access2], () =>
    h.get('/me', bearer(access2)),
  )
  await call('GET /sessions', [access3], () => h.get('/sessions', bearer(access3)))
  await call('DELETE /sessions/{sid}, not found', [access3], () =>
    h.send('/sessions/AAAAAAAAAAAAAAAAAAAAAA', { method: 'DELETE', headers: bearer(access3) }),
  )
  await call('DELETE /sessions/{sid}', [access3], () =>
    h.send(`/sessions/${sid3}`, { method: 'DELETE', headers: bearer(access3) }),
  )
  await call('DELETE /sessions', [access3], () =>
    h.send('/sessions', { method: 'DELETE', headers: bearer(access3) }),
  )
  await call('JWKS', [], () => h.get('/.well-known/jwks.json'))
  await call('discovery', [], () => h.get('/.well-known/openid-configuration'))

  for (const token of secrets.refreshTokens) secrets.hashes.add(hashToken(token))
  logs = capture().output.slice(start).join('')
}, 180_000)
afterAll(() => h.close())

const shown = (values: Iterable<string>, text: string) =>
  [...values].filter((value) => text.includes(value)).map((value) => `${value.slice(0, 8)}…`)

describe('the secrets audit', () => {
  it('ran every flow and captured its logs', () => {
    const statuses = new Set(exchanges.map(({ reply }) => reply.status))
    for (const status of [200, 204, 400, 401, 403, 404, 413, 415, 429]) {
      expect(statuses, `a ${status} answer`).toContain(status)
    }
    for (const event of [
      'login_failed',
      'reuse_detected',
      'grace_replay',
      'revoke',
      'LoginThrottled',
    ]) {
      expect(logs, event).toContain(event)
    }
    expect(secrets.refreshTokens.size).toBeGreaterThanOrEqual(8)
    expect(secrets.accessTokens.size).toBeGreaterThanOrEqual(6)
  })

  it('finds no refresh token, access token, password or hash in the logs', () => {
    expect(shown(secrets.refreshTokens, logs)).toEqual([])
    expect(shown(secrets.accessTokens, logs)).toEqual([])
    expect(shown(secrets.passwords, logs)).toEqual([])
    expect(shown(secrets.hashes, logs)).toEqual([])
  })

  it('finds no password or password hash in any response', () => {
    for (const { label, reply } of exchanges) {
      const headers = [...reply.headers].map(([name, value]) => `${name}: ${value}`).join('\n')
      expect(shown(secrets.passwords, reply.text + headers), label).toEqual([])
      expect(shown(secrets.hashes, reply.text + headers), label).toEqual([])
    }
  })

  it('never echoes a presented token or password in an error', () => {
    const errors = exchanges.filter(({ reply }) => reply.status >= 400)
    expect(errors.length).toBeGreaterThan(20)
    for (const { label, reply, presented } of errors) {
      const headers = [...reply.headers].map(([name, value]) => `${name}: ${value}`).join('\n')
      expect(shown(presented, reply.text + headers), label).toEqual([])
      expect(reply.body, label).toEqual({
        error: expect.any(String),
        error_description: expect.any(String),
      })
    }
  })
})
