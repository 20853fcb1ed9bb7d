/**
 * Property-based tests of every endpoint, over real HTTP through the local
 * adapter (so the API Gateway event mapping is exercised too), on DynamoDB
 * Local. Whatever arrives (bodies, content types, headers, cookies, query
 * strings, repeated parameters, huge and odd Unicode values, `__proto__` and
 * `constructor` keys), the service:
 *
 * - never answers 5xx;
 * - answers every error in the OAuth shape `{error, error_description}`;
 * - never echoes a presented token, password or cookie in an error;
 * - never changes the store when it refuses a request, except for the one
 *   change a failed password check makes: that username's failed-login count
 *   goes up by exactly one.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSession } from '../../functions/core/login.js'
import { couldBeUsername, normalizeUsername } from '../../functions/core/passwords.js'
import type { Session, User } from '../../functions/core/ports.js'
import { hashToken, newRefreshToken, newSessionId } from '../../functions/core/refresh-token.js'
import { type Harness, PASSWORD, type Reply, SPA_ORIGIN, startHarness } from '../support/harness.js'
import { recordSecret } from '../support/secrets.js'
import { type Change, changes, type Snapshot, snapshot } from '../support/store-snapshot.js'

// ---------------------------------------------------------------------------
// Values that exist only at run time: the generators use these placeholders.
// ---------------------------------------------------------------------------

const VALID_RT = '\uE000native-refresh-token\uE000'
const FORGED_RT = '\uE000forged-refresh-token\uE000'
const SPA_RT = '\uE000spa-refresh-token\uE000'
const SID = '\uE000session-id\uE000'
const ACCESS = '\uE000access-token\uE000'
const TAMPERED = '\uE000tampered-access-token\uE000'
const USERNAME = 'prop-user'

type Body =
  | { readonly kind: 'form'; readonly params: readonly (readonly [string, string])[] }
  | { readonly kind: 'json'; readonly value: unknown }
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array }

interface Plan {
  readonly method: string
  readonly path: string
  readonly query: readonly (readonly [string, string])[]
  readonly headers: Readonly<Record<string, string>>
  readonly cookies: readonly string[]
  /** `matching` picks the type that fits the body. */
  readonly contentType: string | undefined
  readonly body: Body | undefined
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

const odd = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '__proto__',
      'constructor',
      'prototype',
      'hasOwnProperty',
      'toString',
      '\u0000',
      '\u202e\u2066abc',
      'İstanbul',
      'ﬃ',
      'Å',
      'A\u030a',
      '\ufeff',
      '\ud800',
      '\udfff\ud800',
      '%00',
      '%',
      '+',
      '&=',
      'null',
      '[object Object]',
      '🧨'.repeat(300),
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 200, maxLength: 1500 }) },
  { weight: 1, arbitrary: fc.nat({ max: 12_000 }).map((n) => 'x'.repeat(n)) },
)

/** What a token or password looks like: long enough that an echo could not be chance. */
const secretish = fc.stringMatching(/^[A-Za-z0-9_-]{16,40}$/)

/** Printable Latin-1 (what an HTTP header value can carry), short. */
const headerValue = fc.string({
  unit: fc
    .integer({ min: 0x20, max: 0xff })
    .filter((c) => c !== 0x7f)
    .map((c) => String.fromCharCode(c)),
  maxLength: 80,
})

/** Mostly a plausible value, sometimes anything: deep paths get exercised, not only the parser. */
const withOdd = <T>(arbitrary: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 6, arbitrary }, { weight: 1, arbitrary: odd })

const refreshToken = fc.oneof(
  fc.constantFrom(VALID_RT, FORGED_RT, SPA_RT),
  secretish.map((s) => `rt1_${s}`),
  fc
    .tuple(
      fc.uuid(),
      fc.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      fc.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    )
    .map(([sub, sid, secret]) => `rt1_${sub}.${sid}.${secret}`),
  odd,
)

