import { ConfigError, type Env } from '../functions/config.js'

/**
 * Settings of `npm start` (local mode) that the deployed functions do not have.
 * The functions' own settings (functions/settings.ts: `LOGIN_*`, `AUTHORIZER_*`,
 * `TOKEN_BACKDATE_SECONDS`, ...) are read from the same environment by the
 * same loaders as in Lambda.
 */
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
  /** `AUTHORIZER_STRICT`: run the strict authorizer (the stack's `strictRevocation`). @default false */
  readonly strict: boolean
}

/** Local mode's own settings (environment variables), once: default and doc. */
export const LOCAL_SETTINGS = {
  PORT: { default: '3000', doc: 'Where the HTTP API and the demo page listen (127.0.0.1).' },
  ISSUER: {
    default: 'http://localhost:$PORT',
    doc: 'The `iss` claim and the base of the discovery documents.',
  },
  CLIENTS_FILE: {
    default: 'clients.local.json',
    doc: 'The clients, as a JSON array. The demo clients’ `http://localhost:3000` origins follow `PORT`.',
  },
  DEMO_PASSWORD: { default: 'demo-password', doc: 'Password of the seeded user `demo`.' },
  DATA_DIR: { default: 'in memory', doc: 'Keeps DynamoDB Local’s data across restarts.' },
  DYNAMODB_PORT: {
    default: '8000',
    doc: 'DynamoDB Local’s port (on 127.0.0.1); `npm run users` uses it too.',
  },
  LOCAL_KEY_DIR: {
    default: '.local/keys',
    doc: 'Where the local RSA signing key is kept (git-ignored), in place of KMS.',
  },
  AUTHORIZER_STRICT: {
    default: 'false',
    doc: 'Run the strict authorizer (the deploy setting `strictRevocation`).',
  },
} as const

/** The table local mode and `npm run users` use. */
export const LOCAL_TABLE = 'token-service'

/** The port the demo clients' origins name in clients.local.json. */
export const DEFAULT_PORT = Number(LOCAL_SETTINGS.PORT.default)

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
  const strict =
    env.AUTHORIZER_STRICT?.trim().toLowerCase() || LOCAL_SETTINGS.AUTHORIZER_STRICT.default
  if (strict !== 'true' && strict !== 'false') {
    throw new ConfigError(`AUTHORIZER_STRICT must be true or false, got "${env.AUTHORIZER_STRICT}"`)
  }
  const listenPort = port('PORT', Number(LOCAL_SETTINGS.PORT.default))
  return {
    port: listenPort,
    issuer: env.ISSUER?.trim() || `http://localhost:${listenPort}`,
    clientsFile: env.CLIENTS_FILE?.trim() || LOCAL_SETTINGS.CLIENTS_FILE.default,
    demoPassword: env.DEMO_PASSWORD || LOCAL_SETTINGS.DEMO_PASSWORD.default,
    dataDir: env.DATA_DIR?.trim() || undefined,
    dynamodbPort: port('DYNAMODB_PORT', Number(LOCAL_SETTINGS.DYNAMODB_PORT.default)),
    keyDir: env.LOCAL_KEY_DIR?.trim() || LOCAL_SETTINGS.LOCAL_KEY_DIR.default,
    strict: strict === 'true',
  }
}

/**
 * The demo clients' origins follow `PORT`: an allowed origin on localhost at the
 * default port is moved to the port local mode listens on, so that the demo page
 * and the cookie-mode examples work from `PORT=3100 npm start` too.
 */
export function followPort(clientsJson: string, port: number): string {
  if (port === DEFAULT_PORT) return clientsJson
  const clients = JSON.parse(clientsJson) as { allowed_origins?: unknown }[]
  if (!Array.isArray(clients)) return clientsJson
  for (const client of clients) {
    if (!Array.isArray(client?.allowed_origins)) continue
    client.allowed_origins = client.allowed_origins.map((origin) =>
      origin === `http://localhost:${DEFAULT_PORT}` || origin === `http://127.0.0.1:${DEFAULT_PORT}`
        ? origin.replace(`:${DEFAULT_PORT}`, `:${port}`)
        : origin,
    )
  }
  return JSON.stringify(clients)
}
