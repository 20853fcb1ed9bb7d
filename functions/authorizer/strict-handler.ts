import { Logger } from '@aws-lambda-powertools/logger'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import type {
  APIGatewayRequestAuthorizerEvent,
  APIGatewayRequestAuthorizerEventV2,
  APIGatewayTokenAuthorizerEvent,
} from 'aws-lambda'
import { sdkOptions } from '../adapters/aws.js'
import { DynamoSessions } from '../adapters/dynamodb/sessions.js'
import {
  inLambda,
  loadAuthorizerConfig,
  loadAwsCallConfig,
  loadSessionCacheSeconds,
  loadTableName,
} from '../config.js'
import { systemClock } from '../core/clock.js'
import { createAuthorizer } from './authorizer.js'
import { jwksFetcher } from './jwks.js'

// Strict revocation (docs/design.md "Authorizer"): the plain authorizer plus one read of
// the session and its user, so that logout ends access within seconds.
const config = loadAuthorizerConfig()
const aws = loadAwsCallConfig()
const authorizer = createAuthorizer({
  config,
  fetchKeys: jwksFetcher(config.jwksUri, { timeoutMs: config.jwksFetchTimeoutMs }),
  clock: systemClock,
  logger: new Logger({ serviceName: 'token-service' }),
  strict: {
    sessions: new DynamoSessions(new DynamoDBClient(sdkOptions(aws)), loadTableName()),
    cacheSeconds: loadSessionCacheSeconds(),
  },
})
if (inLambda()) await authorizer.warm()

/** HTTP API Lambda authorizer (payload format 2.0, simple responses). */
export const handler = (event: APIGatewayRequestAuthorizerEventV2) => authorizer.http(event)

/** REST API TOKEN or REQUEST authorizer (IAM policy responses). */
export const restHandler = (
  event: APIGatewayTokenAuthorizerEvent | APIGatewayRequestAuthorizerEvent,
) => authorizer.rest(event)
