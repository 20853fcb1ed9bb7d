import type {
  APIGatewayRequestAuthorizerEvent,
  APIGatewayRequestAuthorizerEventV2,
  APIGatewayTokenAuthorizerEvent,
} from 'aws-lambda'
import { defaultRuntime } from '../adapters/runtime.js'
import { inLambda } from '../config.js'
import { type Authorizer, createAuthorizer } from './authorizer.js'

let authorizer: Authorizer | undefined
const instance = (): Authorizer => {
  authorizer ??= createAuthorizer(defaultRuntime())
  return authorizer
}

// Cold start: build everything and load the verification keys (KMS GetPublicKey) during
// the init phase, before the first request (aws-jwt-verify's `hydrate()` habit).
if (inLambda()) await instance().warm()

/** HTTP API Lambda authorizer (payload format 2.0, simple responses). */
export const handler = (event: APIGatewayRequestAuthorizerEventV2) => instance().http(event)

/** REST API TOKEN or REQUEST authorizer (IAM policy responses). */
export const restHandler = (
  event: APIGatewayTokenAuthorizerEvent | APIGatewayRequestAuthorizerEvent,
) => instance().rest(event)
