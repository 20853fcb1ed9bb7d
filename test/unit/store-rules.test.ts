/**
 * The rules that used to hide in the DynamoDB store and now live in
 * functions/core: the failed-login window and turn (core/throttle.ts) and a
 * login overtaken by a logout everywhere (core/users.ts, core/login.ts), and
 * which sessions a cut (`sessionsValidAfter`) voids (core/users.ts).
 * Time comes from a fake clock.
 */
import { describe, expect, it } from 'vitest'
import { TemporarilyUnavailable } from '../../functions/core/errors.js'
import { startSession } from '../../functions/core/login.js'
import type { Session, SessionCreation, User } from '../../functions/core/ports.js'
import {
  backoffSeconds,
  DEFAULT_BACKOFF,
  failureAt,
  freeTurn,
  loginTurn,
  recentFailures,
} from '../../functions/core/throttle.js'
import { startAfterLogout, voidedByUser, voidSessionsUpTo } from '../../functions/core/users.js'
import { FakeClock } from '../support/clock.js'

const policy = DEFAULT_BACKOFF
const WINDOW_MS = policy.windowSeconds * 1000

describe('the failed-login window', () => {
  it('forgets a count exactly windowSeconds after its last failure, in reads and in the store alike', () => {
    const clock = new FakeClock()
    const last = { failures: 5, lastFailedAt: clock.now() }
    clock.advance(policy.windowSeconds - 0.001)
    expect(recentFailures(policy, last, clock.now())).toBe(last)
    // The store adds to a count whose last failure is after forgetBefore.
    expect(last.lastFailedAt > failureAt(policy, clock.now()).forgetBefore).toBe(true)
    clock.advance(0.001)
    expect(recentFailures(policy, last, clock.now())).toBeUndefined()
    expect(last.lastFailedAt > failureAt(policy, clock.now()).forgetBefore).toBe(false)
  })

  it('records a failure at now, forgettable a window later, with its TTL at the same instant', () => {
    const clock = new FakeClock()
    const now = clock.now()
    expect(failureAt(policy, now)).toEqual({
      at: now,
      forgetBefore: now - WINDOW_MS,
      expiresAt: now + WINDOW_MS,
    })
  })

  it('treats a zero count as no failures (a success cleared it)', () => {
    const clock = new FakeClock()
    expect(
      recentFailures(policy, { failures: 0, lastFailedAt: clock.now() }, clock.now()),
    ).toBeUndefined()
  })
})

describe('a login turn', () => {
  it('is first tried as a free turn: a failure at now, free while fewer than freeFailures are on record', () => {
    const clock = new FakeClock()
    const now = clock.now()
    expect(freeTurn(policy, now)).toEqual({
      ...failureAt(policy, now),
      freeFailures: policy.freeFailures,
    })
  })

  it('with no free turn left, is claimed at freeFailures failures (they wait 0 s)', () => {
    const clock = new FakeClock()
    const stored = { failures: policy.freeFailures, lastFailedAt: clock.now() }
    expect(backoffSeconds(policy, policy.freeFailures)).toBe(0)
    expect(loginTurn(policy, stored, clock.now())).toMatchObject({
      kind: 'claim',
      seen: stored,
      next: { failures: policy.freeFailures + 1 },
      lostWaitSeconds: 1,
    })
  })

  it('restarts a forgotten count at 1 by claiming over it, and a lost claim waits at least the first wait', () => {
    const clock = new FakeClock()
    const now = clock.now()
    const old = { failures: 50, lastFailedAt: now - WINDOW_MS }
    expect(loginTurn(policy, old, now)).toEqual({
      kind: 'claim',
      seen: old,
      next: { failures: 1, lastFailedAt: now },
      expiresAt: now + WINDOW_MS,
      lostWaitSeconds: policy.baseSeconds,
    })
  })

  it('waits out the back-off, counting down as time passes', () => {
    const clock = new FakeClock()
    const stored = { failures: policy.freeFailures + 3, lastFailedAt: clock.now() }
    const wait = backoffSeconds(policy, stored.failures)
    expect(wait).toBe(4)
    expect(loginTurn(policy, stored, clock.now())).toEqual({ kind: 'wait', seconds: 4 })
    clock.advance(1.5)
    expect(loginTurn(policy, stored, clock.now())).toEqual({ kind: 'wait', seconds: 2.5 })
  })

  it('once the back-off has passed, claims the one attempt by counting it as the next failure', () => {
    const clock = new FakeClock()
    const stored = { failures: policy.freeFailures + 3, lastFailedAt: clock.now() }
    clock.advance(4)
    const now = clock.now()
    expect(loginTurn(policy, stored, now)).toEqual({
      kind: 'claim',
      seen: stored,
      next: { failures: stored.failures + 1, lastFailedAt: now },
      expiresAt: now + WINDOW_MS,
      lostWaitSeconds: backoffSeconds(policy, stored.failures + 1),
    })
  })
})

