/**
 * docs/design.md rule 7 ("nothing is lost on a fault"), call by call: every AWS
 * call of login, refresh, revoke, the sessions API and the password change
 * fails in every way listed in issue 6, and each case checks the answer, the
 * table afterwards, the security events the request wrote (exactly one per
 * committed change, none without one: docs/design.md "Security events"), and
 * whether the presented refresh token (or the password) still works. The table
 * of outcomes is printed at the end of a failing file.
 *
 * The paths are split over the test/integration/faults-matrix-*.test.ts files
 * (`FAULT_MATRIX_PARTS`), so that they run in parallel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { User } from '../../functions/core/ports.js'
import { hashToken, parseRefreshToken } from '../../functions/core/refresh-token.js'
import type { SecurityEvent } from '../../functions/core/security-events.js'
import { synth } from '../infra/synth.js'
import { ACCOUNT, dynamodbChecks, isAllowed, REGION, type Statement } from '../stack/cloud.js'
import { FakeKms } from './fake-kms.js'
import {
  blackHole,
  type DynamoCommand,
  type DynamoFault,
  DynamoFaults,
  type FaultPlan,
  KMS_FAULTS,
  type KmsFault,
  kmsFault,
  mentions,
  signThroughRealSdk,
  TRANSIENT_FAULTS,
} from './faults.js'
import {
  addCheapUser,
  bearer,
  type Harness,
  NATIVE,
  NO_GRACE,
  PASSWORD,
  type Reply,
  startHarness,
} from './harness.js'
import { items, newEvents } from './items.js'
import { recordSecret } from './secrets.js'

const NEW_PASSWORD = 'the password after the change'
recordSecret(NEW_PASSWORD)

// ---------------------------------------------------------------------------
// What a case expects
// ---------------------------------------------------------------------------

type Answer = '200' | '204' | '400 invalid_grant' | '401 invalid_token' | '503 + Retry-After'
type State =
  | 'unchanged'
  | 'unchanged, its retired token recorded'
  | 'rotated once'
  | 'revoked'
  | 'no session'
  | 'session created'
  | 'unsent session revoked'
  | 'all void (sessionsValidAfter set)'
  | 'all revoked'
  | 'password changed, the others revoked'
  | 'password changed, the others void'
type Token =
  | 'works'
  | 'retry gets the same child'
  | 'dead'
  | 'password works'
  | 'newest works, reuse still detected'
  | 'newest dead'
  | 'all work'
  | 'all dead, a retry gets 401'
  | 'all dead'
  | 'access refused once the fault ends'
  | 'access works once the fault ends'
  | 'old password and every session work'
  | 'new password works, the caller’s session lives, the others are dead'

interface Outcome {
  readonly answer: Answer
  readonly state: State
  readonly token: Token
}

interface Row extends Outcome {
  readonly path: string
  readonly call: string
  readonly fault: string
  readonly attempts: string
  readonly when: string
}

const rows: Row[] = []

// ---------------------------------------------------------------------------
// Scenarios: one path each, with its AWS calls and its outcomes
// ---------------------------------------------------------------------------

interface Ctx {
  readonly user: User
  readonly client: string
  /** The refresh token presented (refresh, revoke), the retired one for grace and reuse. */
  readonly token?: string
  /** The session's newest token (grace, reuse). */
  readonly newest?: string
  /** The caller's access token (bearer routes). */
  readonly access?: string
  /** The refresh tokens of the user's other sessions (logout everywhere). */
  readonly others?: readonly string[]
}

interface Scenario {
  readonly path: string
  readonly client: string
  /** Every AWS call the path makes on success (checked). */
  readonly calls: readonly string[]
  /** The calls this scenario's cases fault; the others are faulted by another scenario. @default calls */
  readonly faulted?: readonly string[]
  prepare(user: User): Promise<Ctx>
  act(ctx: Ctx): Promise<Reply>
  /** Plans that steer the request to the faulted call (a collision before the re-read). */
  readonly route?: readonly FaultPlan[]
  /** The outcome when the call succeeds in the end (a fault the SDK absorbed). */
  readonly ok: Outcome
  /** The outcome when the call fails before anything was written. */
  readonly failed: Outcome
  /** The outcome when a write committed and its answer was lost on every attempt. */
  readonly committed?: Outcome
}

let h: Harness
const kms = new FakeKms()
const faults = new DynamoFaults()

const cheapUser = () => addCheapUser(h, 'faults')

async function login(user: User, client = NATIVE.client_id): Promise<string> {
  return (await loginReply(user, client)).body.refresh_token
}

async function loginReply(user: User, client = NATIVE.client_id): Promise<Reply> {
  const reply = await h.login(user, client)
  expect(reply.status).toBe(200)
  return reply
}

/** A session rotated once: the retired token, and the newest. */
async function rotatedOnce(user: User): Promise<Ctx> {
  const token = await login(user)
  const next = await h.refresh(token)
  expect(next.status).toBe(200)
  return { user, client: NATIVE.client_id, token, newest: next.body.refresh_token }
}

/** A signed-in caller of the bearer routes: its session's refresh token and its access token. */
async function caller(user: User): Promise<Ctx> {
  const reply = await loginReply(user)
  return {
    user,
    client: NATIVE.client_id,
    token: reply.body.refresh_token,
    access: reply.body.access_token,
  }
}

const sidOf = (token: string | undefined) => parseRefreshToken(token ?? '')?.sid as string

