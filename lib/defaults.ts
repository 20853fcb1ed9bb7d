import { Duration, RemovalPolicy } from 'aws-cdk-lib'
import * as logs from 'aws-cdk-lib/aws-logs'
import { SETTINGS } from '../functions/settings.js'
import type { SigningKeySpec } from './signing-keys.js'

/**
 * The secure defaults of the token service, in one place. Every `@default` in
 * the props of `TokenService`, `TokenAuthorizer` and the CDK app points here.
 */
export const DEFAULTS = {
  /** KMS `RSA_2048`: the only family the native HTTP API JWT authorizer accepts. */
  algorithm: 'RS256',
  /** A KMS `Sign` per token: the private key never leaves KMS (docs/security.md). */
  signing: 'kms',
  signingKeys: [{ id: 'k1', state: 'active' }] as readonly SigningKeySpec[],
  authorizer: 'lambda',
  strictRevocation: false,
  /** Keep the table, the keys and the logs when the stack or the resource goes away. */
  removalPolicy: RemovalPolicy.RETAIN,
  logRetention: logs.RetentionDays.THREE_MONTHS,
  /**
   * Stage-wide limit for every route (requests/s and burst): the busy-hour load of 1M monthly
   * users (about 1,150 refreshes and 35 logins a second, plus bearer calls) times 2.5. The
   * burst stays within the account's regional 5,000. Arithmetic: docs/operations.md "Throttles".
   */
  throttle: { rateLimit: 3000, burstLimit: 5000 },
  /** `POST /token`: about twice the busy-hour 1,150 refreshes a second. */
  tokenThrottle: { rateLimit: 2500, burstLimit: 5000 },
  /**
   * `POST /login`: each call costs scrypt (about a vCPU for a tenth of a second); about 5 times
   * the busy-hour 35 logins a second. A capacity guard, not an abuse control: one client is held
   * back by the per-IP rule of the edge (`edge.waf.ratePerIp`) and the per-username back-off.
   */
  loginThrottle: { rateLimit: 200, burstLimit: 400 },
  /**
   * The edge's WAF rate rule: requests per IP per 5 minutes to /login, /token and
   * /me/password (about 3 a second; why: lib/config-schema.ts `edge.waf.ratePerIp`).
   */
  edgeRatePerIp: 1000,
  /** `POST /me/password`: scrypt twice, rare, and behind a bearer token. */
  passwordThrottle: { rateLimit: 50, burstLimit: 100 },
  /**
   * API Gateway's cache of the Lambda authorizer's answer with strict revocation.
   * Otherwise it is the authorizer's clock skew, capped at the shortest
   * access-token lifetime (lib/token-authorizer.ts `resultsCacheTtl`).
   */
  strictAuthorizerCacheTtl: Duration.seconds(0),
  /** `Cache-Control: max-age` of JWKS and discovery. */
  jwksMaxAge: Duration.seconds(SETTINGS.JWKS_MAX_AGE_SECONDS.default),
  logLevel: 'INFO',
  /**
   * Percent of the invocations that log at debug, success lines included (Powertools
   * logger sampling): a line per success would cost more than the rest of the logs.
   */
  logSamplePercent: 1,
  /** Lambda active tracing, with the AWS SDK clients traced (functions/adapters/tracing.ts). */
  tracing: true,
  /** Per-attempt timeout of each AWS SDK call, and attempts per call (the first included). */
  awsCallTimeout: Duration.millis(SETTINGS.AWS_CALL_TIMEOUT_MS.default),
  awsMaxAttempts: SETTINGS.AWS_MAX_ATTEMPTS.default,
  /** API Gateway gives up on an integration after this (HTTP API maximum: 30 s). */
  integrationTimeout: Duration.seconds(29),
  /** `iat`/`nbf` of the access tokens are set this early (login and token). */
  tokenBackdateSeconds: SETTINGS.TOKEN_BACKDATE_SECONDS.default,
  /** Login back-off per username (functions/core/throttle.ts). */
  loginBackoff: {
    freeFailures: SETTINGS.LOGIN_FREE_FAILURES.default,
    baseSeconds: SETTINGS.LOGIN_BACKOFF_BASE_SECONDS.default,
    maxSeconds: SETTINGS.LOGIN_BACKOFF_MAX_SECONDS.default,
    failureWindowSeconds: SETTINGS.LOGIN_FAILURE_WINDOW_SECONDS.default,
  },
  /** The security events' bus and forwarder (docs/design.md "Security events"). */
  securityEvents: {
    /** Create the bus, the table's stream and the forwarder. */
    bus: true,
    /** Stream records per forwarder invocation (10 PutEvents calls at most, in parallel). */
    batchSize: 100,
    /** A batch is retried until its oldest record is this old, then dead-lettered. */
    maxRecordAge: Duration.hours(6),
  },
  /** The Lambda authorizer's own settings (docs/design.md "Authorizer"). */
  authorizerSettings: {
    clockSkewSeconds: SETTINGS.AUTHORIZER_SKEW_SECONDS.default,
    sessionCacheSeconds: SETTINGS.AUTHORIZER_SESSION_CACHE_SECONDS.default,
    maxTokenBytes: SETTINGS.AUTHORIZER_MAX_TOKEN_BYTES.default,
  },
} as const