const clientId = withOdd(
  fc.constantFrom(
    'test-native',
    'test-native',
    'test-native',
    'test-spa',
    'test-spa',
    'test-no-grace',
    'nope',
    'TEST-NATIVE',
    '__proto__',
  ),
)
const scope = withOdd(
  fc.constantFrom('openid', 'api', 'openid api', 'admin', '  ', 'openid openid'),
)
const paramName = (names: string[]) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...names) },
    { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', '') },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  )

/** The route's own parameters, each maybe missing, plus extra and repeated ones. */
function params(
  fields: Record<string, fc.Arbitrary<string>>,
): fc.Arbitrary<(readonly [string, string])[]> {
  const names = Object.keys(fields)
  const maybe = Object.fromEntries(
    Object.entries(fields).map(([name, value]) => [
      name,
      fc.option(value, { freq: 6, nil: undefined }),
    ]),
  )
  return fc
    .tuple(
      fc.record(maybe),
      fc.oneof(
        { weight: 3, arbitrary: fc.constant([]) },
        { weight: 1, arbitrary: fc.array(fc.tuple(paramName(names), odd), { maxLength: 3 }) },
      ),
    )
    .map(([own, extra]) => [
      ...Object.entries(own).filter((entry): entry is [string, string] => entry[1] !== undefined),
      ...extra,
    ])
}

function body(entries: fc.Arbitrary<(readonly [string, string])[]>): fc.Arbitrary<Body> {
  const weird = fc.constantFrom<unknown>(0, 1.5, [], {}, null, true, ['x'], { a: 'b' })
  return fc.oneof(
    { weight: 6, arbitrary: entries.map((p) => ({ kind: 'form' as const, params: p })) },
    {
      weight: 5,
      arbitrary: entries.map((p) => ({ kind: 'json' as const, value: Object.fromEntries(p) })),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(entries, fc.nat(), weird).map(([p, at, value]) => {
        const object: Record<string, unknown> = Object.fromEntries(p)
        const keys = Object.keys(object)
        object[keys.length ? (keys[at % keys.length] as string) : 'x'] = value
        return { kind: 'json' as const, value: object }
      }),
    },
    { weight: 1, arbitrary: fc.jsonValue().map((value) => ({ kind: 'json' as const, value })) },
    {
      weight: 1,
      arbitrary: fc
        .string({ unit: 'binary', maxLength: 200 })
        .map((text) => ({ kind: 'text' as const, text })),
    },
    {
      weight: 1,
      arbitrary: fc
        .uint8Array({ maxLength: 200 })
        .map((bytes) => ({ kind: 'bytes' as const, bytes })),
    },
  )
}

const contentType = fc.oneof(
  { weight: 40, arbitrary: fc.constant('matching') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'application/x-www-form-urlencoded',
      'application/json',
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/x-www-form-urlencoded;charset=ISO-8859-1',
      'text/plain',
      'multipart/form-data; boundary=x',
      'application/jwt',
      '*/*',
      ';',
      'application/json, text/plain',
    ),
  },
  { weight: 1, arbitrary: headerValue },
  { weight: 1, arbitrary: fc.constant(undefined) },
)

const authorization = fc.oneof(
  { weight: 4, arbitrary: fc.constant(`Bearer ${ACCESS}`) },
  fc.constantFrom(
    `Bearer ${ACCESS}`,
    `Bearer ${ACCESS}`,
    `bearer ${ACCESS}`,
    `Bearer  ${ACCESS}`,
    `Bearer ${ACCESS}x`,
    `Bearer ${TAMPERED}`,
    `Basic ${ACCESS}`,
    `Bearer ${ACCESS}, Bearer ${ACCESS}`,
    'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
    'Bearer ',
  ),
  secretish.map((s) => `Bearer ${s}`),
  fc.nat({ max: 6000 }).map((n) => `Bearer ${'a'.repeat(n)}`),
  headerValue,
)

