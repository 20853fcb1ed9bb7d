import { mkdtempSync } from 'node:fs'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { freePort } from '../../functions/adapters/dynamodb-local.js'
import {
  createLocalServer,
  type LocalAsset,
  listen,
} from '../../functions/adapters/local-server.js'
import { LocalSigner } from '../../functions/adapters/local-signer.js'
import {
  createRuntime,
  type Runtime,
  type RuntimeOverrides,
} from '../../functions/adapters/runtime.js'
import { loadConfig } from '../../functions/config.js'
import type { ClientConfig } from '../../functions/core/clients.js'
import { hashPassword, normalizeUsername } from '../../functions/core/passwords.js'
import type { Signer, User } from '../../functions/core/ports.js'
import { hashToken, newUserId } from '../../functions/core/refresh-token.js'
import { FakeClock } from './clock.js'
import { createTestTable } from './dynamo.js'
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
  readonly runtime: Runtime
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
  overrides?: RuntimeOverrides
  /** Build the DynamoDB client yourself (for fault injection); gets the table's client. */
  dynamodb?: (client: DynamoDBClient) => DynamoDBClient
  /** Static files for the local server (see createLocalServer). */
  assets?: ReadonlyMap<string, LocalAsset>
  /** More function environment (for example `AUTHORIZER_STRICT`), as the stack would set it. */
  env?: Record<string, string>
  /** Listen on this port (for clients whose allowed origins name it). @default a free port */
  port?: number
  /**
   * The local Lambda timeout per request. Generous by default: several scrypt hashes at once
   * on a loaded 2-core machine must not turn into 503s. @default 30000
   */
  timeoutMs?: number
}

/**
 * The HTTP API on a real port, through the local adapter (the same API
 * Gateway events and middy stacks as in AWS), on a fresh DynamoDB Local table.
 */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const table = await createTestTable()
  const port = options.port ?? (await freePort())
  const issuer = `http://127.0.0.1:${port}`
  const clock = new FakeClock()
  const config = loadConfig({
    TABLE_NAME: table.tableName,
    ISSUER: issuer,
    CLIENTS: JSON.stringify(options.clients ?? [NATIVE, SPA, NO_GRACE]),
    SIGNER: 'local',
    ...options.env,
  })
  const dynamodb = options.dynamodb ? options.dynamodb(table.client) : table.client
  const runtime = createRuntime(config, {
    clock,
    signer: await testSigner(),
    dynamodb,
    ...options.overrides,
  })
  const server = createLocalServer(runtime, {
    assets: options.assets,
    timeoutMs: options.timeoutMs ?? 30_000,
  })
  await listen(server, port)

  const request = async (path: string, init: RequestInit): Promise<Reply> => {
    const response = await fetch(`${issuer}${path}`, init)
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
    url: issuer,
    issuer,
    clock,
    runtime,
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
      if (!(await runtime.store.createUser(user))) throw new Error('username taken')
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
  if (!(await h.runtime.store.createUser(user))) throw new Error(`user ${user.username} exists`)
  return user
}