const USER: User = {
  sub: 'u1',
  username: 'someone',
  passwordHash: '$scrypt$checked',
  roles: [],
  status: 'active',
  createdAt: 0,
}

function sessionAt(createdAt: number): Session {
  return {
    sid: 's1',
    sub: USER.sub,
    clientId: 'c',
    scope: '',
    status: 'active',
    createdAt,
    lastUsedAt: createdAt,
    idleExpiresAt: createdAt + 1000,
    absoluteExpiresAt: createdAt + 2000,
    generation: 0,
    currentHash: 'h',
  }
}

describe('a login overtaken by a logout everywhere', () => {
  const clock = new FakeClock()
  const readAt = clock.now()
  const guard = { sub: USER.sub, passwordHash: USER.passwordHash }
  const loggedOut = { ...USER, sessionsValidAfter: voidSessionsUpTo(readAt + 3) }

  it('starts its session at the logout’s validity instant instead', () => {
    expect(startAfterLogout(sessionAt(readAt), guard, loggedOut)).toBe(readAt + 4)
  })

  it('is refused when the user was disabled, changed password, vanished, or nothing voids the session', () => {
    const session = sessionAt(readAt)
    expect(startAfterLogout(session, guard, { ...loggedOut, status: 'disabled' })).toBeUndefined()
    expect(startAfterLogout(session, guard, { ...loggedOut, passwordHash: 'new' })).toBeUndefined()
    expect(startAfterLogout(session, guard, undefined)).toBeUndefined()
    expect(startAfterLogout(session, guard, USER)).toBeUndefined()
    expect(
      startAfterLogout(session, guard, { ...USER, sessionsValidAfter: readAt }),
    ).toBeUndefined()
  })

  /** A createSession that answers from a script and records the sessions it was given. */
  function scripted(answers: SessionCreation[]) {
    const given: Session[] = []
    return {
      given,
      store: {
        createSession: async (session: Session) => {
          given.push(session)
          return answers.shift() ?? { created: true }
        },
      },
    }
  }

  it('writes the session again, started after the logout, and succeeds', async () => {
    const { store, given } = scripted([{ created: false, user: loggedOut }, { created: true }])
    expect(await startSession(store, sessionAt(readAt), guard)).toBe(true)
    expect(given.map((session) => session.createdAt)).toEqual([readAt, readAt + 4])
  })

  it('answers false, without writing again, when the user was disabled meanwhile', async () => {
    const disabled = { ...loggedOut, status: 'disabled' as const }
    const { store, given } = scripted([{ created: false, user: disabled }])
    expect(await startSession(store, sessionAt(readAt), guard)).toBe(false)
    expect(given).toHaveLength(1)
  })

  it('gives up with a 503 when logouts keep overtaking it', async () => {
    const overtaken = (at: number): SessionCreation => ({
      created: false,
      user: { ...USER, sessionsValidAfter: voidSessionsUpTo(at) },
    })
    const { store, given } = scripted([
      overtaken(readAt + 1),
      overtaken(readAt + 5),
      overtaken(readAt + 9),
    ])
    await expect(startSession(store, sessionAt(readAt), guard)).rejects.toBeInstanceOf(
      TemporarilyUnavailable,
    )
    expect(given.map((session) => session.createdAt)).toEqual([readAt, readAt + 2, readAt + 6])
  })
})

describe('a cut (logout everywhere, disable, password change)', () => {
  const cutAt = 1_000_000
  const before = { ...sessionAt(cutAt - 1), sid: 'before' }

  it('voids every session created before it, none created at or after it', () => {
    const cut = { ...USER, sessionsValidAfter: voidSessionsUpTo(cutAt) }
    expect(voidedByUser(before, cut)).toBe(true)
    expect(voidedByUser({ ...sessionAt(cutAt), sid: 'same-instant' }, cut)).toBe(true)
    expect(voidedByUser({ ...sessionAt(cutAt + 1), sid: 'after' }, cut)).toBe(false)
    expect(voidedByUser(before, USER)).toBe(false)
  })

  it('spares the one session a password change kept, and only that one', () => {
    const changed = { ...USER, sessionsValidAfter: voidSessionsUpTo(cutAt), keptSession: 'kept' }
    expect(voidedByUser({ ...before, sid: 'kept' }, changed)).toBe(false)
    expect(voidedByUser(before, changed)).toBe(true)
  })
})
