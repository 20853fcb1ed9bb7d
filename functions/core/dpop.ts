/**
 * DPoP proofs (RFC 9449, docs/design.md "DPoP"): the checks of §4.3 on one
 * `DPoP` header, the key's RFC 7638 thumbprint (`jkt`) that tokens are bound
 * to, and the single use of a proof (§11.1).
 *
 * Verified with `node:crypto` and `KeyObject`s, as the authorizer verifies
 * access tokens (authorizer/verify.ts), rather than with jose: the authorizer
 * checks a proof on every request, and jose's WebCrypto path costs several
 * times more per signature.
 *
 * One key, one thumbprint; one proof, one identity:
 * - every base64url part must be canonical (no padding, no stray trailing
 *   bits), and the key's members are refused with leading zero bytes, so that
 *   one key has exactly one `jkt`;
 * - a proof's identity is its key and its `jti`, both under the signature. An
 *   ECDSA signature can be re-encoded (S and n - S both verify), which is why
 *   nothing keys on the signature bytes. High-S signatures are accepted: about
 *   half of what WebCrypto, jose and oauth4webapi sign has a high S.
 */
import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto'
import type { Clock } from './clock.js'
import { DPOP_ALGORITHMS, type DpopAlgorithm } from './dpop-algorithms.js'
import { InvalidDpopProof, UseDpopNonce } from './errors.js'

export { DPOP_ALGORITHMS, type DpopAlgorithm }

export interface DpopSettings {
  /** A proof is accepted until this long after its `iat`. @default 60 */
  readonly maxAgeSeconds?: number
  /** Clock skew allowed between the client and us, either way, on `iat`. @default 30 */
  readonly skewSeconds?: number
  /** The algorithms accepted. @default DPOP_ALGORITHMS */
  readonly algorithms?: readonly DpopAlgorithm[]
  /** Longer proofs are refused before anything is decoded. @default 8192 */
  readonly maxProofBytes?: number
}

/** Our stateless nonces (dpop-nonce.ts), as a proof check needs them. */
export interface DpopNonceCheck {
  /** True for a nonce we issued that has not expired. */
  check(nonce: string): boolean
  /** A current nonce, for the `DPoP-Nonce` header. */
  issue(): string
}

/** The request a proof came with. */
export interface DpopRequest {
  /** The request's method as received, for example `POST`. */
  readonly method: string
  /**
   * The request's target URI as clients address it (`https://auth.example.com/token`),
   * or every name it goes by (the issuer's, and the one the request reached us
   * under): `htu` must be one of them. Any query and fragment are ignored.
   */
  readonly uri: string | readonly string[]
  /** The access token the request presents (at a resource server): `ath` must be its hash. */
  readonly accessToken?: string
  /** When given, the proof must carry one of these nonces, or `UseDpopNonce` is thrown. */
  readonly nonces?: DpopNonceCheck
}

/** A proof that passed every check of `DpopVerifier.verify`. */
export interface DpopProof {
  /** The RFC 7638 thumbprint of the proof's key: what a bound token carries as `cnf.jkt`. */
  readonly jkt: string
  readonly jti: string
  readonly alg: DpopAlgorithm
  /** The proof's `iat` (epoch seconds, as sent). */
  readonly iat: number
  /** Epoch ms after which the proof is refused as too old: its `jti` is kept until then. */
  readonly acceptedUntil: number
  /** The nonce the proof carried, if any. */
  readonly nonce?: string
}

/** A proof's public key: only the members RFC 7638 hashes, nothing private. */
export type DpopPublicJwk =
  | { readonly kty: 'EC'; readonly crv: 'P-256'; readonly x: string; readonly y: string }
  | { readonly kty: 'RSA'; readonly n: string; readonly e: string }
  | { readonly kty: 'OKP'; readonly crv: 'Ed25519'; readonly x: string }

/** RFC 7515 §4.1.9: `typ` is a media type, compared without case, `application/` optional. */
const TYPES: ReadonlySet<string> = new Set(['dpop+jwt', 'application/dpop+jwt'])

/**
 * Header members a proof must not carry: another place to find a key (the key
 * is `jwk`, nothing else), or extensions we do not implement (`crit`, `b64`).
 */
const FOREIGN_HEADERS = ['jku', 'x5u', 'x5c', 'x5t', 'x5t#S256', 'crit', 'b64', 'zip', 'enc']

/** JWK members that hold private or symmetric key material (RFC 7518 §6). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
const MAX_JTI = 256
const MAX_HTU = 2048
const MAX_NONCE = 256
/** RSA proof keys: smaller ones are weak, larger ones make every verify slow (a cheap DoS). */
const RSA_BITS = { min: 2048, max: 4096 }
const MAX_CACHED_HEADERS = 1024
const MAX_CACHED_TARGETS = 64

