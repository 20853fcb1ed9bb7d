/**
 * Races (issue 6): each one is run several times; the tests assert counts and
 * final states, never who won. A summary of what was run is printed at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { User } from '../../functions/core/ports.js'
import { hashToken, parseRefreshToken } from '../../functions/core/refresh-token.js'
import { DynamoFaults, mentions } from '../support/faults.js'
import {
  addCheapUser,
  bearer,
  type Harness,
  NATIVE,
  type Reply,
  startHarness,
} from '../support/harness.js'
import { type Item, items } from '../support/items.js'

let h: Harness
const faults = new DynamoFaults()
const summary: string[] = []

beforeAll(async () => {
  h = await startHarness({
    dynamodb: (client) => faults.install(client),
    // Each login attempt takes a turn before its password check, so by default at most
    // four run at once (login-abuse.test.ts); the parallel logins below test the store.
    env: { LOGIN_FREE_FAILURES: '10' },
  })
})
afterAll(async () => {
  await h.close()
  await faults.close()
  console.log(`\nRaces:\n${summary.map((line) => `- ${line}`).join('\n')}\n`)
})

const sidOf = (token: string) => parseRefreshToken(token)?.sid as string

const cheapUser = () => addCheapUser(h, 'races')

async function login(user: User): Promise<Reply> {
  const reply = await h.login(user)
  expect(reply.status).toBe(200)
  return reply
}

/** The session item, which must exist, and how many token records it has. */
async function sessionRecords(sid: string) {
  const { session, tokens } = await items(h.dynamodb, h.tableName).session(sid)
  expect(session, `session ${sid}`).toBeDefined()
  return { session: session as Item, tokens }
}

async function expectDead(token: string): Promise<void> {
  const reply = await h.refresh(token)
  expect(reply.status).toBe(400)
  expect(reply.body.error).toBe('invalid_grant')
}

const never5xx = (replies: Reply[]) =>
  expect(replies.filter((reply) => reply.status >= 500).map((r) => r.status)).toEqual([])

describe('rule 4: simultaneous refreshes of one token', () => {
  const REPEATS = 3
  const CALLERS = 50

  it(`turns ${CALLERS} simultaneous refreshes into exactly one rotation, one child for all, no fork (${REPEATS} runs)`, async () => {
    const user = await cheapUser()
    for (let run = 0; run < REPEATS; run++) {
      const token = (await login(user)).body.refresh_token as string
      const replies = await Promise.all(Array.from({ length: CALLERS }, () => h.refresh(token)))
      never5xx(replies)
      expect(replies.map((reply) => reply.status)).toEqual(replies.map(() => 200))
      const children = new Set(replies.map((reply) => reply.body.refresh_token))
      expect(children.size).toBe(1)
      const [child] = children as Set<string>
      const { session, tokens } = await sessionRecords(sidOf(token))
      expect(session.generation).toBe(1)
      expect(session.status).toBe('active')
      expect(session.current_hash).toBe(hashToken(child as string))
      // One token retired, the first: no second branch was ever written.
      expect(tokens).toBe(1)
      expect((await h.refresh(child as string)).status).toBe(200)
    }
    summary.push(
      `${CALLERS} simultaneous refreshes of one token x ${REPEATS}: ${REPEATS} rotations, 1 child each, 0 forks, 0 errors`,
    )
  })
})