const scenarios = {
  login: {
    path: 'login',
    client: NATIVE.client_id,
    // The attempt's turn and, after the right password, the clear are UpdateItems; the
    // session's pointer, after the session's transaction, a PutItem.
    calls: [
      'DynamoDB Query',
      'DynamoDB UpdateItem',
      'KMS Sign',
      'DynamoDB TransactWriteItems',
      'DynamoDB PutItem',
    ],
    prepare: async (user) => ({ user, client: NATIVE.client_id }),
    act: (ctx) => h.login(ctx.user),
    ok: { answer: '200', state: 'session created', token: 'password works' },
    failed: { answer: '503 + Retry-After', state: 'no session', token: 'password works' },
    // The session was written but its token never sent: login revokes it, best-effort.
    committed: {
      answer: '503 + Retry-After',
      state: 'unsent session revoked',
      token: 'password works',
    },
  },
  refresh: {
    path: 'refresh',
    client: NATIVE.client_id,
    // The retired token's record (PutItem), then the session (UpdateItem): no transaction.
    calls: ['DynamoDB BatchGetItem', 'KMS Sign', 'DynamoDB PutItem', 'DynamoDB UpdateItem'],
    prepare: async (user) => ({ user, client: NATIVE.client_id, token: await login(user) }),
    act: (ctx) => h.refresh(ctx.token as string),
    ok: { answer: '200', state: 'rotated once', token: 'retry gets the same child' },
    failed: { answer: '503 + Retry-After', state: 'unchanged', token: 'works' },
    committed: {
      answer: '503 + Retry-After',
      state: 'rotated once',
      token: 'retry gets the same child',
    },
  },
  collision: {
    path: 'refresh, re-read after a collision',
    client: NATIVE.client_id,
    calls: [
      'DynamoDB BatchGetItem',
      'KMS Sign',
      'DynamoDB PutItem',
      'DynamoDB UpdateItem',
      'DynamoDB GetItem',
    ],
    faulted: ['DynamoDB GetItem'],
    prepare: async (user) => ({ user, client: NATIVE.client_id, token: await login(user) }),
    act: (ctx) => h.refresh(ctx.token as string),
    // A lost condition that brings no session back (DynamoDB returns it with the failure):
    // refresh reads it again.
    route: [{ command: 'UpdateItem', fault: 'ConditionalCheckFailed', attempts: 'first' }],
    ok: { answer: '200', state: 'rotated once', token: 'retry gets the same child' },
    // The retired token's record went ahead of the lost rotation.
    failed: {
      answer: '503 + Retry-After',
      state: 'unchanged, its retired token recorded',
      token: 'works',
    },
  },
  grace: {
    path: 'refresh, grace replay',
    client: NATIVE.client_id,
    calls: ['DynamoDB BatchGetItem', 'KMS Sign'],
    prepare: rotatedOnce,
    act: (ctx) => h.refresh(ctx.token as string),
    ok: { answer: '200', state: 'unchanged', token: 'retry gets the same child' },
    failed: { answer: '503 + Retry-After', state: 'unchanged', token: 'retry gets the same child' },
  },
  reuse: {
    path: 'refresh, reuse detected',
    client: NATIVE.client_id,
    calls: ['DynamoDB BatchGetItem', 'DynamoDB TransactWriteItems'],
    prepare: async (user) => {
      const ctx = await rotatedOnce(user)
      h.clock.advance((NATIVE.reuse_grace_seconds as number) + 1)
      return ctx
    },
    act: (ctx) => h.refresh(ctx.token as string),
    ok: { answer: '400 invalid_grant', state: 'revoked', token: 'newest dead' },
    failed: {
      answer: '503 + Retry-After',
      state: 'unchanged',
      token: 'newest works, reuse still detected',
    },
    committed: { answer: '503 + Retry-After', state: 'revoked', token: 'newest dead' },
  },
  reuseOlder: {
    path: 'refresh, reuse of a token two rotations old',
    client: NATIVE.client_id,
    // Neither the session's current nor its previous token: its record tells reuse from garbage.
    calls: ['DynamoDB BatchGetItem', 'DynamoDB GetItem', 'DynamoDB TransactWriteItems'],
    faulted: ['DynamoDB GetItem'],
    prepare: async (user) => {
      const ctx = await rotatedOnce(user)
      const newest = await h.refresh(ctx.newest as string)
      expect(newest.status).toBe(200)
      h.clock.advance((NATIVE.reuse_grace_seconds as number) + 1)
      return { ...ctx, newest: newest.body.refresh_token }
    },
    act: (ctx) => h.refresh(ctx.token as string),
    ok: { answer: '400 invalid_grant', state: 'revoked', token: 'newest dead' },
    failed: {
      answer: '503 + Retry-After',
      state: 'unchanged',
      token: 'newest works, reuse still detected',
    },
  },
  revoke: {
    path: 'revoke',
    client: NATIVE.client_id,
    calls: ['DynamoDB BatchGetItem', 'DynamoDB TransactWriteItems'],
    prepare: async (user) => ({ user, client: NATIVE.client_id, token: await login(user) }),
    act: (ctx) => h.post('/revoke', { token: ctx.token as string, client_id: NATIVE.client_id }),
    ok: { answer: '200', state: 'revoked', token: 'dead' },
    failed: { answer: '503 + Retry-After', state: 'unchanged', token: 'works' },
    committed: { answer: '503 + Retry-After', state: 'revoked', token: 'dead' },
  },
  refreshNoGrace: {
    path: 'refresh, client with grace 0',
    client: NO_GRACE.client_id,
    calls: ['DynamoDB BatchGetItem', 'KMS Sign', 'DynamoDB PutItem', 'DynamoDB UpdateItem'],
    faulted: ['KMS Sign', 'DynamoDB UpdateItem'],
    prepare: async (user) => ({
      user,
      client: NO_GRACE.client_id,
      token: await login(user, NO_GRACE.client_id),
    }),
    act: (ctx) => h.refresh(ctx.token as string, NO_GRACE.client_id),
    ok: { answer: '200', state: 'rotated once', token: 'dead' },
    failed: { answer: '503 + Retry-After', state: 'unchanged', token: 'works' },
    committed: { answer: '503 + Retry-After', state: 'rotated once', token: 'dead' },
  },
  sessionsList: {
    path: 'GET /sessions',
    client: NATIVE.client_id,
    // The sessions, and the user (its sessionsValidAfter) with the caller's session.
    calls: ['DynamoDB Query', 'DynamoDB BatchGetItem'],
    prepare: caller,
    act: (ctx) => h.get('/sessions', bearer(ctx.access)),
    ok: { answer: '200', state: 'unchanged', token: 'works' },
    failed: { answer: '503 + Retry-After', state: 'unchanged', token: 'works' },
  },
  sessionEnd: {
    path: 'DELETE /sessions/{sid}',
    client: NATIVE.client_id,
    // The session, alongside the caller's session and user (it must be live).
    calls: ['DynamoDB GetItem', 'DynamoDB BatchGetItem', 'DynamoDB TransactWriteItems'],
    // The caller ends another of its sessions.
    prepare: async (user) => ({ ...(await caller(user)), token: await login(user) }),
    act: (ctx) => h.del(`/sessions/${sidOf(ctx.token)}`, bearer(ctx.access)),
    ok: { answer: '204', state: 'revoked', token: 'dead' },
    failed: { answer: '503 + Retry-After', state: 'unchanged', token: 'works' },
    committed: { answer: '503 + Retry-After', state: 'revoked', token: 'dead' },
  },
  logoutEverywhere: {
    path: 'DELETE /sessions (logout everywhere)',
    client: NATIVE.client_id,
    // The caller's session and user (it must be live), the cut with its event, then the
    // sessions listed (the user's pointers, then their sessions) and each marked revoked
    // with its event.
    calls: ['DynamoDB BatchGetItem', 'DynamoDB TransactWriteItems', 'DynamoDB Query'],
    prepare: async (user) => {
      const ctx = await caller(user)
      const others = [await login(user)]
      // The logout comes a moment after the logins (a frozen clock would make them simultaneous).
      h.clock.advance(1)
      return { ...ctx, others }
    },
    act: (ctx) => h.del('/sessions', bearer(ctx.access)),
    ok: { answer: '204', state: 'all revoked', token: 'all dead' },
    failed: { answer: '503 + Retry-After', state: 'unchanged', token: 'all work' },
    // The cut committed, every answer lost: it ended the caller's session too, so a retry
    // is refused and writes nothing.
    committed: {
      answer: '503 + Retry-After',
      state: 'all void (sessionsValidAfter set)',
      token: 'all dead, a retry gets 401',
    },
  },
  passwordChange: {
    path: 'POST /me/password',
    client: NATIVE.client_id,
    // The caller's session and user; the username's login turn; the change with its event
    // (with the turn's clear); then the other sessions listed and each marked revoked with
    // its event.
    calls: [
      'DynamoDB BatchGetItem',
      'DynamoDB Query',
      'DynamoDB UpdateItem',
      'DynamoDB TransactWriteItems',
    ],
    // Each case changes the password: a fresh user per case.
    prepare: async () => {
      const ctx = await caller(await cheapUser())
      const others = [await login(ctx.user)]
      h.clock.advance(1)
      return { ...ctx, others }
    },
    act: (ctx) =>
      h.post(
        '/me/password',
        { current_password: PASSWORD, new_password: NEW_PASSWORD },
        { headers: bearer(ctx.access) },
      ),
    ok: {
      answer: '204',
      state: 'password changed, the others revoked',
      token: 'new password works, the caller’s session lives, the others are dead',
    },
    failed: {
      answer: '503 + Retry-After',
      state: 'unchanged',
      token: 'old password and every session work',
    },
    // The change committed; a retry of the request would meet the new password.
    committed: {
      answer: '503 + Retry-After',
      state: 'password changed, the others void',
      token: 'new password works, the caller’s session lives, the others are dead',
    },
  },
  strictRevoked: {
    path: 'GET /me, strict authorizer, revoked session',
    client: NATIVE.client_id,
    calls: ['DynamoDB BatchGetItem'],
    prepare: async (user) => {
      const ctx = await caller(user)
      const revoked = await h.post('/revoke', { token: ctx.token as string, client_id: ctx.client })
      expect(revoked.status).toBe(200)
      return ctx
    },
    act: (ctx) => h.get('/me', bearer(ctx.access)),
    ok: {
      answer: '401 invalid_token',
      state: 'revoked',
      token: 'access refused once the fault ends',
    },
    failed: {
      answer: '503 + Retry-After',
      state: 'revoked',
      token: 'access refused once the fault ends',
    },
  },
  strictLive: {
    path: 'GET /me, strict authorizer, live session',
    client: NATIVE.client_id,
    calls: ['DynamoDB BatchGetItem'],
    prepare: caller,
    act: (ctx) => h.get('/me', bearer(ctx.access)),
    ok: { answer: '200', state: 'unchanged', token: 'access works once the fault ends' },
    failed: {
      answer: '503 + Retry-After',
      state: 'unchanged',
      token: 'access works once the fault ends',
    },
  },
} satisfies Record<string, Scenario>

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