function headers(bearer: boolean): fc.Arbitrary<Record<string, string>> {
  return fc
    .tuple(
      fc.record(
        {
          origin: fc.oneof(
            fc.constantFrom(SPA_ORIGIN, SPA_ORIGIN, SPA_ORIGIN, 'https://evil.example', 'null'),
            headerValue,
          ),
          'user-agent': headerValue,
          'x-forwarded-for': headerValue,
          'accept-language': headerValue,
          ...(bearer ? { authorization } : { authorization: headerValue }),
        },
        { requiredKeys: bearer ? ['authorization'] : [] },
      ),
      fc.dictionary(fc.stringMatching(/^x-[a-z0-9-]{1,16}$/), headerValue, { maxKeys: 3 }),
    )
    .map(([known, extra]) => ({ ...extra, ...known }))
}

const cookieSafe = fc.string({
  unit: fc
    .integer({ min: 0x21, max: 0x7e })
    .filter((c) => c !== 0x3b && c !== 0x2c)
    .map((c) => String.fromCharCode(c)),
  maxLength: 60,
})
const cookies = fc.array(
  fc.oneof(
    fc
      .tuple(
        fc.oneof(
          fc.constantFrom('__Host-rt_test-spa', '__Host-rt_test-native', 'rt', '__proto__'),
          fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/),
        ),
        fc.oneof(fc.constantFrom(SPA_RT, VALID_RT, FORGED_RT), secretish, cookieSafe),
      )
      .map(([name, value]) => `${name}=${value}`),
    cookieSafe,
  ),
  { maxLength: 4 },
)

const query = fc.array(
  fc.tuple(
    fc.oneof(
      fc.constantFrom('password', 'username', 'refresh_token', 'token', 'Token', 'client_id'),
      fc.string({ maxLength: 10 }),
    ),
    fc.oneof(secretish, fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 20 })),
  ),
  { maxLength: 3 },
)

const otherMethod = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE')

function plan(route: {
  method: string
  paths: fc.Arbitrary<string>
  bearer?: boolean
  body?: fc.Arbitrary<Body>
}): fc.Arbitrary<Plan> {
  return fc.record({
    method: fc.oneof({ weight: 15, arbitrary: fc.constant(route.method) }, otherMethod),
    path: route.paths,
    query: fc.oneof({ weight: 6, arbitrary: fc.constant([]) }, query),
    headers: headers(route.bearer ?? false),
    cookies,
    contentType,
    body: route.body ? fc.option(route.body, { freq: 20, nil: undefined }) : fc.constant(undefined),
  })
}

const loginPlan = plan({
  method: 'POST',
  paths: fc.constant('/login'),
  body: body(
    params({
      username: withOdd(
        fc.constantFrom(USERNAME, USERNAME, ` ${USERNAME.toUpperCase()}`, 'ghost-user'),
      ),
      password: withOdd(
        fc.oneof(
          { weight: 1, arbitrary: fc.constant(PASSWORD) },
          { weight: 3, arbitrary: secretish.map((s) => `pw-${s}`) },
        ),
      ),
      client_id: clientId,
      scope,
    }),
  ),
})

const tokenPlan = plan({
  method: 'POST',
  paths: fc.constant('/token'),
  body: body(
    params({
      grant_type: withOdd(
        fc.constantFrom(
          'refresh_token',
          'refresh_token',
          'refresh_token',
          'password',
          'REFRESH_TOKEN',
        ),
      ),
      refresh_token: refreshToken,
      client_id: clientId,
      scope,
    }),
  ),
})

const revokePlan = plan({
  method: 'POST',
  paths: fc.constant('/revoke'),
  body: body(
    params({
      token: refreshToken,
      token_type_hint: withOdd(fc.constantFrom('refresh_token', 'access_token')),
      client_id: clientId,
    }),
  ),
})

const wellKnownPlan = plan({
  method: 'GET',
  paths: fc.constantFrom(
    '/.well-known/jwks.json',
    '/.well-known/openid-configuration',
    '/.well-known/oauth-authorization-server',
  ),
})

const pct = (text: string) =>
  Array.from(Buffer.from(text, 'utf8'), (b) => `%${b.toString(16).padStart(2, '0')}`).join('')
const sidSegment = fc.oneof(
  fc.constant(SID),
  fc.stringMatching(/^[A-Za-z0-9_-]{22}$/),
  odd.filter((text) => text.length > 0 && text.length < 2000).map(pct),
  fc.constantFrom('..', '%2F', '%00', '%E0%A4%A', 'a%2Fb', '__proto__', 'constructor'),
)

