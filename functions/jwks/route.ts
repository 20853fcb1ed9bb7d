import type { Route } from '../adapters/http.js'
import { DPOP_ALGORITHMS } from '../core/dpop-algorithms.js'
import { NotFound } from '../core/errors.js'
import type { Signer } from '../core/ports.js'

export interface JwksDeps {
  readonly issuer: string
  /** Publishes the keys (KMS `GetPublicKey`, memoized per container). */
  readonly signer: Pick<Signer, 'alg' | 'publicKeys'>
  readonly jwksMaxAgeSeconds: number
}

/**
 * `GET /.well-known/jwks.json` and the two discovery documents (RFC 8414 and
 * OpenID Connect Discovery), which carry the same metadata.
 */
export const jwksRoute: Route<JwksDeps> = async (request, deps) => {
  const cache = { 'Cache-Control': `public, max-age=${deps.jwksMaxAgeSeconds}` }
  if (request.path.endsWith('/jwks.json')) {
    return { status: 200, headers: cache, body: { keys: await deps.signer.publicKeys() } }
  }
  if (
    request.path.endsWith('/openid-configuration') ||
    request.path.endsWith('/oauth-authorization-server')
  ) {
    return { status: 200, headers: cache, body: discovery(deps.issuer, deps.signer.alg) }
  }
  throw new NotFound()
}

export function discovery(issuer: string, alg: string) {
  return {
    issuer,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    token_endpoint: `${issuer}/token`,
    revocation_endpoint: `${issuer}/revoke`,
    grant_types_supported: ['refresh_token'],
    // No authorization endpoint: no response type is offered (OAuth 2.0 Multiple Response Types).
    response_types_supported: ['none'],
    token_endpoint_auth_methods_supported: ['none'],
    revocation_endpoint_auth_methods_supported: ['none'],
    subject_types_supported: ['public'],
    // The access tokens' algorithm, so that OIDC-discovery verifiers (the HTTP API
    // JWT authorizer among them) accept this document.
    id_token_signing_alg_values_supported: [alg],
    // RFC 9449 §5.1: the proof algorithms /login, /token and the authorizer accept.
    dpop_signing_alg_values_supported: [...DPOP_ALGORITHMS],
  }
}
