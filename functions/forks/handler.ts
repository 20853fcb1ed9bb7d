import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { sdkOptions } from '../adapters/aws.js'
import { setOutboxRegion } from '../adapters/dynamodb/outbox-item.js'
import { DynamoSessions } from '../adapters/dynamodb/sessions.js'
import { lambdaHomeRegion } from '../adapters/home-region.js'
import { createObservability } from '../adapters/observability.js'
import { traced } from '../adapters/tracing.js'
import {
  loadAwsCallConfig,
  loadHomeForwardConfig,
  loadOutboxRegion,
  loadRegions,
  loadTableName,
} from '../config.js'
import { systemClock } from '../core/clock.js'
import type { ForkedSession } from '../core/forks.js'
import { consumeForks, type ForkStreamRecord } from './consume.js'

// Cold start: configuration and clients, built once; no I/O.
const { logger, metrics, telemetry } = createObservability()
const dynamodb = traced(new DynamoDBClient(sdkOptions(loadAwsCallConfig())))
setOutboxRegion(loadOutboxRegion())
const regions = loadRegions()
const homeRegion = regions && lambdaHomeRegion(regions.here, loadHomeForwardConfig())
const deps = {
  sessions: new DynamoSessions(dynamodb, loadTableName()),
  clock: systemClock,
  telemetry,
  ...(regions && { regions }),
  ...(homeRegion && { homeRegion }),
  onRecordFailure: (error: unknown, sequenceNumber: string | undefined) =>
    logger.error('fork detection: a record failed', { sequenceNumber, error }),
}

/**
 * `failover: 'adopt'`: the table's stream, filtered to replaced session items that carry an
 * epoch (lib/fork-detection.ts), and the other regions' requests to end a fork here
 * (functions/forks/consume.ts).
 */
export const handler = async (
  event: { Records?: ForkStreamRecord[] } | (ForkedSession & { forwardedFrom?: string }),
) => {
  const response = await consumeForks(deps, event).finally(() => metrics.publishStoredMetrics())
  return response
}
