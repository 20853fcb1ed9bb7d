import { Duration, RemovalPolicy } from 'aws-cdk-lib'
import * as logs from 'aws-cdk-lib/aws-logs'
import type { Construct } from 'constructs'
import { type ClientConfig, parseClients } from '../functions/core/clients.js'
import { type IntegerSetting, SETTINGS } from '../functions/settings.js'
import { DEFAULTS } from './defaults.js'
import { assertSigningKeys, type SigningKeySpec } from './signing-keys.js'
import type { TokenServiceStackProps } from './token-service-stack.js'

/**
 * The deploy configuration: one committed, typed file (`token-service.config.ts`)
 * that the CDK app loads, validates at synth and turns into the stack's props.
 * Every key is defined once in `CONFIG_SCHEMA` below: its type, default, bounds
 * and doc; a key that reaches a function names its setting in
 * functions/settings.ts, whose default and bounds it takes. The same schema
 * generates docs/configuration.md.
 */
export interface TokenServiceConfig {
  readonly stackName?: string
  readonly clients: readonly ClientConfig[]
  readonly issuer?: string
  readonly algorithm?: 'RS256' | 'ES256'
  readonly signing?: 'kms' | 'envelope'
  readonly signingKeys?: readonly SigningKeySpec[]
  readonly signingKeysLock?: string
  readonly authorizer?: 'lambda' | 'jwt'
  readonly strictRevocation?: boolean
  readonly authorizerCacheTtlSeconds?: number
  readonly throttle?: { readonly rateLimit?: number; readonly burstLimit?: number }
  readonly loginThrottle?: { readonly rateLimit?: number; readonly burstLimit?: number }
  readonly removalPolicy?: 'retain' | 'destroy'
  readonly deletionProtection?: boolean
  readonly logRetentionDays?: number
  readonly alarmTopicArn?: string
  readonly domain?: {
    readonly domainName: string
    readonly certificateArn: string
    readonly hostedZoneId?: string
    readonly hostedZoneName?: string
  }
  readonly jwksMaxAgeSeconds?: number
  readonly tokenBackdateSeconds?: number
  readonly loginBackoff?: {
    readonly freeFailures?: number
    readonly baseSeconds?: number
    readonly maxSeconds?: number
    readonly failureWindowSeconds?: number
  }
  readonly authorizerSettings?: {
    readonly clockSkewSeconds?: number
    readonly sessionCacheSeconds?: number
    readonly maxTokenBytes?: number
    readonly audiences?: readonly string[]
  }
  readonly securityEvents?: { readonly bus?: boolean }
}

/** Types the config file's object (`export default defineConfig({...})`). */
export const defineConfig = (config: TokenServiceConfig): TokenServiceConfig => config

type Field =
  | { readonly type: 'string'; readonly doc: string; readonly default?: string }
  | { readonly type: 'boolean'; readonly doc: string; readonly default?: boolean | string }
  | {
      readonly type: 'integer'
      readonly doc: string
      readonly min: number
      readonly max: number
      readonly default?: number | string
      /** The function setting it sets, whose bounds and default these are. */
      readonly setting?: IntegerSetting
      readonly values?: readonly number[]
    }
  | {
      readonly type: 'enum'
      readonly doc: string
      readonly values: readonly string[]
      readonly default: string
    }
  | { readonly type: 'strings'; readonly doc: string; readonly default?: string }
  | { readonly type: 'clients' | 'signingKeys'; readonly doc: string; readonly default?: string }
  | {
      readonly type: 'object'
      readonly doc: string
      readonly fields: Readonly<Record<string, Field>>
    }

/** An integer key that sets a function setting: bounds, default and doc from functions/settings.ts. */
const fromSetting = (setting: IntegerSetting, doc?: string): Field => ({
  type: 'integer',
  doc: doc ?? SETTINGS[setting].doc,
  min: SETTINGS[setting].min,
  max: SETTINGS[setting].max,
  default: SETTINGS[setting].default,
  setting,
})

