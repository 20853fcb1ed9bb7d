import type { Client } from './clients.js'
import type { SessionStore } from './ports.js'
import { issuedFor } from './refresh.js'
import { hashToken, parseRefreshToken } from './refresh-token.js'
import { HomeMoved, homeOfSession, type Regions } from './regions.js'
import { type RequestOrigin, sessionRevoked } from './security-events.js'
import type { Deps } from './service.js'

/** What revoke works with: the sessions. */
export interface RevokeDeps extends Pick<Deps, 'clock' | 'telemetry'> {
  readonly sessions: SessionStore
  /** With several regions: under `failover: 'adopt'`, the session item's home decides. */
  readonly regions?: Regions
}

export interface RevokeInput {
  readonly token: string
  readonly client: Client
  /** Where the request came from, for the security event. */
  readonly origin?: RequestOrigin
  /**
   * Write it here whatever the item's home says: that home could not be reached, or said
   * the session is homed here (its replica is ahead of this one).
   */
  readonly anyHome?: boolean
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
  // `failover: 'adopt'`: an adopted session's home moved, and its rotations are decided
  // there; a revocation written elsewhere could lose to one of them (last writer wins).
  const { regions } = deps
  if (regions?.failover === 'adopt' && !input.anyHome) {
    const home = homeOfSession(session, regions)
    if (home !== regions.here) throw new HomeMoved(home)
  }
  const at = clock.now()
  const revoked = sessionRevoked(session, 'revoked', at, input.origin)
  if (await sessions.revokeSession(session.sid, 'revoked', at, [revoked])) {
    telemetry.emit('revoke', { client_id: client.clientId })
  }
}
