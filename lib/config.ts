import { Duration, RemovalPolicy } from 'aws-cdk-lib'
import type * as logs from 'aws-cdk-lib/aws-logs'
import type { Construct } from 'constructs'
import { parseClients } from '../functions/core/clients.js'
import { CONFIG_SCHEMA, type Field, type Fields, type TokenServiceConfig } from './config-schema.js'
import { DEFAULTS } from './defaults.js'
import { assertSigningKeys, type SigningKeySpec } from './signing-keys.js'
import type { TokenServiceStackProps } from './token-service-stack.js'

/**
 * The deploy configuration: one committed, typed file (`token-service.config.ts`)
 * that the CDK app loads, validates at synth and turns into the stack's props.
 * Every key is defined once in `CONFIG_SCHEMA` (lib/config-schema.ts), which
 * gives the file its type; this module checks a file against it and maps it
 * onto the stack's props.
 */
export { CONFIG_SCHEMA, type TokenServiceConfig } from './config-schema.js'

/** Types the config file's object (`export default defineConfig({...})`). */
export const defineConfig = (config: TokenServiceConfig): TokenServiceConfig => config

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
      if (field.pattern && !field.pattern.regex.test(value)) throw refuse(field.pattern.what)
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

function checkObject(fields: Fields, value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigFileError(`${path} must be an object, got ${show(value)}`)
  }
  const checked: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) {
    const at = path ? `${path}.${key}` : key
    const field = fields[key]
    if (!field) {
      const near = closest(key, Object.keys(fields))
      throw new ConfigFileError(
        `${at} is not a setting${near ? `: did you mean ${near}?` : ''} (allowed: ${Object.keys(fields).join(', ')})`,
      )
    }
    if (item !== undefined) checked[key] = check(field, item, at)
  }
  const missing = Object.keys(fields).filter(
    (key) => fields[key]?.required && checked[key] === undefined,
  )
  if (missing.length > 0) {
    if (!path) throw new ConfigFileError(`${missing.join(', ')} must be set`)
    const required = Object.keys(fields).filter((key) => fields[key]?.required)
    const names = required.length === 2 ? `both ${required.join(' and ')}` : required.join(', ')
    throw new ConfigFileError(`${path} needs ${names}`)
  }
  return checked
}

/** The allowed key a typo most likely meant: at most 2 edits away, ignoring case. */
function closest(key: string, allowed: readonly string[]): string | undefined {
  const distance = (a: string, b: string) => {
    let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
    for (let i = 1; i <= a.length; i++) {
      const row = [i]
      for (let j = 1; j <= b.length; j++) {
        const cost = a[i - 1] === b[j - 1] ? 0 : 1
        row[j] = Math.min(
          (previous[j] as number) + 1,
          (row[j - 1] as number) + 1,
          (previous[j - 1] as number) + cost,
        )
      }
      previous = row
    }
    return previous[b.length] as number
  }
  const [best] = allowed
    .map((name) => ({ name, d: distance(key.toLowerCase(), name.toLowerCase()) }))
    .filter(({ d }) => d <= 2)
    .sort((a, b) => a.d - b.d)
  return best?.name
}

/**
 * Validates a config object: every key known (top level, nested and in each
 * client), every value within its bounds. Throws a `ConfigFileError` naming the
 * key and what it allows.
 */
export function parseConfig(value: unknown, source = 'config'): TokenServiceConfig {
  try {
    const config = checkObject(CONFIG_SCHEMA, value, '')
    const domain = config.domain as TokenServiceConfig['domain']
    if (domain && (domain.hostedZoneId === undefined) !== (domain.hostedZoneName === undefined)) {
      throw new ConfigFileError('domain.hostedZoneId and domain.hostedZoneName go together')
    }
    checkRegions(config as TokenServiceConfig)
    if (config.edge !== undefined && config.region === undefined) {
      throw new ConfigFileError(
        'edge needs region: the web ACL of a CloudFront distribution lives in us-east-1, in a companion stack when the service is elsewhere',
      )
    }
    return config as unknown as TokenServiceConfig
  } catch (error) {
    if (error instanceof ConfigFileError) {
      throw new ConfigFileError(`${source}: ${error.message}`)
    }
    throw error
  }
}