const limits = (what: string, rate: number, burst: number): Field => ({
  type: 'object',
  doc: `API Gateway throttling of ${what}: steady requests per second and burst.`,
  fields: {
    rateLimit: {
      type: 'integer',
      doc: 'Requests per second.',
      min: 1,
      max: 100_000,
      default: rate,
    },
    burstLimit: { type: 'integer', doc: 'Burst.', min: 1, max: 100_000, default: burst },
  },
})

const RETENTION_DAYS = Object.values(logs.RetentionDays).filter(
  (value): value is number => typeof value === 'number' && value > 0,
)

/** Every key of the config file, once. */
export const CONFIG_SCHEMA: Readonly<Record<keyof TokenServiceConfig, Field>> = {
  stackName: { type: 'string', doc: 'The CloudFormation stack name.', default: 'TokenService' },
  clients: {
    type: 'clients',
    doc: 'The OAuth clients (docs/design.md "Clients"): `client_id`, `type`, `audience`, `allowed_origins`, `scopes`, token lifetimes, `reuse_grace_seconds`, `cookie_mode`. Unknown client keys are refused.',
  },
  issuer: {
    type: 'string',
    doc: 'The `iss` claim: an https URL with no trailing slash.',
    default: '`https://<domain.domainName>`, else the API endpoint',
  },
  algorithm: {
    type: 'enum',
    values: ['RS256', 'ES256'],
    default: DEFAULTS.algorithm,
    doc: 'KMS `RSA_2048` (RS256, the only one the native JWT authorizer accepts) or `ECC_NIST_P256` (ES256). A KeySpec cannot change in place: a new algorithm needs a new stack.',
  },
  signing: {
    type: 'enum',
    values: ['kms', 'envelope'],
    default: DEFAULTS.signing,
    doc: 'How keys added from now on sign. `kms`: a KMS `Sign` per token, the private key never leaves KMS; KMS allows 1,000 RSA (or ECC) signing requests a second per account and region, shared with the account. `envelope`: KMS generates the key pair and keeps the private key wrapped under a symmetric key of the stack; `login` and `token` unwrap it once per container and sign in memory, with no KMS call per token. A listed key keeps its mode: to switch, rotate to a new key (docs/operations.md "Key rotation"). Trade-off: docs/security.md "Signing keys: KMS or envelope"; when to switch: docs/capacity.md.',
  },
  signingKeys: {
    type: 'signingKeys',
    doc: 'The KMS signing keys, `{ id, state }` with exactly one `active`; the others `retiring` (published, never signing). See docs/operations.md "Key rotation".',
    default: '`[{ id: "k1", state: "active" }]`',
  },
  signingKeysLock: {
    type: 'string',
    doc: 'The signing-key ledger file that synth checks each key change against, or `off`.',
    default: 'signing-keys.lock.json',
  },
  authorizer: {
    type: 'enum',
    values: ['lambda', 'jwt'],
    default: DEFAULTS.authorizer,
    doc: 'What protects `/me` and `/sessions`: our Lambda authorizer, or API Gateway’s native JWT authorizer (RS256 only, no strict mode).',
  },
  strictRevocation: {
    type: 'boolean',
    default: DEFAULTS.strictRevocation,
    doc: 'The Lambda authorizer also checks that the session is live, so that logout ends access within seconds.',
  },
  authorizerCacheTtlSeconds: {
    type: 'integer',
    min: 0,
    max: 3600,
    default:
      'the clock skew (30) capped at the shortest access-token lifetime; 0 with strictRevocation or while a client may use DPoP',
    doc: 'How long API Gateway caches the Lambda authorizer’s answer per token; at most `authorizerSettings.clockSkewSeconds`, so that a cached Allow never outlives the token’s `exp` plus the skew. Must be 0 while a client may use DPoP (its `dpop` is not `disabled`): a cached answer would serve a request whose proof was never checked.',
  },
  throttle: limits('every route', DEFAULTS.throttle.rateLimit, DEFAULTS.throttle.burstLimit),
  loginThrottle: limits(
    '`POST /login`, and apart `POST /me/password` (scrypt costs a vCPU per call)',
    DEFAULTS.loginThrottle.rateLimit,
    DEFAULTS.loginThrottle.burstLimit,
  ),
  removalPolicy: {
    type: 'enum',
    values: ['retain', 'destroy'],
    default: 'retain',
    doc: 'What happens to the table, the keys and the logs when they leave the stack.',
  },
  deletionProtection: {
    type: 'boolean',
    default: 'true unless removalPolicy is destroy',
    doc: 'DynamoDB deletion protection on the table.',
  },
  logRetentionDays: {
    type: 'integer',
    min: 1,
    max: 9999,
    values: RETENTION_DAYS,
    default: DEFAULTS.logRetention,
    doc: 'Retention of the function and access logs, one of CloudWatch Logs’ values.',
  },
  alarmTopicArn: { type: 'string', doc: 'An SNS topic every alarm notifies.', default: 'none' },
  domain: {
    type: 'object',
    doc: 'Serve the API on a custom domain; the issuer becomes `https://<domainName>`.',
    fields: {
      domainName: { type: 'string', doc: 'For example `auth.example.com`.' },
      certificateArn: { type: 'string', doc: 'An ACM certificate for it, in the stack’s region.' },
      hostedZoneId: {
        type: 'string',
        doc: 'A Route 53 zone for A/AAAA alias records.',
        default: 'no records',
      },
      hostedZoneName: {
        type: 'string',
        doc: 'That zone’s name, e.g. `example.com`; goes with hostedZoneId.',
        default: 'none',
      },
    },
  },
  jwksMaxAgeSeconds: fromSetting('JWKS_MAX_AGE_SECONDS'),
  tokenBackdateSeconds: fromSetting('TOKEN_BACKDATE_SECONDS'),
  loginBackoff: {
    type: 'object',
    doc: 'The login back-off per username (docs/design.md "Login protection").',
    fields: {
      freeFailures: fromSetting('LOGIN_FREE_FAILURES'),
      baseSeconds: fromSetting('LOGIN_BACKOFF_BASE_SECONDS'),
      maxSeconds: fromSetting('LOGIN_BACKOFF_MAX_SECONDS'),
      failureWindowSeconds: fromSetting('LOGIN_FAILURE_WINDOW_SECONDS'),
    },
  },
  authorizerSettings: {
    type: 'object',
    doc: 'The Lambda authorizer’s verification settings; `audiences` also sets the native JWT authorizer’s.',
    fields: {
      clockSkewSeconds: fromSetting('AUTHORIZER_SKEW_SECONDS'),
      sessionCacheSeconds: fromSetting('AUTHORIZER_SESSION_CACHE_SECONDS'),
      maxTokenBytes: fromSetting('AUTHORIZER_MAX_TOKEN_BYTES'),
      audiences: {
        type: 'strings',
        doc: SETTINGS.AUTHORIZER_AUDIENCES.doc,
        default: 'every client’s audience',
      },
    },
  },
  securityEvents: {
    type: 'object',
    doc: 'The security events (docs/events.md): each is written with its change as an outbox item in the table, whatever this says.',
    fields: {
      bus: {
        type: 'boolean',
        default: DEFAULTS.securityEvents.bus,
        doc: 'A custom EventBridge bus the table’s stream feeds through the forwarder function, with a dead-letter queue and alarms (docs/operations.md "Security events"). Off: no stream, forwarder or bus.',
      },
    },
  },
}

