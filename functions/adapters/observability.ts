import { Logger } from '@aws-lambda-powertools/logger'
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics'
import type { Telemetry, TelemetryEvent } from '../core/ports.js'

/** Structured logs, EMF metrics, and the domain's events on top of both. */
export interface Observability {
  readonly logger: Logger
  readonly metrics: Metrics
  readonly telemetry: Telemetry
}

const METRIC_NAMES: Record<TelemetryEvent, string> = {
  login: 'Logins',
  login_failed: 'LoginFailures',
  refresh: 'Refreshes',
  grace_replay: 'GraceReplays',
  reuse_detected: 'ReuseDetections',
  // The same metric with a dimension of its own: `ReuseDetections` with the service
  // dimension alone (the alarm's) keeps counting the enforced ones only.
  reuse_reported: 'ReuseDetections',
  revoke: 'Revocations',
  login_throttled: 'LoginThrottled',
  password_changed: 'PasswordChanges',
  dpop_key_mismatch: 'DpopKeyMismatches',
  dpop_replayed: 'DpopReplays',
  breach_check_unavailable: 'BreachCheckUnavailable',
  refresh_forwarded: 'ForwardedRefreshes',
  refresh_adopted: 'AdoptedSessions',
  session_forked: 'ForkedSessions',
}

/** The dimension of a reuse that `report` mode refused without revoking (docs/security.md). */
export const REPORTED_REUSE_DIMENSION = { name: 'reuseDetection', value: 'report' } as const

const SECURITY_EVENTS: ReadonlySet<TelemetryEvent> = new Set([
  'reuse_detected',
  'reuse_reported',
  'login_failed',
  'dpop_key_mismatch',
  'dpop_replayed',
  'session_forked',
])

/**
 * Powertools Logger and Metrics for one function (or for local mode). No I/O:
 * the metrics are flushed by the `logMetrics` middleware after each request.
 */
export function createObservability(
  logger = new Logger({ serviceName: 'token-service' }),
): Observability {
  const metrics = new Metrics({
    namespace: 'TokenService',
    serviceName: 'token-service',
    // Its only warning is "no metrics to publish", true of every JWKS request: keep it at debug.
    logger: {
      trace: (...args: unknown[]) => logger.trace(String(args[0])),
      debug: (...args: unknown[]) => logger.debug(String(args[0])),
      info: (...args: unknown[]) => logger.info(String(args[0])),
      warn: (...args: unknown[]) => logger.debug(String(args[0])),
      error: (...args: unknown[]) => logger.error(String(args[0])),
    },
  })
  const telemetry: Telemetry = {
    emit(event, fields = {}) {
      if (event === 'reuse_reported') {
        // A metric with other dimensions than the function's is published on its own.
        const single = metrics.singleMetric()
        single.addDimension(REPORTED_REUSE_DIMENSION.name, REPORTED_REUSE_DIMENSION.value)
        single.addMetric(METRIC_NAMES[event], MetricUnit.Count, 1)
      } else {
        metrics.addMetric(METRIC_NAMES[event], MetricUnit.Count, 1)
      }
      // A success is counted above and written to the security events: its log line is
      // debug, so that only the sampled invocations (POWERTOOLS_LOGGER_SAMPLE_RATE) write it.
      // At a million users a line per refresh would cost more than the rest of the logs.
      if (SECURITY_EVENTS.has(event)) logger.warn('security event', { event, ...fields })
      else logger.debug(event, fields)
    },
  }
  return { logger, metrics, telemetry }
}