interface DynamoCase {
  readonly kind: 'dynamo'
  readonly scenario: Scenario
  readonly plan: FaultPlan & { attempts: 'first' | 'every'; when: 'before' | 'after' }
  readonly expect: Outcome
  /** Which of the path's calls of this command, when it makes several kinds. */
  readonly target?: string
}

/** Tells apart the calls of one command: the user's item, or a session's. */
interface Target {
  readonly label: string
  readonly match: (input: unknown) => boolean
}

const ON_USER: Target = { label: 'user item', match: mentions('USER#') }
/** Login's turn: the attempt counted up front (core/throttle.ts freeTurn). */
const ON_TURN: Target = { label: 'login turn', match: mentions('ADD failures :one') }
/** Login's clear of the count after the right password. */
const ON_CLEAR: Target = { label: 'count clear', match: mentions(':zero') }
const ON_SESSIONS: Target = { label: 'session items', match: mentions('SESSION#') }
/** The sessions a user's pointers name, read for the list (no user item with them). */
const ON_LISTED: Target = {
  label: 'listed sessions',
  match: (input) => mentions('SESSION#')(input) && !mentions('USER#')(input),
}

interface KmsCase {
  readonly kind: 'kms'
  readonly scenario: Scenario
  readonly operation: 'Sign' | 'GetPublicKey'
  readonly fault: KmsFault | 'slower than AWS_CALL_TIMEOUT_MS'
  readonly expect: Outcome
}

type Case = DynamoCase | KmsCase

const dynamo = (
  scenario: Scenario,
  command: DynamoCommand,
  fault: DynamoFault,
  attempts: 'first' | 'every',
  when: 'before' | 'after',
  outcome: Outcome,
  on?: Target,
): DynamoCase => ({
  kind: 'dynamo',
  scenario,
  plan: { command, fault, attempts, when, ...(on ? { match: on.match } : {}) },
  expect: outcome,
  ...(on ? { target: on.label } : {}),
})

/**
 * Every transient fault on every attempt (the call fails); two of them on the
 * first attempt only (the SDK's retry absorbs them); for a write, also after
 * it committed, once (the SDK's retry meets its own commit) and on every attempt.
 */
function transientCases(
  scenario: Scenario,
  command: DynamoCommand,
  write: boolean,
  options: { on?: Target; failed?: Outcome; committed?: Outcome } = {},
): DynamoCase[] {
  const { on, failed = scenario.failed, committed = scenario.committed ?? failed } = options
  const cases = [
    ...TRANSIENT_FAULTS.map((f) => dynamo(scenario, command, f, 'every', 'before', failed, on)),
    ...(['ProvisionedThroughputExceeded', 'ConnectionDropped'] as const).map((f) =>
      dynamo(scenario, command, f, 'first', 'before', scenario.ok, on),
    ),
  ]
  if (write) {
    for (const f of ['InternalServerError', 'ConnectionDropped'] as const) {
      cases.push(dynamo(scenario, command, f, 'first', 'after', scenario.ok, on))
      cases.push(dynamo(scenario, command, f, 'every', 'after', committed, on))
    }
  }
  return cases
}

const kmsCases = (scenario: Scenario, outcome: Outcome): KmsCase[] =>
  KMS_FAULTS.map((fault) => ({ kind: 'kms', scenario, operation: 'Sign', fault, expect: outcome }))

