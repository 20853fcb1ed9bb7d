import { issueAccessToken } from './access-token.js'
import type { Client } from './clients.js'
import type { DpopProof } from './dpop.js'
import type { ProofUse } from './dpop-grant.js'
import { InvalidGrant, InvalidRequest, TemporarilyUnavailable } from './errors.js'
import { clearTurn, countFailure, takeTurn } from './password-turn.js'
import {
  couldBeUsername,
  dummyHash,
  MAX_PASSWORD_BYTES,
  normalizeUsername,
  verifyPassword,
} from './passwords.js'
import type { LoginAttempts, Session, SessionStore, Signer } from './ports.js'
import { hashToken, newRefreshToken, newSessionId } from './refresh-token.js'
import { type Deps, grantScope, type TokenResult } from './service.js'
import { type BackoffPolicy, DEFAULT_BACKOFF } from './throttle.js'
import { startAfterLogout } from './users.js'

/** What login works with: the username's attempts, the sessions, the signer, DPoP's single use. */
export interface LoginDeps extends Deps {
  readonly loginAttempts: LoginAttempts
  readonly sessions: SessionStore
  readonly signer: Signer
  readonly dpop: ProofUse
}

export interface LoginInput {
  readonly username: string
  readonly password: string
  /** The client, already looked up (and its origin checked) by the HTTP layer. */
  readonly client: Client
  readonly scope?: string
  readonly userAgent?: string
  /** The request's DPoP proof, already verified (core/dpop-grant.ts): the session is bound to its key. */
  readonly proof?: DpopProof | undefined
}

// Checked when the username is unknown, so that it costs one hash like a wrong password.
const DUMMY_HASH = dummyHash()

/**
 * Starts a session: one read (the user) while the attempt takes its turn (one
 * conditional write, core/throttle.ts) and a DPoP proof's single use is
 * recorded, the password check, then the access token is signed while the
 * session is written. A username in back-off, or whose turns are all taken,
 * gets 429 before any hashing, whether or not the user exists.
 */
export async function login(
  deps: LoginDeps,
  input: LoginInput,
  backoff: BackoffPolicy = DEFAULT_BACKOFF,
): Promise<TokenResult> {
  const { loginAttempts, sessions, signer, clock, events, settings } = deps
  const { client, proof } = input
  const scope = grantScope(input.scope, client.scopes)
  if (Buffer.byteLength(input.password, 'utf8') > MAX_PASSWORD_BYTES) {
    throw new InvalidRequest(`password must not exceed ${MAX_PASSWORD_BYTES} bytes`)
  }
  const username = normalizeUsername(input.username)
  if (!couldBeUsername(username)) throw new InvalidGrant('impossible username')

  const now = clock.now()
  const attempt = { username, now, fields: { client_id: client.clientId } }
  // The turn's write runs alongside the read: a success costs no extra round trip.
  const [read, turned, used] = await Promise.allSettled([
    loginAttempts.loadLogin(username),
    takeTurn(deps, backoff, attempt),
    proof ? deps.dpop.use(proof) : Promise.resolve(),
  ])
  if (used.status === 'rejected') {
    // A proof used before (or not recorded) is no password attempt: the turn is given back.
    if (turned.status === 'fulfilled') await clearTurn(deps, attempt, turned.value)
    throw used.reason
  }
  if (turned.status === 'rejected') throw turned.reason
  if (read.status === 'rejected') throw read.reason
  const { user } = read.value
  const turn = turned.value
  const matches = await verifyPassword(input.password, user?.passwordHash ?? DUMMY_HASH)
  if (!user || !matches || user.status !== 'active') {
    countFailure(deps, attempt)
    const why = !user ? 'unknown username' : !matches ? 'wrong password' : 'user disabled'
    throw new InvalidGrant(why)
  }

  const sid = newSessionId()
  const refreshToken = newRefreshToken({ sub: user.sub, sid })
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
    // By code points, so that a cut never leaves half a surrogate pair.
    ...(input.userAgent ? { userAgent: Array.from(input.userAgent).slice(0, 256).join('') } : {}),
    ...(proof ? { jkt: proof.jkt } : {}),
  }
  const signing = issueAccessToken(signer, settings, { user, session, client, scope, now })
  // Guarded by the user's status and hash as read: a disable or password change
  // that lands between the read and this write makes the login fail.
  const writing = startSession(sessions, session, {
    sub: user.sub,
    passwordHash: user.passwordHash,
  })
  const [accessToken, created] = await settle([
    signing,
    writing,
    clearTurn(deps, attempt, turn),
  ]).catch(async (error: unknown) => {
    // The session may be written (or its answer lost) while its token is never sent:
    // revoke it so that it does not show as active for its whole lifetime.
    if ((await writing.catch(() => undefined)) !== false) {
      await sessions.revokeSession(sid, 'login_failed', clock.now()).catch(() => undefined)
    }
    throw error
  })
  if (!created) throw new InvalidGrant('user changed during login')
  events.emit('login', { client_id: client.clientId })
  return { client, accessToken, refreshToken, scope, sessionExpiresAt: session.absoluteExpiresAt }
}

/** How often a login restarts its session after a logout everywhere overtook it. */
const SESSION_START_ATTEMPTS = 3

/**
 * Writes the login's session, guarded by the user as login read it. A logout
 * everywhere that overtook the login is not a refusal: the session starts
 * after it instead (core/users.ts `startAfterLogout`). False when the user
 * was disabled or changed password meanwhile.
 */
export async function startSession(
  sessions: Pick<SessionStore, 'createSession'>,
  session: Session,
  guard: { readonly sub: string; readonly passwordHash: string },
): Promise<boolean> {
  let attempt = session
  for (let round = 1; round <= SESSION_START_ATTEMPTS; round++) {
    const creation = await sessions.createSession(attempt, guard)
    if (creation.created) return true
    const startAt = startAfterLogout(attempt, guard, creation.user)
    if (startAt === undefined) return false
    attempt = { ...attempt, createdAt: startAt }
  }
  throw new TemporarilyUnavailable('logouts everywhere kept overtaking the login')
}

/**
 * Like Promise.all, but waits for every promise to settle before it throws, so
 * that no write is still in flight when the function answers.
 */
export async function settle<T extends readonly unknown[]>(
  promises: readonly [...{ [K in keyof T]: Promise<T[K]> }],
): Promise<T> {
  const results = await Promise.allSettled(promises)
  const failed = results.find((result) => result.status === 'rejected')
  if (failed) throw (failed as PromiseRejectedResult).reason
  return results.map((result) => (result as PromiseFulfilledResult<unknown>).value) as unknown as T
}