describe('rule 3: reuse detection racing a refresh of the newest token', () => {
  const REPEATS = 6

  it(`leaves nothing in the session able to refresh, whichever lands first (${REPEATS} runs)`, async () => {
    const user = await cheapUser()
    let newestRotated = 0
    for (let run = 0; run < REPEATS; run++) {
      const t0 = (await login(user)).body.refresh_token as string
      const t1 = (await h.refresh(t0)).body.refresh_token as string
      h.clock.advance((NATIVE.reuse_grace_seconds as number) + 1)
      const [reuse, newest] =
        run % 2 === 0
          ? await Promise.all([h.refresh(t0), h.refresh(t1)])
          : await Promise.all([h.refresh(t1), h.refresh(t0)]).then(([a, b]) => [b, a] as const)
      never5xx([reuse, newest])
      expect(reuse.status).toBe(400)
      expect([200, 400]).toContain(newest.status)
      const { session } = await sessionRecords(sidOf(t0))
      expect(session.status).toBe('revoked')
      expect(session.revoked_reason).toBe('reuse')
      await expectDead(t0)
      await expectDead(t1)
      if (newest.status === 200) {
        newestRotated++
        await expectDead(newest.body.refresh_token)
      }
    }
    summary.push(
      `reuse detection racing a refresh of the newest token x ${REPEATS}: the refresh rotated first in ${newestRotated}; afterwards 0 tokens of those sessions could refresh`,
    )
  })
})

describe('revoke racing refresh', () => {
  const REPEATS = 6

  it(`ends the session, and no token of it refreshes, not even a child issued in the race (${REPEATS} runs)`, async () => {
    const user = await cheapUser()
    let childIssued = 0
    for (let run = 0; run < REPEATS; run++) {
      const token = (await login(user)).body.refresh_token as string
      const revoke = () => h.post('/revoke', { token, client_id: NATIVE.client_id })
      const [revoked, refreshed] =
        run % 2 === 0
          ? await Promise.all([revoke(), h.refresh(token)])
          : await Promise.all([h.refresh(token), revoke()]).then(([a, b]) => [b, a] as const)
      never5xx([revoked, refreshed])
      expect(revoked.status).toBe(200)
      expect([200, 400]).toContain(refreshed.status)
      expect((await sessionRecords(sidOf(token))).session.status).toBe('revoked')
      await expectDead(token)
      if (refreshed.status === 200) {
        childIssued++
        await expectDead(refreshed.body.refresh_token)
      }
    }
    summary.push(
      `revoke racing refresh x ${REPEATS}: a child was issued in the race ${childIssued} times; afterwards 0 tokens refreshed`,
    )
  })
})

