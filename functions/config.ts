import { type Client, ClientConfigError, parseClients } from './core/clients.js'
import type { SigningAlgorithm } from './core/ports.js'
import type { Regions } from './core/regions.js'
import type { BackoffPolicy } from './core/throttle.js'
import {
  type IntegerSetting,
  issuerProblem,
  outOfBounds,
  SETTING_RULES,
  SETTINGS,
  type SettingName,
} from './settings.js'

/**
 * The only place that reads environment variables. Each loader reads one
 * section, validated against functions/settings.ts, and a handler calls only the
 * loaders it needs at cold start. A bad value fails there, naming the variable.
 */

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

export type Env = Readonly<Record<string, string | undefined>>

const raw = (env: Env, name: SettingName): string | undefined => env[name]?.trim() || undefined

function required(env: Env, name: SettingName): string {
  const value = raw(env, name)
  if (value === undefined) throw new ConfigError(`${name} must be set`)
  return value
}

function integer(env: Env, name: IntegerSetting): number {
  const text = raw(env, name)
  if (text === undefined) return SETTINGS[name].default
  if (outOfBounds(name, Number(text))) {
    const { min, max } = SETTINGS[name]
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${text}"`)
  }
  return Number(text)
}

function list(env: Env, name: SettingName): string[] {
  return (raw(env, name) ?? '')
    .split(',')
    .map((value) => value.trim())
    .filter(Boolean)
}

/** The issuer and the clients: what every HTTP function needs (client lookup, CORS). */
export interface HttpConfig {
  /** `ISSUER`: the `iss` claim, exactly as verifiers compare it. */
  readonly issuer: string
  /** `CLIENTS`. */
  readonly clients: ReadonlyMap<string, Client>
}

export function loadIssuer(env: Env = process.env): string {
  const issuer = required(env, 'ISSUER')
  const problem = issuerProblem(issuer, { https: false })
  if (problem) throw new ConfigError(`ISSUER must be ${problem}`)
  return issuer
}

/**
 * True for an https URL, or an http one on a loopback host (local mode and
 * its tests): what the authorizer trusts for its issuer and its keys. Plain
 * http elsewhere would let anyone on the path serve it keys.
 */
export function isSecureUrl(url: URL): boolean {
  if (url.protocol === 'https:') return true
  if (url.protocol !== 'http:') return false
  return (
    url.hostname === 'localhost' ||
    url.hostname === '[::1]' ||
    /^127(\.\d{1,3}){3}$/.test(url.hostname)
  )
}

function secureUrl(name: SettingName, value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ConfigError(`${name} must be an absolute URL`)
  }
  if (!isSecureUrl(url)) {
    throw new ConfigError(
      `${name} must be an https URL (http only on localhost, 127.0.0.1 or [::1]), got "${value}"`,
    )
  }
  return value
}

export function loadHttpConfig(env: Env = process.env): HttpConfig {
  let clients: Map<string, Client>
  try {
    clients = parseClients(JSON.parse(required(env, 'CLIENTS')))
  } catch (error) {
    if (error instanceof ConfigError) throw error
    const why = error instanceof ClientConfigError ? error.message : 'is not valid JSON'
    throw new ConfigError(`CLIENTS: ${why}`)
  }
  return { issuer: loadIssuer(env), clients }
}

/** Where a request comes from and what it must carry, when an edge fronts the API. */
export interface EdgeConfig {
  /** `EDGE_ORIGIN_SECRET`: what `X-Origin-Verify` must hold; undefined, no check. */
  readonly secret?: string
  /** `REQUEST_ORIGIN`: the scheme and host clients call; undefined, the one API Gateway saw. */
  readonly origin?: string
}

export function loadEdgeConfig(env: Env = process.env): EdgeConfig {
  const secret = raw(env, 'EDGE_ORIGIN_SECRET')
  const origin = raw(env, 'REQUEST_ORIGIN')
  if (origin !== undefined) {
    let url: URL | undefined
    try {
      url = new URL(origin)
    } catch {}
    if (!url || url.origin !== origin) {
      throw new ConfigError(
        `REQUEST_ORIGIN must be a scheme and host with no path, like https://auth.example.com, got "${origin}"`,
      )
    }
  }
  return { ...(secret && { secret }), ...(origin && { origin }) }
}