const { login: L, refresh: R, collision: C, grace: G, reuse: U, revoke: V } = scenarios
const O = scenarios.reuseOlder
/** The retired token's record was written, the rotation was not: the token still works. */
const recordedOnly: Outcome = {
  answer: '503 + Retry-After',
  state: 'unchanged, its retired token recorded',
  token: 'works',
}
/** A write with its events is a transaction: a collision cancels it (retried as one). */
const CONFLICT = 'TransactionCanceled:TransactionConflict'
const { sessionsList: S, sessionEnd: E, logoutEverywhere: A } = scenarios
const N = scenarios.refreshNoGrace
const P = scenarios.passwordChange
/** The change committed; only the bookkeeping after it failed: still a 204. */
const changedOthersVoid: Outcome = { ...P.ok, state: 'password changed, the others void' }
/** Logout everywhere's cut committed; only the marking after it failed: still a 204. */
const loggedOutAllVoid: Outcome = { ...A.ok, state: 'all void (sessionsValidAfter set)' }
const noSession: Outcome = {
  answer: '503 + Retry-After',
  state: 'no session',
  token: 'password works',
}

const groups: { name: string; strict?: boolean; cases: Case[] }[] = [
  {
    name: 'login',
    cases: [
      ...transientCases(L, 'Query', false),
      // The turn runs alongside the read: counted or not, no session starts.
      ...transientCases(L, 'UpdateItem', true, { on: ON_TURN, committed: noSession }),
      // The clear is best-effort: the login succeeds; at worst this success stays counted.
      ...transientCases(L, 'UpdateItem', true, { on: ON_CLEAR, failed: L.ok, committed: L.ok }),
      ...transientCases(L, 'TransactWriteItems', true),
      // The pointer follows the committed session: if it cannot be written, the unlisted
      // session is revoked and the login answers 503.
      ...transientCases(L, 'PutItem', true, { failed: L.committed }),
      dynamo(
        L,
        'TransactWriteItems',
        'TransactionCanceled:ConditionalCheckFailed',
        'first',
        'before',
        {
          // Only a disable or a password change between the read and the write cancels it so.
          answer: '400 invalid_grant',
          state: 'no session',
          token: 'password works',
        },
      ),
      dynamo(
        L,
        'TransactWriteItems',
        'TransactionCanceled:TransactionConflict',
        'first',
        'before',
        noSession,
      ),
      dynamo(
        L,
        'TransactWriteItems',
        'TransactionCanceled:ThrottlingError',
        'first',
        'before',
        noSession,
      ),
      // The session write runs in parallel with the signature and commits.
      ...kmsCases(L, L.committed),
    ],
  },
  {
    name: 'refresh',
    cases: [
      ...transientCases(R, 'BatchGetItem', false),
      // The retired token's record comes first: a fault there changes nothing else.
      ...transientCases(R, 'PutItem', true, { committed: recordedOnly }),
      // Then the one conditional write of the session. A retry that meets its own commit
      // finds it applied (its condition's second branch).
      ...transientCases(R, 'UpdateItem', true, { failed: recordedOnly }),
      // A collision with a transaction in progress (a revoke) is tried again; a lost
      // condition makes refresh look again: absorbed once, a 503 when it keeps happening.
      dynamo(R, 'UpdateItem', 'TransactionConflict', 'first', 'before', R.ok),
      dynamo(R, 'UpdateItem', 'TransactionConflict', 'every', 'before', recordedOnly),
      dynamo(R, 'UpdateItem', 'ConditionalCheckFailed', 'first', 'before', R.ok),
      dynamo(R, 'UpdateItem', 'ConditionalCheckFailed', 'every', 'before', recordedOnly),
      // Signed before the rotation is written (alongside the record): a KMS fault or throttle
      // commits nothing, and a retry, however late, rotates.
      ...kmsCases(R, recordedOnly),
      ...transientCases(C, 'GetItem', false),
      ...transientCases(G, 'BatchGetItem', false),
      ...kmsCases(G, G.failed),
      ...transientCases(U, 'BatchGetItem', false),
      // A token older than the previous one: its record is read before anything is decided.
      ...transientCases(O, 'GetItem', false),
      // The revocation and its two events are one transaction.
      ...transientCases(U, 'TransactWriteItems', true),
      dynamo(U, 'TransactWriteItems', CONFLICT, 'first', 'before', U.ok),
      dynamo(U, 'TransactWriteItems', CONFLICT, 'every', 'before', U.failed),
      // Every client is signed before its rotation commits, a grace of 0 included: a KMS
      // fault leaves the token usable.
      ...kmsCases(N, recordedOnly),
      dynamo(N, 'UpdateItem', 'InternalServerError', 'every', 'after', N.committed),
    ],
  },
  {
    name: 'revoke',
    cases: [
      ...transientCases(V, 'BatchGetItem', false),
      ...transientCases(V, 'TransactWriteItems', true),
      dynamo(V, 'TransactWriteItems', CONFLICT, 'first', 'before', V.ok),
      dynamo(V, 'TransactWriteItems', CONFLICT, 'every', 'before', V.failed),
    ],
  },
  {
    name: 'sessions API',
    cases: [
      ...transientCases(S, 'Query', false),
      ...transientCases(S, 'BatchGetItem', false),
      ...transientCases(E, 'GetItem', false),
      ...transientCases(E, 'BatchGetItem', false),
      ...transientCases(E, 'TransactWriteItems', true),
      dynamo(E, 'TransactWriteItems', CONFLICT, 'first', 'before', E.ok),
      // Logout everywhere takes effect with its first write (sessionsValidAfter, which
      // refresh and the strict authorizer check); marking each session revoked follows.
      ...transientCases(A, 'TransactWriteItems', true, { on: ON_USER }),
      dynamo(A, 'TransactWriteItems', CONFLICT, 'first', 'before', A.ok, ON_USER),
      dynamo(A, 'TransactWriteItems', CONFLICT, 'every', 'before', A.failed, ON_USER),
      ...transientCases(A, 'BatchGetItem', false),
      // Marking each session revoked is bookkeeping: the cut already voided them.
      ...transientCases(A, 'Query', false, { failed: loggedOutAllVoid }),
      ...transientCases(A, 'BatchGetItem', false, { on: ON_LISTED, failed: loggedOutAllVoid }),
      ...transientCases(A, 'TransactWriteItems', true, {
        on: ON_SESSIONS,
        failed: loggedOutAllVoid,
        committed: A.ok,
      }),
    ],
  },
  {
    name: 'password change',
    cases: [
      ...transientCases(P, 'BatchGetItem', false),
      // The turn before the password check: counted or not, the password stays as it was.
      ...transientCases(P, 'UpdateItem', true, { on: ON_TURN, committed: P.failed }),
      // The clear after the check is best-effort: the change stands.
      ...transientCases(P, 'UpdateItem', true, { on: ON_CLEAR, failed: P.ok, committed: P.ok }),
      // The change is one conditional write of the user, in one transaction with its
      // password.changed: it takes effect, or nothing does. A retry that meets its own
      // committed write finds its own new hash and answers 204.
      ...transientCases(P, 'TransactWriteItems', true, { on: ON_USER }),
      dynamo(P, 'TransactWriteItems', CONFLICT, 'first', 'before', P.ok, ON_USER),
      dynamo(P, 'TransactWriteItems', CONFLICT, 'every', 'before', P.failed, ON_USER),
      // Marking the other sessions revoked is bookkeeping: the change already voided them.
      ...transientCases(P, 'Query', false, { on: ON_SESSIONS, failed: changedOthersVoid }),
      ...transientCases(P, 'BatchGetItem', false, { on: ON_LISTED, failed: changedOthersVoid }),
      ...transientCases(P, 'TransactWriteItems', true, {
        on: ON_SESSIONS,
        failed: changedOthersVoid,
        committed: P.ok,
      }),
    ],
  },
  {
    name: 'strict authorizer',
    strict: true,
    cases: [
      ...transientCases(scenarios.strictRevoked, 'BatchGetItem', false),
      ...transientCases(scenarios.strictLive, 'BatchGetItem', false),
    ],
  },
]

