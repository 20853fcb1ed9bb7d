import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { sdkOptions } from '../adapters/aws.js'
import { DynamoLoginThrottle } from '../adapters/dynamodb/login-throttle.js'
import { DynamoOutbox } from '../adapters/dynamodb/outbox.js'
import { setOutboxRegion } from '../adapters/dynamodb/outbox-item.js'
import { DynamoSessions } from '../adapters/dynamodb/sessions.js'
import { DynamoUsers } from '../adapters/dynamodb/users.js'
import { lambdaHttpHandler } from '../adapters/lambda.js'
import { createObservability } from '../adapters/observability.js'
import { passwordPolicy } from '../adapters/password-policy.js'
import { traced } from '../adapters/tracing.js'
import {
  loadAwsCallConfig,
  loadBreachCheck,
  loadHttpConfig,
  loadLoginBackoff,
  loadOutboxRegion,
  loadTableName,
} from '../config.js'
import { systemClock } from '../core/clock.js'
import { passwordRoute } from './route.js'

// Cold start: configuration, the DynamoDB client, the stores and the password list, built
// once; no I/O.
const { clients } = loadHttpConfig()
const observability = createObservability()
const dynamodb = traced(new DynamoDBClient(sdkOptions(loadAwsCallConfig())))
const tableName = loadTableName()
// With several regions, the region its security events are marked with (events once).
setOutboxRegion(loadOutboxRegion())

export const handler = lambdaHttpHandler(
  'password',
  passwordRoute,
  {
    sessions: new DynamoSessions(dynamodb, tableName),
    users: new DynamoUsers(dynamodb, tableName),
    loginAttempts: new DynamoLoginThrottle(dynamodb, tableName),
    outbox: new DynamoOutbox(dynamodb, tableName),
    clock: systemClock,
    telemetry: observability.telemetry,
    loginBackoff: loadLoginBackoff(),
    passwordPolicy: passwordPolicy({
      telemetry: observability.telemetry,
      breachCheck: loadBreachCheck(),
    }),
  },
  { clients, observability },
)