export class ConfigFileError extends Error {
  override readonly name = 'ConfigFileError'
}

const show = (value: unknown) => JSON.stringify(value) ?? String(value)

/** Checks one value against its field; returns it, or throws naming `path`. */
function check(field: Field, value: unknown, path: string): unknown {
  const refuse = (what: string) =>
    new ConfigFileError(`${path} must be ${what}, got ${show(value)}`)
  switch (field.type) {
    case 'string':
      if (typeof value !== 'string' || value.trim() === '') throw refuse('a non-empty string')
      return value
    case 'boolean':
      if (typeof value !== 'boolean') throw refuse('true or false')
      return value
    case 'integer': {
      const bounds = `an integer from ${field.min} to ${field.max}${field.setting ? ` (${field.setting})` : ''}`
      if (typeof value !== 'number' || !Number.isInteger(value)) throw refuse(bounds)
      if (value < field.min || value > field.max) throw refuse(bounds)
      if (field.values && !field.values.includes(value)) {
        throw refuse(`one of ${field.values.join(', ')}`)
      }
      return value
    }
    case 'enum':
      if (typeof value !== 'string' || !field.values.includes(value)) {
        throw refuse(`one of ${field.values.map((v) => `"${v}"`).join(', ')}`)
      }
      return value
    case 'strings':
      if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
        throw refuse('an array of strings')
      }
      return value
    case 'clients':
      try {
        parseClients(value)
      } catch (error) {
        throw new ConfigFileError(`${path}: ${(error as Error).message}`)
      }
      return value
    case 'signingKeys':
      try {
        assertSigningKeys(value as SigningKeySpec[])
      } catch (error) {
        throw new ConfigFileError(`${path}: ${(error as Error).message}`)
      }
      return value
    case 'object':
      return checkObject(field.fields, value, path)
  }
}

