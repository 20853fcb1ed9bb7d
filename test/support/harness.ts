import { mkdtempSync } from 'node:fs'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { KMSClient } from '@aws-sdk/client-kms'
import { sdkOptions } from '../../functions/adapters/aws.js'
import { DynamoGraceKeys } from '../../functions/adapters/dynamodb/grace-keys.js'
import { KmsGraceKeys } from '../../functions/adapters/kms-grace-keys.js'
import { KmsSigner } from '../../functions/adapters/kms-signer.js'
import { loadAwsCallConfig, loadSigningConfig } from '../../functions/config.js'
import type { ClientConfig } from '../../functions/core/clients.js'
import { hashPassword, normalizeUsername } from '../../functions/core/passwords.js'
import type {
  LoginAttempts,
  SessionStore,
  Signer,
  User,
  UserStore,
} from '../../functions/core/ports.js'
import { hashToken, newUserId } from '../../functions/core/refresh-token.js'
import type { HomeRegions } from '../../functions/core/regions.js'
import { freePort } from '../../local/dynamodb-local.js'
import { localService } from '../../local/mode.js'
import { createLocalServer, type LocalAsset, listen } from '../../local/server.js'
import { LocalSigner } from '../../local/signer.js'
import type { LocalService } from '../../local/wiring.js'
import { FakeClock } from './clock.js'
import { createTestTable } from './dynamo.js'
import { GRACE_KEY_ALIAS } from './fake-kms.js'
import { recordSecret } from './secrets.js'

export const NATIVE: ClientConfig = {
  client_id: 'test-native',
  type: 'native',
  audience: 'https://api.test',
  scopes: ['openid', 'api'],
  reuse_grace_seconds: 10,
}

export const SPA_ORIGIN = 'http://localhost:5173'
export const SPA: ClientConfig = {
  client_id: 'test-spa',
  type: 'spa',
  audience: 'https://api.test',
  allowed_origins: [SPA_ORIGIN],
  scopes: ['openid', 'api'],
  cookie_mode: true,
}

export const NO_GRACE: ClientConfig = {
  ...NATIVE,
  client_id: 'test-no-grace',
  reuse_grace_seconds: 0,
}

export const PASSWORD = 'correct horse battery staple'

let localSigner: Promise<Signer> | undefined
/** One local RSA key per test worker. */
export function testSigner(): Promise<Signer> {
  localSigner ??= LocalSigner.open(join(mkdtempSync(join(tmpdir(), 'token-keys-')), 'keys'))
  return localSigner
}

const hashes = new Map<string, Promise<string>>()
/** scrypt at N=2^17 costs ~0.5 s here: hash each test password once per worker. */
function passwordHash(password: string): Promise<string> {
  if (!hashes.has(password)) hashes.set(password, hashPassword(password))
  return hashes.get(password) as Promise<string>
}

export interface Reply {
  status: number
  headers: Headers
  // biome-ignore lint/suspicious/noExplicitAny: test responses are inspected freely
  body: any
  text: string
}

/** The Authorization header that presents an access token. */
export const bearer = (accessToken: string | undefined) => ({
  authorization: `Bearer ${accessToken}`,
})

export interface RequestOptions {
  json?: boolean
  headers?: Record<string, string>
  /** Sent as is; overrides `json`. */
  rawBody?: string
  method?: string
}

export interface Harness {
  readonly url: string
  readonly issuer: string
  readonly clock: FakeClock
  /** Every function, wired as local mode wires it (its stores, signer, authorizer, ...). */
  readonly service: LocalService
  /** The service's stores, on this harness's table. */
  readonly sessions: SessionStore
  readonly users: UserStore
  readonly loginAttempts: LoginAttempts
  readonly dynamodb: DynamoDBClient
  readonly tableName: string
  readonly server: Server
  post(path: string, params: Record<string, string>, options?: RequestOptions): Promise<Reply>
  get(path: string, headers?: Record<string, string>): Promise<Reply>
  /** A DELETE with no body. */
  del(path: string, headers?: Record<string, string>): Promise<Reply>
  /** A user with password `PASSWORD` (or the one given). */
  addUser(options?: { username?: string; password?: string; roles?: string[] }): Promise<User>
  /** Logs in with the native client; returns the token response. */
  login(user: User, client?: string, password?: string): Promise<Reply>
  refresh(refreshToken: string, client?: string): Promise<Reply>
  /** Any request, sent exactly as given (the tokens it returns are recorded as secrets). */
  send(path: string, init: RequestInit): Promise<Reply>
  close(): Promise<void>
}

