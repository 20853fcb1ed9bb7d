import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { Server } from 'node:http'
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb'
import { demoAssets } from '../demo/assets.js'
import { DynamoDpopReplay } from '../functions/adapters/dynamodb/dpop-replay.js'
import { DynamoLoginThrottle } from '../functions/adapters/dynamodb/login-throttle.js'
import { DynamoOutbox } from '../functions/adapters/dynamodb/outbox.js'
import { DynamoRegionSwitch } from '../functions/adapters/dynamodb/regions.js'
import { DynamoSessions } from '../functions/adapters/dynamodb/sessions.js'
import { TTL_ATTRIBUTE, tableDefinition } from '../functions/adapters/dynamodb/table.js'
import { DynamoUsers } from '../functions/adapters/dynamodb/users.js'
import { createObservability } from '../functions/adapters/observability.js'
import { ConfigError, type Env, loadHttpConfig } from '../functions/config.js'
import { ClientConfigError, parseClients } from '../functions/core/clients.js'
import { type Clock, systemClock } from '../functions/core/clock.js'
import type { GraceKeys, Signer } from '../functions/core/ports.js'
import type { HomeRegions } from '../functions/core/regions.js'
import { addUser, UserExists } from '../functions/core/users.js'
import { followPort, LOCAL_TABLE, type LocalConfig } from './config.js'
import { assertPortFree, type DynamoDbLocal, startDynamoDbLocal } from './dynamodb-local.js'
import { type EventTail, tailSecurityEvents } from './event-stream.js'
import { LocalGraceKeys } from './grace-keys.js'
import { localNonceKey } from './nonce-key.js'
import { createLocalServer, listen } from './server.js'
import { LocalSigner } from './signer.js'
import { type LocalService, wireLocalService } from './wiring.js'

export const DEMO_USERNAME = 'demo'

/** A client for DynamoDB Local, which accepts any region and credentials. */
export const localDynamoClient = (endpoint: string) =>
  new DynamoDBClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 2000, requestTimeout: 5000 },
  })

/** Creates the table (and its TTL) unless it exists, and waits until it is active. */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(new CreateTableCommand(tableDefinition(tableName)))
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
      }),
    )
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error
  }
  for (let attempt = 0; attempt < 100; attempt++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }))
    if (Table?.TableStatus === 'ACTIVE') return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`table ${tableName} did not become active`)
}

export interface LocalServiceOptions {
  readonly issuer: string
  /** The clients as JSON, as the stack's `CLIENTS` variable carries them. */
  readonly clientsJson: string
  readonly dynamodb: DynamoDBClient
  readonly tableName: string
  readonly signer: Signer
  /** The server's half of the grace seals. @default a random key, in memory */
  readonly graceKeys?: GraceKeys
  /** The DPoP nonces' key (32 bytes or more). @default random, for this process only */
  readonly dpopNonceKey?: Uint8Array
  /** The functions' settings (`LOGIN_*`, `AUTHORIZER_*`, ...). @default process.env */
  readonly env?: Env
  readonly strict?: boolean
  /** @default the system clock */
  readonly clock?: Clock
  /**
   * With several regions (`REGIONS`, `HOME_REGION` of `env`): the way to another region's
   * token function (the two-region simulation, test/support/regions.ts). @default none
   */
  readonly homeRegions?: HomeRegions
}

/** Every function wired on DynamoDB Local and a local (or given) signer. */
export function localService(options: LocalServiceOptions): LocalService {
  const env = options.env ?? process.env
  const { issuer, clients } = loadHttpConfig({
    ...env,
    ISSUER: options.issuer,
    CLIENTS: options.clientsJson,
  })
  return wireLocalService({
    issuer,
    clients,
    sessions: new DynamoSessions(options.dynamodb, options.tableName),
    regionSwitch: new DynamoRegionSwitch(options.dynamodb, options.tableName),
    users: new DynamoUsers(options.dynamodb, options.tableName),
    loginAttempts: new DynamoLoginThrottle(options.dynamodb, options.tableName),
    outbox: new DynamoOutbox(options.dynamodb, options.tableName),
    signer: options.signer,
    graceKeys: options.graceKeys ?? LocalGraceKeys.random(),
    dpopReplay: new DynamoDpopReplay(options.dynamodb, options.tableName),
    dpopNonceKey: options.dpopNonceKey ?? randomBytes(32),
    clock: options.clock ?? systemClock,
    observability: createObservability(),
    env,
    strict: options.strict ?? false,
    ...(options.homeRegions && { homeRegions: options.homeRegions }),
  })
}