// ---------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------

interface Snapshot {
  readonly session?: Record<string, unknown>
  readonly tokenRecords: number
  readonly sessionsOfUser: number
  /** The status of every session of the user. */
  readonly statuses: readonly string[]
  /** Every session of the user, by sid: its status and why it was revoked. */
  readonly sessions: ReadonlyMap<string, { status: string; reason?: string }>
  readonly validAfter: number | undefined
  /** Every security event in the table. */
  readonly events: readonly SecurityEvent[]
  readonly passwordHash: string | undefined
}

async function snapshot(ctx: Ctx): Promise<Snapshot> {
  const table = items(h.dynamodb, h.tableName)
  const sid = ctx.token ? parseRefreshToken(ctx.token)?.sid : undefined
  const { session, tokens } = sid ? await table.session(sid) : { session: undefined, tokens: 0 }
  const sessions = await table.sessionsOf(ctx.user.sub)
  const user = await table.user(ctx.user.sub)
  return {
    session,
    tokenRecords: tokens,
    sessionsOfUser: sessions.length,
    statuses: sessions.map((item) => item.status as string),
    sessions: new Map(
      sessions.map((item) => [item.sid, { status: item.status, reason: item.revoked_reason }]),
    ),
    validAfter: user?.sessions_valid_after as number | undefined,
    events: await table.events(),
    passwordHash: user?.password_hash as string | undefined,
  }
}

/**
 * The events the request wrote are exactly those of the changes it committed,
 * one each, whatever the fault: a session started (`login.succeeded`), a
 * session revoked (`session.revoked` with the stored reason, and
 * `token.reuse_detected` for a reuse), the user's sessions voided
 * (`sessions.ended_all`), the password changed (`password.changed`). A write whose answer was lost wrote its events once.
 */
async function checkEvents(ctx: Ctx, before: Snapshot): Promise<void> {
  const after = await snapshot(ctx)
  const expected: string[] = []
  for (const [sid, now] of after.sessions) {
    const was = before.sessions.get(sid)
    if (!was) expected.push(`login.succeeded ${sid}`)
    if (now.status === 'revoked' && was?.status !== 'revoked') {
      expected.push(`session.revoked ${sid} ${now.reason}`)
      if (now.reason === 'reuse') expected.push(`token.reuse_detected ${sid} enforced`)
    }
  }
  // A password change voids the others in its own write, which carries `password.changed`.
  if (after.passwordHash !== before.passwordHash) expected.push('password.changed')
  else if (after.validAfter !== before.validAfter) expected.push('sessions.ended_all')
  const written = newEvents(before.events, after.events)
  const described = written.map((event) =>
    [
      event.type,
      ...(event.type === 'sessions.ended_all' || event.type === 'password.changed'
        ? []
        : [event.data.sid]),
      ...(event.data.reason && event.type === 'session.revoked' ? [event.data.reason] : []),
      ...(event.data.enforced ? ['enforced'] : []),
    ].join(' '),
  )
  expect(described.sort()).toEqual(expected.sort())
  for (const event of written) expect(event.subject).toBe(ctx.user.sub)
}

function checkAnswer(reply: Reply, answer: Answer): void {
  expect(reply.status).not.toBe(500)
  expect(reply.text).not.toMatch(/injected|Exception|at .*\.ts/)
  if (answer === '200' || answer === '204') {
    expect(reply.status).toBe(Number(answer))
  } else if (answer === '401 invalid_token') {
    expect(reply.status).toBe(401)
    expect(reply.body.error).toBe('invalid_token')
  } else if (answer === '400 invalid_grant') {
    expect(reply.status).toBe(400)
    expect(reply.body.error).toBe('invalid_grant')
  } else {
    expect(reply.status).toBe(503)
    expect(reply.headers.get('retry-after')).toMatch(/^[1-9]\d*$/)
    expect(reply.body).toEqual({
      error: 'temporarily_unavailable',
      error_description: expect.any(String),
    })
  }
}