interface CheckedHeader {
  readonly alg: DpopAlgorithm
  readonly key: KeyObject
  readonly jkt: string
}

/**
 * Checks DPoP proofs (RFC 9449 §4.3). Each check is one guard; a refusal is
 * an `InvalidDpopProof` naming the check, or `UseDpopNonce` when only the
 * nonce is missing or stale (after every other check passed, so a client is
 * never sent round for a nonce with a proof that would fail anyway).
 */
export class DpopVerifier {
  readonly #clock: Clock
  readonly #maxAgeMs: number
  readonly #skewMs: number
  readonly #algorithms: ReadonlySet<string>
  readonly #maxProofBytes: number
  /** Header segments already checked: a client sends the same header with every proof. */
  readonly #headers = new Map<string, CheckedHeader>()
  /** Request URIs already normalized: a function serves a few. */
  readonly #targets = new Map<string, string | undefined>()

  constructor(clock: Clock, settings: DpopSettings = {}) {
    this.#clock = clock
    this.#maxAgeMs = (settings.maxAgeSeconds ?? 60) * 1000
    this.#skewMs = (settings.skewSeconds ?? 30) * 1000
    this.#algorithms = new Set(settings.algorithms ?? DPOP_ALGORITHMS)
    this.#maxProofBytes = settings.maxProofBytes ?? 8192
  }

  /** Verifies the `DPoP` header's value for `request`; see the class comment for errors. */
  verify(proof: string, request: DpopRequest): DpopProof {
    if (proof.length > this.#maxProofBytes) throw new InvalidDpopProof('proof too large')
    if (proof.includes(',')) throw new InvalidDpopProof('more than one DPoP header')
    if (!COMPACT_JWS.test(proof)) throw new InvalidDpopProof('not a compact JWS')
    const [headerSegment, payloadSegment, signatureSegment] = proof.split('.') as [
      string,
      string,
      string,
    ]

    const header = this.#headers.get(headerSegment) ?? this.#checkHeader(headerSegment)
    const signature = canonicalBytes(signatureSegment, 'signature')
    if (!signatureIsValid(header, `${headerSegment}.${payloadSegment}`, signature)) {
      throw new InvalidDpopProof('signature does not verify with the jwk')
    }
    if (!this.#headers.has(headerSegment)) {
      if (this.#headers.size >= MAX_CACHED_HEADERS) this.#headers.clear()
      this.#headers.set(headerSegment, header)
    }
    return this.#checkClaims(header, decodeObject(payloadSegment, 'payload'), request)
  }

  #checkHeader(segment: string): CheckedHeader {
    const header = decodeObject(segment, 'header')
    if (typeof header.typ !== 'string' || !TYPES.has(header.typ.toLowerCase())) {
      throw new InvalidDpopProof('typ is not dpop+jwt')
    }
    if (typeof header.alg !== 'string' || !this.#algorithms.has(header.alg)) {
      throw new InvalidDpopProof('alg not allowed')
    }
    for (const member of FOREIGN_HEADERS) {
      if (Object.hasOwn(header, member)) throw new InvalidDpopProof(`header carries ${member}`)
    }
    const alg = header.alg as DpopAlgorithm
    const jwk = publicJwkOf(header.jwk, alg)
    return { alg, key: keyObjectOf(jwk), jkt: jwkThumbprint(jwk) }
  }

  /** The request URI, normalized, from the cache when it was seen before. */
  #normalizedUri(uri: string): string | undefined {
    if (this.#targets.has(uri)) return this.#targets.get(uri)
    if (this.#targets.size >= MAX_CACHED_TARGETS) this.#targets.clear()
    const normalized = normalizeHtu(uri)
    this.#targets.set(uri, normalized)
    return normalized
  }

  /** True when `htu` names `uri` (§4.3 step 9); the same string needs no parsing. */
  #names(htu: string, uri: string): boolean {
    const target = this.#normalizedUri(uri)
    return target !== undefined && (htu === uri || normalizeHtu(htu) === target)
  }

  #checkClaims(
    header: CheckedHeader,
    claims: Record<string, unknown>,
    request: DpopRequest,
  ): DpopProof {
    const { jti, htm, htu, iat, ath, nonce } = claims
    if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI) {
      throw new InvalidDpopProof('jti missing or malformed')
    }
    if (htm !== request.method) throw new InvalidDpopProof('htm does not match the request')
    if (typeof htu !== 'string' || htu.length > MAX_HTU) throw new InvalidDpopProof('htu missing')
    const named =
      typeof request.uri === 'string'
        ? this.#names(htu, request.uri)
        : request.uri.some((uri) => this.#names(htu, uri))
    if (!named) {
      throw new InvalidDpopProof('htu does not match the request')
    }
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new InvalidDpopProof('iat missing')
    const now = this.#clock.now()
    const issuedAt = iat * 1000
    if (issuedAt > now + this.#skewMs) throw new InvalidDpopProof('iat is in the future')
    const acceptedUntil = issuedAt + this.#maxAgeMs + this.#skewMs
    if (now > acceptedUntil) throw new InvalidDpopProof('iat is too old')
    if (request.accessToken !== undefined && ath !== accessTokenHash(request.accessToken)) {
      throw new InvalidDpopProof('ath does not match the access token')
    }
    if (nonce !== undefined && (typeof nonce !== 'string' || nonce.length > MAX_NONCE)) {
      throw new InvalidDpopProof('nonce malformed')
    }
    if (request.nonces && (nonce === undefined || !request.nonces.check(nonce))) {
      throw new UseDpopNonce(
        request.nonces.issue(),
        nonce === undefined ? 'dpop_nonce_missing' : 'dpop_nonce_stale',
      )
    }
    return {
      jkt: header.jkt,
      jti,
      alg: header.alg,
      iat,
      acceptedUntil,
      ...(nonce === undefined ? {} : { nonce }),
    }
  }
}

/**
 * Single use of a proof at the token endpoint (RFC 9449 §11.1): where proofs'
 * `jti`s are kept, per key, for as long as each proof is acceptable.
 */
export interface DpopReplayStore {
  /**
   * Records the key's `jti` until `proof.acceptedUntil` (epoch ms). False when
   * the same key's `jti` is recorded already and its record has not ended by
   * `now`: a replay. Concurrent calls with one `jti`: exactly one gets true.
   */
  recordProof(
    proof: Pick<DpopProof, 'jkt' | 'jti' | 'acceptedUntil'>,
    now: number,
  ): Promise<boolean>
}

/** Refuses a proof whose `jti` its key has used before (§11.1). Call after `verify`. */
export async function useProofOnce(
  store: DpopReplayStore,
  proof: DpopProof,
  clock: Clock,
): Promise<void> {
  if (!(await store.recordProof(proof, clock.now()))) {
    throw new InvalidDpopProof('proof already used')
  }
}

/** RFC 7638: the SHA-256 thumbprint of a public key's required members, base64url. */
export function jwkThumbprint(jwk: DpopPublicJwk): string {
  // Members in lexicographic order, no whitespace; the values are base64url, so JSON adds no escapes.
  const canonical =
    jwk.kty === 'RSA'
      ? JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n })
      : jwk.kty === 'EC'
        ? JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })
        : JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x })
  return createHash('sha256').update(canonical).digest('base64url')
}

