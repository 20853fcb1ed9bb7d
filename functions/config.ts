import { type Client, ClientConfigError, parseClients } from './core/clients.js'
import type { SigningAlgorithm } from './core/ports.js'
import type { BackoffPolicy } from './core/throttle.js'

/**
 * The only place that reads environment variables. `loadConfig` validates them
 * and fails at cold start with a message that names the variable.
 */
export interface Config {
  /** `TABLE_NAME`: the DynamoDB table. */
  readonly tableName: string
  /** `ISSUER`: the `iss` claim and the base of the discovery documents. */
  readonly issuer: string
  /** `CLIENTS`: JSON array of clients (DESIGN.md "Clients"). */
  readonly clients: ReadonlyMap<string, Client>
  /** `SIGNER`: `kms` (default) or `local`. */
  readonly signer:
    | {
        readonly kind: 'kms'
        /** `SIGNING_KEY_ID`: the active KMS key (id, ARN or alias). */
        readonly activeKeyId: string
        /** `RETIRING_KEY_IDS`: comma-separated keys still published in JWKS. @default none */
        readonly retiringKeyIds: readonly string[]
        /** `SIGNING_ALG`: `RS256` (default) or `ES256`. */
        readonly alg: SigningAlgorithm
      }
    | {
        readonly kind: 'local'
        /** `LOCAL_KEY_DIR`: where the local RSA key is kept. @default .local/keys */
        readonly keyDir: string
      }
  /** `DYNAMODB_ENDPOINT`: for DynamoDB Local. @default the AWS endpoint */
  readonly dynamodbEndpoint: string | undefined
  /** `TOKEN_BACKDATE_SECONDS`: `iat`/`nbf` set this early. @default 5 */
  readonly backdateSeconds: number
  /** `JWKS_MAX_AGE_SECONDS`: `Cache-Control: max-age` of the JWKS. @default 300 */
  readonly jwksMaxAgeSeconds: number
  /** `AWS_CALL_TIMEOUT_MS`: per-attempt timeout of each AWS call. @default 1000 */
  readonly awsCallTimeoutMs: number
  /** `AWS_MAX_ATTEMPTS`: attempts per AWS call, the first included. @default 2 */
  readonly awsMaxAttempts: number
  /** The Lambda authorizer's settings (DESIGN.md "Authorizer"). */
  readonly authorizer: AuthorizerConfig
  /**
   * Login back-off per username (core/throttle.ts):
   * `LOGIN_FREE_FAILURES` (default 3), `LOGIN_BACKOFF_BASE_SECONDS` (default 1),
   * `LOGIN_BACKOFF_MAX_SECONDS` (default 900), `LOGIN_FAILURE_WINDOW_SECONDS`
   * (default 86400, at least the longest back-off).
   */
  readonly loginBackoff: BackoffPolicy
}