function checkObject(
  fields: Readonly<Record<string, Field>>,
  value: unknown,
  path: string,
): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigFileError(`${path} must be an object, got ${show(value)}`)
  }
  const checked: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) {
    const at = path ? `${path}.${key}` : key
    const field = fields[key]
    if (!field) {
      throw new ConfigFileError(
        `${at} is not a setting (allowed: ${Object.keys(fields).join(', ')})`,
      )
    }
    if (item !== undefined) checked[key] = check(field, item, at)
  }
  return checked
}

/**
 * Validates a config object: every key known (top level, nested and in each
 * client), every value within its bounds. Throws a `ConfigFileError` naming the
 * key and what it allows.
 */
export function parseConfig(value: unknown, source = 'config'): TokenServiceConfig {
  try {
    const config = checkObject(CONFIG_SCHEMA, value, '')
    if (config.clients === undefined) throw new ConfigFileError('clients must be set')
    const domain = config.domain as TokenServiceConfig['domain']
    if (domain && (!domain.domainName || !domain.certificateArn)) {
      throw new ConfigFileError('domain needs both domainName and certificateArn')
    }
    if (domain && (domain.hostedZoneId === undefined) !== (domain.hostedZoneName === undefined)) {
      throw new ConfigFileError('domain.hostedZoneId and domain.hostedZoneName go together')
    }
    return config as unknown as TokenServiceConfig
  } catch (error) {
    if (error instanceof ConfigFileError) {
      throw new ConfigFileError(`${source}: ${error.message}`)
    }
    throw error
  }
}

/** Context keys that are the CDK's own, not settings. */
const CDK_CONTEXT = /^(@|aws:|aws-cdk:|cdk-|cli-telemetry$|acknowledged-issue-numbers$)/

/** Context keys of the app that are not config settings. */
export const APP_CONTEXT = {
  config: 'the config file to load. Default: token-service.config.ts',
  unsafeKeyChangeReason:
    'accept a signing-key change the ledger refuses, stating why (a compromised key must go now)',
} as const

/**
 * The file's config with `-c KEY=VALUE` overrides: KEY is a setting, or a dotted
 * path into one (`-c loginBackoff.freeFailures=5`); VALUE is JSON, or a plain
 * string for string settings. Unknown keys are refused.
 */
export function withOverrides(
  config: TokenServiceConfig,
  context: Readonly<Record<string, unknown>>,
): TokenServiceConfig {
  const result = structuredClone(config) as unknown as Record<string, unknown>
  for (const [key, raw] of Object.entries(context)) {
    if (CDK_CONTEXT.test(key) || key in APP_CONTEXT) continue
    const path = key.split('.')
    let fields: Readonly<Record<string, Field>> = CONFIG_SCHEMA
    let target = result
    for (const [index, name] of path.entries()) {
      const field = fields[name]
      if (!field) {
        throw new ConfigFileError(
          `-c ${key}: ${path.slice(0, index + 1).join('.')} is not a setting (allowed: ${Object.keys(fields).join(', ')})`,
        )
      }
      if (index === path.length - 1) {
        target[name] = parseOverride(field, raw)
      } else {
        if (field.type !== 'object') throw new ConfigFileError(`-c ${key}: ${name} has no fields`)
        fields = field.fields
        target[name] = { ...(target[name] as object) }
        target = target[name] as Record<string, unknown>
      }
    }
  }
  return result as unknown as TokenServiceConfig
}

