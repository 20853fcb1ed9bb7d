import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { sdkOptions } from '../adapters/aws.js'
import { setOutboxRegion } from '../adapters/dynamodb/outbox-item.js'
import { DynamoSessions } from '../adapters/dynamodb/sessions.js'
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
import { revokeRoute } from './route.js'

// Cold start: configuration, the DynamoDB client and the store, built once; no I/O.
const { clients } = loadHttpConfig()
const observability = createObservability()
const dynamodb = traced(new DynamoDBClient(sdkOptions(loadAwsCallConfig())))

// With several regions, the region its security events are marked with (events once).
setOutboxRegion(loadOutboxRegion())
// With several regions: a revocation homed elsewhere is decided there (docs/multi-region.md).
const regions = loadRegions()
const homeRegion = regions && lambdaHomeRegion(regions.here, loadHomeForwardConfig())

export const handler = lambdaHttpHandler(
  'revoke',
  revokeRoute,
  {
    sessions: new DynamoSessions(dynamodb, loadTableName()),
    clock: systemClock,
    telemetry: observability.telemetry,
    clients,
    ...(regions && { regions }),
    ...(homeRegion && { homeRegion }),
  },
  { clients, observability },
)
