/**
 * DPoP at the resource server (RFC 9449 §7, docs/design.md "DPoP"): what the
 * authorizer checks, once a token's signature and claims passed, about how
 * the token was presented.
 *
 * Replay: a proof's `jti` is remembered by this container only, for the
 * proof's window. A proof replayed to another container (or after a cold
 * start) within its window is not caught here; what bounds such a replay is
 * the window itself (`iat` + max age + skew), the `htm`/`htu` of the one
 * request it was made for, and the `ath` of the one token it goes with.
 */
import type { Clock } from '../core/clock.js'
import {
  type DpopProof,
  type DpopReplayStore,
  type DpopSettings,
  DpopVerifier,
} from '../core/dpop.js'
import { InvalidDpopProof, InvalidToken } from '../core/errors.js'
import type { TokenVerifier, VerifiedClaims } from './verify.js'

/** The `Authorization` header, parsed. */
export interface Credential {
  readonly scheme: 'Bearer' | 'DPoP'
  readonly token: string
}

/**
 * RFC 6750 §2.1 and RFC 9449 §7.1: `Bearer` or `DPoP` (any case), spaces, the
 * token; surrounding spaces allowed. Undefined for any other scheme or shape.
 */
export function credentialOf(authorization: string): Credential | undefined {
  const space = authorization.indexOf(' ')
  if (space < 0) return undefined
  const scheme = authorization.slice(0, space).toLowerCase()
  const token = authorization.slice(space + 1).trim()
  if (token === '' || token.includes(' ')) return undefined
  if (scheme === 'bearer') return { scheme: 'Bearer', token }
  if (scheme === 'dpop') return { scheme: 'DPoP', token }
  return undefined
}

/** What the check needs of the request besides its `Authorization` header. */
export interface ProtectedRequest {
  /** The `DPoP` header's value, if any. */
  readonly dpop: string | undefined
  /** The request's method, for example `GET`. */
  readonly method: string
  /** The request's URI as the client addressed it (`https://api.example.com/me`). */
  readonly uri: string
}

export interface ProofOfPossessionOptions {
  readonly clock: Clock
  /** The proof checks' window, skew and algorithms. @default the DpopVerifier defaults */
  readonly settings?: DpopSettings
  /** Proofs remembered by this container, against replays. @default 10000 */
  readonly replayCacheSize?: number
}

/**
 * RFC 9449 §7 on a verified access token: a token bound to a key (`cnf.jkt`)
 * passes only under the `DPoP` scheme with a proof of that key, made for this
 * request and this token (`htm`, `htu`, `ath`), not seen before by this
 * container; a bound token sent as `Bearer` is refused (§7.2, a downgrade).
 * An unbound token passes only as `Bearer`.
 */
export class ProofOfPossession {
  readonly #clock: Clock
  readonly #verifier: DpopVerifier
  readonly #seen: MemoryDpopReplay

  constructor(options: ProofOfPossessionOptions) {
    this.#clock = options.clock
    this.#verifier = new DpopVerifier(options.clock, options.settings)
    this.#seen = new MemoryDpopReplay(options.replayCacheSize)
  }

  /** Throws `InvalidToken` (its code names the rule) unless the token was presented as bound. */
  check(credential: Credential, claims: VerifiedClaims, request: ProtectedRequest): void {
    if (claims.jkt === undefined) {
      if (credential.scheme === 'DPoP') throw new InvalidToken('dpop_scheme_unbound_token')
      return
    }
    if (credential.scheme === 'Bearer') throw new InvalidToken('bound_token_as_bearer')
    if (request.dpop === undefined) throw new InvalidToken('dpop_proof_missing')
    let proof: DpopProof
    try {
      proof = this.#verifier.verify(request.dpop, {
        method: request.method,
        uri: request.uri,
        accessToken: credential.token,
      })
    } catch (error) {
      if (error instanceof InvalidDpopProof)
        throw new InvalidToken('dpop_proof_invalid', error.detail)
      throw error
    }
    if (proof.jkt !== claims.jkt) throw new InvalidToken('dpop_proof_other_key')
    if (!this.#seen.record(proof, this.#clock.now())) {
      throw new InvalidToken('dpop_proof_replayed')
    }
  }
}

/**
 * Proofs seen by this container, each until its end: the authorizer's best
 * effort against replays (see the file comment). Bounded: when full, ended
 * proofs go first, then the oldest, so a flood of proofs cannot grow memory.
 */
export class MemoryDpopReplay implements DpopReplayStore {
  readonly #max: number
  /** `jkt jti` -> the proof's end (epoch ms), in insertion order. */
  readonly #ends = new Map<string, number>()

  constructor(max = 10_000) {
    this.#max = max
  }

  /** The port's form of `record`. */
  recordProof(
    proof: Pick<DpopProof, 'jkt' | 'jti' | 'acceptedUntil'>,
    now: number,
  ): Promise<boolean> {
    return Promise.resolve(this.record(proof, now))
  }

  /** Records the proof; false if its key's `jti` is recorded and not ended by `now`. */
  record(proof: Pick<DpopProof, 'jkt' | 'jti' | 'acceptedUntil'>, now: number): boolean {
    // A thumbprint is 43 characters: the space cannot be forged into a collision.
    const key = `${proof.jkt} ${proof.jti}`
    const end = this.#ends.get(key)
    if (end !== undefined && end >= now) return false
    this.#ends.delete(key)
    if (this.#ends.size >= this.#max) this.#evict(now)
    this.#ends.set(key, proof.acceptedUntil)
    return true
  }

  #evict(now: number): void {
    for (const [key, end] of this.#ends) {
      if (end < now) this.#ends.delete(key)
    }
    // Still full of live proofs: forget the oldest tenth (best effort, as documented).
    if (this.#ends.size >= this.#max) {
      let drop = Math.max(1, Math.floor(this.#max / 10))
      for (const key of this.#ends.keys()) {
        if (drop-- <= 0) break
        this.#ends.delete(key)
      }
    }
  }
}

/** What `authorizeRequest` needs: the token checks and the proof-of-possession checks. */
export interface RequestChecks {
  readonly verifier: Pick<TokenVerifier, 'verify'>
  readonly possession: ProofOfPossession
}

/**
 * The authorizer's verdict on one request, DPoP included: the `Authorization`
 * header's token verified (signature and claims), then presented as its
 * binding requires (`ProofOfPossession.check`). Throws `InvalidToken` for
 * anything it refuses, `TemporarilyUnavailable` when the keys cannot be read.
 */
export async function authorizeRequest(
  checks: RequestChecks,
  authorization: string | undefined,
  request: ProtectedRequest,
): Promise<VerifiedClaims> {
  if (!authorization) throw new InvalidToken('no_authorization_header')
  const credential = credentialOf(authorization)
  if (!credential) throw new InvalidToken('not_bearer_or_dpop')
  const claims = await checks.verifier.verify(credential.token)
  checks.possession.check(credential, claims, request)
  return claims
}