async function checkState(ctx: Ctx, before: Snapshot, reply: Reply, state: State): Promise<void> {
  const after = await snapshot(ctx)
  switch (state) {
    case 'unchanged':
      expect(after.session?.status).toBe(before.session?.status)
      expect(after.session?.generation).toBe(before.session?.generation)
      expect(after.session?.current_hash).toBe(before.session?.current_hash)
      expect(after.tokenRecords).toBe(before.tokenRecords)
      expect(after.statuses).toEqual(before.statuses)
      expect(after.validAfter).toBe(before.validAfter)
      expect(after.passwordHash).toBe(before.passwordHash)
      return
    case 'password changed, the others revoked': {
      expect(after.passwordHash).not.toBe(before.passwordHash)
      expect(after.validAfter).not.toBe(before.validAfter)
      const active = (await items(h.dynamodb, h.tableName).sessionsOf(ctx.user.sub))
        .filter((item) => item.status === 'active')
        .map((item) => item.sid)
      expect(active).toEqual([sidOf(ctx.token)])
      return
    }
    case 'password changed, the others void':
      expect(after.passwordHash).not.toBe(before.passwordHash)
      expect(after.validAfter).toBeDefined()
      expect(after.validAfter).not.toBe(before.validAfter)
      return
    case 'all void (sessionsValidAfter set)':
      expect(after.validAfter).toBeDefined()
      expect(after.validAfter).not.toBe(before.validAfter)
      return
    case 'all revoked':
      expect(after.validAfter).toBeDefined()
      expect(after.statuses).toEqual(before.statuses.map(() => 'revoked'))
      return
    case 'unchanged, its retired token recorded':
      expect(after.session?.status).toBe(before.session?.status)
      expect(after.session?.generation).toBe(before.session?.generation)
      expect(after.session?.current_hash).toBe(before.session?.current_hash)
      // The presented token's record: written ahead of a rotation that did not happen.
      expect(after.tokenRecords).toBe(before.tokenRecords + 1)
      expect(after.statuses).toEqual(before.statuses)
      return
    case 'rotated once':
      // Exactly one rotation: generation +1, exactly one new retired-token record, no fork.
      expect(after.session?.status).toBe('active')
      expect(after.session?.generation).toBe((before.session?.generation as number) + 1)
      expect(after.tokenRecords).toBe(before.tokenRecords + 1)
      if (reply.status === 200) {
        expect(after.session?.current_hash).toBe(hashToken(reply.body.refresh_token))
      }
      return
    case 'revoked':
      expect(after.session?.status).toBe('revoked')
      return
    case 'no session':
      expect(after.sessionsOfUser).toBe(before.sessionsOfUser)
      return
    case 'session created': {
      expect(after.sessionsOfUser).toBe(before.sessionsOfUser + 1)
      const sid = parseRefreshToken(reply.body.refresh_token)?.sid
      const created = await snapshot({ ...ctx, token: reply.body.refresh_token })
      expect(sid).toBeDefined()
      expect(created.session?.current_hash).toBe(hashToken(reply.body.refresh_token))
      // Its first token is authentic as the session's current one: no record yet.
      expect(created.tokenRecords).toBe(0)
      // Listed under its user.
      const listed = await items(h.dynamodb, h.tableName).listedSessionsOf(ctx.user.sub)
      expect(listed.map((item) => item.sid)).toContain(sid)
      return
    }
    case 'unsent session revoked': {
      expect(reply.body?.refresh_token).toBeUndefined()
      expect(after.sessionsOfUser).toBe(before.sessionsOfUser + 1)
      // No session the user never got a token for stays active (GET /sessions would list it).
      const active = (statuses: readonly string[]) => statuses.filter((s) => s === 'active')
      expect(active(after.statuses)).toEqual(active(before.statuses))
      return
    }
  }
}

async function checkToken(
  ctx: Ctx,
  reply: Reply,
  token: Token,
  again: (ctx: Ctx) => Promise<Reply>,
): Promise<void> {
  const presented = ctx.token as string
  switch (token) {
    case 'works': {
      const again = await h.refresh(presented, ctx.client)
      expect(again.status).toBe(200)
      expect((await h.refresh(again.body.refresh_token, ctx.client)).status).toBe(200)
      return
    }
    case 'retry gets the same child': {
      const first = await h.refresh(presented, ctx.client)
      const second = await h.refresh(presented, ctx.client)
      expect(first.status).toBe(200)
      expect(second.status).toBe(200)
      expect(second.body.refresh_token).toBe(first.body.refresh_token)
      if (reply.status === 200) expect(first.body.refresh_token).toBe(reply.body.refresh_token)
      if (ctx.newest) expect(first.body.refresh_token).toBe(ctx.newest)
      const { session } = await snapshot(ctx)
      expect(session?.current_hash).toBe(hashToken(first.body.refresh_token))
      expect((await h.refresh(first.body.refresh_token, ctx.client)).status).toBe(200)
      return
    }
    case 'dead': {
      const again = await h.refresh(presented, ctx.client)
      expect(again.status).toBe(400)
      expect(again.body.error).toBe('invalid_grant')
      return
    }
    case 'password works':
      expect((await h.login(ctx.user, ctx.client)).status).toBe(200)
      return
    case 'newest works, reuse still detected': {
      const newest = await h.refresh(ctx.newest as string, ctx.client)
      expect(newest.status).toBe(200)
      expect((await h.refresh(presented, ctx.client)).status).toBe(400)
      expect((await snapshot(ctx)).session?.status).toBe('revoked')
      return
    }
    case 'newest dead':
      expect((await h.refresh(ctx.newest as string, ctx.client)).status).toBe(400)
      return
    case 'all work':
      for (const each of [presented, ...(ctx.others ?? [])]) {
        expect((await h.refresh(each, ctx.client)).status).toBe(200)
      }
      return
    case 'all dead':
      for (const each of [presented, ...(ctx.others ?? [])]) {
        expect((await h.refresh(each, ctx.client)).status).toBe(400)
      }
      return
    case 'all dead, a retry gets 401': {
      for (const each of [presented, ...(ctx.others ?? [])]) {
        expect((await h.refresh(each, ctx.client)).status).toBe(400)
      }
      const before = await snapshot(ctx)
      expect((await again(ctx)).status).toBe(401)
      const after = await snapshot(ctx)
      expect(after.statuses).toEqual(before.statuses)
      expect(newEvents(before.events, after.events)).toEqual([])
      return
    }
    case 'access refused once the fault ends':
      expect((await h.get('/me', bearer(ctx.access))).status).toBe(401)
      return
    case 'access works once the fault ends':
      expect((await h.get('/me', bearer(ctx.access))).status).toBe(200)
      return
    case 'old password and every session work':
      for (const each of [presented, ...(ctx.others ?? [])]) {
        expect((await h.refresh(each, ctx.client)).status).toBe(200)
      }
      expect((await h.login(ctx.user, ctx.client)).status).toBe(200)
      return
    case 'new password works, the caller’s session lives, the others are dead':
      expect((await h.refresh(presented, ctx.client)).status).toBe(200)
      for (const each of ctx.others ?? []) {
        expect((await h.refresh(each, ctx.client)).status).toBe(400)
      }
      expect((await h.login(ctx.user, ctx.client)).status).toBe(400)
      expect((await h.login(ctx.user, ctx.client, NEW_PASSWORD)).status).toBe(200)
      return
  }
}

async function runCase(c: Case, user: User): Promise<void> {
  faults.clear()
  const ctx = await c.scenario.prepare(user)
  const before = await snapshot(ctx)
  const signs = kms.signCalls().length
  if (c.kind === 'dynamo') {
    faults.arm(...(c.scenario.route ?? []), c.plan)
  } else if (c.fault !== 'slower than AWS_CALL_TIMEOUT_MS') {
    kms.failNext(c.operation, kmsFault(c.fault))
  }
  const from = faults.calls.length
  const reply = await c.scenario.act(ctx)
  recordCalls(c.scenario.path, faults.calls.slice(from))
  // The fault really hit the call it names.
  if (c.kind === 'dynamo') {
    expect(faults.fired.map((f) => `${f.command} ${f.fault}`)).toContain(
      `${c.plan.command} ${c.plan.fault}`,
    )
  } else if (c.operation === 'Sign') {
    expect(kms.signCalls().length).toBeGreaterThan(signs)
  }
  faults.clear()

  checkAnswer(reply, c.expect.answer)
  await checkState(ctx, before, reply, c.expect.state)
  await checkEvents(ctx, before)
  await checkToken(ctx, reply, c.expect.token, c.scenario.act)
  rows.push({
    path: c.scenario.path,
    call:
      c.kind === 'dynamo'
        ? `DynamoDB ${c.plan.command}${c.target ? ` (${c.target})` : ''}`
        : `KMS ${c.operation}`,
    fault: c.kind === 'dynamo' ? c.plan.fault : c.fault,
    attempts:
      c.kind === 'kms'
        ? 'all (SDK retries spent)'
        : c.plan.attempts === 'first'
          ? 'first only'
          : 'every',
    when: c.kind === 'kms' ? '-' : c.plan.when === 'after' ? 'after commit' : 'before',
    ...c.expect,
  })
}

