import { Logger } from '@aws-lambda-powertools/logger'
import type {
  APIGatewayRequestAuthorizerEvent,
  APIGatewayRequestAuthorizerEventV2,
  APIGatewayTokenAuthorizerEvent,
} from 'aws-lambda'
import { inLambda, loadAuthorizerConfig } from '../config.js'
import { systemClock } from '../core/clock.js'
import { createAuthorizer } from './authorizer.js'
import { jwksFetcher } from './jwks.js'

// Cold start: configuration, then the verification keys from the JWKS during the init
// phase, before the first request (aws-jwt-verify's `hydrate()` habit). No AWS client.
const config = loadAuthorizerConfig()
const authorizer = createAuthorizer({
  config,
  fetchKeys: jwksFetcher(config.jwksUri, { timeoutMs: config.jwksFetchTimeoutMs }),
  clock: systemClock,
  logger: new Logger({ serviceName: 'token-service' }),
})
if (inLambda()) await authorizer.warm()

/** HTTP API Lambda authorizer (payload format 2.0, simple responses). */
export const handler = (event: APIGatewayRequestAuthorizerEventV2) => authorizer.http(event)

/** REST API TOKEN or REQUEST authorizer (IAM policy responses). */
export const restHandler = (
  event: APIGatewayTokenAuthorizerEvent | APIGatewayRequestAuthorizerEvent,
) => authorizer.rest(event)