const bearerPlan = (method: string, paths: fc.Arbitrary<string>) =>
  plan({ method, paths, bearer: true, body: body(params({ sid: odd })) })

// ---------------------------------------------------------------------------
// Running a plan
// ---------------------------------------------------------------------------

let h: Harness
let user: User
let access: string

beforeAll(async () => {
  h = await startHarness()
  user = await h.addUser({ username: USERNAME })
  const login = await h.login(user)
  expect(login.status).toBe(200)
  access = login.body.access_token
}, 120_000)
afterAll(() => h.close())

/** A fresh session of the property user, written straight to the store (no password hash). */
async function mintSession(clientId: string): Promise<{ sid: string; token: string }> {
  const sid = newSessionId()
  const token = newRefreshToken({ sub: user.sub, sid })
  recordSecret(token, hashToken(token))
  const now = h.clock.now()
  const session: Session = {
    sid,
    sub: user.sub,
    clientId,
    scope: 'openid api',
    status: 'active',
    createdAt: now,
    lastUsedAt: now,
    idleExpiresAt: now + 7 * 86_400_000,
    absoluteExpiresAt: now + 30 * 86_400_000,
    generation: 0,
    currentHash: hashToken(token),
  }
  // As login writes it: after a logout everywhere at this instant, it starts after it.
  const created = await startSession(h.sessions, session, {
    sub: user.sub,
    passwordHash: user.passwordHash,
  })
  if (!created) throw new Error('could not mint a session')
  return { sid, token }
}

/** Replaces the placeholders with this run's real values. */
async function materialize(p: Plan): Promise<{ plan: Plan; replacements: Map<string, string> }> {
  const text = JSON.stringify(p, (_, value) => (value instanceof Uint8Array ? '' : value))
  const replacements = new Map<string, string>([
    [ACCESS, access],
    [TAMPERED, `${access.slice(0, -4)}${access.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`],
  ])
  if ([VALID_RT, FORGED_RT, SID].some((placeholder) => text.includes(placeholder))) {
    const native = await mintSession('test-native')
    replacements.set(VALID_RT, native.token)
    replacements.set(
      FORGED_RT,
      `${native.token.slice(0, native.token.lastIndexOf('.'))}.${'A'.repeat(43)}`,
    )
    replacements.set(SID, native.sid)
  }
  if (text.includes(SPA_RT)) replacements.set(SPA_RT, (await mintSession('test-spa')).token)
  const swap = (value: string) => {
    let out = value
    for (const [placeholder, real] of replacements) out = out.split(placeholder).join(real)
    return out
  }
  const deep = (value: unknown): unknown => {
    if (typeof value === 'string') return swap(value)
    if (Array.isArray(value)) return value.map(deep)
    if (value && typeof value === 'object' && !(value instanceof Uint8Array)) {
      const copy: Record<string, unknown> = {}
      for (const [key, member] of Object.entries(value)) {
        Object.defineProperty(copy, swap(key), {
          value: deep(member),
          enumerable: true,
          writable: true,
          configurable: true,
        })
      }
      return copy
    }
    return value
  }
  return { plan: deep(p) as Plan, replacements }
}

const FORM = 'application/x-www-form-urlencoded'
const JSON_TYPE = 'application/json'

function encode(p: Plan): { type: string | undefined; payload: string | Uint8Array | undefined } {
  const b = p.body
  const matching = (fallback: string) => (p.contentType === 'matching' ? fallback : p.contentType)
  if (!b || p.method === 'GET' || p.method === 'HEAD') {
    return { type: p.contentType === 'matching' ? undefined : p.contentType, payload: undefined }
  }
  switch (b.kind) {
    case 'form':
      return {
        type: matching(FORM),
        payload: new URLSearchParams(b.params as [string, string][]).toString(),
      }
    case 'json':
      return { type: matching(JSON_TYPE), payload: JSON.stringify(b.value) }
    case 'text':
      return { type: matching(FORM), payload: b.text }
    case 'bytes':
      return { type: matching(JSON_TYPE), payload: b.bytes }
  }
}