export interface AuthorizerConfig {
  /**
   * `AUTHORIZER_STRICT`: also check that the token's session is still active
   * (one DynamoDB read per session, cached briefly). @default false
   */
  readonly strict: boolean
  /** `AUTHORIZER_SKEW_SECONDS`: clock skew allowed on `exp`, `nbf` and `iat`. @default 30 */
  readonly skewSeconds: number
  /** `AUTHORIZER_SESSION_CACHE_SECONDS`: strict mode keeps a session's verdict this long. @default 5 */
  readonly sessionCacheSeconds: number
  /** `AUTHORIZER_MAX_TOKEN_BYTES`: longer tokens are refused unread. @default 4096 */
  readonly maxTokenBytes: number
  /**
   * `AUTHORIZER_AUDIENCES`: comma-separated `aud` values accepted.
   * @default every client's audience
   */
  readonly audiences: readonly string[]
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

type Env = Record<string, string | undefined>

export function loadConfig(env: Env = process.env): Config {
  const required = (name: string): string => {
    const value = env[name]?.trim()
    if (!value) throw new ConfigError(`${name} must be set`)
    return value
  }
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name]?.trim()
    if (!raw) return fallback
    const value = Number(raw)
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`)
    }
    return value
  }

  const boolean = (name: string, fallback: boolean): boolean => {
    const raw = env[name]?.trim().toLowerCase()
    if (!raw) return fallback
    if (raw === 'true') return true
    if (raw === 'false') return false
    throw new ConfigError(`${name} must be true or false, got "${env[name]}"`)
  }
  const list = (name: string, fallback: string[]): string[] => {
    const values = (env[name] ?? '')
      .split(',')
      .map((value) => value.trim())
      .filter(Boolean)
    return values.length > 0 ? values : fallback
  }

  const issuer = required('ISSUER')
  try {
    const url = new URL(issuer)
    if (url.search || url.hash || issuer.endsWith('/')) throw new Error()
  } catch {
    throw new ConfigError(
      'ISSUER must be an absolute URL with no query, fragment or trailing slash',
    )
  }

  let clients: Map<string, Client>
  try {
    clients = parseClients(JSON.parse(required('CLIENTS')))
  } catch (error) {
    if (error instanceof ConfigError) throw error
    const why = error instanceof ClientConfigError ? error.message : 'is not valid JSON'
    throw new ConfigError(`CLIENTS: ${why}`)
  }

  const kind = env.SIGNER?.trim() || 'kms'
  let signer: Config['signer']
  if (kind === 'kms') {
    const alg = env.SIGNING_ALG?.trim() || 'RS256'
    if (alg !== 'RS256' && alg !== 'ES256')
      throw new ConfigError('SIGNING_ALG must be RS256 or ES256')
    signer = {
      kind,
      activeKeyId: required('SIGNING_KEY_ID'),
      retiringKeyIds: (env.RETIRING_KEY_IDS ?? '')
        .split(',')
        .map((id) => id.trim())
        .filter(Boolean),
      alg,
    }
  } else if (kind === 'local') {
    signer = { kind, keyDir: env.LOCAL_KEY_DIR?.trim() || '.local/keys' }
  } else {
    throw new ConfigError('SIGNER must be kms or local')
  }

  return {
    tableName: required('TABLE_NAME'),
    issuer,
    clients,
    signer,
    dynamodbEndpoint: env.DYNAMODB_ENDPOINT?.trim() || undefined,
    backdateSeconds: integer('TOKEN_BACKDATE_SECONDS', 5, 0, 60),
    jwksMaxAgeSeconds: integer('JWKS_MAX_AGE_SECONDS', 300, 0, 86_400),
    awsCallTimeoutMs: integer('AWS_CALL_TIMEOUT_MS', 1000, 50, 30_000),
    awsMaxAttempts: integer('AWS_MAX_ATTEMPTS', 2, 1, 5),
    authorizer: {
      strict: boolean('AUTHORIZER_STRICT', false),
      skewSeconds: integer('AUTHORIZER_SKEW_SECONDS', 30, 0, 300),
      sessionCacheSeconds: integer('AUTHORIZER_SESSION_CACHE_SECONDS', 5, 0, 60),
      maxTokenBytes: integer('AUTHORIZER_MAX_TOKEN_BYTES', 4096, 1024, 16_384),
      audiences: list('AUTHORIZER_AUDIENCES', [
        ...new Set([...clients.values()].map((client) => client.audience)),
      ]),
    },
    loginBackoff: loginBackoff(integer),
  }
}

function loginBackoff(
  integer: (name: string, fallback: number, min: number, max: number) => number,
): BackoffPolicy {
  const maxSeconds = integer('LOGIN_BACKOFF_MAX_SECONDS', 900, 1, 86_400)
  const policy = {
    freeFailures: integer('LOGIN_FREE_FAILURES', 3, 0, 100),
    baseSeconds: integer('LOGIN_BACKOFF_BASE_SECONDS', 1, 1, 3600),
    maxSeconds,
    windowSeconds: integer('LOGIN_FAILURE_WINDOW_SECONDS', 86_400, 60, 30 * 86_400),
  }
  if (policy.windowSeconds < maxSeconds) {
    throw new ConfigError('LOGIN_FAILURE_WINDOW_SECONDS must be at least LOGIN_BACKOFF_MAX_SECONDS')
  }
  return policy
}

/** True inside AWS Lambda, where cold-start work belongs at module scope. */
export const inLambda = (env: Env = process.env): boolean => Boolean(env.AWS_LAMBDA_FUNCTION_NAME)

/** Settings of `npm start` (local mode) that the deployed functions do not have. */
export interface LocalConfig {
  /** `PORT`: where the HTTP API listens. @default 3000 */
  readonly port: number
  /** `ISSUER`. @default http://localhost:$PORT */
  readonly issuer: string
  /** `CLIENTS_FILE`: the clients. @default clients.local.json */
  readonly clientsFile: string
  /** `DEMO_PASSWORD`: password of the seeded user `demo`. @default demo-password */
  readonly demoPassword: string
  /** `DATA_DIR`: keeps DynamoDB Local's data across restarts. @default in memory */
  readonly dataDir: string | undefined
  /** `DYNAMODB_PORT`: DynamoDB Local's port, which `npm run users` also uses. @default 8000 */
  readonly dynamodbPort: number
  /** `LOCAL_KEY_DIR`: where the local signing key is kept. @default .local/keys */
  readonly keyDir: string
  /** The `AUTHORIZER_*` variables, handed to the local authorizer as the stack would. */
  readonly authorizerEnv: Readonly<Record<string, string>>
}

export const LOCAL_TABLE = 'token-service'

export function loadLocalConfig(env: Env = process.env): LocalConfig {
  const port = (name: string, fallback: number): number => {
    const raw = env[name]?.trim()
    if (!raw) return fallback
    const value = Number(raw)
    if (!Number.isInteger(value) || value < 1 || value > 65_535) {
      throw new ConfigError(`${name} must be a port number from 1 to 65535, got "${raw}"`)
    }
    return value
  }
  const listenPort = port('PORT', 3000)
  return {
    port: listenPort,
    issuer: env.ISSUER?.trim() || `http://localhost:${listenPort}`,
    clientsFile: env.CLIENTS_FILE?.trim() || 'clients.local.json',
    demoPassword: env.DEMO_PASSWORD || 'demo-password',
    dataDir: env.DATA_DIR?.trim() || undefined,
    dynamodbPort: port('DYNAMODB_PORT', 8000),
    keyDir: env.LOCAL_KEY_DIR?.trim() || '.local/keys',
    authorizerEnv: Object.fromEntries(
      Object.entries(env).filter(
        (entry): entry is [string, string] =>
          entry[0].startsWith('AUTHORIZER_') && entry[1] !== undefined,
      ),
    ),
  }
}
