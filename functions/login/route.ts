import { assertOrigin, optionalParam, param, type Route, requestOrigin } from '../adapters/http.js'
import { tokenResponse } from '../adapters/token-response.js'
import type { Client } from '../core/clients.js'
import { type LoginDeps as CoreLoginDeps, login } from '../core/login.js'
import { findClient } from '../core/service.js'
import type { BackoffPolicy } from '../core/throttle.js'

export interface LoginDeps extends CoreLoginDeps {
  readonly clients: ReadonlyMap<string, Client>
  readonly loginBackoff: BackoffPolicy
}

/** `POST /login`: username, password, client_id, optional scope. */
export const loginRoute: Route<LoginDeps> = async (request, deps) => {
  const client = findClient(deps.clients, param(request, 'client_id'))
  if (client.cookieMode) assertOrigin(request, client)
  const result = await login(
    deps,
    {
      username: param(request, 'username'),
      password: param(request, 'password'),
      client,
      scope: optionalParam(request, 'scope'),
      ...requestOrigin(request),
    },
    deps.loginBackoff,
  )
  return tokenResponse(result, deps.clock.now())
}
