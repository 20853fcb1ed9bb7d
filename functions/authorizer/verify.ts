import { verify as verifySignature } from 'node:crypto'
import type { Clock } from '../core/clock.js'
import { InvalidToken } from '../core/errors.js'
import { hasLowS } from '../core/es256.js'
import type { KeySet, VerificationKey } from './keys.js'

/** The claims of an access token that passed every check (RFC 9068 plus ours). */
export interface VerifiedClaims {
  readonly iss: string
  readonly sub: string
  readonly aud: string | readonly string[]
  readonly exp: number
  readonly iat: number
  readonly nbf?: number
  readonly jti: string
  readonly client_id: string
  readonly scope: string
  readonly sid: string
  readonly roles: readonly string[]
  readonly username?: string
  /**
   * `cnf.jkt` (RFC 9449 §6.1): the thumbprint of the key the token is bound
   * to. Flattened, since API Gateway contexts hold no objects.
   */
  readonly jkt?: string
}

export interface VerifierSettings {
  /** Compared with `iss` exactly, as a string. */
  readonly issuer: string
  /** `aud` must be (or contain) one of these. */
  readonly audiences: readonly string[]
  /** Allowed clock skew on `exp`, `nbf` and `iat`. */
  readonly skewSeconds: number
  /** Longer tokens are refused before anything is decoded. */
  readonly maxTokenBytes: number
  /** The longest `exp − iat` accepted, beyond the skew: no client issues a longer token. */
  readonly maxLifetimeSeconds: number
  /**
   * How long API Gateway keeps an answer (at most the skew). A token is allowed
   * until `exp + skew − this`, so that a cached Allow ends by `exp + skew` too.
   */
  readonly answerCacheSeconds: number
}

/**
 * Only the algorithms our signers use; never `none`, never HMAC. A token's
 * `alg` must also be the `alg` of the key its `kid` names.
 */
const ALGORITHMS: ReadonlySet<string> = new Set(['RS256', 'ES256'])

/** RFC 9068 §4: `typ` is `at+jwt`; the `application/` prefix may be there (RFC 7515 §4.1.9). */
const TYPES: ReadonlySet<string> = new Set(['at+jwt', 'application/at+jwt'])

/**
 * Header members we never issue and never act on: a token carrying one is
 * not ours. `jku`, `x5u`, `jwk` and `x5c` would name a key of the sender's
 * choosing; `crit` names extensions we do not understand (RFC 7515 §4.1.11),
 * which includes `b64: false` (RFC 7797).
 */
const FOREIGN_HEADERS = ['jku', 'jwk', 'x5u', 'x5c', 'x5t', 'x5t#S256', 'crit', 'b64', 'zip', 'enc']

/** Our `kid`s are RFC 7638 thumbprints: 43 base64url characters. Others are not looked up. */
const KID = /^[A-Za-z0-9_-]{1,128}$/
/** An RFC 7638 SHA-256 thumbprint, base64url. */
const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/**
 * Verifies our access tokens with `node:crypto` and `KeyObject`s parsed once,
 * rather than with jose (whose WebCrypto path costs about 5x per token here)
 * or aws-jwt-verify (which reads `Date.now()` itself, so no injected clock, and
 * checks neither `typ` nor `crit`). Each check is one guard; every refusal is
 * an `InvalidToken` whose code (core/refusals.ts, for the logs only) names the
 * check, never the token.
 */
export class TokenVerifier {
  readonly #keys: KeySet
  readonly #clock: Clock
  readonly #settings: VerifierSettings
  readonly #audiences: ReadonlySet<string>
  /** Header segments that passed `checkHeader` and name a known key. */
  readonly #headers = new Map<string, CheckedHeader>()

  constructor(keys: KeySet, clock: Clock, settings: VerifierSettings) {
    this.#keys = keys
    this.#clock = clock
    this.#settings = settings
    this.#audiences = new Set(settings.audiences)
  }

