import { issueAccessToken } from './access-token.js'
import type { Client } from './clients.js'
import type { DpopProof } from './dpop.js'
import type { ProofUse } from './dpop-grant.js'
import {
  InvalidDpopProof,
  InvalidGrant,
  InvalidRequest,
  TemporarilyUnavailable,
  TooManyRequests,
} from './errors.js'
import {
  checkPassword,
  type PasswordAttempt,
  refundAttempt,
  reportFailedCheck,
  reserveAttempt,
} from './password-turn.js'
import { couldBeUsername, dummyHash, MAX_PASSWORD_BYTES, normalizeUsername } from './passwords.js'
import type {
  EventOutbox,
  LoginAttempts,
  LoginState,
  Session,
  SessionStore,
  Signer,
} from './ports.js'
import { hashToken, newRefreshToken, newSessionId } from './refresh-token.js'
import {
  boundedUserAgent,
  type LoginFailureReason,
  type RequestOrigin,
  type SecurityEvent,
  securityEvent,
  sessionRevoked,
} from './security-events.js'
import { type Deps, grantScope, type TokenResult } from './service.js'
import { reportTheftSignal } from './theft-signals.js'
import { type BackoffPolicy, DEFAULT_BACKOFF } from './throttle.js'
import { startAfterLogout } from './users.js'

/**
 * What login works with: the username's attempts, the sessions, the signer,
 * the outbox, DPoP's single use.
 */
export interface LoginDeps extends Deps {
  readonly loginAttempts: LoginAttempts
  readonly sessions: SessionStore
  readonly signer: Signer
  /** For the events of refusals that write nothing else (docs/design.md "Security events"). */
  readonly outbox: EventOutbox
  readonly dpop: ProofUse
}

export interface LoginInput {
  readonly username: string
  readonly password: string
  /** The client, already looked up (and its origin checked) by the HTTP layer. */
  readonly client: Client
  readonly scope?: string
  readonly userAgent?: string
  /** The client's IP address, for the security events. */
  readonly sourceIp?: string
  /** The request's DPoP proof, already verified (core/dpop-grant.ts): the session is bound to its key. */
  readonly proof?: DpopProof | undefined
}

// Checked when the username is unknown, so that it costs one hash like a wrong password.
const DUMMY_HASH = dummyHash()

/**
 * Starts a session: one read (the user) while the attempt reserves its turn
 * (one conditional write, core/password-turn.ts), or with a DPoP proof, while
 * the proof's single use is recorded and then the reservation; the password
 * check (which takes the reservation: it cannot come first), then the access
 * token is signed while the session is written. A username in back-off, or
 * whose turns are all taken, gets 429 before any hashing, whether or not the
 * user exists.
 */
export async function login(
  deps: LoginDeps,
  input: LoginInput,
  backoff: BackoffPolicy = DEFAULT_BACKOFF,
): Promise<TokenResult> {
  const { loginAttempts, sessions, signer, clock, telemetry, settings } = deps
  const { client, proof } = input
  const scope = grantScope(input.scope, client.scopes)
  if (Buffer.byteLength(input.password, 'utf8') > MAX_PASSWORD_BYTES) {
    throw new InvalidRequest(`password must not exceed ${MAX_PASSWORD_BYTES} bytes`)
  }
  const username = normalizeUsername(input.username)
  if (!couldBeUsername(username)) throw new InvalidGrant('impossible_username')

  const now = clock.now()
  const origin: RequestOrigin = { sourceIp: input.sourceIp, userAgent: input.userAgent }
  const passwordAttempt = { username, now, fields: { client_id: client.clientId } }
  const loading = loginAttempts.loadLogin(username)
  // A DPoP proof's single use is recorded before the turn is taken (alongside the read): a
  // replayed proof must take no turn at all. Holding one, even to give it back, would make a
  // concurrent attempt lose it (429, uncounted), and the checks after it that this attempt's
  // failure would have held back would then go ahead (issue 16's property, seed -96762364).
  if (proof) await useProofFirst(deps, proof, loading, passwordAttempt, { client, origin })
  // Without a proof, the turn's write runs alongside the read: no extra round trip.
  const reserving = reserveAttempt(deps, backoff, passwordAttempt)
  const [{ user }, reservation] = await allSettledOrThrow([loading, reserving]).catch(
    async (error: unknown) => {
      if (error instanceof TooManyRequests) {
        const subject = (await loading.catch(() => undefined))?.user?.sub
        await writeThrottledEvent(deps, { username, client, now, subject, origin }, error)
      }
      throw error
    },
  )
  // The subject is the user's sub, never the username: none for an unknown username.
  const attempt: Attempt = { username, client, now, subject: user?.sub, origin }
  const matches = await checkPassword(reservation, input.password, user?.passwordHash ?? DUMMY_HASH)
  if (!user || !matches || user.status !== 'active') {
    const reason: LoginFailureReason = !user
      ? 'unknown_username'
      : !matches
        ? 'wrong_password'
        : 'user_disabled'
    // The reservation counted this failure: its event is written alone.
    await deps.outbox.appendEvent(loginEvent('login.failed', attempt, { reason }))
    reportFailedCheck(deps, reservation, reason)
    throw new InvalidGrant(reason)
  }

  const sid = newSessionId()
  // With several regions, the session is homed here and its token says so (no lookup).
  const home = settings.regions?.here
  const refreshToken = newRefreshToken({ sub: user.sub, sid, ...(home && { home }) })
  const session: Session = {
    sid,
    sub: user.sub,
    clientId: client.clientId,
    scope,
    status: 'active',
    createdAt: now,
    lastUsedAt: now,
    idleExpiresAt: now + client.refreshIdleTtlSeconds * 1000,
    absoluteExpiresAt: now + client.refreshAbsoluteTtlSeconds * 1000,
    generation: 0,
    currentHash: hashToken(refreshToken),
    ...(input.userAgent ? { userAgent: boundedUserAgent(input.userAgent) } : {}),
    ...(proof ? { jkt: proof.jkt } : {}),
    ...(home ? { home } : {}),
  }
  const signing = issueAccessToken(signer, settings, { user, session, client, scope, now })
  // Guarded by the user's status and hash as read: a disable or password change
  // that lands between the read and this write makes the login fail.
  const writing = startSession(
    sessions,
    session,
    { sub: user.sub, passwordHash: user.passwordHash },
    [loginEvent('login.succeeded', attempt, { sid })],
  )
  const [accessToken, created] = await allSettledOrThrow([
    signing,
    writing,
    refundAttempt(deps, reservation),
  ]).catch(async (error: unknown) => {
    // The session may be written (or its answer lost) while its token is never sent:
    // revoke it so that it does not show as active for its whole lifetime.
    if ((await writing.catch(() => undefined)) !== false) {
      const at = clock.now()
      const aborted = sessionRevoked(session, 'login_aborted', at, origin)
      await sessions.revokeSession(sid, 'login_aborted', at, [aborted]).catch(() => undefined)
    }
    throw error
  })
  if (!created) throw new InvalidGrant('user_changed_during_login')
  telemetry.emit('login', { client_id: client.clientId })
  return { client, accessToken, refreshToken, scope, sessionExpiresAt: session.absoluteExpiresAt }
}