export interface LocalMode {
  readonly service: LocalService
  readonly server: Server
  readonly dynamodb: DynamoDbLocal
  /** Prints each security event on standard output (local/event-stream.ts). */
  readonly events: EventTail
  readonly url: string
  /** Closes the HTTP server, stops the events' tail and DynamoDB Local (waits until its JVM is gone). */
  stop(): Promise<void>
}

/** Everything `npm start` runs: DynamoDB Local, the table, the demo user, the HTTP API. */
export async function startLocalMode(
  local: LocalConfig,
  overrides: {
    readonly clock?: Clock
    /** Where each security event's line goes. @default standard output */
    readonly writeEvent?: (line: string) => void
  } = {},
): Promise<LocalMode> {
  // Before DynamoDB Local starts: a busy port or a mistake in the clients should cost no JVM.
  await assertPortFree(
    local.port,
    'the HTTP API cannot listen there (choose another with PORT=...)',
  )
  const clientsJson = followPort(await readClientsFile(local.clientsFile), local.port)
  const dynamodb = await startDynamoDbLocal({ port: local.dynamodbPort, dataDir: local.dataDir })
  try {
    const client = localDynamoClient(dynamodb.endpoint)
    const signer = await LocalSigner.open(local.keyDir)
    const service = localService({
      issuer: local.issuer,
      clientsJson,
      dynamodb: client,
      tableName: LOCAL_TABLE,
      signer,
      graceKeys: signer.graceKeys(),
      dpopNonceKey: await localNonceKey(local.keyDir),
      strict: local.strict,
      ...(overrides.clock && { clock: overrides.clock }),
    })
    await ensureTable(client, LOCAL_TABLE)
    // Before the demo user and the first request: every event from then on is printed.
    const events = await tailSecurityEvents({
      endpoint: dynamodb.endpoint,
      dynamodb: client,
      tableName: LOCAL_TABLE,
      source: service.issuer,
      ...(overrides.writeEvent && { write: overrides.writeEvent }),
      onError: (error) =>
        service.observability.logger.warn('security events: reading the stream failed', {
          cause: error instanceof Error ? error.name : 'unknown',
        }),
    })
    await seedDemoUser(service, local.demoPassword)
    const server = createLocalServer(service, { assets: await demoAssets() })
    const port = await listen(server, local.port)
    return {
      service,
      server,
      dynamodb,
      events,
      url: `http://localhost:${port}`,
      stop: async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()))
        server.closeAllConnections()
        await events.stop()
        await dynamodb.stop()
      },
    }
  } catch (error) {
    await dynamodb.stop()
    throw error
  }
}

/**
 * The clients file's JSON, checked as the stack checks its `CLIENTS`, so that a mistake
 * names the file (and the key) rather than the variable it is handed in.
 */
export async function readClientsFile(path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new ConfigError(`${path} (CLIENTS_FILE) cannot be read: ${error.code ?? error.message}`)
  })
  let clients: unknown
  try {
    clients = JSON.parse(text)
  } catch (error) {
    throw new ConfigError(`${path}: not valid JSON (${(error as Error).message})`)
  }
  try {
    parseClients(clients)
  } catch (error) {
    if (!(error instanceof ClientConfigError)) throw error
    throw new ConfigError(`${path}: ${error.message}`)
  }
  return text
}

async function seedDemoUser(service: LocalService, password: string): Promise<void> {
  try {
    await addUser(
      service.users,
      service.clock,
      { username: DEMO_USERNAME, password, roles: ['user'] },
      service.passwordPolicy,
    )
  } catch (error) {
    if (!(error instanceof UserExists)) throw error // kept from an earlier run (DATA_DIR)
  }
}
