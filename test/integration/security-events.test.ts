/**
 * docs/design.md "Security events", through the HTTP API on DynamoDB Local:
 * every security-relevant change writes exactly one event, in the change's own
 * write (the outbox items, read from the table), and never a secret; and the
 * forwarder, fed from the table's real stream, delivers every one of them with
 * its outbox id even when EventBridge fails on the way. Faults between a change
 * and its answer: test/integration/faults-matrix-*.test.ts checks the events of
 * every case.
 */
import {
  EventBridgeClient,
  PutEventsCommand,
  type PutEventsCommandInput,
} from '@aws-sdk/client-eventbridge'
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda'
import { mockClient } from 'aws-sdk-client-mock'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { User } from '../../functions/core/ports.js'
import { parseRefreshToken } from '../../functions/core/refresh-token.js'
import { type SecurityEvent, toCloudEvent } from '../../functions/core/security-events.js'
import { disableUser, enableUser, setPassword } from '../../functions/core/users.js'
import type { BatchResponse } from '../../functions/forwarder/forward.js'
import { type ProofKey, proofClaims, proofKey, signProof } from '../support/dpop.js'
import { DynamoFaults } from '../support/faults.js'
import {
  addCheapUser,
  bearer,
  type Harness,
  NATIVE,
  PASSWORD,
  type Reply,
  startHarness,
} from '../support/harness.js'
import { items, newEvents } from '../support/items.js'
import { capture, leakedSecrets, recordSecret } from '../support/secrets.js'
import { streamRecords } from '../support/streams.js'

/** A client in report mode: a reuse is refused and reported, its session kept. */
const REPORTING = { ...NATIVE, client_id: 'test-reporting', reuse_detection: 'report' as const }
const AGENT = 'security-events-test/1.0'
const WRONG = 'not the password at all'
const NEW_PASSWORD = 'the password after the change'
recordSecret(NEW_PASSWORD)

let h: Harness
/** Usernames of failed logins: no event may name them. */
const failedUsernames: string[] = []

beforeAll(async () => {
  // One free failure: the second wrong password in a row starts the back-off.
  h = await startHarness({ clients: [NATIVE, REPORTING], env: { LOGIN_FREE_FAILURES: '1' } })
})
afterAll(() => h.close())

const events = () => items(h.dynamodb, h.tableName).events()

/** Runs `action`; returns the events it wrote. */
async function written(action: () => Promise<unknown>): Promise<SecurityEvent[]> {
  const before = await events()
  await action()
  return newEvents(before, await events())
}

const post = (path: string, params: Record<string, string>) =>
  h.post(path, params, { headers: { 'user-agent': AGENT } })

const login = (user: User, client = NATIVE.client_id, password = PASSWORD) =>
  post('/login', { username: user.username, password, client_id: client })

const refresh = (token: string, client = NATIVE.client_id) => {
  recordSecret(token)
  return post('/token', { grant_type: 'refresh_token', refresh_token: token, client_id: client })
}

async function session(user: User, client = NATIVE.client_id): Promise<Reply> {
  const reply = await login(user, client)
  expect(reply.status).toBe(200)
  return reply
}

const sidOf = (reply: Reply) => parseRefreshToken(reply.body.refresh_token)?.sid as string

/** Where the harness's requests come from, as the local server sees them. */
const LOOPBACK = expect.stringMatching(/127\.0\.0\.1|::1/)

