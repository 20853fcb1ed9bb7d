/**
 * DPoP at the token endpoint (RFC 9449 §5, docs/design.md "DPoP"): `/login`
 * and `/token` check the request's proof against the client's policy before
 * anything is read or written, and record its single use alongside their
 * first read. The binding rules (a session keeps its login's key; every
 * refresh proves it) live in login.ts and refresh.ts.
 */
import type { Client } from './clients.js'
import type { Clock } from './clock.js'
import {
  type DpopNonceCheck,
  type DpopProof,
  type DpopReplayStore,
  type DpopVerifier,
  useProofOnce,
} from './dpop.js'
import { InvalidDpopProof } from './errors.js'

/** The request's proof, as `DpopGrant.check` needs it. */
export interface ProofRequest {
  /** The `DPoP` header's value; undefined when the request has none. */
  readonly proof: string | undefined
  /** The request's method. */
  readonly method: string
  /**
   * The endpoint's URIs: as discovery names it (`<issuer>/token`), and as the
   * request reached us (another host name of the same API, a proxy in front
   * of it). The proof's `htu` must be one of them.
   */
  readonly uris: readonly string[]
}

export interface DpopGrantDeps {
  readonly verifier: Pick<DpopVerifier, 'verify'>
  /**
   * Our nonces, for clients with `dpop_nonce` (dpop-nonce.ts). Their key may
   * come from KMS, hence the promise; only nonce clients ever call it.
   */
  readonly nonces: () => Promise<DpopNonceCheck>
  /** Where proofs used here are kept for their window (single use). */
  readonly replay: DpopReplayStore
  readonly clock: Clock
}

/** `/login` and `/token`'s side of DPoP: the proof's checks, its single use, our nonces. */
export class DpopGrant {
  readonly #deps: DpopGrantDeps

  constructor(deps: DpopGrantDeps) {
    this.#deps = deps
  }

  /**
   * The request's proof, verified (RFC 9449 §4.3) under the client's policy,
   * or undefined when there is none and the client may go without. Stateless:
   * a refusal (`InvalidDpopProof`) or a nonce challenge (`UseDpopNonce`)
   * leaves everything as it was, so the client's retry carries the same grant.
   */
  async check(client: Client, request: ProofRequest): Promise<DpopProof | undefined> {
    if (client.dpop === 'disabled') return undefined
    if (request.proof === undefined) {
      if (client.dpop === 'required') throw new InvalidDpopProof('this client must send a proof')
      return undefined
    }
    const nonces = client.dpopNonce ? await this.#deps.nonces() : undefined
    return this.#deps.verifier.verify(request.proof, {
      method: request.method,
      uri: request.uris,
      ...(nonces && { nonces }),
    })
  }

  /** Records the proof's use; `InvalidDpopProof` if it was used before (§11.1). */
  use(proof: DpopProof): Promise<void> {
    return useProofOnce(this.#deps.replay, proof, this.#deps.clock)
  }

  /**
   * The `DPoP-Nonce` header for an answer to a nonce client that sent a proof
   * (§8.2): a fresh nonce before the one it used runs out. None otherwise.
   */
  async nonceHeader(
    client: Client,
    proof: DpopProof | undefined,
  ): Promise<Record<string, string> | undefined> {
    if (!client.dpopNonce || proof === undefined) return undefined
    return { 'DPoP-Nonce': (await this.#deps.nonces()).issue() }
  }
}

/** What login and refresh use of `DpopGrant`: the single use, next to their first read. */
export type ProofUse = Pick<DpopGrant, 'use'>

/**
 * Runs `read` and, if there is a proof, records its use alongside: one network
 * stage. A proof used before is reported first (`onReplay`, with what the read
 * found, if it did), then refused.
 */
export async function readWithProof<T>(
  dpop: ProofUse,
  proof: DpopProof | undefined,
  read: () => Promise<T>,
  onReplay: (found: T | undefined) => Promise<void> = async () => {},
): Promise<T> {
  const [result, used] = await Promise.allSettled([
    read(),
    proof ? dpop.use(proof) : Promise.resolve(),
  ])
  // A replay is the answer even when the read failed: retrying that proof cannot succeed.
  if (used.status === 'rejected') {
    // `use` refuses a replay alone with InvalidDpopProof; a fault recording it is no replay.
    if (used.reason instanceof InvalidDpopProof) {
      await onReplay(result.status === 'fulfilled' ? result.value : undefined)
    }
    throw used.reason
  }
  if (result.status === 'rejected') throw result.reason
  return result.value
}