/** Every client's allowed origins: the CORS allow-list. */
export const corsOrigins = (clients: ReadonlyMap<string, Client>): string[] => [
  ...new Set([...clients.values()].flatMap((client) => client.allowedOrigins)),
]

/** `TABLE_NAME`. */
export const loadTableName = (env: Env = process.env): string => required(env, 'TABLE_NAME')

/** `OUTBOX_REGION`: the region the security events written here are marked with; undefined with one region. */
export const loadOutboxRegion = (env: Env = process.env): string | undefined =>
  raw(env, 'OUTBOX_REGION')

/**
 * `REGIONS`, `HOME_REGION`, `FAILOVER`: this function's regions, undefined with one region
 * (neither set). One without the other, or a home not in the list, fails the cold start.
 */
export function loadRegions(env: Env = process.env): Regions | undefined {
  const all = list(env, 'REGIONS')
  const here = raw(env, 'HOME_REGION')
  if (all.length === 0 && here === undefined) return undefined
  if (here === undefined || !all.includes(here)) {
    throw new ConfigError(
      `HOME_REGION must be one of REGIONS (${all.join(',')}), got ${String(here)}`,
    )
  }
  const failover = raw(env, 'FAILOVER') ?? SETTINGS.FAILOVER.default
  if (!(SETTINGS.FAILOVER.values as readonly string[]).includes(failover)) {
    throw new ConfigError(
      `FAILOVER must be one of ${SETTINGS.FAILOVER.values.join(', ')}, got ${failover}`,
    )
  }
  return { here, all, failover: failover as Regions['failover'] }
}

/** Where a refresh homed elsewhere is forwarded: the token function's name, and the time budget. */
export interface HomeForwardConfig {
  /** `HOME_FUNCTION_NAME`. */
  readonly functionName: string
  /** `HOME_FORWARD_TIMEOUT_MS`. */
  readonly timeoutMs: number
}

export const loadHomeForwardConfig = (env: Env = process.env): HomeForwardConfig => ({
  functionName: required(env, 'HOME_FUNCTION_NAME'),
  timeoutMs: integer(env, 'HOME_FORWARD_TIMEOUT_MS'),
})

/** What the forwarder needs: where the events go, and their `source`. */
export interface ForwarderConfig {
  /** `EVENT_BUS_NAME`. */
  readonly busName: string
  /** `ISSUER`: the CloudEvents `source`. */
  readonly source: string
}

export const loadForwarderConfig = (env: Env = process.env): ForwarderConfig => ({
  busName: required(env, 'EVENT_BUS_NAME'),
  source: loadIssuer(env),
})

/** `GRACE_KEY_ID`: the KMS key that wraps the grace seals' data keys. */
export const loadGraceKeyId = (env: Env = process.env): string => required(env, 'GRACE_KEY_ID')

/** The AWS SDK's per-call bounds. */
export interface AwsCallConfig {
  /** `AWS_CALL_TIMEOUT_MS`. */
  readonly callTimeoutMs: number
  /** `AWS_MAX_ATTEMPTS`. */
  readonly maxAttempts: number
}

export const loadAwsCallConfig = (env: Env = process.env): AwsCallConfig => ({
  callTimeoutMs: integer(env, 'AWS_CALL_TIMEOUT_MS'),
  maxAttempts: integer(env, 'AWS_MAX_ATTEMPTS'),
})

/** The KMS signing keys. */
export interface SigningConfig {
  /** `SIGNING_KEY_ID`: the active key (id, ARN or alias). */
  readonly activeKeyId: string
  /** `RETIRING_KEY_IDS`: keys still published in the JWKS. @default none */
  readonly retiringKeyIds: readonly string[]
  /** `SIGNING_ALG`. @default RS256 */
  readonly alg: SigningAlgorithm
}

export function loadSigningConfig(env: Env = process.env): SigningConfig {
  const alg = raw(env, 'SIGNING_ALG') ?? SETTINGS.SIGNING_ALG.default
  if (!(SETTINGS.SIGNING_ALG.values as readonly string[]).includes(alg)) {
    throw new ConfigError(`SIGNING_ALG must be ${SETTINGS.SIGNING_ALG.values.join(' or ')}`)
  }
  return {
    activeKeyId: required(env, 'SIGNING_KEY_ID'),
    retiringKeyIds: list(env, 'RETIRING_KEY_IDS'),
    alg: alg as SigningAlgorithm,
  }
}

