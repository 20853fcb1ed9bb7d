import { readFileSync } from 'node:fs'
import { App, RemovalPolicy, Validations } from 'aws-cdk-lib'
import { AwsSolutionsChecks } from 'cdk-nag'
import { type ClientConfig, parseClients } from '../functions/core/clients.js'
import type { SigningAlgorithm } from '../lib/token-service.js'
import { TokenServiceStack } from '../lib/token-service-stack.js'

/**
 * The CDK app. Context (cdk.json or `-c key=value`):
 * - `stackName`: @default TokenService
 * - `issuer`: the `iss` claim; @default the HTTP API's endpoint
 * - `algorithm`: `RS256` or `ES256`; @default RS256
 * - `clients`: the clients as a JSON array (a string with `-c`, or an array in cdk.json)
 * - `clientsFile`: read the clients from this file when `clients` is not given;
 *   @default clients.local.json, the DEMO clients of local mode. A production deployment
 *   must pass its own clients (`-c clientsFile=clients.prod.json` or `-c clients='[...]'`).
 * - `removalPolicy`: `retain` or `destroy`; @default retain
 */
const app = new App()

const context = (key: string): unknown => app.node.tryGetContext(key)
const text = (key: string): string | undefined => {
  const value = context(key)
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value !== 'string') throw new Error(`context ${key} must be a string`)
  return value
}

function loadClients(): ClientConfig[] {
  const inline = context('clients')
  let raw: unknown
  let from: string
  if (inline !== undefined && inline !== null && inline !== '') {
    raw = typeof inline === 'string' ? JSON.parse(inline) : inline
    from = 'context clients'
  } else {
    from = text('clientsFile') ?? 'clients.local.json'
    raw = JSON.parse(readFileSync(from, 'utf8'))
  }
  try {
    parseClients(raw) // the functions would refuse them at cold start: refuse them now
  } catch (error) {
    throw new Error(`${from}: ${(error as Error).message}`)
  }
  return raw as ClientConfig[]
}

const algorithm = text('algorithm') ?? 'RS256'
if (algorithm !== 'RS256' && algorithm !== 'ES256') {
  throw new Error('context algorithm must be RS256 or ES256')
}
const removal = (text('removalPolicy') ?? 'retain').toLowerCase()
if (removal !== 'retain' && removal !== 'destroy') {
  throw new Error('context removalPolicy must be retain or destroy')
}
const issuer = text('issuer')

new TokenServiceStack(app, text('stackName') ?? 'TokenService', {
  description: 'Token service: login, rotating refresh tokens, revoke, JWKS (KMS, DynamoDB)',
  clients: loadClients(),
  algorithm: algorithm as SigningAlgorithm,
  removalPolicy: removal === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
  ...(issuer !== undefined && { issuer }),
})

// cdk-nag 3 runs as a policy-validation plugin: unacknowledged findings fail `cdk synth`.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app))
