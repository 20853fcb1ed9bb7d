/**
 * The contracts of the storage ports (functions/core/ports.ts): one spec per
 * port, written against the interface only, so that the same spec runs
 * against the real adapter on DynamoDB Local (test/integration/store-contract.test.ts)
 * and against any fake a test may want.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { startSession } from '../../functions/core/login.js'
import type {
  EventOutbox,
  FailedLogins,
  LoginAttempts,
  Rotation,
  Session,
  SessionStore,
  User,
  UserStore,
} from '../../functions/core/ports.js'
import { newSessionId, newUserId } from '../../functions/core/refresh-token.js'
import {
  type SecurityEvent,
  type SecurityEventType,
  securityEvent,
  signalEventId,
} from '../../functions/core/security-events.js'
import { voidSessionsUpTo } from '../../functions/core/users.js'
import { FakeClock } from './clock.js'

/** The ports under test, on one fresh, empty store, and a test's view of the failed logins. */
export interface Stores {
  readonly sessions: SessionStore
  readonly users: UserStore
  readonly loginAttempts: LoginAttempts
  /** The username's failed-login record as stored (a strongly consistent read), if any. */
  failedLogins(username: string): Promise<FailedLogins | undefined>
}

const clock = new FakeClock()
const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 10)}`

/** A user as the domain creates it (the hash is a stand-in: no password is checked here). */
function aUser(overrides: Partial<User> = {}): User {
  return {
    sub: newUserId(),
    username: unique('user'),
    passwordHash: `$scrypt$ln=10,r=8,p=1$${unique('salt')}$${unique('hash')}`,
    roles: ['reader'],
    status: 'active',
    createdAt: clock.now(),
    ...overrides,
  }
}

function aSession(user: User, overrides: Partial<Session> = {}): Session {
  const now = clock.now()
  return {
    sid: newSessionId(),
    sub: user.sub,
    clientId: 'test-native',
    scope: 'openid api',
    status: 'active',
    createdAt: now,
    lastUsedAt: now,
    idleExpiresAt: now + 7 * 86_400_000,
    absoluteExpiresAt: now + 30 * 86_400_000,
    generation: 0,
    currentHash: unique('hash0'),
    userAgent: 'contract-test',
    ...overrides,
  }
}

const guardOf = (user: User) => ({ sub: user.sub, passwordHash: user.passwordHash })

/** The rotation from `session` as it is to a new token, as core/refresh.ts builds it. */
function rotationOf(session: Session, nextHash = unique('hash')): Rotation {
  const now = clock.now()
  return {
    sid: session.sid,
    expect: { currentHash: session.currentHash, generation: session.generation },
    next: {
      currentHash: nextHash,
      previousHash: session.currentHash,
      generation: session.generation + 1,
      rotatedAt: now,
      sealedSuccessor: unique('sealed'),
      lastUsedAt: now,
      idleExpiresAt: now + 7 * 86_400_000,
    },
    retired: {
      hash: session.currentHash,
      generation: session.generation,
      issuedAt: session.rotatedAt ?? session.createdAt,
    },
    absoluteExpiresAt: session.absoluteExpiresAt,
  }
}

export function userStoreContract(name: string, make: () => Promise<Stores>): void {
  describe(`UserStore contract: ${name}`, () => {
    let stores: Stores
    beforeAll(async () => {
      stores = await make()
    })

    it('finds a created user by its username, every field as written', async () => {
      const user = aUser({ roles: ['reader', 'editor'], sessionsValidAfter: clock.now() })
      expect(await stores.users.createUser(user)).toBe(true)
      expect(await stores.users.findUserByUsername(user.username)).toEqual(user)
    })

    it('finds nobody under an unknown username', async () => {
      expect(await stores.users.findUserByUsername(unique('nobody'))).toBeUndefined()
    })

    it('refuses a second user with a taken username, whatever its sub, and keeps the first', async () => {
      const first = aUser()
      expect(await stores.users.createUser(first)).toBe(true)
      expect(await stores.users.createUser(aUser({ username: first.username }))).toBe(false)
      expect(await stores.users.createUser(first)).toBe(false)
      expect(await stores.users.findUserByUsername(first.username)).toEqual(first)
    })

    it('changes status, roles and sessionsValidAfter, each alone, leaving the rest as it was', async () => {
      const user = aUser()
      await stores.users.createUser(user)
      expect(await stores.users.updateUser(user.sub, { status: 'disabled' })).toBe(true)
      expect(await stores.users.findUserByUsername(user.username)).toEqual({
        ...user,
        status: 'disabled',
      })
      await stores.users.updateUser(user.sub, { roles: [] })
      await stores.users.updateUser(user.sub, { sessionsValidAfter: 42 })
      expect(await stores.users.findUserByUsername(user.username)).toEqual({
        ...user,
        status: 'disabled',
        roles: [],
        sessionsValidAfter: 42,
      })
    })

    /** The user as a strongly consistent read finds it. */
    const read = async (user: User) =>
      (await stores.sessions.loadSessionState({ sub: user.sub, sid: newSessionId() })).user

    it('changes the password only over the expected hash, with the cut and the kept session, in one write', async () => {
      const user = aUser()
      await stores.users.createUser(user)
      const change = {
        sub: user.sub,
        expectHash: user.passwordHash,
        newHash: unique('new-hash'),
        sessionsValidAfter: 100,
        keep: { sid: 'kept-sid', createdAt: 50 },
      }
      expect(await stores.users.changePassword(change)).toBe('changed')
      const changed = {
        ...user,
        passwordHash: change.newHash,
        sessionsValidAfter: 100,
        keptSession: 'kept-sid',
      }
      expect(await read(user)).toEqual(changed)
      // A change from the old hash (a concurrent one that checked it too) is refused.
      const stale = { ...change, newHash: unique('other-hash'), sessionsValidAfter: 200 }
      expect(await stores.users.changePassword(stale)).toBe('refused')
      expect(await read(user)).toEqual(changed)
    })

    it('answers changed to a repeat of a change that committed (a retry whose answer was lost)', async () => {
      const user = aUser()
      await stores.users.createUser(user)
      const change = {
        sub: user.sub,
        expectHash: user.passwordHash,
        newHash: unique('new-hash'),
        sessionsValidAfter: 100,
      }
      expect(await stores.users.changePassword(change)).toBe('changed')
      expect(await stores.users.changePassword(change)).toBe('changed')
      expect((await read(user))?.passwordHash).toBe(change.newHash)
    })

    it('keeps a session only while the user is active and no cut voids that session', async () => {
      const cut = aUser({ sessionsValidAfter: 100 })
      const disabled = aUser({ status: 'disabled' })
      await stores.users.createUser(cut)
      await stores.users.createUser(disabled)
      const change = (user: User, keep?: { sid: string; createdAt: number }) =>
        stores.users.changePassword({
          sub: user.sub,
          expectHash: user.passwordHash,
          newHash: unique('new-hash'),
          sessionsValidAfter: 300,
          ...(keep ? { keep } : {}),
        })
      expect(await change(cut, { sid: 'voided', createdAt: 99 })).toBe('refused')
      expect(await change(disabled, { sid: 'any', createdAt: 99 })).toBe('refused')
      expect(await read(cut)).toEqual(cut)
      expect(await read(disabled)).toEqual(disabled)
      // The operator's change keeps no session and needs no active user: it stays disabled.
      expect(await change(disabled)).toBe('changed')
      expect(await read(disabled)).toMatchObject({ status: 'disabled', sessionsValidAfter: 300 })
      // A session created at the cut lives, and so does the one an earlier change kept.
      expect(await change(cut, { sid: 'at-cut', createdAt: 100 })).toBe('changed')
      const kept = (await read(cut)) as User
      expect(await change(kept, { sid: 'at-cut', createdAt: 100 })).toBe('changed')
      expect((await read(cut))?.keptSession).toBe('at-cut')
    })

    it('drops the kept session with any later cut: logout everywhere, disable, the operator’s change', async () => {
      const user = aUser()
      await stores.users.createUser(user)
      const newHash = unique('new-hash')
      await stores.users.changePassword({
        sub: user.sub,
        expectHash: user.passwordHash,
        newHash,
        sessionsValidAfter: 100,
        keep: { sid: 'kept-sid', createdAt: 50 },
      })
      expect(await stores.users.updateUser(user.sub, { sessionsValidAfter: 200 })).toBe(true)
      expect(await read(user)).toEqual({ ...user, passwordHash: newHash, sessionsValidAfter: 200 })
      await stores.users.changePassword({
        sub: user.sub,
        expectHash: newHash,
        newHash: unique('newer-hash'),
        sessionsValidAfter: 300,
        keep: { sid: 'kept-again', createdAt: 250 },
      })
      const again = (await read(user)) as User
      await stores.users.changePassword({
        sub: user.sub,
        expectHash: again.passwordHash,
        newHash: unique('operator-hash'),
        sessionsValidAfter: 400,
      })
      expect((await read(user))?.keptSession).toBeUndefined()
    })

    it('answers false to an update of an unknown sub, and creates no user', async () => {
      const sub = newUserId()
      expect(await stores.users.updateUser(sub, { status: 'active' })).toBe(false)
      const { user } = await stores.sessions.loadSessionState({ sub, sid: newSessionId() })
      expect(user).toBeUndefined()
    })
  })
}

export function sessionStoreContract(name: string, make: () => Promise<Stores>): void {
  describe(`SessionStore contract: ${name}`, () => {
    let stores: Stores
    let user: User
    beforeAll(async () => {
      stores = await make()
      user = aUser()
      await stores.users.createUser(user)
    })

    it('creates a session and reads it back exactly: alone, with its user, and in its user’s list', async () => {
      const session = aSession(user)
      expect(await stores.sessions.createSession(session, guardOf(user))).toEqual({ created: true })
      expect(await stores.sessions.getSession(session.sid)).toEqual(session)
      expect(await stores.sessions.loadSessionState(session)).toEqual({ session, user })
      expect(await stores.sessions.loadRefreshState(session)).toEqual({ session, user })
      expect(await stores.sessions.listSessions(user.sub)).toContainEqual(session)
    })

    it('reads nothing for a session that does not exist', async () => {
      const sid = newSessionId()
      expect(await stores.sessions.getSession(sid)).toBeUndefined()
      expect(await stores.sessions.loadSessionState({ sub: user.sub, sid })).toEqual({ user })
      expect(await stores.sessions.loadRefreshState({ sub: user.sub, sid })).toEqual({ user })
    })

    it('records the token a rotation retires, for that session only, and no other hash', async () => {
      const session = aSession(user)
      await stores.sessions.createSession(session, guardOf(user))
      const rotation = rotationOf(session)
      // As core/refresh.ts does: the record first, then the rotation; the record again is the same.
      await stores.sessions.recordRetired(rotation)
      await stores.sessions.recordRetired(rotation)
      expect(await stores.sessions.rotate(rotation)).toEqual({ committed: true })
      const retired = (tokenHash: string, sid = session.sid) =>
        stores.sessions.wasRetired(sid, tokenHash)
      expect(await retired(session.currentHash)).toBe(true)
      // The new current token is authentic by the session itself: it has no record yet.
      expect(await retired(rotation.next.currentHash)).toBe(false)
      expect(await retired(unique('never-issued'))).toBe(false)
      // A hash retired from one session names no other.
      const other = aSession(user)
      await stores.sessions.createSession(other, guardOf(user))
      expect(await retired(session.currentHash, other.sid)).toBe(false)
    })

    it('refuses a session for a disabled user or another password, and writes nothing', async () => {
      const disabled = aUser({ status: 'disabled' })
      await stores.users.createUser(disabled)
      const session = aSession(disabled)
      expect(await stores.sessions.createSession(session, guardOf(disabled))).toEqual({
        created: false,
        user: disabled,
      })
      const changed = aSession(user)
      const stale = { sub: user.sub, passwordHash: unique('old-hash') }
      expect(await stores.sessions.createSession(changed, stale)).toEqual({ created: false, user })
      for (const refused of [session, changed]) {
        expect(await stores.sessions.getSession(refused.sid)).toBeUndefined()
        const listed = await stores.sessions.listSessions(refused.sub)
        expect(listed.map((s) => s.sid)).not.toContain(refused.sid)
      }
    })

    it('refuses a session for a user that does not exist', async () => {
      const ghost = aUser()
      const session = aSession(ghost)
      expect(await stores.sessions.createSession(session, guardOf(ghost))).toEqual({
        created: false,
      })
      expect(await stores.sessions.getSession(session.sid)).toBeUndefined()
    })

    it('never overwrites a session with the same id', async () => {
      const session = aSession(user)
      await stores.sessions.createSession(session, guardOf(user))
      const clash = aSession(user, { sid: session.sid, currentHash: unique('other') })
      expect(await stores.sessions.createSession(clash, guardOf(user))).toEqual({ created: false })
      expect(await stores.sessions.getSession(session.sid)).toEqual(session)
    })

    it('refuses a session a logout everywhere voids, with the user as found, so that login can start it after the logout', async () => {
      const someone = aUser()
      await stores.users.createUser(someone)
      const session = aSession(someone)
      const logoutAt = session.createdAt + 5
      await stores.users.updateUser(someone.sub, { sessionsValidAfter: voidSessionsUpTo(logoutAt) })
      const found = { ...someone, sessionsValidAfter: voidSessionsUpTo(logoutAt) }
      expect(await stores.sessions.createSession(session, guardOf(someone))).toEqual({
        created: false,
        user: found,
      })
      // core/login.ts startSession: the same session, started at the logout's instant rule.
      expect(await startSession(stores.sessions, session, guardOf(someone))).toBe(true)
      expect(await stores.sessions.getSession(session.sid)).toEqual({
        ...session,
        createdAt: voidSessionsUpTo(logoutAt),
      })
    })

    it('commits a rotation with a home only while the item is homed as read (failover adopt)', async () => {
      const session = aSession(user, { home: 'eu-west-1' })
      await stores.sessions.createSession(session, guardOf(user))
      const elsewhere = { ...rotationOf(session), home: { expected: 'us-east-1' } }
      expect(await stores.sessions.rotate(elsewhere)).toEqual({ committed: false, session })
      const primary = { ...rotationOf(session), home: { expected: undefined } }
      expect(await stores.sessions.rotate(primary)).toEqual({ committed: false, session })
      const here = { ...rotationOf(session), home: { expected: 'eu-west-1' } }
      expect(await stores.sessions.rotate(here)).toEqual({ committed: true })
      // Sent again after a lost answer: already applied, so committed.
      expect(await stores.sessions.rotate(here)).toEqual({ committed: true })
      expect((await stores.sessions.getSession(session.sid))?.home).toBe('eu-west-1')
    })

    it('adopts: moves the home, counts the epoch and records the generation adopted at, once', async () => {
      // An rt1_ session of the primary: no home in its item.
      const session = aSession(user, { generation: 4, epoch: undefined })
      await stores.sessions.createSession(session, guardOf(user))
      const adoption = {
        ...rotationOf(session),
        home: { expected: undefined, adopt: { home: 'us-east-1', epoch: 1, adoptedAt: 4 } },
      }
      expect(await stores.sessions.rotate(adoption)).toEqual({ committed: true })
      expect(await stores.sessions.rotate(adoption)).toEqual({ committed: true })
      const adopted = await stores.sessions.getSession(session.sid)
      expect(adopted).toMatchObject({ home: 'us-east-1', epoch: 1, adoptedAt: 4, generation: 5 })
      // The old home, deciding from its stale read, no longer can.
      const stale = { ...rotationOf(session), home: { expected: undefined } }
      expect(await stores.sessions.rotate(stale)).toEqual({ committed: false, session: adopted })
    })

    it('commits a rotation only from the expected hash and generation, and only once', async () => {
      const session = aSession(user)
      await stores.sessions.createSession(session, guardOf(user))
      const rotation = rotationOf(session)
      const staleGeneration = { ...rotation, expect: { ...rotation.expect, generation: 1 } }
      const staleHash = { ...rotation, expect: { ...rotation.expect, currentHash: 'stale' } }
      // A lost rotation comes back with the session as its condition found it.
      expect(await stores.sessions.rotate(staleGeneration)).toEqual({ committed: false, session })
      expect(await stores.sessions.rotate(staleHash)).toEqual({ committed: false, session })
      expect(await stores.sessions.getSession(session.sid)).toEqual(session)

      expect(await stores.sessions.rotate(rotation)).toEqual({ committed: true })
      const { next } = rotation
      const rotated = {
        ...session,
        generation: 1,
        currentHash: next.currentHash,
        previousHash: session.currentHash,
        rotatedAt: next.rotatedAt,
        sealedSuccessor: next.sealedSuccessor,
        lastUsedAt: next.lastUsedAt,
        idleExpiresAt: next.idleExpiresAt,
      }
      expect(await stores.sessions.rotate(rotationOf(session))).toEqual({
        committed: false,
        session: rotated,
      })
      expect(await stores.sessions.getSession(session.sid)).toEqual(rotated)
    })

    it('commits a rotation sent again after its answer was lost, and it changes nothing more', async () => {
      const session = aSession(user)
      await stores.sessions.createSession(session, guardOf(user))
      const rotation = rotationOf(session)
      expect(await stores.sessions.rotate(rotation)).toEqual({ committed: true })
      const once = await stores.sessions.getSession(session.sid)
      // What the SDK sends again when the first answer was lost: the same request.
      expect(await stores.sessions.rotate(rotation)).toEqual({ committed: true })
      expect(await stores.sessions.getSession(session.sid)).toEqual(once)
      // Not once the session moved on, nor once it was revoked.
      const next = rotationOf(once as Session)
      expect(await stores.sessions.rotate(next)).toEqual({ committed: true })
      expect(await stores.sessions.rotate(rotation)).toMatchObject({ committed: false })
      await stores.sessions.revokeSession(session.sid, 'revoked', clock.now())
      expect(await stores.sessions.rotate(next)).toMatchObject({ committed: false })
    })

    it('lets exactly one of several concurrent rotations of the same state commit', async () => {
      const session = aSession(user)
      await stores.sessions.createSession(session, guardOf(user))
      const rotations = Array.from({ length: 6 }, () => rotationOf(session))
      const results = await Promise.all(rotations.map((r) => stores.sessions.rotate(r)))
      expect(results.filter((result) => result.committed)).toHaveLength(1)
      const winner = rotations[results.findIndex((result) => result.committed)] as Rotation
      const stored = await stores.sessions.getSession(session.sid)
      expect(stored).toMatchObject({ generation: 1, currentHash: winner.next.currentHash })
    })

    it('never rotates a revoked session', async () => {
      const session = aSession(user)
      await stores.sessions.createSession(session, guardOf(user))
      await stores.sessions.revokeSession(session.sid, 'revoked', clock.now())
      expect(await stores.sessions.rotate(rotationOf(session))).toMatchObject({ committed: false })
    })

    it('revokes an active session once, keeps the first reason, drops the grace child', async () => {
      const session = aSession(user)
      await stores.sessions.createSession(session, guardOf(user))
      await stores.sessions.rotate(rotationOf(session))
      await stores.sessions.revokeSession(session.sid, 'reuse', clock.now())
      await stores.sessions.revokeSession(session.sid, 'revoked', clock.now())
      const revoked = await stores.sessions.getSession(session.sid)
      expect(revoked).toMatchObject({ status: 'revoked', revokedReason: 'reuse' })
      expect(revoked?.sealedSuccessor).toBeUndefined()
    })

    it('treats revoking a session that does not exist as done, and creates nothing', async () => {
      const sid = newSessionId()
      await stores.sessions.revokeSession(sid, 'revoked', clock.now())
      expect(await stores.sessions.getSession(sid)).toBeUndefined()
    })

    it("lists a user's sessions newest first, ended ones included, and no one else's", async () => {
      const owner = aUser()
      await stores.users.createUser(owner)
      const older = aSession(owner, { createdAt: clock.now() - 2000 })
      const newer = aSession(owner, { createdAt: clock.now() - 1000 })
      const stranger = aSession(user)
      for (const s of [older, newer]) await stores.sessions.createSession(s, guardOf(owner))
      await stores.sessions.createSession(stranger, guardOf(user))
      await stores.sessions.revokeSession(older.sid, 'ended_by_user', clock.now())
      const listed = await stores.sessions.listSessions(owner.sub)
      expect(listed.map((s) => s.sid)).toEqual([newer.sid, older.sid])
      expect(listed[1]?.status).toBe('revoked')
    })
  })
}

export function loginAttemptsContract(name: string, make: () => Promise<Stores>): void {
  describe(`LoginAttempts contract: ${name}`, () => {
    let stores: Stores
    beforeAll(async () => {
      stores = await make()
    })
    const failure = (at: number, forgetBefore = at - 86_400_000) => ({
      at,
      forgetBefore,
      expiresAt: at + 86_400_000,
    })

    it('reads the user by username, and nothing for a fresh username, failures or not', async () => {
      const user = aUser()
      await stores.users.createUser(user)
      expect(await stores.loginAttempts.loadLogin(user.username)).toEqual({ user })
      await stores.loginAttempts.recordLoginFailure(user.username, failure(1000))
      expect(await stores.loginAttempts.loadLogin(user.username)).toEqual({ user })
      expect(await stores.failedLogins(user.username)).toEqual({ failures: 1, lastFailedAt: 1000 })
      const fresh = unique('fresh')
      await stores.loginAttempts.recordLoginFailure(fresh, failure(1000))
      expect(await stores.loginAttempts.loadLogin(fresh)).toEqual({})
    })

    it('keeps the failed logins of a username no user has', async () => {
      const nobody = unique('nobody')
      await stores.loginAttempts.recordLoginFailure(nobody, failure(1000))
      await stores.loginAttempts.recordLoginFailure(nobody, failure(2000))
      expect(await stores.failedLogins(nobody)).toEqual({ failures: 2, lastFailedAt: 2000 })
    })

    it('counts every one of many concurrent failures', async () => {
      const username = unique('burst')
      await Promise.all(
        Array.from({ length: 12 }, () =>
          stores.loginAttempts.recordLoginFailure(username, failure(5000)),
        ),
      )
      expect(await stores.failedLogins(username)).toEqual({
        failures: 12,
        lastFailedAt: 5000,
      })
    })

    it('restarts at 1 a count whose last failure is at or before forgetBefore', async () => {
      const username = unique('old')
      await stores.loginAttempts.recordLoginFailure(username, failure(1000))
      await stores.loginAttempts.recordLoginFailure(username, failure(2000))
      // The last failure sits exactly on the boundary: forgotten.
      await stores.loginAttempts.recordLoginFailure(username, failure(9000, 2000))
      expect(await stores.failedLogins(username)).toEqual({
        failures: 1,
        lastFailedAt: 9000,
      })
      // One millisecond inside the window: counted on.
      await stores.loginAttempts.recordLoginFailure(username, failure(9500, 8999))
      expect(await stores.failedLogins(username)).toEqual({
        failures: 2,
        lastFailedAt: 9500,
      })
    })

    it('lets exactly one of several concurrent claims of the same count win', async () => {
      const username = unique('claim')
      await stores.loginAttempts.recordLoginFailure(username, failure(1000))
      const seen = { failures: 1, lastFailedAt: 1000 }
      const claims = await Promise.all(
        [2000, 2001, 2002, 2003].map((at) =>
          stores.loginAttempts.claimLoginAttempt(
            username,
            seen,
            { failures: 2, lastFailedAt: at },
            at + 86_400_000,
          ),
        ),
      )
      expect(claims.filter(Boolean)).toHaveLength(1)
      const winner = 2000 + claims.indexOf(true)
      expect(await stores.failedLogins(username)).toEqual({
        failures: 2,
        lastFailedAt: winner,
      })
    })

    it('clears the count after a success if nothing landed since its turn, else takes back only its own', async () => {
      const username = unique('clear')
      const free = (at: number) => ({ ...failure(at), freeFailures: 3 })
      // A success's turn counted it (1); a failure landed after (2).
      const { state: seen } = await stores.loginAttempts.countLoginAttempt(username, free(1000))
      await stores.loginAttempts.recordLoginFailure(username, failure(1500))
      await stores.loginAttempts.clearLoginFailures(username, seen)
      expect((await stores.failedLogins(username))?.failures).toBe(1)
      const { state: mine } = await stores.loginAttempts.countLoginAttempt(username, free(2000))
      await stores.loginAttempts.clearLoginFailures(username, mine)
      expect((await stores.failedLogins(username))?.failures).toBe(0)
      // Taking back never goes below zero.
      await stores.loginAttempts.clearLoginFailures(username, mine)
      expect((await stores.failedLogins(username))?.failures).toBe(0)
    })

    it("gives back exactly one turn's count, never more, and never a count a success cleared since", async () => {
      const username = unique('give-back')
      const free = (at: number) => ({ ...failure(at), freeFailures: 3 })
      const load = () => stores.failedLogins(username)
      // Two failures, then an attempt whose proof is refused: its turn (3) is given back.
      await stores.loginAttempts.countLoginAttempt(username, free(1000))
      await stores.loginAttempts.countLoginAttempt(username, free(1100))
      const { state: refused } = await stores.loginAttempts.countLoginAttempt(username, free(1200))
      expect(refused).toMatchObject({ failures: 3 })
      await stores.loginAttempts.giveBackLoginAttempt(username, refused)
      expect(await load()).toMatchObject({ failures: 2 })
      // A failure that landed after the turn still counts: only the one count goes.
      const { state: racing } = await stores.loginAttempts.countLoginAttempt(username, free(1300))
      await stores.loginAttempts.recordLoginFailure(username, failure(1400))
      await stores.loginAttempts.giveBackLoginAttempt(username, racing)
      expect(await load()).toMatchObject({ failures: 3 })
      // A turn taken before a success's clear: the clear took its count, nothing of it is
      // left to give back, and a failure after the clear stays counted.
      const other = unique('give-back-after-clear')
      const { state: before } = await stores.loginAttempts.countLoginAttempt(other, free(1500))
      const { state: success } = await stores.loginAttempts.countLoginAttempt(other, free(1600))
      await stores.loginAttempts.clearLoginFailures(other, success)
      await stores.loginAttempts.recordLoginFailure(other, failure(1700))
      await stores.loginAttempts.giveBackLoginAttempt(other, before)
      const after = await stores.failedLogins(other)
      expect(after).toEqual({ failures: 1, lastFailedAt: 1700, resets: 1 })
      // Never below zero.
      const { state: last } = await stores.loginAttempts.countLoginAttempt(other, free(1800))
      await stores.loginAttempts.giveBackLoginAttempt(other, last)
      await stores.loginAttempts.giveBackLoginAttempt(other, last)
      await stores.loginAttempts.giveBackLoginAttempt(other, last)
      expect(await stores.failedLogins(other)).toMatchObject({
        failures: 0,
      })
    })

    it('counts a free turn for no record, a cleared one, or one below freeFailures within the window', async () => {
      const username = unique('free')
      const free = (at: number, forgetBefore = at - 86_400_000) => ({
        ...failure(at, forgetBefore),
        freeFailures: 2,
      })
      const first = await stores.loginAttempts.countLoginAttempt(username, free(1000))
      expect(first).toEqual({ counted: true, state: { failures: 1, lastFailedAt: 1000 } })
      const second = await stores.loginAttempts.countLoginAttempt(username, free(2000))
      expect(second).toEqual({ counted: true, state: { failures: 2, lastFailedAt: 2000 } })
      // No free turn left: nothing written, the record as it stands comes back.
      const third = await stores.loginAttempts.countLoginAttempt(username, free(3000))
      expect(third).toEqual({ counted: false, state: { failures: 2, lastFailedAt: 2000 } })
      // A forgotten count is no free turn either: the caller claims over it (core/throttle.ts).
      const later = await stores.loginAttempts.countLoginAttempt(username, free(9000, 2000))
      expect(later).toEqual({ counted: false, state: { failures: 2, lastFailedAt: 2000 } })
      await stores.loginAttempts.clearLoginFailures(username, { failures: 2, lastFailedAt: 2000 })
      const cleared = await stores.loginAttempts.countLoginAttempt(username, free(9500))
      expect(cleared).toEqual({
        counted: true,
        state: { failures: 1, lastFailedAt: 9500, resets: 1 },
      })
    })

    it('gives exactly freeFailures of many concurrent attempts a free turn', async () => {
      const username = unique('free-burst')
      const counts = await Promise.all(
        Array.from({ length: 12 }, () =>
          stores.loginAttempts.countLoginAttempt(username, { ...failure(5000), freeFailures: 3 }),
        ),
      )
      expect(counts.filter((count) => count.counted)).toHaveLength(3)
      expect(
        counts
          .filter((count) => count.counted)
          .map((count) => count.state.failures)
          .sort(),
      ).toEqual([1, 2, 3])
      expect(await stores.failedLogins(username)).toEqual({
        failures: 3,
        lastFailedAt: 5000,
      })
    })
  })
}

/** The stores, the outbox, and a way to read every security event written (a test's view). */
export interface EventStores extends Stores {
  readonly outbox: EventOutbox
  /** Another outbox on the same events, as another container holds it (nothing in memory). */
  anotherOutbox(): EventOutbox
  /** Every event the outbox holds, in any order. */
  events(): Promise<SecurityEvent[]>
}

/**
 * docs/design.md "Security events": a store writes the events it is given
 * with its change, in the same write, so that they exist if and only if the
 * change committed; an event no change carries is written alone.
 */
export function securityEventsContract(name: string, make: () => Promise<EventStores>): void {
  describe(`security events contract: ${name}`, () => {
    let stores: EventStores
    let user: User
    beforeAll(async () => {
      stores = await make()
      user = aUser()
      await stores.users.createUser(user)
    })
    const ids = async () => new Set((await stores.events()).map((event) => event.id))
    const anEvent = (type: SecurityEventType) =>
      securityEvent(type, clock.now(), { subject: user.sub, data: { client_id: 'test-native' } })

    it('writes a new session’s events with it, and none when the session is refused', async () => {
      const session = aSession(user)
      const started = anEvent('login.succeeded')
      expect(await stores.sessions.createSession(session, guardOf(user), [started])).toEqual({
        created: true,
      })
      const refused = anEvent('login.succeeded')
      const stale = { sub: user.sub, passwordHash: 'another hash' }
      expect(await stores.sessions.createSession(aSession(user), stale, [refused])).toMatchObject({
        created: false,
      })
      const clash = anEvent('login.succeeded')
      expect(await stores.sessions.createSession(session, guardOf(user), [clash])).toEqual({
        created: false,
      })
      const written = await ids()
      expect(written.has(started.id)).toBe(true)
      expect(written.has(refused.id) || written.has(clash.id)).toBe(false)
    })

    it('appends an event by id once: a second append of that id, from any container, writes nothing', async () => {
      const id = signalEventId('dpop.key_mismatch', 'sid-1', clock.now())
      const first = { ...anEvent('dpop.key_mismatch'), id }
      const repeat = { ...anEvent('dpop.key_mismatch'), id, time: first.time + 1000 }
      await stores.outbox.appendEventOnce(first)
      await stores.outbox.appendEventOnce(repeat)
      await stores.anotherOutbox().appendEventOnce(repeat)
      const found = (await stores.events()).filter((event) => event.id === id)
      expect(found).toEqual([first])
    })

    it('writes a revocation’s events once: revoking again, or a missing session, writes none', async () => {
      const session = aSession(user)
      await stores.sessions.createSession(session, guardOf(user))
      const first = [anEvent('token.reuse_detected'), anEvent('session.revoked')]
      const again = [anEvent('session.revoked')]
      const missing = [anEvent('session.revoked')]
      expect(await stores.sessions.revokeSession(session.sid, 'reuse', clock.now(), first)).toBe(
        true,
      )
      expect(await stores.sessions.revokeSession(session.sid, 'revoked', clock.now(), again)).toBe(
        false,
      )
      expect(
        await stores.sessions.revokeSession(newSessionId(), 'revoked', clock.now(), missing),
      ).toBe(false)
      const written = await ids()
      for (const event of first) expect(written.has(event.id)).toBe(true)
      for (const event of [...again, ...missing]) expect(written.has(event.id)).toBe(false)
    })

    it('writes a user change’s events with it, and none for an unknown sub', async () => {
      const disabled = anEvent('user.disabled')
      const nobody = anEvent('user.disabled')
      expect(await stores.users.updateUser(user.sub, { status: 'disabled' }, [disabled])).toBe(true)
      expect(await stores.users.updateUser(newUserId(), { status: 'disabled' }, [nobody])).toBe(
        false,
      )
      const written = await ids()
      expect(written.has(disabled.id)).toBe(true)
      expect(written.has(nobody.id)).toBe(false)
    })

    it('counts a failed login and writes its event together, each of many concurrent ones', async () => {
      const username = unique('failing')
      const failed = Array.from({ length: 6 }, () => anEvent('login.failed'))
      const at = clock.now()
      await Promise.all(
        failed.map((event) =>
          stores.loginAttempts.recordLoginFailure(
            username,
            { at, forgetBefore: at - 86_400_000, expiresAt: at + 86_400_000 },
            [event],
          ),
        ),
      )
      expect((await stores.failedLogins(username))?.failures).toBe(6)
      const written = await ids()
      for (const event of failed) expect(written.has(event.id)).toBe(true)
    })

    it('writes an event no change carries alone, every field as core decided it', async () => {
      const throttled = securityEvent('login.throttled', clock.now(), {
        subject: user.sub,
        data: { client_id: 'test-native', retry_after_seconds: 2 },
        origin: { sourceIp: '198.51.100.7', userAgent: 'contract/1' },
      })
      await stores.outbox.appendEvent(throttled)
      const disabled = securityEvent('user.disabled', clock.now())
      await stores.outbox.appendEvent(disabled)
      const stored = await stores.events()
      expect(stored.find((event) => event.id === throttled.id)).toEqual(throttled)
      // No subject and no data survive as such: an event is exactly what was written.
      expect(stored.find((event) => event.id === disabled.id)).toEqual(disabled)
    })
  })
}
