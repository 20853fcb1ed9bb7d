import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { sdkOptions } from '../adapters/aws.js'
import { setOutboxRegion } from '../adapters/dynamodb/outbox-item.js'
import { DynamoSessions } from '../adapters/dynamodb/sessions.js'
import { lambdaHttpHandler } from '../adapters/lambda.js'
import { createObservability } from '../adapters/observability.js'
import { traced } from '../adapters/tracing.js'
import { loadAwsCallConfig, loadHttpConfig, loadOutboxRegion, loadTableName } from '../config.js'
import { systemClock } from '../core/clock.js'
import { revokeRoute } from './route.js'

// Cold start: configuration, the DynamoDB client and the store, built once; no I/O.
const { clients } = loadHttpConfig()
const observability = createObservability()
const dynamodb = traced(new DynamoDBClient(sdkOptions(loadAwsCallConfig())))

// With several regions, the region its security events are marked with (events once).
setOutboxRegion(loadOutboxRegion())

export const handler = lambdaHttpHandler(
  'revoke',
  revokeRoute,
  {
    sessions: new DynamoSessions(dynamodb, loadTableName()),
    clock: systemClock,
    telemetry: observability.telemetry,
    clients,
  },
  { clients, observability },
)
