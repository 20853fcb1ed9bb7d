import { Logger } from '@aws-lambda-powertools/logger'
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { KMSClient } from '@aws-sdk/client-kms'
import { type Config, inLambda, loadConfig } from '../config.js'
import { type Clock, systemClock } from '../core/clock.js'
import type { LoginDeps } from '../core/login.js'
import type { DomainEvent, Events, PublicJwk, Signer, UserStore } from '../core/ports.js'
import type { RefreshDeps } from '../core/refresh.js'
import type { RevokeDeps } from '../core/revoke.js'
import { DynamoLoginThrottle } from './dynamodb/login-throttle.js'
import { DynamoSessions } from './dynamodb/sessions.js'
import { DynamoUsers } from './dynamodb/users.js'
import { KmsSigner } from './kms-signer.js'
import { LocalSigner } from './local-signer.js'

/** Every port a handler may need. */
export interface RuntimeDeps extends LoginDeps, RefreshDeps, RevokeDeps {
  readonly users: UserStore
}

/** What a handler runs with: the domain's ports plus logging and metrics. */
export interface Runtime {
  readonly config: Config
  readonly deps: RuntimeDeps
  /** The client behind the DynamoDB ports (local mode creates the table with it). */
  readonly dynamodb: DynamoDBClient
  readonly logger: Logger
  readonly metrics: Metrics
  /** Every client's allowed origins: the CORS allow-list. */
  readonly corsOrigins: readonly string[]
  /**
   * Every verification key, fetched anew (KMS `GetPublicKey` on the active and
   * retiring keys, or the local key), past the signer's per-container memo: the
   * authorizer's key-set refresh.
   */
  readonly fetchPublicKeys: () => Promise<PublicJwk[]>
}

const METRIC_NAMES: Record<DomainEvent, string> = {
  login: 'Logins',
  login_failed: 'LoginFailures',
  refresh: 'Refreshes',
  grace_replay: 'GraceReplays',
  reuse_detected: 'ReuseDetections',
  revoke: 'Revocations',
  login_throttled: 'LoginThrottled',
}

const SECURITY_EVENTS: ReadonlySet<DomainEvent> = new Set(['reuse_detected', 'login_failed'])

export interface RuntimeOverrides {
  readonly clock?: Clock
  readonly signer?: Signer
  readonly dynamodb?: DynamoDBClient
  readonly kms?: KMSClient
  readonly logger?: Logger
}

/** Builds clients and adapters once; no network I/O happens here. */
export function createRuntime(config: Config, overrides: RuntimeOverrides = {}): Runtime {
  const logger = overrides.logger ?? new Logger({ serviceName: 'token-service' })
  const metrics = new Metrics({
    namespace: 'TokenService',
    serviceName: 'token-service',
    // Its only warning is "no metrics to publish", true of every JWKS request: keep it at debug.
    logger: {
      trace: (...args: unknown[]) => logger.trace(String(args[0])),
      debug: (...args: unknown[]) => logger.debug(String(args[0])),
      info: (...args: unknown[]) => logger.info(String(args[0])),
      warn: (...args: unknown[]) => logger.debug(String(args[0])),
      error: (...args: unknown[]) => logger.error(String(args[0])),
    },
  })
  const sdk = {
    maxAttempts: config.awsMaxAttempts,
    requestHandler: {
      connectionTimeout: config.awsCallTimeoutMs,
      requestTimeout: config.awsCallTimeoutMs,
      // Without it the SDK only logs a warning when requestTimeout passes and keeps
      // waiting (up to its 5-minute socket timeout); with it the attempt fails with a
      // TimeoutError, which the SDK retries and which then answers 503.
      throwOnRequestTimeout: true,
    },
  }
  const dynamodb =
    overrides.dynamodb ??
    new DynamoDBClient({
      ...sdk,
      ...(config.dynamodbEndpoint ? { endpoint: config.dynamodbEndpoint } : {}),
    })
  const sessions = new DynamoSessions(dynamodb, config.tableName)
  const users = new DynamoUsers(dynamodb, config.tableName)
  const loginAttempts = new DynamoLoginThrottle(dynamodb, config.tableName)
  let kms: KMSClient | undefined
  const kmsClient = () => {
    kms ??= overrides.kms ?? new KMSClient(sdk)
    return kms
  }
  const signer = overrides.signer ?? createSigner(config, kmsClient)
  const fetchPublicKeys =
    config.signer.kind === 'kms' && !overrides.signer
      ? () => createSigner(config, kmsClient).publicKeys()
      : () => signer.publicKeys()

  const events: Events = {
    emit(event, fields = {}) {
      metrics.addMetric(METRIC_NAMES[event], MetricUnit.Count, 1)
      if (SECURITY_EVENTS.has(event)) logger.warn('security event', { event, ...fields })
      else logger.info(event, fields)
    },
  }

  return {
    config,
    dynamodb,
    logger,
    metrics,
    corsOrigins: [...new Set([...config.clients.values()].flatMap((c) => c.allowedOrigins))],
    fetchPublicKeys,
    deps: {
      sessions,
      users,
      loginAttempts,
      signer,
      clock: overrides.clock ?? systemClock,
      events,
      settings: {
        issuer: config.issuer,
        clients: config.clients,
        backdateSeconds: config.backdateSeconds,
      },
    },
  }
}

function createSigner(config: Config, kms: () => KMSClient): Signer {
  if (config.signer.kind === 'kms') {
    return new KmsSigner({
      client: kms(),
      activeKeyId: config.signer.activeKeyId,
      retiringKeyIds: [...config.signer.retiringKeyIds],
      alg: config.signer.alg,
    })
  }
  return deferred(LocalSigner.open(config.signer.keyDir), 'RS256')
}

/** A signer that becomes usable once its key is loaded. */
function deferred(opening: Promise<Signer>, alg: Signer['alg']): Signer {
  opening.catch(() => {}) // reported by the first call that needs it
  return {
    alg,
    keyId: async () => (await opening).keyId(),
    sign: async (input) => (await opening).sign(input),
    publicKeys: async () => (await opening).publicKeys(),
  }
}

let lambdaRuntime: Runtime | undefined

/**
 * The runtime of a deployed function, built from the environment once per
 * container. Inside Lambda it is built at module scope (cold start). It does
 * no I/O: only the functions that sign or publish keys (and may call
 * `kms:GetPublicKey`) warm the key cache, with `warmSigningKeys`.
 */
export function defaultRuntime(): Runtime {
  lambdaRuntime ??= createRuntime(loadConfig())
  return lambdaRuntime
}

/**
 * Fetches public keys ahead of the first request: the active key's for the
 * functions that sign (login, token), all of them for the one that publishes
 * them (jwks). Never rejects: a failure surfaces in the request that needs the key.
 */
export function warmSigningKeys(runtime: Runtime, which: 'active' | 'all'): void {
  const { signer } = runtime.deps
  const warming = which === 'active' ? signer.keyId() : signer.publicKeys()
  warming.catch(() => {})
}

if (inLambda()) defaultRuntime()
