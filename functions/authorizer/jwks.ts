import { readCapped } from '../adapters/capped-body.js'
import { TemporarilyUnavailable } from '../core/errors.js'
import type { PublicJwk } from '../core/ports.js'

/**
 * Fetches a JWKS over HTTPS, as any standard verifier does (aws-jwt-verify,
 * API Gateway's JWT authorizer): the authorizer needs no AWS client and no KMS
 * permission. Keys that are not RS256 or ES256 signing keys are skipped here;
 * `toVerificationKey` refuses a key that does not fit its `alg`.
 */
export function jwksFetcher(
  uri: string,
  options: { readonly timeoutMs: number; readonly maxBytes?: number },
): () => Promise<PublicJwk[]> {
  const maxBytes = options.maxBytes ?? 64 * 1024
  return async () => {
    let response: Response
    try {
      response = await fetch(uri, {
        headers: { accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(options.timeoutMs),
      })
    } catch (error) {
      throw new TemporarilyUnavailable('JWKS unreachable', { cause: error })
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined)
      throw new TemporarilyUnavailable(`JWKS answered ${response.status}`)
    }
    const body = await readCapped(response, maxBytes).catch((error: unknown) => {
      throw new TemporarilyUnavailable('JWKS unreachable', { cause: error })
    })
    if (body === 'too large') throw new TemporarilyUnavailable('JWKS too large')
    const text = body.text
    let keys: unknown
    try {
      keys = (JSON.parse(text) as { keys?: unknown }).keys
    } catch {
      throw new TemporarilyUnavailable('JWKS is not JSON')
    }
    if (!Array.isArray(keys)) throw new TemporarilyUnavailable('JWKS has no keys')
    return keys.filter(
      (key): key is PublicJwk =>
        typeof key === 'object' &&
        key !== null &&
        typeof key.kid === 'string' &&
        (key.alg === 'RS256' || key.alg === 'ES256') &&
        (key.use === undefined || key.use === 'sig'),
    )
  }
}