function parseOverride(field: Field, raw: unknown): unknown {
  if (typeof raw !== 'string') return raw // cdk.json or a test gives JSON values already
  if (field.type === 'string' || field.type === 'enum') return raw
  try {
    return JSON.parse(raw)
  } catch {
    return raw // refused by the check with the key's name
  }
}

/** What the CDK app builds: the stack's name and props, and the ledger to check keys against. */
export interface AppSettings {
  readonly stackName: string
  readonly props: TokenServiceStackProps
  /** Where the signing-key ledger lives; `undefined` when turned off with `signingKeysLock: 'off'`. */
  readonly keyLedgerPath?: string
  /** Lets synth accept an unsafe key change (a compromised key must go now); recorded in the ledger. */
  readonly unsafeKeyChangeReason?: string
  /** The validated config. */
  readonly config: TokenServiceConfig
}

/**
 * The app's settings: the config file's object with the context's overrides,
 * validated. Throws an error naming the file (or `-c`) and the key.
 */
export function readAppSettings(
  scope: Construct,
  file: { readonly path: string; readonly config: unknown },
): AppSettings {
  const context = scope.node.getAllContext() as Record<string, unknown>
  const config = parseConfig(
    withOverrides(parseConfig(file.config, file.path), context),
    `${file.path} with -c overrides`,
  )
  const reason = context.unsafeKeyChangeReason
  const lock = config.signingKeysLock ?? 'signing-keys.lock.json'
  return {
    stackName: config.stackName ?? 'TokenService',
    config,
    props: stackProps(config),
    ...(lock !== 'off' && { keyLedgerPath: lock }),
    ...(typeof reason === 'string' && reason.trim() !== '' && { unsafeKeyChangeReason: reason }),
  }
}

/** The stack's props from a valid config. */
export function stackProps(config: TokenServiceConfig): TokenServiceStackProps {
  const seconds = (value: number | undefined) =>
    value === undefined ? undefined : Duration.seconds(value)
  const throttle = (
    limits: TokenServiceConfig['throttle'],
    fallback: { readonly rateLimit: number; readonly burstLimit: number },
  ) =>
    limits && {
      rateLimit: limits.rateLimit ?? fallback.rateLimit,
      burstLimit: limits.burstLimit ?? fallback.burstLimit,
    }
  const props: TokenServiceStackProps = {
    description: 'Token service: login, rotating refresh tokens, revoke, JWKS (KMS, DynamoDB)',
    clients: config.clients,
    issuer: config.issuer,
    signingKeys: config.signingKeys,
    algorithm: config.algorithm,
    signing: config.signing,
    authorizer: config.authorizer,
    strictRevocation: config.strictRevocation,
    authorizerCacheTtl: seconds(config.authorizerCacheTtlSeconds),
    throttle: throttle(config.throttle, DEFAULTS.throttle),
    loginThrottle: throttle(config.loginThrottle, DEFAULTS.loginThrottle),
    removalPolicy:
      config.removalPolicy === undefined
        ? undefined
        : config.removalPolicy === 'destroy'
          ? RemovalPolicy.DESTROY
          : RemovalPolicy.RETAIN,
    deletionProtection: config.deletionProtection,
    logRetention: config.logRetentionDays as logs.RetentionDays | undefined,
    alarmTopicArn: config.alarmTopicArn,
    domain: config.domain,
    jwksMaxAge: seconds(config.jwksMaxAgeSeconds),
    tokenBackdateSeconds: config.tokenBackdateSeconds,
    loginBackoff: config.loginBackoff,
    authorizerSettings: config.authorizerSettings,
    securityEvents: config.securityEvents,
    // Environment-agnostic unless the CLI knows the account and region: synth needs no credentials.
    ...(process.env.CDK_DEFAULT_ACCOUNT &&
      process.env.CDK_DEFAULT_REGION && {
        env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
      }),
  }
  return Object.fromEntries(
    Object.entries(props).filter(([, value]) => value !== undefined),
  ) as TokenServiceStackProps
}
