import { describe, expect, expectTypeOf, it } from 'vitest'
import { ConfigError, loadIssuer, loadLoginBackoff } from '../../functions/config.js'
import type { ClientConfig } from '../../functions/core/clients.js'
import { type IntegerSetting, SETTINGS } from '../../functions/settings.js'
import { CONFIG_SCHEMA, type TokenServiceConfig } from '../../lib/config.js'
import type { SigningKeySpec } from '../../lib/signing-keys.js'
import type { AuthorizerSettings } from '../../lib/token-authorizer.js'
import type { LoginBackoffProps, TokenServiceProps } from '../../lib/token-service-props.js'
import { resolveProps } from '../../lib/token-service-props.js'

type AnyField = {
  readonly type: string
  readonly min?: number
  readonly max?: number
  readonly default?: unknown
  readonly setting?: IntegerSetting
  readonly fields?: Readonly<Record<string, AnyField>>
}

/** Every integer key of the config file, by its dotted path. */
function integerKeys(
  fields: Readonly<Record<string, AnyField>>,
  prefix = '',
): [string, AnyField][] {
  return Object.entries(fields).flatMap(([name, field]): [string, AnyField][] => {
    if (field.fields) return integerKeys(field.fields, `${prefix}${name}.`)
    return field.type === 'integer' ? [[`${prefix}${name}`, field]] : []
  })
}

/**
 * The integer keys that reach no setting of ours: API Gateway's throttling, CloudWatch's
 * retention and alarms, Powertools' sampling. Every other one sets a function setting and
 * takes its bounds.
 */
const STACK_ONLY = [
  'throttle.rateLimit',
  'throttle.burstLimit',
  'tokenThrottle.rateLimit',
  'tokenThrottle.burstLimit',
  'loginThrottle.rateLimit',
  'loginThrottle.burstLimit',
  'passwordThrottle.rateLimit',
  'passwordThrottle.burstLimit',
  // Lambda's and DynamoDB's own.
  ...[
    'login',
    'token',
    'revoke',
    'jwks',
    'sessions',
    'password',
    'me',
    'authorizer',
    'forwarder',
  ].map((name) => `reservedConcurrency.${name}`),
  'tableWarmThroughput.readUnitsPerSecond',
  'tableWarmThroughput.writeUnitsPerSecond',
  'logRetentionDays',
  // Powertools' own variable (POWERTOOLS_LOGGER_SAMPLE_RATE), which our loader never reads.
  'logSamplePercent',
  // CloudWatch's alarms.
  ...[
    'serverErrorsPerThousand',
    'throttledPerThousand',
    'minRequests',
    'failedLoginBand',
    'reusePerThousandRefreshes',
    'minRefreshes',
    'latencyP99Ms',
    'passwordLatencyP99Ms',
    'lambdaErrorsPerThousand',
    'lambdaThrottlesPerThousand',
    'kmsThrottlesPerThousand',
    'dynamodbThrottlesPerThousand',
    'nearTimeoutPercent',
  ].map((key) => `alarms.${key}`),
  // WAF's, and the canary's schedule.
  'edge.waf.ratePerIp',
  'canary.everyMinutes',
]

describe('the config file’s bounds are the functions’ bounds', () => {
  const keys = integerKeys(CONFIG_SCHEMA as unknown as Record<string, AnyField>)

  it('names the function setting of every integer key that reaches a function', () => {
    const unnamed = keys.filter(([, field]) => !field.setting).map(([key]) => key)
    expect(unnamed).toEqual(STACK_ONLY)
  })

  it('gives every such key exactly its setting’s bounds (and numeric default)', () => {
    for (const [key, field] of keys) {
      if (!field.setting) continue
      const setting = SETTINGS[field.setting]
      expect({ min: field.min, max: field.max }, key).toEqual({
        min: setting.min,
        max: setting.max,
      })
      if (typeof field.default === 'number') expect(field.default, key).toBe(setting.default)
    }
  })
})