describe('each security-relevant change writes exactly one event, with the change', () => {
  it('login: login.succeeded with the user, the session, its client, source IP and user agent', async () => {
    const user = await addCheapUser(h, 'ev')
    let reply: Reply | undefined
    const [event, ...more] = await written(async () => {
      reply = await session(user)
    })
    expect(more).toEqual([])
    expect(event).toMatchObject({
      type: 'login.succeeded',
      subject: user.sub,
      time: h.clock.now(),
      data: {
        sid: sidOf(reply as Reply),
        client_id: NATIVE.client_id,
        source_ip: LOOPBACK,
        user_agent: AGENT,
      },
    })
    expect(event?.id).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('a wrong password: login.failed with the user as subject, written alone (the attempt’s turn counted it before the check)', async () => {
    const user = await addCheapUser(h, 'ev')
    failedUsernames.push(user.username)
    const found = await written(async () => {
      expect((await login(user, NATIVE.client_id, WRONG)).status).toBe(400)
    })
    expect(found).toMatchObject([
      {
        type: 'login.failed',
        subject: user.sub,
        data: { client_id: NATIVE.client_id, reason: 'wrong_password', user_agent: AGENT },
      },
    ])
  })

  it('an unknown username: login.failed with no subject, and never the username', async () => {
    const username = `nobody-${Math.random().toString(36).slice(2, 10)}`
    failedUsernames.push(username)
    const found = await written(async () => {
      const reply = await post('/login', {
        username,
        password: WRONG,
        client_id: NATIVE.client_id,
      })
      expect(reply.status).toBe(400)
    })
    expect(found).toHaveLength(1)
    expect(found[0]?.type).toBe('login.failed')
    expect(found[0]?.subject).toBeUndefined()
    expect(found[0]?.data.reason).toBe('unknown_username')
    expect(JSON.stringify(found)).not.toContain(username)
  })

  it('a disabled user with the right password: login.failed, reason user_disabled', async () => {
    const user = await addCheapUser(h, 'ev')
    await h.users.updateUser(user.sub, { status: 'disabled' })
    const found = await written(async () => expect((await login(user)).status).toBe(400))
    expect(found).toMatchObject([
      { type: 'login.failed', subject: user.sub, data: { reason: 'user_disabled' } },
    ])
  })

  it('the back-off: each 429 writes login.throttled (its Retry-After) before answering; the attempt that takes the next turn and fails writes one login.failed', async () => {
    const user = await addCheapUser(h, 'ev')
    failedUsernames.push(user.username)
    // The free failure, then the failure that starts a 1 s wait.
    for (let i = 0; i < 2; i++)
      expect((await login(user, NATIVE.client_id, WRONG)).status).toBe(400)
    const throttled = await written(async () => {
      const reply = await login(user, NATIVE.client_id, WRONG)
      expect(reply.status).toBe(429)
      expect(reply.headers.get('retry-after')).toBe('1')
    })
    expect(throttled).toMatchObject([
      {
        type: 'login.throttled',
        subject: user.sub,
        data: { client_id: NATIVE.client_id, retry_after_seconds: 1, user_agent: AGENT },
      },
    ])
    h.clock.advance(1)
    // This attempt counts itself as a failure before the password check (its turn): the
    // check fails, and its event is written alone.
    const failed = await written(async () => {
      expect((await login(user, NATIVE.client_id, WRONG)).status).toBe(400)
    })
    expect(failed).toMatchObject([
      { type: 'login.failed', subject: user.sub, data: { reason: 'wrong_password' } },
    ])
  })

  it('reuse after the grace window: token.reuse_detected (enforced) and session.revoked (reuse) together, once however often the token comes back', async () => {
    const user = await addCheapUser(h, 'ev')
    const first = await session(user)
    const rotated = await refresh(first.body.refresh_token)
    expect(rotated.status).toBe(200)
    h.clock.advance((NATIVE.reuse_grace_seconds as number) + 1)
    const found = await written(async () => {
      expect((await refresh(first.body.refresh_token)).status).toBe(400)
      expect((await refresh(first.body.refresh_token)).status).toBe(400)
      expect((await refresh(rotated.body.refresh_token)).status).toBe(400)
    })
    const sid = sidOf(first)
    expect(found.map((e) => e.type).sort()).toEqual(['session.revoked', 'token.reuse_detected'])
    expect(found.find((e) => e.type === 'token.reuse_detected')).toMatchObject({
      subject: user.sub,
      data: { sid, client_id: NATIVE.client_id, enforced: true, user_agent: AGENT },
    })
    expect(found.find((e) => e.type === 'session.revoked')).toMatchObject({
      subject: user.sub,
      data: { sid, client_id: NATIVE.client_id, reason: 'reuse' },
    })
    // One write: the same instant.
    expect(new Set(found.map((e) => e.time)).size).toBe(1)
  })

  it('report mode: the reused token is refused and the session lives on; token.reuse_detected says "enforced": false, and ReuseDetections counts it under its own dimension', async () => {
    const user = await addCheapUser(h, 'ev')
    const first = await session(user, REPORTING.client_id)
    const rotated = await refresh(first.body.refresh_token, REPORTING.client_id)
    h.clock.advance((REPORTING.reuse_grace_seconds as number) + 1)
    const logged = capture().output.length
    const found = await written(async () => {
      const reused = await refresh(first.body.refresh_token, REPORTING.client_id)
      expect(reused.status).toBe(400)
      expect(reused.body.error).toBe('invalid_grant')
    })
    expect(found).toMatchObject([
      {
        type: 'token.reuse_detected',
        subject: user.sub,
        data: { sid: sidOf(first), client_id: REPORTING.client_id, enforced: false },
      },
    ])
    // The session lives on: its newest token still refreshes.
    expect((await refresh(rotated.body.refresh_token, REPORTING.client_id)).status).toBe(200)
    // EMF: the same metric name, with a dimension of its own, so the alarm on ReuseDetections
    // {service} (enforced reuses) does not count it.
    const metrics = capture()
      .output.slice(logged)
      .join('')
      .split('\n')
      .filter((line) => line.includes('"ReuseDetections"'))
      .map((line) => JSON.parse(line))
    expect(metrics).toHaveLength(1)
    expect(metrics[0]).toMatchObject({
      ReuseDetections: 1,
      reuseDetection: 'report',
      _aws: { CloudWatchMetrics: [{ Dimensions: [['service', 'reuseDetection']] }] },
    })
  })

  it('revoke: session.revoked (revoked) once; revoking again writes nothing', async () => {
    const user = await addCheapUser(h, 'ev')
    const tokens = await session(user)
    const revoke = () =>
      post('/revoke', { token: tokens.body.refresh_token, client_id: NATIVE.client_id })
    const found = await written(async () => {
      expect((await revoke()).status).toBe(200)
      expect((await revoke()).status).toBe(200)
    })
    expect(found).toMatchObject([
      {
        type: 'session.revoked',
        subject: user.sub,
        data: { sid: sidOf(tokens), reason: 'revoked', source_ip: LOOPBACK, user_agent: AGENT },
      },
    ])
  })

  it('DELETE /sessions/{sid}: session.revoked (ended_by_user) for that session only', async () => {
    const user = await addCheapUser(h, 'ev')
    const mine = await session(user)
    const other = await session(user)
    const found = await written(async () => {
      const reply = await h.del(`/sessions/${sidOf(other)}`, {
        ...bearer(mine.body.access_token),
        'user-agent': AGENT,
      })
      expect(reply.status).toBe(204)
    })
    expect(found).toMatchObject([
      {
        type: 'session.revoked',
        subject: user.sub,
        data: { sid: sidOf(other), reason: 'ended_by_user', user_agent: AGENT },
      },
    ])
  })

  it('logout everywhere: sessions.ended_all (the caller’s session and client), and one session.revoked per live session', async () => {
    const user = await addCheapUser(h, 'ev')
    const caller = await session(user)
    const other = await session(user)
    h.clock.advance(1)
    const found = await written(async () => {
      const reply = await h.del('/sessions', {
        ...bearer(caller.body.access_token),
        'user-agent': AGENT,
      })
      expect(reply.status).toBe(204)
    })
    expect(found.find((e) => e.type === 'sessions.ended_all')).toMatchObject({
      subject: user.sub,
      data: { sid: sidOf(caller), client_id: NATIVE.client_id, reason: 'logout_everywhere' },
    })
    const revoked = found.filter((e) => e.type === 'session.revoked')
    expect(revoked.map((e) => e.data.sid).sort()).toEqual([sidOf(caller), sidOf(other)].sort())
    for (const e of revoked) expect(e.data.reason).toBe('logout_everywhere')
    expect(found).toHaveLength(3)
  })

  it('a password change: password.changed (the caller’s session and client) with the new hash, one session.revoked (password_changed) per other session; a wrong current password: login.failed alone', async () => {
    const user = await addCheapUser(h, 'ev')
    const caller = await session(user)
    const other = await session(user)
    h.clock.advance(1)
    const change = (current: string) =>
      h.post(
        '/me/password',
        { current_password: current, new_password: NEW_PASSWORD },
        { headers: { ...bearer(caller.body.access_token), 'user-agent': AGENT } },
      )
    const refused = await written(async () => expect((await change(WRONG)).status).toBe(400))
    expect(refused).toMatchObject([
      {
        type: 'login.failed',
        subject: user.sub,
        data: { sid: sidOf(caller), client_id: NATIVE.client_id, reason: 'wrong_password' },
      },
    ])
    const found = await written(async () => expect((await change(PASSWORD)).status).toBe(204))
    expect(found.find((e) => e.type === 'password.changed')).toMatchObject({
      subject: user.sub,
      data: { sid: sidOf(caller), client_id: NATIVE.client_id, user_agent: AGENT },
    })
    expect(found.filter((e) => e.type === 'session.revoked')).toMatchObject([
      { subject: user.sub, data: { sid: sidOf(other), reason: 'password_changed' } },
    ])
    expect(found).toHaveLength(2)
  })

  it('users set-password: password.changed, and one session.revoked (password_changed) per session', async () => {
    const user = await addCheapUser(h, 'ev')
    const first = await session(user)
    const second = await session(user)
    h.clock.advance(1)
    const stores = { users: h.users, sessions: h.sessions }
    const found = await written(() =>
      setPassword(
        stores,
        h.clock,
        { username: user.username, password: NEW_PASSWORD },
        h.service.passwordPolicy,
      ),
    )
    expect(found.filter((e) => e.type === 'password.changed')).toMatchObject([
      { subject: user.sub },
    ])
    const revoked = found.filter((e) => e.type === 'session.revoked')
    expect(revoked.map((e) => e.data.sid).sort()).toEqual([sidOf(first), sidOf(second)].sort())
    for (const e of revoked) expect(e.data.reason).toBe('password_changed')
    expect(found).toHaveLength(3)
  })

  it('disable and enable (npm run users): user.disabled and a session.revoked (user_disabled) per session; user.enabled; enabling an active user writes nothing', async () => {
    const user = await addCheapUser(h, 'ev')
    const tokens = await session(user)
    const stores = { users: h.users, sessions: h.sessions }
    const disabled = await written(() => disableUser(stores, h.clock, user.username))
    expect(disabled.map((e) => e.type).sort()).toEqual(['session.revoked', 'user.disabled'])
    expect(disabled.find((e) => e.type === 'session.revoked')).toMatchObject({
      subject: user.sub,
      data: { sid: sidOf(tokens), reason: 'user_disabled' },
    })
    expect(disabled.find((e) => e.type === 'user.disabled')?.subject).toBe(user.sub)
    const enabled = await written(() => enableUser(h.users, h.clock, user.username))
    expect(enabled).toMatchObject([{ type: 'user.enabled', subject: user.sub }])
    expect(await written(() => enableUser(h.users, h.clock, user.username))).toEqual([])
  })

  it('a refresh, a grace replay, a read: no event (nothing security-relevant changed)', async () => {
    const user = await addCheapUser(h, 'ev')
    const tokens = await session(user)
    const found = await written(async () => {
      const rotated = await refresh(tokens.body.refresh_token)
      expect(rotated.status).toBe(200)
      expect((await refresh(tokens.body.refresh_token)).status).toBe(200)
      expect((await h.get('/sessions', bearer(rotated.body.access_token))).status).toBe(200)
    })
    expect(found).toEqual([])
  })

  it('no event holds a token, a password, a hash, or the username of a failed login', async () => {
    const all = JSON.stringify(await events())
    expect(all.length).toBeGreaterThan(1000)
    expect(leakedSecrets(all)).toEqual([])
    for (const username of failedUsernames) expect(all).not.toContain(username)
    expect(all).not.toContain(PASSWORD)
    expect(all).not.toMatch(/rt1_|\$scrypt\$/)
  })
})

describe('from the table stream to EventBridge', () => {
  const eventbridge = mockClient(EventBridgeClient)
  let handler: (event: DynamoDBStreamEvent) => Promise<BatchResponse>

  beforeAll(async () => {
    vi.stubEnv('EVENT_BUS_NAME', 'security-bus')
    vi.stubEnv('ISSUER', h.issuer)
    ;({ handler } = await import('../../functions/forwarder/handler.js'))
  })
  afterAll(() => {
    eventbridge.restore()
    vi.unstubAllEnvs()
  })

  it('delivers every outbox event of the table, with its outbox id, though EventBridge fails on the way (Lambda resends from the first unsent record)', async () => {
    const outbox = await events()
    expect(outbox.length).toBeGreaterThan(15)
    const records = await streamRecords(h.tableName)
    // The stream holds every write; the mapping's filter would pass only inserted outbox
    // items, and the forwarder skips the rest itself: give it all of them.
    expect(records.length).toBeGreaterThan(outbox.length)

    const delivered: PutEventsCommandInput['Entries'] = []
    let call = 0
    eventbridge.on(PutEventsCommand).callsFake((input: PutEventsCommandInput) => {
      call += 1
      // Faults between the commit and the bus: a failed call, then an entry refused.
      if (call === 1) throw Object.assign(new Error('unavailable'), { name: 'InternalException' })
      const refuse = call === 2 ? 2 : -1
      const entries = input.Entries ?? []
      delivered.push(...entries.filter((_, i) => i !== refuse))
      return {
        FailedEntryCount: refuse >= 0 && entries.length > refuse ? 1 : 0,
        Entries: entries.map((_, i) =>
          i === refuse ? { ErrorCode: 'InternalFailure' } : { EventId: `eb-${call}-${i}` },
        ),
      }
    })

    // Lambda's event source mapping: batches of 100; a partial failure resends from the
    // record it names (the rest of that batch included).
    let position = 0
    let invocations = 0
    while (position < records.length) {
      const batch: DynamoDBRecord[] = records.slice(position, position + 100)
      invocations += 1
      const { batchItemFailures } = await handler({ Records: batch })
      const failed = batchItemFailures[0]?.itemIdentifier
      position += failed
        ? batch.findIndex((r) => r.dynamodb?.SequenceNumber === failed)
        : batch.length
      expect(invocations).toBeLessThan(50)
    }
    expect(call).toBeGreaterThan(2)

    // Every outbox event reached the bus, as its own CloudEvent, under its outbox id; a
    // resend repeats an id (consumers deduplicate), never invents one.
    const details = (delivered ?? []).map((entry) => JSON.parse(entry.Detail as string))
    expect([...new Set(details.map((d) => d.id))].sort()).toEqual(outbox.map((e) => e.id).sort())
    for (const event of outbox) {
      const sent = details.filter((d) => d.id === event.id)
      for (const detail of sent) expect(detail).toEqual(toCloudEvent(event, h.issuer))
    }
    for (const entry of delivered ?? []) {
      expect(entry).toMatchObject({ EventBusName: 'security-bus', Source: 'token-service' })
      expect(entry.DetailType).toBe(JSON.parse(entry.Detail as string).type)
    }
  })
})

describe('an event written alone (a refusal) under DynamoDB faults', () => {
  const faults = new DynamoFaults()
  let f: Harness
  beforeAll(async () => {
    f = await startHarness({
      env: { LOGIN_FREE_FAILURES: '0' },
      dynamodb: (client) => faults.install(client),
    })
  })
  afterAll(async () => {
    await f.close()
    await faults.close()
  })

  const outbox = () => items(f.dynamodb, f.tableName).events()
  const throttledUser = async () => {
    const user = await addCheapUser(f, 'thr')
    expect((await f.login(user, NATIVE.client_id, WRONG)).status).toBe(400)
    return user
  }

  it('a 429 exists only with its login.throttled: a failed put answers 503 and writes no event', async () => {
    const user = await throttledUser()
    const before = await outbox()
    faults.arm({ command: 'PutItem', fault: 'InternalServerError' })
    const reply = await f.login(user, NATIVE.client_id, WRONG)
    faults.clear()
    expect(reply.status).toBe(503)
    expect(newEvents(before, await outbox())).toEqual([])
  })

  it('a theft signal whose event cannot be written answers 503 and writes none; the refusal after it writes its one event', async () => {
    const user = await addCheapUser(f, 'sig')
    const key = proofKey()
    const proofFor = (k: ProofKey, path: string) =>
      signProof(k, proofClaims(f.clock.now(), `${f.issuer}${path}`))
    const login = await f.post(
      '/login',
      { username: user.username, password: PASSWORD, client_id: NATIVE.client_id },
      { headers: { dpop: proofFor(key, '/login') } },
    )
    expect(login.status).toBe(200)
    const token = login.body.refresh_token as string
    recordSecret(token)
    const thief = () =>
      f.post(
        '/token',
        { grant_type: 'refresh_token', refresh_token: token, client_id: NATIVE.client_id },
        { headers: { dpop: proofFor(proofKey(), '/token') } },
      )
    const before = await outbox()
    // The first PutItem is the thief's proof record; the second, the event.
    faults.arm({ command: 'PutItem', fault: 'InternalServerError', call: 2 })
    const failed = await thief()
    faults.clear()
    expect(failed.status).toBe(503)
    expect(newEvents(before, await outbox())).toEqual([])
    const refused = await thief()
    expect(refused.status).toBe(400)
    expect(newEvents(before, await outbox()).map((e) => e.type)).toEqual(['dpop.key_mismatch'])
  })

  it('a put whose answer is lost on every attempt answers 503, and leaves exactly one login.throttled', async () => {
    const user = await throttledUser()
    const before = await outbox()
    faults.arm({ command: 'PutItem', fault: 'InternalServerError', when: 'after' })
    const reply = await f.login(user, NATIVE.client_id, WRONG)
    faults.clear()
    expect(reply.status).toBe(503)
    // The SDK sent the same item again: one event, not two.
    expect(newEvents(before, await outbox()).map((e) => e.type)).toEqual(['login.throttled'])
  })
})

describe('DPoP refusals that signal theft: one event per session (or user) an hour, each counted', () => {
  const proofFor = (key: ProofKey, path: string) =>
    signProof(key, proofClaims(h.clock.now(), `${h.issuer}${path}`))
  const withProof = (path: string, params: Record<string, string>, dpop: string) =>
    h.post(path, params, { headers: { 'user-agent': AGENT, dpop } })
  const refreshWith = (token: string, dpop: string) => {
    recordSecret(token)
    return withProof(
      '/token',
      { grant_type: 'refresh_token', refresh_token: token, client_id: NATIVE.client_id },
      dpop,
    )
  }
  /** How many times the functions counted `metric` since `from` (a capture offset). */
  const counted = (metric: string, from: number) =>
    capture()
      .output.slice(from)
      .join('')
      .split('\n')
      .filter((line) => line.includes(`"${metric}"`))
      .map((line) => JSON.parse(line)[metric] as number)
      .reduce((sum, count) => sum + count, 0)

  async function boundSession(key: ProofKey) {
    const user = await addCheapUser(h, 'dpop-ev')
    const login = await withProof(
      '/login',
      { username: user.username, password: PASSWORD, client_id: NATIVE.client_id },
      proofFor(key, '/login'),
    )
    expect(login.status).toBe(200)
    return { user, login, sid: sidOf(login) }
  }

  it('a proof of another key for a bound refresh token: dpop.key_mismatch with the session and client, once an hour per session; DpopKeyMismatches counts each', async () => {
    const key = proofKey()
    const { user, login, sid } = await boundSession(key)
    const token = login.body.refresh_token as string
    const logged = capture().output.length
    const first = await written(async () => {
      const reply = await refreshWith(token, proofFor(proofKey(), '/token'))
      expect(reply.status).toBe(400)
      expect(reply.body.error).toBe('invalid_grant')
    })
    expect(first).toMatchObject([
      {
        type: 'dpop.key_mismatch',
        subject: user.sub,
        data: { sid, client_id: NATIVE.client_id, user_agent: AGENT },
      },
    ])
    // A flood with fresh keys writes nothing more within the hour, and is still counted.
    const flood = await written(() =>
      Promise.all(
        Array.from({ length: 20 }, () => refreshWith(token, proofFor(proofKey(), '/token'))),
      ),
    )
    expect(flood).toEqual([])
    expect(counted('DpopKeyMismatches', logged)).toBe(21)
    // The next hour, the next event.
    h.clock.advance(3600)
    const later = await written(() => refreshWith(token, proofFor(proofKey(), '/token')))
    expect(later.map((event) => event.type)).toEqual(['dpop.key_mismatch'])
    // Nothing was consumed: the holder of the key refreshes.
    expect((await refreshWith(token, proofFor(key, '/token'))).status).toBe(200)
  })

  it('a replayed proof at /token: dpop.proof_replayed with the session and client, once an hour per session; DpopReplays counts each', async () => {
    const key = proofKey()
    const { user, login, sid } = await boundSession(key)
    const once = proofFor(key, '/token')
    const rotated = await refreshWith(login.body.refresh_token, once)
    expect(rotated.status).toBe(200)
    const token = rotated.body.refresh_token as string
    const logged = capture().output.length
    const first = await written(async () => {
      const reply = await refreshWith(token, once)
      expect(reply.status).toBe(400)
      expect(reply.body.error_description).toBe('invalid DPoP proof: proof already used')
    })
    expect(first).toMatchObject([
      {
        type: 'dpop.proof_replayed',
        subject: user.sub,
        data: { sid, client_id: NATIVE.client_id, user_agent: AGENT },
      },
    ])
    const flood = await written(() =>
      Promise.all(Array.from({ length: 10 }, () => refreshWith(token, once))),
    )
    expect(flood).toEqual([])
    expect(counted('DpopReplays', logged)).toBe(11)
    expect((await refreshWith(token, proofFor(key, '/token'))).status).toBe(200)
  })

  it('a replayed proof at /login: dpop.proof_replayed with the user and client for a known username; for an unknown one, counted but no event', async () => {
    const key = proofKey()
    const { user } = await boundSession(key)
    const once = proofFor(key, '/login')
    const params = (username: string) => ({
      username,
      password: WRONG,
      client_id: NATIVE.client_id,
    })
    recordSecret(WRONG)
    expect((await withProof('/login', params(user.username), once)).status).toBe(400)
    const replayed = await written(async () => {
      const reply = await withProof('/login', params(user.username), once)
      expect(reply.body.error_description).toBe('invalid DPoP proof: proof already used')
    })
    expect(replayed).toMatchObject([
      {
        type: 'dpop.proof_replayed',
        subject: user.sub,
        data: { client_id: NATIVE.client_id, user_agent: AGENT },
      },
    ])
    expect(replayed[0]?.data).not.toHaveProperty('sid')
    const nobody = `nobody-${Date.now()}`
    failedUsernames.push(nobody)
    const other = proofFor(key, '/login')
    expect((await withProof('/login', params(nobody), other)).status).toBe(400)
    const logged = capture().output.length
    const unknown = await written(() => withProof('/login', params(nobody), other))
    expect(unknown).toEqual([])
    expect(counted('DpopReplays', logged)).toBe(1)
  })
})
