import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { sdkOptions } from '../adapters/aws.js'
import { setOutboxRegion } from '../adapters/dynamodb/outbox-item.js'
import { DynamoSessions } from '../adapters/dynamodb/sessions.js'
import { DynamoUsers } from '../adapters/dynamodb/users.js'
import { lambdaHomeRegion } from '../adapters/home-region.js'
import { lambdaHttpHandler } from '../adapters/lambda.js'
import { createObservability } from '../adapters/observability.js'
import { traced } from '../adapters/tracing.js'
import {
  loadAwsCallConfig,
  loadHomeForwardConfig,
  loadHttpConfig,
  loadOutboxRegion,
  loadRegions,
  loadTableName,
} from '../config.js'
import { systemClock } from '../core/clock.js'
import { sessionsRoute } from './route.js'

// Cold start: configuration, the DynamoDB client and the stores, built once; no I/O.
const { clients } = loadHttpConfig()
const observability = createObservability()
const dynamodb = traced(new DynamoDBClient(sdkOptions(loadAwsCallConfig())))
const tableName = loadTableName()
// With several regions, the region its security events are marked with (events once).
setOutboxRegion(loadOutboxRegion())
// With several regions: a session is ended in its home (docs/multi-region.md).
const regions = loadRegions()
const homeRegion = regions && lambdaHomeRegion(regions.here, loadHomeForwardConfig())

export const handler = lambdaHttpHandler(
  'sessions',
  sessionsRoute,
  {
    sessions: new DynamoSessions(dynamodb, tableName),
    users: new DynamoUsers(dynamodb, tableName),
    clock: systemClock,
    telemetry: observability.telemetry,
    ...(regions && { regions }),
    ...(homeRegion && { homeRegion }),
  },
  { clients, observability },
)