async function send(p: Plan): Promise<{ reply: Reply; sent: string }> {
  const { type, payload } = encode(p)
  const headers: Record<string, string> = { ...p.headers }
  if (type !== undefined) headers['content-type'] = type
  if (p.cookies.length) headers.cookie = p.cookies.join('; ')
  const search = p.query.length
    ? `?${new URLSearchParams(p.query as [string, string][]).toString()}`
    : ''
  const reply = await h.send(`${p.path}${search}`, {
    method: p.method,
    headers,
    ...(payload === undefined ? {} : { body: payload }),
  })
  const sent =
    payload === undefined
      ? ''
      : typeof payload === 'string'
        ? payload
        : Buffer.from(payload).toString()
  return { reply, sent: type === undefined ? '' : sent }
}

/** The body parameters as the service parses them (to know which username it saw). */
function parsedParams(p: Plan, sent: string): Record<string, string> | undefined {
  const { type } = encode(p)
  const base = (type ?? '').split(';')[0]?.trim().toLowerCase()
  try {
    if (base === FORM) return Object.fromEntries(new URLSearchParams(sent))
    if (base === JSON_TYPE) return JSON.parse(sent)
  } catch {
    return undefined
  }
  return undefined
}

/** Every value a client presented as a secret: none may come back in an error. */
function presented(p: Plan, replacements: Map<string, string>): string[] {
  const values: string[] = [...replacements.values()]
  const b = p.body
  const entries =
    b?.kind === 'form'
      ? b.params
      : b?.kind === 'json' && b.value && typeof b.value === 'object'
        ? Object.entries(b.value)
        : []
  for (const [name, value] of entries) {
    if (['password', 'refresh_token', 'token'].includes(name) && typeof value === 'string') {
      values.push(value)
    }
  }
  for (const cookie of p.cookies) values.push(cookie.slice(cookie.indexOf('=') + 1))
  for (const [, value] of p.query) values.push(value)
  if (p.headers.authorization) values.push(p.headers.authorization.replace(/^\S+\s+/, ''))
  return values.filter((value) => value.trim().length >= 12)
}

const ERROR_SHAPE = {
  error: expect.stringMatching(/^[a-z_]+$/),
  error_description: expect.any(String),
}

/**
 * The store change a refused request may make: a password check that failed
 * counts one failure for the username the service saw, with its `login.failed`
 * event; a login refused by the back-off (429) writes its `login.throttled`
 * event (docs/design.md "Security events"). Nothing else.
 */
function allowedChanges(
  route: string,
  reply: Reply,
  before: Snapshot,
  seen: Record<string, string> | undefined,
): (changed: Change[]) => void {
  const username =
    typeof seen?.username === 'string'
      ? normalizeUsername(seen.username.replace(/\p{Cs}/gu, '\uFFFD'))
      : undefined
  const counted =
    route === 'login' &&
    reply.status === 400 &&
    reply.body?.error === 'invalid_grant' &&
    username !== undefined &&
    couldBeUsername(username)
  const throttled = route === 'login' && reply.status === 429
  return (changed) => {
    const events = changed.filter((change) => change.key.startsWith('EVENT#'))
    const rest = changed.filter((change) => !change.key.startsWith('EVENT#'))
    // Written once, never changed; the username of a failed login is never in it.
    for (const event of events) {
      expect(event.before).toBeUndefined()
      expect(JSON.stringify(event.after)).not.toContain(USERNAME)
      // (A short one could match by chance inside an id.)
      if (username && username.length >= 6) {
        expect(JSON.stringify(event.after)).not.toContain(username)
      }
    }
    if (throttled) {
      expect(rest).toEqual([])
      expect(events.map((change) => change.after.type)).toEqual(['login.throttled'])
      return
    }
    if (!counted) {
      expect(changed).toEqual([])
      return
    }
    expect(events.map((change) => change.after.type)).toEqual(['login.failed'])
    const key = `USERNAME#${username}|THROTTLE`
    const previous = before.has(key) ? JSON.parse(before.get(key) as string).failures : 0
    expect(rest.map((change) => change.key)).toEqual([key])
    expect(rest[0]?.after).toMatchObject({
      failures: previous + 1,
      last_failed_at: h.clock.now(),
    })
    // Read by its key only: in no index, so that each write of it costs one write unit.
    expect(rest[0]?.after).not.toHaveProperty('gsi1pk')
  }
}

