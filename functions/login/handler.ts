import { assertOrigin, httpHandler, optionalParam, param, type Route } from '../adapters/http.js'
import { tokenResponse } from '../adapters/token-response.js'
import { login } from '../core/login.js'
import { findClient } from '../core/service.js'

/** `POST /login`: username, password, client_id, optional scope. */
export const loginRoute: Route = async (request, { config, deps }) => {
  const client = findClient(deps.settings, param(request, 'client_id'))
  if (client.cookieMode) assertOrigin(request, client)
  const result = await login(
    deps,
    {
      username: param(request, 'username'),
      password: param(request, 'password'),
      clientId: client.clientId,
      scope: optionalParam(request, 'scope'),
      userAgent: request.headers['user-agent'],
    },
    config.loginBackoff,
  )
  return tokenResponse(result, deps.clock.now())
}

export const handler = httpHandler(loginRoute, { body: true, warmKeys: 'active' })