  async verify(token: string): Promise<VerifiedClaims> {
    if (token.length > this.#settings.maxTokenBytes) throw new InvalidToken('token_too_large')
    if (!COMPACT_JWS.test(token)) throw new InvalidToken('not_compact_jws')
    const firstDot = token.indexOf('.')
    const lastDot = token.lastIndexOf('.')

    const headerSegment = token.slice(0, firstDot)
    const header = this.#headers.get(headerSegment) ?? checkHeader(headerSegment)
    const key = this.#keys.get(header.kid) ?? (await this.#keys.find(header.kid))
    if (!key) throw new InvalidToken('unknown_kid')
    if (key.alg !== header.alg) throw new InvalidToken('alg_not_the_keys')
    // Every token a key signs carries the same header: keep the checked ones (a few at most).
    if (!this.#headers.has(headerSegment)) {
      if (this.#headers.size >= MAX_CACHED_HEADERS) this.#headers.clear()
      this.#headers.set(headerSegment, header)
    }

    const signatureSegment = token.slice(lastDot + 1)
    const signature = Buffer.from(signatureSegment, 'base64url')
    // One token, one string: base64url leaves unused bits in a last character, and
    // ECDSA has a second valid S. Both would give a valid token another spelling,
    // which API Gateway's authorizer cache and any denylist would see as another token.
    // (The header and payload are signed as written, so their spelling is fixed.)
    if (signature.toString('base64url') !== signatureSegment) {
      throw new InvalidToken('signature_not_canonical')
    }
    if (key.alg === 'ES256' && !hasLowS(signature)) throw new InvalidToken('es256_high_s')
    if (!signatureIsValid(key, token.slice(0, lastDot), signature)) {
      throw new InvalidToken('bad_signature')
    }
    return this.#checkClaims(decodeJson(token.slice(firstDot + 1, lastDot), 'payload'))
  }

  #checkClaims(claims: Record<string, unknown>): VerifiedClaims {
    const { issuer, skewSeconds, maxLifetimeSeconds, answerCacheSeconds } = this.#settings
    const now = this.#clock.now() / 1000

    if (claims.iss !== issuer) throw new InvalidToken('wrong_iss')
    if (!this.#audienceMatches(claims.aud)) throw new InvalidToken('wrong_aud')
    const exp = numericDate(claims.exp, 'exp')
    const iat = numericDate(claims.iat, 'iat')
    const nbf = claims.nbf === undefined ? undefined : numericDate(claims.nbf, 'nbf')
    if (now >= exp + skewSeconds - answerCacheSeconds) throw new InvalidToken('token_expired')
    if (nbf !== undefined && now < nbf - skewSeconds) throw new InvalidToken('not_yet_valid')
    if (now < iat - skewSeconds) throw new InvalidToken('issued_in_future')
    // A token that lives longer than any client's tokens was not issued by the
    // service as configured: refuse it whatever its exp.
    if (exp - iat > maxLifetimeSeconds + skewSeconds) throw new InvalidToken('lifetime_too_long')
    const sub = nonEmpty(claims.sub, 'sub')
    const jti = nonEmpty(claims.jti, 'jti')
    const clientId = nonEmpty(claims.client_id, 'client_id')
    const sid = nonEmpty(claims.sid, 'sid')
    if (typeof claims.scope !== 'string') throw new InvalidToken('claim_missing', 'scope')
    const roles = claims.roles
    if (!Array.isArray(roles) || !roles.every((role) => typeof role === 'string')) {
      throw new InvalidToken('claim_missing', 'roles')
    }
    if (claims.username !== undefined && typeof claims.username !== 'string') {
      throw new InvalidToken('username_not_a_string')
    }
    const jkt = confirmedKey(claims.cnf)
    return {
      iss: issuer,
      sub,
      aud: claims.aud as string | string[],
      exp,
      iat,
      ...(nbf === undefined ? {} : { nbf }),
      jti,
      client_id: clientId,
      scope: claims.scope,
      sid,
      roles: roles as string[],
      ...(claims.username === undefined ? {} : { username: claims.username as string }),
      ...(jkt === undefined ? {} : { jkt }),
    }
  }

  #audienceMatches(aud: unknown): boolean {
    if (typeof aud === 'string') return this.#audiences.has(aud)
    return (
      Array.isArray(aud) &&
      aud.length > 0 &&
      aud.every((value) => typeof value === 'string') &&
      aud.some((value) => this.#audiences.has(value))
    )
  }
}

interface CheckedHeader {
  readonly alg: string
  readonly kid: string
}

const MAX_CACHED_HEADERS = 16

/** The JOSE header checks that need no key: `alg`, `typ`, members we refuse, `kid`'s shape. */
function checkHeader(segment: string): CheckedHeader {
  const header = decodeJson(segment, 'header')
  if (typeof header.alg !== 'string' || !ALGORITHMS.has(header.alg)) {
    throw new InvalidToken('alg_not_allowed')
  }
  if (typeof header.typ !== 'string' || !TYPES.has(header.typ.toLowerCase())) {
    throw new InvalidToken('typ_not_at_jwt')
  }
  for (const member of FOREIGN_HEADERS) {
    if (Object.hasOwn(header, member)) throw new InvalidToken('foreign_header', member)
  }
  if (typeof header.kid !== 'string' || !KID.test(header.kid)) {
    throw new InvalidToken('kid_malformed')
  }
  return { alg: header.alg, kid: header.kid }
}

function signatureIsValid(key: VerificationKey, signingInput: string, signature: Buffer): boolean {
  try {
    if (key.alg === 'ES256') {
      // JWS carries R||S (RFC 7518 §3.4), 64 bytes for P-256.
      return (
        signature.length === 64 &&
        verifySignature(
          'sha256',
          Buffer.from(signingInput),
          { key: key.key, dsaEncoding: 'ieee-p1363' },
          signature,
        )
      )
    }
    return verifySignature('sha256', Buffer.from(signingInput), key.key, signature)
  } catch {
    return false
  }
}

function decodeJson(segment: string, part: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
  } catch {
    throw new InvalidToken('not_json', part)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidToken('not_json', part)
  }
  return value as Record<string, unknown>
}

/**
 * The thumbprint in `cnf` (RFC 7800), if any. A `cnf` without a `jkt` binds
 * the token some other way (mTLS's `x5t#S256`): we cannot check that, so
 * the token must not pass as a bearer token.
 */
function confirmedKey(cnf: unknown): string | undefined {
  if (cnf === undefined) return undefined
  const jkt = (cnf as { jkt?: unknown } | null)?.jkt
  if (typeof jkt !== 'string' || !THUMBPRINT.test(jkt)) {
    throw new InvalidToken('cnf_without_jkt')
  }
  return jkt
}

function numericDate(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidToken('date_not_a_number', name)
  }
  return value
}

function nonEmpty(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw new InvalidToken('claim_missing', name)
  return value
}