/**
 * How long the native HTTP API JWT authorizer may cache a JWKS. A new key must be
 * published this long (plus the JWKS max-age) before it may sign.
 */
export const NATIVE_AUTHORIZER_KEY_CACHE = Duration.hours(2)

/** Clock skew the verifiers allow plus the backdating of `iat`/`nbf` (docs/design.md "Authorizer"). */
export const VERIFIER_CLOCK_MARGIN = Duration.seconds(60)

/** Middy answers 503 this long before Lambda's own timeout (functions/adapters/http.ts). */
export const TIMEOUT_EARLY = Duration.millis(250)

/**
 * Alarm thresholds. Each alarm is also on the dashboard. Shares are per thousand (requests,
 * or refreshes) over 5 minutes, so that they hold at any volume; why each value:
 * docs/operations.md "Alarms".
 */
export const ALARM_THRESHOLDS = {
  /** Enforced reuses per 1,000 refreshes; with `minRefreshes`, one reuse in a quiet period. */
  reusePerThousandRefreshes: 1,
  minRefreshes: 1000,
  /** Any DPoP refusal that signals theft (another key for a bound token, a replayed proof). */
  dpopTheftSignals: 1,
  /** 1% of the requests answered 5xx, two periods running. */
  serverErrorsPerThousand: 10,
  /** 5% of the requests answered 429, two periods running. */
  throttledPerThousand: 50,
  /** The least denominator of the request shares, per 5 minutes. */
  minRequests: 1000,
  /** Standard deviations of the failed-login anomaly band. */
  failedLoginBand: 3,
  /** p99 per route, ms: a refresh takes tens of ms; scrypt routes a few hundred. */
  latencyP99Ms: 1000,
  passwordLatencyP99Ms: 3000,
  /** Unhandled Lambda errors (handlers answer every known fault themselves), per 1,000 requests. */
  lambdaErrorsPerThousand: 1,
  lambdaThrottlesPerThousand: 1,
  /** KMS calls that came back throttled, seen in the function logs, per 1,000 requests. */
  kmsThrottlesPerThousand: 1,
  /** Percent of the account's KMS request quota for this key family, per second. */
  kmsQuotaPercent: 80,
  /** DynamoDB throttled requests per 1,000 API requests (the SDK retries them). */
  dynamodbThrottlesPerThousand: 10,
  /** A function's p99 duration, in percent of its timeout: near it, calls are about to be cut off. */
  nearTimeoutPercent: 80,
  /** Any batch of security events that could not be forwarded (each message names one). */
  securityEventDeadLetters: 1,
  /** How far behind the table's stream the forwarder may fall before it alarms. */
  securityEventsIteratorAge: Duration.minutes(10),
} as const

/** The alarm thresholds a stack uses: ALARM_THRESHOLDS with the config's `alarms` over them. */
export type AlarmThresholds = {
  readonly [K in keyof typeof ALARM_THRESHOLDS]: (typeof ALARM_THRESHOLDS)[K] extends number
    ? number
    : (typeof ALARM_THRESHOLDS)[K]
}
