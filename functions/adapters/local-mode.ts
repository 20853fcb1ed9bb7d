import { readFile } from 'node:fs/promises'
import type { Server } from 'node:http'
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb'
import { demoAssets } from '../../demo/assets.js'
import { type Config, LOCAL_TABLE, type LocalConfig, loadConfig } from '../config.js'
import { addUser, UserExists } from '../core/users.js'
import { TTL_ATTRIBUTE, tableDefinition } from './dynamodb/table.js'
import { type DynamoDbLocal, startDynamoDbLocal } from './dynamodb-local.js'
import { createLocalServer, listen } from './local-server.js'
import { createRuntime, type Runtime, type RuntimeOverrides } from './runtime.js'

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

/** The deployed functions' configuration, as local mode sets it. */
export async function localFunctionConfig(
  local: LocalConfig,
  dynamodbEndpoint: string,
): Promise<Config> {
  return loadConfig({
    TABLE_NAME: LOCAL_TABLE,
    ISSUER: local.issuer,
    CLIENTS: await readFile(local.clientsFile, 'utf8'),
    SIGNER: 'local',
    LOCAL_KEY_DIR: local.keyDir,
    DYNAMODB_ENDPOINT: dynamodbEndpoint,
    ...local.authorizerEnv,
  })
}

export interface LocalMode {
  readonly runtime: Runtime
  readonly server: Server
  readonly dynamodb: DynamoDbLocal
  readonly url: string
  /** Closes the HTTP server and stops DynamoDB Local (waits until its JVM is gone). */
  stop(): Promise<void>
}

/** Everything `npm start` runs: DynamoDB Local, the table, the demo user, the HTTP API. */
export async function startLocalMode(
  local: LocalConfig,
  overrides: RuntimeOverrides = {},
): Promise<LocalMode> {
  const dynamodb = await startDynamoDbLocal({ port: local.dynamodbPort, dataDir: local.dataDir })
  try {
    const runtime = createRuntime(await localFunctionConfig(local, dynamodb.endpoint), {
      dynamodb: localDynamoClient(dynamodb.endpoint),
      ...overrides,
    })
    await ensureTable(runtime.dynamodb, LOCAL_TABLE)
    await seedDemoUser(runtime, local.demoPassword)
    const server = createLocalServer(runtime, { assets: await demoAssets() })
    const port = await listen(server, local.port)
    return {
      runtime,
      server,
      dynamodb,
      url: `http://localhost:${port}`,
      stop: async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()))
        server.closeAllConnections()
        await dynamodb.stop()
      },
    }
  } catch (error) {
    await dynamodb.stop()
    throw error
  }
}

async function seedDemoUser(runtime: Runtime, password: string): Promise<void> {
  try {
    await addUser(runtime.deps.users, runtime.deps.clock, {
      username: DEMO_USERNAME,
      password,
      roles: ['user'],
    })
  } catch (error) {
    if (!(error instanceof UserExists)) throw error // kept from an earlier run (DATA_DIR)
  }
}