async function check(route: string, generated: Plan): Promise<void> {
  const { plan: p, replacements } = await materialize(generated)
  const before = await snapshot(h.dynamodb, h.tableName)
  const { reply, sent } = await send(p)
  const after = await snapshot(h.dynamodb, h.tableName)

  expect(reply.status, reply.text).toBeLessThan(500)
  // No answer, success or error, ever carries the password or its hash.
  expect(reply.text).not.toContain(PASSWORD)
  expect(reply.text).not.toContain(user.passwordHash)
  if (reply.status < 400) return

  expect(reply.headers.get('content-type')).toBe('application/json')
  expect(reply.body).toEqual(ERROR_SHAPE)
  const headerText = [...reply.headers].map(([name, value]) => `${name}: ${value}`).join('\n')
  for (const secret of presented(p, replacements)) {
    expect(reply.text).not.toContain(secret)
    expect(headerText).not.toContain(secret)
  }
  allowedChanges(route, reply, before, parsedParams(p, sent))(changes(before, after))
}

/** Per property: generous, since a loaded machine can slow every request several times over. */
const TIMEOUT = 120_000

/** Runs per endpoint: sized so the whole file stays well under a minute on a busy machine. */
const RUNS = {
  login: 60,
  token: 100,
  revoke: 80,
  wellKnown: 40,
  me: 40,
  listSessions: 30,
  endAllSessions: 30,
  endSession: 50,
}

const property = (route: string, arbitrary: fc.Arbitrary<Plan>, numRuns: number) =>
  fc.assert(
    fc.asyncProperty(arbitrary, (p) => check(route, p)),
    // Each run is a few HTTP requests and maybe a password hash: report the first
    // counterexample (with its seed, to replay) rather than shrink past the timeout.
    { numRuns, endOnFailure: true },
  )

describe('whatever a client sends', () => {
  it(
    'POST /login never fails, answers errors in the OAuth shape, and only counts a failed password check',
    async () => {
      await property('login', loginPlan, RUNS.login)
    },
    TIMEOUT,
  )

  it(
    'POST /token never fails, answers errors in the OAuth shape, and refuses without changing the store',
    async () => {
      await property('token', tokenPlan, RUNS.token)
    },
    TIMEOUT,
  )

  it(
    'POST /revoke never fails, answers errors in the OAuth shape, and refuses without changing the store',
    async () => {
      await property('revoke', revokePlan, RUNS.revoke)
    },
    TIMEOUT,
  )

  it(
    'GET /.well-known/* never fails and answers errors in the OAuth shape',
    async () => {
      await property('well-known', wellKnownPlan, RUNS.wellKnown)
    },
    TIMEOUT,
  )

  it(
    'GET /me never fails, answers errors in the OAuth shape, and never echoes the bearer token',
    async () => {
      await property('me', bearerPlan('GET', fc.constant('/me')), RUNS.me)
    },
    TIMEOUT,
  )

  it(
    'GET /sessions never fails and refuses without changing the store',
    async () => {
      await property('sessions', bearerPlan('GET', fc.constant('/sessions')), RUNS.listSessions)
    },
    TIMEOUT,
  )

  it(
    'DELETE /sessions never fails and refuses without changing the store',
    async () => {
      await property(
        'sessions',
        bearerPlan('DELETE', fc.constant('/sessions')),
        RUNS.endAllSessions,
      )
    },
    TIMEOUT,
  )

  it(
    'DELETE /sessions/{sid} never fails and refuses without changing the store',
    async () => {
      await property(
        'sessions',
        bearerPlan(
          'DELETE',
          sidSegment.map((sid) => `/sessions/${sid}`),
        ),
        RUNS.endSession,
      )
    },
    TIMEOUT,
  )
})
