import { randomUUID } from 'node:crypto'
import type { Client } from './clients.js'
import type { Session, Signer, User } from './ports.js'

/** Access-token claims (RFC 9068 §2.2, plus `sid`, `roles`, `username`). */
export interface AccessTokenClaims {
  iss: string
  sub: string
  aud: string
  exp: number
  iat: number
  nbf: number
  jti: string
  client_id: string
  scope: string
  sid: string
  roles: string[]
  username: string
  /** RFC 9449 §6.1: the thumbprint of the DPoP key the token is bound to: its session's. */
  cnf?: { jkt: string }
}

export interface IssuedAccessToken {
  readonly token: string
  readonly expiresIn: number
  readonly claims: AccessTokenClaims
}

export interface AccessTokenSettings {
  readonly issuer: string
  /** `iat` and `nbf` are set this many seconds early, for verifiers with a fast clock. @default 5 */
  readonly backdateSeconds: number
}

const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/**
 * Builds and signs a compact JWS with header `{alg, typ: 'at+jwt', kid}`. A
 * token of a DPoP-bound session is bound to the same key (`cnf.jkt`).
 */
export async function issueAccessToken(
  signer: Signer,
  settings: AccessTokenSettings,
  input: { user: User; session: Session; client: Client; scope: string; now: number },
): Promise<IssuedAccessToken> {
  const { user, session, client, scope, now } = input
  const seconds = Math.floor(now / 1000)
  const claims: AccessTokenClaims = {
    iss: settings.issuer,
    sub: user.sub,
    aud: client.audience,
    exp: seconds + client.accessTokenTtlSeconds,
    iat: seconds - settings.backdateSeconds,
    nbf: seconds - settings.backdateSeconds,
    jti: randomUUID(),
    client_id: client.clientId,
    scope,
    sid: session.sid,
    roles: [...user.roles],
    username: user.username,
    ...(session.jkt === undefined ? {} : { cnf: { jkt: session.jkt } }),
  }
  const header = { alg: signer.alg, typ: 'at+jwt', kid: await signer.keyId() }
  const signingInput = `${encode(header)}.${encode(claims)}`
  const signature = await signer.sign(new TextEncoder().encode(signingInput))
  return {
    token: `${signingInput}.${Buffer.from(signature).toString('base64url')}`,
    expiresIn: client.accessTokenTtlSeconds,
    claims,
  }
}