const label = (c: Case) =>
  c.kind === 'dynamo'
    ? `${c.scenario.path}: DynamoDB ${c.plan.command}${c.target ? ` on the ${c.target}` : ''} ${c.plan.fault} (${c.plan.attempts} attempt, ${c.plan.when}) -> ${c.expect.answer}, ${c.expect.state}, token ${c.expect.token}`
    : `${c.scenario.path}: KMS ${c.operation} ${c.fault} -> ${c.expect.answer}, ${c.expect.state}, token ${c.expect.token}`

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

/** A harness that builds its own DynamoDB client as a deployed function does (its retries and timeouts). */
function faultedHarness(options: { env?: Record<string, string>; strict?: boolean } = {}) {
  return startHarness({
    env: {
      SIGNING_KEY_ID: 'alias/rsa-active',
      // Generous: only the faults injected here may fail a call, not a busy machine.
      AWS_CALL_TIMEOUT_MS: '5000',
      ...options.env,
    },
    strict: options.strict ?? false,
    dynamodb: 'lambda',
    kms: kms.client,
  })
}

/** The function whose role makes a path's DynamoDB calls in the stack. */
const FUNCTION_OF: [RegExp, string][] = [
  [/^login$/, 'login'],
  [/^refresh/, 'token'],
  [/^revoke$/, 'revoke'],
  [/ \/sessions/, 'sessions'],
  [/^POST \/me\/password$/, 'password'],
  [/strict authorizer/, 'authorizer'],
]

/** Every DynamoDB call of every case, faulted or not, by the function that made it. */
const madeCalls: { path: string; fn: string; command: string; input: unknown }[] = []
function recordCalls(path: string, calls: readonly { command: string; input: unknown }[]): void {
  const fn = FUNCTION_OF.find(([pattern]) => pattern.test(path))?.[1]
  if (!fn) throw new Error(`no function is known for the path ${path}`)
  for (const { command, input } of calls) madeCalls.push({ path, fn, command, input })
}

/**
 * Which paths each test file runs; every path of the matrix is in exactly one. A path
 * written `name#i/n` is shared by n files: the i-th runs every n-th of its cases. Login's
 * file also runs the cases with a slow KMS and a cold key cache.
 */
export const FAULT_MATRIX_PARTS = {
  login: ['login'],
  refresh: ['refresh'],
  sessions: ['revoke', 'sessions API'],
  password1: ['password change#1/2'],
  password2: ['password change#2/2'],
  strict: ['strict authorizer'],
} as const

/** `password change#2/2` -> the path, and which share of its cases. */
function share(entry: string): {
  readonly path: string
  readonly index: number
  readonly of: number
} {
  const [path = entry, i = '1', of = '1'] = /^(.*)#(\d+)\/(\d+)$/.exec(entry)?.slice(1) ?? []
  return { path, index: Number(i) - 1, of: Number(of) }
}

{
  const listed = (Object.values(FAULT_MATRIX_PARTS).flat() as string[]).map(share)
  for (const group of groups) {
    const shares = listed.filter((entry) => entry.path === group.name)
    const of = shares[0]?.of ?? 0
    const whole =
      shares.length === of && shares.every((entry, i) => entry.index === i && entry.of === of)
    if (!whole)
      throw new Error(`FAULT_MATRIX_PARTS must cover ${group.name} once, in shares 1/n..n/n`)
  }
}