/** How often a login restarts its session after a logout everywhere overtook it. */
const SESSION_START_ATTEMPTS = 3

/**
 * Writes the login's session and its `events`, guarded by the user as login read it. A logout
 * everywhere that overtook the login is not a refusal: the session starts
 * after it instead (core/users.ts `startAfterLogout`). False when the user
 * was disabled or changed password meanwhile.
 */
export async function startSession(
  sessions: Pick<SessionStore, 'createSession'>,
  session: Session,
  guard: { readonly sub: string; readonly passwordHash: string },
  events: readonly SecurityEvent[] = [],
): Promise<boolean> {
  let attempt = session
  for (let round = 1; round <= SESSION_START_ATTEMPTS; round++) {
    // A refused attempt wrote nothing: the next one carries the same events (the same ids).
    const creation = await sessions.createSession(attempt, guard, events)
    if (creation.created) return true
    const startAt = startAfterLogout(attempt, guard, creation.user)
    if (startAt === undefined) return false
    attempt = { ...attempt, createdAt: startAt }
  }
  throw new TemporarilyUnavailable('logouts everywhere kept overtaking the login')
}

/**
/** One login attempt, as its events describe it. */
interface Attempt {
  readonly username: string
  readonly client: Client
  readonly now: number
  /** The user's sub, if the username names one. */
  readonly subject: string | undefined
  readonly origin: RequestOrigin
}

const loginEvent = (
  type: 'login.succeeded' | 'login.failed' | 'login.throttled',
  attempt: Attempt,
  data: { sid?: string; reason?: LoginFailureReason; retry_after_seconds?: number },
): SecurityEvent =>
  securityEvent(type, attempt.now, {
    ...(attempt.subject === undefined ? {} : { subject: attempt.subject }),
    data: { client_id: attempt.client.clientId, ...data },
    origin: attempt.origin,
  })

/**
 * Writes the `login.throttled` event of a 429: a refusal changes nothing in
 * the table, so the event is written alone, and a fault there answers 503
 * instead (no password was checked either way).
 */
async function writeThrottledEvent(
  deps: LoginDeps,
  attempt: Attempt,
  refusal: TooManyRequests,
): Promise<void> {
  const retryAfter = Number(refusal.headers['Retry-After'])
  await deps.outbox.appendEvent(
    loginEvent('login.throttled', attempt, { retry_after_seconds: retryAfter }),
  )
}

/**
 * Records a DPoP proof's single use alongside the login's read, before any
 * turn. A proof used before, or not recorded, is no password attempt: it
 * answers before the username's record is touched, so it neither counts nor
 * takes a turn that a concurrent attempt needed (issue 16).
 */
async function useProofFirst(
  deps: LoginDeps,
  proof: DpopProof,
  loading: Promise<LoginState>,
  passwordAttempt: PasswordAttempt,
  request: { readonly client: Client; readonly origin: RequestOrigin },
): Promise<void> {
  const [used, loaded] = await Promise.allSettled([deps.dpop.use(proof), loading])
  if (used.status === 'fulfilled') return
  // Used before (not a fault recording it): someone sends a request the client already sent.
  if (used.reason instanceof InvalidDpopProof) {
    await reportTheftSignal(deps, 'dpop.proof_replayed', passwordAttempt.now, {
      subject: loaded.status === 'fulfilled' ? loaded.value.user?.sub : undefined,
      clientId: request.client.clientId,
      origin: request.origin,
    })
  }
  throw used.reason
}

/**
 * Like Promise.all, but waits for every promise to settle before it throws, so
 * that no write is still in flight when the function answers.
 */
export async function allSettledOrThrow<T extends readonly unknown[]>(
  promises: readonly [...{ [K in keyof T]: Promise<T[K]> }],
): Promise<T> {
  const results = await Promise.allSettled(promises)
  const failed = results.find((result) => result.status === 'rejected')
  if (failed) throw (failed as PromiseRejectedResult).reason
  return results.map((result) => (result as PromiseFulfilledResult<unknown>).value) as unknown as T
}