/** `ath` (RFC 9449 §4.2): the base64url SHA-256 of the access token's ASCII. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url')
}

/**
 * The form `htu` and the request URI are compared in (RFC 9449 §4.3 step 9,
 * RFC 3986 §6.2.2 and §6.2.3): scheme and host lower-cased, the default port
 * and any query and fragment dropped, dot segments removed, an empty path as
 * `/`, percent-encoding upper-cased and unreserved characters decoded.
 * Undefined for anything that is not an absolute http(s) URI without userinfo.
 */
export function normalizeHtu(uri: string): string | undefined {
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return undefined
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined
  if (url.username !== '' || url.password !== '') return undefined
  const path = url.pathname.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const char = String.fromCharCode(Number.parseInt(hex, 16))
    return /[A-Za-z0-9\-._~]/.test(char) ? char : `%${hex.toUpperCase()}`
  })
  return `${url.protocol}//${url.host}${path}`
}

/**
 * The `jwk` header member as a public key of the kind `alg` needs: no private
 * member, every member canonical base64url of the right size, nothing else
 * in the hashed members. A `jwk.alg`, if present, must be the header's.
 */
function publicJwkOf(value: unknown, alg: DpopAlgorithm): DpopPublicJwk {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidDpopProof('jwk missing')
  }
  const jwk = value as Record<string, unknown>
  for (const member of PRIVATE_MEMBERS) {
    if (Object.hasOwn(jwk, member)) throw new InvalidDpopProof('jwk carries a private key')
  }
  if (jwk.alg !== undefined && jwk.alg !== alg) throw new InvalidDpopProof('jwk alg is not alg')
  if (jwk.use !== undefined && jwk.use !== 'sig') throw new InvalidDpopProof('jwk use is not sig')
  switch (alg) {
    case 'ES256':
      if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') throw new InvalidDpopProof('jwk is not P-256')
      return {
        kty: 'EC',
        crv: 'P-256',
        x: keyMember(jwk.x, 'x', 32, 32),
        y: keyMember(jwk.y, 'y', 32, 32),
      }
    case 'RS256': {
      if (jwk.kty !== 'RSA') throw new InvalidDpopProof('jwk is not RSA')
      const n = keyMember(jwk.n, 'n', RSA_BITS.min / 8, RSA_BITS.max / 8)
      const e = keyMember(jwk.e, 'e', 1, 4)
      return { kty: 'RSA', n, e }
    }
    case 'EdDSA':
    case 'Ed25519':
      if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') {
        throw new InvalidDpopProof('jwk is not Ed25519')
      }
      return { kty: 'OKP', crv: 'Ed25519', x: keyMember(jwk.x, 'x', 32, 32) }
  }
}

