import { issueAccessToken } from './access-token.js'
import { InvalidGrant, InvalidRequest } from './errors.js'
import { dummyHash, MAX_PASSWORD_BYTES, normalizeUsername, verifyPassword } from './passwords.js'
import type { Session } from './ports.js'
import { hashToken, newRefreshToken, newSessionId } from './refresh-token.js'
import { type Deps, findClient, grantScope, type TokenResult } from './service.js'

export interface LoginInput {
  readonly username: string
  readonly password: string
  readonly clientId: string
  readonly scope?: string
  readonly userAgent?: string
}

// Checked when the username is unknown, so that it costs one hash like a wrong password.
const DUMMY_HASH = dummyHash()

/** One message for every failed login: no user enumeration. */
const BAD_CREDENTIALS = 'invalid username or password'

/**
 * Starts a session: one read, the password check, then the access token is
 * signed while the session is written.
 */
export async function login(deps: Deps, input: LoginInput): Promise<TokenResult> {
  const { store, signer, clock, events, settings } = deps
  const client = findClient(settings, input.clientId)
  const scope = grantScope(input.scope, client.scopes)
  if (Buffer.byteLength(input.password, 'utf8') > MAX_PASSWORD_BYTES) {
    throw new InvalidRequest(`password must not exceed ${MAX_PASSWORD_BYTES} bytes`)
  }

  const user = await store.findUserByUsername(normalizeUsername(input.username))
  const matches = await verifyPassword(input.password, user?.passwordHash ?? DUMMY_HASH)
  if (!user || !matches || user.status !== 'active') {
    events.emit('login_failed', { client_id: client.clientId })
    const why = !user ? 'unknown username' : !matches ? 'wrong password' : 'user disabled'
    throw new InvalidGrant(BAD_CREDENTIALS, why)
  }

  const now = clock.now()
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
    ...(input.userAgent ? { userAgent: input.userAgent.slice(0, 256) } : {}),
  }
  const [accessToken, created] = await settle([
    issueAccessToken(signer, settings, { user, session, client, scope, now }),
    // Guarded by the user's status and hash as read: a disable or password change
    // that lands between the read and this write makes the login fail.
    store.createSession(session, { sub: user.sub, passwordHash: user.passwordHash }),
  ])
  if (!created) throw new InvalidGrant(BAD_CREDENTIALS, 'user changed during login')
  events.emit('login', { client_id: client.clientId })
  return { client, accessToken, refreshToken, scope, sessionExpiresAt: session.absoluteExpiresAt }
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