describe('logout everywhere racing a login', () => {
  // Linearizable: a login whose session is written before the logout sets
  // `sessionsValidAfter` dies, one written after the logout completed survives, and
  // one that lands while the logout is still marking sessions may go either way,
  // but every check (refresh, its status, the instant rule) agrees on which.
  const logoutEverywhere = (access: Reply) => h.del('/sessions', bearer(access.body.access_token))
  // Both are transactions on the user's item: the login's guards it, the logout's sets
  // sessionsValidAfter (and writes its event).
  const createSessionOf = (user: User) => (input: unknown) =>
    mentions(`USER#${user.sub}`)(input) && mentions('ConditionCheck')(input)
  const setValidAfterOf = (user: User) => (input: unknown) =>
    mentions(`USER#${user.sub}`)(input) && mentions('sessions_valid_after = :after')(input)

  async function expectAlive(reply: Reply): Promise<void> {
    const listed = await h.get('/sessions', bearer(reply.body.access_token))
    expect(listed.status).toBe(200)
    expect(listed.body.sessions.map((s: { sid: string }) => s.sid)).toEqual([
      sidOf(reply.body.refresh_token),
    ])
    expect((await h.refresh(reply.body.refresh_token)).status).toBe(200)
  }

  it('keeps a login whose session is written after the logout, even though it read the clock before it', async () => {
    const user = await cheapUser()
    const old = await login(user)
    const held = faults.hold('TransactWriteItems', createSessionOf(user))
    const pending = h.login(user)
    await held.reached
    // The login took its time and read the clock; the logout comes later.
    h.clock.advance(1)
    expect((await logoutEverywhere(old)).status).toBe(204)
    held.release()
    const fresh = await pending
    expect(fresh.status).toBe(200)
    await expectDead(old.body.refresh_token)
    await expectAlive(fresh)
  })

  it('ends a login whose session is written before the logout sets sessionsValidAfter', async () => {
    const user = await cheapUser()
    const old = await login(user)
    const held = faults.hold('TransactWriteItems', setValidAfterOf(user))
    const logout = logoutEverywhere(old)
    await held.reached
    const early = await login(user)
    held.release()
    expect((await logout).status).toBe(204)
    await expectDead(old.body.refresh_token)
    await expectDead(early.body.refresh_token)
    expect((await sessionRecords(sidOf(early.body.refresh_token))).session.status).toBe('revoked')
  })

  it('a new login after a logout everywhere at the same instant survives', async () => {
    const user = await cheapUser()
    const old = await login(user)
    expect((await logoutEverywhere(old)).status).toBe(204)
    const fresh = await login(user)
    await expectDead(old.body.refresh_token)
    await expectAlive(fresh)
  })

  const REPEATS = 8
  it(`decides each free race by commit order: written before dies, written after survives (${REPEATS} runs)`, async () => {
    let logoutDone = 0
    const seen = { before: 0, after: 0, overlapping: 0 }
    for (let run = 0; run < REPEATS; run++) {
      const user = await cheapUser()
      const olds = [await login(user), await login(user)]
      faults.calls.length = 0
      const logoutTimed = () =>
        logoutEverywhere(olds[0] as Reply).finally(() => {
          logoutDone = performance.now()
        })
      const [logout, fresh] =
        run % 2 === 0
          ? await Promise.all([logoutTimed(), h.login(user)])
          : await Promise.all([h.login(user), logoutTimed()]).then(([a, b]) => [b, a] as const)
      expect(logout.status).toBe(204)
      expect(fresh.status).toBe(200)
      const write = faults.calls.find(
        (call) => call.command === 'TransactWriteItems' && createSessionOf(user)(call.input),
      )
      const update = faults.calls.find(
        (call) => call.command === 'TransactWriteItems' && setValidAfterOf(user)(call.input),
      )
      expect(write && update).toBeTruthy()
      for (const old of olds) await expectDead(old.body.refresh_token)

      const alive = (await h.refresh(fresh.body.refresh_token)).status === 200
      const { session } = await sessionRecords(sidOf(fresh.body.refresh_token))
      const validAfter = (await items(h.dynamodb, h.tableName).user(user.sub))
        ?.sessions_valid_after as number
      // Every view of the session agrees: refresh, its status, and the instant rule.
      expect(alive).toBe(
        session.status === 'active' && (session.created_at as number) >= validAfter,
      )
      if (write && update && write.end < update.start) {
        seen.before++
        expect(alive).toBe(false)
      } else if (write && write.start > logoutDone) {
        seen.after++
        expect(alive).toBe(true)
      } else {
        seen.overlapping++
      }
    }
    summary.push(
      `logout everywhere racing a login x ${REPEATS} (+3 fixed interleavings): login written before the logout ${seen.before}, after it ${seen.after}, during it ${seen.overlapping}; every old session died, every login written after survived, every view agreed`,
    )
  })
})

describe('parallel logins of one user', () => {
  const REPEATS = 3
  const LOGINS = 8

  // A cheap password hash: eight OWASP-cost scrypt checks at once on a busy two-core machine
  // can outlast the local function deadline (a 503), which says nothing about the store.
  it(`all succeed with distinct sessions, none lost (${LOGINS} logins x ${REPEATS} runs)`, async () => {
    const user = await cheapUser()
    for (let run = 0; run < REPEATS; run++) {
      const replies = await Promise.all(Array.from({ length: LOGINS }, () => h.login(user)))
      never5xx(replies)
      expect(replies.map((reply) => reply.status)).toEqual(replies.map(() => 200))
      const sids = new Set(replies.map((reply) => sidOf(reply.body.refresh_token)))
      expect(sids.size).toBe(LOGINS)
      const sessions = await items(h.dynamodb, h.tableName).sessionsOf(user.sub)
      expect(sessions.length).toBe(LOGINS * (run + 1))
      for (const reply of replies) {
        expect((await h.refresh(reply.body.refresh_token)).status).toBe(200)
      }
    }
    summary.push(
      `${LOGINS} parallel logins of one user x ${REPEATS}: ${LOGINS * REPEATS} sessions, all distinct, 0 lost`,
    )
  })
})
