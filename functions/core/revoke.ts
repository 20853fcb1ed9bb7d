import type { Client } from './clients.js'
import type { SessionStore } from './ports.js'
import { issuedFor } from './refresh.js'
import { hashToken, parseRefreshToken } from './refresh-token.js'
import { type RequestOrigin, sessionRevoked } from './security-events.js'
import type { Deps } from './service.js'

/** What revoke works with: the sessions. */
export interface RevokeDeps extends Pick<Deps, 'clock' | 'telemetry'> {
  readonly sessions: SessionStore
}

export interface RevokeInput {
  readonly token: string
  readonly client: Client
  /** Where the request came from, for the security event. */
  readonly origin?: RequestOrigin
}

/**
 * Ends the session a refresh token belongs to (RFC 7009). Unknown, malformed
 * and already revoked tokens get the same empty success, so the answer tells
 * nothing. A token of another client is left alone, with the same answer.
 * `token_type_hint` is ignored (RFC 7009 allows it): only refresh tokens are looked up.
 * Access tokens are not revocable here (they are not stored); end their
 * session through its refresh token or the sessions API.
 */
export async function revoke(deps: RevokeDeps, input: RevokeInput): Promise<void> {
  const { sessions, clock, telemetry } = deps
  const { client } = input
  const locator = parseRefreshToken(input.token)
  if (!locator) return
  const { session } = await sessions.loadRefreshState(locator)
  if (!session || session.sub !== locator.sub || session.clientId !== client.clientId) return
  if (session.status !== 'active') return
  // Garbage that merely names a session revokes nothing.
  if (!(await issuedFor(sessions, session, hashToken(input.token)))) return
  const at = clock.now()
  const revoked = sessionRevoked(session, 'revoked', at, input.origin)
  if (await sessions.revokeSession(session.sid, 'revoked', at, [revoked])) {
    telemetry.emit('revoke', { client_id: client.clientId })
  }
}
