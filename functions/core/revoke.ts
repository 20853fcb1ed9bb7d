import { hashToken, parseRefreshToken } from './refresh-token.js'
import { type Deps, findClient } from './service.js'

export interface RevokeInput {
  readonly token: string
  readonly clientId: string
}

/**
 * Ends the session a refresh token belongs to (RFC 7009). Unknown, malformed
 * and already revoked tokens get the same empty success, so the answer tells
 * nothing. A token of another client is left alone, with the same answer.
 * `token_type_hint` is ignored (RFC 7009 allows it): only refresh tokens are looked up.
 * Access tokens are not revocable here (they are not stored); end their
 * session through its refresh token or the sessions API.
 */
export async function revoke(deps: Deps, input: RevokeInput): Promise<void> {
  const { store, clock, events, settings } = deps
  const client = findClient(settings, input.clientId)
  const locator = parseRefreshToken(input.token)
  if (!locator) return
  const { session, tokenIssued } = await store.loadRefreshState({
    ...locator,
    tokenHash: hashToken(input.token),
  })
  if (!session || !tokenIssued || session.clientId !== client.clientId) return
  if (session.status !== 'active') return
  await store.revokeSession(session.sid, 'revoked', clock.now())
  events.emit('revoke', { client_id: client.clientId })
}
