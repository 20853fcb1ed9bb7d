import { Logger } from '@aws-lambda-powertools/logger'
import { describe, expect, it } from 'vitest'
import { createObservability } from '../../functions/adapters/observability.js'

/** A logger at `level` whose lines land in `lines`. */
function capturing(level: 'INFO' | 'DEBUG', sampleRateValue = 0) {
  const lines: Record<string, unknown>[] = []
  const write = (line: unknown) => {
    lines.push(JSON.parse(String(line)) as Record<string, unknown>)
  }
  const logger = new Logger({
    serviceName: 'token-service',
    logLevel: level,
    sampleRateValue,
  })
  // Powertools writes through its console: keep the lines instead.
  const console = { info: write, warn: write, error: write, debug: write, trace: write }
  Object.assign(logger as unknown as { console: unknown }, { console })
  return { logger, lines }
}

describe('logs at volume', () => {
  it('writes no line for a success at the production level, but counts it; failures and refusals are still logged', () => {
    const { logger, lines } = capturing('INFO')
    const { telemetry, metrics } = createObservability(logger)
    telemetry.emit('refresh', { client_id: 'native' })
    telemetry.emit('login', { client_id: 'native' })
    telemetry.emit('revoke', { reason: 'logout' })
    expect(lines).toEqual([])
    expect(metrics.hasStoredMetrics()).toBe(true)
    telemetry.emit('login_failed', { client_id: 'native' })
    telemetry.emit('reuse_detected', { client_id: 'native', sid: 's1' })
    expect(lines.map((line) => [line.level, line.message, line.event])).toEqual([
      ['WARN', 'security event', 'login_failed'],
      ['WARN', 'security event', 'reuse_detected'],
    ])
  })

  it('writes the success lines of a sampled invocation', () => {
    // A sample rate of 1 samples every invocation: the logger goes down to debug.
    const { logger, lines } = capturing('INFO', 1)
    createObservability(logger).telemetry.emit('refresh', { client_id: 'native' })
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'DEBUG', message: 'refresh', client_id: 'native' }),
    )
  })
})