export interface HarnessOptions {
  clients?: ClientConfig[]
  /** @default a FakeClock at the current time */
  clock?: FakeClock
  /**
   * The DynamoDB client: `lambda` builds one as a deployed function does (`AWS_CALL_*` of
   * `env`, on DynamoDB Local); a function wraps the test table's client (fault injection).
   * @default the test table's client
   */
  dynamodb?: 'lambda' | ((client: DynamoDBClient) => DynamoDBClient)
  /**
   * The signer: the worker's local RSA key, or the KMS signer a deployed function builds
   * (`SIGNING_KEY_ID`, ... of `env`) on this KMS client (`lambda`: one it builds itself with
   * `AWS_CALL_*`, as in Lambda). With KMS, the grace seals use KMS data keys too.
   * @default the local key, and a local grace key
   */
  kms?: KMSClient | 'lambda'
  /**
   * The signer of login, token and jwks, as a test builds it (for example an envelope
   * signer on this harness's table). @default as `kms` says
   */
  signer?: Signer
  /** Static files for the local server (see createLocalServer). */
  assets?: ReadonlyMap<string, LocalAsset>
  /** More function environment (for example `LOGIN_FREE_FAILURES`), as the stack would set it. */
  env?: Record<string, string>
  /** Run the strict authorizer. @default false */
  strict?: boolean
  /** Listen on this port (for clients whose allowed origins name it). @default a free port */
  port?: number
  /**
   * The issuer's host name, as a browser page names the API (local mode builds `htu` from
   * the issuer, never from the `Host` header). The server listens on 127.0.0.1 either way.
   * @default 127.0.0.1
   */
  issuerHost?: 'localhost' | '127.0.0.1'
  /**
   * The local Lambda timeout per request. Generous by default: several scrypt hashes at once
   * on a loaded 2-core machine must not turn into 503s. @default 30000
   */
  timeoutMs?: number
  /**
   * The issuer, when it is not this server's own URL: the one hostname in front of several
   * regions (test/support/regions.ts). @default `http://<issuerHost>:<port>`
   */
  issuer?: string
  /** The table. @default a fresh one */
  table?: { client: DynamoDBClient; tableName: string }
  /** With several regions: the way to the other regions' token functions. */
  homeRegions?: HomeRegions
}