/**
 * One key member: canonical base64url of `min`..`max` bytes. Integers (RSA's
 * `n`, `e`) must not start with a zero byte, or one key would have two
 * thumbprints; the EC and OKP members are fixed-length strings of bytes.
 */
function keyMember(value: unknown, name: string, min: number, max: number): string {
  if (typeof value !== 'string') throw new InvalidDpopProof(`jwk ${name} missing`)
  const bytes = canonicalBytes(value, `jwk ${name}`)
  if (bytes.length < min || bytes.length > max) {
    throw new InvalidDpopProof(`jwk ${name} has the wrong size`)
  }
  if (min !== max && bytes[0] === 0) throw new InvalidDpopProof(`jwk ${name} has a leading zero`)
  return value
}

function keyObjectOf(jwk: DpopPublicJwk): KeyObject {
  let key: KeyObject
  try {
    // Node refuses an EC point that is not on the curve.
    key = createPublicKey({ key: { ...jwk }, format: 'jwk' })
  } catch {
    throw new InvalidDpopProof('jwk is not a valid key')
  }
  if (jwk.kty === 'RSA') {
    const { modulusLength = 0, publicExponent = 0n } = key.asymmetricKeyDetails ?? {}
    if (modulusLength < RSA_BITS.min) throw new InvalidDpopProof('RSA key too small')
    if (publicExponent < 3n || publicExponent % 2n === 0n) {
      throw new InvalidDpopProof('RSA exponent not allowed')
    }
  }
  return key
}

function signatureIsValid(header: CheckedHeader, signingInput: string, signature: Buffer): boolean {
  const data = Buffer.from(signingInput)
  try {
    switch (header.alg) {
      case 'ES256':
        // JWS carries R||S (RFC 7518 §3.4), 64 bytes for P-256.
        return (
          signature.length === 64 &&
          verify('sha256', data, { key: header.key, dsaEncoding: 'ieee-p1363' }, signature)
        )
      case 'RS256':
        return verify('sha256', data, header.key, signature)
      case 'EdDSA':
      case 'Ed25519':
        return signature.length === 64 && verify(null, data, header.key, signature)
    }
  } catch {
    return false
  }
}

/**
 * Bytes of a base64url string, refused unless the string is the one encoding
 * of those bytes (Node's decoder skips stray characters and trailing bits).
 */
function canonicalBytes(segment: string, part: string): Buffer {
  if (!BASE64URL.test(segment) || !spareBitsClear(segment)) {
    throw new InvalidDpopProof(`${part} is not canonical base64url`)
  }
  return Buffer.from(segment, 'base64url')
}

const BASE64URL = /^[A-Za-z0-9_-]*$/
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/**
 * A base64url string is the one encoding of its bytes when no character is
 * left over (length % 4 is not 1) and the bits its last character carries
 * beyond the last byte are zero (4 of them when length % 4 is 2, 2 when 3).
 */
function spareBitsClear(segment: string): boolean {
  const rest = segment.length % 4
  if (rest === 0) return true
  if (rest === 1) return false
  const last = ALPHABET.indexOf(segment.charAt(segment.length - 1))
  return last % (rest === 2 ? 16 : 4) === 0
}

function decodeObject(segment: string, part: string): Record<string, unknown> {
  const bytes = canonicalBytes(segment, part)
  let value: unknown
  try {
    value = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw new InvalidDpopProof(`${part} is not JSON`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidDpopProof(`${part} is not a JSON object`)
  }
  return value as Record<string, unknown>
}
