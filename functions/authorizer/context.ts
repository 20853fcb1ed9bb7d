/**
 * What the authorizer hands to a route, and how a route reads it back. Kept
 * apart from the verifier so that route functions do not bundle it.
 */
import { InvalidToken } from '../core/errors.js'
import type { VerifiedClaims } from './verify.js'

/** The caller as a bearer route sees it: the verified claims. */
export type CallerClaims = VerifiedClaims

type ContextValue = string | number | boolean | readonly string[]

/**
 * The HTTP API (payload 2.0) authorizer context: every verified claim.
 * `sub`, `sid`, `client_id`, `scope` and `roles` are the contract; `roles`
 * stays an array (HTTP API contexts may hold arrays).
 */
export function httpContext(claims: VerifiedClaims): Record<string, ContextValue> {
  return { ...claims } as Record<string, ContextValue>
}

/**
 * The REST API authorizer context: values must be strings, numbers or
 * booleans, so `roles` (and an array `aud`) are space-separated, as `scope` is.
 */
export function restContext(claims: VerifiedClaims): Record<string, string | number> {
  const context: Record<string, string | number> = {}
  for (const [name, value] of Object.entries(claims)) {
    if (value !== undefined) context[name] = Array.isArray(value) ? value.join(' ') : value
  }
  return context
}

/**
 * The caller's claims from `requestContext.authorizer`: our Lambda
 * authorizer's context (`lambda`), or the native HTTP API JWT authorizer's
 * claims (`jwt.claims`, where every value arrives as a string and arrays as
 * `[a b]`). No authorizer context means the route was reached without one
 * (a misconfigured route): refuse with a proper 401, never serve it.
 */
export function callerClaims(authorizer: unknown): CallerClaims {
  const source = authorizer as
    | { lambda?: Record<string, unknown>; jwt?: { claims?: Record<string, unknown> } }
    | undefined
  const raw = source?.lambda ?? source?.jwt?.claims
  if (!raw || typeof raw !== 'object') throw new InvalidToken('no_authorizer_context')
  const text = (name: string): string => {
    const value = raw[name]
    if (typeof value !== 'string' || value === '') {
      throw new InvalidToken('authorizer_context_incomplete', name)
    }
    return value
  }
  const number = (name: string): number | undefined => {
    const value = typeof raw[name] === 'string' ? Number(raw[name]) : raw[name]
    return typeof value === 'number' && Number.isFinite(value) ? value : undefined
  }
  const exp = number('exp')
  const iat = number('iat')
  const nbf = number('nbf')
  const username = raw.username
  // Our authorizer's `cnf.jkt`: the caller proved this DPoP key.
  const jkt = raw.jkt
  return {
    iss: text('iss'),
    sub: text('sub'),
    aud: stringList(raw.aud, true) ?? '',
    exp: exp ?? 0,
    iat: iat ?? 0,
    ...(nbf === undefined ? {} : { nbf }),
    jti: typeof raw.jti === 'string' ? raw.jti : '',
    client_id: text('client_id'),
    scope: typeof raw.scope === 'string' ? raw.scope : '',
    sid: text('sid'),
    roles: (stringList(raw.roles, false) as readonly string[] | undefined) ?? [],
    ...(typeof username === 'string' ? { username } : {}),
    ...(typeof jkt === 'string' ? { jkt } : {}),
  }
}

/**
 * An array claim in any of the shapes API Gateway hands over: an array, a
 * JSON array, the JWT authorizer's `[a b]`, or space-separated. With
 * `keepSingle`, a lone string stays a string (`aud`).
 */
function stringList(value: unknown, keepSingle: boolean): string | string[] | undefined {
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string')
  if (typeof value !== 'string') return undefined
  if (value.startsWith('[') && value.endsWith(']')) {
    try {
      const parsed: unknown = JSON.parse(value)
      if (Array.isArray(parsed)) return parsed.filter((item) => typeof item === 'string')
    } catch {
      // not JSON: the JWT authorizer's own `[a b]` form
    }
    return value.slice(1, -1).split(' ').filter(Boolean)
  }
  if (keepSingle) return value
  return value.split(' ').filter(Boolean)
}
