import { type Client, ClientConfigError, parseClients } from './core/clients.js'
import type { SigningAlgorithm } from './core/ports.js'

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
  }
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
  }
}