/**
 * The HTTP API on a real port, through the local adapter (the same API
 * Gateway events and middy stacks as in AWS), on a fresh DynamoDB Local table.
 */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const table = options.table ?? (await createTestTable())
  const port = options.port ?? (await freePort())
  const url = `http://${options.issuerHost ?? '127.0.0.1'}:${port}`
  const issuer = options.issuer ?? url
  const clock = options.clock ?? new FakeClock()
  const env = { ...process.env, ...options.env }
  const aws = sdkOptions(loadAwsCallConfig(env))
  const dynamodb =
    options.dynamodb === 'lambda'
      ? new DynamoDBClient({ ...aws, endpoint: process.env.DYNAMODB_ENDPOINT })
      : options.dynamodb
        ? options.dynamodb(table.client)
        : table.client
  const kms = options.kms === 'lambda' ? new KMSClient(aws) : options.kms
  const service = localService({
    issuer,
    clientsJson: JSON.stringify(options.clients ?? [NATIVE, SPA, NO_GRACE]),
    dynamodb,
    tableName: table.tableName,
    signer:
      options.signer ??
      (kms ? new KmsSigner({ client: kms, ...loadSigningConfig(env) }) : await testSigner()),
    // With KMS, the grace seals use KMS data keys too (GRACE_KEY_ID of `env`).
    ...(kms && {
      graceKeys: new KmsGraceKeys({
        client: kms,
        keyId: env.GRACE_KEY_ID ?? GRACE_KEY_ALIAS,
        directory: new DynamoGraceKeys(dynamodb, table.tableName),
      }),
    }),
    env,
    strict: options.strict ?? false,
    clock,
    ...(options.homeRegions && { homeRegions: options.homeRegions }),
  })
  const server = createLocalServer(service, {
    assets: options.assets,
    timeoutMs: options.timeoutMs ?? 30_000,
  })
  await listen(server, port)

  const request = async (path: string, init: RequestInit): Promise<Reply> => {
    const response = await fetch(`${url}${path}`, init)
    const text = await response.text()
    let body: unknown
    try {
      body = text ? JSON.parse(text) : undefined
    } catch {
      body = undefined
    }
    const tokens = body as { access_token?: string; refresh_token?: string } | undefined
    recordSecret(tokens?.access_token, tokens?.refresh_token)
    if (tokens?.refresh_token) recordSecret(hashToken(tokens.refresh_token))
    for (const cookie of response.headers.getSetCookie()) {
      const value = /^[^=]+=([^;]*)/.exec(cookie)?.[1]
      recordSecret(value, value ? hashToken(value) : undefined)
    }
    return { status: response.status, headers: response.headers, body, text }
  }

  const harness: Harness = {
    url,
    issuer,
    clock,
    service,
    sessions: service.sessions,
    users: service.users,
    loginAttempts: service.loginAttempts,
    dynamodb,
    tableName: table.tableName,
    server,
    post(path, params, opts = {}) {
      const body =
        opts.rawBody ??
        (opts.json ? JSON.stringify(params) : new URLSearchParams(params).toString())
      const type = opts.json ? 'application/json' : 'application/x-www-form-urlencoded'
      return request(path, {
        method: opts.method ?? 'POST',
        headers: { 'content-type': type, ...opts.headers },
        body,
      })
    },
    get(path, headers = {}) {
      return request(path, { headers })
    },
    del(path, headers = {}) {
      return request(path, { method: 'DELETE', headers })
    },
    async addUser(opts = {}) {
      const password = opts.password ?? PASSWORD
      const user: User = {
        sub: newUserId(),
        username: normalizeUsername(
          opts.username ?? `user-${Math.random().toString(36).slice(2, 10)}`,
        ),
        passwordHash: await passwordHash(password),
        roles: opts.roles ?? ['reader'],
        status: 'active',
        createdAt: clock.now(),
      }
      recordSecret(password, user.passwordHash)
      if (!(await service.users.createUser(user))) throw new Error('username taken')
      return user
    },
    login(user, client = NATIVE.client_id, password = PASSWORD) {
      return harness.post('/login', { username: user.username, password, client_id: client })
    },
    send: request,
    refresh(refreshToken, client = NATIVE.client_id) {
      recordSecret(refreshToken)
      return harness.post('/token', {
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        client_id: client,
      })
    },
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return harness
}

/**
 * A user whose password hash is cheap to check (scrypt ln=10), for suites about faults and
 * races rather than scrypt: several real N=2^17 hashes at once would only test the CPU.
 */
export async function addCheapUser(h: Harness, prefix: string): Promise<User> {
  const user: User = {
    sub: newUserId(),
    username: `${prefix}-${Math.random().toString(36).slice(2, 10)}`,
    passwordHash: await hashPassword(PASSWORD, { ln: 10, r: 8, p: 1 }),
    roles: ['reader'],
    status: 'active',
    createdAt: h.clock.now(),
  }
  recordSecret(user.passwordHash)
  if (!(await h.users.createUser(user))) throw new Error(`user ${user.username} exists`)
  return user
}