describe('the config file’s type is the schema’s', () => {
  it('derives every key’s type from CONFIG_SCHEMA: required, optional, enums, nested', () => {
    expectTypeOf<TokenServiceConfig['clients']>().toEqualTypeOf<readonly ClientConfig[]>()
    expectTypeOf<TokenServiceConfig['algorithm']>().toEqualTypeOf<'RS256' | 'ES256' | undefined>()
    expectTypeOf<TokenServiceConfig['removalPolicy']>().toEqualTypeOf<
      'retain' | 'destroy' | undefined
    >()
    expectTypeOf<TokenServiceConfig['signingKeys']>().toEqualTypeOf<
      readonly SigningKeySpec[] | undefined
    >()
    expectTypeOf<NonNullable<TokenServiceConfig['domain']>>().toEqualTypeOf<{
      readonly domainName: string
      readonly certificateArn: string
      readonly hostedZoneId?: string
      readonly hostedZoneName?: string
    }>()
    // The props that share a key share its type.
    expectTypeOf<LoginBackoffProps>().toEqualTypeOf<
      NonNullable<TokenServiceConfig['loginBackoff']>
    >()
    expectTypeOf<AuthorizerSettings>().toEqualTypeOf<
      NonNullable<TokenServiceConfig['authorizerSettings']>
    >()
    expectTypeOf<TokenServiceProps['tokenBackdateSeconds']>().toEqualTypeOf<
      TokenServiceConfig['tokenBackdateSeconds']
    >()
    // At run time too: the keys are the schema's.
    expect(Object.keys(CONFIG_SCHEMA)).toContain('authorizerCacheTtlSeconds')
  })
})

describe('each rule between settings holds alike at cold start and at synth', () => {
  const clients: ClientConfig[] = [
    { client_id: 'app', type: 'native', audience: 'https://api.example.com', dpop: 'disabled' },
  ]
  const place = { stackName: 'Prod', id: 'TokenService' }
  const refusedAtSynth = (props: Partial<TokenServiceProps>) => {
    try {
      resolveProps({ clients, ...props }, place)
      return false
    } catch {
      return true
    }
  }
  const refusedAtColdStart = (load: () => unknown) => {
    try {
      load()
      return false
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError)
      return true
    }
  }

  it('refuses a failure window shorter than the longest wait, and only that', () => {
    for (const [maxSeconds, windowSeconds] of [
      [900, 86_400],
      [3600, 3600],
      [3601, 3600],
      [7200, 3600],
      [60, 60],
      [61, 60],
    ] as const) {
      const env = {
        LOGIN_BACKOFF_MAX_SECONDS: String(maxSeconds),
        LOGIN_FAILURE_WINDOW_SECONDS: String(windowSeconds),
      }
      const coldStart = refusedAtColdStart(() => loadLoginBackoff(env))
      const synth = refusedAtSynth({
        loginBackoff: { maxSeconds, failureWindowSeconds: windowSeconds },
      })
      expect({ maxSeconds, windowSeconds, coldStart, synth }).toEqual({
        maxSeconds,
        windowSeconds,
        coldStart: windowSeconds < maxSeconds,
        synth: windowSeconds < maxSeconds,
      })
    }
  })

  it('refuses the issuers the functions refuse, and at synth also any but https', () => {
    for (const issuer of [
      'https://auth.example.com',
      'https://auth.example.com/tenant',
      'https://auth.example.com/',
      'https://auth.example.com?x=1',
      'https://auth.example.com#x',
      'auth.example.com',
      'http://localhost:3000',
    ]) {
      const coldStart = refusedAtColdStart(() => loadIssuer({ ISSUER: issuer }))
      const synth = refusedAtSynth({ issuer })
      expect({ issuer, synth }).toEqual({
        issuer,
        synth: coldStart || !issuer.startsWith('https:'),
      })
    }
    expect(refusedAtColdStart(() => loadIssuer({ ISSUER: 'http://localhost:3000' }))).toBe(false)
  })
})
