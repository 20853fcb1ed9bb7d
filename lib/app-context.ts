import { readFileSync } from 'node:fs'
import { type App, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib'
import * as logs from 'aws-cdk-lib/aws-logs'
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag'
import type { Construct } from 'constructs'
import { type ClientConfig, parseClients } from '../functions/core/clients.js'
import { DEFAULTS, NATIVE_AUTHORIZER_KEY_CACHE, VERIFIER_CLOCK_MARGIN } from './defaults.js'
import { type KeyChangeRules, SigningKeyError, type SigningKeySpec } from './signing-keys.js'
import { longestAccessTokenTtl } from './token-authorizer.js'
import type { AuthorizerKind, SigningAlgorithm } from './token-service.js'
import type { TokenServiceStackProps } from './token-service-stack.js'

/**
 * The CDK app's settings, read from context (cdk.json, or `-c key=value`).
 * Every key is optional; the defaults are those of `TokenService` (lib/defaults.ts).
 */
export interface AppSettings {
  readonly stackName: string
  readonly props: TokenServiceStackProps
  /** Where the signing-key ledger lives; `undefined` when turned off with `signingKeysLock=off`. */
  readonly keyLedgerPath?: string
  /** Lets synth accept an unsafe key change (a compromised key must go now); recorded in the ledger. */
  readonly unsafeKeyChangeReason?: string
}

/** The context keys the app reads, with their meaning: `npx cdk synth -c key=value`. */
export const CONTEXT_KEYS = {
  stackName: 'stack name; @default TokenService',
  clients: 'the clients as a JSON array (inline); wins over clientsFile',
  clientsFile:
    'file with the clients as a JSON array; @default clients.local.json (the demo clients)',
  issuer: 'the iss claim; @default https://<domainName>, else the API endpoint',
  algorithm: 'RS256 | ES256; @default RS256',
  signingKeys: 'JSON array of {"id","state"}; @default [{"id":"k1","state":"active"}]',
  signingKeysLock: 'signing-key ledger file, or "off"; @default signing-keys.lock.json',
  unsafeKeyChangeReason: 'accept a key change the ledger refuses, stating why',
  authorizer: 'lambda | jwt; @default lambda',
  strictRevocation: 'true | false; @default false',
  authorizerCacheTtlSeconds:
    'API Gateway cache of the Lambda authorizer; @default min(300, shortest token TTL), 0 if strict',
  throttleRate: '@default 500',
  throttleBurst: '@default 1000',
  loginThrottleRate: '@default 20',
  loginThrottleBurst: '@default 40',
  removalPolicy: 'retain | destroy; @default retain',
  deletionProtection: 'true | false; @default true unless removalPolicy is destroy',
  logRetentionDays: 'one of CloudWatch Logs retention values; @default 90',
  alarmTopicArn: 'SNS topic every alarm notifies; @default none',
  domainName: 'custom domain, e.g. auth.example.com; needs certificateArn',
  certificateArn: 'ACM certificate for domainName, in the stack region',
  hostedZoneId: 'Route 53 zone for the A/AAAA records; needs hostedZoneName',
  hostedZoneName: 'the zone name, e.g. example.com',
  jwksMaxAgeSeconds: 'Cache-Control max-age of JWKS and discovery, 0..86400; @default 300',
  tokenBackdateSeconds: 'iat/nbf set this early, 0..60; @default 5',
  loginFreeFailures: 'failed logins before any wait, 0..100; @default 3',
  loginBackoffBaseSeconds: 'first wait, doubled per failure, 1..3600; @default 1',
  loginBackoffMaxSeconds: 'longest wait, 1..86400; @default 900',
  loginFailureWindowSeconds: 'failures forgotten after, 60..2592000, >= max wait; @default 86400',
  authorizerSkewSeconds: 'clock skew on exp/nbf/iat, 0..300; @default 30',
  authorizerSessionCacheSeconds: 'strict mode: reuse of a session verdict, 0..60; @default 5',
  authorizerMaxTokenBytes: 'longer tokens refused unread, 1024..16384; @default 4096',
  authorizerAudiences:
    'aud values accepted, comma-separated or a JSON array; @default every client audience',
} as const

type ContextKey = keyof typeof CONTEXT_KEYS

/** Reads and validates the app's context. Throws an error naming the bad key. */
export function readAppSettings(scope: Construct): AppSettings {
  const raw = (key: ContextKey): unknown => {
    const value = scope.node.tryGetContext(key)
    return value === null || value === '' ? undefined : value
  }
  const text = (key: ContextKey): string | undefined => {
    const value = raw(key)
    if (value === undefined) return undefined
    if (typeof value !== 'string') throw new Error(`context ${key} must be a string`)
    return value
  }
  const json = (key: ContextKey): unknown => {
    const value = raw(key)
    if (typeof value !== 'string') return value
    try {
      return JSON.parse(value)
    } catch {
      throw new Error(`context ${key} is not valid JSON`)
    }
  }
  const oneOf = <T extends string>(key: ContextKey, allowed: readonly T[]): T | undefined => {
    const value = text(key)?.toLowerCase()
    if (value === undefined) return undefined
    const found = allowed.find((option) => option.toLowerCase() === value)
    if (!found) throw new Error(`context ${key} must be one of ${allowed.join(', ')}`)
    return found
  }
  const bool = (key: ContextKey): boolean | undefined => {
    const value = raw(key)
    if (value === undefined || typeof value === 'boolean') return value
    if (value === 'true' || value === 'false') return value === 'true'
    throw new Error(`context ${key} must be true or false`)
  }
  const integer = (key: ContextKey, min: number): number | undefined => {
    const value = raw(key)
    if (value === undefined) return undefined
    const number = typeof value === 'number' ? value : Number(value)
    if (!Number.isInteger(number) || number < min) {
      throw new Error(`context ${key} must be an integer of at least ${min}`)
    }
    return number
  }

  let clients: unknown = json('clients')
  let from = 'context clients'
  if (clients === undefined) {
    from = text('clientsFile') ?? 'clients.local.json'
    clients = JSON.parse(readFileSync(from, 'utf8'))
  }
  try {
    parseClients(clients)
  } catch (error) {
    throw new Error(`${from}: ${(error as Error).message}`)
  }

  const signingKeys = json('signingKeys') as SigningKeySpec[] | undefined
  const algorithm = oneOf<SigningAlgorithm>('algorithm', ['RS256', 'ES256'])
  const authorizer = oneOf<AuthorizerKind>('authorizer', ['lambda', 'jwt'])
  const strictRevocation = bool('strictRevocation')
  const cacheSeconds = integer('authorizerCacheTtlSeconds', 0)
  const removal = oneOf('removalPolicy', ['retain', 'destroy'])
  const deletionProtection = bool('deletionProtection')
  const retentionDays = integer('logRetentionDays', 1)
  if (retentionDays !== undefined && !Object.values(logs.RetentionDays).includes(retentionDays)) {
    throw new Error('context logRetentionDays must be a CloudWatch Logs retention value, e.g. 90')
  }
  const jwksMaxAge = integer('jwksMaxAgeSeconds', 0)
  const throttle = pair(integer('throttleRate', 1), integer('throttleBurst', 1), DEFAULTS.throttle)
  const loginThrottle = pair(
    integer('loginThrottleRate', 1),
    integer('loginThrottleBurst', 1),
    DEFAULTS.loginThrottle,
  )
  const issuer = text('issuer')
  const tokenBackdateSeconds = integer('tokenBackdateSeconds', 0)
  const loginBackoff = defined({
    freeFailures: integer('loginFreeFailures', 0),
    baseSeconds: integer('loginBackoffBaseSeconds', 0),
    maxSeconds: integer('loginBackoffMaxSeconds', 0),
    failureWindowSeconds: integer('loginFailureWindowSeconds', 0),
  })
  // A JSON array (cdk.json, or -c with [...]), else a comma-separated string.
  const listed = raw('authorizerAudiences')
  const audiences =
    typeof listed === 'string' && !listed.trim().startsWith('[')
      ? listed
          .split(',')
          .map((audience) => audience.trim())
          .filter(Boolean)
      : json('authorizerAudiences')
  if (
    audiences !== undefined &&
    !(Array.isArray(audiences) && audiences.every((audience) => typeof audience === 'string'))
  ) {
    throw new Error('context authorizerAudiences must list strings')
  }
  const authorizerSettings = defined({
    clockSkewSeconds: integer('authorizerSkewSeconds', 0),
    sessionCacheSeconds: integer('authorizerSessionCacheSeconds', 0),
    maxTokenBytes: integer('authorizerMaxTokenBytes', 0),
    audiences: audiences as string[] | undefined,
  })

  const domainName = text('domainName')
  const certificateArn = text('certificateArn')
  if ((domainName === undefined) !== (certificateArn === undefined)) {
    throw new Error('context domainName and certificateArn go together')
  }
  const hostedZoneId = text('hostedZoneId')
  const hostedZoneName = text('hostedZoneName')
  if ((hostedZoneId === undefined) !== (hostedZoneName === undefined)) {
    throw new Error('context hostedZoneId and hostedZoneName go together')
  }
  if (hostedZoneId && !domainName) throw new Error('context hostedZoneId needs domainName')
  const lock = text('signingKeysLock') ?? 'signing-keys.lock.json'
  const alarmTopicArn = text('alarmTopicArn')
  const unsafeKeyChangeReason = text('unsafeKeyChangeReason')

  return {
    stackName: text('stackName') ?? 'TokenService',
    props: {
      description: 'Token service: login, rotating refresh tokens, revoke, JWKS (KMS, DynamoDB)',
      clients: clients as ClientConfig[],
      ...(issuer !== undefined && { issuer }),
      ...(signingKeys !== undefined && { signingKeys }),
      ...(algorithm !== undefined && { algorithm }),
      ...(authorizer !== undefined && { authorizer }),
      ...(strictRevocation !== undefined && { strictRevocation }),
      ...(cacheSeconds !== undefined && { authorizerCacheTtl: Duration.seconds(cacheSeconds) }),
      ...(throttle && { throttle }),
      ...(loginThrottle && { loginThrottle }),
      ...(removal !== undefined && {
        removalPolicy: removal === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      }),
      ...(deletionProtection !== undefined && { deletionProtection }),
      ...(retentionDays !== undefined && { logRetention: retentionDays as logs.RetentionDays }),
      ...(jwksMaxAge !== undefined && { jwksMaxAge: Duration.seconds(jwksMaxAge) }),
      ...(tokenBackdateSeconds !== undefined && { tokenBackdateSeconds }),
      ...(loginBackoff && { loginBackoff }),
      ...(authorizerSettings && { authorizerSettings }),
      // Environment-agnostic unless the CLI knows the account and region: synth needs no credentials.
      ...(process.env.CDK_DEFAULT_ACCOUNT &&
        process.env.CDK_DEFAULT_REGION && {
          env: {
            account: process.env.CDK_DEFAULT_ACCOUNT,
            region: process.env.CDK_DEFAULT_REGION,
          },
        }),
      ...(alarmTopicArn !== undefined && { alarmTopicArn }),
      ...(domainName !== undefined &&
        certificateArn !== undefined && {
          domain: {
            domainName,
            certificateArn,
            ...(hostedZoneId !== undefined && { hostedZoneId, hostedZoneName }),
          },
        }),
    },
    ...(lock.toLowerCase() !== 'off' && { keyLedgerPath: lock }),
    ...(unsafeKeyChangeReason !== undefined && { unsafeKeyChangeReason }),
  }
}

/** The fields that are set, or `undefined` when none is. */
function defined<T extends object>(fields: T): Partial<T> | undefined {
  const set = Object.entries(fields).filter(([, value]) => value !== undefined)
  return set.length > 0 ? (Object.fromEntries(set) as Partial<T>) : undefined
}

function pair(
  rate: number | undefined,
  burst: number | undefined,
  fallback: { readonly rateLimit: number; readonly burstLimit: number },
): { rateLimit: number; burstLimit: number } | undefined {
  if (rate === undefined && burst === undefined) return undefined
  return { rateLimit: rate ?? fallback.rateLimit, burstLimit: burst ?? fallback.burstLimit }
}

/** The key-change rules for a stack's settings (see lib/signing-keys.ts). */
export function keyChangeRules(
  props: Pick<
    TokenServiceStackProps,
    'clients' | 'algorithm' | 'jwksMaxAge' | 'authorizerSettings' | 'tokenBackdateSeconds'
  >,
  now: Date,
): KeyChangeRules {
  const jwksMaxAge = props.jwksMaxAge ?? DEFAULTS.jwksMaxAge
  // Our authorizer accepts a token until exp + its skew: a wider skew keeps a retired key longer.
  const clockMargin = Math.max(
    VERIFIER_CLOCK_MARGIN.toSeconds(),
    (props.authorizerSettings?.clockSkewSeconds ?? DEFAULTS.authorizerSettings.clockSkewSeconds) +
      (props.tokenBackdateSeconds ?? DEFAULTS.tokenBackdateSeconds),
  )
  return {
    algorithm: props.algorithm ?? DEFAULTS.algorithm,
    now,
    publishWaitSeconds: NATIVE_AUTHORIZER_KEY_CACHE.toSeconds() + jwksMaxAge.toSeconds(),
    retireWaitSeconds: longestAccessTokenTtl(props.clients).toSeconds() + clockMargin,
  }
}

/** The error synth fails with when the ledger refuses a key change. */
export function unsafeKeyChangeError(stackName: string, problems: readonly string[]): Error {
  return new SigningKeyError(
    [
      `Unsafe signing-key change for stack ${stackName}:`,
      ...problems.map((problem) => `  - ${problem}`),
      'See docs/operations.md "Key rotation". If the change is deliberate (say a compromised key must go now),',
      'pass -c unsafeKeyChangeReason="<why>": tokens signed by a removed key stop verifying at once.',
    ].join('\n'),
  )
}

/** cdk-nag 3: the AWS Solutions and Serverless packs run as policy-validation plugins. */
export function addNagPacks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app))
}
