import type { Route } from '../adapters/http.js'
import { callerClaims } from '../authorizer/context.js'

/** `GET /me`: the example protected route. Returns the claims the authorizer verified. */
export const meRoute: Route<unknown> = async (request) => ({
  status: 200,
  body: callerClaims(request.authorizer),
})
