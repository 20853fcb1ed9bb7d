import { Duration, RemovalPolicy } from 'aws-cdk-lib'
import * as logs from 'aws-cdk-lib/aws-logs'
import type { SigningKeySpec } from './signing-keys.js'

/**
 * The secure defaults of the token service, in one place. Every `@default` in
 * the props of `TokenService`, `TokenAuthorizer` and the CDK app points here.
 */
export const DEFAULTS = {
  /** KMS `RSA_2048`: the only family the native HTTP API JWT authorizer accepts. */
  algorithm: 'RS256',
  signingKeys: [{ id: 'k1', state: 'active' }] as readonly SigningKeySpec[],
  authorizer: 'lambda',
  strictRevocation: false,
  /** Keep the table, the keys and the logs when the stack or the resource goes away. */
  removalPolicy: RemovalPolicy.RETAIN,
  logRetention: logs.RetentionDays.THREE_MONTHS,
  /** Stage-wide limit for every route (requests/s and burst). */
  throttle: { rateLimit: 500, burstLimit: 1000 },
  /** Stricter limit on `POST /login`: each call costs a full vCPU for scrypt. */
  loginThrottle: { rateLimit: 20, burstLimit: 40 },
  /**
   * API Gateway's cache of the Lambda authorizer's answer. It is capped at the
   * shortest access-token lifetime of the clients, and 0 with strict revocation.
   */
  authorizerCacheTtl: Duration.minutes(5),
  strictAuthorizerCacheTtl: Duration.seconds(0),
  /** `Cache-Control: max-age` of JWKS and discovery. */
  jwksMaxAge: Duration.minutes(5),
  logLevel: 'INFO',
  /** Per-attempt timeout of each AWS SDK call, and attempts per call (the first included). */
  awsCallTimeout: Duration.seconds(1),
  awsMaxAttempts: 2,
  /** API Gateway gives up on an integration after this (HTTP API maximum: 30 s). */
  integrationTimeout: Duration.seconds(29),
  /** `iat`/`nbf` of the access tokens are set this early (login and token). */
  tokenBackdateSeconds: 5,
  /** Login back-off per username (functions/core/throttle.ts). */
  loginBackoff: { freeFailures: 3, baseSeconds: 1, maxSeconds: 900, failureWindowSeconds: 86_400 },
  /** The Lambda authorizer's own settings (DESIGN.md "Authorizer"). */
  authorizerSettings: { clockSkewSeconds: 30, sessionCacheSeconds: 5, maxTokenBytes: 4096 },
} as const

/**
 * The range functions/config.ts accepts for each variable a prop sets, so that synth
 * refuses what a cold start would. test/infra checks both agree.
 */
export const SETTING_RANGES = {
  TOKEN_BACKDATE_SECONDS: { min: 0, max: 60 },
  JWKS_MAX_AGE_SECONDS: { min: 0, max: 86_400 },
  LOGIN_FREE_FAILURES: { min: 0, max: 100 },
  LOGIN_BACKOFF_BASE_SECONDS: { min: 1, max: 3600 },
  LOGIN_BACKOFF_MAX_SECONDS: { min: 1, max: 86_400 },
  LOGIN_FAILURE_WINDOW_SECONDS: { min: 60, max: 30 * 86_400 },
  AUTHORIZER_SKEW_SECONDS: { min: 0, max: 300 },
  AUTHORIZER_SESSION_CACHE_SECONDS: { min: 0, max: 60 },
  AUTHORIZER_MAX_TOKEN_BYTES: { min: 1024, max: 16_384 },
} as const

/**
 * How long the native HTTP API JWT authorizer may cache a JWKS. A new key must be
 * published this long (plus the JWKS max-age) before it may sign.
 */
export const NATIVE_AUTHORIZER_KEY_CACHE = Duration.hours(2)

/** Clock skew the verifiers allow plus the backdating of `iat`/`nbf` (DESIGN.md "Authorizer"). */
export const VERIFIER_CLOCK_MARGIN = Duration.seconds(60)

/** Middy answers 503 this long before Lambda's own timeout (functions/adapters/http.ts). */
export const TIMEOUT_EARLY = Duration.millis(250)

/** Alarm thresholds. Each alarm is also on the dashboard. */
export const ALARM_THRESHOLDS = {
  /** Any reuse of a rotated refresh token: a token was probably stolen. */
  reuseDetections: 1,
  /** Percent of requests answered 5xx over 5 minutes, once there are at least 20 requests. */
  serverErrorPercent: 5,
  serverErrorMinRequests: 20,
  /** Unhandled Lambda errors (handlers answer every known fault themselves). */
  lambdaErrors: 1,
  lambdaThrottles: 1,
  /** KMS calls that came back throttled, seen in the function logs. */
  kmsThrottles: 1,
  /** Percent of the account's KMS request quota for this key family, per second. */
  kmsQuotaPercent: 80,
  dynamodbThrottles: 1,
} as const

export type FunctionName = 'login' | 'token' | 'revoke' | 'jwks' | 'sessions' | 'me' | 'authorizer'

/**
 * Memory and timeout per function. Memory buys CPU: login hashes with scrypt
 * (N=2^17, 128 MiB, CPU bound), and 1769 MB is one full vCPU. Each timeout
 * leaves room for the function's sequential AWS calls, each bounded by
 * `awsCallTimeout x awsMaxAttempts`, and stays far below the integration timeout.
 */
export const FUNCTION_SETTINGS: Record<
  FunctionName,
  { readonly memoryMiB: number; readonly timeout: Duration; readonly purpose: string }
> = {
  login: { memoryMiB: 1769, timeout: Duration.seconds(10), purpose: 'POST /login' },
  token: { memoryMiB: 1024, timeout: Duration.seconds(8), purpose: 'POST /token (refresh)' },
  revoke: { memoryMiB: 512, timeout: Duration.seconds(6), purpose: 'POST /revoke' },
  jwks: { memoryMiB: 512, timeout: Duration.seconds(5), purpose: 'JWKS and discovery' },
  sessions: { memoryMiB: 512, timeout: Duration.seconds(6), purpose: '/sessions' },
  me: { memoryMiB: 256, timeout: Duration.seconds(3), purpose: 'GET /me' },
  // Verifies on every protected request: RSA/ECDSA verification is CPU work.
  authorizer: { memoryMiB: 1024, timeout: Duration.seconds(5), purpose: 'Lambda authorizer' },
}
