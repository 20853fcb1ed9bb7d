/**
 * The login back-off as a property (issue 16): whatever a username meets,
 * right and wrong passwords, fresh, replayed and nonce-less DPoP proofs,
 * attempts in a row or at once, waits, at `/login` and at `/me/password`
 * (which share the username's record), the service checks no more passwords
 * than the most that some sequential schedule of the same attempts allows.
 *
 * The model below is the schedule as docs/design.md "Login protection" states
 * it, written afresh rather than imported from core/throttle.ts: a check
 * takes a turn; the first free failures are checked at once; after `n`
 * failures in a row the next check waits `base * 2^(n - free - 1)` seconds
 * (capped); a right password clears the count; an attempt whose proof is
 * refused, or that is asked for a nonce, checks nothing and changes nothing.
 * Attempts sent at once may run in any order, so the bound is the most any
 * order of each group allows.
 *
 * Everything runs over HTTP through local mode on DynamoDB Local. Password
 * hashes are cheap here (scrypt ln=10): the rule under test is the count, not
 * scrypt's cost.
 */
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { ClientConfig } from '../../functions/core/clients.js'
import { accessTokenHash } from '../../functions/core/dpop.js'
import { verifyPassword } from '../../functions/core/passwords.js'
import type { User } from '../../functions/core/ports.js'
import { DEFAULT_BACKOFF } from '../../functions/core/throttle.js'
import { type ProofKey, proofClaims, proofKey, signProof } from '../support/dpop.js'
import { addCheapUser, type Harness, NATIVE, PASSWORD, startHarness } from '../support/harness.js'
import { recordSecret } from '../support/secrets.js'

// Counts password checks, and makes the hash of a changed password cheap (ln=10, as the users'
// own): a right current_password at /me/password hashes the new one.
vi.mock('../../functions/core/passwords.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../functions/core/passwords.js')>()
  return {
    ...real,
    verifyPassword: vi.fn(real.verifyPassword),
    hashPassword: vi.fn((password: string) => real.hashPassword(password, { ln: 10, r: 8, p: 1 })),
  }
})
const passwordChecks = () => vi.mocked(verifyPassword).mock.calls.length

const NONCE: ClientConfig = { ...NATIVE, client_id: 'test-backoff-nonce', dpop_nonce: true }
const WRONG = 'not the password at all'
/** The review's loop, then 8 generated schedules of up to 30 attempts: seconds (more on a loaded machine). */
const RUNS = 8
const SLOW = 180_000
recordSecret(WRONG)

// ---------------------------------------------------------------------------
// What a username meets
// ---------------------------------------------------------------------------

type Endpoint = 'login' | 'password'
/**
 * - `none`: no proof (login only); `fresh`: a new proof; `nonce`: a new proof with a current
 *   nonce, from the nonce client (login only);
 * - `challenge`: the nonce client's proof without a nonce (login only): 400 `use_dpop_nonce`;
 * - `replayed`: a proof used before: 400 `invalid_dpop_proof` at /login, 401 at /me/password.
 */
type Proof = 'none' | 'fresh' | 'nonce' | 'challenge' | 'replayed'

interface Attempt {
  readonly endpoint: Endpoint
  readonly password: 'right' | 'wrong'
  readonly proof: Proof
}

type Step =
  | { readonly kind: 'wait'; readonly seconds: number }
  /** One attempt, or several sent at once. */
  | { readonly kind: 'send'; readonly attempts: readonly Attempt[] }

/** Whether the attempt reaches a password check, if its turn allows one. */
const checks = (attempt: Attempt) => attempt.proof !== 'challenge' && attempt.proof !== 'replayed'

const attemptAt = (endpoints: readonly Endpoint[]): fc.Arbitrary<Attempt> =>
  fc
    .record({
      endpoint: fc.constantFrom(...endpoints),
      password: fc.oneof(
        { weight: 4, arbitrary: fc.constant('wrong' as const) },
        { weight: 1, arbitrary: fc.constant('right' as const) },
      ),
      // Mostly what a guesser sends: fresh proofs and replays.
      proof: fc.oneof(
        { weight: 3, arbitrary: fc.constant<Proof>('fresh') },
        { weight: 3, arbitrary: fc.constant<Proof>('replayed') },
        { weight: 1, arbitrary: fc.constantFrom<Proof>('none', 'nonce', 'challenge') },
      ),
    })
    // /me/password takes a bound access token: a proof, fresh or replayed, always comes along.
    .map((attempt) =>
      attempt.endpoint === 'password' && attempt.proof !== 'replayed'
        ? { ...attempt, proof: 'fresh' as const }
        : attempt,
    )

