import type { IssuedAccessToken } from './access-token.js'
import type { Client } from './clients.js'
import type { Clock } from './clock.js'
import { InvalidClient, InvalidScope } from './errors.js'
import type { Telemetry } from './ports.js'
import type { Regions } from './regions.js'

/**
 * What every token use case needs, passed in (never read from the
 * environment). Each use case adds the ports it uses: `LoginDeps`,
 * `RefreshDeps`, `RevokeDeps`.
 */
export interface Deps {
  readonly clock: Clock
  readonly telemetry: Telemetry
  readonly settings: IssuanceSettings
}

export interface IssuanceSettings {
  /** The `iss` claim, exactly as verifiers compare it. */
  readonly issuer: string
  /** `iat`/`nbf` are set this many seconds early. @default 5 */
  readonly backdateSeconds: number
  /** With several regions: this one (the home of the sessions it starts) and the others. */
  readonly regions?: Regions
}

/** A token response (RFC 6749 §5.1), before the HTTP layer decides body or cookie. */
export interface TokenResult {
  readonly client: Client
  readonly accessToken: IssuedAccessToken
  readonly refreshToken: string
  readonly scope: string
  /** Epoch ms at which the session ends whatever happens (for the cookie's lifetime). */
  readonly sessionExpiresAt: number
}

/** The client with this id, or `invalid_client`. */
export function findClient(
  clients: ReadonlyMap<string, Client>,
  clientId: string | undefined,
): Client {
  const client = clientId === undefined ? undefined : clients.get(clientId)
  if (!client)
    throw new InvalidClient(clientId === undefined ? 'client_id_missing' : 'client_id_unknown')
  return client
}

/**
 * The scope granted: everything the client may have when none is asked for,
 * else exactly what was asked, which must be within `allowed`.
 */
export function grantScope(requested: string | undefined, allowed: readonly string[]): string {
  if (requested === undefined || requested.trim() === '') return allowed.join(' ')
  const wanted = [...new Set(requested.split(' ').filter(Boolean))]
  if (!wanted.every((scope) => allowed.includes(scope))) throw new InvalidScope()
  return wanted.join(' ')
}