/** An AWS region name, as `eu-west-1`, `us-gov-west-1` or `ap-southeast-5`. */
const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/

/** `regions`: distinct region names, at least two; `tableMigration` needs them and `tableName`. */
function checkRegions(config: TokenServiceConfig): void {
  const { regions, tableMigration, tableName } = config
  if (regions !== undefined) {
    const bad = regions.find((region) => !REGION.test(region))
    if (bad !== undefined) {
      throw new ConfigFileError(
        `regions must list AWS region names such as "eu-west-1", got ${show(bad)}`,
      )
    }
    if (new Set(regions).size !== regions.length) {
      throw new ConfigFileError(`regions must list each region once, got ${show(regions)}`)
    }
    if (regions.length < 2) {
      throw new ConfigFileError(
        `regions must list at least 2 regions (leave it out for one region), got ${show(regions)}`,
      )
    }
    if (config.issuer === undefined && config.domain === undefined) {
      throw new ConfigFileError(
        'regions needs issuer (or domain): every region signs the same iss, behind one hostname (docs/operations.md "One issuer behind one hostname")',
      )
    }
    if (config.region !== undefined && config.region !== regions[0]) {
      throw new ConfigFileError(
        `region must be the first of regions (the primary) or left out, got ${show(config.region)} with regions ${show(regions)}`,
      )
    }
    if (config.edge !== undefined) {
      throw new ConfigFileError(
        'edge is not built for regions yet: one CloudFront distribution would need an origin per region (docs/multi-region.md "Not built yet")',
      )
    }
  }
  if (config.failover !== undefined && regions === undefined) {
    throw new ConfigFileError(
      'failover needs regions: with one region there is no other region to fail over to',
    )
  }
  if (config.failover === 'adopt' && (config.tableMigration ?? 'none') !== 'none') {
    // The fork consumer reads the global table's stream with both images: the move's import
    // step declares the stream as the regional table had it.
    throw new ConfigFileError(
      'failover "adopt" needs the move to several regions finished: set tableMigration "none" first (docs/operations.md "Moving to several regions")',
    )
  }
  if (tableMigration !== undefined && tableMigration !== 'none') {
    if (regions === undefined || tableName === undefined) {
      throw new ConfigFileError(
        `tableMigration "${tableMigration}" needs regions and tableName (the deployed table's name): docs/operations.md "Moving to several regions"`,
      )
    }
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
    let fields: Fields = CONFIG_SCHEMA
    let target = result
    for (const [index, name] of path.entries()) {
      const field = fields[name]
      if (!field) {
        const near = closest(name, Object.keys(fields))
        throw new ConfigFileError(
          `-c ${key}: ${path.slice(0, index + 1).join('.')} is not a setting${near ? `: did you mean ${near}?` : ''} (allowed: ${Object.keys(fields).join(', ')})`,
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
  /** Every region, the primary first; `undefined` for one region (the CLI's). */
  readonly regions?: readonly string[]
  /** With `regions`: what a refresh gets when its home region cannot be reached. */
  readonly failover?: 'relogin' | 'adopt'
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
    ...(config.regions && { regions: config.regions }),
    ...(config.regions && { failover: config.failover ?? 'relogin' }),
    ...(lock !== 'off' && { keyLedgerPath: lock }),
    ...(typeof reason === 'string' && reason.trim() !== '' && { unsafeKeyChangeReason: reason }),
  }
}

/**
 * How each key of the config file reaches the stack's props: `same` passes it on under
 * its name (its type must be the prop's), a function converts it, `app` is the CDK
 * app's own (stack name, key ledger). A new key fails to compile until it is here.
 */
type ToProps = {
  readonly [K in keyof TokenServiceConfig]-?:
    | 'app'
    | (K extends keyof TokenServiceStackProps
        ? NonNullable<TokenServiceConfig[K]> extends NonNullable<TokenServiceStackProps[K]>
          ? 'same'
          : never
        : never)
    | ((value: NonNullable<TokenServiceConfig[K]>) => Partial<TokenServiceStackProps>)
}

/** API Gateway needs both limits: a key left out takes its default. */
const filled = (
  limits: NonNullable<TokenServiceConfig['throttle']>,
  fallback: { readonly rateLimit: number; readonly burstLimit: number },
) => ({
  rateLimit: limits.rateLimit ?? fallback.rateLimit,
  burstLimit: limits.burstLimit ?? fallback.burstLimit,
})

const TO_PROPS: ToProps = {
  stackName: 'app',
  signingKeysLock: 'app',
  regions: 'app',
  // checkRegions accepts `relogin` alone, which the stacks set with regions (buildStacks).
  failover: 'app',
  tableName: 'same',
  tableMigration: 'same',
  // The stack's `env` (stackProps).
  account: 'app',
  region: 'app',
  clients: 'same',
  issuer: 'same',
  algorithm: 'same',
  signing: 'same',
  signingKeys: 'same',
  authorizer: 'same',
  strictRevocation: 'same',
  authorizerCacheTtlSeconds: (seconds) => ({ authorizerCacheTtl: Duration.seconds(seconds) }),
  throttle: (limits) => ({ throttle: filled(limits, DEFAULTS.throttle) }),
  tokenThrottle: (limits) => ({ tokenThrottle: filled(limits, DEFAULTS.tokenThrottle) }),
  loginThrottle: (limits) => ({ loginThrottle: filled(limits, DEFAULTS.loginThrottle) }),
  passwordThrottle: (limits) => ({
    passwordThrottle: filled(limits, DEFAULTS.passwordThrottle),
  }),
  removalPolicy: (policy) => ({
    removalPolicy: policy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
  }),
  deletionProtection: 'same',
  tableEncryption: 'same',
  // One of CloudWatch Logs' values (the schema checks it).
  logRetentionDays: (days) => ({ logRetention: days as logs.RetentionDays }),
  logSamplePercent: 'same',
  tracing: 'same',
  alarmTopicArn: 'same',
  alarms: 'same',
  domain: 'same',
  jwksMaxAgeSeconds: (seconds) => ({ jwksMaxAge: Duration.seconds(seconds) }),
  tokenBackdateSeconds: 'same',
  loginBackoff: 'same',
  authorizerSettings: 'same',
  securityEvents: 'same',
  passwordBreachCheck: 'same',
  reservedConcurrency: 'same',
  edge: 'same',
  canary: 'same',
  tableWarmThroughput: 'same',
}

/** The stack's props from a valid config. */
export function stackProps(config: TokenServiceConfig): TokenServiceStackProps {
  const props: Record<string, unknown> = {
    description: 'Token service: login, rotating refresh tokens, revoke, JWKS (KMS, DynamoDB)',
    clients: config.clients,
  }
  for (const [key, value] of Object.entries(config)) {
    const to = TO_PROPS[key as keyof TokenServiceConfig]
    if (value === undefined || to === 'app') continue
    Object.assign(props, to === 'same' ? { [key]: value } : (to as (v: unknown) => object)(value))
  }
  // The config's account and region; else environment-agnostic unless the CLI knows both
  // (synth needs no credentials). bin/app.ts warns while they are not pinned.
  const cli =
    process.env.CDK_DEFAULT_ACCOUNT && process.env.CDK_DEFAULT_REGION
      ? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION }
      : {}
  const env = {
    ...cli,
    ...(config.account !== undefined && { account: config.account }),
    ...(config.region !== undefined && { region: config.region }),
  }
  return {
    ...(props as unknown as TokenServiceStackProps),
    ...(Object.keys(env).length > 0 && { env }),
  }
}
