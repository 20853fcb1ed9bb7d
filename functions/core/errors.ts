/**
 * One error hierarchy for the whole service, mapped to OAuth 2.0 error codes
 * (RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1).
 *
 * `description` is public and goes to the client; `detail` is private and goes
 * to the logs only. Neither may ever hold a token, a password or a hash.
 */
import { DPOP_ALGORITHMS } from './dpop-algorithms.js'
import type {
  ClientRefusal,
  GrantRefusal,
  NonceRefusal,
  RefusalCode,
  ThrottleRefusal,
  TokenRefusal,
} from './refusals.js'

export class OAuthError extends Error {
  /** HTTP status code of the response. */
  readonly status: number
  /** OAuth error code, the `error` member of the response body. */
  readonly error: string
  /** Human text for the client, the `error_description` member. */
  readonly description: string
  /** Why it happened, for the logs only: a refusal's code, or a fault's words. */
  readonly detail: string | undefined
  /** A refusal's code (core/refusals.ts): what logs and tests key on. Never in the response. */
  readonly code: RefusalCode | undefined
  /**
   * Which member, claim or proof check a refusal's code is about (`foreign_header`:
   * `jku`), in fixed words of ours, never the request's content. For the logs only.
   */
  readonly check: string | undefined
  /** Extra response headers (for example `Retry-After`). */
  readonly headers: Record<string, string>

  constructor(
    status: number,
    error: string,
    description: string,
    options: {
      detail?: string
      code?: RefusalCode
      check?: string
      headers?: Record<string, string>
      cause?: unknown
    } = {},
  ) {
    super(description, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.status = status
    this.error = error
    this.description = description
    this.code = options.code
    this.detail = options.code ?? options.detail
    this.check = options.check
    this.headers = options.headers ?? {}
  }

  /** Client errors are shown as they are; server errors never reveal their detail. */
  get expose(): boolean {
    return this.status < 500
  }
}

export class InvalidRequest extends OAuthError {
  constructor(description: string, detail?: string) {
    super(400, 'invalid_request', description, { detail })
  }
}

export class PayloadTooLarge extends OAuthError {
  constructor(limitBytes: number) {
    super(413, 'invalid_request', `request body is larger than ${limitBytes} bytes`)
  }
}

export class UnsupportedMediaType extends OAuthError {
  constructor() {
    super(
      415,
      'invalid_request',
      'content type must be application/x-www-form-urlencoded or application/json',
    )
  }
}

/** The request's Origin is not allowed for a cookie-mode client (CSRF defence). */
export class OriginNotAllowed extends OAuthError {
  constructor() {
    super(403, 'access_denied', 'origin not allowed for this client')
  }
}

/** The request went around the edge (CloudFront and WAF) straight to the API's own endpoint. */
export class NotThroughEdge extends OAuthError {
  constructor() {
    super(403, 'access_denied', 'use the service’s public address', {
      detail: 'no valid X-Origin-Verify header: the request did not come through the edge',
    })
  }
}

export class InvalidClient extends OAuthError {
  constructor(code: ClientRefusal) {
    super(401, 'invalid_client', 'unknown client', { code })
  }
}

/**
 * The public text of every `invalid_grant` (RFC 6749 §5.2's wording): the same
 * whichever check failed, so the answer never tells an attacker which one (no
 * user enumeration, no token oracle).
 */
export const INVALID_GRANT_DESCRIPTION =
  'the credentials or refresh token are invalid, expired or revoked'

/** A refused login or refresh. Its code says which check failed, for the logs only. */
export class InvalidGrant extends OAuthError {
  constructor(code: GrantRefusal, check?: string) {
    super(400, 'invalid_grant', INVALID_GRANT_DESCRIPTION, { code, check })
  }
}

/**
 * The public text of a refresh whose home region cannot be reached under `FAILOVER`
 * `relogin` (docs/multi-region.md): the one `invalid_grant` with a text of its own, since
 * the client must tell it from a dead session (its SDK logs in again, where it is) and
 * it says nothing of the token, which was not read.
 */
export const HOME_UNREACHABLE_DESCRIPTION = 'home region unavailable'

/** A refresh homed in a region that could not be reached (`relogin`): log in again. */
export class HomeUnreachable extends OAuthError {
  constructor(home: string) {
    super(400, 'invalid_grant', HOME_UNREACHABLE_DESCRIPTION, {
      code: 'home_unreachable',
      check: home,
    })
  }
}

export class UnsupportedGrantType extends OAuthError {
  constructor() {
    super(400, 'unsupported_grant_type', 'grant_type must be refresh_token')
  }
}

export class InvalidScope extends OAuthError {
  constructor() {
    super(400, 'invalid_scope', 'requested scope is not allowed for this client')
  }
}

/**
 * RFC 6750 §3 and RFC 9449 §7.1: a protected route takes a bearer token, or a
 * DPoP-bound one with a proof signed by one of these algorithms.
 */
const TOKEN_CHALLENGE = `Bearer error="invalid_token", DPoP error="invalid_token", algs="${DPOP_ALGORITHMS.join(' ')}"`

/** The access token is refused. Its code says which check failed, for the logs only. */
export class InvalidToken extends OAuthError {
  constructor(code: TokenRefusal, check?: string) {
    super(401, 'invalid_token', 'the access token is missing, invalid or expired', {
      code,
      check,
      headers: { 'WWW-Authenticate': TOKEN_CHALLENGE },
    })
  }
}

/**
 * A DPoP proof (RFC 9449 §4.3) that is missing where one is required, or that
 * fails a check. `reason` names the check in fixed words of ours, never the
 * proof's content: it goes to the client too, since a developer whose proofs
 * are refused needs to know which rule they broke, and the proof is theirs.
 */
export class InvalidDpopProof extends OAuthError {
  constructor(reason: string) {
    super(400, 'invalid_dpop_proof', `invalid DPoP proof: ${reason}`, { detail: reason })
  }
}

/**
 * RFC 9449 §8: the client must put one of our nonces in its proof. The fresh
 * nonce rides in the `DPoP-Nonce` header; the client signs a new proof with it
 * and retries. Nothing was consumed, so the retry carries the same grant.
 */
export class UseDpopNonce extends OAuthError {
  constructor(nonce: string, code: NonceRefusal) {
    super(400, 'use_dpop_nonce', 'the DPoP proof must carry the nonce in the DPoP-Nonce header', {
      code,
      headers: { 'DPoP-Nonce': nonce },
    })
  }
}

export class NotFound extends OAuthError {
  constructor(description = 'not found') {
    super(404, 'not_found', description)
  }
}

export class TooManyRequests extends OAuthError {
  constructor(retryAfterSeconds: number, code: ThrottleRefusal) {
    super(429, 'slow_down', 'too many attempts, try again later', {
      code,
      headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    })
  }
}

/**
 * A dependency (KMS, DynamoDB) failed or timed out. Nothing was committed that
 * the client could lose: retrying with the same refresh token is safe.
 */
export class TemporarilyUnavailable extends OAuthError {
  constructor(detail: string, options: { retryAfterSeconds?: number; cause?: unknown } = {}) {
    super(503, 'temporarily_unavailable', 'the service is temporarily unavailable, retry shortly', {
      detail,
      cause: options.cause,
      headers: { 'Retry-After': String(options.retryAfterSeconds ?? 1) },
    })
  }
}

/** Anything that is not an `OAuthError` becomes this: a 500 that reveals nothing. */
export class ServerError extends OAuthError {
  constructor(detail: string, cause?: unknown) {
    super(500, 'server_error', 'internal error', { detail, cause })
  }
}