const scheduleAt = (endpoints: readonly Endpoint[]): fc.Arbitrary<readonly Step[]> =>
  fc.array(
    fc.oneof(
      {
        weight: 1,
        arbitrary: fc.constantFrom(1, 2, 4).map((seconds) => ({ kind: 'wait', seconds }) as const),
      },
      {
        weight: 5,
        arbitrary: fc
          .array(attemptAt(endpoints), { minLength: 1, maxLength: 3 })
          .map((attempts) => ({ kind: 'send', attempts }) as const),
      },
    ),
    { minLength: 4, maxLength: 10 },
  )

// ---------------------------------------------------------------------------
// The sequential schedule
// ---------------------------------------------------------------------------

interface Model {
  /** Failures in a row; 0 after a right password. */
  readonly failures: number
  /** Epoch ms of the last check. */
  readonly lastAt: number
}

const policy = DEFAULT_BACKOFF

/** Whether an attempt at `now` may check a password, one after the other. */
function mayCheck(model: Model, now: number): boolean {
  const forgotten = now - model.lastAt >= policy.windowSeconds * 1000
  if (model.failures <= policy.freeFailures || forgotten) return true
  const over = model.failures - policy.freeFailures
  const wait = Math.min(policy.maxSeconds, policy.baseSeconds * 2 ** (over - 1))
  return now >= model.lastAt + wait * 1000
}

/** One attempt in a sequential schedule: the model after it, and whether it checked a password. */
function apply(model: Model, attempt: Attempt, now: number): [Model, boolean] {
  if (!checks(attempt) || !mayCheck(model, now)) return [model, false]
  if (attempt.password === 'right') return [{ failures: 0, lastAt: now }, true]
  const forgotten = now - model.lastAt >= policy.windowSeconds * 1000
  return [{ failures: (forgotten ? 0 : model.failures) + 1, lastAt: now }, true]
}

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]]
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  )
}

/**
 * The most password checks any sequential schedule of `steps` allows, from a
 * clear record at `start`: every order of each group sent at once is tried
 * (the states reached are few, each kept with its most checks).
 */
function mostChecks(steps: readonly Step[], start: number): number {
  let now = start
  let states = new Map<string, { model: Model; checked: number }>([
    ['0|start', { model: { failures: 0, lastAt: start }, checked: 0 }],
  ])
  for (const step of steps) {
    if (step.kind === 'wait') {
      now += step.seconds * 1000
      continue
    }
    const next = new Map<string, { model: Model; checked: number }>()
    for (const { model, checked } of states.values()) {
      for (const order of permutations(step.attempts)) {
        let state = model
        let count = checked
        for (const attempt of order) {
          const [after, didCheck] = apply(state, attempt, now)
          state = after
          if (didCheck) count++
        }
        const key = `${state.failures}|${state.lastAt}`
        if ((next.get(key)?.checked ?? -1) < count) next.set(key, { model: state, checked: count })
      }
    }
    states = next
  }
  return Math.max(...[...states.values()].map((state) => state.checked))
}

// ---------------------------------------------------------------------------
// Running a schedule against the service
// ---------------------------------------------------------------------------

let h: Harness

beforeAll(async () => {
  h = await startHarness({ clients: [NATIVE, NONCE] })
})
afterAll(() => h?.close())

const proofFor = (key: ProofKey, path: string, claims: Record<string, unknown> = {}) =>
  signProof(key, proofClaims(h.clock.now(), `${h.issuer}${path}`, claims))

/** One username under attack, and what the attempts need: a used proof, a nonce, a bound session. */
interface Target {
  readonly user: User
  /** The password as it stands: a right current_password at /me/password changes it. */
  password: string
  readonly key: ProofKey
  /** A proof used at /login already. */
  readonly usedLoginProof: string
  /** A proof the authorizer accepted already, at /me/password. */
  readonly usedChangeProof: string
  readonly nonce: string
  /** The access token of a session bound to `key`. */
  readonly access: string
}

async function target(): Promise<Target> {
  const user = await addCheapUser(h, 'prop-backoff')
  const key = proofKey()
  const usedLoginProof = proofFor(key, '/login')
  const login = await h.post(
    '/login',
    { username: user.username, password: PASSWORD, client_id: NATIVE.client_id },
    { headers: { dpop: usedLoginProof } },
  )
  expect(login.status).toBe(200)
  const access = login.body.access_token as string
  const challenge = await h.post(
    '/login',
    { username: user.username, password: WRONG, client_id: NONCE.client_id },
    { headers: { dpop: proofFor(key, '/login') } },
  )
  expect(challenge.body.error).toBe('use_dpop_nonce')
  // The authorizer takes this proof, then the route refuses the request before any turn.
  const usedChangeProof = proofFor(key, '/me/password', { ath: accessTokenHash(access) })
  const incomplete = await h.post(
    '/me/password',
    {},
    { headers: { authorization: `DPoP ${access}`, dpop: usedChangeProof } },
  )
  expect(incomplete.body.error).toBe('invalid_request')
  return {
    user,
    password: PASSWORD,
    key,
    usedLoginProof,
    usedChangeProof,
    nonce: challenge.headers.get('dpop-nonce') as string,
    access,
  }
}