/** What envelope signing keys need (docs/design.md "Keys"). */
export interface EnvelopeConfig {
  /** `ENVELOPE_KEY_ID`: the single-Region symmetric KMS key that wraps their private keys. */
  readonly wrappingKeyId?: string
  /**
   * `ENVELOPE_MULTI_REGION_KEY_ID`: with `regions`, this region's copy of the multi-Region
   * key that wraps the private keys of the keys added with them.
   */
  readonly multiRegionKeyId?: string
  /** `SIGNING_KEY_OWNER`: `<stack>/<construct id>`, in each private key's encryption context. */
  readonly owner: string
  /** `ENVELOPE_KEY_PAIR_REGION`: outside the primary, the primary, where pairs are created. */
  readonly keyPairRegion?: string
}

/**
 * `ENVELOPE_KEY_ID` or `ENVELOPE_MULTI_REGION_KEY_ID` (at least one), `SIGNING_KEY_OWNER`,
 * and `ENVELOPE_KEY_PAIR_REGION` if set: when a signing key is an envelope key
 * (`envelope:<id>`), undefined otherwise.
 */
export function loadEnvelopeConfig(
  signing: SigningConfig,
  env: Env = process.env,
): EnvelopeConfig | undefined {
  const envelope = [signing.activeKeyId, ...signing.retiringKeyIds].some((id) =>
    id.startsWith('envelope:'),
  )
  if (!envelope) return undefined
  const wrappingKeyId = raw(env, 'ENVELOPE_KEY_ID')
  const multiRegionKeyId = raw(env, 'ENVELOPE_MULTI_REGION_KEY_ID')
  const keyPairRegion = raw(env, 'ENVELOPE_KEY_PAIR_REGION')
  if (wrappingKeyId === undefined && multiRegionKeyId === undefined) {
    // The one that names the variable a single-Region stack sets.
    required(env, 'ENVELOPE_KEY_ID')
  }
  return {
    ...(wrappingKeyId !== undefined && { wrappingKeyId }),
    ...(multiRegionKeyId !== undefined && { multiRegionKeyId }),
    owner: required(env, 'SIGNING_KEY_OWNER'),
    ...(keyPairRegion !== undefined && { keyPairRegion }),
  }
}

/**
 * `DPOP_NONCE_KEY_ID`: the KMS key DPoP nonces come from; required when a
 * client has `dpop_nonce`, undefined otherwise.
 */
export function loadDpopNonceKeyId(
  clients: ReadonlyMap<string, Client>,
  env: Env = process.env,
): string | undefined {
  const keyId = raw(env, 'DPOP_NONCE_KEY_ID')
  const nonceClients = [...clients.values()].filter((client) => client.dpopNonce)
  if (keyId === undefined && nonceClients.length > 0) {
    const names = nonceClients.map((client) => client.clientId).join(', ')
    throw new ConfigError(`DPOP_NONCE_KEY_ID must be set: clients ${names} have dpop_nonce`)
  }
  return keyId
}

/** `TOKEN_BACKDATE_SECONDS`. */
export const loadBackdateSeconds = (env: Env = process.env): number =>
  integer(env, 'TOKEN_BACKDATE_SECONDS')

/** `JWKS_MAX_AGE_SECONDS`. */
export const loadJwksMaxAgeSeconds = (env: Env = process.env): number =>
  integer(env, 'JWKS_MAX_AGE_SECONDS')

/** The login back-off per username (core/throttle.ts): the `LOGIN_*` variables. */
export function loadLoginBackoff(env: Env = process.env): BackoffPolicy {
  const policy = {
    freeFailures: integer(env, 'LOGIN_FREE_FAILURES'),
    baseSeconds: integer(env, 'LOGIN_BACKOFF_BASE_SECONDS'),
    maxSeconds: integer(env, 'LOGIN_BACKOFF_MAX_SECONDS'),
    windowSeconds: integer(env, 'LOGIN_FAILURE_WINDOW_SECONDS'),
  }
  if (!SETTING_RULES.failureWindow.holds(policy)) {
    throw new ConfigError('LOGIN_FAILURE_WINDOW_SECONDS must be at least LOGIN_BACKOFF_MAX_SECONDS')
  }
  return policy
}

