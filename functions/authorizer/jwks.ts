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
    const text = await readCapped(response, maxBytes)
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

/**
 * The body as text, read no further than `maxBytes`: a response that
 * announces more is refused unread, and one that streams more is cut off as
 * soon as it passes the cap, so a huge (or endless) answer costs at most the
 * cap in memory.
 */
async function readCapped(response: Response, maxBytes: number): Promise<string> {
  const tooLarge = () => new TemporarilyUnavailable('JWKS too large')
  const announced = Number(response.headers.get('content-length') ?? 0)
  const reader = response.body?.getReader()
  if (!reader) return ''
  if (announced > maxBytes) {
    await reader.cancel().catch(() => undefined)
    throw tooLarge()
  }
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > maxBytes) {
        await reader.cancel().catch(() => undefined)
        throw tooLarge()
      }
      chunks.push(value)
    }
  } catch (error) {
    if (error instanceof TemporarilyUnavailable) throw error
    throw new TemporarilyUnavailable('JWKS unreachable', { cause: error })
  }
  return new TextDecoder().decode(Buffer.concat(chunks))
}