async function send(t: Target, attempt: Attempt): Promise<void> {
  const password = attempt.password === 'right' ? t.password : WRONG
  if (attempt.endpoint === 'login') {
    const client = attempt.proof === 'nonce' || attempt.proof === 'challenge' ? NONCE : NATIVE
    const dpop = {
      none: undefined,
      fresh: proofFor(t.key, '/login'),
      nonce: proofFor(t.key, '/login', { nonce: t.nonce }),
      challenge: proofFor(t.key, '/login'),
      replayed: t.usedLoginProof,
    }[attempt.proof]
    const reply = await h.post(
      '/login',
      { username: t.user.username, password, client_id: client.client_id },
      { headers: dpop ? { dpop } : {} },
    )
    const expected = {
      none: undefined,
      fresh: undefined,
      nonce: undefined,
      challenge: 'use_dpop_nonce',
      replayed: 'invalid_dpop_proof',
    }[attempt.proof]
    if (expected) expect(reply.body?.error).toBe(expected)
    else expect([200, 400, 429]).toContain(reply.status)
    if (reply.status === 400 && !expected) expect(reply.body.error).toBe('invalid_grant')
    return
  }
  const newPassword = `prop-${randomBytes(12).toString('hex')}`
  recordSecret(newPassword)
  const dpop =
    attempt.proof === 'replayed'
      ? t.usedChangeProof
      : proofFor(t.key, '/me/password', { ath: accessTokenHash(t.access) })
  const reply = await h.post(
    '/me/password',
    { current_password: password, new_password: newPassword },
    { headers: { authorization: `DPoP ${t.access}`, dpop } },
  )
  if (attempt.proof === 'replayed') {
    expect(reply.status).toBe(401)
    return
  }
  expect([204, 400, 429]).toContain(reply.status)
  if (reply.status === 400) expect(reply.body.error).toBe('invalid_grant')
  if (reply.status === 204) t.password = newPassword
}

async function run(steps: readonly Step[]): Promise<void> {
  const t = await target()
  const start = h.clock.now()
  const before = passwordChecks()
  for (const step of steps) {
    if (step.kind === 'wait') h.clock.advance(step.seconds)
    else await Promise.all(step.attempts.map((attempt) => send(t, attempt)))
  }
  const checked = passwordChecks() - before
  const allowed = mostChecks(steps, start)
  expect(
    checked,
    `${checked} checks, the sequential schedule allows ${allowed}`,
  ).toBeLessThanOrEqual(allowed)
}

/** The attack review's loop: a wrong password, then a replayed proof at /login, again and again. */
const reviewLoop = (guessAt: Endpoint): Step[] =>
  Array.from({ length: 6 }, () => [
    { kind: 'send', attempts: [{ endpoint: guessAt, password: 'wrong', proof: 'fresh' }] } as const,
    {
      kind: 'send',
      attempts: [{ endpoint: 'login', password: 'wrong', proof: 'replayed' }],
    } as const,
  ]).flat()

const property = (endpoints: readonly Endpoint[], numRuns: number) =>
  fc.assert(fc.asyncProperty(scheduleAt(endpoints), run), {
    numRuns,
    // The review's own loop first, then generated schedules.
    examples: [[reviewLoop(endpoints[0] as Endpoint)]],
    // Each run is a few dozen HTTP requests: report the first counterexample (with its seed)
    // rather than shrink it.
    endOnFailure: true,
  })

describe('the login back-off, under any mix of attempts at one username', () => {
  it(
    'checks no more passwords at /login than the sequential schedule of the same attempts allows',
    async () => {
      await property(['login'], RUNS)
    },
    SLOW,
  )

  it(
    'checks no more passwords at /me/password (and /login, which shares the count) than the sequential schedule allows',
    async () => {
      await property(['password', 'login'], RUNS)
    },
    SLOW,
  )

  it('has a model that allows the free failures and the one that starts the first wait, then none until it has passed', () => {
    const wrong: Attempt = { endpoint: 'login', password: 'wrong', proof: 'fresh' }
    const replay: Attempt = { ...wrong, proof: 'replayed' }
    const send = (...attempts: Attempt[]): Step => ({ kind: 'send', attempts })
    const burst = Array.from({ length: 6 }, () => send(wrong, replay))
    expect(mostChecks(burst, 0)).toBe(policy.freeFailures + 1)
    expect(mostChecks([...burst, { kind: 'wait', seconds: 1 }, send(wrong, wrong)], 0)).toBe(
      policy.freeFailures + 2,
    )
    // A right password sent with wrong ones may have come first or last: the most is kept.
    const right: Attempt = { ...wrong, password: 'right' }
    expect(mostChecks([send(wrong, wrong, wrong, right), ...burst], 0)).toBe(4 + 4)
  })
})