/** The optional breached-password range API (core/password-policy.ts, rule 4). */
export interface BreachCheckConfig {
  /** `PASSWORD_BREACH_CHECK_URL`. */
  readonly url: string
  /** `PASSWORD_BREACH_CHECK_TIMEOUT_MS`. @default 1500 */
  readonly timeoutMs: number
}

/** `PASSWORD_BREACH_CHECK_*`: undefined (the default) when no range API is configured. */
export function loadBreachCheck(env: Env = process.env): BreachCheckConfig | undefined {
  const url = raw(env, 'PASSWORD_BREACH_CHECK_URL')
  const timeoutMs = integer(env, 'PASSWORD_BREACH_CHECK_TIMEOUT_MS')
  if (url === undefined) return undefined
  return { url: secureUrl('PASSWORD_BREACH_CHECK_URL', url), timeoutMs }
}

/** The Lambda authorizer's settings (docs/design.md "Authorizer"). */
export interface AuthorizerConfig {
  /** `ISSUER`. */
  readonly issuer: string
  /** `JWKS_URI`. @default `<ISSUER>/.well-known/jwks.json` */
  readonly jwksUri: string
  /** `AUTHORIZER_AUDIENCES`: the `aud` values accepted. */
  readonly audiences: readonly string[]
  /** `AUTHORIZER_SKEW_SECONDS`. @default 30 */
  readonly skewSeconds: number
  /** `AUTHORIZER_MAX_TOKEN_BYTES`. @default 4096 */
  readonly maxTokenBytes: number
  /** `AUTHORIZER_MAX_TOKEN_LIFETIME_SECONDS`: the longest `exp − iat`, skew aside. @default 3660 */
  readonly maxLifetimeSeconds: number
  /** `AUTHORIZER_CACHE_SECONDS`: API Gateway's cache of an answer, at most the skew. @default 0 */
  readonly answerCacheSeconds: number
  /** `JWKS_FETCH_TIMEOUT_MS`: the JWKS fetch's budget, longer than an AWS call's. */
  readonly jwksFetchTimeoutMs: number
  /** `REQUEST_ORIGIN`: the host clients call, for a proof's `htu`. @default the one API Gateway saw */
  readonly requestOrigin?: string
}

export function loadAuthorizerConfig(env: Env = process.env): AuthorizerConfig {
  const issuer = secureUrl('ISSUER', loadIssuer(env))
  const audiences = list(env, 'AUTHORIZER_AUDIENCES')
  if (audiences.length === 0) throw new ConfigError('AUTHORIZER_AUDIENCES must be set')
  const jwksUri = secureUrl('JWKS_URI', raw(env, 'JWKS_URI') ?? `${issuer}/.well-known/jwks.json`)
  const skewSeconds = integer(env, 'AUTHORIZER_SKEW_SECONDS')
  const answerCacheSeconds = integer(env, 'AUTHORIZER_CACHE_SECONDS')
  const { origin: requestOrigin } = loadEdgeConfig(env)
  if (!SETTING_RULES.answerCache.holds({ cacheSeconds: answerCacheSeconds, skewSeconds })) {
    throw new ConfigError(
      `AUTHORIZER_CACHE_SECONDS must not exceed AUTHORIZER_SKEW_SECONDS (${skewSeconds})`,
    )
  }
  return {
    issuer,
    jwksUri,
    audiences,
    skewSeconds,
    maxTokenBytes: integer(env, 'AUTHORIZER_MAX_TOKEN_BYTES'),
    maxLifetimeSeconds: integer(env, 'AUTHORIZER_MAX_TOKEN_LIFETIME_SECONDS'),
    answerCacheSeconds,
    jwksFetchTimeoutMs: integer(env, 'JWKS_FETCH_TIMEOUT_MS'),
    ...(requestOrigin && { requestOrigin }),
  }
}

/** `AUTHORIZER_SESSION_CACHE_SECONDS`: strict mode's reuse of a session's verdict. @default 5 */
export const loadSessionCacheSeconds = (env: Env = process.env): number =>
  integer(env, 'AUTHORIZER_SESSION_CACHE_SECONDS')

/** True inside AWS Lambda, where cold-start I/O (key warming) belongs at module scope. */
export const inLambda = (env: Env = process.env): boolean => Boolean(env.AWS_LAMBDA_FUNCTION_NAME)
