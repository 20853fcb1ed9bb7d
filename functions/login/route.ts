import { assertOrigin, optionalParam, param, type Route, requestOrigin } from '../adapters/http.js'
import { tokenResponse } from '../adapters/token-response.js'
import type { Client } from '../core/clients.js'
import type { DpopGrant } from '../core/dpop-grant.js'
import { type LoginDeps as CoreLoginDeps, login } from '../core/login.js'
import { findClient } from '../core/service.js'
import type { BackoffPolicy } from '../core/throttle.js'

export interface LoginDeps extends CoreLoginDeps {
  readonly clients: ReadonlyMap<string, Client>
  readonly loginBackoff: BackoffPolicy
  readonly dpop: DpopGrant
}

/**
 * `POST /login`: username, password, client_id, optional scope, and a `DPoP`
 * proof that binds the session, checked first: a refused proof or a nonce
 * challenge is not a failed login and costs no throttle turn.
 */
export const loginRoute: Route<LoginDeps> = async (request, deps) => {
  const client = findClient(deps.clients, param(request, 'client_id'))
  if (client.cookieMode) assertOrigin(request, client)
  const proof = await deps.dpop.check(client, {
    proof: request.headers.dpop,
    method: request.method,
    uris: [`${deps.settings.issuer}/login`, request.url],
  })
  // Before anything commits: nothing may fail once the session is written.
  const nonce = await deps.dpop.nonceHeader(client, proof)
  const result = await login(
    deps,
    {
      username: param(request, 'username'),
      password: param(request, 'password'),
      client,
      scope: optionalParam(request, 'scope'),
      ...requestOrigin(request),
      proof,
    },
    deps.loginBackoff,
  )
  return tokenResponse(result, deps.clock.now(), nonce)
}