/** Defines the tests of one part of the matrix: its paths' groups, each with its own harness. */
export function faultMatrix(part: keyof typeof FAULT_MATRIX_PARTS): void {
  const shares = (FAULT_MATRIX_PARTS[part] as readonly string[]).map(share)
  const paths = shares.map((entry) => entry.path)
  afterAll(async () => {
    await faults.close()
    console.log(`\nFault matrix (${rows.length} cases):\n\n${markdown(rows)}\n`)
  })

  for (const group of groups.filter((g) => paths.includes(g.name))) {
    const { index, of } = shares.find((entry) => entry.path === group.name) as ReturnType<
      typeof share
    >
    describe(`rule 7 under faults: ${group.name}${of > 1 ? ` (share ${index + 1} of ${of})` : ''}`, () => {
      let user: User
      beforeAll(async () => {
        // A fresh runtime per path: its own SDK retry quota, its own table.
        h = await faultedHarness({ strict: group.strict })
        faults.install(h.dynamodb)
        user = await cheapUser()
      })
      afterAll(() => h.close())

      // Once per path: in its first share.
      if (index === 0) {
        it('covers every AWS call the path makes', async () => {
          const covered = new Set(
            group.cases.map((c) =>
              c.kind === 'dynamo'
                ? `${c.scenario.path}|DynamoDB ${c.plan.command}`
                : `${c.scenario.path}|KMS ${c.operation}`,
            ),
          )
          for (const scenario of new Set(group.cases.map((c) => c.scenario))) {
            faults.clear()
            const ctx = await scenario.prepare(user)
            const signs = kms.signCalls().length
            faults.arm(...(scenario.route ?? []))
            faults.calls.length = 0
            const reply = await scenario.act(ctx)
            recordCalls(scenario.path, faults.calls)
            checkAnswer(reply, scenario.ok.answer)
            const made = new Set([
              ...faults.calls.map((call) => `DynamoDB ${call.command}`),
              ...(kms.signCalls().length > signs ? ['KMS Sign'] : []),
            ])
            expect([...made].sort(), scenario.path).toEqual([...scenario.calls].sort())
            for (const call of scenario.faulted ?? scenario.calls) {
              expect(covered, `${scenario.path} makes ${call}`).toContain(
                `${scenario.path}|${call}`,
              )
            }
          }
          faults.clear()
        })
      }

      for (const [i, c] of group.cases.entries()) {
        // Logout everywhere ends every session of its user: it gets a user of its own, so
        // that it ends the sessions its scenario made, not those of every case before it
        // (130 of them, whose retries share one SDK retry quota).
        const fresh = c.scenario === scenarios.logoutEverywhere
        if (i % of === index) it(label(c), async () => runCase(c, fresh ? await cheapUser() : user))
      }
    })
  }

  if (paths.includes('login')) {
    describe('rule 7 under faults: KMS slower than the SDK timeout, and a cold key cache', () => {
      let hole: Awaited<ReturnType<typeof blackHole>>
      let realKms: ReturnType<typeof signThroughRealSdk>
      let user: User
      let slow = false

      beforeAll(async () => {
        hole = await blackHole()
        process.env.AWS_ENDPOINT_URL_KMS = hole.url
        realKms = signThroughRealSdk(kms, () => slow)
        // The runtime builds its own KMS client with AWS_CALL_TIMEOUT_MS and AWS_MAX_ATTEMPTS
        // (DynamoDB keeps the test table's client: DynamoDB Local on a busy machine is no
        // faster than 100 ms).
        h = await startHarness({
          env: { SIGNING_KEY_ID: 'alias/rsa-active', AWS_CALL_TIMEOUT_MS: '100' },
          kms: 'lambda',
        })
        user = await cheapUser()
      })
      afterAll(async () => {
        realKms.restore()
        delete process.env.AWS_ENDPOINT_URL_KMS
        await h.close()
        await hole.close()
      })

      it('login: KMS GetPublicKey ThrottlingException at cold start -> 503 + Retry-After, unsent session revoked, password works', async () => {
        // The first request of this runtime: its signer has no public key yet.
        await runCase(
          {
            kind: 'kms',
            scenario: L,
            operation: 'GetPublicKey',
            fault: 'ThrottlingException',
            expect: L.committed,
          },
          user,
        )
        expect(kms.getPublicKeyCalls().length).toBeGreaterThan(0)
      })

      const timeouts: [Scenario, Outcome][] = [
        [L, L.committed],
        [R, recordedOnly],
        [G, G.failed],
      ]
      for (const [scenario, outcome] of timeouts) {
        it(`${scenario.path}: KMS Sign slower than AWS_CALL_TIMEOUT_MS -> ${outcome.answer}, ${outcome.state}, token ${outcome.token}`, async () => {
          const ctx = await scenario.prepare(user)
          const before = await snapshot(ctx)
          slow = true
          realKms.errors.length = 0
          const reply = await scenario.act(ctx).finally(() => {
            slow = false
          })
          // The SDK gave up on its own timeout (not the function's), after its retries.
          expect(realKms.errors).toEqual(['TimeoutError'])
          checkAnswer(reply, outcome.answer)
          await checkState(ctx, before, reply, outcome.state)
          await checkEvents(ctx, before)
          await checkToken(ctx, reply, outcome.token, scenario.act)
          rows.push({
            path: scenario.path,
            call: 'KMS Sign',
            fault: 'slower than AWS_CALL_TIMEOUT_MS (real SDK timeout)',
            attempts: 'every',
            when: '-',
            ...outcome,
          })
        })
      }
    })
  }

  describe('least privilege on every path of the matrix', () => {
    it('makes no DynamoDB call, faulted or not, that its function’s synthesized grant does not allow', () => {
      // Every path of this part made its calls (each part's file records its own paths).
      const made = new Set(madeCalls.map((call) => call.path))
      for (const group of groups.filter((g) => paths.includes(g.name))) {
        const { index, of } = shares.find((entry) => entry.path === group.name) as ReturnType<
          typeof share
        >
        for (const [i, c] of group.cases.entries()) {
          if (i % of === index) expect(made, c.scenario.path).toContain(c.scenario.path)
        }
      }
      const denied: string[] = []
      for (const strict of [false, true]) {
        const statements = dynamodbStatements(strict)
        for (const call of madeCalls) {
          if ((call.fn === 'authorizer') !== strict) continue
          const mine = statements[call.fn]
          expect(mine, call.fn).toBeDefined()
          for (const [action, named, keys] of dynamodbChecks(call.command, call.input)) {
            // Each path's harness has a table of its own: the grants name one, as the stack's do.
            const resource = named.replace(/:table\/[^/]+/, `:table/${TABLE}`)
            const context: Record<string, string[]> = keys ? { 'dynamodb:LeadingKeys': keys } : {}
            if (!isAllowed(mine ?? [], action, resource, context)) {
              denied.push(`${call.path}: ${call.fn} ${action} ${keys?.join(',') ?? ''}`)
            }
          }
        }
      }
      expect([...new Set(denied)]).toEqual([])
    })
  })
}

/** Rows with the same path, call, attempts, when and outcome are merged (faults joined). */
function markdown(all: Row[]): string {
  const merged = new Map<string, Row & { faults: string[] }>()
  for (const row of all) {
    const key = [row.path, row.call, row.attempts, row.when, row.answer, row.state, row.token].join(
      '|',
    )
    const entry = merged.get(key)
    if (entry) entry.faults.push(row.fault)
    else merged.set(key, { ...row, faults: [row.fault] })
  }
  const lines = [
    '| path | AWS call | fault | attempts hit | when | answer | store afterwards | presented token |',
    '|---|---|---|---|---|---|---|---|',
  ]
  for (const row of merged.values()) {
    lines.push(
      `| ${row.path} | ${row.call} | ${row.faults.join(', ')} | ${row.attempts} | ${row.when} | ${row.answer} | ${row.state} | ${row.token} |`,
    )
  }
  return lines.join('\n')
}

const TABLE = 'token-table'

/**
 * Each function's DynamoDB statements as the stack synthesizes them (its role's policies),
 * on this harness's table: the calls above name it, the template names the stack's.
 */
function dynamodbStatements(strict: boolean): Record<string, Statement[]> {
  const { stack, resources, logicalId } = synth({ strictRevocation: strict })
  const service = stack.service
  const functions = {
    ...service.functions,
    ...(service.tokenAuthorizer && { authorizer: service.tokenAuthorizer.handler }),
  }
  const table = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${TABLE}`
  const tableId = logicalId(service.table)
  const render = (resource: unknown): string => {
    if (typeof resource === 'string') return resource
    const getAtt = (resource as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt']
    if (getAtt?.[0] === tableId && getAtt[1] === 'Arn') return table
    const join = (resource as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join']
    if (join) return join[1].map(render).join(join[0])
    return JSON.stringify(resource)
  }
  return Object.fromEntries(
    Object.entries(functions).map(([name, fn]) => {
      const role = logicalId(fn.role)
      const statements = Object.values(resources)
        .filter(
          (r) =>
            r.Type === 'AWS::IAM::Policy' &&
            (r.Properties.Roles as { Ref: string }[]).some((ref) => ref.Ref === role),
        )
        .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement)
        .filter((st) => [st.Action].flat().some((action) => action.startsWith('dynamodb:')))
        .map((st) => ({ ...st, Resource: [st.Resource].flat().map(render) }))
      return [name, statements]
    }),
  )
}
