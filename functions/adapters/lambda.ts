import { corsOrigins, inLambda, loadEdgeConfig } from '../config.js'
import type { Client } from '../core/clients.js'
import { HTTP_FUNCTIONS, type HttpFunction } from '../routes.js'
import { type HttpHandler, httpHandler, type Route } from './http.js'
import type { Observability } from './observability.js'

/**
 * A deployed HTTP function: its route and ports in the shared middy stack, with
 * the request handling its entry in functions/routes.ts gives it.
 */
export function lambdaHttpHandler<D>(
  name: HttpFunction,
  route: Route<D>,
  deps: D,
  parts: { readonly clients: ReadonlyMap<string, Client>; readonly observability: Observability },
): HttpHandler {
  const stack = {
    ...parts.observability,
    corsOrigins: corsOrigins(parts.clients),
    edge: loadEdgeConfig(),
  }
  return httpHandler(route, deps, stack, HTTP_FUNCTIONS[name].http)
}

/**
 * Starts cold-start I/O (fetching public keys) during Lambda's init phase, which
 * runs at full CPU before the first request. Never rejects: a failure surfaces
 * in the request that needs the result. Outside Lambda it does nothing.
 */
export function warmUp(load: () => Promise<unknown>): void {
  if (inLambda()) load().catch(() => {})
}
